#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "models.hpp"
#include "plan.hpp"
#include "sweep_command.hpp"

using mux::sweep::expand_plan;
using mux::sweep::Limits;
using mux::sweep::Plan;
using mux::sweep::Point;
using mux::sweep::predicted_refusal;

namespace {
Plan small_plan() {
    Plan plan;
    plan.scenarios = {"active", "idle"};
    plan.conns = {1, 100};
    plan.idle_conns = {0, 1000};
    plan.idle_active = 10;
    plan.repeats = 2;
    return plan;
}
}  // namespace

TEST(SweepPlan, ExpandsScenariosXValuesRepeatsAndModels) {
    auto points = expand_plan(small_plan(), {"poll", "epoll-et"});
    // 2 scenarios x 2 x values x 2 repeats x 2 models.
    ASSERT_EQ(points.size(), 16u);
    // Models run side by side: the two models alternate at each (x, repeat).
    EXPECT_EQ(points[0].model, "poll");
    EXPECT_EQ(points[1].model, "epoll-et");
    EXPECT_EQ(points[0].x_value, 1);
    EXPECT_EQ(points[2].x_value, 100);
    EXPECT_EQ(points[4].scenario, "idle");
    // Each repeat is a whole pass over the plan, so a point's repeats are spread out.
    for (size_t i = 0; i < points.size(); ++i) EXPECT_EQ(points[i].repeat, i < 8 ? 0 : 1) << i;
    EXPECT_EQ(points[8].x_value, 1);
    EXPECT_EQ(points[8].scenario, "active");
}

TEST(SweepPlan, EachRepeatRotatesTheModelOrder) {
    Plan plan = small_plan();
    plan.scenarios = {"active"};
    plan.conns = {1};
    plan.repeats = 3;
    auto points = expand_plan(plan, {"select", "epoll-et", "fork"});
    std::vector<std::string> order;
    for (const auto& p : points) order.push_back(p.model);
    // The model that ran last in one repeat (and whose teardown the next point inherits)
    // is a different one in every repeat.
    EXPECT_EQ(order, (std::vector<std::string>{"select", "epoll-et", "fork", "epoll-et", "fork",
                                               "select", "fork", "select", "epoll-et"}));
}

TEST(SweepPlan, IdleScenarioAddsIdleToActiveConnections) {
    auto points = expand_plan(small_plan(), {"poll"});
    std::vector<Point> idle;
    for (const auto& p : points)
        if (p.scenario == "idle") idle.push_back(p);
    ASSERT_EQ(idle.size(), 4u);
    EXPECT_EQ(idle[1].x_name, "idle_conns");
    EXPECT_EQ(idle[1].x_value, 1000);
    EXPECT_EQ(idle[1].conns, 1010);
    EXPECT_EQ(idle[1].active, 10);
}

TEST(SweepPlan, SinglePointScenariosCarryTheirShape) {
    Plan plan;
    plan.scenarios = {"latency", "churn", "slow"};
    plan.repeats = 1;
    auto points = expand_plan(plan, {"fork"});
    ASSERT_EQ(points.size(), 3u);
    EXPECT_EQ(points[0].rate_per_s, plan.latency_rate_per_s);
    EXPECT_EQ(points[1].requests_per_conn, 1);
    EXPECT_EQ(points[2].slow_mix, plan.slow_mix);
    EXPECT_EQ(points[2].rate_per_s, 0);
}

TEST(SweepPlan, SelectIsRefusedPastFdSetsize) {
    Limits limits{20000};
    Point p = Point::at("active", "conns", 1000, 1000, 1000);
    p.model = "select";
    EXPECT_FALSE(predicted_refusal(p, limits));
    p.conns = p.active = 2000;
    auto refusal = predicted_refusal(p, limits);
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->code, "fd_setsize");
    EXPECT_NE(refusal->detail.find("2000"), std::string::npos) << refusal->detail;
    p.model = "poll";
    EXPECT_FALSE(predicted_refusal(p, limits));
}

TEST(SweepPlan, BlockingIsRefusedWithPersistentConnectionsButNotChurn) {
    Limits limits{20000};
    Point p = Point::at("active", "conns", 10, 10, 10);
    p.model = "blocking";
    auto refusal = predicted_refusal(p, limits);
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->code, "one_connection_at_a_time");
    p.conns = p.active = 1;
    EXPECT_FALSE(predicted_refusal(p, limits));
    p.conns = p.active = 10;
    p.requests_per_conn = 1;
    EXPECT_FALSE(predicted_refusal(p, limits));
}

