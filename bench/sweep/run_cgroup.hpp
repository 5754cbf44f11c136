// A cgroup for one server run: the server and every descendant it forks live in it, so the
// kernel keeps their user and system time as one total, and whatever is left of the tree
// when the run ends can be found and killed. See run_cgroup.cpp for the rules.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mux::sweep {

struct CgroupCpu {
    uint64_t usage_us = 0;  // run time of every task that was ever in the group, exact
    uint64_t user_us = 0;   // its split into user and system follows the scheduler ticks
    uint64_t system_us = 0;
};

// What the v1 memory controller charged to the group, now.
struct CgroupMemory {
    // memory.kmem.usage_in_bytes: kernel memory the tree's tasks allocated (socket, file and
    // epoll structures, kernel stacks, page tables), tcp buffers not included
    uint64_t kernel_bytes = 0;
    // memory.kmem.tcp.usage_in_bytes: the tree's sockets' buffers (what /proc/net/sockstat
    // counts as TCP mem for the whole machine)
    uint64_t socket_bytes = 0;
};

// One directory per hierarchy the run uses: the one that gives CPU (cgroup v2 where a
// group's cpu.stat is there, else v1 cpuacct) and, where it is mounted, v1's memory
// hierarchy, for the tree's kernel and socket memory: a directory of the same name, joined
// by attach() like the first; see run_cgroup.cpp.
class RunCgroup {
  public:
    // Creates muxbench-<pid of this process>-<n> in the CPU hierarchy, beside this process's
    // own group there. MUXBENCH_DISABLE_CGROUP=1 in the environment creates nothing (for tests
    // of the fallback). On failure ok() is false and error() says why.
    RunCgroup();
    // Kills whatever is still in the group and removes it, whatever happened to the run.
    ~RunCgroup();
    RunCgroup(const RunCgroup&) = delete;
    RunCgroup& operator=(const RunCgroup&) = delete;

    bool ok() const { return !dirs_.empty(); }
    const std::string& error() const { return error_; }
    // "cgroup2" or "cgroup1" (cpuacct); "" when not ok.
    const std::string& hierarchy() const { return hierarchy_; }
    // The group's directory in the CPU hierarchy.
    std::string path() const { return ok() ? dirs_.front() : ""; }

    // Moves pid into the group (before it execs, so all it forks is born inside). The memory
    // group is joined too where there is one; failing that only loses the memory figures
    // (memory_error() says why).
    bool attach(pid_t pid, std::string* error);
    std::optional<CgroupCpu> read_cpu(std::string* error) const;
    // The run's group in the v1 memory hierarchy, "" when there is none: memory_error() says
    // why. MUXBENCH_DISABLE_MEMORY_CGROUP=1 makes none (for tests of the fallback).
    const std::string& memory_path() const { return memory_dir_; }
    const std::string& memory_error() const { return memory_error_; }
    std::optional<CgroupMemory> read_memory(std::string* error) const;
    // The processes in the group now (cgroup.procs).
    std::vector<pid_t> processes() const;
    // Freezes every task of the group, and any it forks meanwhile (cgroup v2's cgroup.freeze),
    // and waits until the kernel reports the group frozen (cgroup.events), at most `timeout`;
    // false with *error when it cannot (a v1 group has no cgroup.freeze). thaw() lets the
    // tasks run on, whether or not the freeze completed; remove() thaws first.
    bool freeze(std::chrono::milliseconds timeout, std::string* error);
    void thaw();
    // SIGKILLs every process in the group and removes it; false with *error if it could not
    // within a few seconds. The destructor calls it.
    bool remove(std::string* error);

  private:
    void make_memory_group(const std::string& name);

    std::vector<std::string> dirs_;  // the CPU group first, then the memory group if any
    std::string hierarchy_;
    std::string error_;
    std::string memory_dir_, memory_error_;
};

// Removes this tool's groups whose creating process is gone (a sweep killed with SIGKILL),
// killing what is left in them, also when its pid now belongs to another process. Groups of
// a sweep still running are kept, and no group that is not named muxbench-<pid>-<n> is
// touched. Returns the paths removed; *errors gets one
// line per group that could not be.
std::vector<std::string> remove_stale_cgroups(std::vector<std::string>* errors);

// From now on, SIGINT, SIGTERM and SIGHUP first empty and remove the groups that exist, then
// end the process as the signal would have.
void remove_cgroups_on_termination_signals();

}  // namespace mux::sweep
