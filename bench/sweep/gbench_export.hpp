// A sweep in Google Benchmark's JSON output format, so tools that already track that format
// over time (its own compare.py among them) can read muxbench results. results/README.md
// says which muxbench metric each field carries.
#pragma once

#include <nlohmann/json.hpp>

namespace mux::sweep {

// One "iteration" entry per measured repeat, named scenario/model/x_name:x. Failed and refused
// points, and any missing latency, CPU or throughput, are listed under muxbench_not_measured
// instead: compare.py and its kind would read a placeholder zero as a measurement.
nlohmann::json gbench_json(const nlohmann::json& results);

}  // namespace mux::sweep
