// Notes about measuring a server's cost from /proc
//
// The tree at time t, T(t), is the root plus every descendant alive (zombies included) at t,
// found through /proc/PID/task/TID/children of every thread, parent read before child. A
// process is identified by (pid, starttime), so a reused pid is a new process.
//
// CPU. For a process P, /proc/P/stat gives utime+stime for all its threads, living and dead,
// and cutime+cstime for every child P reaped, which in turn include what that child had
// reaped (wait_task_zombie adds the child's own cutime), so a reaped subtree's whole CPU
// lands in its reaper. Let cum(P) = utime+stime+cutime+cstime and C(t) = sum of cum(P) over
// T(t). A living process is in T and not yet in its parent's cutime; a reaped one is in its
// parent's cutime and no longer in T: nothing is counted twice, and the window's CPU is
// C(end) - C(start) whatever was born, reaped, or both between the samples:
//   - alive at start, reaped by end: its cum at start leaves T, its cum at exit arrives in
//     the reaper's cutime; the difference is what it used in the window;
//   - born in the window: counted whole, in T(end) or in its reaper's cutime.
// The walk reads a parent before its children, so a child reaped between the two reads
// would be in neither. The reaper is therefore stopped (SIGSTOP) for the walk when it has
// children, and continued after: a child that exits meanwhile stays a zombie, whose /proc
// figures are intact, until the walk is over. Fork's children serve on while their parent,
// which only accepts and reaps, waits a few milliseconds.
// What breaks it: a descendant whose parent dies is re-parented outside the tree (init or a
// subreaper) and taken from T; C then falls and a problem is recorded. The root itself
// must be alive at both samples.
// Precision: utime and stime are shown in ticks of 1/CLK_TCK s (10 ms), truncated per field
// per process. Summed over 100 fork children that each use a few ms per second, truncation
// lost most of the CPU (0.25 s read for 0.8 s used). So a living process's CPU is taken from
// the nanosecond run time in /proc/PID/task/TID/schedstat, summed over its living threads
// (the servers are single-threaded; a dead thread's run time is not in any schedstat), and
// the ticks only split that total into user and system. Reaped CPU (cutime, cstime) is
// summed in nanoseconds in the kernel and truncated once, at the reaper, when read.
//
// Syscalls. /proc/P/io syscr and syscw hold P's threads, living and dead, and, like CPU,
// every descendant P reaped (wait_task_zombie adds the child's ioac into the parent's
// signal->ioac; tests/process_cost_test.cpp checks it through a reaped grandchild). The same
// sum rule applies. They count only the VFS read and write families (read, readv, pread,
// sendfile's read side; write, writev, pwrite): send, recv, sendmsg, recvmsg, accept,
// epoll_wait, poll and select are not counted at all. A server that talks over sockets with
// send/recv shows (almost) no syscalls here; that is the kernel's definition, not a bug.
//
// Context switches. /proc/P/task/T/status gives each living thread's own counts; nothing in
// /proc keeps the counts of dead threads or reaped children (the kernel keeps them in the
// signal struct for getrusage and wait4 only). Without help, switches are summed over the
// processes alive at end, minus their counts at start when they were already alive then: a
// descendant that exits in the window loses its switches since the start sample
// (switches_complete turns false) and one born and reaped in the window is invisible. That
// is most of the picture for fork under churn, where every request is a child living only
// inside the window (the tests measure 0-2 switches for children that made 40).
// The fix is taskstats (task_exits.hpp): the kernel sends every exiting task's counts to a
// registered listener. With those records, switches = sum over T(end) + sum over the tree's
// exited tasks - sum over T(start), which is exact by the same argument as for CPU. Limits:
// a task exiting while a sample is being walked can be counted whole or lost; a record is
// attributed by pid, so an unrelated process that reuses a tree pid (pid_max is 32768 here)
// and exits in the window is counted too; a lost batch (socket overflow) is reported.
// wait4's rusage at the end of the server's life (lifetime_usage) also includes reaped
// children, but for the whole life, start-up and ramp included: a check, not a window.
//
// Memory. VmHWM of the root is its peak RSS over its whole life. For a tree, RSS would count
// pages shared after fork once per process, so the tree's memory is the sum of proportional
// set sizes (Pss, smaps_rollup): a page shared by n processes counts 1/n in each, and the
// sum is what the tree really holds. A zombie has no memory left.
#include "process_cost.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_set>
#include <utility>

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
    }
    if (auto rollup = read_proc_file(dir + "/smaps_rollup"))
        out.pss_bytes = field_value(*rollup, "Pss") * 1024;
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

