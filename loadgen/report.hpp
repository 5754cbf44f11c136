// The human-readable table, and `muxload merge`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "stats.hpp"

namespace mux::load {

// The table printed after a run (or a merge) from its muxload/1 document.
std::string format_table(const nlohmann::json& doc);

// Why these muxload/1 documents cannot be merged, or "". Rates and connection counts may
// differ (they add); protocol, mode, request shape and duration must not, and every window
// must overlap the others by at least kMinWindowOverlap of the longest.
inline constexpr double kMinWindowOverlap = 0.9;
std::string merge_refusal(const std::vector<nlohmann::json>& docs);

struct MergeOutcome {
    std::string error;     // "" when merged
    bool refused = false;  // the inputs were read but cannot be merged (exit 2)
};
// Reads muxload/1 files and merges them exactly.
MergeOutcome merge_files(const std::vector<std::string>& paths, nlohmann::json* merged);

// Writes doc to path (compact, newline-terminated). Returns "" or what is wrong.
std::string write_json(const std::string& path, const nlohmann::json& doc);

}  // namespace mux::load
