#include "plan.hpp"

#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

#include "models.hpp"

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
            {"rates_per_s", rates_per_s},
            {"rate_idle_conns", rate_idle_conns},
            {"rate_active", rate_active},
            {"duration_s", duration_s},
            {"warmup_s", warmup_s},
            {"repeats", repeats},
            {"loadgen_threads", loadgen_threads},
            {"workers", workers},
            {"server_cpus", server_cpus},
            {"client_cpus", client_cpus},
            {"point_timeout_s", point_timeout_s}};
}

std::string Point::label() const {
    return fmt::format("{} {} {}={:g} #{}", model, scenario, x_name, x_value, repeat + 1);
}

std::string rate_scenario_name(int idle_conns) {
    return fmt::format("rate-idle-{}", idle_conns);
}

std::optional<std::string> plan_error(const Plan& plan) {
    if (std::find(plan.scenarios.begin(), plan.scenarios.end(), "rate") == plan.scenarios.end())
        return std::nullopt;
    if (plan.rates_per_s.empty())
        return "the rate scenario needs its offered rates (rates, requests/s): none given";
    for (double rate : plan.rates_per_s)
        if (!(rate > 0))
            return fmt::format("the rate scenario's rates must be above 0, not {:g}", rate);
    if (plan.rate_idle_conns.empty())
        return "the rate scenario needs its idle connection counts (rate-idle-conns): none given";
    for (int idle : plan.rate_idle_conns)
        if (idle < 0)
            return fmt::format("the rate scenario's idle counts must be 0 or more, not {}", idle);
    if (plan.rate_active < 1)
        return fmt::format("the rate scenario needs at least 1 loaded connection, not {}",
                           plan.rate_active);
    return std::nullopt;
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
    } else if (scenario == "rate") {
        for (int idle : plan.rate_idle_conns)
            for (double rate : plan.rates_per_s) {
                Point p = Point::at(rate_scenario_name(idle), "rate_per_s", rate,
                                    idle + plan.rate_active, plan.rate_active);
                p.rate_per_s = rate;
                p.reply_rate_is_figure = true;
                points.push_back(p);
            }
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
    trim(plan.rate_idle_conns, plan.rate_active, "rate idle conns");
    return notes;
}

namespace {
std::optional<uint64_t> read_number(const char* path) {
    std::ifstream in(path);
    uint64_t value = 0;
    if (in >> value) return value;
    return std::nullopt;
}

// The tasks that exist now: /proc/loadavg's fourth field is "runnable/total".
std::optional<uint64_t> tasks_now() {
    std::ifstream in("/proc/loadavg");
    std::string load1, load5, load15, counts;
    if (!(in >> load1 >> load5 >> load15 >> counts)) return std::nullopt;
    size_t slash = counts.find('/');
    if (slash == std::string::npos) return std::nullopt;
    return std::stoull(counts.substr(slash + 1));
}
}  // namespace

void read_task_limits(Limits& limits) {
    constexpr uint64_t kReservedPids = 300;  // the kernel's RESERVED_PIDS: never reused
    auto pid_max = read_number("/proc/sys/kernel/pid_max");
    auto threads_max = read_number("/proc/sys/kernel/threads-max");
    auto running = tasks_now();
    limits.tasks_available = 0;
    if (!pid_max || !threads_max || !running) {
        limits.tasks_why =
            "unknown: /proc/sys/kernel/pid_max, threads-max or /proc/loadavg unreadable";
        return;
    }
    uint64_t cap = std::min(*pid_max > kReservedPids ? *pid_max - kReservedPids : 0, *threads_max);
    limits.tasks_available = cap > *running ? cap - *running : 1;  // 1: known, and full
    limits.tasks_why = fmt::format("pid_max {} less {} reserved, threads-max {}, {} tasks running",
                                   *pid_max, kReservedPids, *threads_max, *running);
    // Root is not held to RLIMIT_NPROC; anyone else's other tasks count against it too.
    rlimit nproc{};
    if (geteuid() != 0 && getrlimit(RLIMIT_NPROC, &nproc) == 0 && nproc.rlim_cur != RLIM_INFINITY &&
        nproc.rlim_cur < limits.tasks_available) {
        limits.tasks_available = nproc.rlim_cur;
        limits.tasks_why += fmt::format(", RLIMIT_NPROC {} for this user", nproc.rlim_cur);
    }
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
    // fork and threads take a task (process or thread) per connection, which the kernel may
    // refuse long before the fds run out: the point would shed most of its connections.
    const ModelInfo* model = find_model(point.model);
    const bool process = model && model->concurrency == Concurrency::ProcessPerConnection;
    const bool thread = model && model->concurrency == Concurrency::ThreadPerConnection;
    if ((process || thread) && limits.tasks_available > 0 &&
        uint64_t(conns) + kTaskHeadroom > limits.tasks_available)
        return Refusal{
            "task_limit",
            fmt::format("{} needs a {} per connection: {} connections need {} tasks "
                        "({} headroom), the kernel allows {} more ({})",
                        point.model, process ? "process" : "thread", conns, conns + kTaskHeadroom,
                        kTaskHeadroom, limits.tasks_available, limits.tasks_why)};
    return std::nullopt;
}

}  // namespace mux::sweep
