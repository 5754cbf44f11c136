// Notes about the edge-triggered epoll model
// - Edge-triggered means "report when the state changes": new bytes arriving, the peer's
//   FIN, or the send buffer gaining room. An fd is reported once per change, not while data
//   waits, so a model that stops reading before the socket is empty can sleep forever on
//   bytes already in its buffer. The listener is drained by accepting until EAGAIN.
// - When is a socket empty? A read that returns less than it asked for has emptied it: the
//   kernel copies all it holds, up to the size asked. Bytes arriving later are a new edge.
//   Only the FIN can hide behind such a read: it would be read as 0 by the next call. So the
//   model registers EPOLLRDHUP, which epoll reports once the peer has shut down its side,
//   and reads to the end only then. That is how nginx reads with epoll, and it is this
//   model's default (--et-drain short). The textbook rule, read until EAGAIN, costs one
//   failing read per wakeup, which is why the textbook ET loses to LT on small
//   request/reply traffic; it is kept as the variant --et-drain eagain.
// - Reading also stops at the handler's output high-water mark, with the socket not empty.
//   The replies then wait for room, so an EPOLLOUT edge follows, and its event carries
//   EPOLLIN while unread bytes remain: the mask epoll reports is the socket's state when it
//   was collected, whichever change queued it. So the model reads when that mask says there
//   is something to read (EPOLLIN, EPOLLRDHUP, an error or hang-up) and not on events that
//   only say there is room to write, such as the one a unix socket sends each time the
//   peer reads a reply.
// - The rule, both drains of it, lives in on_edge_triggered (connection.cpp), which the
//   reuseport reactors share.
// - The payoff: a connection is registered once for both directions
//   (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) and never touched again, so there is no
//   epoll_ctl(MOD) churn when a reply has to wait for buffer space, and no re-report of an
//   fd whose output is blocked.
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
    const EtDrain drain = server.config().et_drain;
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
            if (on_edge_triggered(*by_fd[fd], events[i].events, drain) == Next::Close)
                by_fd[fd].reset();
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
