// The open-loop schedule and coordinated-omission correction, driven by a fake clock.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "histogram.hpp"
#include "schedule.hpp"

namespace {

using namespace mux::load;

TEST(ArrivalSchedule, UniformSendsAtExactIntendedTimes) {
    ArrivalSchedule s(1000, Arrival::Uniform, 5'000'000'000, 1);
    uint64_t now = 5'000'000'000;  // the fake clock
    EXPECT_TRUE(s.due(now));
    EXPECT_EQ(s.take(), 5'000'000'000u);
    EXPECT_FALSE(s.due(now));
    EXPECT_EQ(s.next_ns(), 5'001'000'000u);
    now += 10'500'000;  // the loop was away 10.5 ms: ten requests are due, each with its own time
    int due = 0;
    while (s.due(now)) {
        EXPECT_EQ(s.take(), 5'000'000'000u + uint64_t(due + 1) * 1'000'000);
        ++due;
    }
    EXPECT_EQ(due, 10);
}

TEST(ArrivalSchedule, UniformDoesNotDriftOverAMillionRequests) {
    ArrivalSchedule s(3, Arrival::Uniform, 0, 1);  // a period of 333,333,333.3 ns
    for (int i = 0; i < 1'000'000; ++i) s.take();
    EXPECT_EQ(s.next_ns(), 333'333'333'333'333u);
}

TEST(ArrivalSchedule, PoissonKeepsTheMeanRate) {
    ArrivalSchedule s(10'000, Arrival::Poisson, 0, 42);
    uint64_t n = 0;
    uint64_t previous = 0;
    bool gaps_vary = false;
    while (s.due(10'000'000'000)) {  // 10 s of fake time
        uint64_t t = s.take();
        if (n >= 2 && t - previous != 100'000) gaps_vary = true;
        previous = t;
        ++n;
    }
    EXPECT_NEAR(double(n), 100'000.0, 1'500.0);  // about 5 sigma of a Poisson count
    EXPECT_TRUE(gaps_vary);
}

// One connection, pipeline 1, at 1000 requests/s. The server answers in 100 us except for
// one 200 ms stall. Closed-loop thinking (latency from the actual send) sees one slow
// request; the corrected figure charges the stall to every request scheduled during it.
struct Simulation {
    mux::Histogram corrected, uncorrected;
    uint64_t late_sends = 0;
};

Simulation simulate_stall(uint64_t stall_ns) {
    Simulation sim;
    ArrivalSchedule s(1000, Arrival::Uniform, 0, 1);
    uint64_t now = 0;           // fake clock
    uint64_t slot_free_ns = 0;  // when the connection last became free
    for (int i = 0; i < 1000; ++i) {
        uint64_t intended = s.next_ns();
        if (now < intended) now = intended;  // the loop sleeps until the request is due
        s.take();
        uint64_t sent = now;
        if (self_send_delay_ns(intended, slot_free_ns, sent) > kLateSendNs) ++sim.late_sends;
        uint64_t service = (i == 100) ? stall_ns : 100'000;
        uint64_t done = sent + service;
        Latency l = measure_latency(intended, sent, done);
        sim.corrected.record(l.corrected_ns);
        sim.uncorrected.record(l.uncorrected_ns);
        now = done;
        slot_free_ns = done;
    }
    return sim;
}

TEST(CoordinatedOmission, StallIsChargedToEveryRequestItDelayed) {
    Simulation sim = simulate_stall(200'000'000);
    // Uncorrected: only the stalled request is slow.
    EXPECT_EQ(sim.uncorrected.max_ns(), 200'000'000u);
    EXPECT_LT(sim.uncorrected.percentile_ns(0.99), 200'000u);
    // Corrected: the ~200 requests scheduled during the stall waited for it, up to 200 ms.
    EXPECT_GE(sim.corrected.percentile_ns(0.90), 99'000'000u);
    EXPECT_GE(sim.corrected.max_ns(), 200'000'000u);
    // Requests that waited for a busy connection are the server's delay, not the loadgen's.
    EXPECT_EQ(sim.late_sends, 0u);
}

TEST(CoordinatedOmission, WithoutAStallBothFiguresAgree) {
    Simulation sim = simulate_stall(100'000);
    EXPECT_EQ(sim.corrected.to_json(), sim.uncorrected.to_json());
}

TEST(CoordinatedOmission, ALoopThatWakesLateWithAFreeConnectionIsTheLoadgensFault) {
    // Due at 10 ms, connection free since 5 ms, sent at 13 ms: 3 ms of the loadgen's own delay.
    EXPECT_EQ(self_send_delay_ns(10'000'000, 5'000'000, 13'000'000), 3'000'000u);
    // Due at 10 ms, connection busy until 12 ms, sent at 12.1 ms: only 0.1 ms is its fault.
    EXPECT_EQ(self_send_delay_ns(10'000'000, 12'000'000, 12'100'000), 100'000u);
}

}  // namespace
