// Notes about the non-blocking busy-poll model
// - One thread, every socket O_NONBLOCK, and no readiness syscall: the loop simply tries
//   accept and recv on everything, over and over, and EAGAIN means "nothing yet".
// - It burns its whole core even with no clients, and each pass costs one failed recv
//   per idle connection, so its CPU per request grows with the number of connections.
//   That waste is what select, poll and epoll exist to remove, and why it is measured.
// - Its latency with one busy client is the lowest of all: nothing sleeps, so no wakeup
//   is ever paid.
#include <memory>
#include <vector>

#include "connection.hpp"
#include "models.hpp"

namespace mux {

int run_nonblocking(Server& server) {
    set_nonblocking(server.listen_fd());
    std::vector<std::unique_ptr<Connection>> connections;
    while (!Server::stopping()) {
        server.accept_pending(
            [&](int fd) { connections.push_back(std::make_unique<Connection>(fd, server)); });
        for (size_t i = 0; i < connections.size();) {
            Connection& c = *connections[i];
            Next next = c.wants_write() ? c.on_writable() : Next::Keep;
            if (next == Next::Keep && c.wants_read()) next = c.on_readable(ReadMode::Once);
            if (next == Next::Close) {
                connections[i] = std::move(connections.back());
                connections.pop_back();
            } else {
                ++i;
            }
        }
    }
    return 0;
}

}  // namespace mux
