// The human-readable table, and `muxload merge`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "stats.hpp"

namespace mux::load {

// The table printed after a run (or a merge) from its muxload/1 document.
std::string format_table(const nlohmann::json& doc);

// Reads muxload/1 files and merges them exactly. Returns "" or what is wrong.
std::string merge_files(const std::vector<std::string>& paths, nlohmann::json* merged);

// Writes doc to path (pretty, newline-terminated). Returns "" or what is wrong.
std::string write_json(const std::string& path, const nlohmann::json& doc);

}  // namespace mux::load
