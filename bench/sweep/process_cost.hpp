// What a server costs, read from /proc from outside its process tree, so that no model can
// report its own cost wrongly. See process_cost.cpp for the accounting rules and their limits.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "task_exits.hpp"

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
    // Summed over the living threads only: /proc keeps no count for dead threads or children.
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    // /proc/PID/io: all threads, living and dead, plus every descendant this process reaped.
    uint64_t read_syscalls = 0;   // syscr
    uint64_t write_syscalls = 0;  // syscw
    uint64_t peak_rss_bytes = 0;  // VmHWM
    uint64_t rss_bytes = 0;       // VmRSS
    uint64_t pss_bytes = 0;       // Pss from smaps_rollup (0 for a zombie: its memory is gone)
};

struct ProcessTreeSample {
    int64_t monotonic_ns = 0;  // CLOCK_MONOTONIC when the walk started
    pid_t root = 0;
    bool root_alive = false;
    std::vector<ProcessReading> processes;  // root first, then descendants parent before child
};

// Reads the process rooted at `root` and every descendant alive (or zombie) at this moment.
// A process that vanishes mid-walk is left out. root_alive is false if the root is unreadable.
ProcessTreeSample sample_process_tree(pid_t root);

struct ServerCost {
    double wall_s = 0;
    uint64_t user_cpu_us = 0;    // whole tree, reaped descendants included
    uint64_t system_cpu_us = 0;  // whole tree, reaped descendants included
    // Without taskstats records, lower bounds: descendants that exited during the window take
    // their switches with them. With them, the window's total.
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    bool switches_complete = true;     // false when a descendant alive at start vanished
    uint64_t read_syscalls = 0;        // read-family syscalls only (see process_cost.cpp)
    uint64_t write_syscalls = 0;       // write-family syscalls only
    uint64_t root_peak_rss_bytes = 0;  // VmHWM of the root at the end: its lifetime peak
    uint64_t start_pss_bytes = 0;      // root + living descendants
    uint64_t end_pss_bytes = 0;
    uint64_t end_rss_bytes = 0;  // root + living descendants (counts shared pages many times)
    int descendants_at_start = 0;
    int descendants_at_end = 0;
    int descendants_appeared = 0;  // alive at end, not at start
    int descendants_vanished = 0;  // alive at start, gone at end (reaped in the window)
    int exited_tasks_counted = 0;  // taskstats records of the tree added to the switches
    // Empty when the figures are sound; else why they are not (root gone, tree shrank).
    std::vector<std::string> problems;
};

// The cost of the window between two samples of the same root.
ServerCost cost_between(const ProcessTreeSample& start, const ProcessTreeSample& end);
// The same, with the switches of tasks that exited in the window added from taskstats:
// `exits` is what TaskExitRecorder::take() returned right after `end`, the previous take()
// having been called right before `start`. switches_complete is then false only if records
// were lost.
ServerCost cost_between(const ProcessTreeSample& start, const ProcessTreeSample& end,
                        const TaskExits& exits);

// Per-request and per-connection figures; 0 when the count is 0.
double cpu_us_per_request(const ServerCost& cost, uint64_t requests);
double syscalls_per_request(const ServerCost& cost, uint64_t requests);
double context_switches_per_request(const ServerCost& cost, uint64_t requests);
// (PSS of the tree at end - PSS at start) / connections, floored at 0. For this to mean
// "per connection", `start` must be the idle server before the connections were opened.
double memory_bytes_per_connection(const ServerCost& cost, uint64_t connections);

// What wait4 reports for a server once it exited (mux::Subprocess::usage()): its whole life,
// start-up and shutdown included, plus every descendant it reaped, context switches of reaped
// children included (the one figure /proc cannot give after the fact).
struct LifetimeUsage {
    uint64_t user_cpu_us = 0;
    uint64_t system_cpu_us = 0;
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    uint64_t max_rss_bytes = 0;  // the largest single process, not a sum
};
LifetimeUsage lifetime_usage(const rusage& usage);

}  // namespace mux::sweep
