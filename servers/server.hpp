// What every server model is given: the listening socket, the configuration, the
// counters, the stop flag and a shared accept. A model file adds only how it waits.
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <shared_mutex>
#include <string>
#include <vector>

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
    int workers = 1;                         // threads of the pool models
    size_t thread_stack_bytes = 256 * 1024;  // the threads model's connection threads
    uint32_t max_threads = 0;                // the threads model's cap; 0: the kernel's limit
    uint32_t io_uring_buffers = 1024;        // io-uring's provided buffers, a power of two
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
// adds its own to the CounterTotals once, when it ends (a fork child, before each send and wait).
struct ServerCounters {
    Counter accepted;
    Counter rejected_fd_setsize;  // select: fd >= FD_SETSIZE
    Counter rejected_fd_limit;    // EMFILE/ENFILE on accept
    Counter rejected_fork_failed;
    Counter rejected_thread_failed;  // threads: pthread_create failed, or --max-threads reached
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
    Counter recv_rearms;       // io-uring: a multishot receive ended and was armed again
    Counter recv_no_buffers;   // io-uring: a receive found the provided-buffer ring empty

    static void add(Counter& counter, uint64_t n = 1) { counter.add(n); }
    void reset();
};

// Every field, in one place, for summing and printing.
inline constexpr std::array kCounterFields = {
    &ServerCounters::accepted,
    &ServerCounters::rejected_fd_setsize,
    &ServerCounters::rejected_fd_limit,
    &ServerCounters::rejected_fork_failed,
    &ServerCounters::rejected_thread_failed,
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
    &ServerCounters::recv_rearms,
    &ServerCounters::recv_no_buffers,
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
// child, before each send and wait). Lock-free fetch_add, so it works across fork children: the
// block lives in a MAP_SHARED mapping.
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
// shedding at the fd limit. Pool models give each worker its own Server, so no two threads
// ever share a reserve fd, and one accept lock (see accept_lock).
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
    // ends, and before each send and wait in a fork child. muxserver's main thread does it for
    // itself after the model returns.
    void add_to_totals() const;

    // reuseport over TCP: one SO_REUSEPORT listener per worker, [0] being listen_fd(). muxserver
    // opens them all before it says it is listening, so none misses the first connections.
    std::vector<int> worker_listeners;
    // Pool models: how many connections each worker accepted, for the stats line.
    std::vector<uint64_t> accepted_by_worker;

    // Set from SIGINT/SIGTERM. Models check it after every wait; waits are bounded by
    // kStopCheckMs so a signal that lands just before a wait still ends the run.
    static bool stopping();
    static void request_stop();
    static constexpr int kStopCheckMs = 200;

    // One accept. Retry: nothing pending (or a blocking accept timed out). Shed: the
    // process is out of fds; the pending connection was accepted and closed at once so
    // the listener stops reporting readable and the model does not spin on EMFILE.
    Accepted accept_client(bool nonblocking);
    // Counts a connection accepted elsewhere (io_uring's multishot accept) and gives it the
    // socket options accept_client gives.
    void adopt_accepted(int fd) const;

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
    Accepted shed();  // at the fd limit: accept one pending connection and close it

    ServerConfig config_;
    int listen_fd_;
    CounterTotals* totals_;
    int reserve_fd_;  // a spare fd, released to shed a connection when at the fd limit

  public:
    // Workers that accept side by side (reuseport) share one. Shedding frees the reserve's fd
    // slot for the victim; an accept on another thread in between would take that slot (the
    // lowest free fd goes first), leaving the shedder with neither victim nor reserve and its
    // queue stuck. So plain accepts hold the lock shared, shedding holds it exclusive.
    std::shared_mutex* accept_lock = nullptr;
};

// Starts a thread running body with SIGINT and SIGTERM blocked, so a stop signal always lands
// on the main thread and interrupts its wait. stack_bytes 0 keeps the default size. Returns 0,
// or pthread_create's error number (EAGAIN at the kernel's thread limits).
int start_thread(std::function<void()> body, size_t stack_bytes, bool detached,
                 pthread_t* thread = nullptr);

// Runs a pool model's workers: body(worker, index) for index 0 on the calling thread with
// server itself, and for 1..n-1 on new threads, each with a Server of its own on
// listen_fds[index] (n = listen_fds.size()). Returns once all have returned: 0, or 1 when a
// worker thread could not start (the others are then stopped). Fills
// server.accepted_by_worker and adds the new threads' counters to the totals.
int run_workers(Server& server, const std::vector<int>& listen_fds,
                const std::function<void(Server& worker, int index)>& body);

// The number of CPUs this process may run on (its affinity mask): --workers' default.
int cpus_in_affinity_mask();

// Spins until this thread has used work_us microseconds of CPU time (not wall-clock time,
// which a preempted thread would count without working): the request's CPU cost.
void burn_cpu_us(uint32_t work_us);

}  // namespace mux
