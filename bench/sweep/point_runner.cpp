#include "point_runner.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "process_cost.hpp"
#include "subprocess.hpp"
#include "task_exits.hpp"

namespace mux::sweep {

namespace {
// The share of the measured window that reading the server's tree may take before its cost
// no longer matches the requests muxload counted.
constexpr double kMaxSampleShare = 0.05;

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

nlohmann::json point_json(const Point& point) {
    return {{"scenario", point.scenario},     {"model", point.model},
            {"x_name", point.x_name},         {"x_value", point.x_value},
            {"conns", point.conns},           {"active", point.active},
            {"rate_per_s", point.rate_per_s}, {"requests_per_conn", point.requests_per_conn},
            {"slow_mix", point.slow_mix},     {"repeat", point.repeat}};
}

std::vector<std::string> loadgen_argv(const Point& point, const Plan& plan, const Binaries& bin,
                                      const std::string& target, const std::string& json_path) {
    std::vector<std::string> argv{bin.muxload,
                                  "--target",
                                  target,
                                  "--proto",
                                  plan.proto,
                                  "--conns",
                                  std::to_string(point.conns),
                                  "--active",
                                  std::to_string(point.active),
                                  "--threads",
                                  std::to_string(plan.loadgen_threads),
                                  "--duration",
                                  fmt::format("{:g}", plan.duration_s),
                                  "--warmup",
                                  fmt::format("{:g}", plan.warmup_s),
                                  "--payload",
                                  std::to_string(plan.payload_bytes),
                                  "--reply",
                                  std::to_string(plan.reply_bytes),
                                  "--work-us",
                                  std::to_string(plan.work_us),
                                  "--json",
                                  json_path,
                                  "--quiet",
                                  "--hold-after-window"};
    if (point.rate_per_s > 0) {
        argv.insert(argv.end(), {"--rate", fmt::format("{:g}", point.rate_per_s)});
    }
    if (point.requests_per_conn > 0) {
        argv.insert(argv.end(), {"--requests-per-conn", std::to_string(point.requests_per_conn)});
    }
    if (!point.slow_mix.empty()) argv.insert(argv.end(), {"--slow", point.slow_mix});
    return argv;
}

nlohmann::json failed(nlohmann::json result, const std::string& code, const std::string& detail) {
    result["status"] = "failed";
    result["reason"] = {{"code", code}, {"detail", detail}};
    return result;
}

// Context switches of fork children that exit inside the window are gone from /proc; the
// kernel's taskstats exit records keep them. Without CAP_NET_ADMIN the recorder is off and the
// figure is marked incomplete.
TaskExitRecorder& exit_recorder() {
    static TaskExitRecorder recorder;
    return recorder;
}

nlohmann::json server_cost_json(const ServerCost& window, const ServerCost& since_idle,
                                uint64_t requests, int conns) {
    nlohmann::json problems = window.problems;
    if (!exit_recorder().ok())
        problems.push_back("taskstats unavailable: " + exit_recorder().error());
    return {
        {"window_s", window.wall_s},
        {"requests", requests},
        {"cpu_user_s", double(window.user_cpu_us) / 1e6},
        {"cpu_system_s", double(window.system_cpu_us) / 1e6},
        {"voluntary_context_switches", window.voluntary_switches},
        {"involuntary_context_switches", window.involuntary_switches},
        {"context_switches_complete", window.switches_complete && exit_recorder().ok()},
        {"read_syscalls", window.read_syscalls},
        {"write_syscalls", window.write_syscalls},
        {"peak_rss_bytes", window.root_peak_rss_bytes},
        {"pss_bytes", window.end_pss_bytes},
        {"idle_pss_bytes", since_idle.start_pss_bytes},
        {"descendants_at_end", window.descendants_at_end},
        {"descendants_born_in_window", window.descendants_appeared},
        {"descendants_reaped_in_window", window.descendants_vanished},
        // A tree that lost a descendant mid-window gives no sound figure: none is written,
        // rather than a number that looks measured. `problems` says why.
        {"cpu_us_per_request", window.problems.empty()
                                   ? nlohmann::json(cpu_us_per_request(window, requests))
                                   : nlohmann::json()},
        {"syscalls_per_request", window.problems.empty()
                                     ? nlohmann::json(syscalls_per_request(window, requests))
                                     : nlohmann::json()},
        {"context_switches_per_request", context_switches_per_request(window, requests)},
        {"memory_bytes_per_connection", memory_bytes_per_connection(since_idle, uint64_t(conns))},
        {"problems", problems}};
}

nlohmann::json rusage_json(const rusage& usage) {
    LifetimeUsage u = lifetime_usage(usage);
    return {{"cpu_user_s", double(u.user_cpu_us) / 1e6},
            {"cpu_system_s", double(u.system_cpu_us) / 1e6},
            {"voluntary_context_switches", u.voluntary_switches},
            {"involuntary_context_switches", u.involuntary_switches},
            {"max_rss_bytes", u.max_rss_bytes}};
}

std::string event_of(const std::string& line) {
    if (line.empty() || line.front() != '{') return "";
    auto j = nlohmann::json::parse(line, nullptr, false);
    return j.is_object() ? j.value("event", "") : "";
}
}  // namespace

Binaries find_binaries() {
    std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
    return {(self.parent_path() / "muxserver").string(), (self.parent_path() / "muxload").string()};
}

nlohmann::json refused_point(const Point& point, const Refusal& refusal) {
    nlohmann::json result = point_json(point);
    result["status"] = "refused";
    result["reason"] = {{"code", refusal.code}, {"detail", refusal.detail}};
    return result;
}

nlohmann::json run_point(const Point& point, const Plan& plan, const Binaries& bin) {
    nlohmann::json result = point_json(point);
    const auto started = Clock::now();
    const auto deadline = started + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(plan.point_timeout_s));
    auto left = [&] {
        auto ms = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        return ms.count() > 0 ? ms : milliseconds(0);
    };

