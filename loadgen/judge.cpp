#include "judge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "schedule.hpp"

namespace mux::load {

namespace {

int percent(double share) {
    return int(std::lround(share * 100));
}

}  // namespace

std::optional<double> littles_law_ratio(const Stats& s) {
    if (s.open_loop || s.requests == 0 || s.in_flight_capacity == 0 || s.duration_s <= 0)
        return std::nullopt;
    return double(s.latency_sum_ns) / 1e9 / (s.duration_s * double(s.in_flight_capacity));
}

std::vector<std::string> saturation_reasons(const Stats& s) {
    std::vector<std::string> reasons;
    if (s.duration_s <= 0) return reasons;
    double window_us = s.duration_s * 1e6;
    double spin_us = 0;
    for (size_t t = 0; t < s.thread_cpu.size(); ++t) {
        const ThreadCpu& c = s.thread_cpu[t];
        spin_us += c.spin_us;
        double busy = (c.cpu_us - c.spin_us) / window_us;
        double waiting = c.runqueue_wait_us / window_us;
        if (busy + waiting >= kSaturatedShare)
            reasons.push_back(
                fmt::format("loadgen thread {} busy {}% and waiting for a CPU {}% "
                            "of the window",
                            t, percent(busy), percent(waiting)));
    }
    auto threads = uint32_t(s.thread_cpu.size());
    uint32_t usable = s.cpus > 0 ? std::min(threads, s.cpus) : threads;
    double process_busy = (s.process_cpu_us - spin_us) / window_us;
    if (usable > 0 && process_busy >= kSaturatedShare * usable)
        reasons.push_back(
            fmt::format("loadgen process used {:.2f} CPUs of the {} its {} threads "
                        "could use ({} in its affinity mask)",
                        process_busy, usable, threads, s.cpus));
    return reasons;
}

std::vector<std::string> bound_reasons(const Stats& s) {
    std::vector<std::string> reasons = saturation_reasons(s);
    if (!s.open_loop) return reasons;
    if (s.sends > 0 && double(s.late_sends) > kLateSendShare * double(s.sends))
        reasons.push_back(
            fmt::format("open-loop schedule behind: {} of {} sends more than 1 ms "
                        "late with a connection free",
                        s.late_sends, s.sends));
    double p50_ns = double(s.latency.percentile_ns(0.5));
    double self_p99_ns = double(s.self_delay.percentile_ns(0.99));
    if (s.self_delay.count() > 0 && p50_ns > 0 && self_p99_ns > kSelfDelayP99Share * p50_ns)
        reasons.push_back(
            fmt::format("self-delay p99 {:.1f} us is over {}% of the corrected p50 "
                        "{:.1f} us",
                        self_p99_ns / 1e3, percent(kSelfDelayP99Share), p50_ns / 1e3));
    return reasons;
}

std::vector<std::string> not_clean_reasons(const Stats& s) {
    std::vector<std::string> reasons;
    if (s.connections_at_start < s.connections_wanted)
        reasons.push_back(
            fmt::format("ramp incomplete: {} of {} connections ready after a {:.3g} s ramp",
                        s.connections_at_start, s.connections_wanted, s.connect_time_s));
    if (s.requests == 0) reasons.push_back("no reply verified in the window");
    if (!s.steady)
        for (const auto& why : s.unsteady_reasons)
            reasons.push_back(
                fmt::format("not steady before the window ({} checks, warmup "
                            "extended by {:.3g} s): {}",
                            s.steady_checks, s.warmup_extended_s, why));
    if (s.most_replies_failed())
        reasons.push_back(fmt::format("{} replies failed verification, {} passed",
                                      s.verification_failures(), s.replies_verified));
    if (s.total_errors() > 0) {
        std::string kinds;
        for (int k = 0; k < kErrorKinds; ++k)
            if (s.errors[size_t(k)] > 0)
                kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", s.errors[size_t(k)],
                                     error_kind_name(static_cast<ErrorKind>(k)));
        reasons.push_back(fmt::format("{} errors ({})", s.total_errors(), kinds));
    }
    if (s.open_loop && s.duration_s > 0) {
        double achieved = double(s.requests) / s.duration_s;
        double offered = double(s.offered) / s.duration_s;
        if (double(s.requests) < kMinAchievedShare * double(s.offered))
            reasons.push_back(
                fmt::format("achieved {:.0f}/s, below {}% of the {:.0f}/s offered "
                            "in the window",
                            achieved, percent(kMinAchievedShare), offered));
        double allowance =
            double(s.in_flight_capacity) + kUnfinishedAllowanceShare * double(s.offered);
        if (double(s.unfinished_at_end) > allowance)
            reasons.push_back(
                fmt::format("{} requests unfinished at the window's end ({} in "
                            "flight, {} never sent), over the allowance of {:.0f}",
                            s.unfinished_at_end, s.in_flight_at_end, s.backlog_at_end, allowance));
    }
    if (auto ratio = littles_law_ratio(s);
        ratio && s.littles_law_judged && std::fabs(*ratio - 1) > kLittlesLawTolerance)
        reasons.push_back(fmt::format(
            "Little's law off by {}%: mean latency x throughput is "
            "{:.2f} requests in flight, against {} connections x "
            "pipeline",
            percent(*ratio - 1), *ratio * double(s.in_flight_capacity), s.in_flight_capacity));
    return reasons;
}

void judge(Stats* s) {
    s->saturated_reasons = saturation_reasons(*s);
    s->bound_reasons = bound_reasons(*s);
    s->not_clean_reasons = not_clean_reasons(*s);
}

int exit_code_for(const Stats& s) {
    if (s.most_replies_failed()) return kExitVerifyFailed;
    if (!s.completed || s.total_errors() > 0) return kExitIncomplete;
    if (!s.not_clean_reasons.empty()) return kExitNotClean;
    return kExitOk;
}

}  // namespace mux::load
