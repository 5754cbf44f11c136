// Notes about counting a process tree with perf_event_open
//
// Two ways to make a counter cover a whole tree, living and exited, with nothing counted twice:
// - On the tree's cgroup (the run's own, run_cgroup.cpp): perf_event_open(pid = the cgroup
//   directory's fd, PERF_FLAG_PID_CGROUP), one counter per online CPU, summed when read.
//   The kernel counts an event on a CPU while a task of the cgroup runs there; every task the
//   server forks is born in its group, so the counter sees all of it, whoever reaps it and
//   whenever. It costs the tree nothing per fork. Needs the cgroup in the hierarchy that
//   carries perf_event (cgroup v2 always does, unless a v1 perf_event hierarchy took it) and
//   CAP_PERFMON or root (it is a per-CPU counter). This is the sweep's first choice.
// - Inherited from the root, as `perf stat -- CMD` does: opened on the server's pid after
//   fork and before exec, with `disabled`, `enable_on_exec` and `inherit`. At every fork or
//   thread creation the kernel gives the new task its own copy of each counter, linked to
//   ours (a grandchild's copy links to ours too, not to its parent's). read() on our fd
//   returns our task's count, plus the counts of the copies still alive (the kernel walks
//   them), plus `child_count`, into which every copy's count is folded when its task exits
//   (perf_event_exit_task, in do_exit). The fold happens at exit, not at wait(), so children
//   reaped by the kernel (SA_NOCLDWAIT, SIGCHLD ignored) are counted the same, as are
//   descendants re-parented after their parent died. The price: every fork copies the six
//   counters into the child and every exit folds them back. Measured on this machine (under
//   load from other work): fork+exit+wait of a small process cost 134-152 us of CPU bare,
//   194-230 us with six inherited counters, 149-175 us with six counters on its cgroup. So
//   this is the fallback, for a machine without a usable cgroup.
// tests/process_cost_test.cpp checks both ways on every shape of tree with exact counts.
// Both ways:
// - Software events (task clock, context switches, page faults) and tracepoints are never
//   multiplexed; the read format still carries time enabled and time running, and the
//   caller treats running < enabled as a counter that cannot be trusted.
// - raw_syscalls:sys_enter fires on every syscall entry; a copy with a tracepoint filter on
//   the syscall number (`id == 232 || ...`) counts only the wait calls, another only the
//   I/O calls. (The kernel evaluates an inherited copy against our counter's filter.)
//   Numbers are those of this architecture's native ABI (a 32-bit task in the tree would be
//   counted under its compat numbers; the servers are native).
// - While any syscall tracepoint counter exists, every task on the machine takes the traced
//   syscall entry path (TIF_SYSCALL_TRACEPOINT), the load generator included, as under
//   perf stat.
// - The task clock is switched-in time by perf's clock: on a VM it includes time the
//   hypervisor stole, which the scheduler's run time (cgroup usage, rusage) leaves out.
// What neither sees: work done for the tree by other tasks. Loopback delivers a packet in
// the sender's softirq, so part of the server's receive work is charged to the client and
// the other way round; that is the kernel's accounting, and every model is measured alike.
// Permissions: counting the kernel's part of another process needs perf_event_paranoid <= 1
// or CAP_PERFMON, per-CPU counters <= 0 or CAP_PERFMON, tracepoints root (for the id in
// tracefs). A counter is never opened with exclude_kernel to get past paranoid: that reads 0
// context switches and user-only CPU, numbers that look measured and are not.
#include "perf_counters.hpp"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

