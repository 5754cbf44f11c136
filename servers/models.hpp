// The model registry: a name, what it demonstrates, and its entry point. muxserver picks
// one with --model at run time; nothing else in the program knows which model runs.
#pragma once

#include <span>
#include <string_view>

#include "server.hpp"

namespace mux {

struct ModelInfo {
    std::string_view name;
    std::string_view summary;
    // Runs until Server::stopping(). Returns a process exit code.
    int (*run)(Server& server);
};

std::span<const ModelInfo> all_models();
const ModelInfo* find_model(std::string_view name);

// Entry points, one per file in servers/.
int run_blocking(Server& server);
int run_nonblocking(Server& server);
int run_select(Server& server);
int run_poll(Server& server);
int run_epoll_lt(Server& server);
int run_epoll_et(Server& server);
int run_fork(Server& server);

}  // namespace mux