TEST(SweepPlan, FdLimitTrimsCountsAndSaysWhy) {
    Plan plan = small_plan();
    plan.conns = {100, 5000, 30000};
    plan.idle_conns = {0, 19990};
    auto notes = mux::sweep::trim_to_fd_limit(plan, Limits{20000});
    EXPECT_EQ(plan.conns, (std::vector<int>{100, 5000}));
    EXPECT_EQ(plan.idle_conns, (std::vector<int>{0}));
    ASSERT_EQ(notes.size(), 2u);
    EXPECT_NE(notes[0].find("hard limit is 20000"), std::string::npos) << notes[0];
    Point p = Point::at("active", "conns", 30000, 30000, 30000);
    p.model = "epoll-et";
    auto refusal = predicted_refusal(p, Limits{20000});
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->code, "fd_limit");
}

TEST(SweepPlan, ForkAndThreadsAreRefusedPastTheTaskLimit) {
    Limits limits{20000, 100, "pid_max 400 less 300 reserved"};
    Point p = Point::at("active", "conns", 30, 30, 30);
    for (const char* model : {"fork", "threads"}) {
        p.model = model;
        p.conns = p.active = 30;  // 30 + 64 headroom fits in 100
        EXPECT_FALSE(predicted_refusal(p, limits)) << model;
        p.conns = p.active = 50;
        auto refusal = predicted_refusal(p, limits);
        ASSERT_TRUE(refusal) << model;
        EXPECT_EQ(refusal->code, "task_limit");
        EXPECT_NE(refusal->detail.find("50 connections need 114 tasks"), std::string::npos)
            << refusal->detail;
        EXPECT_NE(refusal->detail.find("pid_max 400"), std::string::npos) << refusal->detail;
    }
    // One task per connection is those two models' price only.
    for (const char* model : {"poll", "epoll-et", "epoll-oneshot", "reuseport", "io-uring"}) {
        p.model = model;
        EXPECT_FALSE(predicted_refusal(p, limits)) << model;
    }
    // Limits not known: nothing refused for them.
    p.model = "fork";
    EXPECT_FALSE(predicted_refusal(p, Limits{20000}));
}

TEST(SweepPlan, TaskLimitsAreReadFromTheKernel) {
    Limits limits{20000};
    mux::sweep::read_task_limits(limits);
    EXPECT_GT(limits.tasks_available, 0u) << limits.tasks_why;
    EXPECT_NE(limits.tasks_why.find("pid_max"), std::string::npos) << limits.tasks_why;
}

namespace {
// A plan file read as muxbench reads it: CLI11's config file under a [sweep] section.
Plan parse_plan(const std::string& path) {
    CLI::App app;
    app.set_config("--plan");
    mux::sweep::SweepOptions options;
    CLI::App* sweep = app.add_subcommand("sweep");
    sweep->fallthrough();
    mux::sweep::setup_sweep(*sweep, options);
    app.parse("sweep --plan " + path, false);
    return options.plan;
}
}  // namespace

TEST(SweepPlan, WorkersIsAPlanKey) {
    auto path = std::filesystem::temp_directory_path() /
                ("muxbench-plan-" + std::to_string(getpid()) + ".toml");
    {
        std::ofstream out(path);
        out << "[sweep]\nname = \"pools\"\nworkers = 4\n";
    }
    Plan plan = parse_plan(path.string());
    std::filesystem::remove(path);
    EXPECT_EQ(plan.name, "pools");
    EXPECT_EQ(plan.workers, 4);
    EXPECT_EQ(plan.to_json()["workers"], 4);
    // Not given: 0, which passes no --workers, so muxserver takes its affinity mask's CPUs.
    EXPECT_EQ(Plan{}.workers, 0);
}

// The repository's plans name no models, so each runs every registered model: the eleven.
TEST(SweepPlan, EveryPlanRunsEveryModel) {
    ASSERT_EQ(mux::all_models().size(), 11u);
    for (const char* name : {"quick", "full", "check"}) {
        Plan plan = parse_plan(mux::sweep::plan_path(name));
        EXPECT_TRUE(plan.models.empty()) << name;
        EXPECT_EQ(plan.workers, 0) << name;
    }
}
