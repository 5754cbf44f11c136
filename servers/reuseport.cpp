// Notes about the SO_REUSEPORT reactors
// - --workers threads, each a whole edge-triggered epoll loop with a listener, an epoll set
//   and connections of its own: the threads share nothing but the port. SO_REUSEPORT lets
//   every listener bind that port, and the kernel hashes each new connection's addresses
//   and ports to pick one listener, so the accept queue, the accept and all that follows
//   stay on one thread. This is nginx's "listen ... reuseport", one listener per worker.
// - No thundering herd and no lock between workers: a connection arrives at exactly one
//   listener, and no worker ever touches another's connections.
// - The price: the hash spreads connections, not load. A worker given a slow request, or
//   more busy connections than the others, falls behind while another idles, and its
//   connections never move. The stats line's accepted_by_worker shows the spread.
// - The listeners are opened before muxserver says it is listening, so none of them misses
//   the first connections. Connections still queued at a listener when it closes are reset,
//   not handed to another (the kernel migrates them only with net.ipv4.tcp_migrate_req).
// - Unix sockets have no SO_REUSEPORT: there all workers register the one listener with
//   EPOLLEXCLUSIVE, so each connection wakes one worker rather than all of them, which is
//   how nginx shares a listener without reuseport.
// - Each reactor is epoll-et's loop and follows its rules (on_edge_triggered): a connection
//   is registered once for both directions (EPOLLRDHUP too) and read until a short read, or
//   until EAGAIN with --et-drain eagain.
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

void react(Server& server, int epfd) {
    const EtDrain drain = server.config().et_drain;
    const int listen_fd = server.listen_fd();
    std::vector<std::unique_ptr<Connection>> by_fd;
    epoll_event events[kMaxEvents];
    bool accept_backlog = false;  // the last batch stopped before EAGAIN: no edge will come
    while (!Server::stopping()) {
        int ready = epoll_wait(epfd, events, kMaxEvents, accept_backlog ? 0 : Server::kStopCheckMs);
        if (ready < 0) {
            if (errno == EINTR) continue;
            std::fprintf(stderr, "epoll_wait: %s\n", std::strerror(errno));
            Server::request_stop();  // every worker ends with the server
            return;
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
}
}  // namespace

int run_reuseport(Server& server) {
    std::vector<int> listeners = server.worker_listeners;
    const bool shared_listener = listeners.empty();  // a Unix socket: one for all
    if (shared_listener)
        listeners.assign(static_cast<size_t>(server.config().workers), server.listen_fd());
    // Every worker's epoll set exists before any worker accepts, so a storm of connections
    // cannot take the fds the later workers need.
    std::vector<int> epoll_fds;
    int rc = 0;
    for (int fd : listeners) {
        set_nonblocking(fd);
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0) {
            std::fprintf(stderr, "epoll_create1: %s\n", std::strerror(errno));
            rc = 1;
            break;
        }
        epoll_fds.push_back(epfd);
        epoll_event listen_event{EPOLLIN | EPOLLET | (shared_listener ? EPOLLEXCLUSIVE : 0u),
                                 {.fd = fd}};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &listen_event);
    }
    if (rc == 0)
        rc = run_workers(server, listeners,
                         [&](Server& worker, int index) { react(worker, epoll_fds[index]); });
    for (int epfd : epoll_fds) close(epfd);
    return rc;
}

}  // namespace mux
