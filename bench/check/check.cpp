#include "check.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "mann_whitney.hpp"
#include "results.hpp"

namespace mux::check {

namespace {

using nlohmann::json;

// Models measured side by side at the same point and repeat share whatever the machine was
// doing, so these ratios cancel the host's speed. Only ratios of metrics that scale with it.
const std::vector<std::string> kRatioMetrics = {"throughput_per_s", "latency_p50_us",
                                                "cpu_us_per_request"};

// Memory per connection is the tree's PSS growth over the connections: page-granular and
// moved by the allocator, so at a handful of connections it measures one allocation, and
// below 1 KiB per connection a difference is sampling, not a cost.
constexpr int kMinConnectionsForMemory = 100;
// The share of the wider range of two runs' repeats a shift must exceed (see judge).
constexpr double kScatterShare = 0.75;
constexpr double kMemoryResolutionBytes = 1024;

struct Group {  // one (scenario, x value, model) of one run
    std::string scenario, model, x_name;
    double x_value = 0;
    int conns = 0;
    bool all_ok = true;
    std::string status = "ok";  // of the first repeat that was not ok
    std::string reason;
    std::map<int, json> metrics_by_repeat;  // ok repeats only
};

using GroupKey = std::tuple<std::string, double, std::string>;  // scenario, x, model

struct Run {
    std::vector<GroupKey> order;
    std::map<GroupKey, Group> groups;
};

// The reference model's group at the same point as g, or null when either run lacks it.
std::pair<const Group*, const Group*> reference_groups(const Run& b, const Run& c, const Group& g,
                                                       const std::string& reference_model) {
    GroupKey key{g.scenario, g.x_value, reference_model};
    auto in_b = b.groups.find(key), in_c = c.groups.find(key);
    if (in_b == b.groups.end() || in_c == c.groups.end()) return {nullptr, nullptr};
    return {&in_b->second, &in_c->second};
}

// What holds across hosts: the kernel's count of calls, and any ratio to the reference model.
bool holds_across_hosts(const std::string& metric) {
    return metric == "syscalls_per_request" || metric.find('/') != std::string::npos;
}

Run group_points(const json& results) {
    Run run;
    for (const auto& p : results["points"]) {
        GroupKey key{p.value("scenario", ""), p.value("x_value", 0.0), p.value("model", "")};
        auto [it, fresh] = run.groups.try_emplace(key);
        Group& g = it->second;
        if (fresh) {
            run.order.push_back(key);
            g.scenario = std::get<0>(key), g.x_value = std::get<1>(key), g.model = std::get<2>(key);
            g.x_name = p.value("x_name", "");
            g.conns = p.value("conns", 0);
        }
        std::string status = p.value("status", "failed");
        if (status == "ok") {
            g.metrics_by_repeat[p.value("repeat", 0)] = sweep::metrics_of(p);
        } else if (g.all_ok) {
            g.all_ok = false;
            g.status = status;
            if (p.contains("reason")) g.reason = p["reason"].value("code", "");
        }
    }
    return run;
}

std::optional<double> value_of(const json& metrics, const std::string& key) {
    if (!metrics.contains(key) || !metrics[key].is_number()) return std::nullopt;
    return metrics[key].get<double>();
}

std::vector<double> values_of(const Group& g, const std::string& metric) {
    std::vector<double> out;
    for (const auto& [repeat, m] : g.metrics_by_repeat)
        if (auto v = value_of(m, metric)) out.push_back(*v);
    return out;
}

// Per repeat, the model's metric over the reference model's at the same point and repeat.
std::vector<double> ratios_of(const Group& g, const Group& reference, const std::string& metric) {
    std::vector<double> out;
    for (const auto& [repeat, m] : g.metrics_by_repeat) {
        auto ref = reference.metrics_by_repeat.find(repeat);
        if (ref == reference.metrics_by_repeat.end()) continue;
        auto v = value_of(m, metric), r = value_of(ref->second, metric);
        if (v && r && *r > 0) out.push_back(*v / *r);
    }
    return out;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// (max - min) / median; 0 for fewer than two values or a non-positive median.
double spread(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    double m = median(v);
    if (m <= 0) return 0;
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return (*hi - *lo) / m;
}

const sweep::MetricInfo* info_of(const std::string& key) {
    for (const auto& info : sweep::metric_infos())
        if (key == info.key) return &info;
    return nullptr;
}

std::string text_of(const json& j) {
    if (j.is_string()) return j.get<std::string>();
    if (j.is_null()) return "(none)";
    return j.dump();
}

// The facts that make two runs the same host. Anything else (kernel, compiler, commit) is what
// a check is run to judge, so it is reported, not refused.
void compare_hosts(const json& base, const json& current, CheckReport& report) {
    const json& be = base["environment"];
    const json& ce = current["environment"];
    for (const char* key : {"hostname", "cpu_model", "online_cores"}) {
        json b = be.value(key, json()), c = ce.value(key, json());
        if (b != c)
            report.host_differences.push_back(
                fmt::format("{}: {} → {}", key, text_of(b), text_of(c)));
    }
    for (const char* key : {"server_cpus", "client_cpus"}) {
        json b = base["plan"].value(key, json()), c = current["plan"].value(key, json());
        if (b != c)
            report.host_differences.push_back(
                fmt::format("pinning {}: {} → {}", key, text_of(b), text_of(c)));
    }
    report.same_host = report.host_differences.empty();
    auto kernel = [](const json& env) {
        return env.contains("kernel") && env["kernel"].is_object()
                   ? env["kernel"].value("release", "?")
                   : text_of(env.value("kernel", json()));
    };
    if (kernel(be) != kernel(ce))
        report.notes.push_back(fmt::format("kernel changed: {} → {}", kernel(be), kernel(ce)));
    for (const char* key : {"compiler", "build_type", "git_commit"}) {
        json b = be.value(key, json()), c = ce.value(key, json());
        if (b != c) report.notes.push_back(fmt::format("{}: {} → {}", key, text_of(b), text_of(c)));
    }
}

// Plan settings that change what a point measures. They are noted, not refused: a run with
// more --work-us is exactly the slower server a check must catch.
void compare_plans(const json& base, const json& current, CheckReport& report) {
    for (const char* key : {"payload_bytes", "reply_bytes", "work_us", "duration_s", "warmup_s",
                            "idle_active", "latency_rate_per_s", "latency_conns", "churn_conns",
                            "slow_mix", "slow_conns", "loadgen_threads"}) {
        json b = base["plan"].value(key, json()), c = current["plan"].value(key, json());
        if (b != c)
            report.notes.push_back(fmt::format("plan {}: {} → {}", key, text_of(b), text_of(c)));
    }
}

}  // namespace

std::optional<std::string> too_few_repeats(size_t base_repeats, size_t current_repeats,
                                           size_t comparisons, double alpha,
                                           const std::string& current_what) {
    comparisons = std::max<size_t>(comparisons, 1);
    double strictest = alpha / double(comparisons);
    double best_p = smallest_possible_p(base_repeats, current_repeats);
    if (best_p < strictest) return std::nullopt;
    return fmt::format(
        "{} repeats in the baseline and {} {}: even a complete separation gives the U test "
        "p = {:.3g}, not below {:.3g} (alpha {:g} over {} comparisons, Holm's strictest "
        "step). Both runs need {} repeats or more (--repeats {}).",
        base_repeats, current_repeats, current_what, best_p, strictest, alpha, comparisons,
        repeats_needed(strictest), repeats_needed(strictest));
}

size_t repeats_of(const json& results) {
    size_t most = 0;
    for (const auto& p : results["points"]) most = std::max(most, size_t(p.value("repeat", 0)) + 1);
    return most;
}

namespace {

// Everything but the verdict, which waits for the whole family's p-values (see
// adjust_for_the_family). resolution: the smallest absolute difference the metric can show;
// anything less is noise.
void measure(Comparison& c, const CheckOptions& options, double resolution = 0) {
    c.base_median = median(c.base);
    c.current_median = median(c.current);
    if (smallest_possible_p(c.base.size(), c.current.size()) >= options.alpha) {
        c.verdict = "untestable";
        c.detail = fmt::format("{} against {} values: too few for the U test", c.base.size(),
                               c.current.size());
        return;
    }
    if (c.base_median <= 0) {
        c.verdict = "untestable";
        c.detail = "the baseline median is not positive, so a relative change means nothing";
        return;
    }
    double change = (c.current_median - c.base_median) / c.base_median;
    c.worse_by = c.higher_is_better ? -change : change;
    c.p = mann_whitney_u(c.base, c.current).p;
    c.beyond_resolution = std::fabs(c.current_median - c.base_median) > resolution;
    // A shift inside the scatter the machine gives either run's repeats is the machine, not
    // the code: runs taken one after the other on a shared host see different minutes, which
    // moves every repeat of one of them together, and the U test alone reads that as
    // significant. So the shift must exceed 3/4 of the wider range of the two runs' repeats
    // (results/check/README.md has the study).
    c.scatter = kScatterShare *
                std::max(spread(c.base), spread(c.current) * c.current_median / c.base_median);
}

// Holm's step-down: sorted by p, the i-th smallest of m is held to alpha / (m - i), and the
// first that fails stops the rest. Its adjusted p is the running maximum of (m - i) p. The
// chance that noise makes any comparison significant then stays below alpha, which a fixed
// per-comparison level cannot promise across a hundred comparisons.
void adjust_for_the_family(std::vector<Comparison>& comparisons) {
    std::vector<Comparison*> family;
    for (auto& c : comparisons)
        if (c.verdict.empty()) family.push_back(&c);
    std::stable_sort(family.begin(), family.end(),
                     [](const Comparison* a, const Comparison* b) { return a->p < b->p; });
    double running = 0;
    for (size_t i = 0; i < family.size(); ++i) {
        running = std::max(running, std::min(1.0, double(family.size() - i) * family[i]->p));
        family[i]->p_holm = running;
    }
}

void give_verdict(Comparison& c, const CheckOptions& options) {
    if (!c.verdict.empty()) return;  // untestable or a status change
    bool significant = c.p_holm < options.alpha && c.beyond_resolution;
    double bar = std::max(options.threshold, c.scatter);
    if (significant && c.worse_by > bar)
        c.verdict = "regression";
    else if (significant && -c.worse_by > bar)
        c.verdict = "improvement";
    else
        c.verdict = "within_noise";
}

Comparison comparison_for(const Group& g, const std::string& metric) {
    Comparison c;
    c.scenario = g.scenario, c.model = g.model, c.x_name = g.x_name, c.x_value = g.x_value;
    c.metric = metric;
    return c;
}

}  // namespace

const std::vector<std::string>& judged_metrics() {
    static const std::vector<std::string> metrics = {
        "throughput_per_s",   "latency_p50_us",       "latency_p99_us",
        "cpu_us_per_request", "syscalls_per_request", "memory_bytes_per_connection"};
    return metrics;
}

size_t CheckReport::count(const std::string& verdict) const {
    return static_cast<size_t>(std::count_if(comparisons.begin(), comparisons.end(),
                                             [&](const auto& c) { return c.verdict == verdict; }));
}

size_t CheckReport::judged() const {
    return static_cast<size_t>(std::count_if(
        comparisons.begin(), comparisons.end(),
        [](const auto& c) { return c.metric != "status" && c.verdict != "untestable"; }));
}

std::string point_label(const Comparison& c) {
    std::string x = c.x_name == "idle_conns" ? "idle" : c.x_name == "rate_per_s" ? "rate" : "conns";
    return fmt::format("{} {}={:g}", c.scenario, x, c.x_value);
}

CheckReport check_runs(const json& base, const json& current, const CheckOptions& options) {
    CheckReport report;
    report.options = options;
    auto refuse = [&](std::string why) {
        report.exit_code = 2;
        report.cannot_compare = std::move(why);
        return report;
    };
    std::string base_proto = base["plan"].value("proto", "mux1");
    std::string current_proto = current["plan"].value("proto", "mux1");
    if (base_proto != current_proto)
        return refuse(
            fmt::format("the runs speak different protocols ({} against {}), so no "
                        "point measures the same thing",
                        base_proto, current_proto));
    report.base_repeats = repeats_of(base);
    report.current_repeats = repeats_of(current);

    compare_hosts(base, current, report);
    compare_plans(base, current, report);
    report.stable_only = options.stable_only || !report.same_host;

    Run b = group_points(base), c = group_points(current);
    std::vector<GroupKey> shared;
    for (const auto& key : c.order)
        if (b.groups.count(key)) shared.push_back(key);
    if (shared.empty()) return refuse("no point (scenario, x value, model) is in both runs");
    std::vector<std::string> missing;
    for (const auto& key : b.order)
        if (!c.groups.count(key))
            missing.push_back(
                fmt::format("{} {}={:g}", std::get<2>(key), std::get<0>(key), std::get<1>(key)));
    if (!missing.empty()) {
        std::string list;
        for (size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", " : "") + missing[i];
        report.notes.push_back(
            fmt::format("{} point{} of the baseline {} not in the current run: {}{}",
                        missing.size(), missing.size() == 1 ? "" : "s",
                        missing.size() == 1 ? "is" : "are", list, missing.size() > 5 ? ", …" : ""));
    }

    for (const auto& key : shared) {
        const Group& bg = b.groups.at(key);
        const Group& cg = c.groups.at(key);
        if (bg.all_ok != cg.all_ok) {
            // A point that ran before and fails now is a regression of the worst kind; the
            // reverse is news worth showing.
            Comparison s = comparison_for(cg, "status");
            s.verdict = bg.all_ok ? "status" : "improvement";
            s.detail = bg.all_ok ? fmt::format("ok → {} ({})", cg.status, cg.reason)
                                 : fmt::format("{} ({}) → ok", bg.status, bg.reason);
            report.comparisons.push_back(s);
            continue;
        }
        if (!bg.all_ok) continue;  // refused or failed in both: nothing to measure

        for (const auto& metric : judged_metrics()) {
            if (report.stable_only && !holds_across_hosts(metric)) continue;
            Comparison cmp = comparison_for(cg, metric);
            const auto* info = info_of(metric);
            cmp.unit = info->unit;
            cmp.higher_is_better = info->higher_is_better;
            cmp.base = values_of(bg, metric);
            cmp.current = values_of(cg, metric);
            if (cmp.base.empty() || cmp.current.empty()) continue;
            bool memory = metric == "memory_bytes_per_connection";
            if (memory && cg.conns < kMinConnectionsForMemory) continue;
            measure(cmp, options, memory ? kMemoryResolutionBytes : 0);
            // Across hosts a count is trusted only where it is steady within each run: a
            // busy-polling server's failed reads, for one, count time spent, not work done.
            if (report.stable_only && cmp.verdict != "untestable" &&
                std::max(spread(cmp.base), spread(cmp.current)) > options.threshold / 2) {
                cmp.verdict = "untestable";
                cmp.detail = "not steady across repeats, so not trusted across hosts";
            }
            report.comparisons.push_back(cmp);
        }

        if (!report.stable_only || cg.model == options.reference_model) continue;
        auto [bref, cref] = reference_groups(b, c, cg, options.reference_model);
        if (!bref) continue;
        for (const auto& metric : kRatioMetrics) {
            Comparison cmp = comparison_for(cg, metric + "/" + options.reference_model);
            cmp.unit = "ratio";
            cmp.higher_is_better = info_of(metric)->higher_is_better;
            cmp.base = ratios_of(bg, *bref, metric);
            cmp.current = ratios_of(cg, *cref, metric);
            if (cmp.base.empty() || cmp.current.empty()) continue;
            measure(cmp, options);
            report.comparisons.push_back(cmp);
        }
    }
    auto has_model = [&](const Run& run, const std::string& model) {
        return std::any_of(run.order.begin(), run.order.end(),
                           [&](const GroupKey& k) { return std::get<2>(k) == model; });
    };
    if (report.stable_only &&
        !(has_model(b, options.reference_model) && has_model(c, options.reference_model)))
        report.notes.push_back(
            fmt::format("reference model {} is not in both runs, so no model ratios were judged",
                        options.reference_model));

    // How steady each judged metric is within each run, over the points both runs measured.
    std::vector<std::string> noise_metrics = judged_metrics();
    for (const auto& m : kRatioMetrics) noise_metrics.push_back(m + "/" + options.reference_model);
    for (const auto& metric : noise_metrics) {
        MetricNoise n;
        n.metric = metric;
        bool ratio = metric.find('/') != std::string::npos;
        std::string base_metric = ratio ? metric.substr(0, metric.find('/')) : metric;
        std::vector<double> bs, cs;
        for (const auto& key : shared) {
            const Group& bg = b.groups.at(key);
            const Group& cg = c.groups.at(key);
            if (!bg.all_ok || !cg.all_ok) continue;
            std::vector<double> bv, cv;
            if (ratio) {
                if (cg.model == options.reference_model) continue;
                auto [bref, cref] = reference_groups(b, c, cg, options.reference_model);
                if (!bref) continue;
                bv = ratios_of(bg, *bref, base_metric);
                cv = ratios_of(cg, *cref, base_metric);
            } else {
                bv = values_of(bg, metric);
                cv = values_of(cg, metric);
            }
            if (bv.size() < 2 || cv.size() < 2) continue;
            bs.push_back(spread(bv));
            cs.push_back(spread(cv));
        }
        if (bs.empty()) continue;
        n.points = bs.size();
        n.base_spread = median(bs);
        n.current_spread = median(cs);
        n.holds_across_hosts = holds_across_hosts(metric);
        if (ratio) {
            n.why = "models measured side by side share the host, so their ratio cancels its speed";
        } else if (metric == "syscalls_per_request") {
            n.why =
                "the kernel counts the calls the code makes, whatever the CPU (busy-poll's "
                "failed reads excepted)";
        } else if (metric == "memory_bytes_per_connection") {
            n.why = "depends on the kernel's socket buffers and allocator";
        } else {
            n.why = "scales with CPU speed, kernel and the host's other load";
        }
        report.noise.push_back(n);
    }

    // Every metric compared is in the family, whether or not its values turn out testable.
    size_t family = static_cast<size_t>(
        std::count_if(report.comparisons.begin(), report.comparisons.end(),
                      [](const Comparison& cmp) { return cmp.metric != "status"; }));
    if (auto why = too_few_repeats(report.base_repeats, report.current_repeats, family,
                                   options.alpha, "in the current run"))
        return refuse(*why);
    if (report.comparisons.size() == report.count("untestable")) {
        auto why = report.comparisons.empty()
                       ? std::string("no metric was measured at any point in both runs")
                       : fmt::format("none of the {} comparisons could be judged: {}",
                                     report.comparisons.size(), report.comparisons[0].detail);
        return refuse(why);
    }
    adjust_for_the_family(report.comparisons);
    for (auto& cmp : report.comparisons) give_verdict(cmp, options);
    report.exit_code = report.count("regression") + report.count("status") > 0 ? 1 : 0;
    return report;
}

}  // namespace mux::check
