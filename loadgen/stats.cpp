#include "stats.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "judge.hpp"

namespace mux::load {

Stats::Stats(size_t seconds, bool open)
    : second_latency(seconds, Histogram(kSecondHistogramBits)),
      second_errors(seconds, 0),
      second_unfinished(seconds, 0),
      second_timed_out(seconds, 0),
      open_loop(open) {}

uint64_t Stats::total_errors() const {
    uint64_t total = 0;
    for (uint64_t n : errors) total += n;
    return total;
}

uint64_t Stats::verification_failures() const {
    return errors[size_t(ErrorKind::Protocol)] + errors[size_t(ErrorKind::Mismatch)];
}

double Stats::jain_index() const {
    if (fair_connections == 0 || fair_sum_sq == 0) return 0;
    return fair_sum * fair_sum / (double(fair_connections) * fair_sum_sq);
}

std::string Stats::merge(const Stats& o) {
    if (!latency.merge(o.latency) || !uncorrected.merge(o.uncorrected) ||
        !self_delay.merge(o.self_delay))
        return "histograms have different parameters";
    if (o.second_latency.size() > second_latency.size()) {
        second_latency.resize(o.second_latency.size(), Histogram(kSecondHistogramBits));
        second_errors.resize(o.second_errors.size(), 0);
        second_unfinished.resize(o.second_unfinished.size(), 0);
        second_timed_out.resize(o.second_timed_out.size(), 0);
    }
    for (size_t i = 0; i < o.second_latency.size(); ++i) {
        if (!second_latency[i].merge(o.second_latency[i]))
            return "per-second histograms have different parameters";
        second_errors[i] += o.second_errors[i];
        second_unfinished[i] += o.second_unfinished[i];
        second_timed_out[i] += o.second_timed_out[i];
    }
    requests += o.requests;
    latency_sum_ns += o.latency_sum_ns;
    latency_overflows += o.latency_overflows;
    timeouts_recorded += o.timeouts_recorded;
    unfinished_at_end += o.unfinished_at_end;
    in_flight_at_end += o.in_flight_at_end;
    answered_after_end += o.answered_after_end;
    in_flight_capacity += o.in_flight_capacity;
    littles_law_judged = littles_law_judged && o.littles_law_judged;
    for (size_t i = 0; i < errors.size(); ++i) errors[i] += o.errors[i];
    reconnects += o.reconnects;
    idle_probes_ok += o.idle_probes_ok;
    replies_verified += o.replies_verified;
    bytes_sent += o.bytes_sent;
    bytes_received += o.bytes_received;
    if (o.first_failure.set && (!first_failure.set || o.first_failure.t_ns < first_failure.t_ns))
        first_failure = o.first_failure;
    offered += o.offered;
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
    thread_cpu.insert(thread_cpu.end(), o.thread_cpu.begin(), o.thread_cpu.end());
    process_cpu_us += o.process_cpu_us;
    cpus += o.cpus;
    open_loop = open_loop || o.open_loop;
    duration_s = std::max(duration_s, o.duration_s);
    throughput_per_s += o.throughput_per_s;
    connect_time_s = std::max(connect_time_s, o.connect_time_s);
    if (o.window_start_unix_ns != 0)
        window_start_unix_ns = window_start_unix_ns == 0
                                   ? o.window_start_unix_ns
                                   : std::min(window_start_unix_ns, o.window_start_unix_ns);
    window_end_unix_ns = std::max(window_end_unix_ns, o.window_end_unix_ns);
    connections_wanted += o.connections_wanted;
    connections_at_start += o.connections_at_start;
    completed = completed && o.completed;
    steady_judged = steady_judged || o.steady_judged;
    steady = steady && o.steady;
    unsteady_reasons.insert(unsteady_reasons.end(), o.unsteady_reasons.begin(),
                            o.unsteady_reasons.end());
    warmup_s = std::max(warmup_s, o.warmup_s);
    warmup_extended_s = std::max(warmup_extended_s, o.warmup_extended_s);
    steady_checks = std::max(steady_checks, o.steady_checks);
    has_last_check = false;
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

nlohmann::json last_check_json(const Stats& s) {
    if (!s.has_last_check) return nullptr;
    const SteadyVerdict& v = s.last_check;
    return {{"span_s", v.span_s},
            {"active_connections", s.steady_active_connections},
            {"served_at_mid", v.served_at_mid},
            {"served_at_end", v.served_at_end},
            {"replies_first_half", v.replies_first_half},
            {"replies_second_half", v.replies_second_half},
            {"change_share", v.change_share}};
}

nlohmann::json threads_json(const Stats& s) {
    nlohmann::json threads = nlohmann::json::array();
    double window_us = s.duration_s * 1e6;
    for (const ThreadCpu& c : s.thread_cpu) {
        double busy = window_us > 0 ? (c.cpu_us - c.spin_us) / window_us : 0;
        double waiting = window_us > 0 ? c.runqueue_wait_us / window_us : 0;
        threads.push_back({{"cpu_us", c.cpu_us},
                           {"spin_us", c.spin_us},
                           {"runqueue_wait_us", c.runqueue_wait_us},
                           {"busy_utilisation", busy},
                           {"demand", busy + waiting}});
    }
    return threads;
}

nlohmann::json loadgen_cpu_json(const Stats& s) {
    double utilisation = 0, spin_us = 0;
    for (double u : s.thread_utilisation) utilisation += u;
    for (const ThreadCpu& c : s.thread_cpu) spin_us += c.spin_us;
    double window_us = s.duration_s * 1e6;
    return {
        {"loadgen_cpu_us", s.cpu_us},
        {"loadgen_cpu_us_per_request", s.requests ? s.cpu_us / double(s.requests) : 0.0},
        {"loadgen_cpu_utilisation", utilisation},
        {"loadgen_thread_cpu_utilisation", s.thread_utilisation},
        {"loadgen_threads", threads_json(s)},
        {"loadgen_process_cpu_us", s.process_cpu_us},
        {"loadgen_process_busy_cpus",
         window_us > 0 ? (s.process_cpu_us - spin_us) / window_us : 0.0},
        {"loadgen_cpus", s.cpus},
        {"loadgen_saturated", !s.saturated_reasons.empty()},
        {"loadgen_saturated_reasons", s.saturated_reasons},
        {"loadgen_bound", s.loadgen_bound()},
        {"loadgen_bound_reason", join(s.bound_reasons)},
        {"loadgen_bound_reasons", s.bound_reasons},
    };
}

nlohmann::json first_failure_json(const FirstFailure& f) {
    if (!f.set) return nullptr;
    return {{"t_ns", f.t_ns},
            {"kind", error_kind_name(f.kind)},
            {"reason", f.detail.reason},
            {"expected", f.detail.expected},
            {"got", f.detail.got}};
}

nlohmann::json summary_json(const Stats& s) {
    auto littles = littles_law_ratio(s);
    nlohmann::json j = {
        {"requests", s.requests},
        {"duration_s", s.duration_s},
        {"window_start_unix_ns", s.window_start_unix_ns},
        {"window_end_unix_ns", s.window_end_unix_ns},
        {"throughput_per_s", s.throughput_per_s},
        {"latency_us", percentiles_us(s.latency)},
        {"latency_overflows", s.latency_overflows},
        {"latency_sum_ns", s.latency_sum_ns},
        {"timeouts_recorded", s.timeouts_recorded},
        {"unfinished_at_end", s.unfinished_at_end},
        {"in_flight_at_end", s.in_flight_at_end},
        {"answered_after_end", s.answered_after_end},
        {"in_flight_capacity", s.in_flight_capacity},
        {"littles_law_ratio", littles ? nlohmann::json(*littles) : nlohmann::json(nullptr)},
        {"littles_law_judged", s.littles_law_judged},
        {"errors_total", s.total_errors()},
        {"replies_verified", s.replies_verified},
        {"first_failure", first_failure_json(s.first_failure)},
        {"fairness",
         {{"jain_index", s.jain_index()},
          {"unserved_connections", s.unserved_connections},
          {"connections", s.fair_connections},
          {"sum_requests", s.fair_sum},
          {"sum_squares", s.fair_sum_sq}}},
        {"connect_time_s", s.connect_time_s},
        {"ramp_s", s.connect_time_s},
        {"connections",
         {{"wanted", s.connections_wanted},
          {"at_start", s.connections_at_start},
          {"reconnects", s.reconnects},
          {"idle_probes_ok", s.idle_probes_ok}}},
        {"bytes_sent", s.bytes_sent},
        {"bytes_received", s.bytes_received},
        {"completed", s.completed},
        {"warmup",
         {{"warmup_s", s.warmup_s},
          {"extended_s", s.warmup_extended_s},
          {"steady_judged", s.steady_judged},
          {"steady_checks", s.steady_checks},
          {"last_check", last_check_json(s)}}},
        {"steady", s.steady},
        {"unsteady_reasons", s.unsteady_reasons},
        {"clean", s.clean()},
        {"not_clean_reasons", s.not_clean_reasons},
    };
    j.update(loadgen_cpu_json(s));
    if (s.open_loop) {
        j["latency_uncorrected_us"] = percentiles_us(s.uncorrected);
        const Histogram& d = s.self_delay;
        j["open_loop"] = {
            {"offered", s.offered},
            {"offered_per_s", s.duration_s > 0 ? double(s.offered) / s.duration_s : 0.0},
            {"achieved_share", s.offered > 0 ? double(s.requests) / double(s.offered) : 0.0},
            {"sends", s.sends},
            {"late_sends", s.late_sends},
            {"max_send_delay_us", us(s.max_send_delay_ns)},
            {"self_delay_us",
             {{"p50", us(d.percentile_ns(0.5))},
              {"p99", us(d.percentile_ns(0.99))},
              {"max", us(d.max_ns())}}},
            {"backlog_at_end", s.backlog_at_end}};
    }
    return j;
}

nlohmann::json series_json(const Stats& s) {
    nlohmann::json series = nlohmann::json::array();
    for (size_t i = 0; i < s.second_latency.size(); ++i) {
        const Histogram& h = s.second_latency[i];
        uint64_t unfinished = s.second_unfinished[i];
        uint64_t timed_out = s.second_timed_out[i];
        uint64_t completed = h.count() - unfinished - timed_out;
        // The last second of a window that is not a whole number of seconds is partial.
        double span_s = std::clamp(s.duration_s - double(i), 0.0, 1.0);
        series.push_back(
            {{"t_s", i},
             {"duration_s", span_s},
             {"requests", completed},
             {"timed_out", timed_out},
             {"unfinished", unfinished},
             {"errors", s.second_errors[i]},
             {"p99_us", h.count() > 0 ? nlohmann::json(us(h.percentile_ns(0.99))) : nullptr},
             {"histogram", h.to_json()}});
    }
    return series;
}

// Reads a key a document written before it existed may lack.
template <typename T>
T optional_value(const nlohmann::json& j, const char* key, T fallback) {
    return j.contains(key) && !j[key].is_null() ? j[key].get<T>() : fallback;
}

void read_cpu(const nlohmann::json& sum, Stats* s) {
    s->cpu_us = sum.at("loadgen_cpu_us").get<double>();
    s->thread_utilisation = sum.at("loadgen_thread_cpu_utilisation").get<std::vector<double>>();
    if (sum.contains("loadgen_threads"))
        for (const auto& t : sum["loadgen_threads"])
            s->thread_cpu.push_back({t.at("cpu_us").get<double>(), t.at("spin_us").get<double>(),
                                     t.at("runqueue_wait_us").get<double>()});
    s->process_cpu_us = optional_value(sum, "loadgen_process_cpu_us", 0.0);
    s->cpus = optional_value(sum, "loadgen_cpus", 0u);
    s->saturated_reasons =
        optional_value(sum, "loadgen_saturated_reasons", std::vector<std::string>{});
    s->bound_reasons = sum.at("loadgen_bound_reasons").get<std::vector<std::string>>();
}

void read_first_failure(const nlohmann::json& f, FirstFailure* out) {
    if (f.is_null()) return;
    out->set = true;
    out->t_ns = f.at("t_ns").get<uint64_t>();
    std::string kind = f.at("kind").get<std::string>();
    for (int k = 0; k < kErrorKinds; ++k)
        if (kind == error_kind_name(static_cast<ErrorKind>(k)))
            out->kind = static_cast<ErrorKind>(k);
    out->detail = {f.at("reason").get<std::string>(), f.at("expected").get<std::string>(),
                   f.at("got").get<std::string>()};
}

void read_open_loop(const nlohmann::json& doc, Stats* s) {
    std::string error;
    const auto& ol = doc.at("summary").at("open_loop");
    s->offered = optional_value(ol, "offered", uint64_t{0});
    s->sends = ol.at("sends").get<uint64_t>();
    s->late_sends = ol.at("late_sends").get<uint64_t>();
    s->max_send_delay_ns =
        static_cast<uint64_t>(ol.at("max_send_delay_us").get<double>() * 1000.0 + 0.5);
    s->backlog_at_end = ol.at("backlog_at_end").get<uint64_t>();
}

}  // namespace

nlohmann::json result_json(const Stats& s, const nlohmann::json& config,
                           const nlohmann::json& environment) {
    nlohmann::json errors;
    for (int k = 0; k < kErrorKinds; ++k)
        errors[error_kind_name(static_cast<ErrorKind>(k))] = s.errors[static_cast<size_t>(k)];
    nlohmann::json doc = {{"schema", kSchema},
                          {"config", config},
                          {"environment", environment},
                          {"summary", summary_json(s)},
                          {"timeseries", series_json(s)},
                          {"errors", errors},
                          {"histogram", s.latency.to_json()}};
    if (s.open_loop) {
        doc["histogram_uncorrected"] = s.uncorrected.to_json();
        doc["histogram_self_delay"] = s.self_delay.to_json();
    }
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
        if (s.open_loop) {
            if (!Histogram::from_json(doc.at("histogram_uncorrected"), &s.uncorrected, &error))
                return error;
            if (doc.contains("histogram_self_delay") &&
                !Histogram::from_json(doc["histogram_self_delay"], &s.self_delay, &error))
                return error;
            read_open_loop(doc, &s);
        }
        for (const auto& second : doc.at("timeseries")) {
            Histogram h(kSecondHistogramBits);
            if (!Histogram::from_json(second.at("histogram"), &h, &error)) return error;
            s.second_latency.push_back(std::move(h));
            s.second_errors.push_back(second.at("errors").get<uint64_t>());
            s.second_unfinished.push_back(optional_value(second, "unfinished", uint64_t{0}));
            s.second_timed_out.push_back(optional_value(second, "timed_out", uint64_t{0}));
        }
        for (int k = 0; k < kErrorKinds; ++k)
            s.errors[static_cast<size_t>(k)] = optional_value(
                doc.at("errors"), error_kind_name(static_cast<ErrorKind>(k)), uint64_t{0});
        s.requests = sum.at("requests").get<uint64_t>();
        s.latency_sum_ns = optional_value(sum, "latency_sum_ns", uint64_t{0});
        s.latency_overflows = optional_value(sum, "latency_overflows", uint64_t{0});
        s.timeouts_recorded = optional_value(sum, "timeouts_recorded", uint64_t{0});
        s.unfinished_at_end = optional_value(sum, "unfinished_at_end", uint64_t{0});
        s.in_flight_at_end = optional_value(sum, "in_flight_at_end", uint64_t{0});
        s.answered_after_end = optional_value(sum, "answered_after_end", uint64_t{0});
        s.in_flight_capacity = optional_value(sum, "in_flight_capacity", uint64_t{0});
        s.littles_law_judged = optional_value(sum, "littles_law_judged", true);
        s.replies_verified = optional_value(sum, "replies_verified", uint64_t{0});
        if (sum.contains("first_failure"))
            read_first_failure(sum["first_failure"], &s.first_failure);
        s.duration_s = sum.at("duration_s").get<double>();
        s.window_start_unix_ns = optional_value(sum, "window_start_unix_ns", uint64_t{0});
        s.window_end_unix_ns = optional_value(sum, "window_end_unix_ns", uint64_t{0});
        s.throughput_per_s = sum.at("throughput_per_s").get<double>();
        const auto& fair = sum.at("fairness");
        s.fair_connections = fair.at("connections").get<uint64_t>();
        s.unserved_connections = fair.at("unserved_connections").get<uint64_t>();
        s.fair_sum = fair.at("sum_requests").get<double>();
        s.fair_sum_sq = fair.at("sum_squares").get<double>();
        read_cpu(sum, &s);
        s.connect_time_s = sum.at("connect_time_s").get<double>();
        const auto& conns = sum.at("connections");
        s.connections_wanted = conns.at("wanted").get<uint64_t>();
        s.connections_at_start = conns.at("at_start").get<uint64_t>();
        s.reconnects = conns.at("reconnects").get<uint64_t>();
        s.idle_probes_ok = conns.at("idle_probes_ok").get<uint64_t>();
        s.bytes_sent = sum.at("bytes_sent").get<uint64_t>();
        s.bytes_received = sum.at("bytes_received").get<uint64_t>();
        s.completed = sum.at("completed").get<bool>();
        if (sum.contains("warmup")) {
            const auto& w = sum["warmup"];
            s.warmup_s = w.at("warmup_s").get<double>();
            s.warmup_extended_s = w.at("extended_s").get<double>();
            s.steady_judged = w.at("steady_judged").get<bool>();
            s.steady_checks = w.at("steady_checks").get<uint32_t>();
            if (w.contains("last_check") && w["last_check"].is_object()) {
                const auto& c = w["last_check"];
                s.has_last_check = true;
                s.steady_active_connections = c.at("active_connections").get<uint64_t>();
                s.last_check.span_s = c.at("span_s").get<double>();
                s.last_check.served_at_mid = c.at("served_at_mid").get<uint64_t>();
                s.last_check.served_at_end = c.at("served_at_end").get<uint64_t>();
                s.last_check.replies_first_half = c.at("replies_first_half").get<uint64_t>();
                s.last_check.replies_second_half = c.at("replies_second_half").get<uint64_t>();
                s.last_check.change_share = c.at("change_share").get<double>();
            }
        }
        s.steady = optional_value(sum, "steady", true);
        s.unsteady_reasons = optional_value(sum, "unsteady_reasons", std::vector<std::string>{});
        s.not_clean_reasons = optional_value(sum, "not_clean_reasons", std::vector<std::string>{});
        *out = std::move(s);
        return "";
    } catch (const nlohmann::json::exception& e) {
        return std::string("muxload JSON: ") + e.what();
    }
}

}  // namespace mux::load