namespace {
bool has_children(pid_t pid) {
    std::string task_dir = "/proc/" + std::to_string(pid) + "/task/";
    for (const auto& tid : thread_ids(pid))
        if (auto list = read_proc_file(task_dir + tid + "/children"))
            if (list->find_first_not_of(" \n") != std::string::npos) return true;
    return false;
}

char process_state(pid_t pid) {
    auto stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return '?';
    auto close = stat->rfind(')');  // the name may hold spaces and parentheses
    return close != std::string::npos && close + 2 < stat->size() ? (*stat)[close + 2] : '?';
}

// SIGSTOPs pid and waits (at most 100 ms) until it is stopped; continues it on destruction.
class HeldReaper {
  public:
    explicit HeldReaper(pid_t pid) : pid_(pid) {
        if (kill(pid_, SIGSTOP) != 0) return;
        held_ = true;
        for (int i = 0; i < 1000 && process_state(pid_) != 'T'; ++i) usleep(100);
    }
    ~HeldReaper() {
        if (held_) kill(pid_, SIGCONT);
    }
    HeldReaper(const HeldReaper&) = delete;
    HeldReaper& operator=(const HeldReaper&) = delete;

  private:
    pid_t pid_;
    bool held_ = false;
};
}  // namespace

ProcessTreeSample sample_process_tree(pid_t root) {
    std::optional<HeldReaper> hold;
    if (has_children(root)) hold.emplace(root);
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
    uint64_t cpu_ns = 0;  // living run time plus reaped CPU
    uint64_t read_syscalls = 0;
    uint64_t write_syscalls = 0;
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
        sum.cpu_ns += p.runtime_ns + (p.reaped_user_ticks + p.reaped_system_ticks) * ns_per_tick();
        sum.read_syscalls += p.read_syscalls;
        sum.write_syscalls += p.write_syscalls;
        sum.pss_bytes += p.pss_bytes;
        sum.rss_bytes += p.rss_bytes;
    }
    return sum;
}

// end - start, or 0 with a problem noted when the tree lost more than it gained.
uint64_t growth(uint64_t start, uint64_t end, const char* what, ServerCost& cost) {
    if (end >= start) return end - start;
    cost.problems.push_back(std::string(what) + " fell from " + std::to_string(start) + " to " +
                            std::to_string(end) +
                            ": a descendant left the tree without being reaped inside it");
    return 0;
}

void count_switches(const ProcessTreeSample& start, const ProcessTreeSample& end,
                    ServerCost& cost) {
    std::map<Identity, const ProcessReading*> at_start;
    for (const auto& p : start.processes) at_start[{p.pid, p.start_ticks}] = &p;
    for (const auto& p : end.processes) {
        auto found = at_start.find({p.pid, p.start_ticks});
        uint64_t voluntary = p.voluntary_switches, involuntary = p.involuntary_switches;
        if (found != at_start.end()) {
            // A thread that exited takes its count along, so a process's sum can shrink.
            voluntary -= std::min(voluntary, found->second->voluntary_switches);
            involuntary -= std::min(involuntary, found->second->involuntary_switches);
            at_start.erase(found);
        } else {
            ++cost.descendants_appeared;
        }
        cost.voluntary_switches += voluntary;
        cost.involuntary_switches += involuntary;
    }
    cost.descendants_vanished = static_cast<int>(at_start.size());
    cost.switches_complete = at_start.empty();
}

}  // namespace

