// Notes about reading a server's cost from /proc
//
// Since the kernel counters (perf_counters.cpp, run_cgroup.cpp) took over, /proc serves two
// purposes: the tree's memory at the end of the window, and the fallback for a figure whose
// counter is unavailable (not root, perf_event_paranoid, no tracefs, no writable cgroup fs).
// The fallback is worse than the counters in the ways said below, which is why results
// record, per figure, which source gave it.
//
// The tree at time t, T(t), is the root plus every descendant alive (zombies included) at t,
// found through /proc/PID/task/TID/children of every thread, parent read before child. A
// process is identified by (pid, starttime), so a reused pid is a new process.
//
// CPU and page faults. For a process P, /proc/P/stat gives utime+stime (and minflt+majflt)
// for all its threads, living and dead, and cutime+cstime (cminflt+cmajflt) for every child
// P reaped, which in turn include what that child had reaped (wait_task_zombie adds the
// child's own cutime), so a reaped subtree lands whole in its reaper. Let cum(P) be the sum of
// both and C(t) the sum of cum(P) over T(t). A living process is in T and not yet in its
// parent's reaped total; a reaped one is in its parent's and no longer in T: nothing is
// counted twice, and the window's total is C(end) - C(start) whatever was born, reaped, or
// both between the samples. What breaks it:
//   - the walk reads a parent before its children, and no process is stopped for it (holding
//     the tree with SIGSTOP stopped the server inside the measured window), so a child reaped
//     between the two reads is in neither: an undercount, reported when C falls;
//   - a descendant whose parent dies is re-parented outside the tree and taken from T; C then
//     falls and the figure is reported as unsound;
//   - the root itself must be alive at both samples;
//   - children reaped by the kernel (SIGCHLD ignored, or SA_NOCLDWAIT) never reach their
//     parent's reaped totals: they leave the tree uncounted. A tree with a process that
//     ignores SIGCHLD (SigIgn in /proc/PID/status) has these figures refused; SA_NOCLDWAIT
//     with SIGCHLD's default action shows nowhere in /proc and cannot be told.
// Precision: utime and stime are ticks of 1/CLK_TCK s, truncated per process, which lost most
// of the CPU of 100 fork children using a few ms each. So a living process's CPU is its
// threads' nanosecond run time (/proc/PID/task/TID/schedstat; a dead thread's run time is in
// no schedstat, the servers are single-threaded), and the ticks only split it into user and
// system. Reaped CPU (cutime, cstime) is summed in ns in the kernel and truncated once, when
// read.
//
// I/O calls. /proc/P/io syscr and syscw hold P's threads, living and dead, and every
// descendant P reaped (the kernel adds a reaped child's ioac to its parent's); the same sum
// rule applies. They count only the VFS read and write families (read, readv, pread,
// sendfile's read side; write, writev, pwrite): send, recv, sendmsg, recvmsg are not counted.
// The servers use read and write, so for them this is the perf counter's io_calls.
//
// Context switches. /proc/P/task/T/status gives each living thread's own counts; nothing in
// /proc keeps the counts of dead threads or reaped children. So /proc gives the window's
// switches only for a tree that had no descendant at either sample and reaped none between
// them (its reaped fault count, which every forked child raises, did not move); otherwise the
// figure is left out with that reason.
//
// Memory. VmHWM of the root is its peak RSS over its whole life. For a tree, RSS would count
// pages shared after fork once per process, so the tree's memory is the sum of proportional
// set sizes (Pss, smaps_rollup): a page shared by n processes counts 1/n in each. Pss also
// counts file pages (libc, the binary), whose share falls when another process maps them
// (the load generator maps the same libc), so what a connection costs is read from the
// anonymous part alone, Pss_Anon: heap, stacks and the like, which only the tree's own
// processes share (copy-on-write after fork, each page split among its sharers), so the sum
// over the tree counts each anonymous page it holds exactly once. A zombie has no memory left.
#include "process_cost.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include <fmt/format.h>

namespace mux::sweep {

namespace {

std::optional<std::string> read_proc_file(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string text;
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            close(fd);
            return std::nullopt;
        }
        if (n == 0) break;
        text.append(chunk, static_cast<size_t>(n));
    }
    close(fd);
    return text;
}

uint64_t parse_u64(std::string_view text) {
    size_t begin = text.find_first_not_of(" \t");
    if (begin == std::string_view::npos) return 0;
    uint64_t value = 0;
    std::from_chars(text.data() + begin, text.data() + text.size(), value);
    return value;
}

