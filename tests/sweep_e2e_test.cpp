// The sweep end to end: the real muxbench drives real servers with muxload, and its results
// folder is read back through the same reader plots and checks use.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "check.hpp"
#include "point_runner.hpp"
#include "results.hpp"
#include "run_cgroup.hpp"
#include "server_process.hpp"
#include "subprocess.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {
fs::path fresh_dir(const std::string& name) {
    fs::path dir =
        fs::temp_directory_path() / ("muxbench-test-" + std::to_string(getpid()) + "-" + name);
    fs::remove_all(dir);
    return dir;
}

// Every cost figure of an ok point: CPU split user/kernel, all syscalls, wait calls, I/O
// calls and the ramp. Where this machine lacks a source the figure may come from /proc (said
// in sources); only the figures nothing but perf gives are then allowed to be missing, with
// their reason.
void expect_every_cost_figure(const nlohmann::json& point) {
    auto m = mux::sweep::metrics_of(point);
    const auto& cost = point["server_cost"];
    std::string model = point["model"];
    for (const char* key :
         {"cpu_us_per_request", "cpu_user_us_per_request", "cpu_sys_us_per_request",
          "io_calls_per_request", "page_faults_per_request", "ramp_s"})
        EXPECT_TRUE(m.contains(key)) << model << " lacks " << key << ": " << cost["missing"];
    EXPECT_GT(m.value("cpu_us_per_request", 0.0), 0) << model;
    EXPECT_NEAR(m.value("cpu_user_us_per_request", 0.0) + m.value("cpu_sys_us_per_request", 0.0),
                m.value("cpu_us_per_request", 0.0), 0.05 * m.value("cpu_us_per_request", 0.0));
    EXPECT_GT(m.value("ramp_s", 0.0), 0) << model;
    // The counters are read when muxload's lines arrive: after its window's edges, never
    // before (up to how exactly muxload converts its window to CLOCK_REALTIME).
    ASSERT_TRUE(cost.contains("edge_lag_s") && cost["edge_lag_s"].is_object())
        << model << ": " << cost["missing"];
    EXPECT_GE(cost["edge_lag_s"]["start"].get<double>(), -1e-4) << model;
    EXPECT_GE(cost["edge_lag_s"]["end"].get<double>(), -1e-4) << model;
    bool perf = cost["sources"]["syscalls"] == "perf";
    if (!perf) {
        EXPECT_TRUE(cost["missing"].contains("syscalls_per_request")) << cost.dump();
        return;
    }
    // A read and a write per request, less the requests in flight at the window's edges.
    EXPECT_GE(m.value("syscalls_per_request", 0.0), 1.5) << model;
    EXPECT_TRUE(m.contains("wait_calls_per_request")) << model;
    // Every call counted against the calls of each kind (the counts, not their ratios: a
    // poll server makes nothing but poll, read and write, and the sum of two quotients can
    // round above the quotient of the sum).
    EXPECT_GE(cost["syscalls"].get<uint64_t>(),
              cost["wait_calls"].get<uint64_t>() + cost["io_calls"].get<uint64_t>());
    // A point of one connection has no memory per connection (none beyond the baseline's).
    auto missing = cost["missing"];
    if (point["conns"] == 1)
        for (const char* key : {"memory_bytes_per_connection", "anon_bytes_per_connection",
                                "kernel_bytes_per_connection", "socket_bytes_per_connection"})
            if (missing.value(key, "").find("one connection") != std::string::npos)
                missing.erase(key);
    // Churn holds no connection, so it has no memory per connection, nor a baseline for one.
    if (point["scenario"] == "churn") {
        EXPECT_NE(missing.value("memory_bytes_per_connection", "").find("holds none"),
                  std::string::npos)
            << model << ": " << cost["missing"];
        for (const auto& [key, why] : cost["missing"].items())
            if (why.get<std::string>().find("churn opens a connection") != std::string::npos)
                missing.erase(key);
    }
    EXPECT_TRUE(missing.empty()) << model << ": " << cost["missing"];
}

const nlohmann::json* find_point(const nlohmann::json& results, const std::string& model,
                                 double x) {
    for (const auto& p : results["points"])
        if (p["model"] == model && p["x_value"].get<double>() == x) return &p;
    return nullptr;
}
}  // namespace

// 2 models x 2 points x 1 s: select's second point is past its wall and must be refused
// with its reason, everything else measured, with the server's cost from the kernel.
TEST(SweepEndToEnd, TwoModelsTwoPoints) {
    fs::path out = fresh_dir("e2e");
    mux::Subprocess sweep({mux::test::binary_path("muxbench"), "sweep", "--models", "poll,select",
                           "--scenarios", "active", "--conns", "1,1100", "--duration", "1",
                           "--warmup", "0.2", "--repeats", "1", "--out", out.string(), "--run-name",
                           "run"});
    ASSERT_TRUE(sweep.running()) << sweep.error();
    std::string table = sweep.read_rest(120s);
    auto status = sweep.wait(10s);
    ASSERT_TRUE(status) << "muxbench did not finish";
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << table;
    EXPECT_NE(table.find("refused (fd_setsize)"), std::string::npos) << table;

    std::string error;
    auto results = mux::sweep::read_results(out / "run", &error);
    ASSERT_TRUE(results) << error;
    ASSERT_EQ((*results)["points"].size(), 4u);

    const auto* refused = find_point(*results, "select", 1100);
    ASSERT_NE(refused, nullptr);
    EXPECT_EQ((*refused)["status"], "refused");
    EXPECT_EQ((*refused)["reason"]["code"], "fd_setsize");

    for (auto [model, x] : {std::pair{"poll", 1.0}, {"poll", 1100.0}, {"select", 1.0}}) {
        SCOPED_TRACE(std::string(model) + " at " + std::to_string(x));
        const auto* p = find_point(*results, model, x);
        ASSERT_NE(p, nullptr) << model << " " << x;
        ASSERT_EQ((*p)["status"], "ok") << p->dump(1).substr(0, 2000);
        auto metrics = mux::sweep::metrics_of(*p);
        EXPECT_GT(metrics["throughput_per_s"].get<double>(), 0) << model;
        expect_every_cost_figure(*p);
        // The loadgen verified every reply and the server counted at least as many.
        uint64_t requests = (*p)["loadgen"]["summary"]["requests"];
        EXPECT_GE((*p)["server_stats"]["requests"].get<uint64_t>(), requests);
        EXPECT_EQ(metrics["errors"].get<uint64_t>(), 0u) << model;
        EXPECT_GT((*p)["timing_s"]["measure"].get<double>(), 0.5);
        // poll waits in poll(); every request is served after one
        EXPECT_GT(metrics.value("wait_calls_per_request", 1.0), 0) << model;
    }

    // One CSV row per point, plus the header.
    std::ifstream csv(out / "run" / "points.csv");
    size_t lines = 0;
    for (std::string line; std::getline(csv, line);) ++lines;
    EXPECT_EQ(lines, 5u);
    EXPECT_EQ((*results)["summary"].size(), 4u);
    fs::remove_all(out);
}

