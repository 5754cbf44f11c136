#include "server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <ctime>

namespace mux {

namespace {
volatile sig_atomic_t g_stop = 0;
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
    return g_stop != 0;
}
void Server::request_stop() {
    g_stop = 1;
}

Accepted Server::accept_client(bool nonblocking) {
    int flags = SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
    int fd = accept4(listen_fd_, nullptr, nullptr, flags);
    if (fd >= 0) {
        ServerCounters::add(counters().accepted);
        if (config_.listen.kind == Endpoint::Kind::Tcp) set_tcp_nodelay(fd);
        return {AcceptStatus::Ok, fd};
    }
    if ((errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
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
    // EAGAIN, EINTR, a blocking accept's SO_RCVTIMEO, ECONNABORTED: nothing to serve now.
    return {AcceptStatus::Retry};
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
