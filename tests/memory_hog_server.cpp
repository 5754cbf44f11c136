// A stand-in for muxserver in the memory tests: poll's loop (servers/poll.cpp), and for every
// connection it accepts, MUXTEST_HOLD_KIB KiB of anonymous memory, every page written, held
// until the connection closes. The sweep's memory per connection for it must then be that
// allocation plus what poll itself keeps per connection. It takes muxserver's command line
// and reads only --listen.
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "connection.hpp"

namespace {

// The held allocation of one connection.
class Held {
  public:
    explicit Held(size_t bytes) : bytes_(bytes) {
        if (bytes_ == 0) return;
        block_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (block_ == MAP_FAILED) {
            std::perror("memory_hog_server: mmap");
            std::exit(1);
        }
        std::memset(block_, 0x5a, bytes_);  // every page resident and anonymous
    }
    ~Held() {
        if (bytes_ > 0) munmap(block_, bytes_);
    }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;

  private:
    size_t bytes_;
    void* block_ = nullptr;
};

struct Client {
    std::unique_ptr<mux::Connection> connection;
    std::unique_ptr<Held> held;
};

void on_stop_signal(int) {
    mux::Server::request_stop();
}

}  // namespace

int main(int argc, char** argv) {
    std::string_view listen = "tcp:127.0.0.1:0";
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string_view(argv[i]) == "--listen") listen = argv[i + 1];
    const char* hold_kib = std::getenv("MUXTEST_HOLD_KIB");
    const size_t hold_bytes = size_t(std::strtoul(hold_kib ? hold_kib : "0", nullptr, 10)) * 1024;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    std::string error;
    mux::ServerConfig config;
    config.model = "poll";
    auto endpoint = mux::parse_endpoint(listen, &error);
    int listen_fd = endpoint ? mux::listen_on(*endpoint, 4096, false, &error) : -1;
    if (listen_fd < 0) {
        std::fprintf(stderr, "memory_hog_server: %s\n", error.c_str());
        return 1;
    }
    config.listen = *endpoint;
    config.listen.port = mux::bound_port(listen_fd);
    mux::CounterTotals totals;
    mux::Server server(config, listen_fd, &totals);
    nlohmann::json ready = {{"event", "listening"},
                            {"endpoint", config.listen.to_string()},
                            {"pid", getpid()},
                            {"hold_kib_per_connection", hold_bytes / 1024}};
    std::printf("%s\n", ready.dump().c_str());
    std::fflush(stdout);

    mux::set_nonblocking(listen_fd);
    std::vector<pollfd> fds{{listen_fd, POLLIN, 0}};
    std::vector<Client> clients(1);
    while (!mux::Server::stopping()) {
        if (poll(fds.data(), fds.size(), mux::Server::kStopCheckMs) < 0) continue;
        for (size_t i = 1; i < fds.size();) {
            mux::Connection& c = *clients[i].connection;
            short revents = fds[i].revents;
            mux::Next next = mux::Next::Keep;
            if (revents & (POLLOUT | POLLERR | POLLHUP)) next = c.on_writable();
            if (next == mux::Next::Keep && (revents & (POLLIN | POLLERR | POLLHUP)))
                next = c.on_readable(mux::ReadMode::Once);
            if (next == mux::Next::Close) {
                fds[i] = fds.back();
                fds.pop_back();
                clients[i] = std::move(clients.back());
                clients.pop_back();
                continue;
            }
            fds[i].events = short((c.wants_read() ? POLLIN : 0) | (c.wants_write() ? POLLOUT : 0));
            ++i;
        }
        if (fds[0].revents & POLLIN)
            server.accept_pending([&](int fd) {
                clients.push_back({std::make_unique<mux::Connection>(fd, server),
                                   std::make_unique<Held>(hold_bytes)});
                fds.push_back({fd, POLLIN, 0});
            });
    }
    return 0;
}
