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

Server::Server(ServerConfig config, int listen_fd, ServerCounters* counters)
    : config_(std::move(config)),
      listen_fd_(listen_fd),
      counters_(counters),
      reserve_fd_(open_reserve_fd()) {}

Server::~Server() {
    if (reserve_fd_ >= 0) close(reserve_fd_);
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
        ServerCounters::add(counters_->accepted);
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
        ServerCounters::add(counters_->rejected_fd_limit);
        return {AcceptStatus::Shed};
    }
    // EAGAIN, EINTR, a blocking accept's SO_RCVTIMEO, ECONNABORTED: nothing to serve now.
    return {AcceptStatus::Retry};
}

void burn_cpu_us(uint32_t work_us) {
    if (work_us == 0) return;
    timespec start{}, now{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    const int64_t budget_ns = int64_t{work_us} * 1000;
    do {
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec) <
             budget_ns);
}

}  // namespace mux