    SpawnOptions server_options;
    server_options.cpus = plan.server_cpus;
    Subprocess server({bin.muxserver, "--model", point.model, "--proto", plan.proto, "--listen",
                       "tcp:127.0.0.1:0"},
                      server_options);
    auto ready_line = server.read_line(std::min(left(), milliseconds(10000)));
    auto ready = nlohmann::json::parse(ready_line.value_or(""), nullptr, false);
    if (!ready.is_object() || ready.value("event", "") != "listening")
        return failed(result, "server_start",
                      "muxserver printed no listening line: " + ready_line.value_or("(nothing)"));
    const ProcessTreeSample idle_sample = sample_process_tree(server.pid());

    std::string json_path =
        fmt::format("{}/muxbench-point-{}-{}.json", std::filesystem::temp_directory_path().string(),
                    getpid(), server.pid());
    SpawnOptions loadgen_options;
    loadgen_options.cpus = plan.client_cpus;
    loadgen_options.pipe_stdin = true;  // closed once the end of the window is sampled
    Subprocess loadgen(loadgen_argv(point, plan, bin, ready["endpoint"], json_path),
                       loadgen_options);

    std::optional<ProcessTreeSample> window_start, window_end;
    TaskExits window_exits;
    Clock::time_point measure_started{}, measure_ended{};
    double start_walk_s = 0, end_walk_s = 0;  // how long reading the tree in /proc took
    while (auto line = loadgen.read_line(left())) {
        std::string event = event_of(*line);
        if (event == "measure_start") {
            exit_recorder().take();  // drop exits from before the window
            auto walk_began = Clock::now();
            window_start = sample_process_tree(server.pid());
            measure_started = Clock::now();
            start_walk_s = std::chrono::duration<double>(measure_started - walk_began).count();
        } else if (event == "measure_end") {
            auto walk_began = Clock::now();
            window_end = sample_process_tree(server.pid());
            window_exits = exit_recorder().take();
            measure_ended = Clock::now();
            end_walk_s = std::chrono::duration<double>(measure_ended - walk_began).count();
            loadgen.close_stdin();  // muxload held its connections open until now
        }
    }
    auto loadgen_status = loadgen.wait(std::max(left(), milliseconds(1)));
    bool timed_out = !loadgen_status;
    if (timed_out) loadgen.stop(milliseconds(2000));

