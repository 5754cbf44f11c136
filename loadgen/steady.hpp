// Whether the load reached a steady state before the window opens: the rule, as a pure
// function of per-interval counts (no clock), so tests feed it steady and unsteady sequences.
//
// The warmup is cut into kIntervalsPerWarmup equal intervals from the moment the load begins.
// Each worker counts, per interval, its verified replies to measured requests and the active
// connections that got their first such reply. Before the window, muxload judges the last
// kJudgedIntervals intervals that have ended kAnnounceIntervals before the window's planned
// start (with a 1 s warmup: from 0.4 s to 0.9 s), split into two halves:
//
// - served connections (closed loop): the set of active connections answered at least once
//   has stopped growing, that is, every one was answered by the judged span's midpoint, or
//   none was first answered after it. In closed loop every connection has a request in
//   flight from the moment the load begins, so connections still being answered for the
//   first time that late are ones the server is still reaching (fork accepting and forking
//   its way through the queue): the set the window would measure is still growing. A set
//   that has stopped short of every connection is a server starving some of them: that is
//   steady unfairness, which the window's fairness figures (Jain's index, unserved
//   connections) report; calling it unsteady would drop exactly the points that show it.
//   Open loop sends only as often as the rate asks, so a slow rate reaches a connection
//   late by design; this part is not applied there.
// - throughput: the replies of the two halves differ by at most kMaxReplyChangeShare of the
//   larger, or by kNoiseSigmas standard deviations of counting noise, whichever is larger.
//   Open loop at a constant offered rate, this compares the achieved reply rate against
//   the offered rate in each half; past saturation the achieved rate is steady at the
//   server's capacity, and the window's own verdict (below 99% of offered) says the rest.
// - no reply at all in the judged span while connections wait (closed loop), or while at
//   least kMinExpectedForStall replies were due (open loop), is a stall, not a steady state.
//
// Not steady: the window's start moves kExtensionIntervals later and the rule is applied to
// the span that then ends before it, until it holds or the extension reaches its bound
// (--steady-max-extend). The verdict of the last check is reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace mux::load {

// Counts of one warmup interval, summed over the worker threads.
struct WarmupInterval {
    uint64_t replies = 0;       // verified replies to measured (non-probe) requests
    uint64_t first_served = 0;  // active connections whose first such reply came in it
};

// 20 intervals per warmup: the judged span is then 10 intervals, 5 per half, enough that
// one interval's scheduling hiccup moves a half by a fifth at most, and the check can
// be made (and the window announced) 2 intervals, a tenth of the warmup, before it opens.
inline constexpr size_t kIntervalsPerWarmup = 20;
inline constexpr size_t kJudgedIntervals = 10;
inline constexpr size_t kAnnounceIntervals = 2;
// Each extension is half the judged span, so consecutive checks share half their data.
inline constexpr size_t kExtensionIntervals = 5;
// Throughput may differ this much between the halves. A trend (fork still reaching its
// connections, a server speeding up) moves it by more; steady epoll-et (100 to 5,000
// connections, 1 s warmup, 0.25 s halves) read 0.7-22% at checks that passed on this 2-core
// VM while other builds ran. The same contention at times swung it 32-85% (and stalled it
// for 0.5 s): those checks extend the warmup, which is the point; a quiet machine passes
// first time. Lower, contention alone would exhaust the extension.
inline constexpr double kMaxReplyChangeShare = 0.25;
// Counting noise: two halves of a Poisson-like stream of n replies differ by about sqrt(n);
// three standard deviations keep a steady trickle (slow work, few connections) from
// reading as a trend.
inline constexpr double kNoiseSigmas = 3.0;
inline constexpr double kMinExpectedForStall = 10.0;

struct SteadyRule {
    uint64_t active_connections = 0;  // ready active connections carrying the load
    bool open_loop = false;
    double interval_s = 0;     // length of one interval
    double offered_per_s = 0;  // open loop: the rate asked for
};

struct SteadyVerdict {
    bool steady = true;
    std::vector<std::string> reasons;  // why not, each with its numbers
    double span_s = 0;                 // length of the judged span
    uint64_t served_at_mid = 0;        // active connections served by the span's midpoint
    uint64_t served_at_end = 0;
    uint64_t replies_first_half = 0;
    uint64_t replies_second_half = 0;
    double change_share = 0;  // |first - second| / max(first, second)
};

// intervals: every interval from the load's start to the end of the span to judge (the last
// kJudgedIntervals of them are judged; fewer when there are fewer, rounded down to even).
SteadyVerdict judge_steady(std::span<const WarmupInterval> intervals, const SteadyRule& rule);

}  // namespace mux::load