// Value of "Key:   123 ..." in a /proc key-value file, 0 if absent.
uint64_t field_value(const std::string& text, std::string_view key) {
    size_t at = 0;
    while ((at = text.find(key, at)) != std::string::npos) {
        bool line_start = at == 0 || text[at - 1] == '\n';
        size_t colon = at + key.size();
        if (line_start && colon < text.size() && text[colon] == ':') {
            size_t eol = text.find('\n', colon);
            return parse_u64(std::string_view(text).substr(colon + 1, eol - colon - 1));
        }
        at = colon;
    }
    return 0;
}

// /proc/PID/stat; the command name may hold spaces and parentheses, so fields are counted
// from the last ')'. Field numbers follow proc(5).
bool read_stat(pid_t pid, ProcessReading& out) {
    auto text = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
    if (!text) return false;
    size_t close_paren = text->rfind(')');
    if (close_paren == std::string::npos) return false;
    std::istringstream fields(text->substr(close_paren + 2));
    std::vector<std::string> f;  // f[0] is field 3 (state)
    for (std::string token; fields >> token && f.size() < 20;) f.push_back(token);
    if (f.size() < 20) return false;
    out.zombie = f[0] == "Z";
    out.ppid = static_cast<pid_t>(parse_u64(f[1]));
    out.faults = parse_u64(f[7]) + parse_u64(f[9]);          // minflt + majflt
    out.reaped_faults = parse_u64(f[8]) + parse_u64(f[10]);  // cminflt + cmajflt
    out.user_ticks = parse_u64(f[11]);
    out.system_ticks = parse_u64(f[12]);
    out.reaped_user_ticks = parse_u64(f[13]);
    out.reaped_system_ticks = parse_u64(f[14]);
    out.start_ticks = parse_u64(f[19]);
    return true;
}

std::vector<std::string> thread_ids(pid_t pid) {
    std::vector<std::string> tids;
    std::error_code ec;
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec))
        tids.push_back(entry.path().filename().string());
    return tids;
}

// Switches summed over living threads, and the children each thread forked.
void read_threads(pid_t pid, ProcessReading& out, std::vector<pid_t>& children) {
    std::string task_dir = "/proc/" + std::to_string(pid) + "/task/";
    for (const auto& tid : thread_ids(pid)) {
        if (auto status = read_proc_file(task_dir + tid + "/status")) {
            out.voluntary_switches += field_value(*status, "voluntary_ctxt_switches");
            out.involuntary_switches += field_value(*status, "nonvoluntary_ctxt_switches");
        }
        if (auto schedstat = read_proc_file(task_dir + tid + "/schedstat"))
            out.runtime_ns += parse_u64(schedstat->substr(0, schedstat->find(' ')));
        if (auto list = read_proc_file(task_dir + tid + "/children")) {
            std::istringstream ids(*list);
            for (pid_t child; ids >> child;) children.push_back(child);
        }
    }
}

void read_memory_and_io(pid_t pid, ProcessReading& out) {
    std::string dir = "/proc/" + std::to_string(pid);
    if (auto status = read_proc_file(dir + "/status")) {
        out.peak_rss_bytes = field_value(*status, "VmHWM") * 1024;
        out.rss_bytes = field_value(*status, "VmRSS") * 1024;
        // SigIgn is a hex mask, bit n-1 for signal n.
        size_t at = status->find("\nSigIgn:");
        if (at != std::string::npos) {
            uint64_t mask = std::strtoull(status->c_str() + at + 8, nullptr, 16);
            out.ignores_sigchld = (mask >> (SIGCHLD - 1)) & 1;
        }
    }
    if (auto rollup = read_proc_file(dir + "/smaps_rollup")) {
        out.pss_bytes = field_value(*rollup, "Pss") * 1024;
        out.anon_pss_bytes = field_value(*rollup, "Pss_Anon") * 1024;
        // a zombie's rollup is empty: it holds nothing
        out.anon_pss_shown = rollup->empty() || rollup->find("\nPss_Anon:") != std::string::npos;
    }
    if (auto io = read_proc_file(dir + "/io")) {
        out.read_syscalls = field_value(*io, "syscr");
        out.write_syscalls = field_value(*io, "syscw");
    }
}

int64_t monotonic_now_ns() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

}  // namespace

ProcessTreeSample sample_process_tree(pid_t root) {
    ProcessTreeSample sample;
    sample.monotonic_ns = monotonic_now_ns();
    sample.root = root;
    std::deque<pid_t> pending{root};
    while (!pending.empty()) {
        pid_t pid = pending.front();
        pending.pop_front();
        ProcessReading reading;
        reading.pid = pid;
        // Parent before child: a child reaped between the two reads is missed (under-count)
        // rather than counted both alive and in its parent's cutime.
        if (!read_stat(pid, reading)) continue;
        std::vector<pid_t> children;
        read_threads(pid, reading, children);
        read_memory_and_io(pid, reading);
        if (pid == root) sample.root_alive = true;
        sample.processes.push_back(reading);
        pending.insert(pending.end(), children.begin(), children.end());
    }
    return sample;
}

