// The open-loop schedule and coordinated-omission correction, driven by a fake clock:
// arrivals, thread phases, seeds, the wait-or-poll plan before a due send, and the free
// slots that measure a send's self-delay.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "histogram.hpp"
#include "run.hpp"
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

// --threads T: each thread runs R/T with its own schedule. Started together, T uniform
// schedules put T requests on one instant every T/R; each taking its own instants of the
// merged stream (instant i of every T), they merge into one request every 1/R.
std::vector<uint64_t> merged_sends(uint32_t threads, double rate, bool offset, uint64_t until) {
    std::vector<uint64_t> sends;
    for (uint32_t t = 0; t < threads; ++t) {
        ArrivalShare share = offset ? ArrivalShare{{t}, threads} : ArrivalShare{};
        ArrivalSchedule s(rate / threads, Arrival::Uniform, 1'000'000'000, derive_seed(7, t, 0),
                          share);
        while (s.due(until)) sends.push_back(s.take());
    }
    std::sort(sends.begin(), sends.end());
    return sends;
}

TEST(ThreadPhases, OffsetThreadsMergeIntoOneUniformStream) {
    std::vector<uint64_t> sends = merged_sends(4, 1000, true, 2'000'000'000);
    ASSERT_EQ(sends.size(), 1000u + 1);  // fake clock: 1 s of sends at 1000/s, both ends in
    for (size_t i = 1; i < sends.size(); ++i) ASSERT_EQ(sends[i] - sends[i - 1], 1'000'000u) << i;
}

// The schedules the workers of a run would follow, merged, over [start, until].
std::vector<uint64_t> merged_run_sends(uint32_t conns, uint32_t threads, double rate,
                                       uint64_t until) {
    LoadOptions o;
    o.target_text = "tcp:127.0.0.1:9";
    o.conns = conns;
    o.threads = threads;
    o.rate_per_s = rate;
    EXPECT_EQ(validate(&o), "");
    std::vector<uint64_t> sends;
    for (const WorkerPlan& p : plan_workers(o)) {
        ArrivalSchedule s(p.rate_per_s, Arrival::Uniform, 1'000'000'000,
                          derive_seed(o.seed, p.index, 0), p.share);
        while (s.due(until)) sends.push_back(s.take());
    }
    std::sort(sends.begin(), sends.end());
    return sends;
}

TEST(ThreadPhases, UnevenSharesStillMergeIntoOneUniformStream) {
    // 3 connections over 2 threads: one thread carries 2 connections and 2/3 of the rate.
    for (auto [conns, threads] : {std::pair{3u, 2u}, std::pair{5u, 4u}, std::pair{8u, 4u},
                                  std::pair{1001u, 2u}, std::pair{100u, 7u}}) {
        std::vector<uint64_t> sends = merged_run_sends(conns, threads, 3000, 2'000'000'000);
        ASSERT_GE(sends.size(), 2999u);
        for (size_t i = 1; i < sends.size(); ++i)
            ASSERT_NEAR(double(sends[i] - sends[i - 1]), 1e9 / 3000, 1.0)
                << conns << " connections over " << threads << " threads, send " << i;
    }
}

TEST(ThreadPhases, EachThreadTakesItsConnectionsShareOfEveryCycle) {
    std::vector<ArrivalShare> uneven = arrival_shares({2, 1});
    EXPECT_EQ(uneven[0].instants, (std::vector<uint32_t>{0, 2}));
    EXPECT_EQ(uneven[1].instants, (std::vector<uint32_t>{1}));
    EXPECT_EQ(uneven[1].of, 3u);
    // Equal shares reduce to one instant of every T.
    std::vector<ArrivalShare> even = arrival_shares({4, 4, 4, 4});
    for (uint32_t t = 0; t < 4; ++t) {
        EXPECT_EQ(even[t].instants, std::vector<uint32_t>{t});
        EXPECT_EQ(even[t].of, 4u);
    }
}

TEST(ThreadPhases, UnevenSharesAreSpreadOverEachCycle) {
    // 1,001 connections over 2 threads (501 and 500): the merged stream is one request
    // every 1/R, and each thread sends evenly too. Taken in one block per cycle, thread 0
    // would send 501 requests one instant apart, then nothing for 500 instants: the whole
    // rate R, then none.
    LoadOptions o;
    o.target_text = "tcp:127.0.0.1:9";
    o.conns = 1001;
    o.threads = 2;
    o.rate_per_s = 1000;
    ASSERT_EQ(validate(&o), "");
    for (const WorkerPlan& p : plan_workers(o)) {
        ArrivalSchedule s(p.rate_per_s, Arrival::Uniform, 0, 1, p.share);
        uint64_t previous = s.take(), widest = 0, narrowest = UINT64_MAX;
        for (int i = 0; i < 3000; ++i) {
            uint64_t t = s.take();
            widest = std::max(widest, t - previous);
            narrowest = std::min(narrowest, t - previous);
            previous = t;
        }
        // Instants are 1 ms apart; a thread's mean gap is about 2 of them, and stays within
        // the number of threads of that.
        EXPECT_LE(widest, 4'000'000u) << "thread " << p.index;
        EXPECT_GE(narrowest, 1'000'000u) << "thread " << p.index;
    }
}

TEST(ThreadPhases, WithoutOffsetsThreadsSendInBursts) {
    // What the offsets fix: four requests on the same instant, then 4 ms of nothing.
    std::vector<uint64_t> sends = merged_sends(4, 1000, false, 2'000'000'000);
    std::set<uint64_t> gaps;
    for (size_t i = 1; i < sends.size(); ++i) gaps.insert(sends[i] - sends[i - 1]);
    EXPECT_EQ(gaps, (std::set<uint64_t>{0, 4'000'000}));
}

TEST(ThreadPhases, PoissonThreadsDoNotAllSendAtTheStart) {
    // T independent Poisson streams merge into one Poisson stream of the whole rate, but
    // only if none of them has an arrival at the start: eight threads would otherwise send
    // eight requests on the first instant.
    std::set<uint64_t> firsts;
    for (uint32_t t = 0; t < 8; ++t) {
        ArrivalSchedule s(1000, Arrival::Poisson, 1'000'000'000, derive_seed(7, t, 0));
        EXPECT_FALSE(s.due(1'000'000'000)) << t;
        firsts.insert(s.take());
    }
    EXPECT_EQ(firsts.size(), 8u);
}

TEST(Seeds, EveryThreadAndStreamOfARunGetsItsOwn) {
    std::set<uint64_t> seen;
    for (uint32_t t = 0; t < 1024; ++t)
        for (uint32_t stream = 0; stream < 2; ++stream) seen.insert(derive_seed(12345, t, stream));
    EXPECT_EQ(seen.size(), 2048u);
    EXPECT_NE(derive_seed(1, 0, 0), derive_seed(2, 0, 0));
}

std::vector<uint64_t> poisson_times(uint64_t run_seed, uint32_t thread) {
    ArrivalSchedule s(1000, Arrival::Poisson, 0, derive_seed(run_seed, thread, 0));
    std::vector<uint64_t> times;
    for (int i = 0; i < 100; ++i) times.push_back(s.take());
    return times;
}

TEST(Seeds, TheSameSeedRepeatsARunAndAnotherDoesNot) {
    EXPECT_EQ(poisson_times(99, 0), poisson_times(99, 0));
    EXPECT_NE(poisson_times(99, 0), poisson_times(100, 0));
    EXPECT_NE(poisson_times(99, 0), poisson_times(99, 1));
}

// The loop's wait before a send, on a fake clock (times in ns).
TEST(WaitPlan, SleepsUntilTheSpinStretchThenPolls) {
    const uint64_t now = 1'000'000, until = 20'000'000;
    // Due in 1 ms: sleep until 100 us before it.
    WaitPlan far = plan_wait(now, until, true, now + 1'000'000, true);
    EXPECT_FALSE(far.spin);
    EXPECT_EQ(far.until_ns, now + 1'000'000 - kSpinBeforeSendNs);
    // Due within the stretch: poll.
    EXPECT_TRUE(plan_wait(now, until, true, now + kSpinBeforeSendNs, true).spin);
    EXPECT_TRUE(plan_wait(now, until, true, now, true).spin);
    // Out of budget: sleep to the due time itself.
    WaitPlan broke = plan_wait(now, until, true, now + 50'000, false);
    EXPECT_FALSE(broke.spin);
    EXPECT_EQ(broke.until_ns, now + 50'000);
}

TEST(WaitPlan, NeverPollsWithoutAPendingSend) {
    // No free connection, or no request: an idle loop sleeps until its next duty.
    WaitPlan idle = plan_wait(1'000, 20'000'000, false, 1'000, true);
    EXPECT_FALSE(idle.spin);
    EXPECT_EQ(idle.until_ns, 20'000'000u);
    // A send due after the next maintenance waits for it first.
    WaitPlan later = plan_wait(1'000, 5'000'000, true, 50'000'000, true);
    EXPECT_FALSE(later.spin);
    EXPECT_EQ(later.until_ns, 5'000'000u);
}

TEST(SpinBudget, PollingNeverTakesMoreThanItsShareOfAThread) {
    // 20,000 sends/s on one thread: 50 us gaps, all inside the spin stretch. Each pass of the
    // fake loop polls for 1 us when allowed, else sleeps to the send.
    ArrivalSchedule s(20'000, Arrival::Uniform, 0, 1);
    SpinBudget budget(0);
    uint64_t now = 0;
    while (now < 1'000'000'000) {
        WaitPlan plan = plan_wait(now, UINT64_MAX, true, s.next_ns(), budget.allows(now));
        if (plan.spin) {
            budget.spend(1'000);
            now += 1'000;
        } else {
            now = std::max(now, plan.until_ns);
        }
        while (s.due(now)) s.take();
    }
    double share = double(budget.spent_ns()) / double(now);
    EXPECT_LE(share, kMaxSpinShare + 0.001);
    EXPECT_GT(share, 0.4);  // and it does poll when it may
}

TEST(FreeSlots, EachSlotKeepsTheTimeItBecameFree) {
    // --pipeline 2: the connection's two slots free at 10 ms and 20 ms; two requests due at
    // 5 ms and 6 ms are sent at 30 ms. The loadgen could have sent them at 10 and 20 ms.
    FreeSlots slots(5);
    slots.push({0, 0, 10'000'000});
    slots.push({0, 0, 20'000'000});
    FreeSlot a = slots.pop(), b = slots.pop();
    EXPECT_EQ(self_send_delay_ns(5'000'000, a.free_since_ns, 30'000'000), 20'000'000u);
    EXPECT_EQ(self_send_delay_ns(6'000'000, b.free_since_ns, 30'000'000), 10'000'000u);
    EXPECT_TRUE(slots.empty());
}

TEST(SendDueRequests, EachSendOfABurstIsDatedWhenItIsMade) {
    // Six requests due 10 us apart (0..50 us), five free slots, and a loop that gets to them
    // at 50 us; each send (a write) takes 10 us of the fake clock. The k-th send goes out at
    // 50 + 10k us: that is its send time and its self-delay, not the burst's start.
    ArrivalSchedule schedule(100'000, Arrival::Uniform, 0, 1);
    FreeSlots slots(8);
    for (uint32_t i = 0; i < 5; ++i) slots.push({i, 0, 0});
    uint64_t clock_ns = 50'000;
    auto clock = [&] { return clock_ns; };
    struct Send {
        uint64_t intended_ns, now_ns;
    };
    std::vector<Send> sends;
    uint32_t sent = send_due_requests(
        schedule, slots, UINT64_MAX, clock, [](const FreeSlot&) { return true; },
        [&](const FreeSlot&, uint64_t intended, uint64_t now) {
            sends.push_back({intended, now});
            clock_ns += 10'000;  // the write
        });
    ASSERT_EQ(sent, 5u);
    ASSERT_EQ(sends.size(), 5u);
    for (size_t k = 0; k < sends.size(); ++k) {
        EXPECT_EQ(sends[k].intended_ns, 10'000 * k);
        EXPECT_EQ(sends[k].now_ns, 50'000 + 10'000 * k) << k;
        EXPECT_EQ(self_send_delay_ns(sends[k].intended_ns, 0, sends[k].now_ns), 50'000u) << k;
    }
    EXPECT_TRUE(schedule.due(clock_ns));  // the sixth waits for a slot: the server's delay
}

TEST(SendDueRequests, AStaleSlotTakesNothingFromTheSchedule) {
    ArrivalSchedule schedule(1'000, Arrival::Uniform, 0, 1);
    FreeSlots slots(4);
    slots.push({1, 0, 0});  // its connection closed since
    slots.push({2, 0, 0});
    std::vector<uint32_t> used;
    uint32_t sent = send_due_requests(
        schedule, slots, UINT64_MAX, [] { return uint64_t{0}; },
        [](const FreeSlot& s) { return s.index != 1; },
        [&](const FreeSlot& s, uint64_t intended, uint64_t) {
            used.push_back(s.index);
            EXPECT_EQ(intended, 0u);  // the first request went to the live slot
        });
    EXPECT_EQ(sent, 1u);
    EXPECT_EQ(used, std::vector<uint32_t>{2});
    EXPECT_EQ(schedule.taken(), 1u);
}

TEST(SendDueRequests, NothingIsSentAtOrAfterTheEnd) {
    // A burst that runs into the window's end stops there: what is left is the backlog.
    ArrivalSchedule schedule(100'000, Arrival::Uniform, 0, 1);
    FreeSlots slots(8);
    for (uint32_t i = 0; i < 5; ++i) slots.push({i, 0, 0});
    uint64_t clock_ns = 50'000;
    std::vector<uint64_t> sent_at;
    uint32_t sent = send_due_requests(
        schedule, slots, 70'000, [&] { return clock_ns; }, [](const FreeSlot&) { return true; },
        [&](const FreeSlot&, uint64_t, uint64_t now) {
            sent_at.push_back(now);
            clock_ns += 10'000;
        });
    EXPECT_EQ(sent, 2u);
    EXPECT_EQ(sent_at, (std::vector<uint64_t>{50'000, 60'000}));
    EXPECT_EQ(slots.size(), 3u);
}

TEST(FreeSlots, CompactingDropsOnlyStaleEntriesAndKeepsOrder) {
    FreeSlots slots(4);
    // Wrap the ring around its end first.
    slots.push({9, 0, 1});
    slots.push({9, 0, 2});
    slots.pop();
    slots.pop();
    // Connection 1 closed (generation 0 -> 1) after two of its slots were queued.
    slots.push({1, 0, 10});
    slots.push({2, 0, 20});
    slots.push({1, 0, 30});
    slots.push({2, 0, 40});
    ASSERT_TRUE(slots.full());
    slots.compact([](const FreeSlot& f) { return !(f.index == 1 && f.generation == 0); });
    ASSERT_EQ(slots.size(), 2u);
    EXPECT_EQ(slots.pop().free_since_ns, 20u);
    EXPECT_EQ(slots.pop().free_since_ns, 40u);
    EXPECT_TRUE(slots.empty());
}

}  // namespace
