// A process tree with a known cost, for the cost accounting tests. The root prints
// "started", waits for SIGUSR1, lets its workers do their work, prints "done" once they
// finished (alive, or exited), then waits for SIGTERM and kills what is left. Each worker
// does the work itself (--depth 1) or through a grandchild it forks and reaps (--depth 2).
// --exiting K of the workers exit once done (reaped by the root, or by the kernel with
// --nocldwait); the others stay alive past "done". Workers die with the root
// (PR_SET_PDEATHSIG), so a killed root leaks nothing.
//
// Every syscall between SIGUSR1 and the root's next sigwait is known, so a test that reads
// its counters while the whole tree is blocked in a syscall can expect an exact count. The
// work: per leaf, --writes N write(2) to /dev/null (plus its open and close), --wait-calls N
// calls of each of the 8 wait syscalls (plus epoll_create1 and close), --sleeps N
// clock_nanosleep. The harness calls are listed in tests/process_cost_test.cpp
// (harness_syscalls()). Work is done through syscall(2) where glibc might pick another call.
// With --threads T, each leaf does its writes and wait calls on T threads of its own, each
// doing all of them, and joins them (creating and joining a thread takes calls of its own,
// none of them a write or a wait call).
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <thread>
#include <vector>

namespace {

struct Options {
    int children = 2;
    int depth = 1;
    int exiting = 0;
    int burn_ms = 0;
    int writes = 0;
    int wait_calls = 0;
    int touch_mib = 0;
    int sleeps = 0;
    int root_touch_mib = 0;
    int threads = 0;              // 0: the writes and wait calls on the leaf's own thread
    bool fork_late = false;       // fork the workers after SIGUSR1 instead of before "started"
    bool nocldwait = false;       // exited workers are reaped by the kernel, not by the root
    bool ignore_sigchld = false;  // the same, by ignoring SIGCHLD (visible in /proc)
};

double process_cpu_s() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);  // a syscall: CPU clocks are not in the vDSO
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// Maps and dirties `mib` MiB; returns the mapping so the caller decides how long it lives.
void* touch_memory(int mib) {
    size_t bytes = static_cast<size_t>(mib) << 20;
    if (bytes == 0) return nullptr;
    void* block = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED) _exit(3);
    madvise(block, bytes, MADV_NOHUGEPAGE);  // one fault per 4 KiB page, whatever THP says
    auto* bytes_ptr = static_cast<volatile char*>(block);
    for (size_t at = 0; at < bytes; at += 4096) bytes_ptr[at] = 1;
    return block;
}

// One call of each wait syscall, none of which waits (timeouts of 0, no fds).
void wait_calls_once(int epfd) {
    epoll_event event{};
    timespec zero{0, 0};
    timeval zero_tv{0, 0};
    syscall(SYS_epoll_wait, epfd, &event, 1, 0);
    syscall(SYS_epoll_pwait, epfd, &event, 1, 0, nullptr, 8);
    syscall(SYS_epoll_pwait2, epfd, &event, 1, &zero, nullptr, 8);
    syscall(SYS_poll, nullptr, 0, 0);
    syscall(SYS_ppoll, nullptr, 0, &zero, nullptr, 8);
    syscall(SYS_select, 0, nullptr, nullptr, nullptr, &zero_tv);
    syscall(SYS_pselect6, 0, nullptr, nullptr, nullptr, &zero, nullptr);
    syscall(SYS_io_uring_enter, -1, 0, 0, 0, nullptr, 0);  // EBADF, still entered
}

void do_work(const Options& o) {
    touch_memory(o.touch_mib);  // kept until exit on purpose
    if (o.burn_ms > 0) {
        // Spins in user mode, reading the clock (a syscall) once per 100k turns.
        const double until = process_cpu_s() + o.burn_ms / 1000.0;
        volatile unsigned long spin = 0;
        while (process_cpu_s() < until)
            for (int i = 0; i < 100'000; ++i) spin = spin + 1;
    }
    if (o.threads > 0) {
        Options on_thread{};
        on_thread.writes = o.writes;
        on_thread.wait_calls = o.wait_calls;
        std::vector<std::thread> threads;
        for (int i = 0; i < o.threads; ++i)
            threads.emplace_back([on_thread] { do_work(on_thread); });
        for (auto& t : threads) t.join();
    } else if (o.writes > 0) {
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        char byte = 'x';
        for (int i = 0; i < o.writes; ++i)
            if (syscall(SYS_write, devnull, &byte, 1) != 1) _exit(4);
        close(devnull);
    }
    if (o.wait_calls > 0 && o.threads == 0) {
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        for (int i = 0; i < o.wait_calls; ++i) wait_calls_once(epfd);
        close(epfd);
    }
    for (int i = 0; i < o.sleeps; ++i) {
        timespec ms{0, 1'000'000};
        syscall(SYS_clock_nanosleep, CLOCK_REALTIME, 0, &ms, nullptr);
    }
}

pid_t fork_dying_with_parent() {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) _exit(5);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(6);
    }
    return pid;
}