namespace {

using Identity = std::pair<pid_t, uint64_t>;  // pid and start time

struct TreeTotals {
    uint64_t user_ticks = 0;
    uint64_t system_ticks = 0;
    uint64_t reaped_ticks = 0;
    uint64_t cpu_ns = 0;  // living run time plus reaped CPU
    uint64_t faults = 0;
    uint64_t reaped_faults = 0;
    uint64_t read_syscalls = 0;
    uint64_t write_syscalls = 0;
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    uint64_t pss_bytes = 0;
    uint64_t rss_bytes = 0;
};

uint64_t ns_per_tick() {
    return 1'000'000'000 / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
}

TreeTotals totals(const ProcessTreeSample& sample) {
    TreeTotals sum;
    for (const auto& p : sample.processes) {
        sum.user_ticks += p.user_ticks + p.reaped_user_ticks;
        sum.system_ticks += p.system_ticks + p.reaped_system_ticks;
        sum.reaped_ticks += p.reaped_user_ticks + p.reaped_system_ticks;
        sum.cpu_ns += p.runtime_ns + (p.reaped_user_ticks + p.reaped_system_ticks) * ns_per_tick();
        sum.faults += p.faults + p.reaped_faults;
        sum.reaped_faults += p.reaped_faults;
        sum.read_syscalls += p.read_syscalls;
        sum.write_syscalls += p.write_syscalls;
        sum.voluntary_switches += p.voluntary_switches;
        sum.involuntary_switches += p.involuntary_switches;
        sum.pss_bytes += p.pss_bytes;
        sum.rss_bytes += p.rss_bytes;
    }
    return sum;
}

// end - start, or 0 with the figure's problem noted when the tree lost more than it gained.
uint64_t growth(uint64_t start, uint64_t end, const char* figure, const char* what,
                ServerCost& cost) {
    if (end >= start) return end - start;
    cost.problems.emplace(figure, fmt::format("the tree's {} fell from {} to {} between the "
                                              "samples: a descendant left the tree unseen "
                                              "(reaped mid-walk, or re-parented outside it)",
                                              what, start, end));
    return 0;
}

// The window's CPU: the exact total split into user and system in the proportion the ticks
// show. A child reaped in the window moves from exact run time into its reaper's cutime and
// cstime, which are read truncated to a tick each: the total may dip by up to two ticks per
// reaper without anything having left the tree.
void count_cpu(const ProcessTreeSample& start, const ProcessTreeSample& end,
               const TreeTotals& before, const TreeTotals& after, ServerCost& cost) {
    std::map<Identity, uint64_t> reaped_at_start;
    for (const auto& p : start.processes)
        reaped_at_start[{p.pid, p.start_ticks}] = p.reaped_user_ticks + p.reaped_system_ticks;
    uint64_t reapers = 0;
    for (const auto& p : end.processes) {
        auto found = reaped_at_start.find({p.pid, p.start_ticks});
        uint64_t before_ticks = found == reaped_at_start.end() ? 0 : found->second;
        if (p.reaped_user_ticks + p.reaped_system_ticks > before_ticks) ++reapers;
    }
    uint64_t truncation_ns = 2 * ns_per_tick() * std::max<uint64_t>(1, reapers);
    uint64_t cpu_us =
        after.cpu_ns + truncation_ns < before.cpu_ns
            ? growth(before.cpu_ns, after.cpu_ns, "cpu", "CPU time (ns)", cost)
            : (after.cpu_ns > before.cpu_ns ? after.cpu_ns - before.cpu_ns : 0) / 1000;
    uint64_t user_ticks =
        after.user_ticks >= before.user_ticks ? after.user_ticks - before.user_ticks : 0;
    uint64_t system_ticks =
        after.system_ticks >= before.system_ticks ? after.system_ticks - before.system_ticks : 0;
    uint64_t all_ticks = user_ticks + system_ticks;
    if (all_ticks == 0 && cpu_us > 0)
        cost.problems.emplace("cpu_split", fmt::format("no clock tick of 1/{} s landed on the "
                                                       "tree in the window: user and system "
                                                       "cannot be told apart",
                                                       sysconf(_SC_CLK_TCK)));
    cost.user_cpu_us = all_ticks ? cpu_us * user_ticks / all_ticks : 0;
    cost.system_cpu_us = cpu_us - cost.user_cpu_us;
}

}  // namespace

