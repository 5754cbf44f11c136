#include "sweep_command.hpp"

#include <sched.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <fmt/format.h>

#include "environment.hpp"
#include "models.hpp"
#include "point_runner.hpp"
#include "progress.hpp"
#include "results.hpp"
#include "run_cgroup.hpp"

namespace mux::sweep {

namespace {
std::vector<std::string> model_names() {
    std::vector<std::string> names;
    for (const auto& m : all_models()) names.emplace_back(m.name);
    return names;
}

}  // namespace

std::string run_timestamp() {
    std::time_t now = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&now));
    return buf;
}

std::string plan_path(const std::string& value) {
    if (value.find('/') != std::string::npos || value.ends_with(".toml") || value.ends_with(".ini"))
        return value;
    return std::string(MUX_SOURCE_DIR) + "/bench/plans/" + value + ".toml";
}

void add_plan_option(CLI::App& app) {
    // CLI11 reads plans as config files; keys sit in a [sweep] section. Options given on the
    // command line override the plan.
    app.set_config("--plan", "",
                   "Plan: a name from bench/plans (quick, full, check, slow-pools, gammo) or a "
                   ".toml path")
        ->transform([](const std::string& value) {
            std::string path = plan_path(value);
            if (!std::filesystem::exists(path))
                throw CLI::ValidationError("--plan", "no plan file " + path);
            return path;
        });
}

void setup_sweep(CLI::App& app, SweepOptions& o) {
    Plan& p = o.plan;
    app.add_option("--name", p.name, "Plan name recorded in the results")->capture_default_str();
    app.add_option("--models", p.models, "Models to run, comma-separated (default: all)")
        ->delimiter(',')
        ->check(CLI::IsMember(model_names()));
    app.add_option("--scenarios", p.scenarios,
                   "Scenarios: active,idle,latency,churn,slow (the default), and rate")
        ->delimiter(',')
        ->check(CLI::IsMember(kScenarios))
        ->capture_default_str();
    app.add_option("--proto", p.proto, "mux1 or http")
        ->check(CLI::IsMember({"mux1", "http"}))
        ->capture_default_str();
    app.add_option("--payload", p.payload_bytes, "Request payload, bytes (mux1)")
        ->capture_default_str();
    app.add_option("--reply", p.reply_bytes, "Reply payload, bytes (mux1 GEN; http /bytes/N)")
        ->capture_default_str();
    app.add_option("--work-us", p.work_us, "CPU the server burns per request, microseconds")
        ->capture_default_str();
    app.add_option("--conns", p.conns, "active: connection counts, comma-separated")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--idle-conns", p.idle_conns, "idle: idle connection counts")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--idle-active", p.idle_active, "idle: loaded connections beside the idle ones")
        ->capture_default_str();
    app.add_option("--latency-rate", p.latency_rate_per_s,
                   "latency: open-loop total rate, requests/s")
        ->capture_default_str();
    app.add_option("--latency-conns", p.latency_conns, "latency: connections")
        ->capture_default_str();
    app.add_option("--churn-conns", p.churn_conns,
                   "churn: concurrent connections, one request each")
        ->capture_default_str();
    app.add_option("--slow-mix", p.slow_mix,
                   "slow: P%:US, e.g. 1%:10000 = 1% of requests burn 10 ms")
        ->capture_default_str();
    app.add_option("--slow-conns", p.slow_conns, "slow: connections")->capture_default_str();
    app.add_option("--slow-rate", p.slow_rate_per_s,
                   "slow: open-loop total rate, requests/s (latency corrected for coordinated "
                   "omission)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--rates", p.rates_per_s,
                   "rate: offered open-loop total rates, requests/s, comma-separated (no default: "
                   "measure the machine's saturation and span it)")
        ->delimiter(',')
        ->check(CLI::PositiveNumber);
    app.add_option("--rate-idle-conns", p.rate_idle_conns,
                   "rate: idle connection counts, a rate sweep at each")
        ->delimiter(',')
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--rate-active", p.rate_active,
                   "rate: loaded connections that carry the offered rate")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--duration", p.duration_s, "Measured window per point, seconds")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--warmup", p.warmup_s, "Unrecorded warmup per point, seconds")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--repeats", p.repeats, "Runs per point; median, min and max are kept")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--loadgen-threads", p.loadgen_threads, "muxload --threads")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--workers", p.workers,
                   "Threads of the pool models (epoll-oneshot, reuseport), passed as muxserver "
                   "--workers; 0: muxserver's default, the CPUs in its affinity mask "
                   "(--server-cpus)")
        ->check(CLI::Range(0, 1024))
        ->capture_default_str();
    app.add_option("--server-cpus", p.server_cpus, "CPUs the server (and fork children) may use")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--client-cpus", p.client_cpus, "CPUs muxload may use")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--point-timeout", p.point_timeout_s, "Hard bound on one point, seconds")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--out", o.out_dir, "Folder in which the run's results folder is made")
        ->capture_default_str();
    app.add_option("--run-name", o.run_name, "Name of the results folder (default: DATE-PLAN)");
}

