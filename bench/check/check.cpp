#include "check.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "exact_tests.hpp"
#include "mann_whitney.hpp"
#include "results.hpp"

namespace mux::check {

namespace {

using nlohmann::json;

// Models measured side by side at the same point and repeat share whatever the machine was
// doing, so these ratios cancel the host's speed. Only ratios of metrics that scale with it.
const std::vector<std::string> kRatioMetrics = {"throughput_per_s", "latency_p50_us",
                                                "cpu_us_per_request"};

// The metrics the check judges, in report order: what a user of the gate acts on. The time a
// request costs the server and its client (throughput, p50 and p99), the kernel's count of the
// calls it makes, and memory per connection. Every test costs the family: each metric here is
// judged at every point, and the check plan's 8 repeats a side reach Holm's strictest step
// (half of alpha 0.05 over the single points) only up to 160 of them. So a metric the sweep
// adds is not judged until it is given a place here; check_test fails until it has either a
// place or a reason below.
const std::vector<std::string> kJudged = {"throughput_per_s",     "latency_p50_us",
                                          "latency_p99_us",       "cpu_us_per_request",
                                          "syscalls_per_request", "memory_bytes_per_connection"};

// The metrics of the results the check leaves out, and why.
const std::map<std::string, std::string>& not_judged() {
    static const std::map<std::string, std::string> reasons = {
        {"latency_p90_us", "p50 and p99 stand for the latency distribution"},
        {"latency_p999_us",
         "p50 and p99 stand for the latency distribution; a short window holds few requests "
         "past p99.9"},
        {"context_switches_per_request",
         "follows how often the host's other tasks preempt the server as much as the code"},
        {"page_faults_per_request",
         "a steady window faults only where memory grows, which memory per connection judges; "
         "what faults cost shows in cpu_us_per_request, and a count of mostly 0 has no ratio"},
        {"jain_index", "fairness is drawn in the charts"},
        {"unserved_connections", "fairness is drawn in the charts"},
        {"errors",
         "mostly zero, so it has no ratio; a point whose errors stop its window fails, and "
         "failed repeats are judged"},
        {"ramp_s",
         "the time to open the connections before the window, set by muxload's connect pacing "
         "and the kernel's search for a free port as much as by the server: not a cost of "
         "serving"},
        {"cpu_user_us_per_request",
         "a part of cpu_us_per_request (user + system is the whole), which is judged whole"},
        {"cpu_sys_us_per_request",
         "a part of cpu_us_per_request (user + system is the whole), which is judged whole"},
        {"wait_calls_per_request",
         "a part of syscalls_per_request, which is judged whole; what more calls cost shows in "
         "cpu_us_per_request"},
        {"io_calls_per_request",
         "a part of syscalls_per_request, which is judged whole; judged in its place where a "
         "run was written in schema 1, which counted only these calls"},
    };
    return reasons;
}

// The count of calls a check compares between two runs. Schema 1 counted only the read and
// write families (sweep::upgrade_from_schema_1 reads them as io_calls_per_request), so where
// either run was written in schema 1, that count is the one both runs have.
std::string calls_metric(bool a_run_is_schema_1) {
    return a_run_is_schema_1 ? "io_calls_per_request" : "syscalls_per_request";
}

struct Group {  // one (scenario, x value, model) of one run
    std::string scenario, model, x_name;
    double x_value = 0;
    int conns = 0;
    size_t failed = 0, refused = 0;
    std::string failure, refusal;           // the first failed repeat's status and reason
    std::string refusal_code;               // the first refused repeat's reason code
    std::vector<int> failed_repeats;        // repeat indexes
    std::map<int, json> metrics_by_repeat;  // ok repeats only
};

using GroupKey = std::tuple<std::string, double, std::string>;  // scenario, x, model

struct Run {
    std::vector<GroupKey> order;
    std::map<GroupKey, Group> groups;
};

struct Values {
    std::vector<double> values;
    std::vector<int> repeats;
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
    return metric == "syscalls_per_request" || metric == "io_calls_per_request" ||
           metric.find('/') != std::string::npos;
}

std::string reason_of(const json& p) {
    std::string status = p.value("status", "failed");
    if (!p.contains("reason") || !p["reason"].is_object()) return status;
    return fmt::format("{}: {}", status, p["reason"].value("code", "?"));
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
        int repeat = p.value("repeat", 0);
        if (status == "ok") {
            g.metrics_by_repeat[repeat] = sweep::metrics_of(p);
        } else if (status == "refused") {
            if (!g.refused++) {
                g.refusal = reason_of(p);
                if (p.contains("reason") && p["reason"].is_object())
                    g.refusal_code = p["reason"].value("code", "");
            }
        } else {
            if (!g.failed++) g.failure = reason_of(p);
            g.failed_repeats.push_back(repeat);
        }
    }
    return run;
}

std::optional<double> value_of(const json& metrics, const std::string& key) {
    if (!metrics.contains(key) || !metrics[key].is_number()) return std::nullopt;
    return metrics[key].get<double>();
}

Values values_of(const Group& g, const std::string& metric) {
    Values out;
    for (const auto& [repeat, m] : g.metrics_by_repeat)
        if (auto v = value_of(m, metric)) out.values.push_back(*v), out.repeats.push_back(repeat);
    return out;
}

// Per repeat, the model's metric over the reference model's at the same point and repeat.
Values ratios_of(const Group& g, const Group& reference, const std::string& metric) {
    Values out;
    for (const auto& [repeat, m] : g.metrics_by_repeat) {
        auto ref = reference.metrics_by_repeat.find(repeat);
        if (ref == reference.metrics_by_repeat.end()) continue;
        auto v = value_of(m, metric), r = value_of(ref->second, metric);
        if (v && r && *r > 0) out.values.push_back(*v / *r), out.repeats.push_back(repeat);
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

sweep::MetricInfo info_of(const std::string& key) {
    for (const auto& info : sweep::metric_infos())
        if (key == info.key) return info;
    return {"?", "", false};
}

// A schema-1 document read as read_results reads it (the one way the check reads schema 1),
// for callers that pass a document they did not read with it; any other, as it is.
const json& in_schema_2(const json& run, json& upgraded) {
    if (run.value("schema", "") != sweep::kResultsSchema1) return run;
    upgraded = run;
    sweep::upgrade_from_schema_1(upgraded);
    return upgraded;
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
                            "slow_mix", "slow_conns", "slow_rate_per_s", "loadgen_threads"}) {
        json b = base["plan"].value(key, json()), c = current["plan"].value(key, json());
        if (b != c)
            report.notes.push_back(fmt::format("plan {}: {} → {}", key, text_of(b), text_of(c)));
    }
}

}  // namespace

