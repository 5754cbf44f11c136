// One muxload thread: its own epoll loop, its own share of the connections, its own Stats.
// Shaped like a wrk thread. Nothing it touches on the hot path is shared with another
// thread; the run's phase boundaries are plain times handed over by a barrier.
//
// A connection's life: Closed -> Connecting (non-blocking connect, EPOLLOUT reports the
// result) -> Open. Sockets are registered once, edge-triggered for both directions, so no
// epoll_ctl is needed while the run goes on. Any error closes the connection, counts the
// error by kind, and opens it again; a refused connect waits kConnectRetryNs first so a dead
// server is not hammered.
#pragma once

#include <cstdint>
#include <vector>

#include "codec.hpp"
#include "net.hpp"
#include "options.hpp"
#include "schedule.hpp"
#include "stats.hpp"

namespace mux::load {

uint64_t now_ns();  // CLOCK_MONOTONIC

// Set once, by the barrier that ends the ramp.
struct RunTimes {
    uint64_t run_start_ns = 0;     // load (and warmup) begins
    uint64_t window_start_ns = 0;  // recording begins
    uint64_t window_end_ns = 0;    // everything stops
};

struct WorkerPlan {
    uint32_t index = 0;
    uint32_t first_conn = 0;  // global index of this worker's first connection
    uint32_t active = 0;
    uint32_t idle = 0;
    double connect_rate_per_s = 0;  // this worker's share
    double rate_per_s = 0;          // this worker's share (open loop)
};

class Worker {
  public:
    Worker(const LoadOptions& options, const Codec& codec, const SocketAddress& target,
           WorkerPlan plan, size_t seconds);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Opens every connection and probes the idle ones; returns when all are ready or at
    // deadline_ns. Returns "" or why the worker cannot run at all.
    std::string ramp(uint64_t deadline_ns);
    // Loads the server until times.window_end_ns, then closes every connection.
    void run(const RunTimes& times);

    uint32_t ready_connections() const { return ready_; }
    Stats& stats() { return stats_; }

  private:
    enum class State : uint8_t { Closed, Connecting, Open };
    struct InFlight {
        uint64_t tag;
        uint64_t intended_ns;
        uint64_t sent_ns;
    };
    struct Conn {
        int fd = -1;
        uint32_t generation = 0;
        State state = State::Closed;
        bool active = false;
        bool ready = false;  // counted toward the ramp once
        bool fresh = false;  // no request yet on this connection
        uint32_t in_flight = 0;
        uint32_t ring_head = 0;
        uint32_t queued = 0;  // entries in the open-loop free list
        uint64_t issued = 0;  // requests on the current connection
        uint64_t answered = 0;
        uint64_t completed_in_window = 0;
        uint64_t connect_ns = 0;
        uint64_t free_since_ns = 0;
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
    void on_event(uint32_t index, uint32_t events);
    void on_connected(uint32_t index, uint64_t now);
    bool on_readable(uint32_t index, bool peer_closed);
    bool consume_replies(uint32_t index, uint64_t now);
    void on_reply(Conn& c, const InFlight& f, uint64_t now);
    void after_replies(uint32_t index, uint64_t now);
    void offer_free_slots(uint32_t index, uint64_t now);
    void issue(Conn& c, uint64_t intended_ns, uint64_t now);
    bool flush(uint32_t index, uint64_t now);
    void dispatch_open_loop(uint64_t now);
    void maintain(uint64_t now);
    int wait(uint64_t until_ns);
    uint32_t pick_work_us();
    bool in_window(uint64_t t) const {
        return t >= times_.window_start_ns && t < times_.window_end_ns;
    }
    void finish_window();

    const LoadOptions& options_;
    const Codec& codec_;
    SocketAddress target_;
    WorkerPlan plan_;
    int epfd_ = -1;
    Phase phase_ = Phase::Ramp;
    RunTimes times_;
    std::vector<Conn> conns_;
    std::vector<SocketAddress> sources_;  // per connection index when spreading; else empty
    std::vector<uint32_t> retry_;         // closed after a refused connect, reopened later
    std::vector<uint64_t> retry_at_ns_;
    uint32_t connecting_ = 0;
    uint32_t ready_ = 0;
    uint64_t next_tag_;
    uint64_t next_maintenance_ns_ = 0;
    Rng rng_;
    ArrivalSchedule schedule_;
    std::vector<uint32_t> free_list_;  // FIFO ring of connections with a free slot
    size_t free_head_ = 0;
    size_t free_count_ = 0;
    Stats stats_;
};

}  // namespace mux::load
