// Connection cost: what a server pays per connection before and around its first request.
//
// - BM_TcpConnectAcceptClose: blocking connect to 127.0.0.1, accept4, close both. The
//   client closes with SO_LINGER {on, 0}, an abortive close (RST), so no TIME_WAIT socket
//   is left behind: at tens of thousands of connections a second a graceful close would
//   exhaust the loopback ephemeral ports that other runs on this machine need. The extra
//   setsockopt is inside the clock.
// - BM_UnixConnectAcceptClose: the same over a unix socket (no TIME_WAIT exists there).
// - BM_ForkExitWait: fork, the child _exits at once, the parent waitpid()s. fork copies
//   page tables, so the figure grows with the parent's size; muxmicro is small.
// - BM_ThreadCreateJoin: std::thread with an empty body, joined.
// - BM_ConnectionThreadStartJoin: the same as the threads model starts a connection's
//   thread: servers/ start_thread, a 256 KiB stack, the stop signals blocked around it.
// - BM_ForkServesOneRequest: the fork model's whole per-connection cost over a unix
//   socket: connect, accept, fork, the child serves one 64-byte mux1 ECHO through the
//   shared Connection handler (serve_until_closed, as servers/fork.cpp does), the client
//   reads the reply and closes, the child sees EOF and exits, the parent reaps it.
// All of these block in the kernel (connect, accept, waitpid, join), so they use real time.
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "connection.hpp"
#include "fixtures.hpp"
#include "mux1.hpp"
#include "net.hpp"
#include "server.hpp"

namespace mux::micro {

namespace {

// A listening socket on loopback TCP (port chosen by the kernel) or in a private directory.
class Listener {
  public:
    ~Listener() {
        if (fd_ >= 0) close(fd_);
        if (!dir_.empty()) {
            unlink(endpoint_.path.c_str());
            rmdir(dir_.c_str());
        }
    }
    bool open(Endpoint::Kind kind, std::string* error) {
        endpoint_.kind = kind;
        if (kind == Endpoint::Kind::Tcp) {
            endpoint_.host = "127.0.0.1";
        } else {
            char dir[] = "/tmp/muxmicro.XXXXXX";
            if (mkdtemp(dir) == nullptr) {
                *error = fmt::format("mkdtemp: {}", std::strerror(errno));
                return false;
            }
            dir_ = dir;
            endpoint_.path = dir_ + "/listen.sock";
        }
        fd_ = listen_on(endpoint_, 128, /*nonblocking=*/false, error);
        if (fd_ < 0) return false;
        if (kind == Endpoint::Kind::Tcp) endpoint_.port = bound_port(fd_);
        auto resolved = resolve(endpoint_, error);
        if (!resolved) return false;
        address_ = *resolved;
        return true;
    }
    int fd() const { return fd_; }
    const Endpoint& endpoint() const { return endpoint_; }
    const SocketAddress& address() const { return address_; }

