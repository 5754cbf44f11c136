#include "results.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <zlib.h>

#include "gbench_export.hpp"
#include "limit.hpp"
#include "results_validation.hpp"

namespace mux::sweep {

const std::vector<MetricInfo>& metric_infos() {
    static const std::vector<MetricInfo> infos = {
        {"throughput_per_s", "requests/s", true},
        {"latency_p50_us", "us", false},
        {"latency_p90_us", "us", false},
        {"latency_p99_us", "us", false},
        {"latency_p999_us", "us", false},
        {"cpu_us_per_request", "us", false},
        {"cpu_user_us_per_request", "us", false},
        {"cpu_sys_us_per_request", "us", false},
        {"syscalls_per_request", "syscalls", false},
        {"wait_calls_per_request", "syscalls", false},
        {"io_calls_per_request", "syscalls", false},
        {"context_switches_per_request", "switches", false},
        {"page_faults_per_request", "faults", false},
        {"memory_bytes_per_connection", "bytes", false},
        {"jain_index", "", true},
        {"unserved_connections", "connections", false},
        {"errors", "errors", false},
        {"ramp_s", "s", false},
    };
    return infos;
}

nlohmann::json metrics_of(const nlohmann::json& point) {
    nlohmann::json m = nlohmann::json::object();
    if (!point.contains("loadgen")) return m;
    const auto& s = point["loadgen"]["summary"];
    auto copy = [&](const char* key, const nlohmann::json& from, const char* field) {
        if (from.is_object() && from.contains(field) && from[field].is_number())
            m[key] = from[field];
    };
    copy("throughput_per_s", s, "throughput_per_s");
    if (s.contains("latency_us")) {
        copy("latency_p50_us", s["latency_us"], "p50");
        copy("latency_p90_us", s["latency_us"], "p90");
        copy("latency_p99_us", s["latency_us"], "p99");
        copy("latency_p999_us", s["latency_us"], "p999");
    }
    if (s.contains("fairness")) {
        copy("jain_index", s["fairness"], "jain_index");
        copy("unserved_connections", s["fairness"], "unserved_connections");
    }
    if (point["loadgen"].contains("errors") && point["loadgen"]["errors"].is_object()) {
        uint64_t errors = 0;
        for (const auto& [kind, n] : point["loadgen"]["errors"].items())
            if (n.is_number()) errors += n.get<uint64_t>();
        m["errors"] = errors;
    }
    // The connection ramp: muxload's ramp_s where it reports one, else its connect_time_s.
    copy("ramp_s", s, s.contains("ramp_s") ? "ramp_s" : "connect_time_s");
    if (point.contains("server_cost")) {
        const auto& c = point["server_cost"];
        for (const char* key :
             {"cpu_us_per_request", "cpu_user_us_per_request", "cpu_sys_us_per_request",
              "syscalls_per_request", "wait_calls_per_request", "io_calls_per_request",
              "context_switches_per_request", "page_faults_per_request",
              "memory_bytes_per_connection"})
            copy(key, c, key);  // a null figure (no source could give it) stays absent
    }
    return m;
}

nlohmann::json summarize(const nlohmann::json& points) {
    // Keyed in first-seen order so the summary follows the plan's order.
    std::vector<std::string> order;
    std::map<std::string, std::vector<const nlohmann::json*>> groups;
    for (const auto& p : points) {
        std::string key = fmt::format("{}|{}|{}", p["scenario"].get<std::string>(),
                                      p["x_value"].get<double>(), p["model"].get<std::string>());
        if (!groups.count(key)) order.push_back(key);
        groups[key].push_back(&p);
    }
    nlohmann::json out = nlohmann::json::array();
    for (const auto& key : order) {
        const auto& members = groups[key];
        const auto& first = *members.front();
        nlohmann::json entry = {{"scenario", first["scenario"]},
                                {"model", first["model"]},
                                {"x_name", first["x_name"]},
                                {"x_value", first["x_value"]},
                                {"repeats", members.size()}};
        size_t ok = 0;
        for (const auto* p : members)
            if (p->value("status", "") == "ok") ++ok;
        entry["repeats_ok"] = ok;
        // A group is ok only if every repeat was; otherwise it takes the status and reason of
        // its first repeat that was not (a refusal, decided before running, covers them all).
        entry["status"] = "ok";
        for (const auto* p : members)
            if (p->value("status", "") != "ok") {
                entry["status"] = p->value("status", "failed");
                entry["reason"] = p->value("reason", nlohmann::json::object());
                break;
            }
        // Only ok repeats are summarised: a failed repeat's figures (a server that died, a ramp
        // that never finished) describe the failure, not the model. A group with no ok repeat
        // but not_clean ones keeps theirs, as the lower bounds its not_clean status says they are.
        bool any_not_clean = false;
        for (const auto* p : members) any_not_clean |= p->value("status", "") == "not_clean";
        const char* summarised = ok > 0 || !any_not_clean ? "ok" : "not_clean";
        // Which side set the limit, judged on the summarised repeats' medians (limit.hpp).
        std::vector<const nlohmann::json*> judged;
        for (const auto* p : members)
            if (p->value("status", "") == summarised) judged.push_back(p);
        const Limit limit = judge_group_limit(judged);
        if (!judged.empty()) entry["limit"] = limit_name(limit);
        entry["loadgen_bound"] = !judged.empty() && limit == Limit::Loadgen;
        nlohmann::json metrics = nlohmann::json::object();
        for (const auto& info : metric_infos()) {
            std::vector<double> values;
            for (const auto* p : members) {
                if (p->value("status", "") != summarised) continue;
                auto m = metrics_of(*p);
                if (m.contains(info.key)) values.push_back(m[info.key].get<double>());
            }
            if (values.empty()) continue;
            std::sort(values.begin(), values.end());
            size_t n = values.size();
            double median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
            metrics[info.key] = {{"median", median},
                                 {"min", values.front()},
                                 {"max", values.back()},
                                 {"values", values}};
        }
        entry["metrics"] = metrics;
        out.push_back(entry);
    }
    return out;
}

void write_results(const std::filesystem::path& dir, const nlohmann::json& results) {
    std::filesystem::create_directories(dir);
    // Compact: a full plan's histograms indented run to millions of lines. `jq .` indents it.
    std::ofstream(dir / "results.json") << results.dump() << "\n";
    std::ofstream(dir / "gbench.json") << gbench_json(results).dump() << "\n";
    std::ofstream csv(dir / "points.csv");
    csv << "scenario,model,x_name,x_value,conns,active,repeat,status,reason,limit";
    for (const auto& info : metric_infos()) csv << "," << info.key;
    csv << "\n";
    for (const auto& p : results["points"]) {
        std::string reason = p.contains("reason") ? p["reason"].value("code", "") : "";
        const auto limit = p.find("limit");
        csv << fmt::format("{},{},{},{},{},{},{},{},{},{}", p["scenario"].get<std::string>(),
                           p["model"].get<std::string>(), p["x_name"].get<std::string>(),
                           p["x_value"].get<double>(), p["conns"].get<int>(),
                           p["active"].get<int>(), p["repeat"].get<int>(), p.value("status", ""),
                           reason,
                           limit != p.end() && limit->is_string() ? limit->get<std::string>() : "");
        auto m = metrics_of(p);
        for (const auto& info : metric_infos()) {
            csv << ",";
            if (m.contains(info.key)) csv << fmt::format("{:g}", m[info.key].get<double>());
        }
        csv << "\n";
    }
}

void upgrade_from_schema_1(nlohmann::json& results) {
    if (!results["points"].is_array()) return;
    for (auto& point : results["points"]) {
        if (!point.is_object() || !point.contains("server_cost") ||
            !point["server_cost"].is_object())
            continue;
        auto& cost = point["server_cost"];
        // Schema 1's syscalls were /proc's syscr + syscw: the read and write families only.
        if (cost.contains("syscalls_per_request")) {
            cost["io_calls_per_request"] = cost["syscalls_per_request"];
            cost.erase("syscalls_per_request");
        }
    }
    results["summary"] = summarize(results["points"]);
    results["schema"] = kResultsSchema;
    results["upgraded_from"] = kResultsSchema1;
}

namespace {

// A results file decompresses to at most this: the full plan's run is about 12 MB, and a
// file that claims more is refused before it fills the memory.
constexpr size_t kMaxResultsBytes = size_t{1} << 30;

// The text of a gzip-compressed results file, or nullopt with *error naming the file.
std::optional<std::string> read_gzip(const std::filesystem::path& file, std::string* error) {
    gzFile in = gzopen(file.c_str(), "rb");
    if (!in) {
        *error = fmt::format("{}: cannot open (is it a muxbench results folder?)", file.string());
        return std::nullopt;
    }
    std::string text;
    char chunk[1 << 16];
    int n = 0;
    while ((n = gzread(in, chunk, sizeof chunk)) > 0) {
        if (text.size() + size_t(n) > kMaxResultsBytes) {
            gzclose(in);
            *error =
                fmt::format("{}: decompresses to more than {} MiB; no results file is that big",
                            file.string(), kMaxResultsBytes >> 20);
            return std::nullopt;
        }
        text.append(chunk, size_t(n));
    }
    int code = Z_OK;
    std::string why = n < 0 ? gzerror(in, &code) : "";
    gzclose(in);
    if (n < 0) {
        *error = fmt::format("{}: not a readable gzip file: {}", file.string(), why);
        return std::nullopt;
    }
    return text;
}

}  // namespace

std::filesystem::path results_file(const std::filesystem::path& path) {
    if (!std::filesystem::is_directory(path)) return path;
    auto plain = path / "results.json";
    auto packed = path / "results.json.gz";
    return !std::filesystem::exists(plain) && std::filesystem::exists(packed) ? packed : plain;
}

std::optional<nlohmann::json> read_results(const std::filesystem::path& path, std::string* error) {
    auto file = results_file(path);
    std::optional<nlohmann::json> j;
    if (file.extension() == ".gz") {
        auto text = read_gzip(file, error);
        if (!text) return std::nullopt;
        std::istringstream in(std::move(*text));
        j = parse_results(in, file.string(), error);
    } else {
        std::ifstream in(file);
        if (!in) {
            *error =
                fmt::format("{}: cannot open (is it a muxbench results folder?)", file.string());
            return std::nullopt;
        }
        j = parse_results(in, file.string(), error);
    }
    if (j && j->value("schema", "") == kResultsSchema1) upgrade_from_schema_1(*j);
    return j;
}

std::optional<nlohmann::json> merge_runs(const std::vector<nlohmann::json>& runs,
                                         const std::vector<std::string>& names,
                                         std::string* error) {
    if (runs.empty()) {
        *error = "no runs to merge";
        return std::nullopt;
    }
    auto without = [](nlohmann::json j, const char* key) {
        j.erase(key);
        return j;
    };
    const nlohmann::json& first = runs.front();
    nlohmann::json merged = first;
    merged["points"] = nlohmann::json::array();
    merged["merged_from"] = nlohmann::json::array();
    int repeats = 0;
    for (size_t i = 0; i < runs.size(); ++i) {
        const nlohmann::json& run = runs[i];
        for (const auto& [block, ignored] :
             {std::pair{"plan", "repeats"}, {"environment", "date_utc"}})
            if (without(run[block], ignored) != without(first[block], ignored)) {
                nlohmann::json diff = nlohmann::json::diff(without(first[block], ignored),
                                                           without(run[block], ignored));
                *error = fmt::format(
                    "{} and {} differ in their {} ({}): their repeats do not "
                    "sample one thing",
                    names.front(), names[i], block, diff.dump());
                return std::nullopt;
            }
        int run_repeats = run["plan"].value("repeats", 1);
        for (auto point : run["points"]) {
            point["repeat"] = point.value("repeat", 0) + repeats;
            merged["points"].push_back(std::move(point));
        }
        merged["merged_from"].push_back({{"run", names[i]},
                                         {"started_at", run.value("started_at", "")},
                                         {"finished_at", run.value("finished_at", "")},
                                         {"repeats", run_repeats}});
        repeats += run_repeats;
    }
    merged["plan"]["repeats"] = repeats;
    merged["finished_at"] = runs.back().value("finished_at", "");
    merged["summary"] = summarize(merged["points"]);
    return merged;
}

namespace {
// One model's cell: the metric's median (and metric2's after a slash), the server's CPU per
// request in brackets, * when loadgen-bound, + when both sides were saturated, ! when not clean;
// or the status and its reason.
std::string summary_cell(const nlohmann::json& e, const char* metric, const char* metric2) {
    const auto& metrics = e["metrics"];
    bool not_clean = e["status"] == "not_clean";
    if ((e["status"] != "ok" && !not_clean) || !metrics.contains(metric))
        return e["status"] == "ok"
                   ? "-"
                   : fmt::format("{} ({})", e["status"].get<std::string>(),
                                 e.contains("reason") ? e["reason"].value("code", "") : "");
    auto median = [&](const char* key) { return metrics[key]["median"].get<double>(); };
    std::string cpu = metrics.contains("cpu_us_per_request")
                          ? fmt::format(" [{:.1f}]", median("cpu_us_per_request"))
                          : "";
    std::string second =
        metric2 && metrics.contains(metric2) ? fmt::format("/{:.0f}", median(metric2)) : "";
    const auto found = e.find("limit");
    const std::string limit =
        found != e.end() && found->is_string() ? found->get<std::string>() : "";
    const char* mark = limit == "loadgen" ? "*" : limit == "both" ? "+" : "";
    return fmt::format("{:.0f}{}{}{}{}", median(metric), second, cpu, mark, not_clean ? "!" : "");
}
}  // namespace

std::string summary_table(const nlohmann::json& results) {
    std::string out;
    bool any_not_clean = false;
    std::vector<std::string> models;
    for (const auto& e : results["summary"]) {
        std::string m = e["model"];
        if (std::find(models.begin(), models.end(), m) == models.end()) models.push_back(m);
    }
    std::vector<std::string> scenarios;
    for (const auto& e : results["summary"]) {
        std::string s = e["scenario"];
        if (std::find(scenarios.begin(), scenarios.end(), s) == scenarios.end())
            scenarios.push_back(s);
    }
    for (const auto& scenario : scenarios) {
        // latency is judged by its tail, the others by throughput. slow runs open loop like
        // latency, so its percentiles are corrected too: 1% of requests are the slow ones, so
        // p99 sits on them, and p90 shows the fast requests stuck behind them.
        const char* metric = "throughput_per_s";
        const char* metric2 = nullptr;
        const char* title = "throughput (requests/s)";
        if (scenario == "latency") metric = "latency_p99_us", title = "p99 latency (us)";
        if (scenario == "slow") {
            metric = "latency_p90_us";
            metric2 = "latency_p99_us";
            title = "corrected p90/p99 latency (us)";
        }
        out +=
            fmt::format("\n{} scenario: {}, server CPU us/request in brackets\n", scenario, title);
        out += fmt::format("{:>12}", "");
        for (const auto& m : models) out += fmt::format(" {:>20}", m);
        out += "\n";
        std::vector<double> xs;
        std::string x_name;
        for (const auto& e : results["summary"])
            if (e["scenario"] == scenario) {
                double x = e["x_value"];
                x_name = e["x_name"];
                if (std::find(xs.begin(), xs.end(), x) == xs.end()) xs.push_back(x);
            }
        for (double x : xs) {
            out += fmt::format("{:>12}", fmt::format("{}={:g}",
                                                     x_name == "idle_conns"   ? "idle"
                                                     : x_name == "rate_per_s" ? "rate"
                                                                              : "conns",
                                                     x));
            for (const auto& m : models) {
                std::string cell = "-";
                for (const auto& e : results["summary"]) {
                    if (e["scenario"] != scenario || e["model"] != m ||
                        e["x_value"].get<double>() != x)
                        continue;
                    cell = summary_cell(e, metric, metric2);
                    any_not_clean = any_not_clean || e["status"] == "not_clean";
                }
                out += fmt::format(" {:>20}", cell);
            }
            out += "\n";
        }
    }
    out += "\n* loadgen-bound: the load generator was saturated and the server had headroom\n";
    out += "+ both saturated: the figure is this pair's ceiling, not the server's alone\n";
    if (any_not_clean)
        out +=
            "! not clean: muxload fell short of the rate or left requests unfinished (reasons in "
            "results.json); its latency is a lower bound\n";
    return out;
}

}  // namespace mux::sweep
