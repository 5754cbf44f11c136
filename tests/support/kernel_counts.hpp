// What the kernel counts about a test's server, for assertions about counts (never timings):
// system calls of one process from the syscalls:sys_enter_* tracepoints, and the CPU time of a
// whole process tree from a cgroup made for the test. Each reports why it is unavailable.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mux::test {

// Counts how often one process hits tracepoints, from the moment it is opened: for example
// {"syscalls/sys_enter_read", ""} for every read, {"syscalls/sys_exit_read", "ret < 0"} for
// the reads that failed. Needs perf_event_open on tracepoints (root, or a permissive
// perf_event_paranoid) and tracefs, which it mounts at /sys/kernel/tracing when absent.
struct Tracepoint {
    std::string name;    // SUBSYSTEM/EVENT under tracefs's events/
    std::string filter;  // a tracefs filter on the event's fields, or empty
};

class TracepointCounter {
  public:
    TracepointCounter(pid_t pid, const std::vector<Tracepoint>& tracepoints);
    ~TracepointCounter();
    TracepointCounter(const TracepointCounter&) = delete;
    TracepointCounter& operator=(const TracepointCounter&) = delete;

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    // Hits so far of tracepoints[i], in the order given; nullopt if unreadable.
    std::optional<uint64_t> count(size_t i) const;

  private:
    std::vector<int> fds_;
    std::string error_;
};

// A cgroup v1 group of its own under /sys/fs/cgroup/CONTROLLER, removed on destruction (and
// any group a killed run of the same test left behind, at construction). A process moved in
// before it forks brings every descendant with it; cpuacct keeps the CPU time of those that
// exited, pids limits how many may exist.
class TestCgroup {
  public:
    TestCgroup(const std::string& controller, const std::string& name);
    ~TestCgroup();
    TestCgroup(const TestCgroup&) = delete;
    TestCgroup& operator=(const TestCgroup&) = delete;

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    bool add(pid_t pid) { return write("cgroup.procs", std::to_string(pid)); }
    bool write(const std::string& file, const std::string& value);
    std::optional<uint64_t> read(const std::string& file) const;

  private:
    std::string path_;
    std::string error_;
};

}  // namespace mux::test
