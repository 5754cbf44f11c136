#include "plan.hpp"

#include <sys/select.h>

#include <fmt/format.h>

namespace mux::sweep {

nlohmann::json Plan::to_json() const {
    return {{"name", name},
            {"models", models},
            {"scenarios", scenarios},
            {"proto", proto},
            {"payload_bytes", payload_bytes},
            {"reply_bytes", reply_bytes},
            {"work_us", work_us},
            {"conns", conns},
            {"idle_conns", idle_conns},
            {"idle_active", idle_active},
            {"latency_rate_per_s", latency_rate_per_s},
            {"latency_conns", latency_conns},
            {"churn_conns", churn_conns},
            {"slow_mix", slow_mix},
            {"slow_conns", slow_conns},
            {"slow_rate_per_s", slow_rate_per_s},
            {"duration_s", duration_s},
            {"warmup_s", warmup_s},
            {"repeats", repeats},
            {"loadgen_threads", loadgen_threads},
            {"server_cpus", server_cpus},
            {"client_cpus", client_cpus},
            {"point_timeout_s", point_timeout_s}};
}

std::string Point::label() const {
    return fmt::format("{} {} {}={:g} #{}", model, scenario, x_name, x_value, repeat + 1);
}

namespace {
// The points of one scenario for one x value, before models and repeats are applied.
std::vector<Point> scenario_points(const Plan& plan, const std::string& scenario) {
    std::vector<Point> points;
    if (scenario == "active") {
        for (int n : plan.conns) points.push_back(Point::at(scenario, "conns", n, n, n));
    } else if (scenario == "idle") {
        for (int idle : plan.idle_conns) {
            int total = idle + plan.idle_active;
            points.push_back(Point::at(scenario, "idle_conns", idle, total, plan.idle_active));
        }
    } else if (scenario == "latency") {
        Point p = Point::at(scenario, "rate_per_s", plan.latency_rate_per_s, plan.latency_conns,
                            plan.latency_conns);
        p.rate_per_s = plan.latency_rate_per_s;
        points.push_back(p);
    } else if (scenario == "churn") {
        Point p =
            Point::at(scenario, "conns", plan.churn_conns, plan.churn_conns, plan.churn_conns);
        p.requests_per_conn = 1;
        points.push_back(p);
    } else if (scenario == "slow") {
        Point p = Point::at(scenario, "rate_per_s", plan.slow_rate_per_s, plan.slow_conns,
                            plan.slow_conns);
        p.rate_per_s = plan.slow_rate_per_s;
        p.slow_mix = plan.slow_mix;
        points.push_back(p);
    }
    return points;
}
}  // namespace

std::vector<Point> expand_plan(const Plan& plan, const std::vector<std::string>& models) {
    std::vector<Point> out;
    for (int repeat = 0; repeat < plan.repeats; ++repeat)
        for (const std::string& scenario : plan.scenarios)
            for (const Point& base : scenario_points(plan, scenario))
                // Each repeat starts one model later, so what a point leaves behind (TIME_WAIT
                // sockets, a fork server's teardown) lands on a different model each time and
                // shows in the spread of the repeats instead of in one model's median.
                for (size_t k = 0; k < models.size(); ++k) {
                    Point p = base;
                    p.model = models[(k + size_t(repeat)) % models.size()];
                    p.repeat = repeat;
                    out.push_back(p);
                }
    return out;
}

std::vector<std::string> trim_to_fd_limit(Plan& plan, const Limits& limits) {
    std::vector<std::string> notes;
    auto fits = [&](int conns) { return uint64_t(conns) + kFdHeadroom <= limits.fd_hard_limit; };
    auto trim = [&](std::vector<int>& counts, int extra, const char* what) {
        std::vector<int> kept;
        for (int n : counts) {
            if (fits(n + extra)) {
                kept.push_back(n);
                continue;
            }
            notes.push_back(fmt::format(
                "{} {} dropped: needs {} fds per process ({} connections + {} headroom), "
                "hard limit is {}",
                what, n, n + extra + kFdHeadroom, n + extra, kFdHeadroom, limits.fd_hard_limit));
        }
        counts = kept;
    };
    trim(plan.conns, 0, "active conns");
    trim(plan.idle_conns, plan.idle_active, "idle conns");
    return notes;
}

std::optional<Refusal> predicted_refusal(const Point& point, const Limits& limits) {
    int conns = point.concurrent_connections();
    if (uint64_t(conns) + kFdHeadroom > limits.fd_hard_limit)
        return Refusal{"fd_limit", fmt::format("needs {} fds, hard limit is {}",
                                               conns + kFdHeadroom, limits.fd_hard_limit)};
    // select's fd_set holds fds 0..FD_SETSIZE-1; stdio, the listener and the server's
    // reserve fd take five of them before the first connection.
    constexpr int kSelectMaxConnections = FD_SETSIZE - 5;
    if (point.model == "select" && conns > kSelectMaxConnections)
        return Refusal{"fd_setsize",
                       fmt::format("select watches fds below FD_SETSIZE={}: at most {} "
                                   "connections, this point holds {}",
                                   FD_SETSIZE, kSelectMaxConnections, conns)};
    // The blocking model serves one connection until it closes; with persistent
    // connections every other one would wait unserved for the whole point.
    if (point.model == "blocking" && conns > 1 && point.requests_per_conn != 1)
        return Refusal{"one_connection_at_a_time",
                       fmt::format("blocking serves one connection until it closes; {} "
                                   "persistent connections would leave {} unserved",
                                   conns, conns - 1)};
    return std::nullopt;
}

}  // namespace mux::sweep
