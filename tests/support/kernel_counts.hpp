// What the kernel counts about a test's server, for assertions about counts (never timings):
// a cgroup made for the test holds the server's whole process tree. It reports why it is
// unavailable.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace mux::test {

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
