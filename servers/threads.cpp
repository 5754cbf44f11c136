// Notes about the thread-per-connection model
// - fork's threaded twin: the main thread only accepts, and each connection gets a thread
//   that serves it with plain blocking I/O. A blocked or slow request stalls only its own
//   thread; the scheduler, not the program, decides who runs next. No readiness API at all.
// - A thread is far cheaper to create than a process (no page tables to copy, no
//   copy-on-write faults afterwards: every thread shares one address space), but each one
//   still costs a kernel task, a kernel stack, and a user stack. The user stack is set
//   explicitly (--thread-stack-kib, default 256 KiB, in the listening line), not glibc's
//   default of RLIMIT_STACK (8 MiB): 10,000 connections would reserve 80 GiB of address
//   space. glibc carves each thread's static TLS out of that stack, and the handler's 64 KiB
//   thread-local read buffer is part of it, so about 190 KiB is left for calls.
// - Every request still costs a context switch: the thread that recv'd sleeps until its
//   next request wakes it, as a fork child does.
// - A thread that cannot be created (EAGAIN at threads-max, pid_max, a cgroup's pids.max or
//   memory; or --max-threads, which stands in for those limits) rejects its connection: it
//   is closed at once and counted as rejected.thread_failed, and serving goes on.
// - Threads are detached, so one that ends is gone at once with nothing to join. Each adds
//   its counters to the totals as it ends. To stop, the main thread shuts down every open
//   connection (its blocked recv returns 0) and waits until the last thread has ended.
// - The listener's receive timeout (it bounds the blocking accept so a stop is noticed) is
//   copied by TCP into every accepted socket; it is cleared there, or each idle connection
//   would wake its thread five times a second.
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "connection.hpp"
#include "models.hpp"

namespace mux {

namespace {

// The open connections, so a stop can shut each one down, and the threads still running.
// Touched when a connection starts and when it ends, never per request.
class LiveConnections {
  public:
    // False at --max-threads.
    bool try_add(int fd, uint32_t max_threads) {
        std::lock_guard lock(mutex_);
        if (max_threads > 0 && threads_ >= max_threads) return false;
        fds_.insert(fd);
        ++threads_;
        return true;
    }
    // Before the fd is closed, so a stop never shuts down a reused fd number.
    void remove_fd(int fd) {
        std::lock_guard lock(mutex_);
        fds_.erase(fd);
    }
    // The thread's last touch of anything shared: its counters are in the totals by now.
    void thread_ended() {
        std::lock_guard lock(mutex_);
        if (--threads_ == 0) ended_.notify_all();
    }
    size_t threads() {
        std::lock_guard lock(mutex_);
        return threads_;
    }
    void shut_down_all_and_wait() {
        std::unique_lock lock(mutex_);
        for (int fd : fds_) shutdown(fd, SHUT_RDWR);
        ended_.wait(lock, [&] { return threads_ == 0; });
    }

  private:
    std::mutex mutex_;
    std::condition_variable ended_;
    std::unordered_set<int> fds_;
    size_t threads_ = 0;
};

void serve_on_thread(Server& server, LiveConnections& live, int fd) {
    {
        Connection connection(fd, server);
        serve_until_closed(connection);
        live.remove_fd(fd);
    }  // closes the fd and counts it closed
    server.add_to_totals();
    live.thread_ended();
}

}  // namespace

int run_threads(Server& server) {
    timeval timeout{0, Server::kStopCheckMs * 1000};
    setsockopt(server.listen_fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    const ServerConfig& config = server.config();
    LiveConnections live;
    bool reported = false;
    while (!Server::stopping()) {
        Accepted accepted = server.accept_client(/*nonblocking=*/false);
        if (accepted.status != AcceptStatus::Ok) continue;
        int fd = accepted.fd;
        timeval no_timeout{0, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &no_timeout, sizeof no_timeout);
        int error = EAGAIN;  // what pthread_create says at the kernel's limits
        if (live.try_add(fd, config.max_threads)) {
            error = start_thread([&server, &live, fd] { serve_on_thread(server, live, fd); },
                                 config.thread_stack_bytes, /*detached=*/true);
            if (error != 0) {
                live.remove_fd(fd);
                live.thread_ended();
            }
        }
        if (error == 0) {
            reported = false;
            continue;
        }
        if (!reported)  // once per episode: a storm of rejections must not flood the log
            std::fprintf(stderr,
                         "threads: cannot start a connection thread with %zu running (%s); "
                         "rejecting connections until one can start\n",
                         live.threads(), std::strerror(error));
        reported = true;
        ServerCounters::add(server.counters().rejected_thread_failed);
        close(fd);
    }
    live.shut_down_all_and_wait();
    return 0;
}

}  // namespace mux
