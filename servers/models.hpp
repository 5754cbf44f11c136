// The model registry: a name, what it demonstrates, how it uses threads, whether the kernel
// lets it run here, and its entry point. muxserver picks one with --model at run time;
// nothing else in the program knows which model runs.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "server.hpp"

namespace mux {

enum class Concurrency {
    OneThread,
    ProcessPerConnection,  // fork
    ThreadPerConnection,   // threads: --thread-stack-kib, --max-threads
    WorkerThreads,         // a pool of --workers threads
};

// Why a model cannot run on this kernel: a reason code for results, the errno, and a sentence.
struct Unavailable {
    std::string reason;  // e.g. "io_uring_unavailable"
    int error = 0;       // errno
    std::string detail;
};

// muxserver's exit status when the kernel refuses the model (sysexits.h's EX_UNAVAILABLE).
// It prints a {"event":"refused",...} line instead of the listening line.
inline constexpr int kExitModelUnavailable = 69;

struct ModelInfo {
    std::string_view name;
    std::string_view summary;
    // Runs until Server::stopping(). Returns a process exit code.
    int (*run)(Server& server);
    Concurrency concurrency = Concurrency::OneThread;
    bool et_drain = false;     // reads edge-triggered, by the rule --et-drain picks
    bool reuse_port = false;   // its TCP listener is opened with SO_REUSEPORT
    bool buffer_ring = false;  // receives into a provided-buffer ring (--io-uring-buffers)
    // Spends its spare time polling, so its CPUs are busy at any load and show no headroom.
    bool polls_when_idle = false;
    // Whether the kernel lets the model run here; nullptr: always. On false, *why is filled.
    bool (*available)(Unavailable* why) = nullptr;

    bool has_workers() const { return concurrency == Concurrency::WorkerThreads; }
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
int run_threads(Server& server);
int run_epoll_oneshot(Server& server);
int run_reuseport(Server& server);
int run_io_uring(Server& server);
bool io_uring_available(Unavailable* why);
inline constexpr unsigned kIoUringBufferBytes = 4096;  // each provided receive buffer

}  // namespace mux
