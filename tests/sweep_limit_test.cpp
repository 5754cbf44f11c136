// Which side set a point's limit: muxload's own verdict beside the server's CPU share, for a
// point and for a group of repeats judged on their medians.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "limit.hpp"
#include "results.hpp"

namespace {

using mux::sweep::Limit;

TEST(SweepLimit, TheLoadGeneratorIsTheLimitOnlyWhenTheServerHasHeadroom) {
    EXPECT_EQ(mux::sweep::judge_limit(true, 0.55), Limit::Loadgen);
    EXPECT_EQ(mux::sweep::judge_limit(true, 0.97), Limit::Both);
    EXPECT_EQ(mux::sweep::judge_limit(false, 0.97), Limit::Server);
    EXPECT_EQ(mux::sweep::judge_limit(false, 0.40), Limit::Neither);
    // The bar is muxload's own, 90%, on either side of it.
    EXPECT_EQ(mux::sweep::judge_limit(true, 0.8999), Limit::Loadgen);
    EXPECT_EQ(mux::sweep::judge_limit(true, 0.90), Limit::Both);
    // No CPU figure for the server: muxload's word alone, as before the server was judged.
    EXPECT_EQ(mux::sweep::judge_limit(true, std::nullopt), Limit::Loadgen);
    EXPECT_EQ(mux::sweep::judge_limit(false, std::nullopt), Limit::Neither);
}

TEST(SweepLimit, TheServersShareIsHowBusyItsCpusWere) {
    auto window = [](nlohmann::json idle_share) {
        return nlohmann::json{{"server_cpus", {{"steal_share", 0.05}, {"idle_share", idle_share}}}};
    };
    EXPECT_DOUBLE_EQ(*mux::sweep::server_busy_share(window(0.1), false), 0.9);
    // Stolen time is no headroom: a CPU with no idle time is saturated, whoever took it.
    EXPECT_DOUBLE_EQ(*mux::sweep::server_busy_share(window(0.0), false), 1.0);
    EXPECT_DOUBLE_EQ(*mux::sweep::server_busy_share(window(0.75), false), 0.25);
    // Unknown: no /proc/stat reading, or a model that polls when idle.
    EXPECT_FALSE(mux::sweep::server_busy_share(window(nullptr), false));
    EXPECT_FALSE(mux::sweep::server_busy_share(nlohmann::json::object(), false));
    EXPECT_FALSE(mux::sweep::server_busy_share(nullptr, false));
    EXPECT_FALSE(mux::sweep::server_busy_share(window(0.0), true));
}

nlohmann::json repeat(bool loadgen_saturated, double server_busy_share, const char* status = "ok") {
    return {{"scenario", "active"},
            {"model", "epoll-et"},
            {"x_name", "conns"},
            {"x_value", 100},
            {"status", status},
            {"loadgen_saturated", loadgen_saturated},
            {"server_busy_share", server_busy_share},
            {"loadgen", {{"summary", {{"throughput_per_s", 1000.0}}}}}};
}

TEST(SweepLimit, AGroupIsJudgedOnTheMedianOfItsRepeatsNotOnAnyOne) {
    // The old rule flagged a group when any repeat was loadgen-bound, so 29 of 97 groups of the
    // reference flipped with one noisy repeat. One in three is not the group's verdict.
    nlohmann::json points =
        nlohmann::json::array({repeat(true, 0.5), repeat(false, 0.6), repeat(false, 0.55)});
    auto summary = mux::sweep::summarize(points);
    ASSERT_EQ(summary.size(), 1u);
    EXPECT_EQ(summary[0]["limit"], "neither");
    EXPECT_EQ(summary[0]["loadgen_bound"], false);

    // Two of three saturated, the server's median share 0.6: the load generator set the limit.
    points = nlohmann::json::array({repeat(true, 0.95), repeat(true, 0.6), repeat(false, 0.5)});
    summary = mux::sweep::summarize(points);
    EXPECT_EQ(summary[0]["limit"], "loadgen");
    EXPECT_EQ(summary[0]["loadgen_bound"], true);

    // Both saturated in most repeats: its own label, not loadgen-bound.
    points = nlohmann::json::array({repeat(true, 0.95), repeat(true, 0.92), repeat(true, 0.5)});
    summary = mux::sweep::summarize(points);
    EXPECT_EQ(summary[0]["limit"], "both");
    EXPECT_EQ(summary[0]["loadgen_bound"], false);
}

TEST(SweepLimit, OnlyTheSummarisedRepeatsAreJudged) {
    // A failed repeat's saturation describes the failure, as its figures do.
    nlohmann::json points = nlohmann::json::array(
        {repeat(true, 0.3, "failed"), repeat(true, 0.3, "failed"), repeat(false, 0.97)});
    auto summary = mux::sweep::summarize(points);
    EXPECT_EQ(summary[0]["limit"], "server");
    // No repeat summarised: no limit to state.
    points = nlohmann::json::array({repeat(true, 0.3, "failed")});
    summary = mux::sweep::summarize(points);
    EXPECT_FALSE(summary[0].contains("limit")) << summary[0].dump();
    EXPECT_EQ(summary[0]["loadgen_bound"], false);
}

TEST(SweepLimit, APointFromBeforeTheServerWasJudgedKeepsMuxloadsVerdict) {
    nlohmann::json old = repeat(false, 0.5);
    old.erase("loadgen_saturated");
    old.erase("server_busy_share");
    old["loadgen_bound"] = true;
    auto summary = mux::sweep::summarize(nlohmann::json::array({old}));
    EXPECT_EQ(summary[0]["limit"], "loadgen");
}

}  // namespace