// Where the kernel refuses io_uring (here a seccomp filter, as Docker's default profile has),
// the io-uring point is recorded as refused with the server's reason and errno, not as failed.
// The pool models take the plan's workers, and every point records the settings its server
// ran with, as the server's listening line gave them.
TEST(SweepEndToEnd, RefusedIoUringAndTheServersSettingsAreRecorded) {
    fs::path out = fresh_dir("refused");
    mux::Subprocess sweep({mux::test::binary_path("deny_io_uring"),
                           mux::test::binary_path("muxbench"),
                           "sweep",
                           "--models",
                           "io-uring,epoll-oneshot,threads",
                           "--scenarios",
                           "active",
                           "--conns",
                           "1",
                           "--duration",
                           "0.5",
                           "--warmup",
                           "0.1",
                           "--repeats",
                           "1",
                           "--workers",
                           "2",
                           "--out",
                           out.string(),
                           "--run-name",
                           "run"});
    ASSERT_TRUE(sweep.running()) << sweep.error();
    std::string table = sweep.read_rest(120s);
    auto status = sweep.wait(10s);
    ASSERT_TRUE(status) << "muxbench did not finish";
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << table;
    EXPECT_NE(table.find("refused (io_uring_unavailable)"), std::string::npos) << table;

    std::string error;
    auto results = mux::sweep::read_results(out / "run", &error);
    ASSERT_TRUE(results) << error;
    EXPECT_EQ((*results)["plan"]["workers"], 2);
    const auto* uring = find_point(*results, "io-uring", 1);
    ASSERT_NE(uring, nullptr);
    EXPECT_EQ((*uring)["status"], "refused") << uring->dump();
    EXPECT_EQ((*uring)["reason"]["code"], "io_uring_unavailable");
    EXPECT_EQ((*uring)["reason"]["errno"], EPERM);
    EXPECT_NE((*uring)["reason"]["detail"].get<std::string>().find("errno 1"), std::string::npos);
    EXPECT_FALSE(uring->contains("server_stats"));
    for (const auto& entry : (*results)["summary"]) {
        if (entry["model"] != "io-uring") continue;
        EXPECT_EQ(entry["status"], "refused") << entry.dump();
    }

    const auto* pool = find_point(*results, "epoll-oneshot", 1);
    ASSERT_NE(pool, nullptr);
    ASSERT_EQ((*pool)["status"], "ok") << pool->dump().substr(0, 2000);
    EXPECT_EQ((*pool)["server_settings"]["workers"], 2);
    EXPECT_EQ((*pool)["server_stats"]["workers"], 2);
    const auto* threads = find_point(*results, "threads", 1);
    ASSERT_NE(threads, nullptr);
    ASSERT_EQ((*threads)["status"], "ok") << threads->dump().substr(0, 2000);
    EXPECT_EQ((*threads)["server_settings"]["thread_stack_bytes"], 256 * 1024);
    EXPECT_FALSE((*threads)["server_settings"].contains("workers"));
    fs::remove_all(out);
}

// A point whose server cannot start is recorded as failed, with its reason, and returns.
TEST(SweepEndToEnd, AServerThatCannotStartIsRecordedNotWaitedFor) {
    mux::sweep::Plan plan;
    plan.duration_s = 1;
    plan.point_timeout_s = 20;
    auto point = mux::sweep::Point::at("active", "conns", 1, 1, 1);
    point.model = "poll";
    mux::sweep::Binaries binaries{"/bin/true", mux::test::binary_path("muxload")};
    auto result = mux::sweep::run_point(point, plan, binaries);
    EXPECT_EQ(result["status"], "failed");
    EXPECT_EQ(result["reason"]["code"], "server_start");
}

// A server that stops answering mid-point: muxload's own deadlines end the point, which is
// recorded, not hung on.
TEST(SweepEndToEnd, AStalledServerEndsThePointWithinItsBound) {
    mux::sweep::Plan plan;
    plan.duration_s = 1;
    plan.warmup_s = 0;
    plan.point_timeout_s = 15;
    auto point = mux::sweep::Point::at("active", "conns", 1, 1, 1);
    point.model = "epoll-et";
    // A "server" that prints a listening line for a port nobody serves.
    fs::path fake = fresh_dir("fake-server.sh");
    std::ofstream(fake)
        << "#!/bin/sh\necho '{\"event\":\"listening\",\"endpoint\":\"tcp:127.0.0.1:1\"}'\nexec "
           "sleep 60\n";
    fs::permissions(fake, fs::perms::owner_all);
    mux::sweep::Binaries binaries{fake.string(), mux::test::binary_path("muxload")};
    auto started = std::chrono::steady_clock::now();
    auto result = mux::sweep::run_point(point, plan, binaries);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 40s);
    EXPECT_EQ(result["status"], "failed") << result.dump(1).substr(0, 2000);
    fs::remove(fake);
}

// --- muxload's verdict, as the sweep records it. A stand-in for muxload records its command
// line, prints the window's edges, writes a given report and exits with a given status, so
// what the sweep makes of each verdict is known exactly; the server is a real muxserver.

