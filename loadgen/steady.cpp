#include "steady.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace mux::load {

SteadyVerdict judge_steady(std::span<const WarmupInterval> intervals, const SteadyRule& rule) {
    SteadyVerdict v;
    size_t span = std::min(kJudgedIntervals, intervals.size()) / 2 * 2;
    if (span == 0) return v;
    size_t begin = intervals.size() - span, mid = begin + span / 2;
    for (size_t i = 0; i < intervals.size(); ++i) {
        if (i < mid) v.served_at_mid += intervals[i].first_served;
        v.served_at_end += intervals[i].first_served;
        if (i >= begin)
            (i < mid ? v.replies_first_half : v.replies_second_half) += intervals[i].replies;
    }
    v.span_s = double(span) * rule.interval_s;
    double half_s = v.span_s / 2;
    double r1 = double(v.replies_first_half), r2 = double(v.replies_second_half);
    double larger = std::max(r1, r2);
    v.change_share = larger > 0 ? std::fabs(r1 - r2) / larger : 0;

    uint64_t n = rule.active_connections;
    double expected = rule.offered_per_s * v.span_s;
    bool waiting = rule.open_loop ? expected >= kMinExpectedForStall : n > 0;
    if (waiting && r1 + r2 == 0) {
        v.reasons.push_back(
            rule.open_loop
                ? fmt::format("no reply in the last {:.3g} s of warmup, with {:.0f} requests due",
                              v.span_s, expected)
                : fmt::format("no reply in the last {:.3g} s of warmup, with {} active "
                              "connections waiting",
                              v.span_s, n));
    } else if (std::fabs(r1 - r2) >
               std::max(kMaxReplyChangeShare * larger, kNoiseSigmas * std::sqrt(r1 + r2))) {
        std::string offered =
            rule.open_loop ? fmt::format(" of {:.0f}/s offered", rule.offered_per_s) : "";
        v.reasons.push_back(fmt::format(
            "throughput varied {}% between the halves of the last {:.3g} s of warmup: "
            "{:.0f}/s then {:.0f}/s{}",
            std::lround(v.change_share * 100), v.span_s, r1 / half_s, r2 / half_s, offered));
    }
    if (!rule.open_loop && v.served_at_mid < n && v.served_at_end > v.served_at_mid)
        v.reasons.push_back(fmt::format(
            "served {} of {} active connections by {:.3g} s before the judged warmup's end, "
            "{} by its end",
            v.served_at_mid, n, half_s, v.served_at_end));
    v.steady = v.reasons.empty();
    return v;
}

}  // namespace mux::load
