// The open-loop send schedule and the coordinated-omission arithmetic.
//
// Nothing here reads a clock: every call is given "now", so tests drive it with a fake
// clock and the worker with CLOCK_MONOTONIC.
//
// Coordinated omission (Gil Tene; the wrk2 fix): a closed-loop client that waits for a
// slow reply also stops sending, so the requests that would have queued behind the stall
// are never sent and never measured. In open loop each request has an intended send time
// fixed by the schedule, and its latency is counted from then, so a stall is charged to
// every request it delayed. The uncorrected figure (from the actual send) is kept beside.
#pragma once

#include <cmath>
#include <cstdint>

#include "options.hpp"

namespace mux::load {

// splitmix64: small, fast and good enough for arrivals and the slow-request mix.
class Rng {
  public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, 1).
    double uniform() { return double(next() >> 11) * 0x1.0p-53; }

  private:
    uint64_t state_;
};

class ArrivalSchedule {
  public:
    // rate_per_s > 0. The first request is due at start_ns.
    ArrivalSchedule(double rate_per_s, Arrival arrival, uint64_t start_ns, uint64_t seed);

    uint64_t next_ns() const { return next_ns_; }
    bool due(uint64_t now_ns) const { return next_ns_ <= now_ns; }
    // Returns the intended send time of the next request and moves to the one after.
    uint64_t take();
    uint64_t taken() const { return taken_; }

  private:
    double period_ns_;
    Arrival arrival_;
    uint64_t start_ns_;
    uint64_t next_ns_;
    uint64_t taken_ = 0;
    double poisson_offset_ns_ = 0;
    Rng rng_;
};

// Latency of one reply. intended_ns is the schedule's time in open loop and the send time
// in closed loop (or the connect() time of a connection's first request with
// --requests-per-conn, so churn charges the handshake to the request that needed it).
struct Latency {
    uint64_t corrected_ns;
    uint64_t uncorrected_ns;
};
inline Latency measure_latency(uint64_t intended_ns, uint64_t sent_ns, uint64_t done_ns) {
    return {done_ns - intended_ns, done_ns - sent_ns};
}

// The part of a send's delay that is the loadgen's own fault: the request was due and a
// connection was free, yet it was sent only now. Delay while every connection was busy is
// the server's (or the configuration's) and is not counted here.
inline uint64_t self_send_delay_ns(uint64_t intended_ns, uint64_t slot_free_ns, uint64_t sent_ns) {
    uint64_t ready = intended_ns > slot_free_ns ? intended_ns : slot_free_ns;
    return sent_ns > ready ? sent_ns - ready : 0;
}
// A send more than this late by the loadgen's own fault counts as late.
inline constexpr uint64_t kLateSendNs = 1'000'000;
// The schedule is "behind" (loadgen-bound) when more than this share of sends were late.
inline constexpr double kLateSendShare = 0.01;

}  // namespace mux::load
