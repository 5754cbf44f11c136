// Where a number was taken: machine, limits, pinning, compiler and commit. Every results
// file embeds this so a figure can be traced to the machine and code that produced it.
#pragma once

#include <nlohmann/json_fwd.hpp>

namespace mux {

// {"hostname", "kernel": {sysname, release, version, machine}, "cpu_model", "online_cores",
//  "fd_limit": {soft, hard}, "cpu_affinity": [cpus], "compiler", "compiler_flags", "build_type", "git_commit",
//  "date_utc"}. Reads the calling process's limits and affinity at the moment of the call.
nlohmann::json describe_environment();

// The commit the binary was built from, "-dirty" with uncommitted changes, or "unknown".
const char* git_commit();

}  // namespace mux
