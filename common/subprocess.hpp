// Child processes for drivers and tests: start a program (optionally pinned to CPUs),
// read its stdout line by line with a deadline, signal it, and reap it with its rusage.
// Every wait has a deadline, so a child that hangs cannot hang its driver.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mux {

struct SpawnOptions {
    std::vector<int> cpus;                  // empty: inherit the caller's affinity
    bool capture_stdout = true;             // else stdout is inherited
    bool quiet_stderr = false;              // send stderr to /dev/null
    bool pipe_stdin = false;                // else stdin is inherited; see close_stdin()
    std::optional<uint64_t> fd_hard_limit;  // lower RLIMIT_NOFILE in the child
    // SIGKILL the child when the thread that started it dies, so a crashed or timed-out
    // test leaves no server behind. Off by default: the signal follows the starting thread.
    bool kill_with_parent = false;
    // Runs in this process after the child exists and before it execs; the child waits for
    // it to return. For what must be attached to the child from outside before its program
    // runs its first instruction: perf counters with enable_on_exec, a cgroup. Must not throw.
    std::function<void(pid_t)> before_exec;
};

class Subprocess {
  public:
    // Starts argv[0] (a path) with argv. On failure, running() is false and error() says why.
    Subprocess(const std::vector<std::string>& argv, const SpawnOptions& options = {});
    ~Subprocess();  // SIGKILLs and reaps a child that is still running
    Subprocess(const Subprocess&) = delete;
    Subprocess& operator=(const Subprocess&) = delete;

    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0 && !exited_; }
    const std::string& error() const { return error_; }

    // Next line of stdout without its newline, or nullopt on EOF or when the deadline passes.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);
    // Everything left on stdout until EOF or the deadline.
    std::string read_rest(std::chrono::milliseconds timeout);

    // Closes the child's standard input (with pipe_stdin): an end-of-file it can wait for.
    void close_stdin();

    void send_signal(int signo);
    // Waits for exit. Returns the exit status (as waitpid's), or nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    // SIGTERM, wait up to grace, then SIGKILL. Returns the wait status.
    int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
    // Resources of the child and all the descendants it reaped; valid after it exited.
    const rusage& usage() const { return usage_; }

  private:
    pid_t pid_ = -1;
    int stdout_fd_ = -1;
    int stdin_fd_ = -1;
    bool exited_ = false;
    int status_ = 0;
    rusage usage_{};
    std::string buffered_;
    std::string error_;
};

}  // namespace mux
