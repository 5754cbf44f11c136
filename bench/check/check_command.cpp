#include "check_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "report.hpp"
#include "results.hpp"
#include "subprocess.hpp"
#include "sweep_command.hpp"

namespace fs = std::filesystem;

namespace mux::check {

namespace {

// "10%", "10" and "10.5%" all mean a percentage.
double parse_percent(const std::string& text) {
    std::string digits = text;
    if (!digits.empty() && digits.back() == '%') digits.pop_back();
    size_t used = 0;
    double value = 0;
    try {
        value = std::stod(digits, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != digits.size() || !std::isfinite(value) || value <= 0 || value >= 100)
        throw CLI::ValidationError("--threshold",
                                   "'" + text + "' is not a percentage between 0 and 100");
    return value / 100;
}

// Runs `muxbench sweep` (this same executable) and returns the exit status.
int run_sweep_process(const CheckCommandOptions& o, int repeats, const std::string& run_name) {
    std::vector<std::string> argv = {fs::read_symlink("/proc/self/exe").string(),
                                     "sweep",
                                     "--plan",
                                     o.plan,
                                     "--repeats",
                                     std::to_string(repeats),
                                     "--out",
                                     o.out_dir,
                                     "--run-name",
                                     run_name};
    argv.insert(argv.end(), o.sweep_args.begin(), o.sweep_args.end());
    fmt::print(stderr, "check: running");
    for (size_t i = 1; i < argv.size(); ++i) fmt::print(stderr, " {}", argv[i]);
    fmt::print(stderr, "\n");
    SpawnOptions spawn;
    spawn.capture_stdout = false;
    Subprocess sweep(argv, spawn);
    if (!sweep.running()) {
        fmt::print(stderr, "check: cannot start the sweep: {}\n", sweep.error());
        return -1;
    }
    // The sweep bounds every point itself; this bound only guards against a wedged driver.
    auto status = sweep.wait(std::chrono::hours(12));
    if (!status) return -1;
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

// Draws the compare charts with plot/muxplot into report_dir/compare; returns links relative
// to report_dir, or none with *why.
std::vector<ChartLink> draw_charts(const std::string& base, const std::string& current,
                                   const fs::path& report_dir, std::string* why) {
    const char* override_path = std::getenv("MUXBENCH_MUXPLOT");
    std::string muxplot =
        override_path ? override_path : std::string(MUX_SOURCE_DIR) + "/plot/muxplot";
    if (!fs::exists(muxplot)) {
        *why = muxplot + " not found";
        return {};
    }
    fs::path out = report_dir / "compare";
    SpawnOptions spawn;
    spawn.capture_stdout = true;
    Subprocess plot({muxplot, "--compare", base, current, "--out", out.string()}, spawn);
    // Its stdout goes to stderr: the check's own stdout is the Markdown summary.
    fmt::print(stderr, "{}", plot.read_rest(std::chrono::minutes(5)));
    auto status = plot.wait(std::chrono::seconds(30));
    if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
        *why = "muxplot failed (see its message above); the check itself is unaffected";
        return {};
    }
    std::vector<ChartLink> links = {{"compare report (HTML)", "compare/compare.html"},
                                    {"ratio tables (Markdown)", "compare/compare.md"}};
    std::vector<std::string> pngs;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(out, ec))
        if (entry.path().extension() == ".png") pngs.push_back(entry.path().filename().string());
    std::sort(pngs.begin(), pngs.end());
    for (const auto& png : pngs)
        links.push_back({fs::path(png).stem().string() + " chart", "compare/" + png});
    return links;
}

bool write_file(const fs::path& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    return static_cast<bool>(out);
}

}  // namespace

void setup_check(CLI::App& app, CheckCommandOptions& o) {
    app.add_option("--baseline", o.baseline, "Results folder to judge against")->required();
    auto* current =
        app.add_option("--current", o.current, "Results folder to judge (or give --plan)");
    auto* plan = app.add_option("--plan", o.plan,
                                "Run this plan first (quick, full, check or a .toml path) and "
                                "judge that run");
    current->excludes(plan);
    app.add_option("--repeats", o.repeats,
                   "With --plan: repeats per point (default: as many as the baseline has)")
        ->check(CLI::PositiveNumber)
        ->needs(plan);
    app.add_option("--out", o.out_dir, "With --plan: folder for the new run's results")
        ->capture_default_str()
        ->needs(plan);
    app.add_option("--run-name", o.run_name,
                   "With --plan: name of the new run (default DATE-check)")
        ->needs(plan);
    app.add_option_function<std::string>(
        "--threshold", [&o](const std::string& v) { o.check.threshold = parse_percent(v); },
        "Smallest change that counts, percent on the log scale: 10% is x1.1 for a cost, /1.1 for a "
        "rate (default 10%)");
    app.add_option("--alpha", o.check.alpha,
                   "The check's false-alarm rate: the chance that noise makes any of its "
                   "comparisons significant, held by Holm's step-down; half goes to single "
                   "points, half to each model's metrics pooled across points (the check plan's "
                   "235 or so single points at 0.05 need 9 repeats a side)")
        ->check(CLI::Range(0.0001, 0.5))
        ->capture_default_str();
    app.add_option("--reference-model", o.check.reference_model,
                   "Model whose figures divide the others' in cross-host ratios")
        ->capture_default_str();
    app.add_flag("--stable-only", o.check.stable_only,
                 "Judge only what holds across hosts, even on the same host");
    app.add_option("--report-dir", o.report_dir,
                   "Where check.md, check.junit.xml, check.json and compare/ go (default "
                   "CURRENT/check)");
    app.add_flag("!--no-charts", o.draw_charts, "Do not draw the compare charts");
    app.add_option("sweep_args", o.sweep_args,
                   "After --: extra options for the sweep --plan runs, e.g. -- --work-us 20 "
                   "(not --repeats, --out or --run-name, which the check sets)")
        ->needs(plan);
    app.footer(
        "Exit status: 0 no regression, 1 regression, 2 the runs cannot be compared (the reason "
        "is printed).\nA regression is a change (the Hodges-Lehmann shift of the repeats' log "
        "ratio) worse than --threshold whose p passes Holm's step-down at --alpha, at one point "
        "or pooled across a model's points; a change in failed repeats is judged by Fisher's "
        "exact test.\nOn a different host "
        "(hostname, CPU model, core count or pinning differ) "
        "only syscalls per request and within-run model ratios are judged.");
}

int run_check(const CheckCommandOptions& o) {
    std::string error;
    auto base = sweep::read_results(o.baseline, &error);
    if (!base) {
        fmt::print(stderr, "check: baseline: {}\n", error);
        return 2;
    }
    if (o.current.empty() && o.plan.empty()) {
        fmt::print(stderr, "check: give --current DIR or --plan NAME\n");
        return 2;
    }
    std::string current_dir = o.current;
    if (!o.plan.empty() && !fs::exists(sweep::plan_path(o.plan))) {
        fmt::print(stderr, "check: no plan file {}\n", sweep::plan_path(o.plan));
        return 2;
    }
    if (!o.plan.empty()) {
        int base_repeats = static_cast<int>(repeats_of(*base));
        int repeats = o.repeats > 0 ? o.repeats : base_repeats;
        // Refuse before spending minutes on a run the test could not judge anyway. The
        // baseline judged against itself counts the comparisons a run of its plan will make.
        CheckReport self = check_runs(*base, *base, o.check);
        if (self.exit_code == 2 && self.comparisons.empty()) {  // refused for want of points
            fmt::print(stderr, "check: cannot compare: {}\n", self.cannot_compare);
            return 2;
        }
        if (self.metric_candidates > 0)
            if (auto why =
                    too_few_repeats(size_t(base_repeats), size_t(repeats), self.metric_candidates,
                                    self.points_family.alpha, o.check.alpha, "planned")) {
                fmt::print(stderr, "check: cannot compare: {}\n", *why);
                return 2;
            }
        std::string run_name = o.run_name.empty() ? sweep::run_timestamp() + "-check" : o.run_name;
        int status = run_sweep_process(o, repeats, run_name);
        if (status != 0) {
            fmt::print(stderr, "check: the sweep failed (exit status {}); nothing to judge\n",
                       status);
            return 2;
        }
        current_dir = (fs::path(o.out_dir) / run_name).string();
    }
    auto current = sweep::read_results(current_dir, &error);
    if (!current) {
        fmt::print(stderr, "check: current: {}\n", error);
        return 2;
    }

    CheckReport report = check_runs(*base, *current, o.check);
    fs::path report_dir =
        o.report_dir.empty() ? fs::path(current_dir) / "check" : fs::path(o.report_dir);
    std::error_code ec;
    fs::create_directories(report_dir, ec);
    if (ec) {
        fmt::print(stderr, "check: cannot make {}: {}\n", report_dir.string(), ec.message());
        return 2;
    }
    std::vector<ChartLink> charts;
    std::string charts_note = "--no-charts was given";
    if (o.draw_charts && report.exit_code != 2)
        charts = draw_charts(o.baseline, current_dir, report_dir, &charts_note);
    else if (report.exit_code == 2)
        charts_note = "the runs cannot be compared";

    RunMeta base_meta = run_meta(o.baseline, *base), current_meta = run_meta(current_dir, *current);
    std::string md = markdown(report, base_meta, current_meta, charts, charts_note);
    bool written = write_file(report_dir / "check.md", md) &&
                   write_file(report_dir / "check.junit.xml", junit_xml(report)) &&
                   write_file(report_dir / "check.json",
                              report_json(report, base_meta, current_meta).dump() + "\n");
    fmt::print("{}", md);
    if (!written) {
        fmt::print(stderr, "check: cannot write the report into {}\n", report_dir.string());
        return 2;
    }
    fmt::print(stderr, "check: report in {} (check.md, check.junit.xml, check.json); exit {}\n",
               report_dir.string(), report.exit_code);
    return report.exit_code;
}

}  // namespace mux::check
