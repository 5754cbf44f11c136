// Sockets shared by servers, the load generator and tests: endpoints, listen, connect,
// and I/O wrappers that return Ok | Retry | Closed | Error instead of errno puzzles.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mux {

struct Endpoint {
    enum class Kind { Tcp, Unix };
    Kind kind = Kind::Tcp;
    std::string host;  // tcp: numeric IPv4/IPv6 address or "localhost"
    uint16_t port = 0;
    std::string path;  // unix

    std::string to_string() const;
};

// Parses "tcp:HOST:PORT" (IPv6 as "tcp:[::1]:PORT") or "unix:PATH". On failure returns
// nullopt and says why in *error.
std::optional<Endpoint> parse_endpoint(std::string_view text, std::string* error);

// Resolved socket address for an endpoint.
struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t len = 0;
    int family = AF_UNSPEC;
    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};
std::optional<SocketAddress> resolve(const Endpoint& endpoint, std::string* error);

// Opens a listening socket. For unix endpoints a stale socket file is removed first.
// Returns the fd, or -1 with *error set. The listening fd is non-blocking only if asked.
// reuse_port (TCP only) sets SO_REUSEPORT, so more listeners may bind the same port and the
// kernel spreads connections across them.
int listen_on(const Endpoint& endpoint, int backlog, bool nonblocking, std::string* error,
              bool reuse_port = false);

// The port a TCP listener is bound to (useful after binding port 0).
uint16_t bound_port(int fd);

// Starts a connect. With nonblocking, EINPROGRESS counts as success: wait for POLLOUT and
// read SO_ERROR. Returns the fd or -1 with errno set.
int connect_to(const SocketAddress& address, bool nonblocking,
               const SocketAddress* source = nullptr);

bool set_nonblocking(int fd);
void set_tcp_nodelay(int fd);

enum class IoStatus { Ok, Retry, Closed, Error };
struct IoResult {
    IoStatus status;
    size_t bytes = 0;
    int error = 0;  // errno for Error
};

// One read/write, with EINTR retried and EAGAIN reported as Retry. A read of 0 is Closed.
// The process must ignore SIGPIPE (muxserver, muxload and the tests do).
IoResult read_some(int fd, void* buf, size_t len);
IoResult write_some(int fd, const void* buf, size_t len);

// Raises the soft RLIMIT_NOFILE to the hard limit. Returns the resulting soft limit.
uint64_t raise_fd_limit();

}  // namespace mux