std::optional<std::string> too_few_repeats(size_t base_repeats, size_t current_repeats,
                                           size_t comparisons, double share, double alpha,
                                           const std::string& current_what) {
    comparisons = std::max<size_t>(comparisons, 1);
    double strictest = share / double(comparisons);
    double best_p = smallest_possible_p(base_repeats, current_repeats);
    if (best_p < strictest) return std::nullopt;
    std::string level =
        share < alpha ? fmt::format("the single points' {:g} of alpha {:g}, over {} comparisons",
                                    share, alpha, comparisons)
                      : fmt::format("alpha {:g} over {} comparisons", alpha, comparisons);
    return fmt::format(
        "{} repeats in the baseline and {} {}: even a complete separation gives the U test "
        "p = {:.3g}, not below {:.3g} ({}, Holm's strictest step). Both runs need {} repeats "
        "or more (--repeats {}).",
        base_repeats, current_repeats, current_what, best_p, strictest, level,
        repeats_needed(strictest), repeats_needed(strictest));
}

size_t repeats_of(const json& results) {
    size_t most = 0;
    for (const auto& p : results["points"]) most = std::max(most, size_t(p.value("repeat", 0)) + 1);
    return most;
}

namespace {

// A reading as the check compares it: below the metric's resolution, readings differ by
// sampling alone, so they are all the resolution (and tie).
double compared(const Comparison& c, double value) {
    return std::max(value, c.resolution);
}

// The U test and the shift, on the log scale, where a ratio is a difference. The verdict
// waits for the whole family's p-values (see hold_family).
void measure(Comparison& c, const CheckOptions& options) {
    c.base_median = median(c.base);
    c.current_median = median(c.current);
    if (c.base.empty() || c.current.empty()) {
        c.invalid = "every value of a run is 0 or less, so there is no ratio to judge";
        return;
    }
    std::vector<double> log_base, log_current;
    for (double v : c.base) log_base.push_back(std::log(compared(c, v)));
    for (double v : c.current) log_current.push_back(std::log(compared(c, v)));
    auto u = mann_whitney_u(log_base, log_current);
    c.p = u.p;
    c.min_p = u.min_p;
    auto shift = hodges_lehmann(log_base, log_current, 1 - options.alpha);
    c.change = std::expm1(shift.estimate);
    if (shift.low) c.change_low = std::expm1(*shift.low), c.change_high = std::expm1(*shift.high);
    c.worse_by = std::expm1(c.higher_is_better ? -shift.estimate : shift.estimate);
}

// A value that is not positive has no logarithm: where the metric resolves every positive
// value, it is a failed reading (a CPU time of 0), left out, and the report says so. Where the
// metric has a resolution, it is a reading below it (a memory growth under a page, or a
// shrink) and is kept: compared() reads it as the resolution.
size_t drop_unreadable(std::vector<double>& values, std::vector<int>& repeats, double resolution) {
    size_t kept = 0;
    for (size_t i = 0; i < values.size(); ++i)
        if ((values[i] > 0 || resolution > 0) && std::isfinite(values[i])) {
            values[kept] = values[i], repeats[kept] = repeats[i];
            ++kept;
        }
    size_t dropped = values.size() - kept;
    values.resize(kept), repeats.resize(kept);
    return dropped;
}

// Call with c.resolution set.
void set_values(Comparison& c, Values base, Values current) {
    c.dropped_base = drop_unreadable(base.values, base.repeats, c.resolution);
    c.dropped_current = drop_unreadable(current.values, current.repeats, c.resolution);
    c.base = std::move(base.values), c.base_repeats = std::move(base.repeats);
    c.current = std::move(current.values), c.current_repeats = std::move(current.repeats);
}

Comparison comparison_for(const Group& g, const std::string& metric) {
    Comparison c;
    c.scenario = g.scenario, c.model = g.model, c.x_name = g.x_name, c.x_value = g.x_value;
    c.metric = metric;
    auto info = info_of(metric.substr(0, metric.find('/')));
    c.unit = metric.find('/') == std::string::npos ? info.unit : "ratio";
    c.higher_is_better = info.higher_is_better;
    return c;
}

// How many repeats failed, base against current, by Fisher's exact test.
Comparison failures_comparison(const Group& bg, const Group& cg) {
    Comparison c = comparison_for(cg, kFailedRepeats);
    c.unit = "repeats";
    for (const auto* g : {&bg, &cg}) {
        auto& values = g == &bg ? c.base : c.current;
        auto& repeats = g == &bg ? c.base_repeats : c.current_repeats;
        for (const auto& [repeat, m] : g->metrics_by_repeat)
            values.push_back(0), repeats.push_back(repeat);
        for (int repeat : g->failed_repeats) values.push_back(1), repeats.push_back(repeat);
    }
    size_t nb = c.base.size(), nc = c.current.size();
    auto fisher = fisher_exact(bg.failed, nb, cg.failed, nc);
    c.p = fisher.p;
    c.min_p = fisher.min_p;
    c.base_median = double(bg.failed) / double(nb);
    c.current_median = double(cg.failed) / double(nc);
    c.change = c.worse_by = c.current_median - c.base_median;
    c.detail =
        fmt::format("{} of {} repeats failed in the baseline{}, {} of {} in the current run{}",
                    bg.failed, nb, bg.failed ? " (" + bg.failure + ")" : "", cg.failed, nc,
                    cg.failed ? " (" + cg.failure + ")" : "");
    return c;
}

// The metrics of one point both runs measured, over the repeats that ran in each.
void compare_metrics(const Group& bg, const Group& cg, CheckReport& report,
                     const CheckOptions& options, bool a_run_is_schema_1) {
    for (const auto& metric : judged_metrics()) {
        if (report.stable_only && !holds_across_hosts(metric)) continue;
        std::string key =
            metric == "syscalls_per_request" ? calls_metric(a_run_is_schema_1) : metric;
        Values b = values_of(bg, key), c = values_of(cg, key);
        if (b.values.empty() && c.values.empty()) continue;  // measured in neither run
        bool memory = key == "memory_bytes_per_connection";
        if (memory && cg.conns < kMinConnectionsForMemory) continue;
        Comparison cmp = comparison_for(cg, key);
        cmp.resolution = memory ? kMemoryResolutionBytes : 0;
        bool in_both = !b.values.empty() && !c.values.empty();
        size_t measured = b.values.size() + c.values.size();
        set_values(cmp, std::move(b), std::move(c));
        if (!in_both) {  // a figure that stopped (or started) being measured
            cmp.invalid = fmt::format(
                "measured in the {} only ({} values), so there is nothing to judge it against",
                cmp.current.empty() ? "baseline" : "current run", measured);
            report.comparisons.push_back(cmp);
            continue;
        }
        measure(cmp, options);
        // Across hosts a count is trusted only where it is steady within each run: a
        // busy-polling server's failed reads, for one, count time spent, not work done.
        if (report.stable_only && cmp.invalid.empty() &&
            std::max(spread(cmp.base), spread(cmp.current)) > options.threshold / 2)
            cmp.invalid = "not steady across repeats, so not trusted across hosts";
        report.comparisons.push_back(cmp);
    }
}

void compare_ratios(const Run& b, const Run& c, const Group& bg, const Group& cg,
                    CheckReport& report, const CheckOptions& options) {
    auto [bref, cref] = reference_groups(b, c, cg, options.reference_model);
    if (!bref) return;
    for (const auto& metric : kRatioMetrics) {
        Comparison cmp = comparison_for(cg, metric + "/" + options.reference_model);
        Values bv = ratios_of(bg, *bref, metric), cv = ratios_of(cg, *cref, metric);
        if (bv.values.empty() || cv.values.empty()) continue;
        set_values(cmp, std::move(bv), std::move(cv));
        measure(cmp, options);
        report.comparisons.push_back(cmp);
    }
}

// Midranks of values among themselves, less their mean: ties share the average of their ranks.
std::vector<double> centred_ranks(const std::vector<double>& values) {
    std::vector<size_t> order(values.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t l, size_t r) { return values[l] < values[r]; });
    std::vector<double> ranks(values.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i;
        while (j < order.size() && values[order[j]] == values[order[i]]) ++j;
        double rank = double(i + 1 + j) / 2 - double(values.size() + 1) / 2;
        for (size_t k = i; k < j; ++k) ranks[order[k]] = rank;
        i = j;
    }
    return ranks;
}

