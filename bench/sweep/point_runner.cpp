#include "point_runner.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "models.hpp"
#include "server_cost.hpp"
#include "subprocess.hpp"
#include "window_environment.hpp"

namespace mux::sweep {

namespace {
// The share of the measured window that reading the server's tree in /proc (the fallback
// for a missing counter) may take before its figures no longer match muxload's requests.
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

std::vector<std::string> server_argv(const Point& point, const Plan& plan, const Binaries& bin) {
    std::vector<std::string> argv{bin.muxserver, "--model",  point.model,      "--proto",
                                  plan.proto,    "--listen", "tcp:127.0.0.1:0"};
    const ModelInfo* model = find_model(point.model);
    if (plan.workers > 0 && model != nullptr && model->has_workers())
        argv.insert(argv.end(), {"--workers", std::to_string(plan.workers)});
    return argv;
}

// How the server was configured, as its listening line says: the model's settings (workers,
// thread_stack_bytes, et_drain, ...), not where or as which process it ran.
nlohmann::json server_settings(nlohmann::json ready) {
    for (const char* key : {"event", "endpoint", "pid"}) ready.erase(key);
    return ready;
}

// The kernel refused the model (muxserver's "refused" line, exit status 69): the point is
// refused with the server's reason and errno, not failed.
nlohmann::json refused_by_server(nlohmann::json result, const nlohmann::json& line,
                                 Subprocess& server) {
    server.wait(milliseconds(5000));
    result["status"] = "refused";
    const int error = line.value("errno", 0);
    result["reason"] = {{"code", line.value("reason", "refused_by_server")},
                        {"detail", fmt::format("{} (errno {}, {})", line.value("detail", ""), error,
                                               line.value("error", "?"))},
                        {"errno", error}};
    return result;
}

nlohmann::json failed(nlohmann::json result, const std::string& code, const std::string& detail) {
    result["status"] = "failed";
    result["reason"] = {{"code", code}, {"detail", detail}};
    return result;
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

    // The previous point's server is gone with its cgroup; its connections may not be yet.
    nlohmann::json conditions = {{"before", settle_sockets()}};
    WindowEnvironment window_environment(plan.server_cpus, plan.client_cpus);

    // Declared before the server so that it outlives it: whatever the server leaves behind
    // is killed with the run's cgroup.
    ServerCostProbe probe;
    SpawnOptions server_options;
    server_options.cpus = plan.server_cpus;
    server_options.before_exec = [&probe](pid_t pid) { probe.attach(pid); };
    Subprocess server(server_argv(point, plan, bin), server_options);
    auto ready_line = server.read_line(std::min(left(), milliseconds(10000)));
    auto ready = nlohmann::json::parse(ready_line.value_or(""), nullptr, false);
    if (ready.is_object() && ready.value("event", "") == "refused")
        return refused_by_server(result, ready, server);
    if (!ready.is_object() || ready.value("event", "") != "listening")
        return failed(result, "server_start",
                      "muxserver printed no listening line: " + ready_line.value_or("(nothing)"));
    result["server_settings"] = server_settings(ready);
    probe.sample_idle();

    std::string json_path =
        fmt::format("{}/muxbench-point-{}-{}.json", std::filesystem::temp_directory_path().string(),
                    getpid(), server.pid());
    SpawnOptions loadgen_options;
    loadgen_options.cpus = plan.client_cpus;
    loadgen_options.pipe_stdin = true;  // closed once the end of the window is sampled
    Subprocess loadgen(loadgen_argv(point, plan, bin, ready["endpoint"], json_path),
                       loadgen_options);

    bool window_started = false, window_ended = false;
    Clock::time_point measure_started{}, measure_ended{};
    double start_sample_s = 0, end_sample_s = 0, memory_sample_s = 0;
    while (auto line = loadgen.read_line(left())) {
        std::string event = event_of(*line);
        if (event == "measure_start") {
            measure_started = Clock::now();
            start_sample_s = probe.mark_start();
            window_environment.mark_start();
            window_started = true;
        } else if (event == "measure_end") {
            measure_ended = Clock::now();
            end_sample_s = probe.mark_end();
            window_environment.mark_end();
            window_ended = window_started;
            memory_sample_s = probe.sample_memory();
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

    conditions["window"] = window_environment.to_json();
    result["conditions"] = std::move(conditions);

    std::string cgroup_error;
    if (!probe.cgroup().remove(&cgroup_error)) fmt::print(stderr, "sweep: {}\n", cgroup_error);

    double total_s = seconds_since(started);
    if (window_ended) {
        result["timing_s"] = {
            {"setup", std::chrono::duration<double>(measure_started - started).count()},
            {"measure", std::chrono::duration<double>(measure_ended - measure_started).count()},
            {"teardown", std::chrono::duration<double>(Clock::now() - measure_ended).count()},
            {"total", total_s},
            {"start_sample", start_sample_s},
            {"end_sample", end_sample_s},
            {"memory_sample", memory_sample_s}};
    }

    std::ifstream in(json_path);
    auto report = nlohmann::json::parse(in, nullptr, false);
    std::filesystem::remove(json_path);
    if (report.is_discarded() || !report.is_object())
        return failed(result, timed_out ? "timeout" : "loadgen_no_report",
                      fmt::format("muxload wrote no report (exit status {}, after {:.1f} s)",
                                  loadgen_status.value_or(-1), total_s));
    result["loadgen"] = report;
    if (!window_ended)
        return failed(result, "no_window", "muxload never reported its measured window");

    uint64_t requests = report["summary"].value("requests", uint64_t{0});
    result["server_cost"] = probe.to_json(requests, uint64_t(point.conns), kMaxSampleShare);
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
