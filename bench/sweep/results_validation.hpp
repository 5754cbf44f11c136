// Reading a results.json that may come from anywhere: another muxbench, a script, a file cut
// short by a full disk, or a hand edit. `muxbench check` and `merge` read through here, so a
// document that gets past parse_results can be summarized, merged and judged without a JSON
// type error, an out-of-range cast or a non-finite figure reaching a chart or a verdict.
//
// Every problem is one line, "FILE: FIELD: what is wrong", FIELD being the JSON path of the
// offending value (points[3].server_cost.cpu_us_per_request).
#pragma once

#include <istream>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mux::sweep {

// The schemas this reader accepts: muxbench-results/1, and /2, which adds server_cost metrics
// and ramp_s. Numbers are judged by their kind, not by a list of keys, so a new metric is
// checked as soon as its name says its unit.
bool readable_schema(std::string_view schema);

// Parses and validates a results document read from `in`. `name` (the file) starts every
// error. JSON has no NaN or Infinity, so a file holding them fails to parse; the error then
// names the field being read when the parse stopped.
std::optional<nlohmann::json> parse_results(std::istream& in, const std::string& name,
                                            std::string* error);

// The first problem of a parsed document as "FIELD: problem", or nullopt when the structure
// the tools read is there with the right types and every number is sane for its kind.
std::optional<std::string> results_problem(const nlohmann::json& results);

}  // namespace mux::sweep
