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
#include <cstddef>
#include <cstdint>
#include <vector>

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

// One run seed (drawn, or --seed) gives each thread its own streams: stream 0 for the
// arrival gaps, stream 1 for the --slow mix. Distinct per run, thread and stream, and the
// same again for the same seed.
uint64_t derive_seed(uint64_t run_seed, uint32_t thread, uint32_t stream);

// Which instants of the run's merged uniform stream (one request every 1/R) a thread's
// schedule takes: `instants` (ascending) of every cycle of `of` consecutive instants. Each
// thread runs its share of the rate with its own clock; started together, T uniform
// schedules would put T requests on the same instant every T/R seconds. Threads carry rates
// in proportion to their active connections, so a thread takes as many instants per cycle
// as it has connections (all divided by their common divisor), spread over the cycle: with
// equal shares thread i takes instant i of every T, and with 3 connections over 2 threads,
// instants 0 and 2, and 1, of every 3. {{0}, 1} is the whole stream.
struct ArrivalShare {
    std::vector<uint32_t> instants{0};
    uint32_t of = 1;
};
// Every thread's share, given every thread's active connections (each at least 1). Each
// thread's instants lie where its own evenly spaced ones would (the n-th of w at
// (n + 1/2) / w of the cycle), ranked among all threads': a thread's gaps stay within T
// instants of its mean gap, where taking its instants in one block would make it send at
// the whole rate R for its part of each cycle and not at all for the rest.
std::vector<ArrivalShare> arrival_shares(const std::vector<uint32_t>& active_per_thread);

class ArrivalSchedule {
  public:
    // rate_per_s > 0: this schedule's own rate. Uniform: it takes `share` of the merged
    // stream, whose first instant is start_ns. Poisson: the first request is due one
    // exponential gap after start_ns, like every other.
    ArrivalSchedule(double rate_per_s, Arrival arrival, uint64_t start_ns, uint64_t seed,
                    ArrivalShare share = {});

    uint64_t next_ns() const { return next_ns_; }
    bool due(uint64_t now_ns) const { return next_ns_ <= now_ns; }
    // Returns the intended send time of the next request and moves to the one after.
    uint64_t take();
    uint64_t taken() const { return taken_; }

  private:
    uint64_t instant_ns(uint64_t n) const;
    uint64_t poisson_gap_ns();  // the next arrival's offset from start_ns

    double period_ns_;
    double merged_period_ns_;  // uniform: the gap between instants of the merged stream
    ArrivalShare share_;
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
// The last stretch before a due send is spent polling (epoll with a zero timeout) instead
// of sleeping. With the thread's timer slack at 1 ns, what is left of a sleep's lateness is
// the kernel's and the hypervisor's wake-up delay: on this machine's VM, a 500 us
// epoll_pwait2 woke 37 us late at p50, 44 us at p90 and 73 us at p99. Waking 100 us early
// and polling covers that p99, and costs at most 100 us of CPU per send.
inline constexpr uint64_t kSpinBeforeSendNs = 100'000;
// Polling never takes more than this share of a thread's time since the run started:
// at rates where the gaps are shorter than kSpinBeforeSendNs the thread would otherwise
// poll all the time, and an idle schedule never polls at all.
inline constexpr double kMaxSpinShare = 0.5;

class SpinBudget {
  public:
    explicit SpinBudget(uint64_t start_ns = 0) : start_ns_(start_ns) {}
    bool allows(uint64_t now_ns) const {
        return double(spent_ns_) <= kMaxSpinShare * double(now_ns - start_ns_);
    }
    void spend(uint64_t ns) { spent_ns_ += ns; }
    uint64_t spent_ns() const { return spent_ns_; }

