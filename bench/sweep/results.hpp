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

inline constexpr const char* kResultsSchema = "muxbench-results/2";
// Still read: its syscalls_per_request counted only the read and write families, and is read
// as io_calls_per_request (see upgrade_from_schema_1).
inline constexpr const char* kResultsSchema1 = "muxbench-results/1";

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

// A schema 1 document as this schema reads it: each point's server_cost.syscalls_per_request
// becomes io_calls_per_request, the summary is recomputed from the points, `schema` is
// kResultsSchema and `upgraded_from` names schema 1. Figures schema 1 never had stay absent.
void upgrade_from_schema_1(nlohmann::json& results);

// The file a results folder's run is in: DIR/results.json, or DIR/results.json.gz where only
// that is there (results/reference is stored compressed); a path that is not a folder is itself.
std::filesystem::path results_file(const std::filesystem::path& path);

// Reads DIR/results.json (or a results.json path; a .gz one is gunzipped), in schema 2 or 1
// (upgraded as above).
// nullopt with *error, one line naming the file and the field, on anything wrong: missing
// file, bad JSON, an unknown schema, a field of the wrong type, a number out of range for its
// kind (results_validation.hpp).
std::optional<nlohmann::json> read_results(const std::filesystem::path& path, std::string* error);

// Runs of one plan taken in turns (A1 B1 A2 B2 ...) as one run per side: points
// concatenated with their repeats renumbered after the earlier runs', the plan's repeats
// summed, the summary recomputed, and the parts listed under "merged_from". Interleaving is
// how two builds are compared on a drifting machine: a slow minute then lands on both sides.
// nullopt with *error when the runs differ in plan (other than repeats) or environment
// (other than the date), because their repeats would not sample one thing.
std::optional<nlohmann::json> merge_runs(const std::vector<nlohmann::json>& runs,
                                         const std::vector<std::string>& names, std::string* error);

// A readable table per scenario: rows are x values, columns models, cells throughput or
// the refusal. Printed at the end of a sweep.
std::string summary_table(const nlohmann::json& results);

}  // namespace mux::sweep
