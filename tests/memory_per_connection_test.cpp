// The sweep's memory per connection against a server whose cost per connection is known:
// memory_hog_server holds MUXTEST_HOLD_KIB KiB of written anonymous memory per connection.
// Memory is not timing: these tests assert bytes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "point_runner.hpp"
#include "process_cost.hpp"
#include "server_process.hpp"
#include "subprocess.hpp"

namespace {

using namespace std::chrono_literals;
constexpr double kKiB = 1024;

// One active point of `conns` connections of `model` served by `server`.
nlohmann::json run_active_point(const std::string& server, const std::string& model, int conns) {
    mux::sweep::Plan plan;
    plan.duration_s = 0.3;
    plan.warmup_s = 0.1;
    plan.point_timeout_s = 30;
    auto point = mux::sweep::Point::at("active", "conns", conns, conns, conns);
    point.model = model;
    return mux::sweep::run_point(
        point, plan, {mux::test::binary_path(server), mux::test::binary_path("muxload")});
}

// One active point of `conns` connections against the hog holding `hold_kib` per connection.
nlohmann::json run_hog_point(int conns, int hold_kib) {
    setenv("MUXTEST_HOLD_KIB", std::to_string(hold_kib).c_str(), 1);
    auto result = run_active_point("memory_hog_server", "poll", conns);
    unsetenv("MUXTEST_HOLD_KIB");
    return result;
}

// The hog's anonymous memory, alone and idle.
double idle_hog_anon_bytes(int hold_kib) {
    setenv("MUXTEST_HOLD_KIB", std::to_string(hold_kib).c_str(), 1);
    mux::Subprocess hog({mux::test::binary_path("memory_hog_server")});
    unsetenv("MUXTEST_HOLD_KIB");
    EXPECT_TRUE(hog.read_line(10s).has_value());
    std::string why;
    auto anon = mux::sweep::tree_anon_bytes(mux::sweep::sample_process_tree(hog.pid()), &why);
    hog.stop(5s);
    EXPECT_TRUE(anon.has_value()) << why;
    return anon ? double(*anon) : 0;
}

// The figure under `key`, which must be a number; else the test fails with why it is not.
double figure(const nlohmann::json& cost, const char* key) {
    EXPECT_TRUE(cost[key].is_number()) << key << ": " << cost["missing"].value(key, "(no reason)");
    return cost[key].is_number() ? cost[key].get<double>() : -1e18;
}

}  // namespace

// 256 KiB held per connection over 40 connections: the anonymous part comes out within 8 KiB
// of it. What the bound allows for: poll's own state per connection (its Connection, its
// pollfd and vector growth: 0.2 to 0.3 KiB measured for poll-like models) and Pss_Anon's
// whole-KiB rounding per process. The kernel part holds the accepted socket (about 4 KiB
// here) and the mapping's bookkeeping; the socket buffers at most a page per socket, all 40 of
// them over the 39 beyond the baseline's.
TEST(MemoryPerConnection, AKnownAllocationPerConnectionIsMeasured) {
    constexpr int kHoldKib = 256;
    constexpr int kConns = 40;
    auto result = run_hog_point(kConns, kHoldKib);
    ASSERT_EQ(result["status"], "ok") << result.dump().substr(0, 3000);
    const auto& cost = result["server_cost"];
    ASSERT_EQ(cost["sources"]["memory_anon"], "proc") << cost["missing"];
    double anon = figure(cost, "anon_bytes_per_connection");
    EXPECT_GE(anon, kHoldKib * kKiB - 1 * kKiB) << cost.dump();
    EXPECT_LE(anon, kHoldKib * kKiB + 8 * kKiB) << cost.dump();
    if (cost["sources"]["memory_kernel"].is_null()) {
        // No memory cgroup here: the total is null with why, never a number without its parts.
        EXPECT_TRUE(cost["memory_bytes_per_connection"].is_null());
        EXPECT_FALSE(cost["missing"]["memory_bytes_per_connection"].get<std::string>().empty());
        GTEST_SKIP() << "no memory cgroup: " << cost["missing"]["kernel_bytes"];
    }
    EXPECT_EQ(cost["sources"]["memory"], "proc+cgroup1");
    double kernel = figure(cost, "kernel_bytes_per_connection");
    double socket = figure(cost, "socket_bytes_per_connection");
    EXPECT_GE(kernel, 0) << cost.dump();
    EXPECT_LE(kernel, 16 * kKiB) << cost.dump();
    EXPECT_GE(socket, -4 * kKiB) << cost.dump();
    EXPECT_LE(socket, 4 * kKiB * kConns / (kConns - 1)) << cost.dump();
    // Socket buffers hold the data in flight when memory is read: beside the total, not in it.
    EXPECT_DOUBLE_EQ(figure(cost, "memory_bytes_per_connection"), anon + kernel);
}

// The baseline is the server holding one connection, not the idle server: with 4 MiB held
// per connection, the baseline holds one allocation more than the idle hog does, and the
// growth after it is divided over the connections beyond that one (over all of them it would
// read 10% low, 410 KiB off).
TEST(MemoryPerConnection, TheBaselineHoldsOneConnection) {
    constexpr int kHoldKib = 4096;
    double idle = idle_hog_anon_bytes(kHoldKib);
    ASSERT_LT(idle, kHoldKib * kKiB) << "the idle hog already holds an allocation's worth";
    auto result = run_hog_point(10, kHoldKib);
    ASSERT_EQ(result["status"], "ok") << result.dump().substr(0, 3000);
    const auto& cost = result["server_cost"];
    ASSERT_EQ(cost["sources"]["memory_anon"], "proc") << cost["missing"];
    double baseline = figure(cost, "baseline_anon_bytes");
    EXPECT_GE(baseline, idle + kHoldKib * kKiB - 64 * kKiB) << cost.dump();
    EXPECT_LT(baseline, idle + 2 * kHoldKib * kKiB) << cost.dump();
    double anon = figure(cost, "anon_bytes_per_connection");
    EXPECT_NEAR(anon, kHoldKib * kKiB, 16 * kKiB) << cost.dump();
    EXPECT_GT(result["timing_s"]["memory_baseline"].get<double>(), 0);
}

