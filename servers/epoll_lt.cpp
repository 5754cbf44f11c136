// Notes about the level-triggered epoll model
// - The interest set lives in the kernel: a connection is registered once with
//   epoll_ctl(ADD), and each epoll_wait returns only the ready fds. A wakeup costs
//   O(ready), not O(connections), so idle connections are free. This is the line the
//   Gammo/Brecht idle-connection experiment draws between poll and epoll.
// - Level-triggered means "report while the condition holds", exactly like poll: an fd
//   with unread data is reported again on the next wait, so one recv per report is safe.
// - The price is bookkeeping: when a connection starts or stops wanting POLLOUT the
//   interest must be changed with epoll_ctl(MOD), one syscall each way. Replies that fit
//   in the socket buffer never need it.
// - close() removes an fd from the epoll set (no other process holds a duplicate of it),
//   so no DEL is needed.
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
uint32_t interest(const Connection& c) {
    return (c.wants_read() ? EPOLLIN : 0u) | (c.wants_write() ? EPOLLOUT : 0u);
}
constexpr int kMaxEvents = 256;
}  // namespace

int run_epoll_lt(Server& server) {
    const int listen_fd = server.listen_fd();
    set_nonblocking(listen_fd);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        std::fprintf(stderr, "epoll_create1: %s\n", std::strerror(errno));
        return 1;
    }
    epoll_event listen_event{EPOLLIN, {.fd = listen_fd}};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &listen_event);

    struct Slot {
        std::unique_ptr<Connection> connection;
        uint32_t registered = 0;  // the interest the kernel holds, to skip needless MODs
    };
    std::vector<Slot> by_fd;
    epoll_event events[kMaxEvents];
    while (!Server::stopping()) {
        int ready = epoll_wait(epfd, events, kMaxEvents, Server::kStopCheckMs);
        if (ready < 0) {
            if (errno == EINTR) continue;
            std::fprintf(stderr, "epoll_wait: %s\n", std::strerror(errno));
            return 1;
        }
        for (int i = 0; i < ready; ++i) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                server.accept_pending([&](int new_fd) {
                    if (static_cast<size_t>(new_fd) >= by_fd.size()) by_fd.resize(new_fd + 1024);
                    by_fd[new_fd] = {std::make_unique<Connection>(new_fd, server), EPOLLIN};
                    epoll_event ev{EPOLLIN, {.fd = new_fd}};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, new_fd, &ev);
                });
                continue;
            }
            Slot& slot = by_fd[fd];
            uint32_t what = events[i].events;
            Next next = Next::Keep;
            if (what & (EPOLLOUT | EPOLLERR | EPOLLHUP)) next = slot.connection->on_writable();
            if (next == Next::Keep && (what & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                next = slot.connection->on_readable(ReadMode::Once);
            if (next == Next::Close) {
                slot.connection.reset();
                continue;
            }
            uint32_t wanted = interest(*slot.connection);
            if (wanted != slot.registered) {
                epoll_event ev{wanted, {.fd = fd}};
                epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
                slot.registered = wanted;
            }
        }
    }
    by_fd.clear();
    close(epfd);
    return 0;
}

}  // namespace mux