// One model's metric across its points. A repeat's score is the sum of its centred ranks at
// every point (among both runs' values there); whole repeats are permuted between the runs.
PooledComparison pool(const std::vector<const Comparison*>& points) {
    const Comparison& first = *points.front();
    PooledComparison pc;
    pc.model = first.model, pc.metric = first.metric, pc.unit = first.unit;
    pc.higher_is_better = first.higher_is_better;
    std::map<int, double> base_score, current_score;
    std::vector<double> log_shifts, differences;
    for (const auto* c : points) {
        std::vector<double> pooled;
        for (const auto* side : {&c->base, &c->current})
            for (double v : *side) pooled.push_back(compared(*c, v));
        auto ranks = centred_ranks(pooled);
        for (size_t i = 0; i < c->base.size(); ++i) base_score[c->base_repeats[i]] += ranks[i];
        for (size_t i = 0; i < c->current.size(); ++i)
            current_score[c->current_repeats[i]] += ranks[c->base.size() + i];
        pc.points.push_back(point_label(*c));
        pc.point_changes.push_back(c->change);
        pc.worse_points += c->worse_by > 0;
        log_shifts.push_back(std::log1p(c->change));
        differences.push_back(c->current_median - c->base_median);
    }
    std::vector<double> bs, cs;
    for (const auto& [repeat, s] : base_score) bs.push_back(s);
    for (const auto& [repeat, s] : current_score) cs.push_back(s);
    pc.base_repeats = bs.size(), pc.current_repeats = cs.size();
    auto test = repeats_sum_test(bs, cs);
    pc.p = test.p, pc.min_p = test.min_p;
    double shift = median(log_shifts);
    pc.change = std::expm1(shift);
    pc.worse_by = std::expm1(pc.higher_is_better ? -shift : shift);
    pc.beyond_resolution = std::fabs(median(differences)) > first.resolution;
    return pc;
}

