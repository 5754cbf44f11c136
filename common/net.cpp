#include "net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace mux {

std::string Endpoint::to_string() const {
    if (kind == Kind::Unix) return "unix:" + path;
    if (host.find(':') != std::string::npos) return "tcp:[" + host + "]:" + std::to_string(port);
    return "tcp:" + host + ":" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(std::string_view text, std::string* error) {
    Endpoint ep;
    if (text.starts_with("unix:")) {
        ep.kind = Endpoint::Kind::Unix;
        ep.path = std::string(text.substr(5));
        if (ep.path.empty()) {
            *error = "unix endpoint needs a path, as in unix:/tmp/mux.sock";
            return std::nullopt;
        }
        if (ep.path.size() >= sizeof(sockaddr_un::sun_path)) {
            *error = "unix socket path is " + std::to_string(ep.path.size()) +
                     " bytes; the kernel allows at most " +
                     std::to_string(sizeof(sockaddr_un::sun_path) - 1);
            return std::nullopt;
        }
        return ep;
    }
    if (!text.starts_with("tcp:")) {
        *error = "endpoint '" + std::string(text) + "' must be tcp:HOST:PORT or unix:PATH";
        return std::nullopt;
    }
    std::string_view rest = text.substr(4);
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
        *error = "tcp endpoint '" + std::string(text) + "' has no :PORT";
        return std::nullopt;
    }
    std::string_view host = rest.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host == "localhost") host = "127.0.0.1";
    std::string_view port = rest.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
        *error = "tcp port '" + std::string(port) + "' is not a number from 0 to 65535";
        return std::nullopt;
    }
    ep.host = std::string(host);
    ep.port = static_cast<uint16_t>(value);
    std::string resolve_error;
    if (!resolve(ep, &resolve_error)) {
        *error = resolve_error;
        return std::nullopt;
    }
    return ep;
}

std::optional<SocketAddress> resolve(const Endpoint& ep, std::string* error) {
    SocketAddress addr;
    if (ep.kind == Endpoint::Kind::Unix) {
        auto* un = reinterpret_cast<sockaddr_un*>(&addr.storage);
        un->sun_family = AF_UNIX;
        std::memcpy(un->sun_path, ep.path.c_str(), ep.path.size() + 1);
        addr.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + ep.path.size() + 1);
        addr.family = AF_UNIX;
        return addr;
    }
    auto* in4 = reinterpret_cast<sockaddr_in*>(&addr.storage);
    if (inet_pton(AF_INET, ep.host.c_str(), &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(ep.port);
        addr.len = sizeof(sockaddr_in);
        addr.family = AF_INET;
        return addr;
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr.storage);
    if (inet_pton(AF_INET6, ep.host.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(ep.port);
        addr.len = sizeof(sockaddr_in6);
        addr.family = AF_INET6;
        return addr;
    }
    *error = "host '" + ep.host + "' is not a numeric IPv4 or IPv6 address";
    return std::nullopt;
}

int listen_on(const Endpoint& ep, int backlog, bool nonblocking, std::string* error,
              bool reuse_port) {
    auto addr = resolve(ep, error);
    if (!addr) return -1;
    int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
    int fd = socket(addr->family, type, 0);
    if (fd < 0) {
        *error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    if (ep.kind == Endpoint::Kind::Unix) {
        // Remove a stale socket file, but never some other kind of file someone pointed us at.
        struct stat st {};
        if (lstat(ep.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(ep.path.c_str());
    } else {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
            *error = std::string("setsockopt SO_REUSEPORT: ") + std::strerror(errno);
            close(fd);
            return -1;
        }
    }
    if (bind(fd, addr->get(), addr->len) != 0) {
        *error = "bind " + ep.to_string() + ": " + std::strerror(errno);
        close(fd);
        return -1;
    }
    if (listen(fd, backlog) != 0) {
        *error = std::string("listen: ") + std::strerror(errno);
        close(fd);
        return -1;
    }
    return fd;
}

uint16_t bound_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

int connect_to(const SocketAddress& addr, bool nonblocking, const SocketAddress* source) {
    int type = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
    int fd = socket(addr.family, type, 0);
    if (fd < 0) return -1;
    if (addr.family != AF_UNIX) set_tcp_nodelay(fd);
    if (source != nullptr) {
        // Bind the source address only; the kernel still picks the port.
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, source->get(), source->len) != 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
    }
    int rc;
    do {
        rc = connect(fd, addr.get(), addr.len);
    } while (rc != 0 && errno == EINTR && !nonblocking);
    if (rc != 0 && !(nonblocking && errno == EINPROGRESS)) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

bool set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

void set_tcp_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

IoResult read_some(int fd, void* buf, size_t len) {
    for (;;) {
        // read/write rather than recv/send: the kernel counts only the read and write
        // families in /proc/PID/io (syscr, syscw), which is how the sweep measures syscalls.
        ssize_t n = read(fd, buf, len);
        if (n > 0) return {IoStatus::Ok, static_cast<size_t>(n)};
        if (n == 0) return {IoStatus::Closed};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoStatus::Retry};
        return {IoStatus::Error, 0, errno};
    }
}

IoResult write_some(int fd, const void* buf, size_t len) {
    for (;;) {
        // write() has no MSG_NOSIGNAL: every program using this ignores SIGPIPE, so a peer
        // that vanished costs an EPIPE, never the process.
        ssize_t n = write(fd, buf, len);
        if (n >= 0) return {IoStatus::Ok, static_cast<size_t>(n)};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoStatus::Retry};
        return {IoStatus::Error, 0, errno};
    }
}

uint64_t raise_fd_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
        getrlimit(RLIMIT_NOFILE, &lim);
    }
    return lim.rlim_cur;
}

}  // namespace mux
