// `muxbench sweep`: every model across connection counts and scenarios, one results folder.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "plan.hpp"

namespace mux::sweep {

struct SweepOptions {
    Plan plan;
    std::string out_dir = "results";  // a new folder is made inside it per run
    std::string run_name;             // default: <date>-<plan name>
};

// `--plan NAME|PATH` on the top-level app: a plan is a config file whose [sweep] keys set the
// sweep subcommand's options (`--slow-rate` is `slow-rate = ...`).
void add_plan_option(CLI::App& app);
void setup_sweep(CLI::App& app, SweepOptions& options);
int run_sweep(const SweepOptions& options);

// Local time as YYYYmmdd-HHMMSS: run folder names and the started_at/finished_at stamps.
std::string run_timestamp();

// A plan name (quick, full, check) is bench/plans/NAME.toml in the source tree; a path is
// used as is.
std::string plan_path(const std::string& name_or_path);

}  // namespace mux::sweep
