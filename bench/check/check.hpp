// The regression check's judgement: two results folders in, one verdict per metric per point
// out. Pure: no processes, no files, so every rule is tested on made-up runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mux::check {

struct CheckOptions {
    double threshold = 0.10;  // a difference smaller than this fraction is never a regression
    // The check's false-alarm rate: the chance that noise alone makes any one of its
    // comparisons significant. Held by Holm's step-down over all of them, because a check
    // makes a hundred or more, and at compare.py's 0.05 each, several honest ones would pass
    // by chance in every check. The U test's strictest step is then alpha / comparisons,
    // which at about 130 comparisons needs 8 repeats a side.
    double alpha = 0.05;
    std::string reference_model = "epoll-lt";  // the denominator of within-run model ratios
    bool stable_only = false;  // judge only the metrics that hold across hosts, same host or not
};

// What the check compares on one point.
struct Comparison {
    std::string scenario, model, x_name;
    double x_value = 0;
    std::string metric;  // a results metric key, or "throughput_per_s/epoll-lt" for a ratio
    std::string unit;
    bool higher_is_better = false;
    std::vector<double> base, current;  // one value per repeat
    double base_median = 0, current_median = 0;
    double worse_by = 0;  // fraction by which current is worse (negative: better)
    double scatter = 0;   // 3/4 of the wider range of the two runs' repeats, over the base median
    double p = 1;         // two-sided U test over the repeats
    double p_holm = 1;    // p adjusted by Holm's step-down over the check's comparisons
    bool beyond_resolution = true;  // the medians differ by more than the metric can show
    // "regression", "improvement", "within_noise" (too small or not significant),
    // "status" (the point failed now and ran before), "untestable" (too few values)
    std::string verdict;
    std::string detail;  // for status changes and untestable points
};

// How steady a metric is across one run's repeats: the median over points of
// (max - min) / median.
struct MetricNoise {
    std::string metric;
    double base_spread = 0, current_spread = 0;
    size_t points = 0;
    bool holds_across_hosts = false;
    std::string why;
};

struct CheckReport {
    int exit_code = 0;           // 0 fine, 1 regression, 2 cannot be compared
    std::string cannot_compare;  // the reason, when exit_code is 2
    bool same_host = true;
    bool stable_only = false;  // only the metrics that hold across hosts were judged
    std::vector<std::string> host_differences;  // "hostname: vm → ci-runner-3"
    std::vector<std::string> notes;             // plan or kernel differences and the like
    std::vector<Comparison> comparisons;
    std::vector<MetricNoise> noise;
    size_t base_repeats = 0, current_repeats = 0;
    CheckOptions options;

    size_t count(const std::string& verdict) const;
    size_t judged() const;  // comparisons with a U test, untestable and status changes aside
};

// Why the U test cannot judge runs with these repeat counts in a check of `comparisons`
// comparisons at alpha (even a complete separation would not pass Holm's strictest step,
// alpha / comparisons), or nullopt when it can. current_what names the second count in the
// message: "in the current run", "planned".
std::optional<std::string> too_few_repeats(size_t base_repeats, size_t current_repeats,
                                           size_t comparisons, double alpha,
                                           const std::string& current_what);

// Repeats per point in a run: the highest repeat index plus one.
size_t repeats_of(const nlohmann::json& results);

// The metrics the check judges on the same host, in report order.
const std::vector<std::string>& judged_metrics();

CheckReport check_runs(const nlohmann::json& base, const nlohmann::json& current,
                       const CheckOptions& options);

// Per point label, "active conns=100".
std::string point_label(const Comparison& c);

}  // namespace mux::check
