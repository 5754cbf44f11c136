#include "stats.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace mux::load {

Stats::Stats(size_t seconds, bool open)
    : second_latency(seconds, Histogram(kSecondHistogramBits)),
      second_errors(seconds, 0),
      open_loop(open) {}

uint64_t Stats::total_errors() const {
    uint64_t total = 0;
    for (uint64_t n : errors) total += n;
    return total;
}

double Stats::jain_index() const {
    if (fair_connections == 0 || fair_sum_sq == 0) return 0;
    return fair_sum * fair_sum / (double(fair_connections) * fair_sum_sq);
}

std::string Stats::merge(const Stats& o) {
    if (!latency.merge(o.latency) || !uncorrected.merge(o.uncorrected))
        return "histograms have different parameters";
    if (o.second_latency.size() > second_latency.size()) {
        second_latency.resize(o.second_latency.size(), Histogram(kSecondHistogramBits));
        second_errors.resize(o.second_errors.size(), 0);
    }
    for (size_t i = 0; i < o.second_latency.size(); ++i) {
        if (!second_latency[i].merge(o.second_latency[i]))
            return "per-second histograms have different parameters";
        second_errors[i] += o.second_errors[i];
    }
    requests += o.requests;
    for (size_t i = 0; i < errors.size(); ++i) errors[i] += o.errors[i];
    reconnects += o.reconnects;
    idle_probes_ok += o.idle_probes_ok;
    bytes_sent += o.bytes_sent;
    bytes_received += o.bytes_received;
    sends += o.sends;
    late_sends += o.late_sends;
    max_send_delay_ns = std::max(max_send_delay_ns, o.max_send_delay_ns);
    backlog_at_end += o.backlog_at_end;
    fair_connections += o.fair_connections;
    unserved_connections += o.unserved_connections;
    fair_sum += o.fair_sum;
    fair_sum_sq += o.fair_sum_sq;
    cpu_us += o.cpu_us;
    thread_utilisation.insert(thread_utilisation.end(), o.thread_utilisation.begin(),
                              o.thread_utilisation.end());
    open_loop = open_loop || o.open_loop;
    duration_s = std::max(duration_s, o.duration_s);
    throughput_per_s += o.throughput_per_s;
    connect_time_s = std::max(connect_time_s, o.connect_time_s);
    connections_wanted += o.connections_wanted;
    connections_at_start += o.connections_at_start;
    completed = completed && o.completed;
    bound_reasons.insert(bound_reasons.end(), o.bound_reasons.begin(), o.bound_reasons.end());
    return "";
}

namespace {

double us(uint64_t ns) {
    return double(ns) / 1000.0;
}

nlohmann::json percentiles_us(const Histogram& h) {
    return {{"p50", us(h.percentile_ns(0.50))},
            {"p90", us(h.percentile_ns(0.90))},
            {"p99", us(h.percentile_ns(0.99))},
            {"p999", us(h.percentile_ns(0.999))},
            {"p9999", us(h.percentile_ns(0.9999))},
            {"max", us(h.max_ns())},
            {"min", us(h.min_ns())},
            {"mean", h.mean_ns() / 1000.0}};
}

std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
    return out;
}

nlohmann::json summary_json(const Stats& s) {
    double utilisation = 0;
    for (double u : s.thread_utilisation) utilisation += u;
    nlohmann::json j = {
        {"requests", s.requests},
        {"duration_s", s.duration_s},
        {"throughput_per_s", s.throughput_per_s},
        {"latency_us", percentiles_us(s.latency)},
        {"errors_total", s.total_errors()},
        {"fairness",
         {{"jain_index", s.jain_index()},
          {"unserved_connections", s.unserved_connections},
          {"connections", s.fair_connections},
          {"sum_requests", s.fair_sum},
          {"sum_squares", s.fair_sum_sq}}},
        {"loadgen_cpu_us", s.cpu_us},
        {"loadgen_cpu_us_per_request", s.requests ? s.cpu_us / double(s.requests) : 0.0},
        {"loadgen_cpu_utilisation", utilisation},
        {"loadgen_thread_cpu_utilisation", s.thread_utilisation},
        {"loadgen_bound", s.loadgen_bound()},
        {"loadgen_bound_reason", join(s.bound_reasons)},
        {"loadgen_bound_reasons", s.bound_reasons},
        {"connect_time_s", s.connect_time_s},
        {"connections",
         {{"wanted", s.connections_wanted},
          {"at_start", s.connections_at_start},
          {"reconnects", s.reconnects},
          {"idle_probes_ok", s.idle_probes_ok}}},
        {"bytes_sent", s.bytes_sent},
        {"bytes_received", s.bytes_received},
        {"completed", s.completed},
    };
    if (s.open_loop) {
        j["latency_uncorrected_us"] = percentiles_us(s.uncorrected);
        j["open_loop"] = {{"sends", s.sends},
                          {"late_sends", s.late_sends},
                          {"max_send_delay_us", us(s.max_send_delay_ns)},
                          {"backlog_at_end", s.backlog_at_end}};
    }
    return j;
}

}  // namespace