int run_sweep(const SweepOptions& options) {
    Plan plan = options.plan;
    std::vector<std::string> models = plan.models.empty() ? model_names() : plan.models;
    plan.models = models;

    // The driver samples at the window's edges: keep it off the server's CPUs, where it would
    // take turns with the server it measures. (environment.cpu_affinity records where it ran.)
    if (!plan.client_cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int cpu : plan.client_cpus)
            if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0)
            fmt::print(stderr, "sweep: cannot pin the driver to the client CPUs: {}\n",
                       std::strerror(errno));
    }

    if (auto error = plan_error(plan)) {
        fmt::print(stderr, "sweep: {}\n", *error);
        return 2;
    }
    rlimit fd_limit{};
    getrlimit(RLIMIT_NOFILE, &fd_limit);
    Limits limits{fd_limit.rlim_max};
    read_task_limits(limits);
    for (const auto& note : trim_to_fd_limit(plan, limits)) fmt::print(stderr, "sweep: {}\n", note);

    // Each point's server runs in a cgroup of its own, removed when the point ends: also on
    // SIGINT/SIGTERM/SIGHUP, and a sweep killed with SIGKILL leaves groups this one removes.
    std::vector<std::string> cgroup_errors;
    for (const auto& path : remove_stale_cgroups(&cgroup_errors))
        fmt::print(stderr, "sweep: removed {}, left by a sweep that was killed\n", path);
    for (const auto& error : cgroup_errors) fmt::print(stderr, "sweep: {}\n", error);
    remove_cgroups_on_termination_signals();

    Binaries binaries = find_binaries();
    for (const auto& path : {binaries.muxserver, binaries.muxload})
        if (!std::filesystem::exists(path)) {
            fmt::print(stderr, "sweep: {} not found; build the project first\n", path);
            return 2;
        }

    std::vector<Point> points = expand_plan(plan, models);
    std::string run_name =
        options.run_name.empty() ? run_timestamp() + "-" + plan.name : options.run_name;
    std::filesystem::path dir = std::filesystem::path(options.out_dir) / run_name;
    fmt::print(stderr, "sweep: plan '{}', {} points ({} models), results in {}\n", plan.name,
               points.size(), models.size(), dir.string());

    nlohmann::json results = {{"schema", kResultsSchema},
                              {"environment", describe_environment()},
                              {"plan", plan.to_json()},
                              {"started_at", run_timestamp()},
                              {"points", nlohmann::json::array()}};
    Progress progress(points.size());
    for (size_t i = 0; i < points.size(); ++i) {
        const Point& point = points[i];
        progress.start_point(i, point.label());
        nlohmann::json r;
        if (auto refusal = predicted_refusal(point, limits))
            r = refused_point(point, *refusal);
        else
            r = run_point(point, plan, binaries);
        std::string detail = r.contains("reason") ? r["reason"].value("detail", "") : "";
        progress.finish_point(r.value("status", "failed"), detail);
        results["points"].push_back(std::move(r));
    }
    progress.done();
    results["finished_at"] = run_timestamp();
    results["summary"] = summarize(results["points"]);
    write_results(dir, results);
    fmt::print("{}", summary_table(results));
    fmt::print("\nresults: {}\n", (dir / "results.json").string());
    return 0;
}

}  // namespace mux::sweep