// Every model's metric with values that can be judged at two points or more.
std::vector<PooledComparison> pool_points(const std::vector<Comparison>& comparisons) {
    std::vector<std::pair<std::string, std::string>> order;
    std::map<std::pair<std::string, std::string>, std::vector<const Comparison*>> by;
    for (const auto& c : comparisons) {
        if (c.metric == "status" || c.metric == kFailedRepeats || !c.invalid.empty()) continue;
        auto key = std::make_pair(c.model, c.metric);
        if (!by.count(key)) order.push_back(key);
        by[key].push_back(&c);
    }
    std::vector<PooledComparison> out;
    for (const auto& key : order)
        if (by[key].size() >= 2) out.push_back(pool(by[key]));
    return out;
}

double better_by(double worse_by) {
    return 1 / (1 + worse_by) - 1;
}

void give_verdict(Comparison& c, const CheckOptions& options, const FamilyShare& share,
                  bool testable) {
    if (!c.verdict.empty()) return;  // a status change
    if (!c.invalid.empty() || !testable) {
        c.verdict = "untestable";
        if (c.metric == kFailedRepeats) return;  // its detail says what failed
        if (c.invalid.empty())
            c.detail = fmt::format(
                "{} against {} values: the smallest p they allow, {:.3g}, cannot pass the "
                "family's strictest step, {:.3g}",
                c.base.size(), c.current.size(), c.min_p, share.alpha / double(share.size));
        else
            c.detail = c.invalid;
        return;
    }
    bool significant =
        c.p_holm < options.alpha && std::fabs(c.current_median - c.base_median) > c.resolution;
    bool failures = c.metric == kFailedRepeats;
    double floor = failures ? 0 : options.threshold;
    if (significant && c.worse_by > floor)
        c.verdict = "regression";
    else if (significant && (failures ? -c.worse_by : better_by(c.worse_by)) > floor)
        c.verdict = "improvement";
    else
        c.verdict = "within_noise";
}