[[noreturn]] void run_worker(const Options& o, bool exits, int go_fd, int ready_fd) {
    char byte = 0;
    while (read(go_fd, &byte, 1) > 0) {
    }  // EOF once the root closes its end: go
    if (o.depth == 2) {
        pid_t leaf = fork_dying_with_parent();
        if (leaf == 0) {
            do_work(o);
            _exit(0);
        }
        waitpid(leaf, nullptr, 0);
    } else {
        do_work(o);
    }
    if (write(ready_fd, "r", 1) != 1) _exit(7);
    if (exits) _exit(0);
    for (;;) pause();  // until the root's SIGKILL
}

void fork_workers(const Options& o, int go[2], int ready[2], std::vector<pid_t>& workers) {
    for (int i = 0; i < o.children; ++i) {
        pid_t pid = fork_dying_with_parent();
        if (pid == 0) {
            if (go[1] >= 0) close(go[1]);
            close(ready[0]);
            run_worker(o, i < o.exiting, go[0], ready[1]);
        }
        workers.push_back(pid);
    }
}

int wait_for(const sigset_t& set) {
    int signo = 0;
    sigwait(&set, &signo);
    return signo;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"Process tree with a known CPU, syscall and memory cost"};
    app.add_option("--children", o.children)->check(CLI::Range(1, 64));
    app.add_option("--depth", o.depth)->check(CLI::Range(1, 2));
    app.add_option("--exiting", o.exiting, "Workers that exit once done (the first K)")
        ->check(CLI::Range(0, 64));
    app.add_option("--burn-ms", o.burn_ms)->check(CLI::Range(0, 10'000));
    app.add_option("--writes", o.writes)->check(CLI::Range(0, 1'000'000));
    app.add_option("--wait-calls", o.wait_calls, "Calls of each of the 8 wait syscalls")
        ->check(CLI::Range(0, 1'000'000));
    app.add_option("--touch-mib", o.touch_mib)->check(CLI::Range(0, 1024));
    app.add_option("--sleeps", o.sleeps)->check(CLI::Range(0, 10'000));
    app.add_option("--root-touch-mib", o.root_touch_mib)->check(CLI::Range(0, 1024));
    app.add_option("--threads", o.threads, "Threads per leaf for the writes and wait calls")
        ->check(CLI::Range(0, 64));
    app.add_flag("--fork-late", o.fork_late);
    app.add_flag("--nocldwait", o.nocldwait, "SA_NOCLDWAIT: the kernel reaps exited workers");
    app.add_flag("--ignore-sigchld", o.ignore_sigchld, "SIGCHLD ignored: the same");
    CLI11_PARSE(app, argc, argv);
    o.exiting = std::min(o.exiting, o.children);
    if (o.ignore_sigchld) {
        signal(SIGCHLD, SIG_IGN);
        o.nocldwait = true;  // the root reaps nobody either way
    } else if (o.nocldwait) {
        struct sigaction reap_automatically {};
        reap_automatically.sa_handler = SIG_DFL;
        reap_automatically.sa_flags = SA_NOCLDWAIT;
        sigaction(SIGCHLD, &reap_automatically, nullptr);
    }
    if (void* block = touch_memory(o.root_touch_mib))
        munmap(block, static_cast<size_t>(o.root_touch_mib) << 20);  // leaves only the peak
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &signals, nullptr);
    int go[2], ready[2];
    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(ready, O_CLOEXEC) != 0) return 2;
    std::vector<pid_t> workers;
    if (!o.fork_late) fork_workers(o, go, ready, workers);
    std::printf("started\n");
    std::fflush(stdout);
    if (wait_for(signals) == SIGUSR1) {
        close(go[1]);
        go[1] = -1;
        if (o.fork_late) fork_workers(o, go, ready, workers);
        char byte = 0;
        for (int i = 0; i < o.children; ++i)
            if (read(ready[0], &byte, 1) != 1) return 8;
        if (!o.nocldwait)
            for (int i = 0; i < o.exiting; ++i)
                if (waitpid(workers[size_t(i)], nullptr, 0) < 0) return 9;
        // Their pids may already belong to someone else.
        workers.erase(workers.begin(), workers.begin() + o.exiting);
        std::printf("done\n");
        std::fflush(stdout);
        while (wait_for(signals) != SIGTERM) {
        }
    }
    for (pid_t pid : workers) kill(pid, SIGKILL);
    while (waitpid(-1, nullptr, 0) > 0) {
    }
    return 0;
}
