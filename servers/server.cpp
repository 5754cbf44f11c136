#include "server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>

namespace mux {

namespace {
// A lock-free atomic, so the signal handler's store and the worker threads' loads are
// well defined (a volatile sig_atomic_t is not, between threads).
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

int open_reserve_fd() {
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}
}  // namespace

void ServerCounters::reset() {
    for (auto field : kCounterFields) (this->*field).reset();
}

void CounterTotals::add(const ServerCounters& counters) {
    // Only what changed: a fork child adds its counts at every wakeup, usually three of them.
    for (size_t i = 0; i < kCounterFields.size(); ++i)
        if (uint64_t n = (counters.*kCounterFields[i]).get(); n != 0)
            values_[i].fetch_add(n, std::memory_order_relaxed);
}

uint64_t CounterTotals::get(Counter ServerCounters::*field) const {
    for (size_t i = 0; i < kCounterFields.size(); ++i)
        if (kCounterFields[i] == field) return values_[i].load(std::memory_order_relaxed);
    return 0;
}

Server::Server(ServerConfig config, int listen_fd, CounterTotals* totals)
    : config_(std::move(config)),
      listen_fd_(listen_fd),
      totals_(totals),
      reserve_fd_(open_reserve_fd()) {}

Server::~Server() {
    if (reserve_fd_ >= 0) close(reserve_fd_);
}

void Server::add_to_totals() const {
    totals_->add(thread_counters());
    thread_counters().reset();
}

bool Server::stopping() {
    return g_stop.load(std::memory_order_relaxed);
}
void Server::request_stop() {
    g_stop.store(true, std::memory_order_relaxed);
}

void Server::adopt_accepted(int fd) const {
    ServerCounters::add(counters().accepted);
    if (config_.listen.kind == Endpoint::Kind::Tcp) set_tcp_nodelay(fd);
}

Accepted Server::accept_client(bool nonblocking) {
    int flags = SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
    int fd;
    if (accept_lock != nullptr) {
        std::shared_lock shared(*accept_lock);
        fd = accept4(listen_fd_, nullptr, nullptr, flags);
    } else {
        fd = accept4(listen_fd_, nullptr, nullptr, flags);
    }
    if (fd >= 0) {
        adopt_accepted(fd);
        return {AcceptStatus::Ok, fd};
    }
    if (errno == EMFILE || errno == ENFILE) return shed();
    // EAGAIN, EINTR, a blocking accept's SO_RCVTIMEO, ECONNABORTED: nothing to serve now.
    return {AcceptStatus::Retry};
}

Accepted Server::shed() {
    std::unique_lock<std::shared_mutex> exclusive;
    if (accept_lock != nullptr) exclusive = std::unique_lock(*accept_lock);
    if (reserve_fd_ < 0) reserve_fd_ = open_reserve_fd();  // a connection closed since
    if (reserve_fd_ < 0) return {AcceptStatus::Retry};
    // accept reserves the new fd before it looks at the queue, so EMFILE says nothing
    // about whether a connection is pending: only the victim accept does. Counting or
    // reporting Shed without a victim inflated rejected.fd_limit and kept epoll-et's
    // accept loop re-running without waiting (a busy loop at the fd limit).
    close(reserve_fd_);
    int victim = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (victim >= 0) close(victim);  // before reopening: the reserve needs its slot
    reserve_fd_ = open_reserve_fd();
    if (victim < 0) return {AcceptStatus::Retry};
    ServerCounters::add(counters().rejected_fd_limit);
    return {AcceptStatus::Shed};
}

namespace {
void* run_thread_body(void* arg) {
    std::unique_ptr<std::function<void()>> body(static_cast<std::function<void()>*>(arg));
    (*body)();
    return nullptr;
}
}  // namespace

int start_thread(std::function<void()> body, size_t stack_bytes, bool detached, pthread_t* thread) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int rc = stack_bytes > 0 ? pthread_attr_setstacksize(&attr, stack_bytes) : 0;
    if (rc == 0 && detached) rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc != 0) {
        pthread_attr_destroy(&attr);
        return rc;
    }
    // The new thread inherits the signal mask in force when it is created.
    sigset_t stop_signals, before;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &before);
    auto* heap_body = new std::function<void()>(std::move(body));
    pthread_t id;
    rc = pthread_create(&id, &attr, run_thread_body, heap_body);
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        delete heap_body;
        return rc;
    }
    if (thread != nullptr) *thread = id;
    return 0;
}

int run_workers(Server& server, const std::vector<int>& listen_fds,
                const std::function<void(Server& worker, int index)>& body) {
    const size_t n = listen_fds.size();
    server.accepted_by_worker.assign(n, 0);
    std::shared_mutex accept_lock;
    server.accept_lock = &accept_lock;
    // Every worker's Server (and its reserve fd) exists before any worker accepts.
    std::vector<std::unique_ptr<Server>> workers;
    for (size_t i = 1; i < n; ++i) {
        workers.push_back(
            std::make_unique<Server>(server.config(), listen_fds[i], &server.totals()));
        workers.back()->accept_lock = &accept_lock;
    }
    std::vector<pthread_t> threads;
    int rc = 0;
    for (size_t i = 1; i < n; ++i) {
        pthread_t id;
        int error = start_thread(
            [&server, &body, worker = workers[i - 1].get(), i] {
                body(*worker, static_cast<int>(i));
                server.accepted_by_worker[i] = thread_counters().accepted.get();
                worker->add_to_totals();
            },
            /*stack_bytes=*/0, /*detached=*/false, &id);
        if (error != 0) {
            std::fprintf(stderr, "%s: cannot start worker %zu of %zu: %s\n",
                         server.config().model.c_str(), i + 1, n, std::strerror(error));
            Server::request_stop();
            rc = 1;
            break;
        }
        threads.push_back(id);
    }
    if (rc == 0) {
        const uint64_t accepted_before = thread_counters().accepted.get();
        body(server, 0);
        server.accepted_by_worker[0] = thread_counters().accepted.get() - accepted_before;
    }
    for (pthread_t thread : threads) pthread_join(thread, nullptr);
    server.accept_lock = nullptr;
    return rc;
}

int cpus_in_affinity_mask() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int count = CPU_COUNT(&set);
    return count > 0 ? count : 1;
}

namespace {
int64_t clock_ns(clockid_t clock) {
    timespec t{};
    clock_gettime(clock, &t);
    return t.tv_sec * 1'000'000'000LL + t.tv_nsec;
}
}  // namespace

void burn_cpu_us(uint32_t work_us) {
    if (work_us == 0) return;
    // The budget is this thread's CPU time, so a burn that is preempted goes on until it
    // has had its share of the CPU. Reading the thread's CPU clock is a system call, so the
    // spin itself watches the monotonic clock (vDSO, user time): spinning d ns of wall time
    // uses at most d ns of CPU, and the CPU clock is read again only after each spin. Not
    // preempted, that is two reads of the CPU clock per burn.
    const int64_t budget_ns = int64_t{work_us} * 1000;
    const int64_t cpu_end_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) + budget_ns;
    for (int64_t cpu_left_ns = budget_ns; cpu_left_ns > 0;
         cpu_left_ns = cpu_end_ns - clock_ns(CLOCK_THREAD_CPUTIME_ID)) {
        const int64_t spin_end_ns = clock_ns(CLOCK_MONOTONIC) + cpu_left_ns;
        while (clock_ns(CLOCK_MONOTONIC) < spin_end_ns) {
        }
    }
}

}  // namespace mux