void give_verdict(PooledComparison& c, const CheckOptions& options, const FamilyShare& share,
                  bool testable) {
    if (!testable) {
        c.verdict = "untestable";
        c.detail = fmt::format(
            "{} against {} repeats over {} points: the smallest p they allow, {:.3g}, cannot pass "
            "the family's strictest step, {:.3g}",
            c.base_repeats, c.current_repeats, c.points.size(), c.min_p,
            share.alpha / double(share.size));
        return;
    }
    bool significant = c.p_holm < options.alpha && c.beyond_resolution;
    if (significant && c.worse_by > options.threshold)
        c.verdict = "regression";
    else if (significant && better_by(c.worse_by) > options.threshold)
        c.verdict = "improvement";
    else
        c.verdict = "within_noise";
}

// Single points (failed repeats among them) are kind 0, pooled judgements kind 1.
void judge(CheckReport& report) {
    std::vector<FamilyTest> tests(report.comparisons.size() + report.pooled.size());
    std::vector<FamilyTest*> family;
    for (size_t i = 0; i < report.comparisons.size(); ++i) {
        const auto& c = report.comparisons[i];
        if (!c.verdict.empty() || !c.invalid.empty()) continue;
        tests[i] = {c.p, c.min_p, 0};
        family.push_back(&tests[i]);
    }
    for (size_t i = 0; i < report.pooled.size(); ++i) {
        auto& t = tests[report.comparisons.size() + i];
        t = {report.pooled[i].p, report.pooled[i].min_p, 1};
        family.push_back(&t);
    }
    auto shares = hold_family(family, report.options.alpha, 2);
    report.points_family = shares[0], report.pooled_family = shares[1];
    for (size_t i = 0; i < report.comparisons.size(); ++i)
        report.comparisons[i].p_holm = tests[i].p_holm;
    for (size_t i = 0; i < report.pooled.size(); ++i)
        report.pooled[i].p_holm = tests[report.comparisons.size() + i].p_holm;
    for (size_t i = 0; i < report.comparisons.size(); ++i)
        give_verdict(report.comparisons[i], report.options, shares[0], tests[i].testable);
    for (size_t i = 0; i < report.pooled.size(); ++i)
        give_verdict(report.pooled[i], report.options, shares[1],
                     tests[report.comparisons.size() + i].testable);
}

