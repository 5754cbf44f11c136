// The steadiness rule (steady.hpp) from made-up per-interval counts: no server, no clock.
// Each sequence is one a run produces: a steady server, fork still reaching its connections,
// throughput climbing, a stall, an open-loop trickle and a server past saturation.
#include <gtest/gtest.h>

#include <vector>

#include "judge.hpp"
#include "stats.hpp"
#include "steady.hpp"

namespace {

using namespace mux::load;

// 18 intervals of 50 ms (a 1 s warmup up to its announcement), replies per interval as given,
// every connection first served in the first interval unless first_served says otherwise.
std::vector<WarmupInterval> run_of(std::vector<uint64_t> replies, uint64_t conns,
                                   std::vector<uint64_t> first_served = {}) {
    std::vector<WarmupInterval> v(replies.size());
    for (size_t i = 0; i < v.size(); ++i) {
        v[i].replies = replies[i];
        v[i].first_served = i < first_served.size() ? first_served[i] : (i == 0 ? conns : 0);
    }
    return v;
}

SteadyRule closed(uint64_t conns) {
    return {conns, false, 0.05, 0};
}

TEST(Steady, ASteadyClosedLoopIsSteady) {
    // epoll-et at 100 connections: ~2,400 replies per 50 ms, +-7% between intervals.
    std::vector<uint64_t> r = {900,  2300, 2400, 2250, 2500, 2380, 2420, 2290, 2510,
                               2350, 2460, 2300, 2400, 2330, 2480, 2250, 2390, 2440};
    SteadyVerdict v = judge_steady(run_of(r, 100), closed(100));
    EXPECT_TRUE(v.steady) << ::testing::PrintToString(v.reasons);
    EXPECT_EQ(v.served_at_mid, 100u);
    EXPECT_DOUBLE_EQ(v.span_s, 0.5);
    // The judged span is the last 10 intervals (8 to 17): the slow first one is left out.
    EXPECT_EQ(v.replies_first_half, 2510u + 2350 + 2460 + 2300 + 2400);
    EXPECT_EQ(v.replies_second_half, 2330u + 2480 + 2250 + 2390 + 2440);
}

TEST(Steady, ThroughputThatKeepsClimbingIsNot) {
    std::vector<uint64_t> r;
    for (uint64_t i = 0; i < 18; ++i) r.push_back(100 + 60 * i);
    SteadyVerdict v = judge_steady(run_of(r, 100), closed(100));
    EXPECT_FALSE(v.steady);
    ASSERT_EQ(v.reasons.size(), 1u);
    EXPECT_NE(v.reasons[0].find("throughput varied"), std::string::npos) << v.reasons[0];
    EXPECT_GT(v.change_share, kMaxReplyChangeShare);
}

TEST(Steady, ConnectionsStillBeingReachedAreNot) {
    // Fork at 1,000 connections, served a few more children every interval: 164 by the
    // midpoint of the judged span, 225 by its end. Its throughput is flat.
    std::vector<uint64_t> r(18, 1000), first(18, 0);
    first[0] = 80;
    for (size_t i = 1; i < 18; ++i) first[i] = 7;  // 80 + 7 * 12 by interval 13, the midpoint
    SteadyVerdict v = judge_steady(run_of(r, 1000, first), closed(1000));
    EXPECT_FALSE(v.steady);
    EXPECT_EQ(v.served_at_mid, 164u);
    EXPECT_EQ(v.served_at_end, 164u + 7 * 5);
    ASSERT_EQ(v.reasons.size(), 1u);
    EXPECT_NE(v.reasons[0].find("served 164 of 1000 active connections"), std::string::npos)
        << v.reasons[0];
}

TEST(Steady, ConnectionsStarvedForGoodAreUnfairNotUnsteady) {
    // A server that serves 600 of 1,000 connections and never reaches the rest: the set
    // stopped growing, so the load is steady and the window's fairness figures say the rest.
    std::vector<uint64_t> r(18, 1000), first(18, 0);
    first[0] = 500;
    first[1] = 100;
    SteadyVerdict v = judge_steady(run_of(r, 1000, first), closed(1000));
    EXPECT_TRUE(v.steady) << ::testing::PrintToString(v.reasons);
    EXPECT_EQ(v.served_at_mid, 600u);
    EXPECT_EQ(v.served_at_end, 600u);
    // One more connection first answered after the midpoint: still growing, not steady.
    first[15] = 1;
    v = judge_steady(run_of(r, 1000, first), closed(1000));
    EXPECT_FALSE(v.steady);
    EXPECT_NE(v.reasons[0].find("served 600 of 1000 active connections"), std::string::npos)
        << v.reasons[0];
}

TEST(Steady, AStallIsNotSteadyAtZero) {
    std::vector<uint64_t> r(18, 0);
    for (size_t i = 0; i < 6; ++i) r[i] = 2000;
    SteadyVerdict v = judge_steady(run_of(r, 10), closed(10));
    EXPECT_FALSE(v.steady);
    ASSERT_FALSE(v.reasons.empty());
    EXPECT_NE(v.reasons[0].find("no reply in the last 0.5 s"), std::string::npos) << v.reasons[0];
}

TEST(Steady, ATrickleWithinCountingNoiseIsSteady) {
    // The slow scenario at few connections: 3-9 replies per half differ by 100% and more,
    // well within the noise of such counts.
    std::vector<uint64_t> r = {1, 0, 2, 1, 0, 1, 1, 2, 0, 1, 2, 1, 1, 2, 0, 0, 1, 0};
    SteadyVerdict v = judge_steady(run_of(r, 4), closed(4));
    EXPECT_TRUE(v.steady) << ::testing::PrintToString(v.reasons);
    EXPECT_GT(v.change_share, kMaxReplyChangeShare);
}

TEST(Steady, OpenLoopReachesConnectionsOnlyAsTheRateAsks) {
    // 1,000 connections at 200/s: 10 new ones answered per interval all along, and steady.
    std::vector<uint64_t> r(18, 10), first(18, 10);
    SteadyRule rule{1000, true, 0.05, 200};
    SteadyVerdict v = judge_steady(run_of(r, 1000, first), rule);
    EXPECT_TRUE(v.steady) << ::testing::PrintToString(v.reasons);
    // Nothing answered while 100 requests were due is a stall.
    std::vector<uint64_t> none(18, 0);
    v = judge_steady(run_of(none, 1000, none), rule);
    EXPECT_FALSE(v.steady);
    // Past saturation the achieved rate is steady at the server's capacity.
    std::vector<uint64_t> capped(18, 1500);
    v = judge_steady(run_of(capped, 1000), {1000, true, 0.05, 50000});
    EXPECT_TRUE(v.steady) << ::testing::PrintToString(v.reasons);
    // Falling behind more each interval is not.
    std::vector<uint64_t> falling;
    for (uint64_t i = 0; i < 18; ++i) falling.push_back(2500 - 120 * i);
    v = judge_steady(run_of(falling, 1000), {1000, true, 0.05, 50000});
    EXPECT_FALSE(v.steady);
    ASSERT_FALSE(v.reasons.empty());
    EXPECT_NE(v.reasons[0].find("of 50000/s offered"), std::string::npos) << v.reasons[0];
}

TEST(Steady, ShortSequencesJudgeWhatTheyHave) {
    EXPECT_TRUE(judge_steady({}, closed(1)).steady);
    std::vector<uint64_t> r = {0, 100, 400};  // 3 intervals: the last 2 judged
    SteadyVerdict v = judge_steady(run_of(r, 1), closed(1));
    EXPECT_FALSE(v.steady);
    EXPECT_EQ(v.replies_first_half, 100u);
    EXPECT_EQ(v.replies_second_half, 400u);
}

TEST(Steady, AnUnsteadyRunIsNotCleanAndSaysWhy) {
    Stats s(1, false);
    s.duration_s = 1;
    s.requests = 1000;
    s.connections_wanted = s.connections_at_start = 10;
    s.completed = true;
    s.steady = false;
    s.steady_checks = 3;
    s.warmup_extended_s = 0.5;
    s.unsteady_reasons = {"served 3 of 10 active connections"};
    judge(&s);
    EXPECT_FALSE(s.clean());
    EXPECT_EQ(exit_code_for(s), kExitNotClean);
    bool said = false;
    for (const auto& r : s.not_clean_reasons)
        said = said || r.find(
                           "not steady before the window (3 checks, warmup extended by 0.5 s): "
                           "served 3 of 10") != std::string::npos;
    EXPECT_TRUE(said) << ::testing::PrintToString(s.not_clean_reasons);
}

}  // namespace
