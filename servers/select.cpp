// Notes about the select model
// - fd_set is a fixed bitmap of FD_SETSIZE (1024) bits. FD_SET on an fd >= 1024 writes
//   past the end of it (glibc's fortify turns that into an abort), so this model refuses
//   such a connection at once: it closes it and counts it as rejected. That is the
//   "1024 wall", a property of the API, not of the kernel.
// - select overwrites its sets with the result, so every call rebuilds them from scratch,
//   copies them into the kernel, and the kernel checks every fd up to maxfd. Afterwards
//   the loop scans every fd again to find the ready ones. Cost per call is O(maxfd) even
//   when one socket is ready: idle connections are paid for on every wakeup.
#include <sys/select.h>

#include <unistd.h>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "connection.hpp"
#include "models.hpp"

namespace mux {

int run_select(Server& server) {
    const int listen_fd = server.listen_fd();
    set_nonblocking(listen_fd);
    if (listen_fd >= FD_SETSIZE) {
        std::fprintf(stderr, "select: listening fd %d is not below FD_SETSIZE %d\n", listen_fd,
                     FD_SETSIZE);
        return 1;
    }
    std::array<std::unique_ptr<Connection>, FD_SETSIZE> by_fd;
    int max_fd = listen_fd;
    while (!Server::stopping()) {
        fd_set readable, writable;
        FD_ZERO(&readable);
        FD_ZERO(&writable);
        FD_SET(listen_fd, &readable);
        for (int fd = 0; fd <= max_fd; ++fd) {
            if (!by_fd[fd]) continue;
            if (by_fd[fd]->wants_read()) FD_SET(fd, &readable);
            if (by_fd[fd]->wants_write()) FD_SET(fd, &writable);
        }
        timeval timeout{0, Server::kStopCheckMs * 1000};
        int ready = select(max_fd + 1, &readable, &writable, nullptr, &timeout);
        if (ready < 0) {
            if (errno == EINTR) continue;
            std::fprintf(stderr, "select: %s\n", std::strerror(errno));
            return 1;
        }
        if (FD_ISSET(listen_fd, &readable)) {
            server.accept_pending([&](int fd) {
                if (fd >= FD_SETSIZE) {
                    ServerCounters::add(server.counters().rejected_fd_setsize);
                    close(fd);
                    return;
                }
                by_fd[fd] = std::make_unique<Connection>(fd, server);
                if (fd > max_fd) max_fd = fd;
            });
        }
        for (int fd = 0; fd <= max_fd; ++fd) {
            if (!by_fd[fd] || fd == listen_fd) continue;
            Next next = Next::Keep;
            if (FD_ISSET(fd, &writable)) next = by_fd[fd]->on_writable();
            if (next == Next::Keep && FD_ISSET(fd, &readable))
                next = by_fd[fd]->on_readable(ReadMode::Once);
            if (next == Next::Close) by_fd[fd].reset();
        }
        while (max_fd > listen_fd && !by_fd[max_fd]) --max_fd;
    }
    return 0;
}

}  // namespace mux