// A failed repeat that is not a significant change is said, not judged: the point is judged
// on the repeats that ran.
void warn_of_failures(CheckReport& report) {
    auto all_failed = [](const std::vector<double>& repeats) {
        return std::all_of(repeats.begin(), repeats.end(), [](double v) { return v == 1; });
    };
    for (const auto& c : report.comparisons) {
        if (c.metric != kFailedRepeats || c.verdict == "regression" || c.verdict == "improvement")
            continue;
        bool base_none = all_failed(c.base), current_none = all_failed(c.current);
        std::string consequence =
            base_none && current_none ? "nothing ran to judge"
            : base_none || current_none
                ? fmt::format("no repeat ran in the {}, so its metrics are not judged",
                              base_none ? "baseline" : "current run")
            : c.verdict == "untestable"
                ? "too few to tell flaky repeats from a change, so the point is judged on the "
                  "repeats that ran"
                : "not a significant change, so the point is judged on the repeats that ran";
        report.warnings.push_back(
            fmt::format("{} {}: {}; {}", c.model, point_label(c), c.detail, consequence));
    }
}

// Figures measured in one run only, one line per metric.
void warn_of_unmeasured(CheckReport& report) {
    std::vector<std::string> order;
    std::map<std::string, std::string> where;
    for (const auto& c : report.comparisons) {
        bool base_only = c.current.empty() && !c.dropped_current && !c.base.empty();
        bool current_only = c.base.empty() && !c.dropped_base && !c.current.empty();
        if (!base_only && !current_only) continue;
        std::string key = fmt::format("{}: measured in the {} only", c.metric,
                                      base_only ? "baseline" : "current run");
        if (!where.count(key)) order.push_back(key);
        where[key] +=
            fmt::format("{}{} {}", where[key].empty() ? "" : ", ", c.model, point_label(c));
    }
    for (const auto& key : order)
        report.warnings.push_back(fmt::format("{}, so not judged: {}", key, where[key]));
}