namespace {
struct FakeLoadgen {
    fs::path script, argv_file, report_file;
    ~FakeLoadgen() {
        for (const auto& f : {script, argv_file, report_file}) fs::remove(f);
    }
    std::vector<std::string> argv() const {
        std::vector<std::string> out;
        std::ifstream in(argv_file);
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    }
};

std::unique_ptr<FakeLoadgen> fake_loadgen(const std::string& name, const nlohmann::json& report,
                                          int exit_status, bool holding = true) {
    auto fake = std::make_unique<FakeLoadgen>();
    fake->script = fresh_dir(name + "-muxload.sh");
    fake->argv_file = fresh_dir(name + "-argv");
    fake->report_file = fresh_dir(name + "-report.json");
    std::ofstream(fake->report_file) << report.dump();
    std::ofstream(fake->script)
        << "#!/bin/sh\nprintf '%s\\n' \"$@\" > " << fake->argv_file.string()
        << "\njson=\nwhile [ $# -gt 0 ]; do [ \"$1\" = --json ] && json=$2; shift; done\n"
           "echo '{\"event\":\"measure_start\",\"pid\":1,\"t_ns\":1}'\n"
           "echo '{\"event\":\"measure_end\",\"pid\":1,\"t_ns\":2}'\n"
        << (holding ? "echo '{\"event\":\"holding\",\"pid\":1,\"t_ns\":3}'\n" : "") << "cp "
        << fake->report_file.string() << " \"$json\"\nexit " << exit_status << "\n";
    fs::permissions(fake->script, fs::perms::owner_all);
    return fake;
}

// A report of the slow scenario open loop at 4000/s that reached 3000/s: its corrected
// percentiles (from the intended send) beside the uncorrected ones (from the actual send).
nlohmann::json slow_report(bool clean, const std::string& reason) {
    nlohmann::json summary = {
        {"requests", 3000},
        {"duration_s", 1.0},
        {"throughput_per_s", 3000.0},
        {"completed", true},
        {"clean", clean},
        {"not_clean_reasons", clean ? std::vector<std::string>{} : std::vector{reason}},
        {"loadgen_bound", false},
        {"errors_total", 0},
        {"latency_us", {{"p50", 900.0}, {"p90", 9300.0}, {"p99", 24000.0}, {"p999", 31000.0}}},
        {"latency_uncorrected_us",
         {{"p50", 80.0}, {"p90", 1900.0}, {"p99", 10500.0}, {"p999", 12000.0}}},
        {"unfinished_at_end", 20},
        {"open_loop", {{"offered", 4000}, {"achieved_share", 0.75}}}};
    return {{"schema", "muxload/1"}, {"summary", summary}, {"errors", nlohmann::json::object()}};
}

mux::sweep::Point slow_point(const mux::sweep::Plan& plan) {
    auto points = mux::sweep::expand_plan(plan, {"poll"});
    return points.front();
}

mux::sweep::Plan slow_plan() {
    mux::sweep::Plan plan;
    plan.scenarios = {"slow"};
    plan.slow_conns = 4;
    plan.slow_rate_per_s = 4000;
    plan.repeats = 1;
    plan.duration_s = 1;
    plan.point_timeout_s = 20;
    return plan;
}
}  // namespace

// A slow point muxload judged not clean (exit 4: below 99% of the rate) keeps its numbers
// under a status of its own, with muxload's reason, and is summarised as such.
TEST(SweepVerdict, AnOpenLoopPointThatIsNotCleanIsRecordedSo) {
    auto plan = slow_plan();
    auto fake = fake_loadgen(
        "not-clean",
        slow_report(false, "achieved 3000/s, below 99% of the 4000/s offered in the window"), 4);
    auto result = mux::sweep::run_point(
        slow_point(plan), plan, {mux::test::binary_path("muxserver"), fake->script.string()});
    EXPECT_EQ(result["status"], "not_clean") << result.dump(1).substr(0, 2000);
    EXPECT_EQ(result["reason"]["code"], "loadgen_not_clean");
    std::string detail = result["reason"]["detail"];
    EXPECT_NE(detail.find("achieved 3000/s, below 99% of the 4000/s"), std::string::npos) << detail;
    EXPECT_EQ(result["loadgen_exit_status"], 4);
    EXPECT_EQ(result["rate_per_s"], 4000);
    // The stand-in was driven open loop at the plan's rate.
    auto argv = fake->argv();
    auto rate = std::find(argv.begin(), argv.end(), "--rate");
    ASSERT_NE(rate, argv.end());
    ASSERT_NE(rate + 1, argv.end());
    EXPECT_EQ(*(rate + 1), "4000");

    // Its figures stay, and they are the corrected ones.
    auto m = mux::sweep::metrics_of(result);
    EXPECT_EQ(m["latency_p90_us"], 9300.0);
    EXPECT_EQ(m["latency_p99_us"], 24000.0);
    auto summary = mux::sweep::summarize(nlohmann::json::array({result}));
    ASSERT_EQ(summary.size(), 1u);
    EXPECT_EQ(summary[0]["status"], "not_clean");
    EXPECT_EQ(summary[0]["repeats_ok"], 0);
    EXPECT_EQ(summary[0]["x_name"], "rate_per_s");
    nlohmann::json results = {{"summary", summary}};
    std::string table = mux::sweep::summary_table(results);
    // The table shows its corrected p90/p99, marked as not clean, with what that means.
    EXPECT_NE(table.find("corrected p90/p99 latency"), std::string::npos) << table;
    EXPECT_NE(table.find("9300/24000"), std::string::npos) << table;
    EXPECT_NE(table.find("]!"), std::string::npos) << table;
    EXPECT_NE(table.find("! not clean: muxload fell short of the rate"), std::string::npos)
        << table;
}

// In open loop, errors (exit 3) make a point not clean too: a lost request never reaches the
// corrected percentiles. A clean run is ok, with its corrected figures.
TEST(SweepVerdict, AnOpenLoopPointIsOkOnlyWhenClean) {
    auto plan = slow_plan();
    auto errors = fake_loadgen("errors", slow_report(false, "3 errors (3 timeout)"), 3);
    auto result = mux::sweep::run_point(
        slow_point(plan), plan, {mux::test::binary_path("muxserver"), errors->script.string()});
    EXPECT_EQ(result["status"], "not_clean") << result.dump(1).substr(0, 2000);
    EXPECT_NE(result["reason"]["detail"].get<std::string>().find("3 errors"), std::string::npos);
    EXPECT_EQ(result["loadgen_exit_status"], 3);

    auto clean = fake_loadgen("clean", slow_report(true, ""), 0);
    result = mux::sweep::run_point(slow_point(plan), plan,
                                   {mux::test::binary_path("muxserver"), clean->script.string()});
    EXPECT_EQ(result["status"], "ok") << result.dump(1).substr(0, 2000);
    EXPECT_EQ(result["loadgen_exit_status"], 0);
    EXPECT_EQ(mux::sweep::metrics_of(result)["latency_p99_us"], 24000.0);
}

// The memory after the window is read at muxload's holding line, once the replies in flight
// are in: a muxload that printed none has no memory figures after the window, and says so.
TEST(SweepMemory, NoHoldingLineNoReadingAfterTheWindowAndWhy) {
    auto plan = slow_plan();
    auto fake = fake_loadgen("no-holding", slow_report(true, ""), 0, false);
    auto result = mux::sweep::run_point(
        slow_point(plan), plan, {mux::test::binary_path("muxserver"), fake->script.string()});
    EXPECT_EQ(result["status"], "ok") << result.dump(1).substr(0, 2000);
    const auto& cost = result["server_cost"];
    for (const char* key : {"anon_bytes", "kernel_bytes", "memory_bytes_per_connection"}) {
        EXPECT_TRUE(cost[key].is_null()) << key;
        EXPECT_NE(cost["missing"].value(key, "").find("no holding line"), std::string::npos)
            << key << ": " << cost["missing"].value(key, "");
    }
}

