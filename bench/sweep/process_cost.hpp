// What /proc shows of a server's process tree, read from outside: the server's memory at the
// end of the window, and the fallback for a cost figure whose kernel counter (perf_counters,
// run_cgroup) is unavailable. See process_cost.cpp for the accounting rules and their limits.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mux::sweep {

// One living (or zombie) process of the tree, as /proc showed it.
struct ProcessReading {
    pid_t pid = 0;
    pid_t ppid = 0;
    uint64_t start_ticks = 0;  // /proc/PID/stat starttime: tells a reused pid from the original
    bool zombie = false;
    // CPU of this process (all its threads, living and dead) and of the children it reaped.
    uint64_t user_ticks = 0;
    uint64_t system_ticks = 0;
    uint64_t reaped_user_ticks = 0;    // cutime
    uint64_t reaped_system_ticks = 0;  // cstime
    // Time on CPU of the living threads, in ns (/proc/PID/task/TID/schedstat): exact, where
    // utime and stime are truncated to whole ticks per process.
    uint64_t runtime_ns = 0;
    // Page faults of all its threads (minflt + majflt), and of the children it reaped.
    uint64_t faults = 0;
    uint64_t reaped_faults = 0;  // cminflt + cmajflt
    // Summed over the living threads only: /proc keeps no count for dead threads or children.
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    // /proc/PID/io: all threads, living and dead, plus every descendant this process reaped.
    uint64_t read_syscalls = 0;   // syscr
    uint64_t write_syscalls = 0;  // syscw
    uint64_t peak_rss_bytes = 0;  // VmHWM
    uint64_t rss_bytes = 0;       // VmRSS
    uint64_t pss_bytes = 0;       // Pss from smaps_rollup (0 for a zombie: its memory is gone)
    // Pss_Anon from smaps_rollup: anonymous pages, each shared one (copy-on-write after fork)
    // counted 1/n in each of its n sharers, so the tree's sum counts every page once.
    uint64_t anon_pss_bytes = 0;
    bool anon_pss_shown = true;    // false when smaps_rollup has no Pss_Anon (Linux before 5.7)
    bool ignores_sigchld = false;  // SigIgn: its children are reaped by the kernel
};

struct ProcessTreeSample {
    int64_t monotonic_ns = 0;  // CLOCK_MONOTONIC when the walk started
    pid_t root = 0;
    bool root_alive = false;
    std::vector<ProcessReading> processes;  // root first, then descendants parent before child
};

// Reads the process rooted at `root` and every descendant alive (or zombie) at this moment,
// without stopping any of them. A process that vanishes mid-walk is left out. root_alive is
// false if the root is unreadable.
ProcessTreeSample sample_process_tree(pid_t root);

// The figures /proc gives for the window between two samples of one root. Each figure that
// /proc cannot give soundly has its reason in `problems`, keyed by the figure's name
// ("cpu", "page_faults", "io_calls", "context_switches"); the others stand.
struct ServerCost {
    double wall_s = 0;
    uint64_t user_cpu_us = 0;     // whole tree, reaped descendants included
    uint64_t system_cpu_us = 0;   // whole tree, reaped descendants included
    uint64_t page_faults = 0;     // whole tree, reaped descendants included
    uint64_t read_syscalls = 0;   // read-family syscalls only (see process_cost.cpp)
    uint64_t write_syscalls = 0;  // write-family syscalls only
    // Living tasks only: given only for a tree that had no descendant at either sample.
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    uint64_t root_peak_rss_bytes = 0;  // VmHWM of the root at the end: its lifetime peak
    uint64_t start_pss_bytes = 0;      // root + living descendants
    uint64_t end_pss_bytes = 0;
    uint64_t end_rss_bytes = 0;  // root + living descendants (counts shared pages many times)
    int descendants_at_start = 0;
    int descendants_at_end = 0;
    std::map<std::string, std::string> problems;  // figure -> why /proc cannot give it
};

// The cost of the window between two samples of the same root.
ServerCost cost_between(const ProcessTreeSample& start, const ProcessTreeSample& end);

// The tree's anonymous memory (the sum of Pss_Anon), or nullopt with *why: a process whose
// smaps_rollup shows no Pss_Anon, or a root that is gone.
std::optional<uint64_t> tree_anon_bytes(const ProcessTreeSample& sample, std::string* why);

// What wait4 reports for a server once it exited (mux::Subprocess::usage()): its whole life,
// start-up and shutdown included, plus every descendant it reaped, context switches of reaped
// children included.
struct LifetimeUsage {
    uint64_t user_cpu_us = 0;
    uint64_t system_cpu_us = 0;
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    uint64_t max_rss_bytes = 0;  // the largest single process, not a sum
};
LifetimeUsage lifetime_usage(const rusage& usage);

}  // namespace mux::sweep
