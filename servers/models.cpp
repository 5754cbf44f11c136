#include "models.hpp"

#include <array>

namespace mux {

namespace {
using enum Concurrency;
constexpr std::array kModels{
    ModelInfo{"blocking", "one thread, blocking I/O, one connection at a time", run_blocking},
    ModelInfo{.name = "nonblocking",
              .summary = "one thread, O_NONBLOCK, busy-polls every socket",
              .run = run_nonblocking,
              .polls_when_idle = true},
    ModelInfo{"select", "one thread, select(); fds >= FD_SETSIZE refused", run_select},
    ModelInfo{"poll", "one thread, poll() over a compact pollfd array", run_poll},
    ModelInfo{"epoll-lt", "one thread, level-triggered epoll", run_epoll_lt},
    ModelInfo{.name = "epoll-et",
              .summary = "one thread, edge-triggered epoll, reads to a short read (--et-drain)",
              .run = run_epoll_et,
              .et_drain = true},
    ModelInfo{.name = "fork",
              .summary = "parent accepts, one forked child per connection",
              .run = run_fork,
              .concurrency = ProcessPerConnection},
    ModelInfo{.name = "threads",
              .summary = "main thread accepts, one thread per connection, blocking I/O",
              .run = run_threads,
              .concurrency = ThreadPerConnection},
    ModelInfo{.name = "epoll-oneshot",
              .summary = "--workers threads share one epoll set, EPOLLONESHOT re-armed",
              .run = run_epoll_oneshot,
              .concurrency = WorkerThreads},
    ModelInfo{.name = "reuseport",
              .summary = "--workers edge-triggered reactors, one SO_REUSEPORT listener each",
              .run = run_reuseport,
              .concurrency = WorkerThreads,
              .et_drain = true,
              .reuse_port = true},
    ModelInfo{.name = "io-uring",
              .summary = "one thread, io_uring: multishot accept/recv, provided buffers",
              .run = run_io_uring,
              .buffer_ring = true,
              .available = io_uring_available},
};
}  // namespace

std::span<const ModelInfo> all_models() {
    return kModels;
}

const ModelInfo* find_model(std::string_view name) {
    for (const ModelInfo& model : kModels)
        if (model.name == name) return &model;
    return nullptr;
}

}  // namespace mux