// A closed-loop point stands with muxload's exit 4 (Little's law), its verdict kept beside it,
// and muxload is given no rate.
TEST(SweepVerdict, AClosedLoopPointKeepsItsVerdictBesideAnOkStatus) {
    mux::sweep::Plan plan;
    plan.duration_s = 1;
    plan.point_timeout_s = 20;
    auto point = mux::sweep::Point::at("active", "conns", 4, 4, 4);
    point.model = "poll";
    auto report = slow_report(false, "Little's law off by 13%");
    report["summary"].erase("latency_uncorrected_us");
    report["summary"].erase("open_loop");
    auto fake = fake_loadgen("closed", report, 4);
    auto result = mux::sweep::run_point(
        point, plan, {mux::test::binary_path("muxserver"), fake->script.string()});
    EXPECT_EQ(result["status"], "ok") << result.dump(1).substr(0, 2000);
    EXPECT_EQ(result["loadgen_exit_status"], 4);
    auto argv = fake->argv();
    EXPECT_EQ(std::find(argv.begin(), argv.end(), "--rate"), argv.end());
    EXPECT_FALSE(argv.empty());
}

// A point whose load muxload never found steady before its window is unsteady, closed loop
// or open, with muxload's numbers in its reason; it is never summarised as ok, and the
// regression check counts it as a failed repeat.
TEST(SweepVerdict, APointThatNeverSettledIsUnsteady) {
    mux::sweep::Plan plan;
    plan.duration_s = 1;
    plan.point_timeout_s = 20;
    auto point = mux::sweep::Point::at("active", "conns", 4, 4, 4);
    point.model = "poll";
    auto report = slow_report(false, "not steady before the window");
    report["summary"].erase("latency_uncorrected_us");
    report["summary"].erase("open_loop");
    report["summary"]["steady"] = false;
    report["summary"]["unsteady_reasons"] = {
        "served 164 of 1000 active connections by 0.25 s before the judged warmup's end, 225 by "
        "its end"};
    report["summary"]["warmup"] = {{"warmup_s", 5.3}, {"extended_s", 5.0}, {"steady_checks", 21}};
    auto fake = fake_loadgen("unsteady", report, 4);
    auto result = mux::sweep::run_point(
        point, plan, {mux::test::binary_path("muxserver"), fake->script.string()});
    EXPECT_EQ(result["status"], "unsteady") << result.dump(1).substr(0, 2000);
    EXPECT_EQ(result["reason"]["code"], "loadgen_unsteady");
    std::string detail = result["reason"]["detail"];
    EXPECT_NE(detail.find("served 164 of 1000 active connections"), std::string::npos) << detail;
    EXPECT_NE(detail.find("after a 5.3 s warmup, 5 s of it extension, 21 checks"),
              std::string::npos)
        << detail;

    auto summary = mux::sweep::summarize(nlohmann::json::array({result}));
    ASSERT_EQ(summary.size(), 1u);
    EXPECT_EQ(summary[0]["status"], "unsteady");
    EXPECT_EQ(summary[0]["repeats_ok"], 0);
    EXPECT_TRUE(summary[0]["metrics"].empty()) << summary[0]["metrics"].dump();
    std::string table = mux::sweep::summary_table({{"summary", summary}});
    EXPECT_NE(table.find("unsteady (loadgen_unsteady)"), std::string::npos) << table;
}

// A rate point past saturation falls short of its offered rate (muxload's exit 4): that
// shortfall is the reply rate it measures, so the point is ok, muxload's reasons kept in its
// report. With errors (exit 3) it is not clean, as every open-loop point is.
TEST(SweepVerdict, ARatePointFallingShortOfItsRateIsOkButNotWithErrors) {
    mux::sweep::Plan plan;
    plan.scenarios = {"rate"};
    plan.rate_idle_conns = {2};
    plan.rate_active = 2;
    plan.rates_per_s = {4000};
    plan.repeats = 1;
    plan.duration_s = 1;
    plan.point_timeout_s = 20;
    auto point = mux::sweep::expand_plan(plan, {"poll"}).front();
    const std::string shortfall = "achieved 3000/s, below 99% of the 4000/s offered in the window";
    auto short_of_rate = fake_loadgen("rate-short", slow_report(false, shortfall), 4);
    auto result = mux::sweep::run_point(
        point, plan, {mux::test::binary_path("muxserver"), short_of_rate->script.string()});
    EXPECT_EQ(result["status"], "ok") << result.dump(1).substr(0, 2000);
    EXPECT_EQ(result["loadgen_exit_status"], 4);
    EXPECT_EQ(result["loadgen"]["summary"]["not_clean_reasons"][0], shortfall);
    EXPECT_EQ(result["scenario"], "rate-idle-2");
    EXPECT_EQ(result["rate_per_s"], 4000);
    EXPECT_EQ(mux::sweep::metrics_of(result)["throughput_per_s"], 3000.0);
    auto argv = short_of_rate->argv();
    auto rate = std::find(argv.begin(), argv.end(), "--rate");
    ASSERT_TRUE(rate != argv.end() && rate + 1 != argv.end());
    EXPECT_EQ(*(rate + 1), "4000");

    auto errors = fake_loadgen("rate-errors", slow_report(false, "3 errors (3 timeout)"), 3);
    result = mux::sweep::run_point(point, plan,
                                   {mux::test::binary_path("muxserver"), errors->script.string()});
    EXPECT_EQ(result["status"], "not_clean") << result.dump(1).substr(0, 2000);
    // The same exit 4 from a slow point is still not clean: only rate measures the shortfall.
    auto slow = slow_plan();
    auto slow_short = fake_loadgen("slow-short", slow_report(false, shortfall), 4);
    result = mux::sweep::run_point(
        slow_point(slow), slow, {mux::test::binary_path("muxserver"), slow_short->script.string()});
    EXPECT_EQ(result["status"], "not_clean");
}