    auto server_status = server.stop(milliseconds(5000));
    auto stats = nlohmann::json::parse(server.read_rest(milliseconds(2000)), nullptr, false);
    result["server_stats"] = stats.is_object() ? stats : nlohmann::json();
    result["server_exit_status"] = server_status;
    result["server_rusage_total"] = rusage_json(server.usage());

    double total_s = seconds_since(started);
    if (window_start && window_end) {
        result["timing_s"] = {
            {"setup", std::chrono::duration<double>(measure_started - started).count()},
            {"measure", std::chrono::duration<double>(measure_ended - measure_started).count()},
            {"teardown", std::chrono::duration<double>(Clock::now() - measure_ended).count()},
            {"total", total_s},
            {"start_sample", start_walk_s},
            {"end_sample", end_walk_s}};
    }

    std::ifstream in(json_path);
    auto report = nlohmann::json::parse(in, nullptr, false);
    std::filesystem::remove(json_path);
    if (report.is_discarded() || !report.is_object())
        return failed(result, timed_out ? "timeout" : "loadgen_no_report",
                      fmt::format("muxload wrote no report (exit status {}, after {:.1f} s)",
                                  loadgen_status.value_or(-1), total_s));
    result["loadgen"] = report;
    if (!window_start || !window_end)
        return failed(result, "no_window", "muxload never reported its measured window");

    uint64_t requests = report["summary"].value("requests", uint64_t{0});
    ServerCost window = cost_between(*window_start, *window_end, window_exits);
    // Thousands of fork children take seconds to read. The server's cost then covers a
    // shorter stretch than muxload's requests, and their ratio is no per-request figure.
    if (start_walk_s + end_walk_s > kMaxSampleShare * plan.duration_s)
        window.problems.push_back(fmt::format(
            "reading {} processes in /proc took {:.2f} s at the window's start and {:.2f} s at "
            "its end, over {:g}% of the {:g} s window: the server's cost and muxload's requests "
            "do not cover the same time",
            window_end->processes.size(), start_walk_s, end_walk_s, 100 * kMaxSampleShare,
            plan.duration_s));
    ServerCost since_idle = cost_between(idle_sample, *window_end);
    result["server_cost"] = server_cost_json(window, since_idle, requests, point.conns);
    result["loadgen_bound"] = report["summary"].value("loadgen_bound", false);

    if (timed_out)
        return failed(result, "timeout",
                      fmt::format("point exceeded {:g} s", plan.point_timeout_s));
    // muxload exits 3 when it measured but saw errors; the point stands, its errors are
    // counted in its metrics. A run that did not complete its ramp or window does not.
    if (!report["summary"].value("completed", false)) {
        const auto& summary = report["summary"];
        nlohmann::json connections = summary.value("connections", nlohmann::json::object());
        return failed(result, "loadgen_incomplete",
                      fmt::format("{} of {} connections ready after a {:.1f} s ramp; {} "
                                  "errors (muxload exit status {})",
                                  connections.value("at_start", 0), connections.value("wanted", 0),
                                  summary.value("connect_time_s", 0.0),
                                  summary.value("errors_total", uint64_t{0}),
                                  WIFEXITED(*loadgen_status) ? WEXITSTATUS(*loadgen_status) : -1));
    }
    result["status"] = "ok";
    return result;
}

}  // namespace mux::sweep
