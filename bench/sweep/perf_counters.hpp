// The kernel's own running totals for a whole process tree, living or exited: perf_event_open
// counters on the tree's cgroup (one per CPU), or, where there is none, on the root process
// before it execs with inherit set. See perf_counters.cpp for how, what each costs, and
// their limits.
#pragma once

#include <sys/types.h>

#include <linux/perf_event.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mux::sweep {

enum class Counter {
    task_clock_ns,     // CPU time, user and kernel, of every task of the tree
    context_switches,  // voluntary and involuntary
    page_faults,       // minor and major
    syscalls,          // raw_syscalls:sys_enter, every call
    wait_calls,        // the same tracepoint, filtered to the calls that wait (wait_syscalls())
    io_calls,          // the same tracepoint, filtered to the calls that move bytes (io_syscalls())
};
inline constexpr size_t kCounters = 6;
// The counter's name in results.json: "task_clock_ns", "context_switches", ...
const char* counter_name(Counter c);

struct CounterValue {
    uint64_t value = 0;
    // PERF_FORMAT_TOTAL_TIME_ENABLED and _RUNNING, summed over the tree like the value: a
    // counter that ran less than it was enabled was multiplexed off the PMU and undercounts.
    uint64_t time_enabled_ns = 0;
    uint64_t time_running_ns = 0;
};

struct CounterReading {
    int64_t monotonic_ns = 0;  // CLOCK_MONOTONIC just before the first counter was read
    std::array<std::optional<CounterValue>, kCounters> values;  // nullopt: not open or unreadable
};

// Syscall numbers (this architecture's native ABI) by name.
using SyscallList = std::vector<std::pair<const char*, long>>;
// epoll_wait, epoll_pwait, epoll_pwait2, poll, ppoll, select, pselect6, io_uring_enter
const SyscallList& wait_syscalls();
// read, readv, pread64, preadv, preadv2, recvfrom, recvmsg, recvmmsg and their write and send
// counterparts, and sendfile: what a server calls to move a request's bytes.
const SyscallList& io_syscalls();
// "id == 232 || id == 281 || ...": a filter for raw_syscalls:sys_enter.
std::string syscall_filter(const SyscallList& calls);

// The id of a tracepoint ("raw_syscalls/sys_enter") from tracefs, mounting tracefs at
// /sys/kernel/tracing first when it is absent and this process may. nullopt with *error.
std::optional<uint64_t> tracepoint_id(const std::string& event, std::string* error);

class TreeCounters {
  public:
    TreeCounters() = default;
    // Inherited counters on `pid`, a child of this process that has not exec'd yet (see
    // SpawnOptions::before_exec): counting starts when it execs. A counter that cannot be
    // opened stays closed with its reason; the others are unaffected. MUXBENCH_DISABLE_PERF=1
    // in the environment closes them all (for tests of the fallback).
    explicit TreeCounters(pid_t pid);
    // Counters on every task in the cgroup at `cgroup_dir` (and its descendants), one per
    // online CPU, counting from now. Each counter is open on every CPU or closed with its
    // reason. MUXBENCH_DISABLE_PERF=1 closes them all.
    static TreeCounters on_cgroup(const std::string& cgroup_dir);
    ~TreeCounters();
    TreeCounters(TreeCounters&& other) noexcept;
    TreeCounters& operator=(TreeCounters&& other) noexcept;
    TreeCounters(const TreeCounters&) = delete;
    TreeCounters& operator=(const TreeCounters&) = delete;

    bool is_open(Counter c) const { return !fds_[size_t(c)].empty(); }
    // How the open counters follow the tree: "cgroup" or "inherit"; "none" when none is open.
    const char* mode() const;
    // Why a counter is closed ("" when open).
    const std::string& error(Counter c) const { return errors_[size_t(c)]; }
    // Every open counter, for the root and all its descendants, living and exited. Counters
    // are read one after the other while the tree runs; at a window's opening the every-call
    // counter is read first and at its closing last, so that its window holds the filtered
    // counters' windows and `syscalls` is never less than `wait_calls` + `io_calls`.
    enum class Edge { opening, closing };
    CounterReading read(Edge edge = Edge::opening) const;

  private:
    // Opens counter c as attr describes, for (pid, cpu) pairs; all of them or none.
    void open(Counter c, const perf_event_attr& attr, const std::vector<int>& pids,
              const std::vector<int>& cpus, unsigned long flags);
    void open_all(const std::vector<int>& pids, const std::vector<int>& cpus, unsigned long flags,
                  bool inherit);
    void close_all();
    std::array<std::vector<int>, kCounters> fds_;  // one per CPU in cgroup mode
    std::array<std::string, kCounters> errors_;
    bool cgroup_mode_ = false;
};

}  // namespace mux::sweep
