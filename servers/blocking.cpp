// Notes about the blocking model
// - One thread, blocking sockets: accept, then serve that connection until it closes,
//   then accept the next. Every other client waits in the listen backlog, connected as
//   far as its kernel knows but unanswered. This is the baseline that shows why servers
//   multiplex at all: with N clients, N-1 of them see no service.
// - It makes no readiness syscall at all, so with one client it is the cheapest model
//   per request: recv blocks exactly until data arrives.
// - Blocking calls carry a receive/send timeout (SO_RCVTIMEO, which Linux also applies to
//   accept) so the loop can notice a stop request; the timeout costs nothing while busy.
#include <sys/socket.h>
#include <sys/time.h>

#include "connection.hpp"
#include "models.hpp"

namespace mux {

int run_blocking(Server& server) {
    timeval timeout{0, Server::kStopCheckMs * 1000};
    setsockopt(server.listen_fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    while (!Server::stopping()) {
        Accepted accepted = server.accept_client(/*nonblocking=*/false);
        if (accepted.status != AcceptStatus::Ok) continue;
        setsockopt(accepted.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(accepted.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        Connection connection(accepted.fd, server);
        serve_until_closed(connection);
    }
    return 0;
}

}  // namespace mux
