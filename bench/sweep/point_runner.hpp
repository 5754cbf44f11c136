// Runs one point: a fresh server in its own cgroup with kernel counters on it, muxload
// against it, and the server's cost read at the instants muxload says its measured window
// starts and ends (server_cost.hpp).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan.hpp"

namespace mux::sweep {

struct Binaries {
    std::string muxserver;
    std::string muxload;
};
// muxserver and muxload beside the running executable (build/bin).
Binaries find_binaries();

// muxload's command line for a point. Open-loop points (latency, slow) pass --rate, and
// muxload then measures latency from each request's intended send time.
std::vector<std::string> loadgen_argv(const Point& point, const Plan& plan, const Binaries& bin,
                                      const std::string& target, const std::string& json_path);

// Result of one point, in the results.json "points" entry shape (see results/README.md).
// Never throws for a failing server or loadgen: the failure is recorded in the result.
nlohmann::json run_point(const Point& point, const Plan& plan, const Binaries& binaries);

// The entry for a point that was not run, with its reason.
nlohmann::json refused_point(const Point& point, const Refusal& refusal);

}  // namespace mux::sweep