// The check judges the slow scenario on its corrected percentiles: a run whose requests wait
// three times longer from their intended send, with the same time from the actual send, is a
// p99 regression. A change of rate between the runs is noted.
TEST(SweepSlow, TheCheckJudgesSlowOnCorrectedLatency) {
    const std::vector<double> jitter = {1.00, 0.97, 1.03, 0.99, 1.02, 0.98, 1.01, 0.995};
    auto run = [&](double corrected_p99_us, double rate) {
        nlohmann::json points = nlohmann::json::array();
        for (int r = 0; r < 8; ++r)
            for (const char* model : {"poll", "epoll-lt"}) {
                double j = jitter[size_t(r)];
                auto report = slow_report(true, "");
                auto& lat = report["summary"]["latency_us"];
                lat["p50"] = 900.0 * j, lat["p99"] = corrected_p99_us * j;
                report["summary"]["throughput_per_s"] = rate * j;
                report["summary"]["latency_uncorrected_us"]["p99"] = 10500.0 * j;
                points.push_back({{"scenario", "slow"},
                                  {"model", model},
                                  {"x_name", "rate_per_s"},
                                  {"x_value", 4000},
                                  {"conns", 20},
                                  {"active", 20},
                                  {"rate_per_s", 4000},
                                  {"repeat", r},
                                  {"status", "ok"},
                                  {"loadgen_bound", false},
                                  {"loadgen", report}});
            }
        nlohmann::json results = {
            {"schema", mux::sweep::kResultsSchema},
            {"environment", {{"hostname", "vm"}, {"kernel", {{"release", "6.1.0"}}}}},
            {"plan", {{"name", "t"}, {"proto", "mux1"}, {"repeats", 8}, {"slow_rate_per_s", rate}}},
            {"points", points}};
        results["summary"] = mux::sweep::summarize(results["points"]);
        return results;
    };
    auto report = mux::check::check_runs(run(24000, 4000), run(72000, 3000), {});
    std::set<std::string> regressions;
    for (const auto& c : report.comparisons)
        if (c.verdict == "regression") regressions.insert(c.model + " " + c.metric);
    EXPECT_TRUE(regressions.contains("poll latency_p99_us"))
        << ::testing::PrintToString(regressions);
    EXPECT_TRUE(regressions.contains("epoll-lt latency_p99_us"));
    EXPECT_FALSE(regressions.contains("poll latency_p50_us"));
    bool noted = false;
    for (const auto& note : report.notes)
        noted = noted || note.starts_with("plan slow_rate_per_s: 4000");
    EXPECT_TRUE(noted) << ::testing::PrintToString(report.notes);
}

