// Notes about the poll model
// - poll takes an array of (fd, events) and has no FD_SETSIZE wall: it serves as many
//   connections as the fd limit allows.
// - Like select it is stateless: every call copies the whole array into the kernel,
//   which polls every entry, and the loop then scans every entry for revents. The cost
//   per wakeup is O(connections), so idle connections still cost on every wakeup.
// - The array is kept compact (a closed entry is swapped with the last one), so the
//   scan covers only live connections, not the highest fd as select's does.
#include <poll.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "connection.hpp"
#include "models.hpp"

namespace mux {

namespace {
short interest(const Connection& c) {
    return static_cast<short>((c.wants_read() ? POLLIN : 0) | (c.wants_write() ? POLLOUT : 0));
}
}  // namespace

int run_poll(Server& server) {
    set_nonblocking(server.listen_fd());
    // Entry 0 is the listener; entry i > 0 belongs to connections[i].
    std::vector<pollfd> fds{{server.listen_fd(), POLLIN, 0}};
    std::vector<std::unique_ptr<Connection>> connections(1);
    while (!Server::stopping()) {
        int ready = poll(fds.data(), fds.size(), Server::kStopCheckMs);
        if (ready < 0) {
            if (errno == EINTR) continue;
            std::fprintf(stderr, "poll: %s\n", std::strerror(errno));
            return 1;
        }
        for (size_t i = 1; i < fds.size();) {
            short revents = fds[i].revents;
            Connection& c = *connections[i];
            Next next = Next::Keep;
            if (revents & (POLLOUT | POLLERR | POLLHUP)) next = c.on_writable();
            if (next == Next::Keep && (revents & (POLLIN | POLLERR | POLLHUP)))
                next = c.on_readable(ReadMode::Once);
            if (next == Next::Close) {
                fds[i] = fds.back();
                fds.pop_back();
                connections[i] = std::move(connections.back());
                connections.pop_back();
                continue;  // the entry moved here has not been looked at yet
            }
            fds[i].events = interest(c);
            ++i;
        }
        if (fds[0].revents & POLLIN) {
            server.accept_pending([&](int fd) {
                connections.push_back(std::make_unique<Connection>(fd, server));
                fds.push_back({fd, POLLIN, 0});
            });
        }
    }
    return 0;
}

}  // namespace mux
