// What every server model is given: the listening socket, the configuration, the
// counters, the stop flag and a shared accept. A model file adds only how it waits.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "net.hpp"

namespace mux {

enum class Protocol { Mux1, Http };

// When the epoll-et model counts a socket as read to the end (see servers/epoll_et.cpp).
enum class EtDrain {
    ShortRead,   // a read that returns less than asked, with EPOLLRDHUP for the peer's FIN
    UntilEagain  // the textbook rule: read until EAGAIN
};

struct ServerConfig {
    std::string model;
    Protocol proto = Protocol::Mux1;
    Endpoint listen;
    uint32_t max_payload = 1u << 20;
    int backlog = 4096;
    EtDrain et_drain = EtDrain::ShortRead;
};

// Lives in a MAP_SHARED mapping so fork children add to the same numbers as the parent.
// Relaxed atomics: uncontended in single-threaded models, a few ns per update.
struct ServerCounters {
    std::atomic<uint64_t> accepted{0};
    std::atomic<uint64_t> rejected_fd_setsize{0};  // select: fd >= FD_SETSIZE
    std::atomic<uint64_t> rejected_fd_limit{0};    // EMFILE/ENFILE on accept
    std::atomic<uint64_t> rejected_fork_failed{0};
    std::atomic<uint64_t> closed{0};
    std::atomic<uint64_t> resets{0};  // connections ended by a socket error
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> bytes_in{0};
    std::atomic<uint64_t> bytes_out{0};
    std::atomic<uint64_t> bad_magic{0};
    std::atomic<uint64_t> too_large{0};
    std::atomic<uint64_t> bad_op{0};
    std::atomic<uint64_t> http_malformed{0};
    std::atomic<uint64_t> http_head_too_large{0};
    std::atomic<uint64_t> http_unsupported{0};  // methods other than GET/HEAD, bodies

    static void add(std::atomic<uint64_t>& counter, uint64_t n = 1) {
        counter.fetch_add(n, std::memory_order_relaxed);
    }
};

enum class AcceptStatus { Ok, Retry, Shed };
struct Accepted {
    AcceptStatus status;
    int fd = -1;
};

class Server {
  public:
    Server(ServerConfig config, int listen_fd, ServerCounters* counters);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    const ServerConfig& config() const { return config_; }
    int listen_fd() const { return listen_fd_; }
    ServerCounters& counters() const { return *counters_; }

    // Set from SIGINT/SIGTERM. Models check it after every wait; waits are bounded by
    // kStopCheckMs so a signal that lands just before a wait still ends the run.
    static bool stopping();
    static void request_stop();
    static constexpr int kStopCheckMs = 200;

    // One accept. Retry: nothing pending (or a blocking accept timed out). Shed: the
    // process is out of fds; the pending connection was accepted and closed at once so
    // the listener stops reporting readable and the model does not spin on EMFILE.
    Accepted accept_client(bool nonblocking);

    // Accepts what is pending, at most kAcceptBatch at a time so a connection storm cannot
    // starve established connections, and hands each new fd (non-blocking) to on_accepted.
    // Returns true when it stopped at the batch limit, so more may still be pending.
    static constexpr int kAcceptBatch = 64;
    template <typename OnAccepted>
    bool accept_pending(OnAccepted&& on_accepted) {
        for (int i = 0; i < kAcceptBatch; ++i) {
            Accepted accepted = accept_client(/*nonblocking=*/true);
            if (accepted.status == AcceptStatus::Retry) return false;
            if (accepted.status == AcceptStatus::Ok) on_accepted(accepted.fd);
        }
        return true;
    }

  private:
    ServerConfig config_;
    int listen_fd_;
    ServerCounters* counters_;
    int reserve_fd_;  // a spare fd, released to shed a connection when at the fd limit
};

// Spins until this thread has used work_us microseconds of CPU time (not wall-clock time,
// which a preempted thread would count without working): the request's CPU cost.
void burn_cpu_us(uint32_t work_us);

}  // namespace mux