ServerCost cost_between(const ProcessTreeSample& start, const ProcessTreeSample& end) {
    ServerCost cost;
    cost.wall_s = static_cast<double>(end.monotonic_ns - start.monotonic_ns) / 1e9;
    std::string lost;
    if (!start.root_alive || !end.root_alive || start.root != end.root)
        lost = fmt::format("root pid {} at start, {} at end, alive: {}/{}; the cost is unknown",
                           start.root, end.root, start.root_alive ? "yes" : "no",
                           end.root_alive ? "yes" : "no");
    else if (start.processes.front().start_ticks != end.processes.front().start_ticks)
        lost = fmt::format("root pid {} was reused by another process between the samples",
                           start.root);
    if (!lost.empty()) {
        for (const char* figure :
             {"cpu", "cpu_split", "page_faults", "io_calls", "context_switches", "memory"})
            cost.problems.emplace(figure, lost);
        return cost;
    }
    std::string auto_reaped;
    for (const auto* sample : {&start, &end})
        for (const auto& p : sample->processes)
            if (p.ignores_sigchld && auto_reaped.empty())
                auto_reaped = fmt::format(
                    "pid {} ignores SIGCHLD, so the kernel reaps its "
                    "children without adding their CPU, faults and I/O "
                    "to its own",
                    p.pid);
    if (!auto_reaped.empty())
        for (const char* figure : {"cpu", "cpu_split", "page_faults", "io_calls"})
            cost.problems.emplace(figure, auto_reaped);
    const TreeTotals before = totals(start), after = totals(end);
    count_cpu(start, end, before, after, cost);
    cost.page_faults = growth(before.faults, after.faults, "page_faults", "page faults", cost);
    cost.read_syscalls =
        growth(before.read_syscalls, after.read_syscalls, "io_calls", "syscr", cost);
    cost.write_syscalls =
        growth(before.write_syscalls, after.write_syscalls, "io_calls", "syscw", cost);
    cost.descendants_at_start = static_cast<int>(start.processes.size()) - 1;
    cost.descendants_at_end = static_cast<int>(end.processes.size()) - 1;
    if (cost.descendants_at_start > 0 || cost.descendants_at_end > 0 ||
        after.reaped_faults != before.reaped_faults || after.reaped_ticks != before.reaped_ticks)
        cost.problems.emplace(
            "context_switches",
            fmt::format("/proc keeps no count for tasks that exited, and this tree had {} "
                        "descendants at the start and {} at the end",
                        cost.descendants_at_start, cost.descendants_at_end));
    else if (after.voluntary_switches < before.voluntary_switches ||
             after.involuntary_switches < before.involuntary_switches)
        cost.problems.emplace("context_switches",
                              "a thread of the server exited in the window and took its "
                              "switches along");
    else {
        cost.voluntary_switches = after.voluntary_switches - before.voluntary_switches;
        cost.involuntary_switches = after.involuntary_switches - before.involuntary_switches;
    }
    cost.root_peak_rss_bytes = end.processes.front().peak_rss_bytes;
    cost.start_pss_bytes = before.pss_bytes;
    cost.end_pss_bytes = after.pss_bytes;
    cost.end_rss_bytes = after.rss_bytes;
    return cost;
}

std::optional<uint64_t> tree_anon_bytes(const ProcessTreeSample& sample, std::string* why) {
    if (!sample.root_alive) {
        *why = fmt::format("the server (pid {}) was gone when its memory was read", sample.root);
        return std::nullopt;
    }
    uint64_t sum = 0;
    for (const auto& p : sample.processes) {
        if (!p.anon_pss_shown) {
            *why = fmt::format("/proc/{}/smaps_rollup shows no Pss_Anon (Linux 5.7 and later do)",
                               p.pid);
            return std::nullopt;
        }
        sum += p.anon_pss_bytes;
    }
    return sum;
}

LifetimeUsage lifetime_usage(const rusage& usage) {
    auto us = [](const timeval& t) {
        return static_cast<uint64_t>(t.tv_sec) * 1'000'000 + static_cast<uint64_t>(t.tv_usec);
    };
    LifetimeUsage life;
    life.user_cpu_us = us(usage.ru_utime);
    life.system_cpu_us = us(usage.ru_stime);
    life.voluntary_switches = static_cast<uint64_t>(usage.ru_nvcsw);
    life.involuntary_switches = static_cast<uint64_t>(usage.ru_nivcsw);
    life.max_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // ru_maxrss is in KiB
    return life;
}

}  // namespace mux::sweep