// Values left out for being 0 or less, one line per metric.
void warn_of_dropped(CheckReport& report) {
    std::vector<std::string> order;
    std::map<std::string, std::pair<size_t, std::string>> by_metric;  // count, where
    for (const auto& c : report.comparisons) {
        if (!c.dropped_base && !c.dropped_current) continue;
        auto [it, fresh] = by_metric.try_emplace(c.metric);
        if (fresh) order.push_back(c.metric);
        it->second.first += c.dropped_base + c.dropped_current;
        it->second.second += fmt::format("{}{} {} ({} in the baseline, {} in the current run)",
                                         it->second.second.empty() ? "" : ", ", c.model,
                                         point_label(c), c.dropped_base, c.dropped_current);
    }
    for (const auto& metric : order)
        report.warnings.push_back(
            fmt::format("{}: {} value{} of 0 or less left out, having no ratio: {}", metric,
                        by_metric[metric].first, by_metric[metric].first == 1 ? "" : "s",
                        by_metric[metric].second));
}

void measure_noise(const Run& b, const Run& c, const std::vector<GroupKey>& shared,
                   CheckReport& report, const CheckOptions& options, bool a_run_is_schema_1) {
    std::vector<std::string> noise_metrics;
    for (const auto& metric : judged_metrics())
        noise_metrics.push_back(metric == "syscalls_per_request" ? calls_metric(a_run_is_schema_1)
                                                                 : metric);
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
            Values bv, cv;
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
            if (bv.values.size() < 2 || cv.values.size() < 2) continue;
            bs.push_back(spread(bv.values));
            cs.push_back(spread(cv.values));
        }
        if (bs.empty()) continue;
        n.points = bs.size();
        n.base_spread = median(bs);
        n.current_spread = median(cs);
        n.holds_across_hosts = holds_across_hosts(metric);
        if (ratio) {
            n.why = "models measured side by side share the host, so their ratio cancels its speed";
        } else if (metric == "syscalls_per_request" || metric == "io_calls_per_request") {
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
}

// Refusals that depend on the host, not on the code: a kernel that refuses io_uring (a
// seccomp profile, kernel.io_uring_disabled), and the fd and task limits it is configured with.
bool refused_by_host(const std::string& code) {
    return code == "io_uring_unavailable" || code == "fd_limit" || code == "task_limit";
}

// Every point both runs have: a change of refusal is a status change, unless the host refuses
// it now; otherwise failed repeats and the metrics of the repeats that ran.
void compare_points(const Run& b, const Run& c, const std::vector<GroupKey>& shared,
                    CheckReport& report, const CheckOptions& options, bool a_run_is_schema_1) {
    for (const auto& key : shared) {
        const Group& bg = b.groups.at(key);
        const Group& cg = c.groups.at(key);
        if (bg.refused || cg.refused) {
            if (bg.refused && cg.refused) continue;  // refused in both: nothing to measure
            if (cg.refused && refused_by_host(cg.refusal_code)) {
                report.warnings.push_back(fmt::format(
                    "{} {}: ran in the baseline, {} here; this host's doing, not the code's, "
                    "so not judged",
                    cg.model, point_label(comparison_for(cg, "status")), cg.refusal));
                continue;
            }
            // A refusal is the model's own rule, not chance: a model refused now that ran
            // before is a regression of the worst kind; the reverse is news worth showing.
            Comparison s = comparison_for(cg, "status");
            s.verdict = bg.refused ? "improvement" : "status";
            s.detail = bg.refused ? fmt::format("{} → ran", bg.refusal)
                                  : fmt::format("ran → {}", cg.refusal);
            report.comparisons.push_back(s);
            continue;
        }
        if (bg.failed + cg.failed > 0) report.comparisons.push_back(failures_comparison(bg, cg));
        if (bg.metrics_by_repeat.empty() || cg.metrics_by_repeat.empty()) continue;
        compare_metrics(bg, cg, report, options, a_run_is_schema_1);
        if (report.stable_only && cg.model != options.reference_model)
            compare_ratios(b, c, bg, cg, report, options);
    }
}

}  // namespace

