// One muxload thread: its own epoll loop, its own share of the connections, its own Stats.
// Shaped like a wrk thread. Nothing it touches on the hot path is shared with another
// thread; the run's phase boundaries are plain times handed over by a barrier.
//
// A connection's life: Closed -> Connecting (non-blocking connect, EPOLLOUT reports the
// result) -> Open. Sockets are registered once, edge-triggered for both directions, so no
// epoll_ctl is needed while the run goes on. Any error closes the connection, counts the
// error by kind (once per request it had in flight), and opens it again; a refused connect
// waits kConnectRetryNs first so a dead server is not hammered.
//
// After the window nothing is sent; the requests still in flight are read to their replies
// for a bounded drain, so their latency is recorded as it is, not cut off at the window's
// end (see kMaxDrainNs in run.cpp).
//
// The ramp: a connection is ready only after its first verified reply (a probe request),
// active and idle alike; until then it is "in progress". On loopback a connect completes
// when the connection enters the accept queue, so counting handshakes alone would let the
// queue of a slow-accepting server (fork) grow without bound. At most kMaxInProgress
// connections (over all threads) are in progress at once, and during the ramp their first
// reply waits for the ramp's deadline, not --timeout: a slow server is measured as a slow
// ramp, not turned into reconnects that each cost it another accept.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "codec.hpp"
#include "net.hpp"
#include "options.hpp"
#include "schedule.hpp"
#include "stats.hpp"

namespace mux::load {

uint64_t now_ns();  // CLOCK_MONOTONIC

inline constexpr uint64_t kUndecidedNs = UINT64_MAX;

// A worker's view of the run's phases. run_start_ns is set by the barrier that ends the
// ramp; the window's edges stay kUndecidedNs (all warmup) until the main thread publishes
// the window's start, once the steadiness check (steady.hpp) has passed or given up.
struct RunTimes {
    uint64_t run_start_ns = 0;                // load (and warmup) begins
    uint64_t window_start_ns = kUndecidedNs;  // recording begins
    uint64_t window_end_ns = kUndecidedNs;    // recording and sending stop
    uint64_t interval_ns = 0;                 // one warmup interval (0: no check)
};

// What a worker counts per warmup interval for the steadiness check. One writer (its
// worker), read by the main thread: relaxed atomics, a plain store on x86.
class WarmupCounts {
  public:
    explicit WarmupCounts(size_t intervals) : replies_(intervals), first_served_(intervals) {}
    size_t size() const { return replies_.size(); }
    void add(size_t interval, bool first_served) {
        if (interval >= replies_.size()) return;
        bump(replies_[interval]);
        if (first_served) bump(first_served_[interval]);
    }
    uint64_t replies(size_t i) const { return replies_[i].load(std::memory_order_relaxed); }
    uint64_t first_served(size_t i) const {
        return first_served_[i].load(std::memory_order_relaxed);
    }

  private:
    static void bump(std::atomic<uint64_t>& a) {
        a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    std::vector<std::atomic<uint64_t>> replies_, first_served_;
};

struct WorkerPlan {
    uint32_t index = 0;
    uint32_t first_conn = 0;  // global index of this worker's first connection
    uint32_t active = 0;
    uint32_t idle = 0;
    uint32_t max_in_progress = 512;  // this worker's share of kMaxInProgress
    double connect_rate_per_s = 0;   // this worker's share
    double rate_per_s = 0;           // this worker's share (open loop)
    ArrivalShare share;              // its instants of the merged uniform stream
};

class Worker {
  public:
    Worker(const LoadOptions& options, const Codec& codec, const SocketAddress& target,
           WorkerPlan plan, size_t seconds, size_t warmup_intervals);
    ~Worker();  // closes every connection
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Opens every connection and waits for each one's first verified reply; returns when
    // all are ready or at deadline_ns. Returns "" or why the worker cannot run at all.
    std::string ramp(uint64_t deadline_ns);
    // Loads the server, counting each warmup interval in warmup_counts(), until the window
    // that starts at window_start (kUndecidedNs until published, then window_ns long) ends;
    // then, sending nothing more, reads the replies of the requests still in flight for at
    // most drain_ns, and accounts for what is unfinished. The connections stay open, idle,
    // until the worker is destroyed.
    void run(const RunTimes& times, const std::atomic<uint64_t>& window_start, uint64_t window_ns,
             uint64_t drain_ns);
    const WarmupCounts& warmup_counts() const { return warmup_counts_; }

