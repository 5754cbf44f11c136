// muxload: the suite's load generator. See docs/muxload-json.md for its output.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "judge.hpp"
#include "options.hpp"
#include "report.hpp"
#include "run.hpp"

namespace {

constexpr const char* kDescription =
    "muxload: load generator for muxserver (mux1 or HTTP/1.1) and any HTTP/1.1 server.\n"
    "Closed loop by default (--pipeline requests in flight per active connection); --rate R "
    "switches to open loop with latency measured from each request's intended send time.\n"
    "Units: TIME options take wrk's forms (3, 3s, 500ms, 250us, 2m; a bare number is in the "
    "option's own unit: seconds, or milliseconds for --timeout), --work-us microseconds, "
    "--rate and --connect-rate per second, --payload/--reply bytes. Latency is reported in "
    "microseconds.\n"
    "Exit status: 0 a clean run; 1 nothing measured (bad setup: fd limit, unresolvable "
    "target); 2 refused: a bad command line, or merge inputs that cannot be merged; 3 measured, "
    "but with errors or an incomplete ramp; 4 measured, but not clean (open loop under 99% of "
    "the offered rate, requests unfinished at the end beyond the allowance, or Little's law "
    "off by over 10%); 5 most replies failed verification (the first failure is printed). "
    "With 3-5 the JSON is still written and says why.";

void report_failures(const mux::load::Stats& s, const mux::load::LoadOptions* o) {
    if (!s.most_replies_failed() || !s.first_failure.set) return;
    const auto& d = s.first_failure.detail;
    std::fprintf(stderr,
                 "muxload: %llu replies failed verification, %llu passed. The first (%s): %s\n"
                 "  expected: %s\n  got:      %s\n",
                 static_cast<unsigned long long>(s.verification_failures()),
                 static_cast<unsigned long long>(s.replies_verified),
                 mux::load::error_kind_name(s.first_failure.kind), d.reason.c_str(),
                 d.expected.c_str(), d.got.c_str());
    if (o != nullptr && o->proto == mux::load::Proto::Http && o->verify == mux::load::Verify::Full)
        std::fprintf(stderr,
                     "  (not muxserver? --verify framing checks status, headers and body length "
                     "against any server)\n");
}

int run_merge(const std::vector<std::string>& inputs, const std::string& json_path, bool quiet) {
    nlohmann::json merged;
    mux::load::MergeOutcome outcome = mux::load::merge_files(inputs, &merged);
    if (!outcome.error.empty()) {
        std::fprintf(stderr, "muxload merge: %s\n", outcome.error.c_str());
        return outcome.refused ? mux::load::kExitRefused : mux::load::kExitSetupFailed;
    }
    if (!json_path.empty()) {
        std::string error = mux::load::write_json(json_path, merged);
        if (!error.empty()) {
            std::fprintf(stderr, "muxload merge: %s\n", error.c_str());
            return mux::load::kExitSetupFailed;
        }
    }
    if (!quiet) std::fputs(mux::load::format_table(merged).c_str(), stdout);
    mux::load::Stats stats;
    mux::load::stats_from_json(merged, &stats);
    report_failures(stats, nullptr);
    return mux::load::exit_code_for(stats);
}

int run(mux::load::LoadOptions& options) {
    std::string error = mux::load::validate(&options);
    if (!error.empty()) {
        std::fprintf(stderr, "muxload: %s\n", error.c_str());
        return mux::load::kExitRefused;
    }
    if (!options.verify_note.empty())
        std::fprintf(stderr, "muxload: %s\n", options.verify_note.c_str());
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
    report_failures(out.stats, &options);
    return out.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{kDescription};
    mux::load::LoadOptions options;
    mux::load::setup_load_options(app, &options);

    std::vector<std::string> merge_inputs;
    auto* merge = app.add_subcommand(
        "merge",
        "Merge muxload/1 JSON files of parallel loadgen processes exactly (histograms and "
        "counters add; throughput is the sum). Refused (exit 2) unless the runs share protocol, "
        "mode, request and duration and their windows overlap by 90%");
    merge->add_option("inputs", merge_inputs, "muxload/1 JSON files")
        ->required()
        ->check(CLI::ExistingFile);
    merge->add_option("--json", options.json_path, "Write the merged document here");
    merge->add_flag("-q,--quiet", options.quiet, "Do not print the table");
    app.require_subcommand(0, 1);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);  // prints the message
        return mux::load::kExitRefused;
    }

    if (merge->parsed()) return run_merge(merge_inputs, options.json_path, options.quiet);
    return run(options);
}
