#include "gbench_export.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "results.hpp"

namespace mux::sweep {

nlohmann::json gbench_json(const nlohmann::json& results) {
    const auto& env = results["environment"];
    const auto& plan = results["plan"];
    std::string build_type = env.value("build_type", "unknown");
    std::transform(build_type.begin(), build_type.end(), build_type.begin(), ::tolower);
    nlohmann::json context = {
        {"date", env.value("date_utc", results.value("started_at", ""))},
        {"host_name", env.value("hostname", "")},
        {"executable", "muxbench sweep --plan " + plan.value("name", std::string("custom"))},
        {"num_cpus", env.value("online_cores", 0)},
        {"mhz_per_cpu", 0},
        {"cpu_scaling_enabled", false},
        {"caches", nlohmann::json::array()},
        {"library_build_type", build_type},
        // Not in Google Benchmark's context; readers ignore what they do not know.
        {"muxbench_schema", results.value("schema", "")},
        {"git_commit", env.value("git_commit", "")},
        {"kernel", env.contains("kernel") && env["kernel"].is_object()
                       ? env["kernel"].value("release", "")
                       : ""}};

    // A family is a scenario and model; its instances are the x values, in plan order.
    std::map<std::string, int> family_index;
    std::map<std::string, std::vector<double>> family_xs;
    nlohmann::json benchmarks = nlohmann::json::array();
    nlohmann::json not_measured = nlohmann::json::array();
    int repeats = plan.value("repeats", 1);
    for (const auto& p : results["points"]) {
        std::string family = fmt::format("{}/{}", p.value("scenario", ""), p.value("model", ""));
        double x = p.value("x_value", 0.0);
        auto [fam, fresh] = family_index.try_emplace(family, int(family_index.size()));
        auto& xs = family_xs[family];
        auto where = std::find(xs.begin(), xs.end(), x);
        int instance = int(where - xs.begin());
        if (where == xs.end()) xs.push_back(x);
        std::string name = fmt::format("{}/{}:{:g}", family, p.value("x_name", "x"), x);
        nlohmann::json b = {{"name", name},
                            {"family_index", fam->second},
                            {"per_family_instance_index", instance},
                            {"run_name", name},
                            {"run_type", "iteration"},
                            {"repetitions", repeats},
                            {"repetition_index", p.value("repeat", 0)},
                            {"threads", 1},
                            {"time_unit", "us"}};
        auto m = metrics_of(p);
        bool measured = p.value("status", "") == "ok" && m.contains("latency_p50_us") &&
                        m.contains("cpu_us_per_request") && m.contains("throughput_per_s");
        if (!measured) {
            // Tools that read this format pair entries by name and average their times; a
            // zero standing in for "not measured" would be read as a real, very fast run.
            not_measured.push_back(
                {{"name", name},
                 {"repetition_index", p.value("repeat", 0)},
                 {"status", p.value("status", "failed")},
                 {"reason", p.contains("reason")
                                ? p["reason"].value("detail", "")
                                : "a metric is missing (see server_cost.missing)"}});
            continue;
        }
        // real_time carries the request's median latency and cpu_time the server's CPU per
        // request, so a tool comparing "time" and "CPU" compares the two that matter most.
        b["iterations"] = p["loadgen"]["summary"].value("requests", uint64_t{0});
        b["real_time"] = m["latency_p50_us"];
        b["cpu_time"] = m["cpu_us_per_request"];
        b["items_per_second"] = m["throughput_per_s"];
        for (const char* key : {"latency_p99_us", "syscalls_per_request", "wait_calls_per_request",
                                "io_calls_per_request", "memory_bytes_per_connection",
                                "context_switches_per_request"})
            if (m.contains(key)) b[key] = m[key];
        benchmarks.push_back(b);
    }
    // Not in Google Benchmark's format: the points left out, and why.
    return {
        {"context", context}, {"benchmarks", benchmarks}, {"muxbench_not_measured", not_measured}};
}

}  // namespace mux::sweep