namespace mux::sweep {

namespace {

std::string paranoid_level() {
    std::ifstream in("/proc/sys/kernel/perf_event_paranoid");
    std::string level;
    return in >> level ? level : "unreadable";
}

std::string open_error(const char* what, int err) {
    std::string message = fmt::format("perf_event_open({}): {}", what, std::strerror(err));
    if (err == EACCES || err == EPERM)
        message += fmt::format(
            " (perf_event_paranoid is {}; counting the kernel's part of "
            "another process needs <= 1, CAP_PERFMON or root)",
            paranoid_level());
    return message;
}

bool disabled_by_environment() {
    const char* value = std::getenv("MUXBENCH_DISABLE_PERF");
    return value && *value && std::string_view(value) != "0";
}

constexpr const char* kTracefs = "/sys/kernel/tracing";

bool readable(const std::string& path) {
    return access(path.c_str(), R_OK) == 0;
}

}  // namespace

const char* counter_name(Counter c) {
    switch (c) {
        case Counter::task_clock_ns:
            return "task_clock_ns";
        case Counter::context_switches:
            return "context_switches";
        case Counter::page_faults:
            return "page_faults";
        case Counter::syscalls:
            return "syscalls";
        case Counter::wait_calls:
            return "wait_calls";
        case Counter::io_calls:
            return "io_calls";
    }
    return "?";
}

const SyscallList& wait_syscalls() {
    static const SyscallList calls = {
#ifdef SYS_epoll_wait
        {"epoll_wait", SYS_epoll_wait},
#endif
        {"epoll_pwait", SYS_epoll_pwait},
#ifdef SYS_epoll_pwait2
        {"epoll_pwait2", SYS_epoll_pwait2},
#endif
#ifdef SYS_poll
        {"poll", SYS_poll},
#endif
        {"ppoll", SYS_ppoll},
#ifdef SYS_select
        {"select", SYS_select},
#endif
        {"pselect6", SYS_pselect6},
        {"io_uring_enter", SYS_io_uring_enter},
    };
    return calls;
}

const SyscallList& io_syscalls() {
    static const SyscallList calls = {
        {"read", SYS_read},         {"readv", SYS_readv},       {"pread64", SYS_pread64},
        {"preadv", SYS_preadv},     {"preadv2", SYS_preadv2},   {"recvfrom", SYS_recvfrom},
        {"recvmsg", SYS_recvmsg},   {"recvmmsg", SYS_recvmmsg}, {"write", SYS_write},
        {"writev", SYS_writev},     {"pwrite64", SYS_pwrite64}, {"pwritev", SYS_pwritev},
        {"pwritev2", SYS_pwritev2}, {"sendto", SYS_sendto},     {"sendmsg", SYS_sendmsg},
        {"sendmmsg", SYS_sendmmsg}, {"sendfile", SYS_sendfile},
    };
    return calls;
}

std::string syscall_filter(const SyscallList& calls) {
    std::string filter;
    for (const auto& [name, number] : calls)
        filter += fmt::format("{}id == {}", filter.empty() ? "" : " || ", number);
    return filter;
}

std::optional<uint64_t> tracepoint_id(const std::string& event, std::string* error) {
    const std::string events = std::string(kTracefs) + "/events";
    if (!readable(events)) {
        // perf does the same: tracefs is mounted where the kernel documents it, if allowed.
        if (mount("nodev", kTracefs, "tracefs", 0, nullptr) != 0 && !readable(events)) {
            *error = fmt::format("tracefs is not mounted at {} and mounting it failed: {}",
                                 kTracefs, std::strerror(errno));
            return std::nullopt;
        }
    }
    const std::string path = events + "/" + event + "/id";
    std::ifstream in(path);
    uint64_t id = 0;
    if (!(in >> id)) {
        *error = fmt::format("cannot read the tracepoint id {}: {}", path,
                             readable(path) ? "not a number" : std::strerror(errno));
        return std::nullopt;
    }
    return id;
}

namespace {

struct CounterSpec {
    Counter counter;
    uint32_t type;
    uint64_t config;  // for the tracepoints, filled in from tracefs
    const char* what;
    const SyscallList* filter;
};

// "0-1,4" -> {0, 1, 4}
std::vector<int> online_cpus() {
    std::ifstream in("/sys/devices/system/cpu/online");
    std::string list;
    std::vector<int> cpus;
    if (!(in >> list)) return cpus;
    std::istringstream ranges(list);
    for (std::string range; std::getline(ranges, range, ',');) {
        int first = 0, last = 0;
        char dash = 0;
        std::istringstream r(range);
        if (!(r >> first)) continue;
        last = (r >> dash >> last) ? last : first;
        for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
    }
    return cpus;
}

}  // namespace

void TreeCounters::open(Counter c, const perf_event_attr& attr, const std::vector<int>& pids,
                        const std::vector<int>& cpus, unsigned long flags) {
    std::vector<int> fds;
    auto fail = [&](std::string why) {
        for (int fd : fds) close(fd);
        errors_[size_t(c)] = std::move(why);
    };
    for (size_t i = 0; i < cpus.size(); ++i) {
        perf_event_attr copy = attr;
        int fd = int(syscall(SYS_perf_event_open, &copy, pids[i], cpus[i], -1,
                             flags | static_cast<unsigned long>(PERF_FLAG_FD_CLOEXEC)));
        if (fd < 0) return fail(open_error(counter_name(c), errno));
        fds.push_back(fd);
    }
    fds_[size_t(c)] = std::move(fds);
}

namespace {

std::vector<CounterSpec> counter_specs(std::string* tracefs_error, bool* have_tracepoint) {
    auto sys_enter = tracepoint_id("raw_syscalls/sys_enter", tracefs_error);
    *have_tracepoint = sys_enter.has_value();
    uint64_t id = sys_enter.value_or(0);
    return {
        {Counter::task_clock_ns, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK, "task-clock",
         nullptr},
        {Counter::context_switches, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES,
         "context-switches", nullptr},
        {Counter::page_faults, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS, "page-faults",
         nullptr},
        {Counter::syscalls, PERF_TYPE_TRACEPOINT, id, "raw_syscalls:sys_enter", nullptr},
        {Counter::wait_calls, PERF_TYPE_TRACEPOINT, id, "raw_syscalls:sys_enter", &wait_syscalls()},
        {Counter::io_calls, PERF_TYPE_TRACEPOINT, id, "raw_syscalls:sys_enter", &io_syscalls()},
    };
}

}  // namespace

void TreeCounters::open_all(const std::vector<int>& pids, const std::vector<int>& cpus,
                            unsigned long flags, bool inherit) {
    std::string tracefs_error;
    bool have_tracepoint = false;
    for (const auto& spec : counter_specs(&tracefs_error, &have_tracepoint)) {
        Counter c = spec.counter;
        if (spec.type == PERF_TYPE_TRACEPOINT && !have_tracepoint) {
            errors_[size_t(c)] = tracefs_error;
            continue;
        }
        perf_event_attr attr{};
        attr.size = sizeof attr;
        attr.type = spec.type;
        attr.config = spec.config;
        attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
        attr.disabled = 1;  // enabled at exec (inherit), or once its filter is set (cgroup)
        attr.inherit = inherit;
        attr.enable_on_exec = inherit;
        open(c, attr, pids, cpus, flags);
        auto& fds = fds_[size_t(c)];
        if (spec.filter) {
            std::string text = syscall_filter(*spec.filter);
            for (int fd : fds)
                if (ioctl(fd, PERF_EVENT_IOC_SET_FILTER, text.c_str()) != 0) {
                    errors_[size_t(c)] = fmt::format("PERF_EVENT_IOC_SET_FILTER(\"{}\"): {}", text,
                                                     std::strerror(errno));
                    for (int open_fd : fds) close(open_fd);
                    fds.clear();
                    break;
                }
        }
        if (!inherit)
            for (int fd : fds) ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
    }
}

TreeCounters::TreeCounters(pid_t pid) {
    if (disabled_by_environment()) {
        errors_.fill("perf counters disabled by MUXBENCH_DISABLE_PERF");
        return;
    }
    open_all({pid}, {-1}, 0, true);
}

TreeCounters TreeCounters::on_cgroup(const std::string& cgroup_dir) {
    TreeCounters counters;
    counters.cgroup_mode_ = true;
    if (disabled_by_environment()) {
        counters.errors_.fill("perf counters disabled by MUXBENCH_DISABLE_PERF");
        return counters;
    }
    int dir = ::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    std::vector<int> cpus = online_cpus();
    if (dir < 0 || cpus.empty()) {
        counters.errors_.fill(dir < 0 ? fmt::format("open {}: {}", cgroup_dir, std::strerror(errno))
                                      : "no online CPU in /sys/devices/system/cpu/online");
        if (dir >= 0) close(dir);
        return counters;
    }
    counters.open_all(std::vector<int>(cpus.size(), dir), cpus, PERF_FLAG_PID_CGROUP, false);
    close(dir);  // each counter holds the cgroup
    return counters;
}

const char* TreeCounters::mode() const {
    for (const auto& fds : fds_)
        if (!fds.empty()) return cgroup_mode_ ? "cgroup" : "inherit";
    return "none";
}

TreeCounters::~TreeCounters() {
    close_all();
}

void TreeCounters::close_all() {
    for (auto& fds : fds_) {
        for (int fd : fds) close(fd);
        fds.clear();
    }
}

TreeCounters::TreeCounters(TreeCounters&& other) noexcept
    : fds_(std::move(other.fds_)),
      errors_(std::move(other.errors_)),
      cgroup_mode_(other.cgroup_mode_) {
    for (auto& fds : other.fds_) fds.clear();
}

TreeCounters& TreeCounters::operator=(TreeCounters&& other) noexcept {
    if (this != &other) {
        close_all();
        fds_ = std::move(other.fds_);
        errors_ = std::move(other.errors_);
        cgroup_mode_ = other.cgroup_mode_;
        for (auto& fds : other.fds_) fds.clear();
    }
    return *this;
}

CounterReading TreeCounters::read(Edge edge) const {
    CounterReading reading;
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    reading.monotonic_ns = int64_t(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
    auto read_one = [&](size_t i) {
        if (fds_[i].empty()) return;
        CounterValue sum;  // over the CPUs, in cgroup mode
        for (int fd : fds_[i]) {
            uint64_t raw[3] = {};  // value, time enabled, time running
            if (::read(fd, raw, sizeof raw) != ssize_t(sizeof raw)) return;
            sum.value += raw[0], sum.time_enabled_ns += raw[1], sum.time_running_ns += raw[2];
        }
        reading.values[i] = sum;
    };
    const size_t every_call = size_t(Counter::syscalls);
    if (edge == Edge::opening) read_one(every_call);
    for (size_t i = 0; i < kCounters; ++i)
        if (i != every_call) read_one(i);
    if (edge == Edge::closing) read_one(every_call);
    return reading;
}

}  // namespace mux::sweep