    uint32_t ready_connections() const { return ready_; }
    uint32_t ready_active_connections() const;
    uint64_t first_connect_ns() const { return first_connect_ns_; }
    uint64_t last_ready_ns() const { return last_ready_ns_; }
    Stats& stats() { return stats_; }

  private:
    enum class State : uint8_t { Closed, Connecting, Open };
    struct InFlight {
        uint64_t tag;
        uint64_t intended_ns;
        uint64_t sent_ns;
        bool probe;  // proves the connection served; never measured
    };
    struct Conn {
        int fd = -1;
        uint32_t generation = 0;
        State state = State::Closed;
        bool active = false;
        bool ready = false;          // answered a verified reply once; counted toward the ramp
        bool fresh = false;          // no request yet on this connection
        bool served_in_run = false;  // a measured request answered since the load began
        uint32_t in_flight = 0;
        uint32_t ring_head = 0;
        uint32_t queued = 0;  // entries in the open-loop free slots
        uint64_t issued = 0;  // requests on the current connection
        uint64_t answered = 0;
        uint64_t completed_in_window = 0;
        uint64_t connect_ns = 0;
        std::vector<InFlight> ring;
        std::vector<uint8_t> out;
        size_t out_len = 0;
        size_t out_sent = 0;
        std::vector<uint8_t> in;
        size_t in_len = 0;
    };
    enum class Phase { Ramp, Run };

    void open(uint32_t index, uint64_t now);
    void close_conn(Conn& c);
    void fail(uint32_t index, ErrorKind kind, uint64_t now);
    void count_errors(ErrorKind kind, uint64_t n, uint64_t now);
    void on_event(uint32_t index, uint32_t events);
    void on_connected(uint32_t index, uint64_t now);
    bool on_readable(uint32_t index, bool peer_closed);
    bool consume_replies(uint32_t index, uint64_t now);
    void note_failure(ErrorKind kind, const uint8_t* buf, size_t len, uint64_t tag, uint64_t now);
    void on_reply(uint32_t index, const InFlight& f, uint64_t now);
    void count_warmup_reply(Conn& c, uint64_t now);
    void refresh_window();
    void mark_ready(uint32_t index, uint64_t now);
    void after_replies(uint32_t index, uint64_t now);
    void offer_free_slots(uint32_t index, uint64_t now);
    void issue(Conn& c, uint64_t intended_ns, uint64_t now, bool probe);
    void probe(uint32_t index, uint64_t now);
    bool flush(uint32_t index, uint64_t now);
    uint32_t dispatch_open_loop();  // returns the requests sent
    void maintain(uint64_t now);
    int wait(uint64_t until_ns);
    uint32_t pick_work_us();
    bool in_window(uint64_t t) const {
        return t >= times_.window_start_ns && t < times_.window_end_ns;
    }
    size_t second_of(uint64_t t) const {
        return size_t((t - times_.window_start_ns) / 1'000'000'000);
    }
    void record_unfinished(uint64_t intended_ns, uint64_t sent_ns, bool was_sent, uint64_t at_ns);
    void record_answered_after_end(const InFlight& f, uint64_t now);
    void record_timed_out(const Conn& c, uint64_t now);
    bool measured_requests_in_flight() const;
    void drain(uint64_t deadline_ns);
    void finish_window(uint64_t drain_end_ns);

    const LoadOptions& options_;
    const Codec& codec_;
    SocketAddress target_;
    WorkerPlan plan_;
    int epfd_ = -1;
    Phase phase_ = Phase::Ramp;
    RunTimes times_;
    const std::atomic<uint64_t>* window_start_ = nullptr;  // published by the main thread
    uint64_t window_ns_ = 0;
    uint64_t ramp_deadline_ns_ = 0;
    std::vector<Conn> conns_;
    std::vector<SocketAddress> sources_;  // per connection index when spreading; else empty
    std::vector<uint32_t> retry_;         // closed after a refused connect, reopened later
    std::vector<uint64_t> retry_at_ns_;
    uint32_t in_progress_ = 0;  // opened, not yet ready
    uint32_t ready_ = 0;
    uint64_t first_connect_ns_ = 0;
    uint64_t last_ready_ns_ = 0;
    uint64_t next_tag_;
    uint64_t next_maintenance_ns_ = 0;
    Rng rng_;
    ArrivalSchedule schedule_;
    FreeSlots free_slots_;
    SpinBudget spin_budget_;
    uint64_t spin_ns_ = 0;  // polling that found nothing, inside the window
    Stats stats_;
    WarmupCounts warmup_counts_;
};

}  // namespace mux::load
