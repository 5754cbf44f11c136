#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>

#include "judge.hpp"

namespace mux::load {

namespace {

// A number, or "-" for a null (a percentile of an empty histogram).
std::string num(const nlohmann::json& v, const char* format = "{:.1f}") {
    return v.is_number() ? fmt::format(fmt::runtime(format), v.get<double>()) : "-";
}

std::string latency_row(const char* name, const nlohmann::json& l) {
    auto at = [&](const char* key) { return num(l.value(key, nlohmann::json())); };
    return fmt::format("  {:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", name, at("p50"),
                       at("p90"), at("p99"), at("p999"), at("p9999"), at("max"));
}

std::string open_loop_lines(const nlohmann::json& s) {
    const auto& ol = s.at("open_loop");
    const auto& d = ol.value("self_delay_us", nlohmann::json::object());
    return fmt::format(
        "  offered {:.0f}/s in the window, achieved {:.1f}%; self-delay (us) p50 "
        "{} p99 {} max {}; late sends {} of {}\n",
        ol.value("offered_per_s", 0.0), 100 * ol.value("achieved_share", 0.0),
        num(d.value("p50", nlohmann::json())), num(d.value("p99", nlohmann::json())),
        num(d.value("max", nlohmann::json())), ol.value("late_sends", 0), ol.value("sends", 0));
}

std::string errors_line(const nlohmann::json& e) {
    std::string out = "  errors:";
    for (int k = 0; k < kErrorKinds; ++k) {
        const char* name = error_kind_name(static_cast<ErrorKind>(k));
        out += fmt::format(" {} {}", name, e.value(name, 0));
    }
    return out + "\n";
}

std::string verdict_lines(const nlohmann::json& s) {
    std::string out;
    const auto& w = s.value("warmup", nlohmann::json::object());
    if (w.value("steady_judged", false))
        out += fmt::format("  warmup {:.3g} s (extended {:.3g} s after {} checks): {}\n",
                           w.value("warmup_s", 0.0), w.value("extended_s", 0.0),
                           w.value("steady_checks", 0),
                           s.value("steady", true) ? "steady" : "NOT STEADY");
    const auto& ratio = s.value("littles_law_ratio", nlohmann::json());
    if (ratio.is_number())
        out += fmt::format(
            "  Little's law: mean latency x throughput = {:.2f} requests in flight "
            "of {} (ratio {:.3f})\n",
            ratio.get<double>() * s.value("in_flight_capacity", 0.0),
            s.value("in_flight_capacity", 0), ratio.get<double>());
    out += fmt::format(
        "  loadgen CPU: {:.2f} us/request, threads {:.2f} CPUs of {}; process busy "
        "{:.2f} CPUs of {} in its mask (idle polling excluded){}\n",
        s.value("loadgen_cpu_us_per_request", 0.0), s.value("loadgen_cpu_utilisation", 0.0),
        s.value("loadgen_threads", nlohmann::json::array()).size(),
        s.value("loadgen_process_busy_cpus", 0.0), s.value("loadgen_cpus", 0),
        s.value("loadgen_saturated", false) ? ", SATURATED" : "");
    if (s.value("loadgen_bound", false))
        out += fmt::format("  LOADGEN-BOUND: {}\n", s.value("loadgen_bound_reason", ""));
    for (const auto& reason : s.value("not_clean_reasons", std::vector<std::string>{}))
        out += fmt::format("  NOT CLEAN: {}\n", reason);
    const auto& f = s.value("first_failure", nlohmann::json());
    if (f.is_object())
        out += fmt::format("  first failed reply ({}): {}\n    expected: {}\n    got:      {}\n",
                           f.value("kind", ""), f.value("reason", ""), f.value("expected", ""),
                           f.value("got", ""));
    return out;
}

}  // namespace

std::string format_table(const nlohmann::json& doc) {
    const auto& c = doc.at("config");
    const auto& s = doc.at("summary");
    std::string out;
    out +=
        fmt::format("muxload {} {} {} loop, {} conns ({} active), {} threads, {:.1f} s, seed {}\n",
                    c.value("target", ""), c.value("proto", ""), c.value("mode", ""),
                    c.value("conns", 0), c.value("active", 0), c.value("threads", 0),
                    s.value("duration_s", 0.0), c.value("seed", uint64_t{0}));
    if (!c.value("verify_note", "").empty()) out += "  " + c.value("verify_note", "") + "\n";
    out += fmt::format(
        "  requests {}  throughput {:.0f}/s  ramp {:.3f} s  completed {}  clean {}\n",
        s.value("requests", 0), s.value("throughput_per_s", 0.0),
        s.value("ramp_s", s.value("connect_time_s", 0.0)),
        s.value("completed", false) ? "yes" : "NO", s.value("clean", false) ? "yes" : "NO");
    out += fmt::format("  latency (us) {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "p50", "p90",
                       "p99", "p99.9", "p99.99", "max");
    bool open = s.contains("latency_uncorrected_us");
    out += latency_row(open ? "corrected" : "latency", s.at("latency_us"));
    if (open) out += latency_row("uncorrected", s.at("latency_uncorrected_us"));
    if (s.value("timeouts_recorded", 0) > 0)
        out += fmt::format(
            "  {} requests timed out in the window, counted above at (timeout - start), a "
            "lower bound\n",
            s.value("timeouts_recorded", 0));
    if (s.value("unfinished_at_end", 0) > 0) {
        uint64_t unfinished = s.value("unfinished_at_end", uint64_t{0});
        uint64_t answered = s.value("answered_after_end", uint64_t{0});
        uint64_t never_sent =
            s.value("open_loop", nlohmann::json::object()).value("backlog_at_end", uint64_t{0});
        out += fmt::format(
            "  {} requests unfinished at the window's end: {} answered just after it, "
            "counted above at their latency; {} never answered ({} never sent), counted at "
            "their age, a lower bound\n",
            unfinished, answered, unfinished - answered, never_sent);
    }
    if (s.value("latency_overflows", 0) > 0)
        out += fmt::format(
            "  {} latencies above the histogram's 60 s range, counted as 60 s "
            "(max is exact)\n",
            s.value("latency_overflows", 0));
    if (open) out += open_loop_lines(s);
    out += errors_line(doc.at("errors"));
    const auto& f = s.at("fairness");
    out += fmt::format("  fairness: Jain {:.4f}, {} of {} active connections unserved\n",
                       f.value("jain_index", 0.0), f.value("unserved_connections", 0),
                       f.value("connections", 0));
    return out + verdict_lines(s);
}

std::string merge_refusal(const std::vector<nlohmann::json>& docs) {
    if (docs.empty()) return "nothing to merge";
    const auto& first = docs[0].at("config");
    for (size_t i = 1; i < docs.size(); ++i) {
        const auto& c = docs[i].at("config");
        for (const char* key : {"proto", "mode", "request", "payload_bytes", "reply_bytes",
                                "work_us", "slow", "verify", "duration_s"})
            if (c.value(key, nlohmann::json()) != first.value(key, nlohmann::json()))
                return fmt::format(
                    "input {} has {} {}, input 1 has {}: runs that differ in "
                    "protocol, mode, request or duration do not add up",
                    i + 1, key, c.value(key, nlohmann::json()).dump(),
                    first.value(key, nlohmann::json()).dump());
    }
    uint64_t start = 0, end = UINT64_MAX, longest = 0;
    for (size_t i = 0; i < docs.size(); ++i) {
        const auto& s = docs[i].at("summary");
        auto a = s.value("window_start_unix_ns", uint64_t{0});
        auto b = s.value("window_end_unix_ns", uint64_t{0});
        if (a == 0 || b <= a)
            return fmt::format(
                "input {} has no window timestamps (written by an older muxload): "
                "its window cannot be matched with the others",
                i + 1);
        start = std::max(start, a);
        end = std::min(end, b);
        longest = std::max(longest, b - a);
    }
    double overlap = end > start ? double(end - start) / double(longest) : 0.0;
    if (overlap < kMinWindowOverlap)
        return fmt::format(
            "the windows overlap for {:.0f}% of the longest, under {:.0f}%: the "
            "runs were not measuring at the same time",
            100 * overlap, 100 * kMinWindowOverlap);
    return "";
}

namespace {
// A run's three verdicts, as lists of reasons.
struct Verdicts {
    std::vector<std::string> saturated, bound, not_clean;
};

// An input's own verdicts: what its file says (a merged file's "input N: ..." reasons among
// them) and what its figures say when judged again, each reason once.
Verdicts judge_input(Stats* s) {
    Verdicts v{s->saturated_reasons, s->bound_reasons, s->not_clean_reasons};
    judge(s);
    auto add = [](const std::vector<std::string>& from, std::vector<std::string>* to) {
        for (const auto& reason : from)
            if (std::find(to->begin(), to->end(), reason) == to->end()) to->push_back(reason);
    };
    add(s->saturated_reasons, &v.saturated);
    add(s->bound_reasons, &v.bound);
    add(s->not_clean_reasons, &v.not_clean);
    return v;
}

// Where the merged figures pass a verdict that an input fails on its own, the input's reasons
// are kept as "input N: ...": the sums must not hide one process that fell behind. Where the
// merged figures fail it too, their reasons stand alone (an input's would repeat them with
// other numbers: its own thread indices, counts and window).
void keep_input_verdicts(const std::vector<Verdicts>& inputs, Stats* total) {
    auto keep = [&](std::vector<std::string> Verdicts::*input_list,
                    std::vector<std::string>* merged) {
        if (!merged->empty()) return;
        for (size_t i = 0; i < inputs.size(); ++i)
            for (const auto& reason : inputs[i].*input_list)
                merged->push_back(fmt::format("input {}: {}", i + 1, reason));
    };
    keep(&Verdicts::saturated, &total->saturated_reasons);
    keep(&Verdicts::bound, &total->bound_reasons);
    keep(&Verdicts::not_clean, &total->not_clean_reasons);
}
}  // namespace

MergeOutcome merge_files(const std::vector<std::string>& paths, nlohmann::json* merged) {
    std::vector<nlohmann::json> docs;
    std::vector<Stats> stats;
    for (const auto& path : paths) {
        std::ifstream in(path);
        if (!in) return {"cannot read " + path};
        auto doc = nlohmann::json::parse(in, nullptr, false);
        if (doc.is_discarded()) return {path + " is not JSON"};
        Stats s;
        std::string error = stats_from_json(doc, &s);
        if (!error.empty()) return {path + ": " + error};
        docs.push_back(std::move(doc));
        stats.push_back(std::move(s));
    }
    if (std::string refusal = merge_refusal(docs); !refusal.empty()) return {refusal, true};
    // Each input's own verdicts, before its figures are diluted in the sums: one process that
    // fell behind its schedule stays visible beside a faster one that made up the total.
    std::vector<Verdicts> inputs;
    for (Stats& s : stats) inputs.push_back(judge_input(&s));
    Stats total = std::move(stats[0]);
    nlohmann::json sources = nlohmann::json::array();
    for (size_t i = 0; i < docs.size(); ++i) {
        if (i > 0) {
            std::string error = total.merge(stats[i]);
            if (!error.empty()) return {paths[i] + ": " + error, true};
        }
        sources.push_back({{"path", paths[i]},
                           {"config", docs[i]["config"]},
                           {"environment", docs[i]["environment"]}});
    }
    judge(&total);
    keep_input_verdicts(inputs, &total);
    // The merged config keeps the first input's settings, with what adds summed: counts as
    // counts, the rate as a rate.
    nlohmann::json config = docs[0]["config"];
    for (const char* key : {"conns", "active", "idle", "threads"}) {
        uint64_t sum = 0;
        for (const auto& d : docs) sum += d["config"].value(key, uint64_t{0});
        config[key] = sum;
    }
    double rate_per_s = 0;
    for (const auto& d : docs) rate_per_s += d["config"].value("rate_per_s", 0.0);
    config["rate_per_s"] = rate_per_s;
    *merged = result_json(total, config, docs[0]["environment"]);
    (*merged)["merged_from"] = std::move(sources);
    return {};
}

std::string write_json(const std::string& path, const nlohmann::json& doc) {
    std::ofstream out(path);
    out << doc.dump() << "\n";
    out.close();
    if (!out) return "cannot write " + path;
    return "";
}

}  // namespace mux::load