// A point of one connection has no connection beyond the baseline's: null and why, never 0.
TEST(MemoryPerConnection, OneConnectionHasNoFigurePerConnection) {
    auto result = run_hog_point(1, 64);
    ASSERT_EQ(result["status"], "ok") << result.dump().substr(0, 3000);
    const auto& cost = result["server_cost"];
    for (const char* key : {"memory_bytes_per_connection", "anon_bytes_per_connection"}) {
        EXPECT_TRUE(cost[key].is_null()) << key;
        EXPECT_NE(cost["missing"][key].get<std::string>().find("one connection"),
                  std::string::npos);
    }
    EXPECT_GE(figure(cost, "baseline_anon_bytes"), 64 * kKiB);
}

// A pool a server fills only as it turns over belongs in the baseline, not among the point's
// connections: io-uring's 1024 provided buffers of 4 KiB are touched one receive at a time,
// so a baseline of a few replies held none of the 4 MiB, and 20 connections read about
// 200 KiB each. The baseline now waits for twice the ring's replies, and the connections
// cost what an event loop's do (4 to 5 KiB here: the socket, its file and epoll entries).
TEST(MemoryPerConnection, APoolFilledAsItTurnsIsInTheBaseline) {
    auto result = run_active_point("muxserver", "io-uring", 20);
    if (result["status"] == "refused") GTEST_SKIP() << result["reason"];
    ASSERT_EQ(result["status"], "ok") << result.dump().substr(0, 3000);
    const auto& baseline = result["conditions"]["memory_baseline"];
    EXPECT_EQ(baseline["replies_needed"].get<int>(),
              2 * result["server_settings"]["io_uring_buffers"].get<int>());
    EXPECT_GE(baseline["replies"], baseline["replies_needed"]);
    const auto& cost = result["server_cost"];
    EXPECT_LE(figure(cost, "anon_bytes_per_connection"), 16 * kKiB) << cost.dump();
    if (cost["sources"]["memory_kernel"].is_null()) GTEST_SKIP() << "no memory cgroup";
    EXPECT_GE(figure(cost, "memory_bytes_per_connection"), 1 * kKiB) << cost.dump();
    EXPECT_LE(figure(cost, "memory_bytes_per_connection"), 16 * kKiB) << cost.dump();
}

// A busy-polling server's failing accept4 calls leave sockets, files and inodes to be freed a
// grace period later: 1-5 MB waiting in its group while it spins, most with no connection to
// poll, so its baseline held more than 20 connections did and the figure came out negative.
// Memory is read with the tree frozen once those frees have landed, and what landed is
// reported beside the figure: at the baseline, where the loop spins fastest, never nothing.
TEST(MemoryPerConnection, ABusyLoopsWaitingFreesAreNotItsConnections) {
    auto result = run_active_point("muxserver", "nonblocking", 20);
    ASSERT_EQ(result["status"], "ok") << result.dump().substr(0, 3000);
    const auto& cost = result["server_cost"];
    if (cost["sources"]["memory_kernel"].is_null()) GTEST_SKIP() << "no memory cgroup";
    double kernel = figure(cost, "kernel_bytes_per_connection");
    EXPECT_GE(kernel, 1 * kKiB) << cost.dump();
    EXPECT_LE(kernel, 16 * kKiB) << cost.dump();
    EXPECT_GT(figure(cost, "baseline_deferred_kernel_bytes"), 0) << cost.dump();
    // Settled: unchanged over the last two rounds, so at least two.
    EXPECT_GE(figure(cost, "baseline_settle_rounds"), 2) << cost.dump();
    EXPECT_GE(figure(cost, "settle_rounds"), 2) << cost.dump();
}

// Without a group that can be frozen (here: the run's group on cgroup v1), the kernel part
// would hold whatever frees the tree's pace left waiting: null, and why, never a number.
TEST(MemoryPerConnection, AReadingThatCouldNotFreezeTheTreeHasNoKernelFigure) {
    setenv("MUXBENCH_DISABLE_CGROUP", "cgroup2", 1);
    auto result = run_active_point("muxserver", "epoll-lt", 4);
    unsetenv("MUXBENCH_DISABLE_CGROUP");
    ASSERT_EQ(result["status"], "ok") << result.dump().substr(0, 3000);
    const auto& cost = result["server_cost"];
    if (cost["cgroup"].value("hierarchy", "") != "cgroup1")
        GTEST_SKIP() << "no cgroup v1 cpuacct here: " << cost["cgroup"];
    if (cost["socket_bytes"].is_null()) GTEST_SKIP() << "no memory cgroup";
    for (const char* key : {"kernel_bytes", "kernel_bytes_per_connection",
                            "memory_bytes_per_connection", "deferred_kernel_bytes"}) {
        EXPECT_TRUE(cost[key].is_null()) << key;
        EXPECT_NE(cost["missing"].value(key, "").find("could not be frozen"), std::string::npos)
            << key << ": " << cost["missing"].value(key, "");
    }
    EXPECT_TRUE(cost["anon_bytes_per_connection"].is_number());
}
