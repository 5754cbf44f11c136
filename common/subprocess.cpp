#include "subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

namespace mux {

namespace {
using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}
}  // namespace

Subprocess::Subprocess(const std::vector<std::string>& argv, const SpawnOptions& options) {
    if (argv.empty()) {
        error_ = "no program given";
        return;
    }
    int out_pipe[2] = {-1, -1};
    int in_pipe[2] = {-1, -1};
    int gate[2] = {-1, -1};  // the child execs once a byte arrives here (before_exec)
    auto close_all = [&] {
        for (int fd : {out_pipe[0], out_pipe[1], in_pipe[0], in_pipe[1], gate[0], gate[1]})
            if (fd >= 0) close(fd);
    };
    if ((options.capture_stdout && pipe2(out_pipe, O_CLOEXEC) != 0) ||
        (options.pipe_stdin && pipe2(in_pipe, O_CLOEXEC) != 0) ||
        // A socket, not a pipe: releasing a child that already died must not raise SIGPIPE.
        (options.before_exec && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gate) != 0)) {
        error_ = std::string("pipe: ") + std::strerror(errno);
        close_all();
        return;
    }
    // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : options.cpus) CPU_SET(cpu, &set);

    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) {
        error_ = std::string("fork: ") + std::strerror(errno);
        close_all();
        return;
    }
    if (pid_ == 0) {
        if (options.kill_with_parent) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(127);  // the parent died before prctl
        }
        if (!options.cpus.empty()) sched_setaffinity(0, sizeof set, &set);
        if (options.fd_hard_limit) {
            rlimit lim{*options.fd_hard_limit, *options.fd_hard_limit};
            setrlimit(RLIMIT_NOFILE, &lim);
        }
        if (options.capture_stdout) dup2(out_pipe[1], STDOUT_FILENO);
        if (options.pipe_stdin) dup2(in_pipe[0], STDIN_FILENO);
        if (options.quiet_stderr) {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) dup2(devnull, STDERR_FILENO);
        }
        signal(SIGPIPE, SIG_DFL);
        if (gate[0] >= 0) {
            close(gate[1]);
            char go = 0;
            ssize_t n;
            while ((n = read(gate[0], &go, 1)) < 0 && errno == EINTR) {
            }
            if (n != 1) _exit(127);  // the parent died before releasing the child
        }
        execv(args[0], args.data());
        const char msg[] = "exec failed\n";
        [[maybe_unused]] ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        _exit(127);
    }
    if (options.before_exec) {
        close(gate[0]);
        options.before_exec(pid_);
        const char go = 'g';
        [[maybe_unused]] ssize_t sent = send(gate[1], &go, 1, MSG_NOSIGNAL);
        close(gate[1]);
    }
    if (options.capture_stdout) {
        close(out_pipe[1]);
        stdout_fd_ = out_pipe[0];
    }
    if (options.pipe_stdin) {
        close(in_pipe[0]);
        stdin_fd_ = in_pipe[1];
    }
}

Subprocess::~Subprocess() {
    if (running()) {
        kill(pid_, SIGKILL);
        wait(std::chrono::milliseconds(5000));
    }
    if (stdout_fd_ >= 0) close(stdout_fd_);
    close_stdin();
}

void Subprocess::close_stdin() {
    if (stdin_fd_ >= 0) close(stdin_fd_);
    stdin_fd_ = -1;
}

std::optional<std::string> Subprocess::read_line(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        size_t eol = buffered_.find('\n');
        if (eol != std::string::npos) {
            std::string line = buffered_.substr(0, eol);
            buffered_.erase(0, eol + 1);
            return line;
        }
        if (stdout_fd_ < 0) return std::nullopt;
        pollfd pfd{stdout_fd_, POLLIN, 0};
        int ready = poll(&pfd, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return std::nullopt;
        char chunk[4096];
        ssize_t n = read(stdout_fd_, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            close(stdout_fd_);
            stdout_fd_ = -1;
            if (buffered_.empty()) return std::nullopt;
            std::string last = std::move(buffered_);
            buffered_.clear();
            return last;
        }
        buffered_.append(chunk, static_cast<size_t>(n));
    }
}

std::string Subprocess::read_rest(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    std::string all;
    while (auto line = read_line(std::chrono::milliseconds(remaining_ms(deadline)))) {
        all += *line;
        all += '\n';
        if (Clock::now() >= deadline) break;
    }
    return all;
}

void Subprocess::send_signal(int signo) {
    if (running()) kill(pid_, signo);
}

std::optional<int> Subprocess::wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    if (exited_) return status_;
    auto deadline = Clock::now() + timeout;
    for (;;) {
        pid_t r = wait4(pid_, &status_, WNOHANG, &usage_);
        if (r == pid_) {
            exited_ = true;
            return status_;
        }
        if (r < 0 && errno != EINTR) return std::nullopt;
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

int Subprocess::stop(std::chrono::milliseconds grace) {
    if (!running()) return status_;
    kill(pid_, SIGTERM);
    if (auto status = wait(grace)) return *status;
    kill(pid_, SIGKILL);
    return wait(std::chrono::milliseconds(5000)).value_or(-1);
}

}  // namespace mux
