// The sweep end to end: the real muxbench drives real servers with muxload, and its results
// folder is read back through the same reader plots and checks use.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "point_runner.hpp"
#include "results.hpp"
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

const nlohmann::json* find_point(const nlohmann::json& results, const std::string& model,
                                 double x) {
    for (const auto& p : results["points"])
        if (p["model"] == model && p["x_value"].get<double>() == x) return &p;
    return nullptr;
}
}  // namespace

// 2 models x 2 points x 1 s: select's second point is past its wall and must be refused
// with its reason, everything else measured, with the server's cost read from /proc.
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
        const auto* p = find_point(*results, model, x);
        ASSERT_NE(p, nullptr) << model << " " << x;
        ASSERT_EQ((*p)["status"], "ok") << p->dump(1).substr(0, 2000);
        auto metrics = mux::sweep::metrics_of(*p);
        EXPECT_GT(metrics["throughput_per_s"].get<double>(), 0) << model;
        EXPECT_GT(metrics["cpu_us_per_request"].get<double>(), 0) << model;
        EXPECT_GT(metrics["syscalls_per_request"].get<double>(), 0) << model;
        // The loadgen verified every reply and the server counted at least as many.
        uint64_t requests = (*p)["loadgen"]["summary"]["requests"];
        EXPECT_GE((*p)["server_stats"]["requests"].get<uint64_t>(), requests);
        EXPECT_EQ(metrics["errors"].get<uint64_t>(), 0u) << model;
        EXPECT_GT((*p)["timing_s"]["measure"].get<double>(), 0.5);
    }

    // One CSV row per point, plus the header.
    std::ifstream csv(out / "run" / "points.csv");
    size_t lines = 0;
    for (std::string line; std::getline(csv, line);) ++lines;
    EXPECT_EQ(lines, 5u);
    EXPECT_EQ((*results)["summary"].size(), 4u);
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
