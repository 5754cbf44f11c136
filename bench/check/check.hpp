// The regression check's judgement: two results folders in, one verdict per metric per point,
// and per model and metric across its points, out. Pure: no processes, no files, so every
// rule is tested on made-up runs.
//
// The rule, in full (the report's rule line and results/README.md say the same):
// - A change is measured on the log scale, as the Hodges-Lehmann shift of log(current) -
//   log(base) over the repeats, so "worse by 10%" means the same for a time that grows and a
//   rate that falls (a rate is 10% worse when it falls to 1/1.1 of what it was).
// - A point's change is significant when a two-sided Mann-Whitney U test over its repeats
//   (exact given ties up to kExactLimit values a side, the normal approximation past that)
//   survives Holm's step-down; a regression is a significant change worse than --threshold
//   (memory per connection: and medians more than kMemoryResolutionBytes apart).
// - Pooled: each model's metric over all its points, by a permutation test of whole repeats
//   (a repeat is one pass over the plan, so a slow minute moves all its points together, and
//   the test keeps them together). The statistic is the sum, over the current run's repeats,
//   of their ranks at each point; its change is the median of the points' shifts.
// - Failed repeats do not hide a point: the repeats that ran are judged as usual, and a change
//   in how many failed is judged by Fisher's exact test in the same family; any significant
//   rise in the share that failed is a regression.
// - The family: see family.hpp. Single points and pooled judgements each get half of --alpha.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "family.hpp"

namespace mux::check {

struct CheckOptions {
    double threshold = 0.10;  // a change smaller than this (on the log scale) is never a regression
    // The check's false-alarm rate: the chance that noise alone makes any one of its
    // comparisons significant. Held by Holm's step-down over all of them, because a check
    // makes a hundred or more, and at compare.py's 0.05 each, several honest ones would pass
    // by chance in every check.
    double alpha = 0.05;
    std::string reference_model = "epoll-lt";  // the denominator of within-run model ratios
    bool stable_only = false;  // judge only the metrics that hold across hosts, same host or not
};

// Memory per connection is the tree's PSS growth over the connections: page-granular and
// moved by the allocator, so at a handful of connections it measures one allocation, and
// below 1 KiB per connection a difference is sampling, not a cost. It is judged at this many
// connections or more, readings below the resolution count as the resolution, and a change
// whose medians are no further apart than it is not significant.
inline constexpr int kMinConnectionsForMemory = 100;
inline constexpr double kMemoryResolutionBytes = 1024;

// The metric of a comparison of how many repeats failed.
inline constexpr const char* kFailedRepeats = "failed_repeats";

// What the check compares on one point.
struct Comparison {
    std::string scenario, model, x_name;
    double x_value = 0;
    // A results metric key, "throughput_per_s/epoll-lt" for a ratio, kFailedRepeats, or "status"
    std::string metric;
    std::string unit;
    bool higher_is_better = false;
    std::vector<double> base, current;  // one value per repeat that gave one (failed: 1, else 0)
    std::vector<int> base_repeats, current_repeats;  // the repeat each value came from
    double base_median = 0, current_median = 0;
    // The Hodges-Lehmann shift of log(current) - log(base), as a ratio less 1, with its exact
    // confidence interval at 1 - alpha (not adjusted for the family; empty when the repeats are
    // too few to give one). For failed repeats: the change in the share that failed.
    double change = 0;
    std::optional<double> change_low, change_high;
    double worse_by = 0;  // the change in the worse direction: exp(±shift) - 1; < 0 better
    // The smallest absolute difference the metric can show; readings below it are compared as
    // it, and a change of medians no larger than it is not significant.
    double resolution = 0;
    // Values of 0 or less, left out (no ratio) where the metric has no resolution; a reading
    // below the resolution is kept, and compared as the resolution.
    size_t dropped_base = 0, dropped_current = 0;
    std::string invalid;  // why these values cannot be judged at all (then untestable)
    double p = 1;         // two-sided U test (Fisher's for failed repeats)
    double min_p = 1;     // the smallest p these values allow
    double p_holm = 1;    // adjusted over the check's family; significant below alpha
    // "regression", "improvement", "within_noise" (too small or not significant), "status"
    // (the model is refused now and ran before), "untestable"
    std::string verdict;
    std::string detail;  // for status changes, failed repeats and untestable comparisons
};

// One model's metric across all its points.
struct PooledComparison {
    std::string model, metric, unit;
    bool higher_is_better = false;
    std::vector<std::string> points;               // point labels, in plan order
    std::vector<double> point_changes;             // each point's own change (ratio less 1)
    size_t worse_points = 0;                       // points whose own change is worse
    double change = 0;                             // exp(median of the points' log shifts) - 1
    double worse_by = 0;                           // as for a point
    size_t base_repeats = 0, current_repeats = 0;  // whole repeats permuted
    double p = 1, min_p = 1, p_holm = 1;
    bool beyond_resolution = true;
    std::string verdict, detail;
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
    std::vector<std::string> warnings;          // failed repeats too few to judge, and the like
    std::vector<Comparison> comparisons;
    std::vector<PooledComparison> pooled;
    std::vector<MetricNoise> noise;
    FamilyShare points_family, pooled_family;
    size_t metric_candidates = 0;  // single-point metric comparisons whose values can be judged
    size_t base_repeats = 0, current_repeats = 0;
    CheckOptions options;

    size_t count(const std::string& verdict) const;         // single points
    size_t count_pooled(const std::string& verdict) const;  // pooled judgements
    size_t regressions() const;  // single points, pooled and status changes
    size_t judged() const;       // single-point comparisons in the family
};

// Why the U test cannot judge runs with these repeat counts in a family of `comparisons`
// comparisons sharing `share` of alpha (even a complete separation would not pass Holm's
// strictest step, share / comparisons), or nullopt when it can. current_what names the second
// count in the message: "in the current run", "planned".
std::optional<std::string> too_few_repeats(size_t base_repeats, size_t current_repeats,
                                           size_t comparisons, double share, double alpha,
                                           const std::string& current_what);

// Repeats per point in a run: the highest repeat index plus one.
size_t repeats_of(const nlohmann::json& results);

// The metrics the check judges on the same host, in report order: a fixed set, because every
// metric judged is one more test at every point, and the family's size sets the repeats.
std::vector<std::string> judged_metrics();

// Why the check leaves a metric of the results out, or nullopt when it has no reason on
// record (a judged metric, or one the sweep added since: check_test asks for a decision).
std::optional<std::string> why_not_judged(const std::string& metric);

// Two results documents in schema 2 or 1 (a schema-1 one is read as sweep::read_results
// reads it, through sweep::upgrade_from_schema_1; where either run was schema 1, its count of
// read and write calls is judged in place of syscalls per request).
CheckReport check_runs(const nlohmann::json& base, const nlohmann::json& current,
                       const CheckOptions& options);

// Per point label, "active conns=100".
std::string point_label(const Comparison& c);

}  // namespace mux::check
