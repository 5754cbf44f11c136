// What every server model is given: the listening socket, the configuration, the
// counters, the stop flag and a shared accept. A model file adds only how it waits.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
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

// One counter, read and written only by the thread that owns it: a plain add, no lock prefix,
// no cache line shared with another thread.
class Counter {
  public:
    void add(uint64_t n = 1) { value_ += n; }
    uint64_t get() const { return value_; }
    void reset() { value_ = 0; }

  private:
    uint64_t value_ = 0;
};

// The counters of one thread (see thread_counters). Threads never add to each other's: each
// adds its own to the CounterTotals once, when it ends (a fork child, before each wait).
struct ServerCounters {
    Counter accepted;
    Counter rejected_fd_setsize;  // select: fd >= FD_SETSIZE
    Counter rejected_fd_limit;    // EMFILE/ENFILE on accept
    Counter rejected_fork_failed;
    Counter closed;
    Counter resets;  // connections ended by a socket error
    Counter requests;
    Counter bytes_in;
    Counter bytes_out;
    Counter short_sends;  // a send that took only part of the bytes offered
    Counter bad_magic;
    Counter too_large;
    Counter bad_op;
    Counter http_malformed;
    Counter http_head_too_large;
    Counter http_unsupported;  // methods other than GET/HEAD, bodies

    static void add(Counter& counter, uint64_t n = 1) { counter.add(n); }
    void reset();
};

// Every field, in one place, for summing and printing.
inline constexpr std::array kCounterFields = {
    &ServerCounters::accepted,
    &ServerCounters::rejected_fd_setsize,
    &ServerCounters::rejected_fd_limit,
    &ServerCounters::rejected_fork_failed,
    &ServerCounters::closed,
    &ServerCounters::resets,
    &ServerCounters::requests,
    &ServerCounters::bytes_in,
    &ServerCounters::bytes_out,
    &ServerCounters::short_sends,
    &ServerCounters::bad_magic,
    &ServerCounters::too_large,
    &ServerCounters::bad_op,
    &ServerCounters::http_malformed,
    &ServerCounters::http_head_too_large,
    &ServerCounters::http_unsupported,
};
static_assert(sizeof(ServerCounters) == kCounterFields.size() * sizeof(Counter),
              "a counter is missing from kCounterFields");

// The calling thread's counters: every count a thread makes goes here, so the hot path
// touches no shared cache line and takes no lock.
inline ServerCounters& thread_counters() {
    static thread_local ServerCounters counters;
    return counters;
}

// The sums of the counters of threads and processes. Each adds its own as it ends (a fork
// child, before each wait). Lock-free fetch_add, so it works across fork children: the block
// lives in a MAP_SHARED mapping.
class CounterTotals {
  public:
    void add(const ServerCounters& counters);
    uint64_t get(Counter ServerCounters::*field) const;

  private:
    static_assert(std::atomic<uint64_t>::is_always_lock_free);
    std::array<std::atomic<uint64_t>, kCounterFields.size()> values_{};
};

enum class AcceptStatus { Ok, Retry, Shed };
struct Accepted {
    AcceptStatus status;
    int fd = -1;
};

// One thread's server: the shared configuration and totals, a listener, and a reserve fd for
// shedding at the fd limit.
class Server {
  public:
    Server(ServerConfig config, int listen_fd, CounterTotals* totals);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    const ServerConfig& config() const { return config_; }
    int listen_fd() const { return listen_fd_; }
    // The calling thread's counters (thread_counters()).
    ServerCounters& counters() const { return thread_counters(); }
    CounterTotals& totals() const { return *totals_; }
    // Adds the calling thread's counters to the totals and zeroes them: as a thread or process
    // ends, and before each wait in a fork child. muxserver's main thread does it for itself
    // after the model returns.
    void add_to_totals() const;

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
    CounterTotals* totals_;
    int reserve_fd_;  // a spare fd, released to shed a connection when at the fd limit
};

// Spins until this thread has used work_us microseconds of CPU time (not wall-clock time,
// which a preempted thread would count without working): the request's CPU cost.
void burn_cpu_us(uint32_t work_us);

}  // namespace mux
