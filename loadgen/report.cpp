#include "report.hpp"

#include <fmt/format.h>

#include <fstream>

namespace mux::load {

namespace {

std::string latency_row(const char* name, const nlohmann::json& l) {
    return fmt::format("  {:<12} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f}\n",
                       name, l.value("p50", 0.0), l.value("p90", 0.0), l.value("p99", 0.0),
                       l.value("p999", 0.0), l.value("p9999", 0.0), l.value("max", 0.0));
}

}  // namespace

std::string format_table(const nlohmann::json& doc) {
    const auto& c = doc.at("config");
    const auto& s = doc.at("summary");
    std::string out;
    out += fmt::format("muxload {} {} {} loop, {} conns ({} active), {} threads, {:.1f} s\n",
                       c.value("target", ""), c.value("proto", ""), c.value("mode", ""),
                       c.value("conns", 0), c.value("active", 0), c.value("threads", 0),
                       s.value("duration_s", 0.0));
    out += fmt::format("  requests {}  throughput {:.0f}/s  connect time {:.3f} s  completed {}\n",
                       s.value("requests", 0), s.value("throughput_per_s", 0.0),
                       s.value("connect_time_s", 0.0), s.value("completed", false) ? "yes" : "NO");
    out += fmt::format("  latency (us) {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "p50", "p90",
                       "p99", "p99.9", "p99.99", "max");
    out += latency_row(s.contains("latency_uncorrected_us") ? "corrected" : "latency",
                       s.at("latency_us"));
    if (s.contains("latency_uncorrected_us"))
        out += latency_row("uncorrected", s.at("latency_uncorrected_us"));
    const auto& e = doc.at("errors");
    out += fmt::format("  errors: connect {} reset {} timeout {} protocol {} mismatch {}\n",
                       e.value("connect", 0), e.value("reset", 0), e.value("timeout", 0),
                       e.value("protocol", 0), e.value("mismatch", 0));
    const auto& f = s.at("fairness");
    out += fmt::format("  fairness: Jain {:.4f}, {} of {} active connections unserved\n",
                       f.value("jain_index", 0.0), f.value("unserved_connections", 0),
                       f.value("connections", 0));
    out += fmt::format("  loadgen CPU: {:.2f} us/request, utilisation {:.2f} of {} threads\n",
                       s.value("loadgen_cpu_us_per_request", 0.0),
                       s.value("loadgen_cpu_utilisation", 0.0), c.value("threads", 0));
    if (s.value("loadgen_bound", false))
        out += fmt::format("  LOADGEN-BOUND: {}\n", s.value("loadgen_bound_reason", ""));
    return out;
}

std::string merge_files(const std::vector<std::string>& paths, nlohmann::json* merged) {
    Stats total;
    nlohmann::json sources = nlohmann::json::array();
    nlohmann::json config, environment;
    for (size_t i = 0; i < paths.size(); ++i) {
        std::ifstream in(paths[i]);
        if (!in) return "cannot read " + paths[i];
        auto doc = nlohmann::json::parse(in, nullptr, false);
        if (doc.is_discarded()) return paths[i] + " is not JSON";
        Stats s;
        std::string error = stats_from_json(doc, &s);
        if (!error.empty()) return paths[i] + ": " + error;
        if (i == 0) {
            total = std::move(s);
            config = doc.at("config");
            environment = doc.at("environment");
        } else {
            error = total.merge(s);
            if (!error.empty()) return paths[i] + ": " + error;
        }
        sources.push_back({{"path", paths[i]},
                           {"config", doc.at("config")},
                           {"environment", doc.at("environment")}});
    }
    // The merged config keeps the first input's settings with the totals summed.
    config["conns"] = total.connections_wanted;
    *merged = result_json(total, config, environment);
    (*merged)["merged_from"] = std::move(sources);
    return "";
}

std::string write_json(const std::string& path, const nlohmann::json& doc) {
    std::ofstream out(path);
    out << doc.dump(2) << "\n";
    out.close();
    if (!out) return "cannot write " + path;
    return "";
}

}  // namespace mux::load