std::vector<std::string> judged_metrics() {
    return kJudged;
}

std::optional<std::string> why_not_judged(const std::string& metric) {
    auto it = not_judged().find(metric);
    if (it == not_judged().end()) return std::nullopt;
    return it->second;
}

size_t CheckReport::count(const std::string& verdict) const {
    return static_cast<size_t>(std::count_if(comparisons.begin(), comparisons.end(),
                                             [&](const auto& c) { return c.verdict == verdict; }));
}

size_t CheckReport::count_pooled(const std::string& verdict) const {
    return static_cast<size_t>(std::count_if(pooled.begin(), pooled.end(),
                                             [&](const auto& c) { return c.verdict == verdict; }));
}

size_t CheckReport::regressions() const {
    return count("regression") + count("status") + count_pooled("regression");
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

CheckReport check_runs(const json& base_as_given, const json& current_as_given,
                       const CheckOptions& options) {
    json base_upgraded, current_upgraded;
    const json& base = in_schema_2(base_as_given, base_upgraded);
    const json& current = in_schema_2(current_as_given, current_upgraded);
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
    bool a_run_is_schema_1 = false;
    for (const json* run : {&base, &current})
        if (run->contains("upgraded_from")) {
            a_run_is_schema_1 = true;
            report.notes.push_back(fmt::format(
                "the {} run was written in schema {}, whose syscalls counted only the read and "
                "write families: the check judges that count, I/O calls per request, in place "
                "of syscalls per request",
                run == &base ? "baseline" : "current", (*run)["upgraded_from"].get<std::string>()));
        }

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

    compare_points(b, c, shared, report, options, a_run_is_schema_1);
    auto has_model = [&](const Run& run, const std::string& model) {
        return std::any_of(run.order.begin(), run.order.end(),
                           [&](const GroupKey& k) { return std::get<2>(k) == model; });
    };
    if (report.stable_only &&
        !(has_model(b, options.reference_model) && has_model(c, options.reference_model)))
        report.notes.push_back(
            fmt::format("reference model {} is not in both runs, so no model ratios were judged",
                        options.reference_model));
    measure_noise(b, c, shared, report, options, a_run_is_schema_1);
    report.pooled = pool_points(report.comparisons);
    judge(report);
    report.metric_candidates = static_cast<size_t>(
        std::count_if(report.comparisons.begin(), report.comparisons.end(), [](const auto& cmp) {
            return cmp.metric != "status" && cmp.metric != kFailedRepeats && cmp.invalid.empty();
        }));

    // One definition of the family for the guard and for Holm: when no single point can reach
    // significance because the repeats are too few, say how many would do.
    if (report.points_family.testable == 0 && report.metric_candidates > 0)
        if (auto why = too_few_repeats(report.base_repeats, report.current_repeats,
                                       report.metric_candidates, report.points_family.alpha,
                                       options.alpha, "in the current run"))
            return refuse(*why);
    if (report.points_family.testable + report.pooled_family.testable + report.count("status") +
            report.count("improvement") ==
        0) {
        auto why = report.comparisons.empty()
                       ? std::string("no metric was measured at any point in both runs")
                       : fmt::format("none of the {} comparisons could be judged: {}",
                                     report.comparisons.size(), report.comparisons[0].detail);
        return refuse(why);
    }
    warn_of_failures(report);
    warn_of_unmeasured(report);
    warn_of_dropped(report);
    report.exit_code = report.regressions() > 0 ? 1 : 0;
    return report;
}

}  // namespace mux::check
