// muxload: the suite's load generator. See docs/muxload-json.md for its output.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "options.hpp"
#include "report.hpp"
#include "run.hpp"

namespace {

constexpr const char* kDescription =
    "muxload: load generator for muxserver (mux1 or HTTP/1.1).\n"
    "Closed loop by default (--pipeline requests in flight per active connection); --rate R "
    "switches to open loop with latency measured from each request's intended send time.\n"
    "Units: --duration/--warmup/--ramp-timeout in seconds, --timeout in milliseconds, "
    "--work-us in microseconds, --rate and --connect-rate per second, --payload/--reply in "
    "bytes. Latency is reported in microseconds.\n"
    "Exit status: 0 clean run; 1 nothing measured (bad setup); 3 measured, but with errors "
    "or an incomplete ramp/run (the JSON is still written).";

int run_merge(const std::vector<std::string>& inputs, const std::string& json_path, bool quiet) {
    nlohmann::json merged;
    std::string error = mux::load::merge_files(inputs, &merged);
    if (!error.empty()) {
        std::fprintf(stderr, "muxload merge: %s\n", error.c_str());
        return mux::load::kExitSetupFailed;
    }
    if (!json_path.empty()) {
        error = mux::load::write_json(json_path, merged);
        if (!error.empty()) {
            std::fprintf(stderr, "muxload merge: %s\n", error.c_str());
            return mux::load::kExitSetupFailed;
        }
    }
    if (!quiet) std::fputs(mux::load::format_table(merged).c_str(), stdout);
    mux::load::Stats stats;
    mux::load::stats_from_json(merged, &stats);
    return mux::load::exit_code_for(stats);
}

int run(mux::load::LoadOptions& options) {
    std::string error = mux::load::validate(&options);
    if (!error.empty()) {
        std::fprintf(stderr, "muxload: %s\n", error.c_str());
        return mux::load::kExitSetupFailed;
    }
    auto out = mux::load::run_load(options, stdout);
    if (!out.error.empty()) {
        std::fprintf(stderr, "muxload: %s\n", out.error.c_str());
        return mux::load::kExitSetupFailed;
    }
    if (!options.json_path.empty()) {
        error = mux::load::write_json(options.json_path, out.doc);
        if (!error.empty()) {
            std::fprintf(stderr, "muxload: %s\n", error.c_str());
            return mux::load::kExitSetupFailed;
        }
    }
    if (!options.quiet) std::fputs(mux::load::format_table(out.doc).c_str(), stdout);
    return out.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{kDescription};
    mux::load::LoadOptions options;
    mux::load::setup_load_options(app, &options);

    std::vector<std::string> merge_inputs;
    auto* merge =
        app.add_subcommand("merge",
                           "Merge muxload/1 JSON files of parallel loadgen processes exactly "
                           "(histograms and counters add; throughput is the sum)");
    merge->add_option("inputs", merge_inputs, "muxload/1 JSON files")
        ->required()
        ->check(CLI::ExistingFile);
    merge->add_option("--json", options.json_path, "Write the merged document here");
    merge->add_flag("-q,--quiet", options.quiet, "Do not print the table");
    app.require_subcommand(0, 1);
    CLI11_PARSE(app, argc, argv);

    if (merge->parsed()) return run_merge(merge_inputs, options.json_path, options.quiet);
    return run(options);
}