  private:
    int fd_ = -1;
    Endpoint endpoint_;
    SocketAddress address_;
    std::string dir_;
};

std::string errno_text(const char* what) {
    return fmt::format("{}: {}", what, std::strerror(errno));
}

template <Endpoint::Kind kKind>
void BM_ConnectAcceptClose(benchmark::State& state) {
    Listener listener;
    std::string error;
    if (!listener.open(kKind, &error)) {
        state.SkipWithError(error.c_str());
        return;
    }
    const linger abortive{1, 0};
    for (auto _ : state) {
        int client = connect_to(listener.address(), /*nonblocking=*/false);
        if (client < 0) {
            state.SkipWithError(errno_text("connect").c_str());
            break;
        }
        int accepted = accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        if (accepted < 0) error = errno_text("accept4");
        if (kKind == Endpoint::Kind::Tcp)
            setsockopt(client, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
        close(client);
        if (accepted >= 0) close(accepted);
        if (!error.empty()) {
            state.SkipWithError(error.c_str());
            break;
        }
    }
}

void BM_ForkExitWait(benchmark::State& state) {
    for (auto _ : state) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        if (pid < 0) {
            state.SkipWithError(errno_text("fork").c_str());
            break;
        }
        int status = 0;
        waitpid(pid, &status, 0);
    }
}

void BM_ThreadCreateJoin(benchmark::State& state) {
    for (auto _ : state) {
        std::thread thread([] {});
        thread.join();
    }
}

// The threads model's way: servers/ start_thread with its explicit stack (256 KiB) and the
// stop signals blocked around the create (two sigprocmask calls).
void BM_ConnectionThreadStartJoin(benchmark::State& state) {
    const size_t kStackBytes = ServerConfig{}.thread_stack_bytes;
    for (auto _ : state) {
        pthread_t thread;
        int rc = start_thread([] {}, kStackBytes, /*detached=*/false, &thread);
        if (rc != 0) {
            state.SkipWithError(fmt::format("start_thread: {}", std::strerror(rc)).c_str());
            break;
        }
        pthread_join(thread, nullptr);
    }
}

[[noreturn]] void serve_in_child(const Listener& listener, Server& server, int client, int fd) {
    close(listener.fd());
    close(client);
    {
        Connection connection(fd, server);
        serve_until_closed(connection);
    }
    _exit(0);
}

// Connects with a 2 s receive timeout, so a child that never answers fails the benchmark
// instead of hanging it.
int connect_with_timeout(const SocketAddress& address) {
    int fd = connect_to(address, /*nonblocking=*/false);
    timeval timeout{2, 0};
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return fd;
}

// Returns "" if the child served the request and exited cleanly.
std::string one_forked_request(const Listener& listener, Server& server,
                               const std::vector<uint8_t>& request, uint8_t* reply,
                               size_t reply_len) {
    int client = connect_with_timeout(listener.address());
    if (client < 0) return errno_text("connect");
    Accepted accepted = server.accept_client(/*nonblocking=*/false);
    if (accepted.status != AcceptStatus::Ok) {
        close(client);
        return "accept failed";
    }
    pid_t pid = fork();
    if (pid == 0) serve_in_child(listener, server, client, accepted.fd);
    close(accepted.fd);
    if (pid < 0) {
        close(client);
        return errno_text("fork");
    }
    std::string error = send_request(client, request);
    if (error.empty()) error = read_reply(client, reply, reply_len);
    close(client);  // the child reads EOF and exits
    int status = 0;
    waitpid(pid, &status, 0);
    if (error.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        error = fmt::format("child ended with wait status {}", status);
    return error;
}

void BM_ForkServesOneRequest(benchmark::State& state) {
    Listener listener;
    std::string error;
    if (!listener.open(Endpoint::Kind::Unix, &error)) {
        state.SkipWithError(error.c_str());
        return;
    }
    ServerConfig config;
    config.model = "fork";
    config.proto = Protocol::Mux1;
    config.listen = listener.endpoint();
    CounterTotals totals;
    Server server(config, listener.fd(), &totals);
    constexpr uint32_t kPayload = 64;
    const std::vector<uint8_t> request = mux1_echo_request(kPayload, /*tag=*/42);
    uint8_t reply[mux1::kHeaderSize + kPayload];
    for (auto _ : state) {
        error = one_forked_request(listener, server, request, reply, sizeof reply);
        if (error.empty() && mux1::decode_header(reply).tag != 42)
            error = "reply has the wrong tag";
        if (!error.empty()) {
            state.SkipWithError(error.c_str());
            break;
        }
    }
}

BENCHMARK(BM_ConnectAcceptClose<Endpoint::Kind::Tcp>)
    ->Name("BM_TcpConnectAcceptClose")
    ->UseRealTime();
BENCHMARK(BM_ConnectAcceptClose<Endpoint::Kind::Unix>)
    ->Name("BM_UnixConnectAcceptClose")
    ->UseRealTime();
BENCHMARK(BM_ForkExitWait)->UseRealTime();
BENCHMARK(BM_ThreadCreateJoin)->UseRealTime();
BENCHMARK(BM_ConnectionThreadStartJoin)->UseRealTime();
BENCHMARK(BM_ForkServesOneRequest)->UseRealTime();

}  // namespace
}  // namespace mux::micro
