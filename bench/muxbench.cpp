// muxbench: the suite's driver. `muxbench sweep` runs a plan and writes a results folder.
#include <CLI/CLI.hpp>
#include <filesystem>

#include "sweep_command.hpp"

namespace {
// --plan NAME looks for bench/plans/NAME.toml in the source tree; a path is used as is.
std::string plan_path(const std::string& value) {
    if (value.find('/') != std::string::npos || value.ends_with(".toml") || value.ends_with(".ini"))
        return value;
    return std::string(MUX_SOURCE_DIR) + "/bench/plans/" + value + ".toml";
}
}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"muxbench: measures how the way a server waits for I/O changes what it costs."};
    app.require_subcommand(1);
    // CLI11 reads plans as config files; keys sit in a [sweep] section. Options given on the
    // command line override the plan.
    app.set_config("--plan", "", "Plan: a name from bench/plans (quick, full) or a .toml path")
        ->transform([](const std::string& value) {
            std::string path = plan_path(value);
            if (!std::filesystem::exists(path))
                throw CLI::ValidationError("--plan", "no plan file " + path);
            return path;
        });

    mux::sweep::SweepOptions sweep_options;
    CLI::App* sweep = app.add_subcommand("sweep", "Run every model across a plan's points");
    sweep->fallthrough();  // so --plan may follow the subcommand name
    mux::sweep::setup_sweep(*sweep, sweep_options);

    CLI11_PARSE(app, argc, argv);
    if (sweep->parsed()) return mux::sweep::run_sweep(sweep_options);
    return 0;
}