ServerCost cost_between(const ProcessTreeSample& start, const ProcessTreeSample& end) {
    ServerCost cost;
    cost.wall_s = static_cast<double>(end.monotonic_ns - start.monotonic_ns) / 1e9;
    if (!start.root_alive || !end.root_alive || start.root != end.root) {
        cost.problems.push_back("root pid " + std::to_string(start.root) + " at start, " +
                                std::to_string(end.root) +
                                " at end, alive: " + (start.root_alive ? "yes" : "no") + "/" +
                                (end.root_alive ? "yes" : "no") + "; the cost is unknown");
        return cost;
    }
    if (start.processes.front().start_ticks != end.processes.front().start_ticks) {
        cost.problems.push_back("root pid " + std::to_string(start.root) +
                                " was reused by another process between the samples");
        return cost;
    }
    const TreeTotals before = totals(start), after = totals(end);
    // The exact total, split into user and system in the proportion the ticks show.
    // A child reaped in the window moves from exact run time into its reaper's cutime and
    // cstime, which are read truncated to a tick each: the total may dip by up to two ticks
    // per reaper without anything having left the tree.
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
            ? growth(before.cpu_ns, after.cpu_ns, "tree CPU time", cost) / 1000
            : (after.cpu_ns > before.cpu_ns ? after.cpu_ns - before.cpu_ns : 0) / 1000;
    uint64_t user_ticks =
        after.user_ticks >= before.user_ticks ? after.user_ticks - before.user_ticks : 0;
    uint64_t system_ticks =
        after.system_ticks >= before.system_ticks ? after.system_ticks - before.system_ticks : 0;
    uint64_t all_ticks = user_ticks + system_ticks;
    cost.user_cpu_us = all_ticks ? cpu_us * user_ticks / all_ticks : 0;
    cost.system_cpu_us = cpu_us - cost.user_cpu_us;
    cost.read_syscalls = growth(before.read_syscalls, after.read_syscalls, "tree syscr", cost);
    cost.write_syscalls = growth(before.write_syscalls, after.write_syscalls, "tree syscw", cost);
    count_switches(start, end, cost);
    // The root counts as "appeared" in count_switches only if it changed, which returned above.
    cost.descendants_at_start = static_cast<int>(start.processes.size()) - 1;
    cost.descendants_at_end = static_cast<int>(end.processes.size()) - 1;
    cost.root_peak_rss_bytes = end.processes.front().peak_rss_bytes;
    cost.start_pss_bytes = before.pss_bytes;
    cost.end_pss_bytes = after.pss_bytes;
    cost.end_rss_bytes = after.rss_bytes;
    return cost;
}

namespace {
double per(double amount, uint64_t count) {
    return count == 0 ? 0.0 : amount / static_cast<double>(count);
}
}  // namespace

double cpu_us_per_request(const ServerCost& cost, uint64_t requests) {
    return per(static_cast<double>(cost.user_cpu_us + cost.system_cpu_us), requests);
}

double syscalls_per_request(const ServerCost& cost, uint64_t requests) {
    return per(static_cast<double>(cost.read_syscalls + cost.write_syscalls), requests);
}

double context_switches_per_request(const ServerCost& cost, uint64_t requests) {
    return per(static_cast<double>(cost.voluntary_switches + cost.involuntary_switches), requests);
}

double memory_bytes_per_connection(const ServerCost& cost, uint64_t connections) {
    if (cost.end_pss_bytes <= cost.start_pss_bytes) return 0.0;
    return per(static_cast<double>(cost.end_pss_bytes - cost.start_pss_bytes), connections);
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

namespace mux::sweep {

namespace {

// Pids of the tree: both samples' processes, then every exited task whose thread group is
// one of them or whose parent is, until nothing is added (a grandchild's record can arrive
// before its parent's).
std::unordered_set<pid_t> tree_pids(const ProcessTreeSample& start, const ProcessTreeSample& end,
                                    const std::vector<TaskExit>& exits) {
    std::unordered_set<pid_t> tree;
    for (const auto* sample : {&start, &end})
        for (const auto& p : sample->processes) tree.insert(p.pid);
    for (bool grew = true; grew;) {
        grew = false;
        for (const auto& e : exits)
            if (!tree.contains(e.tgid) && tree.contains(e.ppid)) grew = tree.insert(e.tgid).second;
    }
    return tree;
}

uint64_t sum_switches(const ProcessTreeSample& sample, bool voluntary) {
    uint64_t sum = 0;
    for (const auto& p : sample.processes)
        sum += voluntary ? p.voluntary_switches : p.involuntary_switches;
    return sum;
}

}  // namespace

ServerCost cost_between(const ProcessTreeSample& start, const ProcessTreeSample& end,
                        const TaskExits& exits) {
    ServerCost cost = cost_between(start, end);
    if (!start.root_alive || !end.root_alive) return cost;
    // Every task of the tree is in the end sample, in an exit record, or both gone and
    // counted in neither; so end + exited - start is the window's total, with no per-process
    // matching (a reused pid only adds one more term to the same sum).
    auto tree = tree_pids(start, end, exits.exits);
    uint64_t voluntary = sum_switches(end, true), involuntary = sum_switches(end, false);
    for (const auto& e : exits.exits) {
        if (!tree.contains(e.tgid)) continue;
        voluntary += e.voluntary_switches;
        involuntary += e.involuntary_switches;
        ++cost.exited_tasks_counted;
    }
    cost.voluntary_switches =
        growth(sum_switches(start, true), voluntary, "voluntary switches", cost);
    cost.involuntary_switches =
        growth(sum_switches(start, false), involuntary, "involuntary switches", cost);
    cost.switches_complete = exits.lost_batches == 0;
    if (!cost.switches_complete)
        cost.problems.push_back("taskstats lost " + std::to_string(exits.lost_batches) +
                                " batches of exit records: switches are a lower bound");
    return cost;
}

}  // namespace mux::sweep
