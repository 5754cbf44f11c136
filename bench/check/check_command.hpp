// `muxbench check`: judges a run against a baseline, or runs a plan first and judges that,
// then writes check.md, check.junit.xml, check.json and the compare charts.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "check.hpp"

namespace mux::check {

struct CheckCommandOptions {
    std::string baseline;
    std::string current;  // a results folder, or empty with plan
    std::string plan;     // run this plan (a name or path) and judge the run
    int repeats = 0;      // with plan; 0: as many as the baseline has
    std::string out_dir = "results";
    std::string run_name;    // with plan; default DATE-check
    std::string report_dir;  // default CURRENT/check
    bool draw_charts = true;
    std::vector<std::string> sweep_args;  // after --, passed to the sweep
    CheckOptions check;
};

void setup_check(CLI::App& app, CheckCommandOptions& options);
int run_check(const CheckCommandOptions& options);

}  // namespace mux::check
