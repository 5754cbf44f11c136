// muxbench: the suite's driver. `muxbench sweep` runs a plan and writes a results folder;
// `muxbench check` judges one results folder against another; `muxbench merge` joins runs
// taken in turns into one; `muxbench export` rewrites a folder's Google Benchmark JSON.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "check_command.hpp"
#include "gbench_export.hpp"
#include "results.hpp"
#include "sweep_command.hpp"

namespace {
int export_gbench(const std::string& folder, std::string out) {
    std::string error;
    auto results = mux::sweep::read_results(folder, &error);
    if (!results) {
        fmt::print(stderr, "export: {}\n", error);
        return 2;
    }
    if (out.empty()) out = (std::filesystem::path(folder) / "gbench.json").string();
    std::ofstream file(out);
    file << mux::sweep::gbench_json(*results).dump() << "\n";
    if (!file) {
        fmt::print(stderr, "export: cannot write {}\n", out);
        return 1;
    }
    fmt::print("{}\n", out);
    return 0;
}

int merge_folders(const std::vector<std::string>& folders, const std::string& out) {
    namespace fs = std::filesystem;
    std::vector<nlohmann::json> runs;
    for (const auto& folder : folders) {
        std::string error;
        auto results = mux::sweep::read_results(folder, &error);
        if (!results) {
            fmt::print(stderr, "merge: {}\n", error);
            return 2;
        }
        runs.push_back(std::move(*results));
    }
    if (fs::is_directory(out) && fs::exists(mux::sweep::results_file(out))) {
        fmt::print(stderr, "merge: {} already holds a run; give a new folder\n", out);
        return 2;
    }
    std::string error;
    auto merged = mux::sweep::merge_runs(runs, folders, &error);
    if (!merged) {
        fmt::print(stderr, "merge: {}\n", error);
        return 2;
    }
    // Written beside OUT and renamed into place once it reads back, so a failure (a full disk,
    // a value that cannot be written) leaves no half-written run for a later check to trust.
    fs::path target(out);
    if (!target.has_filename()) target = target.parent_path();  // "dir/" names "dir"
    fs::path staging = target.string() + ".partial";
    std::error_code ec;
    fs::remove_all(staging, ec);
    std::string why;
    try {
        mux::sweep::write_results(staging, *merged);
        if (!mux::sweep::read_results(staging, &error))
            why = "the merged run does not read back: " + error;
    } catch (const std::exception& e) {
        why = e.what();
    }
    if (why.empty()) {
        fs::rename(staging, target, ec);  // an empty OUT is replaced; a non-empty one refuses
        if (ec) why = fmt::format("cannot move the merged run into {}: {}", out, ec.message());
    }
    if (!why.empty()) {
        fs::remove_all(staging, ec);
        fmt::print(stderr, "merge: {}\n", why);
        return 2;
    }
    fmt::print("{}: {} runs, {} repeats\n", (fs::path(out) / "results.json").string(), runs.size(),
               (*merged)["plan"]["repeats"].get<int>());
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"muxbench: measures how the way a server waits for I/O changes what it costs."};
    app.require_subcommand(1);
    mux::sweep::add_plan_option(app);

    mux::sweep::SweepOptions sweep_options;
    CLI::App* sweep = app.add_subcommand("sweep", "Run every model across a plan's points");
    sweep->fallthrough();  // so --plan may follow the subcommand name
    mux::sweep::setup_sweep(*sweep, sweep_options);

    mux::check::CheckCommandOptions check_options;
    CLI::App* check = app.add_subcommand(
        "check", "Judge a run against a baseline: regressions beyond noise, per metric and point");
    mux::check::setup_check(*check, check_options);

    std::vector<std::string> merge_inputs;
    std::string merge_out;
    CLI::App* merger = app.add_subcommand(
        "merge",
        "Join runs of one plan taken in turns (A B A B ...) into one run with all their repeats");
    merger->add_option("folders", merge_inputs, "Results folders, in the order they were taken")
        ->required()
        ->check(CLI::ExistingDirectory);
    merger->add_option("--out", merge_out, "New results folder for the merged run")->required();

    std::string export_folder, export_out;
    CLI::App* exporter = app.add_subcommand(
        "export", "Write a results folder's metrics in Google Benchmark's JSON format");
    exporter->add_option("folder", export_folder, "Results folder")->required();
    exporter->add_option("--out", export_out, "Output file (default FOLDER/gbench.json)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // Misuse exits 2, as a check that cannot compare does, so CI scripts see 0/1/2 only.
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (sweep->parsed()) return mux::sweep::run_sweep(sweep_options);
    try {
        if (check->parsed()) return mux::check::run_check(check_options);
        if (merger->parsed()) return merge_folders(merge_inputs, merge_out);
        if (exporter->parsed()) return export_gbench(export_folder, export_out);
    } catch (const std::exception& e) {
        // A results file of the right schema but the wrong shape, an unwritable folder: the
        // runs cannot be compared, and the caller is told why rather than shown an abort.
        fmt::print(stderr, "muxbench: {}\n", e.what());
        return 2;
    }
    return 0;
}
