#include <gtest/gtest.h>

#include <set>

#include "plan.hpp"

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
