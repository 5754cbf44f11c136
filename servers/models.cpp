#include "models.hpp"

#include <array>

namespace mux {

namespace {
constexpr std::array kModels{
    ModelInfo{"blocking", "one thread, blocking I/O, one connection at a time", run_blocking},
    ModelInfo{"nonblocking", "one thread, O_NONBLOCK, busy-polls every socket", run_nonblocking},
    ModelInfo{"select", "one thread, select(); fds >= FD_SETSIZE refused", run_select},
    ModelInfo{"poll", "one thread, poll() over a compact pollfd array", run_poll},
    ModelInfo{"epoll-lt", "one thread, level-triggered epoll", run_epoll_lt},
    ModelInfo{"epoll-et", "one thread, edge-triggered epoll, reads to a short read (--et-drain)",
              run_epoll_et},
    ModelInfo{"fork", "parent accepts, one forked child per connection", run_fork},
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
