// Notes about the edge-triggered epoll model
// - Edge-triggered means "report when the state changes": new bytes arriving, or the
//   send buffer gaining room. An fd is reported once per change, not while data waits.
//   So every report must be followed by recv until EAGAIN (and accept until EAGAIN on
//   the listener); a model that reads once and waits again can sleep forever on bytes
//   already in its buffer.
// - The payoff: a connection is registered once for both directions
//   (EPOLLIN | EPOLLOUT | EPOLLET) and never touched again, so there is no epoll_ctl(MOD)
//   churn when a reply has to wait for buffer space, and no re-report of an fd whose
//   output is blocked.
// - The final recv that returns EAGAIN is the price: one extra syscall per wakeup, which
//   is why ET is not automatically cheaper than LT for small request/reply traffic.
#include <sys/epoll.h>

#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "connection.hpp"
#include "models.hpp"

namespace mux {

namespace {
constexpr int kMaxEvents = 256;
}  // namespace

int run_epoll_et(Server& server) {
    const int listen_fd = server.listen_fd();
    set_nonblocking(listen_fd);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        std::fprintf(stderr, "epoll_create1: %s\n", std::strerror(errno));
        return 1;
    }
    epoll_event listen_event{EPOLLIN | EPOLLET, {.fd = listen_fd}};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &listen_event);

    std::vector<std::unique_ptr<Connection>> by_fd;
    epoll_event events[kMaxEvents];
    bool accept_backlog = false;  // the last batch stopped before EAGAIN: no edge will come
    while (!Server::stopping()) {
        int ready = epoll_wait(epfd, events, kMaxEvents, accept_backlog ? 0 : Server::kStopCheckMs);
        if (ready < 0) {
            if (errno == EINTR) continue;
            std::fprintf(stderr, "epoll_wait: %s\n", std::strerror(errno));
            return 1;
        }
        bool listener_ready = accept_backlog;
        for (int i = 0; i < ready; ++i) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                listener_ready = true;
                continue;
            }
            // Either direction may have changed; each call works until EAGAIN or no work.
            Connection& c = *by_fd[fd];
            Next next = c.on_writable();
            if (next == Next::Keep) next = c.on_readable(ReadMode::UntilRetry);
            if (next == Next::Close) by_fd[fd].reset();
        }
        if (listener_ready) {
            accept_backlog = server.accept_pending([&](int new_fd) {
                if (static_cast<size_t>(new_fd) >= by_fd.size()) by_fd.resize(new_fd + 1024);
                by_fd[new_fd] = std::make_unique<Connection>(new_fd, server);
                epoll_event ev{EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, {.fd = new_fd}};
                epoll_ctl(epfd, EPOLL_CTL_ADD, new_fd, &ev);
            });
        }
    }
    by_fd.clear();
    close(epfd);
    return 0;
}

}  // namespace mux
