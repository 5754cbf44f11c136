// /proc accounting of a process tree, checked against cpu_burner, whose cost is known.
// Only bounds that noise cannot break: a busy machine adds CPU, never removes it, and the
// cost of a window can never exceed what wait4 reports for the burner's whole life.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include "process_cost.hpp"
#include "server_process.hpp"

namespace {

using mux::sweep::ServerCost;
using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1 << 20;

struct BurnerRun {
    mux::sweep::ProcessTreeSample start, end;
    ServerCost cost;
    mux::sweep::LifetimeUsage life;
};

// Samples the burner's tree before it works (after "started") and after it is done. With a
// recorder, the switches of tasks that exited in between come from taskstats.
void run_burner(std::vector<std::string> args, BurnerRun& run,
                mux::sweep::TaskExitRecorder* recorder = nullptr) {
    args.insert(args.begin(), mux::test::binary_path("cpu_burner"));
    mux::Subprocess burner(args);
    ASSERT_TRUE(burner.running()) << burner.error();
    ASSERT_EQ(burner.read_line(30s).value_or("(nothing)"), "started");
    if (recorder) recorder->take();
    run.start = mux::sweep::sample_process_tree(burner.pid());
    burner.send_signal(SIGUSR1);
    ASSERT_EQ(burner.read_line(60s).value_or("(nothing)"), "done");
    run.end = mux::sweep::sample_process_tree(burner.pid());
    mux::sweep::TaskExits exits;
    if (recorder) exits = recorder->take();
    int status = burner.stop(10s);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
    run.cost = recorder ? mux::sweep::cost_between(run.start, run.end, exits)
                        : mux::sweep::cost_between(run.start, run.end);
    run.life = mux::sweep::lifetime_usage(burner.usage());
    EXPECT_TRUE(run.cost.problems.empty()) << run.cost.problems.front();
}

uint64_t cpu_us(const ServerCost& c) {
    return c.user_cpu_us + c.system_cpu_us;
}

// /proc truncates each of utime and stime to a tick, per process and per sample, so the
// start sample may under-read by 2 ticks for each process it holds.
uint64_t truncation_slack_us(const BurnerRun& run) {
    return 2 * run.start.processes.size() * 1'000'000 / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
}

struct TreeShape {
    const char* name;
    std::vector<std::string> args;
    int appeared;
    int vanished;
};

// Names the shape in gtest's output instead of dumping its bytes.
void PrintTo(const TreeShape& shape, std::ostream* out) {
    *out << shape.name;
}

std::string shape_name(const testing::TestParamInfo<TreeShape>& shape) {
    return shape.param.name;
}

class TwoChildrenBurn : public testing::TestWithParam<TreeShape> {};

// The check: 0.2 s of work across 2 children is measured as at least 0.18 s.
TEST_P(TwoChildrenBurn, CpuIsAtLeastTheWorkAndAtMostTheLifetime) {
    std::vector<std::string> args{"--children", "2", "--burn-ms", "100"};
    args.insert(args.end(), GetParam().args.begin(), GetParam().args.end());
    BurnerRun run;
    ASSERT_NO_FATAL_FAILURE(run_burner(args, run));
    EXPECT_GE(cpu_us(run.cost), 180'000u);
    // Counting a reaped child both alive and in its reaper's cutime would break this.
    EXPECT_LE(cpu_us(run.cost),
              run.life.user_cpu_us + run.life.system_cpu_us + truncation_slack_us(run));
    EXPECT_EQ(run.cost.descendants_appeared, GetParam().appeared);
    EXPECT_EQ(run.cost.descendants_vanished, GetParam().vanished);
    EXPECT_EQ(run.cost.switches_complete, GetParam().vanished == 0);
}

INSTANTIATE_TEST_SUITE_P(
    ProcessCost, TwoChildrenBurn,
    testing::Values(TreeShape{"AliveThroughout", {}, 0, 0},
                    TreeShape{"BornInWindowAliveAtEnd", {"--fork-late"}, 2, 0},
                    TreeShape{"AliveAtStartReapedByEnd", {"--reap"}, 0, 2},
                    TreeShape{"BornAndReapedInWindow", {"--fork-late", "--reap"}, 0, 0},
                    TreeShape{"GrandchildrenReapedThroughRoot", {"--depth", "2", "--reap"}, 0, 2},
                    TreeShape{"GrandchildrenReapedByLivingChildren", {"--depth", "2"}, 0, 0}),
    shape_name);

// Like fork with many connections: each child uses far less than a tick of CPU in the
// window. Reading utime/stime in whole ticks truncates each child and lost most of the total
// (a fork point read 0 µs per request); the exact run time must not.
TEST(ProcessCost, ManySmallChildrenAddUpExactly) {
    BurnerRun run;
    ASSERT_NO_FATAL_FAILURE(run_burner({"--children", "64", "--burn-ms", "4"}, run));
    // 64 x 4 ms = 256 ms of work, all of it in children alive at both samples.
    EXPECT_GE(cpu_us(run.cost), 230'000u);
    EXPECT_LE(cpu_us(run.cost), run.life.user_cpu_us + run.life.system_cpu_us + 20'000u);
}

class ThousandWrites : public testing::TestWithParam<TreeShape> {};

// syscw of the tree holds a descendant's writes whether it is alive or was reaped, even
// through two levels of reaping (the kernel adds a reaped child's ioac to its parent's).
TEST_P(ThousandWrites, WriteSyscallsAreCountedOnce) {
    std::vector<std::string> args{"--children", "1", "--writes", "1000"};
    args.insert(args.end(), GetParam().args.begin(), GetParam().args.end());
    BurnerRun run;
    ASSERT_NO_FATAL_FAILURE(run_burner(args, run));
    EXPECT_GE(run.cost.write_syscalls, 1000u);
    EXPECT_LT(run.cost.write_syscalls, 2000u) << "counted twice";
    EXPECT_GE(mux::sweep::syscalls_per_request(run.cost, 1000), 1.0);
}

INSTANTIATE_TEST_SUITE_P(
    ProcessCost, ThousandWrites,
    testing::Values(TreeShape{"ByLivingChild", {}, 0, 0},
                    TreeShape{"ByChildReapedByRoot", {"--reap"}, 0, 0},
                    TreeShape{"ByGrandchildReapedByLivingChild", {"--depth", "2"}, 0, 0},
                    TreeShape{"ByGrandchildReapedThroughRoot", {"--depth", "2", "--reap"}, 0, 0}),
    shape_name);

// The kernel's syscr/syscw count the read and write families only: send and recv on a
// socket are invisible to them. process_cost.cpp documents this; the test keeps it honest.
TEST(ProcessCost, SocketSendIsNotCountedButWriteIs) {
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    char byte = 'x';
    auto before = mux::sweep::sample_process_tree(getpid());
    for (int i = 0; i < 100; ++i) {
        ASSERT_EQ(send(pair[0], &byte, 1, 0), 1);
        ASSERT_EQ(recv(pair[1], &byte, 1, 0), 1);
    }
    auto after_send = mux::sweep::sample_process_tree(getpid());
    for (int i = 0; i < 100; ++i) {
        ASSERT_EQ(write(pair[0], &byte, 1), 1);
        ASSERT_EQ(read(pair[1], &byte, 1), 1);
    }
    auto after_write = mux::sweep::sample_process_tree(getpid());
    close(pair[0]);
    close(pair[1]);
    auto sends = mux::sweep::cost_between(before, after_send);
    auto writes = mux::sweep::cost_between(after_send, after_write);
    EXPECT_LT(sends.write_syscalls, 100u);
    EXPECT_GE(writes.write_syscalls, 100u);
    EXPECT_GE(writes.read_syscalls, 100u);
}

TEST(ProcessCost, MemoryOfALivingChildIsItsProportionalSetSize) {
    BurnerRun run;
    ASSERT_NO_FATAL_FAILURE(run_burner({"--children", "1", "--touch-mib", "50"}, run));
    // The child's 50 MiB are private pages, so its own Pss holds all of them (Pss is reported
    // in whole KiB; 1 MiB covers the rounding many times over).
    ASSERT_EQ(run.end.processes.size(), 2u);
    EXPECT_GE(run.end.processes[1].pss_bytes, 49 * kMiB);
    // The tree's growth also carries whatever the root's own memory did between the samples:
    // under AddressSanitizer its allocator returned 0.4 MiB, so the tree grew 48.6 MiB. The
    // bound still fails if living children are left out of the sum (growth near 0).
    EXPECT_GE(run.cost.end_pss_bytes, run.cost.start_pss_bytes + 45 * kMiB);
    EXPECT_GE(mux::sweep::memory_bytes_per_connection(run.cost, 1), 45.0 * kMiB);
    EXPECT_GE(mux::sweep::memory_bytes_per_connection(run.cost, 10), 4.5 * kMiB);
    EXPECT_GE(run.cost.end_rss_bytes, 50 * kMiB);
}

TEST(ProcessCost, PeakRssOfTheRootOutlivesTheMemory) {
    BurnerRun run;
    ASSERT_NO_FATAL_FAILURE(run_burner({"--children", "1", "--root-touch-mib", "50"}, run));
    const auto& root = run.end.processes.front();
    EXPECT_EQ(run.cost.root_peak_rss_bytes, root.peak_rss_bytes);
    EXPECT_GE(root.peak_rss_bytes, root.rss_bytes + 40 * kMiB);  // unmapped before "started"
}

TEST(ProcessCost, VoluntarySwitchesOfALivingChild) {
    BurnerRun run;
    ASSERT_NO_FATAL_FAILURE(run_burner({"--children", "1", "--sleeps", "20"}, run));
    EXPECT_GE(run.cost.voluntary_switches, 20u);
    EXPECT_TRUE(run.cost.switches_complete);
    EXPECT_GE(mux::sweep::context_switches_per_request(run.cost, 20), 1.0);
    // wait4 adds the reaped child's switches: the whole life holds at least the window.
    EXPECT_GE(run.life.voluntary_switches, 20u);
}

class SwitchesOfExitedChildren : public testing::TestWithParam<TreeShape> {};

// /proc forgets a reaped child's switches; the taskstats exit records keep them. wait4's
// count for the burner's whole life (its own and every reaped descendant's) bounds them.
TEST_P(SwitchesOfExitedChildren, AreCountedFromTaskstats) {
    mux::sweep::TaskExitRecorder recorder;
    if (!recorder.ok()) GTEST_SKIP() << recorder.error();
    std::vector<std::string> args{"--children", "2", "--sleeps", "20", "--reap"};
    args.insert(args.end(), GetParam().args.begin(), GetParam().args.end());
    BurnerRun run;
    ASSERT_NO_FATAL_FAILURE(run_burner(args, run, &recorder));
    EXPECT_GE(run.cost.voluntary_switches, 40u);
    EXPECT_LE(run.cost.voluntary_switches, run.life.voluntary_switches) << "counted twice";
    EXPECT_GE(run.cost.exited_tasks_counted, 2);
    EXPECT_TRUE(run.cost.switches_complete);
}

INSTANTIATE_TEST_SUITE_P(
    ProcessCost, SwitchesOfExitedChildren,
    testing::Values(TreeShape{"AliveAtStartReapedByEnd", {}, 0, 2},
                    TreeShape{"BornAndReapedInWindow", {"--fork-late"}, 0, 0},
                    TreeShape{"GrandchildrenReapedThroughRoot", {"--depth", "2"}, 0, 2}),
    shape_name);

TEST(ProcessCost, ARootThatExitedIsReportedNotMeasured) {
    mux::Subprocess burner({mux::test::binary_path("cpu_burner"), "--children", "1"});
    ASSERT_EQ(burner.read_line(30s).value_or("(nothing)"), "started");
    auto start = mux::sweep::sample_process_tree(burner.pid());
    EXPECT_TRUE(start.root_alive);
    EXPECT_EQ(start.processes.size(), 2u);
    burner.stop(10s);
    auto end = mux::sweep::sample_process_tree(start.root);
    EXPECT_FALSE(end.root_alive);
    auto cost = mux::sweep::cost_between(start, end);
    ASSERT_FALSE(cost.problems.empty());
    EXPECT_NE(cost.problems.front().find(std::to_string(start.root)), std::string::npos);
    EXPECT_EQ(cpu_us(cost), 0u);
}

TEST(ProcessCost, DerivedFiguresDivideAndNeverDivideByZero) {
    ServerCost cost;
    cost.user_cpu_us = 1500;
    cost.system_cpu_us = 500;
    cost.read_syscalls = 300;
    cost.write_syscalls = 100;
    cost.voluntary_switches = 40;
    cost.involuntary_switches = 10;
    cost.start_pss_bytes = 1000;
    cost.end_pss_bytes = 5000;
    EXPECT_DOUBLE_EQ(mux::sweep::cpu_us_per_request(cost, 100), 20.0);
    EXPECT_DOUBLE_EQ(mux::sweep::syscalls_per_request(cost, 100), 4.0);
    EXPECT_DOUBLE_EQ(mux::sweep::context_switches_per_request(cost, 100), 0.5);
    EXPECT_DOUBLE_EQ(mux::sweep::memory_bytes_per_connection(cost, 4), 1000.0);
    EXPECT_DOUBLE_EQ(mux::sweep::cpu_us_per_request(cost, 0), 0.0);
    EXPECT_DOUBLE_EQ(mux::sweep::memory_bytes_per_connection(cost, 0), 0.0);
    cost.end_pss_bytes = 500;  // the tree shrank: no negative memory per connection
    EXPECT_DOUBLE_EQ(mux::sweep::memory_bytes_per_connection(cost, 4), 0.0);
}

TEST(ProcessCost, LifetimeUsageConvertsUnits) {
    rusage usage{};
    usage.ru_utime = {1, 250'000};
    usage.ru_stime = {0, 5};
    usage.ru_nvcsw = 7;
    usage.ru_nivcsw = 3;
    usage.ru_maxrss = 2048;
    auto life = mux::sweep::lifetime_usage(usage);
    EXPECT_EQ(life.user_cpu_us, 1'250'000u);
    EXPECT_EQ(life.system_cpu_us, 5u);
    EXPECT_EQ(life.voluntary_switches, 7u);
    EXPECT_EQ(life.involuntary_switches, 3u);
    EXPECT_EQ(life.max_rss_bytes, 2 * kMiB);
}

}  // namespace
