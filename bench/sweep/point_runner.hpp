// Runs one point: a fresh server in its own cgroup with kernel counters on it, muxload
// against it, and the server's cost read at the instants muxload says its measured window
// starts and ends (server_cost.hpp).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "plan.hpp"

namespace mux::sweep {

struct Binaries {
    std::string muxserver;
    std::string muxload;
};
// muxserver and muxload beside the running executable (build/bin).
Binaries find_binaries();

// Result of one point, in the results.json "points" entry shape (see results/README.md).
// Never throws for a failing server or loadgen: the failure is recorded in the result.
nlohmann::json run_point(const Point& point, const Plan& plan, const Binaries& binaries);

// The entry for a point that was not run, with its reason.
nlohmann::json refused_point(const Point& point, const Refusal& refusal);

}  // namespace mux::sweep
