#include "point_runner.hpp"

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "limit.hpp"
#include "memory_baseline.hpp"
#include "models.hpp"
#include "server_cost.hpp"
#include "subprocess.hpp"
#include "window_environment.hpp"

namespace mux::sweep {

namespace {
// The share of the measured window that reading the server's tree in /proc (the fallback
// for a missing counter) may take before its figures no longer match muxload's requests.
constexpr double kMaxSampleShare = 0.05;
// How long muxload's --hold-after-window keeps its connections open at most (loadgen/run.cpp).
constexpr double kMuxloadHoldS = 10;

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

}  // namespace

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

namespace {
nlohmann::json with_status(nlohmann::json result, const char* status, const std::string& code,
                           const std::string& detail) {
    result["status"] = status;
    result["reason"] = {{"code", code}, {"detail", detail}};
    return result;
}

nlohmann::json failed(nlohmann::json result, const std::string& code, const std::string& detail) {
    return with_status(std::move(result), "failed", code, detail);
}

// muxload's exit codes (docs/muxload-json.md, "Exit status") the sweep acts on.
constexpr int kLoadgenNotClean = 4;
constexpr int kLoadgenVerifyFailed = 5;

// The status of a point whose muxload completed its ramp and window, from muxload's own
// verdict. An open-loop point (latency, slow) is judged on latency corrected for coordinated
// omission, which holds only for a clean run: one that achieved 99% of the offered rate and
// left no more requests unfinished than its connections hold, without errors (a request lost
// to an error never reaches the percentiles). Otherwise (muxload exit 3 or 4) its percentiles
// are a lower bound taken at a lower load than the plan's: the point keeps its numbers under
// a status of its own, never ok. A closed-loop point stands with errors (exit 3), which its
// metrics count, and with exit 4 (Little's law off by more than 10%): its verdict is kept in
// the point (loadgen_exit_status, the report's not_clean_reasons) but not made a status the
// regression check would count as a failed repeat, until it is settled whether the 13% seen
// in short windows on a loaded machine (fork, 100 connections, 0.5 s) is the server's or
// the window edges'.
nlohmann::json judged(nlohmann::json result, const Point& point, const nlohmann::json& summary,
                      int exit_code) {
    if (exit_code == kLoadgenVerifyFailed)
        return failed(
            std::move(result), "loadgen_verification",
            fmt::format("most replies failed verification (muxload exit status {}): {}", exit_code,
                        summary.value("first_failure", nlohmann::json()).dump()));
    // A load that never settled before the window (muxload's steadiness check, extended to
    // its bound) measured a server on its way somewhere: its figures are kept, never as ok.
    if (!summary.value("steady", true)) {
        std::string reasons;
        for (const auto& reason : summary.value("unsteady_reasons", std::vector<std::string>{}))
            reasons += (reasons.empty() ? "" : "; ") + reason;
        const auto& warmup = summary.value("warmup", nlohmann::json::object());
        return with_status(
            std::move(result), "unsteady", "loadgen_unsteady",
            fmt::format("{} (after a {:.3g} s warmup, {:.3g} s of it extension, "
                        "{} checks)",
                        reasons, warmup.value("warmup_s", 0.0), warmup.value("extended_s", 0.0),
                        warmup.value("steady_checks", 0)));
    }
    // A rate point past saturation falls short of its offered rate and leaves requests unsent:
    // that shortfall is its figure (the reply rate against the request rate), and in open
    // loop those two are muxload's only exit-4 reasons besides an unsteady warmup (judged
    // above), so it stands; its reasons stay in its report. Errors (exit 3) still make it not
    // clean: a lost request is not a reply rate.
    if (point.reply_rate_is_figure && exit_code == kLoadgenNotClean) {
        result["status"] = "ok";
        return result;
    }
    bool open_loop = point.rate_per_s > 0;
    if (open_loop && (exit_code == kLoadgenNotClean || !summary.value("clean", true))) {
        std::string reasons;
        for (const auto& reason : summary.value("not_clean_reasons", std::vector<std::string>{}))
            reasons += (reasons.empty() ? "" : "; ") + reason;
        return with_status(
            std::move(result), "not_clean", "loadgen_not_clean",
            fmt::format("{} (muxload exit status {})",
                        reasons.empty() ? "muxload judged the run not clean" : reasons, exit_code));
    }
    result["status"] = "ok";
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

// muxload's event line as an object; an empty one for any other line.
nlohmann::json event_of(const std::string& line) {
    if (line.empty() || line.front() != '{') return nlohmann::json::object();
    auto j = nlohmann::json::parse(line, nullptr, false);
    return j.is_object() ? j : nlohmann::json::object();
}

// SCHED_FIFO for this thread while it lives, where this process may: woken at a window's
// edge, the sweep then runs at once instead of after whatever else is runnable, which took
// up to 86 ms here under load from other work. It holds the CPU only while it reads the
// counters and the cgroup (ServerCostProbe drops it before a /proc walk), and no child
// inherits it.
class RealtimeWhileReading {
  public:
    RealtimeWhileReading() {
        sched_param realtime{};
        realtime.sched_priority = 1;
        raised_ = sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &realtime) == 0;
    }
    ~RealtimeWhileReading() {
        sched_param normal{};
        if (raised_) sched_setscheduler(0, SCHED_OTHER, &normal);
    }
    RealtimeWhileReading(const RealtimeWhileReading&) = delete;
    RealtimeWhileReading& operator=(const RealtimeWhileReading&) = delete;

  private:
    bool raised_ = false;
};

// Sleeps until t_ns on CLOCK_MONOTONIC, muxload's clock (and steady_clock's, on Linux),
// unless that is past the point's deadline.
bool sleep_until_ns(int64_t t_ns, Clock::time_point deadline) {
    auto deadline_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    if (t_ns > deadline_ns) return false;
    timespec at{time_t(t_ns / 1'000'000'000), long(t_ns % 1'000'000'000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
    }
    return true;
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
    auto baseline_started = Clock::now();
    // Churn holds no connection: it opens one per request, so what its memory grew by over a
    // run is what thousands of closed connections left behind, not a cost per held one.
    const uint64_t replies_needed = baseline_replies_needed(ready);
    uint64_t baseline_replies = 0;
    std::string no_baseline =
        point.requests_per_conn > 0
            ? "churn opens a connection per request and holds none: no memory per connection"
            : with_one_idle_connection(
                  point, plan, bin, ready["endpoint"], replies_needed,
                  std::min(left(), milliseconds(10000)), [&probe] { probe.sample_baseline(); },
                  &baseline_replies);
    double baseline_s = seconds_since(baseline_started);
    if (point.requests_per_conn == 0)
        conditions["memory_baseline"] = {{"replies", baseline_replies},
                                         {"replies_needed", replies_needed}};

    std::string json_path =
        fmt::format("{}/muxbench-point-{}-{}.json", std::filesystem::temp_directory_path().string(),
                    getpid(), server.pid());
    SpawnOptions loadgen_options;
    loadgen_options.cpus = plan.client_cpus;
    loadgen_options.pipe_stdin = true;  // closed once the end of the window is sampled
    Subprocess loadgen(loadgen_argv(point, plan, bin, ready["endpoint"], json_path),
                       loadgen_options);

    bool window_started = false, window_ended = false, start_read = false, end_read = false,
         memory_read = false;
    Clock::time_point measure_started{}, measure_ended{};
    double start_sample_s = 0, end_sample_s = 0, memory_sample_s = 0;
    auto read_start = [&] {
        measure_started = Clock::now();
        start_sample_s = probe.mark_start();
        window_environment.mark_start();
        start_read = true;
    };
    auto read_end = [&] {
        measure_ended = Clock::now();
        end_sample_s = probe.mark_end();
        window_environment.mark_end();
        end_read = true;
    };
    while (auto line = loadgen.read_line(left())) {
        auto event = event_of(*line);
        std::string name = event.value("event", "");
        if (name == "window") {
            // The counters are read at the window's edges themselves, waking for them, not
            // when measure_start and measure_end arrive: those trail the edges by muxload's
            // and this process's scheduling delays (up to 36 ms here under load), which
            // would shift the counters' window off the one muxload counts requests in.
            int64_t start_ns = event.value("start_ns", int64_t{0});
            int64_t end_ns = event.value("end_ns", int64_t{0});
            if (start_ns > 0 && end_ns > start_ns) {
                RealtimeWhileReading at_once;
                if (sleep_until_ns(start_ns, deadline)) read_start();
            }
            if (start_read && end_ns > start_ns) {
                RealtimeWhileReading at_once;
                if (sleep_until_ns(end_ns, deadline)) read_end();
            }
        } else if (name == "measure_start") {
            if (!start_read) read_start();  // a muxload that announced no window
            window_started = true;
        } else if (name == "measure_end") {
            if (!end_read) read_end();
            window_ended = window_started;
        } else if (name == "holding") {
            // After the drain: the freeze for the reading delays no reply muxload counts.
            memory_sample_s = probe.sample_memory();
            memory_read = true;
            loadgen.close_stdin();  // muxload held its connections open until now
        }
    }
    auto loadgen_status = loadgen.wait(std::max(left(), milliseconds(1)));
    bool timed_out = !loadgen_status;
    if (timed_out) loadgen.stop(milliseconds(2000));
    if (window_ended && !memory_read)
        probe.memory_not_read(fmt::format(
            "muxload printed no holding line after its window (exit status {})",
            loadgen_status && WIFEXITED(*loadgen_status) ? WEXITSTATUS(*loadgen_status) : -1));
    else if (memory_sample_s > kMuxloadHoldS - 1)
        probe.memory_not_read(fmt::format(
            "the reading took {:.1f} s, near muxload's {:g} s hold: its connections may have "
            "closed during it",
            memory_sample_s, kMuxloadHoldS));

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
            {"memory_sample", memory_sample_s},
            {"memory_baseline", baseline_s}};
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
    ServerCostProbe::WindowUnixNs window{
        report["summary"].value("window_start_unix_ns", uint64_t{0}),
        report["summary"].value("window_end_unix_ns", uint64_t{0})};
    result["server_cost"] =
        probe.to_json(requests, uint64_t(point.conns), kMaxSampleShare, window, no_baseline);
    // muxload's word that it was the limit, then the server's side beside it (limit.hpp).
    const bool loadgen_saturated = report["summary"].value("loadgen_bound", false);
    const ModelInfo* model = find_model(point.model);
    const auto busy_share =
        server_busy_share(result["conditions"].value("window", nlohmann::json()),
                          model != nullptr && model->polls_when_idle);
    const Limit limit = judge_limit(loadgen_saturated, busy_share);
    result["loadgen_saturated"] = loadgen_saturated;
    result["server_busy_share"] =
        busy_share ? nlohmann::json(*busy_share) : nlohmann::json(nullptr);
    result["limit"] = limit_name(limit);
    result["loadgen_bound"] = limit == Limit::Loadgen;

    int exit_code =
        loadgen_status && WIFEXITED(*loadgen_status) ? WEXITSTATUS(*loadgen_status) : -1;
    result["loadgen_exit_status"] =
        exit_code >= 0 ? nlohmann::json(exit_code) : nlohmann::json(nullptr);
    if (timed_out)
        return failed(result, "timeout",
                      fmt::format("point exceeded {:g} s", plan.point_timeout_s));
    // A run that did not complete its ramp or window does not stand, and muxload's own
    // reasons say why with its figures: connections ready of wanted after how long a ramp
    // (ramp_s), no reply in the window, the errors by kind.
    if (!report["summary"].value("completed", false)) {
        std::string why;
        for (const auto& reason :
             report["summary"].value("not_clean_reasons", std::vector<std::string>{}))
            why += (why.empty() ? "" : "; ") + reason;
        return failed(
            result, "loadgen_incomplete",
            fmt::format("{} (muxload exit status {})",
                        why.empty() ? "muxload did not complete its run" : why, exit_code));
    }
    return judged(std::move(result), point, report["summary"], exit_code);
}

}  // namespace mux::sweep
