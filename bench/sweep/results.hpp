// The results folder a sweep writes: results.json (schema in results/README.md),
// points.csv and gbench.json (Google Benchmark's format), and the reading side that plots
// and regression checks share.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mux::sweep {

inline constexpr const char* kResultsSchema = "muxbench-results/1";

// The metrics every point reports, in a fixed order (CSV columns, check, plots).
struct MetricInfo {
    const char* key;
    const char* unit;
    bool higher_is_better;
};
const std::vector<MetricInfo>& metric_infos();

// Flat metric values of one point (missing ones absent), from its loadgen and server cost.
nlohmann::json metrics_of(const nlohmann::json& point);

// One entry per (scenario, x_value, model): status, repeats, and for each metric its
// median, min and max over the repeats that ran.
nlohmann::json summarize(const nlohmann::json& points);

void write_results(const std::filesystem::path& dir, const nlohmann::json& results);

// Reads DIR/results.json (or a results.json path). nullopt with *error on anything wrong:
// missing file, bad JSON, a schema other than kResultsSchema.
std::optional<nlohmann::json> read_results(const std::filesystem::path& path, std::string* error);

// A readable table per scenario: rows are x values, columns models, cells throughput or
// the refusal. Printed at the end of a sweep.
std::string summary_table(const nlohmann::json& results);

}  // namespace mux::sweep