  private:
    uint64_t start_ns_;
    uint64_t spent_ns_ = 0;
};

// How the loop waits for its next event. It sleeps until `until_ns` (the next maintenance
// or window edge) unless a send is pending (a request will be due and a connection is
// free): then it sleeps until kSpinBeforeSendNs before the send is due, and from there
// polls (spin) while the budget allows, else sleeps to the due time itself.
struct WaitPlan {
    uint64_t until_ns;
    bool spin;
};
inline WaitPlan plan_wait(uint64_t now_ns, uint64_t until_ns, bool send_pending,
                          uint64_t next_send_ns, bool may_spin) {
    if (!send_pending) return {until_ns, false};
    if (next_send_ns <= now_ns + kSpinBeforeSendNs) {
        if (may_spin) return {now_ns, true};
        return {next_send_ns < until_ns ? next_send_ns : until_ns, false};
    }
    uint64_t wake = next_send_ns - kSpinBeforeSendNs;
    return {wake < until_ns ? wake : until_ns, false};
}

// Open loop: the connection slots free to carry a request, oldest first. Each entry keeps
// the time its own slot became free, so with --pipeline > 1 a send's self-delay is measured
// from its slot's release and not from the connection's latest reply. Entries of a
// connection that closed since (another generation) are skipped when they come up.
struct FreeSlot {
    uint32_t index;
    uint32_t generation;
    uint64_t free_since_ns;
};

class FreeSlots {
  public:
    explicit FreeSlots(size_t capacity = 0) : ring_(capacity) {}
    bool empty() const { return count_ == 0; }
    size_t size() const { return count_; }
    bool full() const { return count_ == ring_.size(); }
    void push(const FreeSlot& slot) {
        ring_[(head_ + count_) % ring_.size()] = slot;
        count_ += 1;
    }
    FreeSlot pop() {
        FreeSlot slot = ring_[head_];
        head_ = head_ + 1 == ring_.size() ? 0 : head_ + 1;
        count_ -= 1;
        return slot;
    }
    // Drops the entries live() refuses, keeping the others in order. For a full ring.
    template <typename Live>
    void compact(Live live) {
        size_t kept = 0, n = count_;
        for (size_t k = 0; k < n; ++k) {
            const FreeSlot& slot = ring_[(head_ + k) % ring_.size()];
            if (live(slot)) ring_[(head_ + kept++) % ring_.size()] = slot;
        }
        count_ = kept;
    }

  private:
    std::vector<FreeSlot> ring_;
    size_t head_ = 0;
    size_t count_ = 0;
};

// Open loop: sends every request that is due while a connection slot is free, oldest slot
// first, until end_ns (the window's end: nothing is sent after it), and returns how many it
// sent. usable(slot) says whether the slot's connection can still take a request (false
// drops the slot, and takes nothing from the schedule); send(slot, intended_ns, now_ns)
// sends one. The clock is read again before each send: every send is a write() (on loopback
// it also runs the receiver's TCP processing), so one reading for a burst would date its
// later sends early, hide their self-delay and add it to their uncorrected latency.
template <typename Clock, typename Usable, typename Send>
uint32_t send_due_requests(ArrivalSchedule& schedule, FreeSlots& slots, uint64_t end_ns,
                           Clock clock, Usable usable, Send send) {
    uint32_t sent = 0;
    for (uint64_t now = clock(); now < end_ns && !slots.empty() && schedule.due(now);
         now = clock()) {
        FreeSlot slot = slots.pop();
        if (!usable(slot)) continue;
        send(slot, schedule.take(), now);
        sent += 1;
    }
    return sent;
}

// A send more than this late by the loadgen's own fault counts as late.
inline constexpr uint64_t kLateSendNs = 1'000'000;
// The schedule is "behind" (loadgen-bound) when more than this share of sends were late.
inline constexpr double kLateSendShare = 0.01;
// The loadgen is also the limit when its self-delay p99 is above this share of the corrected
// p50: one request in a hundred then carries a delay of the loadgen's own that is a quarter
// of a typical request's whole latency, which moves the tail percentiles the run reports.
inline constexpr double kSelfDelayP99Share = 0.25;

}  // namespace mux::load