nlohmann::json result_json(const Stats& s, const nlohmann::json& config,
                           const nlohmann::json& environment) {
    nlohmann::json errors;
    for (int k = 0; k < kErrorKinds; ++k)
        errors[error_kind_name(static_cast<ErrorKind>(k))] = s.errors[static_cast<size_t>(k)];
    nlohmann::json series = nlohmann::json::array();
    for (size_t i = 0; i < s.second_latency.size(); ++i) {
        const Histogram& h = s.second_latency[i];
        series.push_back({{"t_s", i},
                          {"requests", h.count()},
                          {"errors", s.second_errors[i]},
                          {"p99_us", us(h.percentile_ns(0.99))},
                          {"histogram", h.to_json()}});
    }
    nlohmann::json doc = {{"schema", kSchema},
                          {"config", config},
                          {"environment", environment},
                          {"summary", summary_json(s)},
                          {"timeseries", series},
                          {"errors", errors},
                          {"histogram", s.latency.to_json()}};
    if (s.open_loop) doc["histogram_uncorrected"] = s.uncorrected.to_json();
    return doc;
}

std::string stats_from_json(const nlohmann::json& doc, Stats* out) {
    if (!doc.is_object() || doc.value("schema", "") != kSchema)
        return std::string("not a ") + kSchema + " document (schema is " +
               (doc.is_object() && doc.contains("schema") ? doc["schema"].dump() : "missing") + ")";
    try {
        Stats s;
        std::string error;
        const auto& sum = doc.at("summary");
        s.open_loop = sum.contains("open_loop");
        if (!Histogram::from_json(doc.at("histogram"), &s.latency, &error)) return error;
        if (s.open_loop &&
            !Histogram::from_json(doc.at("histogram_uncorrected"), &s.uncorrected, &error))
            return error;
        for (const auto& second : doc.at("timeseries")) {
            Histogram h(kSecondHistogramBits);
            if (!Histogram::from_json(second.at("histogram"), &h, &error)) return error;
            s.second_latency.push_back(std::move(h));
            s.second_errors.push_back(second.at("errors").get<uint64_t>());
        }
        for (int k = 0; k < kErrorKinds; ++k)
            s.errors[static_cast<size_t>(k)] =
                doc.at("errors").at(error_kind_name(static_cast<ErrorKind>(k))).get<uint64_t>();
        s.requests = sum.at("requests").get<uint64_t>();
        s.duration_s = sum.at("duration_s").get<double>();
        s.throughput_per_s = sum.at("throughput_per_s").get<double>();
        const auto& fair = sum.at("fairness");
        s.fair_connections = fair.at("connections").get<uint64_t>();
        s.unserved_connections = fair.at("unserved_connections").get<uint64_t>();
        s.fair_sum = fair.at("sum_requests").get<double>();
        s.fair_sum_sq = fair.at("sum_squares").get<double>();
        s.cpu_us = sum.at("loadgen_cpu_us").get<double>();
        s.thread_utilisation = sum.at("loadgen_thread_cpu_utilisation").get<std::vector<double>>();
        s.bound_reasons = sum.at("loadgen_bound_reasons").get<std::vector<std::string>>();
        s.connect_time_s = sum.at("connect_time_s").get<double>();
        const auto& conns = sum.at("connections");
        s.connections_wanted = conns.at("wanted").get<uint64_t>();
        s.connections_at_start = conns.at("at_start").get<uint64_t>();
        s.reconnects = conns.at("reconnects").get<uint64_t>();
        s.idle_probes_ok = conns.at("idle_probes_ok").get<uint64_t>();
        s.bytes_sent = sum.at("bytes_sent").get<uint64_t>();
        s.bytes_received = sum.at("bytes_received").get<uint64_t>();
        s.completed = sum.at("completed").get<bool>();
        if (s.open_loop) {
            const auto& ol = sum.at("open_loop");
            s.sends = ol.at("sends").get<uint64_t>();
            s.late_sends = ol.at("late_sends").get<uint64_t>();
            s.max_send_delay_ns =
                static_cast<uint64_t>(ol.at("max_send_delay_us").get<double>() * 1000.0 + 0.5);
            s.backlog_at_end = ol.at("backlog_at_end").get<uint64_t>();
        }
        *out = std::move(s);
        return "";
    } catch (const nlohmann::json::exception& e) {
        return std::string("muxload JSON: ") + e.what();
    }
}

}  // namespace mux::load
