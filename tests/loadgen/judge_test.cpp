// The verdicts on a run (judge.hpp) and the figures behind them, from made-up Stats: no
// server, no clock. Each case is a run a user reaches: a stall at the window's end, a
// loadgen with more threads than CPUs, a closed loop whose counting is off.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "judge.hpp"
#include "report.hpp"
#include "stats.hpp"

namespace {

using namespace mux::load;

bool mentions(const std::vector<std::string>& reasons, const std::string& word) {
    for (const auto& r : reasons)
        if (r.find(word) != std::string::npos) return true;
    return false;
}

// A clean 3 s open-loop run at 2000/s over 20 connections.
Stats open_run() {
    Stats s(3, true);
    s.duration_s = 3;
    s.offered = 6000;
    s.requests = 6000;
    s.in_flight_capacity = 20;
    s.connections_wanted = s.connections_at_start = 20;
    s.completed = true;
    s.unfinished_at_end = 1;
    s.in_flight_at_end = 1;
    for (int i = 0; i < 6000; ++i) s.latency.record(100'000);
    return s;
}

// A clean 2 s closed-loop run: 10 connections, pipeline 1, 100 us each, so 100k replies.
Stats closed_run(double latency_scale = 1.0) {
    Stats s(2, false);
    s.duration_s = 2;
    s.requests = 200'000;
    s.in_flight_capacity = 10;
    s.latency_sum_ns = uint64_t(200'000.0 * 100'000.0 * latency_scale);
    s.connections_wanted = s.connections_at_start = 10;
    s.completed = true;
    return s;
}

TEST(Clean, AHealthyOpenLoopRunIsClean) {
    Stats s = open_run();
    judge(&s);
    EXPECT_TRUE(s.clean()) << s.not_clean_reasons[0];
    EXPECT_EQ(exit_code_for(s), kExitOk);
}

TEST(Clean, AStallAtTheEndIsNotClean) {
    // The server stopped for the last second: 2000 requests were never answered.
    Stats s = open_run();
    s.requests = 4000;
    s.unfinished_at_end = 2000;
    s.in_flight_at_end = 20;
    s.backlog_at_end = 1980;
    judge(&s);
    EXPECT_FALSE(s.clean());
    EXPECT_TRUE(mentions(s.not_clean_reasons, "below 99%"));
    EXPECT_TRUE(mentions(s.not_clean_reasons, "unfinished"));
    EXPECT_EQ(exit_code_for(s), kExitNotClean);
}

TEST(Clean, UnfinishedRequestsWithinTheAllowanceAreClean) {
    // Every connection busy at the end, plus 1% of the offered load: still a steady run.
    Stats s = open_run();
    s.unfinished_at_end = 20 + 60;
    judge(&s);
    EXPECT_TRUE(s.clean());
    s.unfinished_at_end = 20 + 61;
    judge(&s);
    EXPECT_TRUE(mentions(s.not_clean_reasons, "over the allowance of 80"));
}

TEST(Clean, TheRateIsJudgedAgainstWhatWasOfferedInTheWindow) {
    // Poisson arrivals offered 5,900 in this window, not rate x duration: 5,850 is 99.2%.
    Stats s = open_run();
    s.offered = 5900;
    s.requests = 5850;
    judge(&s);
    EXPECT_TRUE(s.clean());
    s.requests = 5840;  // 98.98%
    judge(&s);
    EXPECT_TRUE(mentions(s.not_clean_reasons, "below 99%"));
}

TEST(Clean, ErrorsAndVerificationFailuresHaveTheirOwnExitStatus) {
    Stats s = open_run();
    s.count_error(ErrorKind::Reset, 2);
    judge(&s);
    EXPECT_TRUE(mentions(s.not_clean_reasons, "2 reset"));
    EXPECT_EQ(exit_code_for(s), kExitIncomplete);
    s.count_error(ErrorKind::Mismatch, 7000);
    s.replies_verified = 6000;
    judge(&s);
    EXPECT_EQ(exit_code_for(s), kExitVerifyFailed);
    Stats ramp = open_run();
    ramp.connections_at_start = 19;
    ramp.connect_time_s = 30.04;  // the ramp ran into --ramp-timeout
    ramp.completed = false;
    judge(&ramp);
    // The reason a driver quotes for an incomplete run: how many were ready after how long.
    EXPECT_TRUE(mentions(ramp.not_clean_reasons,
                         "ramp incomplete: 19 of 20 connections ready after a 30 s ramp"))
        << ramp.not_clean_reasons.front();
    EXPECT_EQ(exit_code_for(ramp), kExitIncomplete);
}

TEST(LittlesLaw, HoldsForASoundClosedLoopRun) {
    Stats s = closed_run();
    auto ratio = littles_law_ratio(s);
    ASSERT_TRUE(ratio);
    EXPECT_DOUBLE_EQ(*ratio, 1.0);
    judge(&s);
    EXPECT_TRUE(s.clean());
    s.latency_sum_ns = uint64_t(double(s.latency_sum_ns) * 0.91);  // 9% held back: fine
    judge(&s);
    EXPECT_TRUE(s.clean());
}

TEST(LittlesLaw, FlagsAClosedLoopRunOffByMoreThanTenPercent) {
    for (double scale : {0.85, 1.15}) {
        Stats s = closed_run(scale);
        judge(&s);
        EXPECT_TRUE(mentions(s.not_clean_reasons, "Little's law")) << scale;
        EXPECT_EQ(exit_code_for(s), kExitNotClean);
    }
}

TEST(LittlesLaw, IsReportedNotJudgedWhenPipelinesDrainByDesign) {
    // --requests-per-conn with --pipeline > 1: a connection's pipeline drains before it is
    // replaced, so its slots are not always full and the ratio has no fixed target.
    Stats s = closed_run(0.8);
    s.littles_law_judged = false;
    judge(&s);
    EXPECT_TRUE(s.clean()) << s.not_clean_reasons.front();
    nlohmann::json doc = result_json(s, {}, {});
    EXPECT_NEAR(doc["summary"]["littles_law_ratio"].get<double>(), 0.8, 1e-9);
    EXPECT_FALSE(doc["summary"]["littles_law_judged"].get<bool>());
    Stats back;  // read back, and merged with a judged run: still not judged
    ASSERT_EQ(stats_from_json(doc, &back), "");
    EXPECT_FALSE(back.littles_law_judged);
    Stats judged = closed_run(0.8);
    ASSERT_EQ(judged.merge(back), "");
    EXPECT_FALSE(judged.littles_law_judged);
}

TEST(LittlesLaw, HasNoRatioInOpenLoopOrWithoutReplies) {
    EXPECT_FALSE(littles_law_ratio(open_run()));
    Stats none = closed_run();
    none.requests = 0;
    EXPECT_FALSE(littles_law_ratio(none));
}

Stats with_threads(std::vector<ThreadCpu> threads, double process_cpus, uint32_t cpus) {
    Stats s = closed_run();
    s.thread_cpu = std::move(threads);
    s.process_cpu_us = process_cpus * s.duration_s * 1e6;
    s.cpus = cpus;
    return s;
}

TEST(Saturation, AThreadBusyNinetyPercentIsSaturated) {
    Stats s = with_threads({{1.9e6, 0, 0}}, 0.95, 2);
    EXPECT_TRUE(mentions(saturation_reasons(s), "thread 0 busy 95%"));
    EXPECT_TRUE(mentions(bound_reasons(s), "thread 0"));
}

TEST(Saturation, PollingBeforeDueSendsIsNotWork) {
    // 95% on a CPU, 60% of it polling with nothing to do: 35% busy.
    Stats s = with_threads({{1.9e6, 1.2e6, 0}}, 0.95, 2);
    EXPECT_TRUE(saturation_reasons(s).empty());
}

TEST(Saturation, WorksWhenThreadsOutnumberCpus) {
    // Four threads on two CPUs: each on a CPU half the time and waiting for one the rest.
    // No thread looks busy, yet muxload used both CPUs it had.
    std::vector<ThreadCpu> threads(4, ThreadCpu{1.0e6, 0, 0});
    Stats no_schedstat = with_threads(threads, 2.0, 2);
    auto reasons = saturation_reasons(no_schedstat);
    ASSERT_EQ(reasons.size(), 1u);
    EXPECT_NE(reasons[0].find("2.00 CPUs of the 2"), std::string::npos) << reasons[0];
    // With schedstat, each thread also shows it wanted a CPU the whole window.
    std::vector<ThreadCpu> waiting(4, ThreadCpu{1.0e6, 0, 0.95e6});
    EXPECT_EQ(saturation_reasons(with_threads(waiting, 2.0, 2)).size(), 5u);
    // Four threads with four CPUs at half a CPU each have room to spare.
    EXPECT_TRUE(saturation_reasons(with_threads(threads, 2.0, 4)).empty());
}

TEST(Bound, SelfDelayAboveAQuarterOfTheMedianIsTheLoadgensFault) {
    Stats s = open_run();  // corrected p50 100 us
    for (int i = 0; i < 1000; ++i) s.self_delay.record(i < 985 ? 2'000 : 30'000);
    EXPECT_TRUE(mentions(bound_reasons(s), "self-delay p99"));
    Stats quiet = open_run();
    for (int i = 0; i < 1000; ++i) quiet.self_delay.record(i < 995 ? 2'000 : 30'000);
    EXPECT_TRUE(bound_reasons(quiet).empty());
}

TEST(Figures, OverflowsAreCountedAndSaid) {
    Stats s = open_run();
    s.record_latency(200'000'000'000, 2);  // 200 s: beyond the 60 s range
    EXPECT_EQ(s.latency_overflows, 1u);
    EXPECT_EQ(s.latency.max_ns(), 200'000'000'000u);
    judge(&s);
    nlohmann::json doc = result_json(s, {{"seed", 1}}, nlohmann::json::object());
    EXPECT_EQ(doc["summary"]["latency_overflows"], 1);
    EXPECT_NE(format_table(doc).find("1 latencies above the histogram's 60 s range"),
              std::string::npos);
}

TEST(Figures, ASecondWithNoReplyHasNullPercentiles) {
    Stats s = open_run();
    s.second_latency[0].record(100'000);
    s.second_unfinished[2] = 1;
    s.second_latency[2].record(900'000'000);  // the unfinished request, recorded at the end
    nlohmann::json series = result_json(s, {}, {})["timeseries"];
    EXPECT_DOUBLE_EQ(series[0]["p99_us"].get<double>(), 100.0);
    EXPECT_TRUE(series[1]["p99_us"].is_null());
    EXPECT_EQ(series[1]["requests"], 0);
    EXPECT_EQ(series[2]["requests"], 0);
    EXPECT_EQ(series[2]["unfinished"], 1);
    EXPECT_FALSE(series[2]["p99_us"].is_null());
}

TEST(Figures, EachSecondSaysHowLongItIs) {
    // A 2.5 s window has three entries; the last covers half a second, and its requests
    // read as half a second's, not as a drop in throughput.
    Stats s(3, true);
    s.duration_s = 2.5;
    nlohmann::json series = result_json(s, {}, {})["timeseries"];
    ASSERT_EQ(series.size(), 3u);
    EXPECT_DOUBLE_EQ(series[0]["duration_s"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(series[1]["duration_s"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(series[2]["duration_s"].get<double>(), 0.5);
}

TEST(Figures, VerdictsReadBackFromJsonUnchanged) {
    Stats s = open_run();
    s.unfinished_at_end = 2000;
    s.thread_cpu = {{1.0e6, 0.5e6, 0.1e6}};
    s.cpus = 2;
    judge(&s);
    nlohmann::json doc = result_json(s, {}, {});
    Stats back;
    ASSERT_EQ(stats_from_json(doc, &back), "");
    EXPECT_EQ(result_json(back, {}, {}), doc);
    judge(&back);  // and judged again from the raw figures: the same verdicts
    EXPECT_EQ(back.not_clean_reasons, s.not_clean_reasons);
    EXPECT_EQ(back.bound_reasons, s.bound_reasons);
}

}  // namespace