TEST(SweepResults, WrittenAndReadBack) {
    fs::path dir = fresh_dir("schema");
    nlohmann::json results = {{"schema", mux::sweep::kResultsSchema},
                              {"environment", {{"kernel", "test"}}},
                              {"plan", {{"name", "t"}}},
                              {"points", nlohmann::json::array()},
                              {"summary", nlohmann::json::array()}};
    results["points"].push_back({{"scenario", "active"},
                                 {"model", "poll"},
                                 {"x_name", "conns"},
                                 {"x_value", 10},
                                 {"conns", 10},
                                 {"active", 10},
                                 {"repeat", 0},
                                 {"status", "refused"},
                                 {"reason", {{"code", "fd_setsize"}, {"detail", "d"}}}});
    results["summary"] = mux::sweep::summarize(results["points"]);
    mux::sweep::write_results(dir, results);
    std::string error;
    auto back = mux::sweep::read_results(dir, &error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(*back, results);
    EXPECT_EQ((*back)["summary"][0]["status"], "refused");

    results["schema"] = "muxbench-results/0";
    mux::sweep::write_results(dir, results);
    EXPECT_FALSE(mux::sweep::read_results(dir, &error));
    EXPECT_NE(error.find("muxbench-results/0"), std::string::npos) << error;
    EXPECT_FALSE(mux::sweep::read_results(dir / "nope", &error));
    EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
    fs::remove_all(dir);
}

TEST(SweepResults, SummaryKeepsMedianMinMaxOverRepeats) {
    nlohmann::json points = nlohmann::json::array();
    for (double t : {300.0, 100.0, 200.0}) {
        points.push_back({{"scenario", "active"},
                          {"model", "poll"},
                          {"x_name", "conns"},
                          {"x_value", 10},
                          {"status", "ok"},
                          {"loadgen", {{"summary", {{"throughput_per_s", t}}}}}});
    }
    auto summary = mux::sweep::summarize(points);
    ASSERT_EQ(summary.size(), 1u);
    const auto& m = summary[0]["metrics"]["throughput_per_s"];
    EXPECT_EQ(m["median"], 200.0);
    EXPECT_EQ(m["min"], 100.0);
    EXPECT_EQ(m["max"], 300.0);
    EXPECT_EQ(summary[0]["repeats"], 3);
}

TEST(SweepResults, OnlyOkRepeatsAreSummarised) {
    // Fork at 10k idle once failed all three repeats, and their 3.33 requests/s were ranked.
    nlohmann::json points = nlohmann::json::array();
    auto point = [](double x, const char* status, double throughput) {
        return nlohmann::json{{"scenario", "idle"},
                              {"model", "fork"},
                              {"x_name", "idle_conns"},
                              {"x_value", x},
                              {"status", status},
                              {"loadgen", {{"summary", {{"throughput_per_s", throughput}}}}}};
    };
    for (double t : {3.0, 4.0}) points.push_back(point(10000, "failed", t));
    points.push_back(point(1000, "ok", 900.0));
    points.push_back(point(1000, "failed", 5.0));
    points.push_back(point(1000, "ok", 1000.0));
    auto summary = mux::sweep::summarize(points);
    ASSERT_EQ(summary.size(), 2u);
    EXPECT_EQ(summary[0]["status"], "failed");
    EXPECT_EQ(summary[0]["repeats_ok"], 0);
    EXPECT_FALSE(summary[0]["metrics"].contains("throughput_per_s")) << summary[0].dump();
    const auto& m = summary[1]["metrics"]["throughput_per_s"];
    EXPECT_EQ(m["values"], (nlohmann::json{900.0, 1000.0}));
    EXPECT_EQ(m["median"], 950.0);
    EXPECT_EQ(summary[1]["repeats_ok"], 2);
}

// --- schema 1, written before the kernel counters, is still read (plot/tests/fixtures/schema1
// is the full fixture in that schema, active and churn only)

fs::path fixture(const char* name) {
    return fs::path(MUX_SOURCE_DIR) / "plot/tests/fixtures" / name;
}

// results/reference is stored as results.json.gz: a folder holding only that reads as the
// plain file does, and a damaged or oversized one is refused with the file's name.
TEST(SweepResults, ReadsAGzippedResultsFolder) {
    fs::path dir = fresh_dir("gz");
    fs::create_directories(dir);
    std::string error;
    auto plain = mux::sweep::read_results(fixture("full"), &error);
    ASSERT_TRUE(plain) << error;
    auto bytes_of = [](const fs::path& file) {
        std::ifstream in(file, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    std::string text = bytes_of(fixture("full") / "results.json");
    auto write_gz = [&](const std::string& bytes) {
        gzFile out = gzopen((dir / "results.json.gz").c_str(), "wb");
        ASSERT_TRUE(out);
        ASSERT_EQ(gzwrite(out, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
        ASSERT_EQ(gzclose(out), Z_OK);
    };
    write_gz(text);
    EXPECT_EQ(mux::sweep::results_file(dir), dir / "results.json.gz");
    auto packed = mux::sweep::read_results(dir, &error);
    ASSERT_TRUE(packed) << error;
    EXPECT_EQ(*packed, *plain);

    // Cut in half: the compressed stream ends early.
    auto size = fs::file_size(dir / "results.json.gz");
    fs::resize_file(dir / "results.json.gz", size / 2);
    EXPECT_FALSE(mux::sweep::read_results(dir, &error));
    EXPECT_NE(error.find("results.json.gz"), std::string::npos) << error;

    // A gzip bomb: 1 GiB of spaces and a byte more, as 64 copies of one 16 MiB member (a
    // gzip file may hold several, read one after the other) and a member holding "{".
    write_gz(std::string(size_t{1} << 24, ' '));
    std::string member = bytes_of(dir / "results.json.gz");
    write_gz("{");
    std::string tail = bytes_of(dir / "results.json.gz");
    {
        std::ofstream bomb(dir / "results.json.gz", std::ios::binary | std::ios::trunc);
        for (int i = 0; i < 64; ++i) bomb << member;
        bomb << tail;
    }
    EXPECT_FALSE(mux::sweep::read_results(dir, &error));
    EXPECT_NE(error.find("more than 1024 MiB"), std::string::npos) << error;

    // Where both are there, the plain file is the run.
    write_gz("not json");
    std::ofstream(dir / "results.json") << text;
    EXPECT_EQ(mux::sweep::results_file(dir), dir / "results.json");
    EXPECT_TRUE(mux::sweep::read_results(dir, &error)) << error;
    fs::remove_all(dir);
}

TEST(SweepResults, SchemaOneIsReadAsSchemaTwoSays) {
    std::string error;
    auto old = mux::sweep::read_results(fixture("schema1"), &error);
    ASSERT_TRUE(old) << error;
    EXPECT_EQ((*old)["schema"], mux::sweep::kResultsSchema);
    EXPECT_EQ((*old)["upgraded_from"], "muxbench-results/1");
    const auto* poll = find_point(*old, "poll", 100);
    ASSERT_NE(poll, nullptr);
    auto m = mux::sweep::metrics_of(*poll);
    // Its syscalls were /proc's reads and writes: I/O calls now, and no count of all calls.
    EXPECT_EQ(m["io_calls_per_request"], (*poll)["server_cost"]["io_calls_per_request"]);
    EXPECT_FALSE(m.contains("syscalls_per_request"));
    EXPECT_FALSE(m.contains("wait_calls_per_request"));
    EXPECT_TRUE(m.contains("ramp_s"));  // from muxload's connect_time_s
    bool summarized = false;
    for (const auto& e : (*old)["summary"])
        if (e["model"] == "poll" && e["x_value"] == 100 && e["scenario"] == "active")
            summarized = e["metrics"].contains("io_calls_per_request") &&
                         !e["metrics"].contains("syscalls_per_request");
    EXPECT_TRUE(summarized);

    // Merged, it is written as schema 2 and says where it came from.
    auto merged = mux::sweep::merge_runs({*old, *old}, {"a", "b"}, &error);
    ASSERT_TRUE(merged) << error;
    fs::path dir = fresh_dir("merged-schema1");
    mux::sweep::write_results(dir, *merged);
    auto back = mux::sweep::read_results(dir, &error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ((*back)["schema"], mux::sweep::kResultsSchema);
    EXPECT_EQ((*back)["upgraded_from"], "muxbench-results/1");
    fs::remove_all(dir);
}

// A schema 1 baseline against a schema 2 run: its syscalls were another count, so they are
// not judged against this run's, and the report says why.
TEST(SweepResults, SchemaOneIsCheckedAgainstSchemaTwo) {
    std::string error;
    auto base = mux::sweep::read_results(fixture("schema1"), &error);
    ASSERT_TRUE(base) << error;
    auto current = mux::sweep::read_results(fixture("full"), &error);
    ASSERT_TRUE(current) << error;
    auto report = mux::check::check_runs(*base, *current, mux::check::CheckOptions{});
    bool throughput = false, all = false;
    for (const auto& c : report.comparisons) {
        throughput = throughput || c.metric == "throughput_per_s";
        all = all || c.metric == "syscalls_per_request";
    }
    EXPECT_TRUE(throughput);
    EXPECT_FALSE(all);
    bool noted = false;
    for (const auto& note : report.notes)
        noted = noted || note.find("schema muxbench-results/1") != std::string::npos;
    EXPECT_TRUE(noted);
}

// --- one short real sweep, read by the tests below: fork at 100 connections and in churn
// (a process per connection), select refused past its wall.
class FreshSweep : public testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new fs::path(fresh_dir("fresh"));
        mux::Subprocess sweep({mux::test::binary_path("muxbench"),
                               "sweep",
                               "--models",
                               "select,fork",
                               "--scenarios",
                               "active,churn",
                               "--conns",
                               "100,1100",
                               "--churn-conns",
                               "10",
                               "--duration",
                               "1",
                               "--warmup",
                               "0.2",
                               "--repeats",
                               "1",
                               "--out",
                               dir_->string(),
                               "--run-name",
                               "run"});
        std::string table = sweep.read_rest(240s);
        auto status = sweep.wait(10s);
        ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << table;
        std::ifstream in(*dir_ / "run" / "results.json");
        results_ = new nlohmann::json(nlohmann::json::parse(in));
    }
    static void TearDownTestSuite() {
        if (dir_) fs::remove_all(*dir_);
        delete dir_;
        delete results_;
        dir_ = nullptr, results_ = nullptr;
    }
    void SetUp() override {
        if (!results_) GTEST_SKIP() << "the sweep did not run";
    }
    static fs::path* dir_;
    static nlohmann::json* results_;
};
fs::path* FreshSweep::dir_ = nullptr;
nlohmann::json* FreshSweep::results_ = nullptr;

// Fork's children are counted whether they live through the window or exit in it (churn):
// every ok point has every cost figure, at every connection count.
TEST_F(FreshSweep, EveryOkPointHasEveryCostFigureForkIncluded) {
    size_t ok = 0;
    std::string not_ok;
    for (const auto& p : (*results_)["points"]) {
        if (p["status"] != "ok") {
            not_ok += p["model"].get<std::string>() + " " + p["scenario"].get<std::string>() +
                      ": " + p.value("reason", nlohmann::json::object()).dump() + "\n";
            continue;
        }
        ++ok;
        SCOPED_TRACE(p["model"].get<std::string>() + " " + p["scenario"].get<std::string>() + " " +
                     std::to_string(p["x_value"].get<double>()));
        expect_every_cost_figure(p);
    }
    // select 100 (active), fork 100 and 1100 (active), both in churn
    EXPECT_EQ(ok, 5u) << not_ok;
    const auto* refused = find_point(*results_, "select", 1100);
    ASSERT_NE(refused, nullptr);
    EXPECT_EQ((*refused)["status"], "refused");
}

// Every name a document gives in backticks or in an indented code block (results/README.md,
// and docs/muxload-json.md for the embedded loadgen report).
std::set<std::string> documented_names() {
    std::set<std::string> names;
    const std::regex word("[A-Za-z_][A-Za-z0-9_]*");
    auto add_words = [&](const std::string& text) {
        for (std::sregex_iterator it(text.begin(), text.end(), word), end; it != end; ++it)
            names.insert(it->str());
    };
    for (const char* doc : {"results/README.md", "docs/muxload-json.md"}) {
        std::ifstream in(fs::path(MUX_SOURCE_DIR) / doc);
        EXPECT_TRUE(in) << doc;
        for (std::string line; std::getline(in, line);) {
            if (line.starts_with("    ")) add_words(line);
            for (size_t open = line.find('`'); open != std::string::npos;) {
                size_t close = line.find('`', open + 1);
                if (close == std::string::npos) break;
                add_words(line.substr(open + 1, close - open - 1));
                open = line.find('`', close + 1);
            }
        }
    }
    return names;
}

void collect_keys(const nlohmann::json& j, const std::string& path,
                  std::map<std::string, std::string>& keys) {
    if (j.is_object()) {
        for (const auto& [key, value] : j.items()) {
            keys.emplace(key, path + "." + key);
            collect_keys(value, path + "." + key, keys);
        }
    } else if (j.is_array()) {
        for (const auto& value : j) collect_keys(value, path + "[]", keys);
    }
}

// A results file must say nothing its documents do not explain.
TEST_F(FreshSweep, EveryKeyWrittenIsDocumented) {
    auto names = documented_names();
    ASSERT_GT(names.size(), 100u);
    std::map<std::string, std::string> keys;
    collect_keys(*results_, "", keys);
    for (const auto& [key, where] : keys)
        EXPECT_TRUE(names.contains(key)) << "'" << key << "' (first at " << where
                                         << ") is named in neither results/README.md nor "
                                            "docs/muxload-json.md";
    EXPECT_EQ((*results_)["schema"], "muxbench-results/2");
}

// The rate scenario end to end, tiny: one model, 100 idle connections, two rates well below
// saturation. Each point records the rate offered, the reply rate achieved and its idle count,
// and every key it writes is documented.
TEST(SweepEndToEnd, RatePointsRecordOfferedAndAchievedRatesAtTheirIdleCount) {
    fs::path out = fresh_dir("rate");
    mux::Subprocess sweep({mux::test::binary_path("muxbench"),
                           "sweep",
                           "--models",
                           "epoll-et",
                           "--scenarios",
                           "rate",
                           "--rate-idle-conns",
                           "100",
                           "--rates",
                           "1000,3000",
                           "--duration",
                           "1",
                           "--warmup",
                           "0.2",
                           "--repeats",
                           "1",
                           "--out",
                           out.string(),
                           "--run-name",
                           "run"});
    ASSERT_TRUE(sweep.running()) << sweep.error();
    std::string table = sweep.read_rest(120s);
    auto status = sweep.wait(10s);
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << table;
    EXPECT_NE(table.find("rate-idle-100 scenario"), std::string::npos) << table;
    std::string error;
    auto results = mux::sweep::read_results(out / "run", &error);
    ASSERT_TRUE(results) << error;
    ASSERT_EQ((*results)["points"].size(), 2u);
    for (const auto& p : (*results)["points"]) {
        SCOPED_TRACE(p.dump().substr(0, 300));
        ASSERT_EQ(p["status"], "ok");
        EXPECT_EQ(p["scenario"], "rate-idle-100");
        EXPECT_EQ(p["x_name"], "rate_per_s");
        EXPECT_EQ(p["rate_per_s"], p["x_value"]);
        EXPECT_EQ(p["conns"].get<int>() - p["active"].get<int>(), 100);  // idle
        const auto& summary = p["loadgen"]["summary"];
        EXPECT_EQ(p["loadgen"]["config"]["mode"], "open");
        double rate = p["x_value"];
        EXPECT_NEAR(summary["open_loop"]["offered_per_s"].get<double>(), rate, 0.01 * rate);
        EXPECT_GT(summary["throughput_per_s"].get<double>(), 0);
    }
    const auto& plan = (*results)["plan"];
    EXPECT_EQ(plan["rates_per_s"], nlohmann::json({1000, 3000}));
    EXPECT_EQ(plan["rate_idle_conns"], nlohmann::json({100}));
    EXPECT_EQ(plan["rate_active"], 10);
    ASSERT_EQ((*results)["summary"].size(), 2u);
    auto names = documented_names();
    std::map<std::string, std::string> keys;
    collect_keys(*results, "", keys);
    for (const auto& [key, where] : keys)
        EXPECT_TRUE(names.contains(key))
            << "'" << key << "' (first at " << where << ") is not documented";
    fs::remove_all(out);
}

// --- the counters' window is muxload's

// muxload announces its window's edges when its ramp ends, and prints measure_start and
// measure_end only once its main thread is scheduled after each edge, which under load took
// tens of ms. The sweep reads the counters at the announced edges: a muxload whose lines come
// 1.5 s late does not move the readings off its window.
TEST(SweepWindow, CountersAreReadAtTheAnnouncedEdgesNotWhenTheLinesArrive) {
    fs::path fake = fresh_dir("late-muxload.py");
    std::ofstream(fake) << R"(#!/usr/bin/env python3
import json, sys, time
json_path = sys.argv[sys.argv.index('--json') + 1]
offset = time.time_ns() - time.monotonic_ns()
start = time.monotonic_ns() + 200_000_000
end = start + 300_000_000
def say(line):
    print(json.dumps(line), flush=True)
say({'event': 'window', 'pid': 0, 'start_ns': start, 'end_ns': end})
time.sleep((end - time.monotonic_ns()) / 1e9 + 1.5)
say({'event': 'measure_start', 't_ns': time.monotonic_ns()})
say({'event': 'measure_end', 't_ns': time.monotonic_ns()})
say({'event': 'holding', 't_ns': time.monotonic_ns()})
with open(json_path, 'w') as out:
    json.dump({'summary': {'requests': 1, 'completed': True,
                           'window_start_unix_ns': start + offset,
                           'window_end_unix_ns': end + offset}}, out)
sys.stdin.read()
)";
    fs::permissions(fake, fs::perms::owner_all);
    mux::sweep::Plan plan;
    plan.duration_s = 0.3;
    plan.warmup_s = 0.2;
    plan.point_timeout_s = 30;
    auto point = mux::sweep::Point::at("active", "conns", 1, 1, 1);
    point.model = "epoll-lt";
    auto result =
        mux::sweep::run_point(point, plan, {mux::test::binary_path("muxserver"), fake.string()});
    fs::remove(fake);
    ASSERT_EQ(result["status"], "ok") << result.dump();
    const auto& lag = result["server_cost"]["edge_lag_s"];
    ASSERT_TRUE(lag.is_object()) << result["server_cost"].dump();
    for (const char* edge : {"start", "end"}) {
        EXPECT_LT(lag[edge].get<double>(), 1.0) << edge << ": read when the line arrived";
        EXPECT_GE(lag[edge].get<double>(), -1e-4) << edge << ": read before the edge";
    }
}

// --- the run's cgroup never outlives its point or its sweep

std::optional<fs::path> cgroup_parent() {
    mux::sweep::RunCgroup probe;
    if (!probe.ok()) return std::nullopt;
    return fs::path(probe.path()).parent_path();
}

std::vector<fs::path> groups_of(const fs::path& parent, pid_t owner) {
    std::vector<fs::path> found;
    std::string prefix = "muxbench-" + std::to_string(owner) + "-";
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(parent, ec))
        if (entry.path().filename().string().starts_with(prefix)) found.push_back(entry.path());
    return found;
}

bool process_gone(pid_t pid) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    size_t paren = text.rfind(')');
    return paren == std::string::npos || (paren + 2 < text.size() && text[paren + 2] == 'Z');
}

// A "server" that leaves a child behind and dies: the point fails, and its group goes with
// the child in it.
TEST(SweepCgroup, IsGoneAfterAPointThatFailed) {
    auto parent = cgroup_parent();
    if (!parent) GTEST_SKIP() << "no cgroup here";
    fs::path fake = fresh_dir("dying-server.sh"), pid_file = fresh_dir("orphan.pid");
    std::ofstream(fake) << "#!/bin/sh\nsleep 60 &\necho $! > " << pid_file.string()
                        << "\necho '{\"event\":\"listening\",\"endpoint\":\"tcp:127.0.0.1:1\"}'\n"
                           "exit 3\n";
    fs::permissions(fake, fs::perms::owner_all);
    mux::sweep::Plan plan;
    plan.duration_s = 1;
    plan.warmup_s = 0;
    plan.point_timeout_s = 15;
    auto point = mux::sweep::Point::at("active", "conns", 1, 1, 1);
    point.model = "epoll-lt";
    auto result =
        mux::sweep::run_point(point, plan, {fake.string(), mux::test::binary_path("muxload")});
    EXPECT_EQ(result["status"], "failed");
    EXPECT_TRUE(groups_of(*parent, getpid()).empty());
    pid_t orphan = 0;
    std::ifstream(pid_file) >> orphan;
    ASSERT_GT(orphan, 0);
    for (int i = 0; i < 1000 && !process_gone(orphan); ++i) std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(process_gone(orphan)) << "the server's orphan outlived the point";
    fs::remove(fake);
    fs::remove(pid_file);
}

// A sweep stopped mid-point: SIGTERM empties and removes the group at once; after SIGKILL it
// is left behind, with the server in it, until the next sweep removes it.
TEST(SweepCgroup, IsGoneAfterTheSweepWasKilled) {
    auto parent = cgroup_parent();
    if (!parent) GTEST_SKIP() << "no cgroup here";
    fs::path out = fresh_dir("killed");
    for (int signo : {SIGTERM, SIGKILL}) {
        SCOPED_TRACE(signo == SIGTERM ? "SIGTERM" : "SIGKILL");
        mux::SpawnOptions options;
        options.quiet_stderr = true;
        mux::Subprocess sweep({mux::test::binary_path("muxbench"), "sweep", "--models", "epoll-lt",
                               "--scenarios", "active", "--conns", "1", "--duration", "3",
                               "--warmup", "0", "--repeats", "1", "--out", out.string()},
                              options);
        std::vector<fs::path> groups;
        std::vector<pid_t> members;
        for (int i = 0; i < 2000 && members.empty(); ++i) {
            groups = groups_of(*parent, sweep.pid());
            if (!groups.empty()) {
                std::ifstream procs(groups.front() / "cgroup.procs");
                for (pid_t pid; procs >> pid;) members.push_back(pid);
            }
            std::this_thread::sleep_for(5ms);
        }
        ASSERT_FALSE(members.empty()) << "the sweep's server never appeared in a group";
        sweep.send_signal(signo);
        ASSERT_TRUE(sweep.wait(20s));
        if (signo == SIGKILL) {
            EXPECT_TRUE(fs::exists(groups.front()));
            std::vector<std::string> errors;
            auto removed = mux::sweep::remove_stale_cgroups(&errors);
            EXPECT_NE(std::find(removed.begin(), removed.end(), groups.front().string()),
                      removed.end());
        }
        EXPECT_FALSE(fs::exists(groups.front()));
        for (pid_t pid : members) {
            for (int i = 0; i < 1000 && !process_gone(pid); ++i) std::this_thread::sleep_for(1ms);
            EXPECT_TRUE(process_gone(pid)) << pid << " outlived its group";
        }
    }
    fs::remove_all(out);
}

TEST(SweepResults, ResultsAreWrittenCompact) {
    fs::path dir = fs::temp_directory_path() / ("muxbench-compact-" + std::to_string(getpid()));
    std::string error;
    auto results = mux::sweep::read_results(fixture("schema1"), &error);
    ASSERT_TRUE(results) << error;
    mux::sweep::write_results(dir, *results);
    std::ifstream in(dir / "results.json");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(text, results->dump() + "\n");
    fs::remove_all(dir);
}
