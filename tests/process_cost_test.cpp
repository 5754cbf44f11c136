// The server's cost accounting, checked against cpu_burner, a process tree whose work is
// known: the kernel counters (perf_event_open with inherit, the run's cgroup) must give the
// syscalls exactly and the CPU within a tight bound for every shape of tree, and /proc must
// take over, said aloud, where a counter is unavailable. Counts are read while every process
// of the tree is blocked in a syscall, so the harness's own calls are known too.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "perf_counters.hpp"
#include "process_cost.hpp"
#include "run_cgroup.hpp"
#include "server_cost.hpp"
#include "server_process.hpp"
#include "test_client.hpp"

namespace {

namespace fs = std::filesystem;
using mux::sweep::Counter;
using namespace std::chrono_literals;

std::optional<std::string> read_text(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<pid_t> tree_of(pid_t root) {
    std::vector<pid_t> tree{root};
    for (size_t i = 0; i < tree.size(); ++i) {
        std::error_code ec;
        std::string tasks = "/proc/" + std::to_string(tree[i]) + "/task";
        for (const auto& task : fs::directory_iterator(tasks, ec)) {
            std::istringstream children(read_text(task.path() / "children").value_or(""));
            for (pid_t child; children >> child;) tree.push_back(child);
        }
    }
    return tree;
}

// Blocked inside a syscall (/proc/PID/syscall shows its number), a zombie, or gone.
bool blocked_in_syscall(pid_t pid) {
    std::string dir = "/proc/" + std::to_string(pid);
    auto stat = read_text(dir + "/stat");
    if (!stat) return true;
    size_t paren = stat->rfind(')');
    if (paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z')
        return true;
    auto syscall = read_text(dir + "/syscall");
    if (!syscall) return true;
    return !syscall->starts_with("running") && !syscall->starts_with("-1");
}

// Once it returns, every syscall the tree makes before it is woken is already counted.
void wait_until_tree_blocked(pid_t root) {
    for (int i = 0; i < 20'000; ++i) {
        auto tree = tree_of(root);
        bool all = true;
        for (pid_t pid : tree) all = all && blocked_in_syscall(pid);
        if (all) return;
        std::this_thread::sleep_for(500us);
    }
    FAIL() << "the burner's tree never settled in its syscalls";
}

bool perf_available(std::string* why) {
    mux::sweep::TreeCounters probe(getpid());  // not opened before exec: only asks the kernel
    if (!probe.is_open(Counter::syscalls)) {
        *why = probe.error(Counter::syscalls);
        return false;
    }
    return true;
}

struct TreeShape {
    const char* name;
    std::vector<std::string> args;
    int children;
    int exiting;
    int depth = 1;
    bool fork_late = false;
    bool nocldwait = false;
};

void PrintTo(const TreeShape& shape, std::ostream* out) {
    *out << shape.name;
}

enum class Mode { inherit, cgroup };

void PrintTo(Mode mode, std::ostream* out) {
    *out << (mode == Mode::cgroup ? "on the cgroup" : "inherited");
}

// The processes that do the work: workers, or their grandchildren at depth 2.
int leaves(const TreeShape& s) {
    return s.children;
}

// AddressSanitizer's _exit checks the alternate signal stack first (sigaltstack).
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kExitCalls = 2;
#else
constexpr uint64_t kExitCalls = 1;  // exit_group
#endif

// Every syscall the burner's harness makes between SIGUSR1 and the root's next sigwait
// (tests/cpu_burner.cpp), with glibc 2.36's fork: set_robust_list in the child.
uint64_t harness_syscalls(const TreeShape& s) {
    const uint64_t n = uint64_t(s.children), k = uint64_t(s.exiting);
    const uint64_t fork_parent = 2;  // getpid, clone
    const uint64_t fork_child = 3;   // set_robust_list, prctl(PDEATHSIG), getppid
    uint64_t root = 1 /* close(go) */ + n /* read(ready) */ + 1 /* write "done" */ +
                    1 /* rt_sigtimedwait */ + (s.nocldwait ? 0 : k) /* wait4 */;
    if (s.fork_late) root += n * fork_parent;
    uint64_t worker = 1 /* write "r" */;
    if (s.fork_late) worker += fork_child + 1 /* close(ready[0]) */ + 1 /* read(go) */;
    if (s.depth == 2)
        worker += fork_parent + 1 /* wait4 */ + fork_child /* in the leaf */ + kExitCalls;
    return root + n * worker + k * kExitCalls + (n - k) /* pause */;
}

// The harness's read and write calls (a subset of harness_syscalls).
uint64_t harness_io_calls(const TreeShape& s) {
    const uint64_t n = uint64_t(s.children);
    return n /* read(ready) */ + 1 /* "done" */ + n /* write "r" */ + (s.fork_late ? n : 0);
}

struct Window {
    mux::sweep::CounterReading start, end;
    std::optional<mux::sweep::CgroupCpu> cgroup_start, cgroup_end;
    mux::sweep::LifetimeUsage life;

    uint64_t delta(Counter c) const {
        const auto& a = start.values[size_t(c)];
        const auto& b = end.values[size_t(c)];
        EXPECT_TRUE(a && b) << mux::sweep::counter_name(c) << " unread";
        if (!a || !b) return 0;
        EXPECT_EQ(b->time_enabled_ns - a->time_enabled_ns, b->time_running_ns - a->time_running_ns)
            << mux::sweep::counter_name(c) << " was multiplexed";
        return b->value - a->value;
    }
};

std::vector<std::string> burner_args(const TreeShape& s, std::vector<std::string> work) {
    std::vector<std::string> args{mux::test::binary_path("cpu_burner"),
                                  "--children",
                                  std::to_string(s.children),
                                  "--exiting",
                                  std::to_string(s.exiting),
                                  "--depth",
                                  std::to_string(s.depth)};
    if (s.fork_late) args.push_back("--fork-late");
    if (s.nocldwait) args.push_back("--nocldwait");
    args.insert(args.end(), s.args.begin(), s.args.end());
    args.insert(args.end(), work.begin(), work.end());
    return args;
}

// Runs the burner with a cgroup and counters (inherited from the root, or on the cgroup)
// attached before it execs, and reads both while the tree is blocked before and after the
// work.
void run_burner(const std::vector<std::string>& args, Window& w, Mode mode = Mode::inherit,
                const std::vector<int>& cpus = {}) {
    mux::sweep::RunCgroup cgroup;
    if (mode == Mode::cgroup && !cgroup.ok()) GTEST_SKIP() << cgroup.error();
    mux::sweep::TreeCounters counters;
    mux::SpawnOptions options;
    options.cpus = cpus;
    std::string attach_error;
    options.before_exec = [&](pid_t pid) {
        if (cgroup.ok()) cgroup.attach(pid, &attach_error);
        counters = mode == Mode::cgroup ? mux::sweep::TreeCounters::on_cgroup(cgroup.path())
                                        : mux::sweep::TreeCounters(pid);
    };
    mux::Subprocess burner(args, options);
    ASSERT_TRUE(burner.running()) << burner.error();
    ASSERT_EQ(burner.read_line(30s).value_or("(nothing)"), "started");
    ASSERT_NO_FATAL_FAILURE(wait_until_tree_blocked(burner.pid()));
    std::string error;
    w.start = counters.read();
    w.cgroup_start = cgroup.read_cpu(&error);
    burner.send_signal(SIGUSR1);
    ASSERT_EQ(burner.read_line(60s).value_or("(nothing)"), "done");
    ASSERT_NO_FATAL_FAILURE(wait_until_tree_blocked(burner.pid()));
    w.end = counters.read(mux::sweep::TreeCounters::Edge::closing);
    EXPECT_STREQ(counters.mode(), mode == Mode::cgroup ? "cgroup" : "inherit");
    w.cgroup_end = cgroup.read_cpu(&error);
    int status = burner.stop(10s);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
    w.life = mux::sweep::lifetime_usage(burner.usage());
    EXPECT_TRUE(attach_error.empty()) << attach_error;
}

const TreeShape kShapes[] = {
    {"AliveThroughout", {}, 3, 0},
    {"SomeExitSomeLive", {}, 4, 2},
    {"BornInWindowSomeExit", {}, 4, 2, 1, true},
    {"AllExitAutoReaped", {}, 3, 3, 1, false, true},
    {"BornInWindowAutoReaped", {}, 4, 2, 1, true, true},
    {"Grandchildren", {}, 3, 1, 2},
    {"GrandchildrenBornInWindowAutoReaped", {}, 3, 2, 2, true, true},
    {"AllExitSigchldIgnored", {"--ignore-sigchld"}, 3, 3, 1, false, true},
};

// Every shape, counted both ways: inherited from the root, and on the tree's cgroup.
class KernelCounters : public testing::TestWithParam<std::tuple<TreeShape, Mode>> {
  protected:
    void SetUp() override {
        std::string why;
        if (!perf_available(&why)) GTEST_SKIP() << why;
    }
    const TreeShape& shape() const { return std::get<0>(GetParam()); }
    Mode mode() const { return std::get<1>(GetParam()); }
};

std::string shape_and_mode(const testing::TestParamInfo<std::tuple<TreeShape, Mode>>& p) {
    return std::string(std::get<0>(p.param).name) +
           (std::get<1>(p.param) == Mode::cgroup ? "_OnCgroup" : "_Inherited");
}

// Every call each process makes is counted once: living children through the kernel's walk
// of the inherited counters, exited ones folded in at exit, auto-reaped or not, grandchildren
// included, and nothing else than the harness's own documented calls.
TEST_P(KernelCounters, CountEverySyscallExactly) {
    const TreeShape& s = shape();
    constexpr uint64_t kWrites = 100, kWaitRounds = 10, kSleeps = 5;
    Window w;
    ASSERT_NO_FATAL_FAILURE(run_burner(
        burner_args(s, {"--writes", std::to_string(kWrites), "--wait-calls",
                        std::to_string(kWaitRounds), "--sleeps", std::to_string(kSleeps)}),
        w, mode()));
    const uint64_t n = uint64_t(leaves(s));
    const uint64_t waits = 8 * kWaitRounds;  // one of each of the 8 wait calls per round
    const uint64_t work = n * ((2 + kWrites) /* open, writes, close */ +
                               (2 + waits) /* epoll_create1, waits, close */ + kSleeps);
    EXPECT_EQ(w.delta(Counter::syscalls), harness_syscalls(s) + work);
    EXPECT_EQ(w.delta(Counter::wait_calls), n * waits);
    EXPECT_EQ(w.delta(Counter::io_calls), harness_io_calls(s) + n * kWrites);
    EXPECT_GE(w.delta(Counter::context_switches), n * kSleeps);  // each 1 ms sleep switches
}

// CPU: every leaf burns 100 ms of its own CPU clock. The cgroup's usage, which the sweep
// reports, is the same scheduler run time: that work plus what forking, the harness and
// exiting cost, which is bounded per process. perf's task clock counts switched-in time,
// which on a VM includes what the hypervisor stole (PARAVIRT_TIME_ACCOUNTING takes steal out
// of the scheduler's clock, not perf's): it is only bounded below. Both clocks drift from the
// process CPU clock by about 0.1%; the lower bounds allow 1%.
TEST_P(KernelCounters, CountTheWorksCpuWithinATightBound) {
    const TreeShape& s = shape();
    constexpr uint64_t kBurnMs = 100;
    Window w;
    ASSERT_NO_FATAL_FAILURE(
        run_burner(burner_args(s, {"--burn-ms", std::to_string(kBurnMs)}), w, mode()));
    const uint64_t work_ns = uint64_t(leaves(s)) * kBurnMs * 1'000'000;
    EXPECT_GE(w.delta(Counter::task_clock_ns), work_ns * 99 / 100);
    if (!w.cgroup_start || !w.cgroup_end)
        GTEST_SKIP() << "no cgroup: the task clock has no upper bound";
    const uint64_t processes = 1 + uint64_t(s.children) * uint64_t(s.depth);
    const uint64_t slack_ns = processes * 5'000'000 + 20'000'000;
    uint64_t usage_ns = (w.cgroup_end->usage_us - w.cgroup_start->usage_us) * 1000;
    EXPECT_GE(usage_ns, work_ns * 99 / 100);
    EXPECT_LE(usage_ns, work_ns + slack_ns);
    // wait4's lifetime figure holds every reaped descendant; auto-reaped children are never
    // added to it, so it bounds the window only when the root reaps.
    if (!s.nocldwait) {
        EXPECT_LE(usage_ns / 1000, w.life.user_cpu_us + w.life.system_cpu_us + 10'000);
    }
    // Spinning is user time; the split follows the scheduler ticks.
    uint64_t user = w.cgroup_end->user_us - w.cgroup_start->user_us;
    uint64_t system = w.cgroup_end->system_us - w.cgroup_start->system_us;
    EXPECT_GE(double(user), 0.5 * double(user + system));
}

// Faults: each leaf dirties 8 MiB of fresh anonymous pages (THP off for them): one fault per
// 4 KiB page at least.
TEST_P(KernelCounters, CountEveryPageFault) {
    const TreeShape& s = shape();
    Window w;
    ASSERT_NO_FATAL_FAILURE(run_burner(burner_args(s, {"--touch-mib", "8"}), w, mode()));
    EXPECT_GE(w.delta(Counter::page_faults), uint64_t(leaves(s)) * 8 * 256);
}

INSTANTIATE_TEST_SUITE_P(ProcessCost, KernelCounters,
                         testing::Combine(testing::ValuesIn(kShapes),
                                          testing::Values(Mode::inherit, Mode::cgroup)),
                         shape_and_mode);

// Threads are counted like processes: every thread is born in its process's cgroup, and an
// inherited counter is copied into every thread as into every child. Creating, starting,
// ending and joining a thread takes calls that vary with the C library (mmap, mprotect,
// clone3, set_robust_list, rseq, madvise, futex...), none of them a write or a wait call:
// those two counts stay exact (but for AddressSanitizer's own writes), and the total is
// bounded.
// AddressSanitizer checks whether memory is readable by writing it to a pipe, at a thread's
// creation and end (strace shows 16-byte writes): up to 2 writes per thread.
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kSanitizerWritesPerThread = 2;
#else
constexpr uint64_t kSanitizerWritesPerThread = 0;
#endif

class KernelCountersOnThreads : public testing::TestWithParam<Mode> {
  protected:
    void SetUp() override {
        std::string why;
        if (!perf_available(&why)) GTEST_SKIP() << why;
    }
};

TEST_P(KernelCountersOnThreads, CountEveryThreadsCalls) {
    constexpr uint64_t kThreads = 4, kWrites = 100, kWaitRounds = 10, kCallsPerThread = 40;
    const TreeShape s{"Threads", {"--threads", std::to_string(kThreads)}, 2, 1};
    Window w;
    ASSERT_NO_FATAL_FAILURE(run_burner(
        burner_args(
            s, {"--writes", std::to_string(kWrites), "--wait-calls", std::to_string(kWaitRounds)}),
        w, GetParam()));
    const uint64_t threads = uint64_t(leaves(s)) * kThreads;
    const uint64_t waits = 8 * kWaitRounds;
    EXPECT_EQ(w.delta(Counter::wait_calls), threads * waits);
    const uint64_t io_calls = harness_io_calls(s) + threads * kWrites;
    EXPECT_GE(w.delta(Counter::io_calls), io_calls);
    EXPECT_LE(w.delta(Counter::io_calls), io_calls + threads * kSanitizerWritesPerThread);
    const uint64_t known = harness_syscalls(s) + threads * ((2 + kWrites) + (2 + waits));
    EXPECT_GE(w.delta(Counter::syscalls), known);
    EXPECT_LE(w.delta(Counter::syscalls), known + threads * kCallsPerThread);
}

INSTANTIATE_TEST_SUITE_P(ProcessCost, KernelCountersOnThreads,
                         testing::Values(Mode::inherit, Mode::cgroup),
                         [](const testing::TestParamInfo<Mode>& p) {
                             return std::string(p.param == Mode::cgroup ? "OnCgroup" : "Inherited");
                         });

// A counter on a cgroup is a per-CPU counter: it sees the group only on the CPU it was opened
// for. The sweep opens one on every online CPU, so the tree is counted wherever it runs:
// pinned to each CPU in turn, the count stays exact.
TEST(KernelCounters, OnTheCgroupTheTreeIsCountedOnEveryCpu) {
    std::string why;
    if (!perf_available(&why)) GTEST_SKIP() << why;
    cpu_set_t allowed;
    ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    constexpr uint64_t kWrites = 100;
    const TreeShape s{"AliveThroughout", {}, 2, 0};
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        Window w;
        ASSERT_NO_FATAL_FAILURE(run_burner(burner_args(s, {"--writes", std::to_string(kWrites)}), w,
                                           Mode::cgroup, {cpu}));
        EXPECT_EQ(w.delta(Counter::syscalls), harness_syscalls(s) + 2 * (2 + kWrites))
            << "on cpu " << cpu;
    }
}

TEST(KernelCounters, WaitCallsFilterNamesEveryWaitCall) {
    std::string filter = mux::sweep::syscall_filter(mux::sweep::wait_syscalls());
    EXPECT_EQ(mux::sweep::wait_syscalls().size(), 8u);
    for (const auto& [name, number] : mux::sweep::wait_syscalls())
        EXPECT_NE(filter.find("id == " + std::to_string(number)), std::string::npos) << name;
}

TEST(KernelCounters, DisabledByTheEnvironmentSaysSo) {
    setenv("MUXBENCH_DISABLE_PERF", "1", 1);
    mux::sweep::TreeCounters counters(getpid());
    unsetenv("MUXBENCH_DISABLE_PERF");
    EXPECT_FALSE(counters.is_open(Counter::task_clock_ns));
    EXPECT_NE(counters.error(Counter::syscalls).find("MUXBENCH_DISABLE_PERF"), std::string::npos);
    EXPECT_FALSE(counters.read().values[0].has_value());
}

// --- the probe the sweep uses: sources, fallback, and missing figures said aloud

struct ProbeRun {
    nlohmann::json cost;
};

// The burner measured by a ServerCostProbe as a point measures its server, with `env` set
// while the probe is made.
void probe_burner(const std::vector<std::string>& args,
                  const std::vector<std::pair<const char*, const char*>>& env, ProbeRun& run) {
    for (auto [name, value] : env) setenv(name, value, 1);
    auto probe = std::make_unique<mux::sweep::ServerCostProbe>();
    mux::SpawnOptions options;
    options.before_exec = [&](pid_t pid) { probe->attach(pid); };
    mux::Subprocess burner(args, options);
    for (auto [name, value] : env) unsetenv(name);
    ASSERT_TRUE(burner.running()) << burner.error();
    ASSERT_EQ(burner.read_line(30s).value_or("(nothing)"), "started");
    probe->sample_baseline();
    ASSERT_NO_FATAL_FAILURE(wait_until_tree_blocked(burner.pid()));
    probe->mark_start();
    burner.send_signal(SIGUSR1);
    ASSERT_EQ(burner.read_line(60s).value_or("(nothing)"), "done");
    ASSERT_NO_FATAL_FAILURE(wait_until_tree_blocked(burner.pid()));
    probe->mark_end();
    probe->sample_memory();
    // The walk of a small tree against a window of a few ms: allow it the whole window. Two
    // "connections", so that the memory figures per connection exist (over one).
    run.cost = probe->to_json(1000, 2, 1e9);
    burner.stop(10s);
}

void expect_missing(const nlohmann::json& cost, const std::string& key, const std::string& says) {
    EXPECT_TRUE(cost[key].is_null()) << key << " = " << cost[key];
    ASSERT_TRUE(cost["missing"].contains(key)) << cost["missing"].dump();
    EXPECT_NE(cost["missing"][key].get<std::string>().find(says), std::string::npos)
        << key << ": " << cost["missing"][key];
}

TEST(ServerCostProbe, EveryFigureFromTheKernelCountersWhereAvailable) {
    std::string why;
    if (!perf_available(&why)) GTEST_SKIP() << why;
    ProbeRun run;
    ASSERT_NO_FATAL_FAILURE(
        probe_burner({mux::test::binary_path("cpu_burner"), "--children", "2", "--exiting", "1",
                      "--burn-ms", "50", "--writes", "10", "--wait-calls", "3"},
                     {}, run));
    const auto& c = run.cost;
    for (const char* figure :
         {"context_switches", "page_faults", "syscalls", "wait_calls", "io_calls"})
        EXPECT_EQ(c["sources"][figure], "perf") << figure;
    EXPECT_EQ(c["sources"]["memory_anon"], "proc");
    EXPECT_EQ(c["wait_calls"], 2 * 8 * 3);
    EXPECT_GE(c["cpu_us_per_request"].get<double>(), 100.0);  // 100 ms over 1000 requests
    EXPECT_EQ(c["perf"]["counters"]["task_clock_ns"]["time_enabled_ns"],
              c["perf"]["counters"]["task_clock_ns"]["time_running_ns"]);
    mux::sweep::RunCgroup probe_group;
    EXPECT_EQ(c["perf"]["mode"], probe_group.ok() ? "cgroup" : "inherit") << c["perf"].dump();
    if (probe_group.ok()) {
        EXPECT_EQ(c["sources"]["cpu"], probe_group.hierarchy());
        EXPECT_EQ(c["sources"]["cpu_split"], probe_group.hierarchy());
        EXPECT_NEAR(c["cpu_user_s"].get<double>() + c["cpu_sys_s"].get<double>(),
                    c["cpu_s"].get<double>(), 1e-6);
    } else {
        EXPECT_EQ(c["sources"]["cpu"], "perf");
    }
    // No muxload here, so no window to measure the readings' lag against: said, as for any
    // null key; every figure is there.
    auto missing = c["missing"];
    EXPECT_EQ(missing.erase("edge_lag_s"), 1u);
    EXPECT_TRUE(missing.empty()) << missing.dump();
}

// Without perf, /proc gives what it can and says so; what it cannot give is null with the
// reason, and that never takes a figure /proc did give along with it.
TEST(ServerCostProbe, WithoutPerfTheFiguresComeFromProcAndSaySo) {
    ProbeRun run;
    ASSERT_NO_FATAL_FAILURE(
        probe_burner({mux::test::binary_path("cpu_burner"), "--children", "2", "--exiting", "1",
                      "--burn-ms", "50", "--writes", "10"},
                     {{"MUXBENCH_DISABLE_PERF", "1"}, {"MUXBENCH_DISABLE_CGROUP", "1"}}, run));
    const auto& c = run.cost;
    EXPECT_EQ(c["sources"]["cpu"], "proc");
    EXPECT_EQ(c["sources"]["cpu_split"], "proc");
    EXPECT_EQ(c["sources"]["page_faults"], "proc");
    EXPECT_EQ(c["sources"]["io_calls"], "proc");
    // 2 x 50 ms, less what /proc truncates: a reaped child's CPU arrives in its reaper's
    // cutime and cstime in whole ticks (process_cost.cpp).
    EXPECT_GE(c["cpu_s"].get<double>(), 0.1 - 2.0 / double(sysconf(_SC_CLK_TCK)));
    EXPECT_GE(c["io_calls"].get<uint64_t>(), 2 * 10u);
    EXPECT_TRUE(c["sources"]["syscalls"].is_null());
    expect_missing(c, "syscalls_per_request", "MUXBENCH_DISABLE_PERF");
    expect_missing(c, "syscalls_per_request", "read and write families");
    expect_missing(c, "wait_calls", "no count of wait calls");
    // A tree with children: /proc forgets an exited child's switches.
    expect_missing(c, "context_switches_per_request", "descendants");
    EXPECT_EQ(c["perf"]["counters"].size(), 0u);
    EXPECT_EQ(c["perf"]["mode"], "none");
    EXPECT_NE(c["cgroup"]["error"].get<std::string>().find("MUXBENCH_DISABLE_CGROUP"),
              std::string::npos);
}

TEST(ServerCostProbe, WithoutPerfTheCgroupGivesTheCpu) {
    mux::sweep::RunCgroup probe_group;
    if (!probe_group.ok()) GTEST_SKIP() << probe_group.error();
    ProbeRun run;
    ASSERT_NO_FATAL_FAILURE(
        probe_burner({mux::test::binary_path("cpu_burner"), "--children", "1", "--burn-ms", "50"},
                     {{"MUXBENCH_DISABLE_PERF", "1"}}, run));
    const auto& c = run.cost;
    EXPECT_EQ(c["sources"]["cpu"], probe_group.hierarchy());
    EXPECT_EQ(c["sources"]["cpu_split"], probe_group.hierarchy());
    EXPECT_GE(c["cpu_s"].get<double>(), 0.05);
    EXPECT_EQ(c["sources"]["io_calls"], "proc");
}

// Children the kernel reaps never reach their parent's reaped totals in /proc: a tree that
// ignores SIGCHLD has no /proc CPU, faults or I/O calls, and says why.
TEST(ServerCostProbe, WithoutCountersATreeThatIgnoresSigchldHasNoProcCpu) {
    ProbeRun run;
    ASSERT_NO_FATAL_FAILURE(
        probe_burner({mux::test::binary_path("cpu_burner"), "--children", "2", "--exiting", "2",
                      "--burn-ms", "50", "--ignore-sigchld"},
                     {{"MUXBENCH_DISABLE_PERF", "1"}, {"MUXBENCH_DISABLE_CGROUP", "1"}}, run));
    for (const char* key : {"cpu_s", "cpu_user_s", "page_faults", "io_calls"})
        expect_missing(run.cost, key, "ignores SIGCHLD");
    EXPECT_EQ(run.cost["sources"]["memory_anon"], "proc");
    // Kernel and socket memory come from the cgroup alone: null and why, never 0.
    expect_missing(run.cost, "kernel_bytes", "MUXBENCH_DISABLE_CGROUP");
    expect_missing(run.cost, "socket_bytes", "MUXBENCH_DISABLE_CGROUP");
    EXPECT_TRUE(run.cost["sources"]["memory"].is_null());
}

TEST(ServerCostProbe, WithoutTheCgroupPerfGivesTheCpuAndProcItsSplit) {
    std::string why;
    if (!perf_available(&why)) GTEST_SKIP() << why;
    ProbeRun run;
    ASSERT_NO_FATAL_FAILURE(
        probe_burner({mux::test::binary_path("cpu_burner"), "--children", "1", "--burn-ms", "50"},
                     {{"MUXBENCH_DISABLE_CGROUP", "1"}}, run));
    const auto& c = run.cost;
    EXPECT_EQ(c["sources"]["cpu"], "perf");
    EXPECT_EQ(c["perf"]["mode"], "inherit");  // no cgroup to follow
    EXPECT_EQ(c["sources"]["cpu_split"], "proc");
    EXPECT_GE(c["cpu_s"].get<double>(), 0.0495);
    EXPECT_GE(c["cpu_user_s"].get<double>() + c["cpu_sys_s"].get<double>(), 0.04);
}

// The worker exits inside the window and was a child: its switches are gone from /proc, so
// the figure is refused, not understated.
TEST(ServerCostProbe, WithoutPerfATreeThatLostAChildHasNoSwitches) {
    ProbeRun run;
    ASSERT_NO_FATAL_FAILURE(probe_burner({mux::test::binary_path("cpu_burner"), "--children", "1",
                                          "--exiting", "1", "--sleeps", "20"},
                                         {{"MUXBENCH_DISABLE_PERF", "1"}}, run));
    expect_missing(run.cost, "context_switches", "descendants");
    EXPECT_EQ(run.cost["sources"]["page_faults"], "proc");
}

// A real server measured like a sweep's point, over `requests` echo round trips of one client.
nlohmann::json serve_one_client(const std::string& model, int requests, bool perf) {
    if (!perf) setenv("MUXBENCH_DISABLE_PERF", "1", 1);
    mux::sweep::ServerCostProbe probe;
    mux::SpawnOptions options;
    options.before_exec = [&](pid_t pid) { probe.attach(pid); };
    mux::test::ServerProcess server(model, "mux1", "tcp", {}, options);
    unsetenv("MUXBENCH_DISABLE_PERF");
    EXPECT_TRUE(server.started()) << server.error();
    if (!server.started()) return {};
    auto client = mux::test::Client::connect(server.address());
    EXPECT_TRUE(client.echo(1, 16));  // accepted and served once before the window
    probe.sample_baseline();
    probe.mark_start();
    for (int i = 0; i < requests; ++i) EXPECT_TRUE(client.echo(uint64_t(i) + 2, 16));
    probe.mark_end();
    probe.sample_memory();
    auto cost = probe.to_json(uint64_t(requests), 1, 1e9);
    server.stop();
    return cost;
}

TEST(ServerCostProbe, ALoneServerWithoutPerfHasItsSwitchesFromProc) {
    auto cost = serve_one_client("epoll-lt", 200, false);
    EXPECT_EQ(cost["sources"]["context_switches"], "proc");
    // Each request wakes the server from epoll_wait: a voluntary switch at least.
    EXPECT_GE(cost["context_switches"].get<uint64_t>(), 200u);
    EXPECT_EQ(cost["sources"]["io_calls"], "proc");
    EXPECT_GE(cost["io_calls_per_request"].get<double>(), 2.0);  // one read, one write
}

// One client, one request at a time: epoll-lt waits once per request (and reads and writes
// once), so its wait calls per request are about 1; the burner tests show the count exact.
TEST(ServerCostProbe, AnEpollServerWaitsAboutOncePerRequest) {
    std::string why;
    if (!perf_available(&why)) GTEST_SKIP() << why;
    auto cost = serve_one_client("epoll-lt", 500, true);
    EXPECT_EQ(cost["sources"]["wait_calls"], "perf");
    // The wait that follows the last reply before an edge may enter before or after it.
    EXPECT_GE(cost["wait_calls_per_request"].get<double>(), 0.99);
    EXPECT_LT(cost["wait_calls_per_request"].get<double>(), 2.0);
    EXPECT_GE(
        cost["syscalls_per_request"].get<double>(),
        cost["wait_calls_per_request"].get<double>() + cost["io_calls_per_request"].get<double>());
}

TEST(ServerCostProbe, NoRequestsMeansNoPerRequestFigureNotZero) {
    mux::sweep::ServerCostProbe probe;
    auto cost = probe.to_json(0, 1, 0.05);
    expect_missing(cost, "cpu_us_per_request", "measured window");
    EXPECT_TRUE(cost["window_s"].is_null());
}

// --- the run's cgroup

// Dead: no such process, or a zombie waiting for init to reap it.
bool gone(pid_t pid) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    auto stat = read_text("/proc/" + std::to_string(pid) + "/stat").value_or("");
    size_t paren = stat.rfind(')');
    return paren == std::string::npos || (paren + 2 < stat.size() && stat[paren + 2] == 'Z');
}

// A root killed with SIGKILL leaves its children to init; the group's removal kills them: by
// cgroup.kill on v2, by each pid of cgroup.procs on v1. `leave_out` is "" or "cgroup2".
void expect_removed_with_everything_in_it(const char* leave_out) {
    std::string path;
    std::vector<pid_t> members;
    {
        if (*leave_out) setenv("MUXBENCH_DISABLE_CGROUP", leave_out, 1);
        mux::sweep::RunCgroup cgroup;
        unsetenv("MUXBENCH_DISABLE_CGROUP");
        if (!cgroup.ok()) GTEST_SKIP() << cgroup.error();
        path = cgroup.path();
        EXPECT_TRUE(fs::is_directory(path));
        EXPECT_NE(path.find("muxbench-" + std::to_string(getpid()) + "-"), std::string::npos);
        mux::SpawnOptions options;
        options.before_exec = [&](pid_t pid) {
            std::string error;
            EXPECT_TRUE(cgroup.attach(pid, &error)) << error;
        };
        auto burner = std::make_unique<mux::Subprocess>(
            std::vector<std::string>{mux::test::binary_path("cpu_burner"), "--children", "3"},
            options);
        ASSERT_EQ(burner->read_line(30s).value_or("(nothing)"), "started");
        members = cgroup.processes();
        EXPECT_EQ(members.size(), 4u);
        burner.reset();  // SIGKILL to the root only
    }
    EXPECT_FALSE(fs::exists(path));
    for (pid_t pid : members) {
        for (int i = 0; i < 1000 && !gone(pid); ++i) std::this_thread::sleep_for(1ms);
        EXPECT_TRUE(gone(pid)) << pid << " outlived its cgroup";
    }
}

TEST(RunCgroup, IsRemovedWithEverythingLeftInIt) {
    expect_removed_with_everything_in_it("");
}

TEST(RunCgroup, OnCgroupV1TooIsRemovedWithEverythingLeftInIt) {
    expect_removed_with_everything_in_it("cgroup2");
}

TEST(RunCgroup, StaleGroupsOfDeadSweepsAreRemovedOthersKept) {
    mux::sweep::RunCgroup mine;
    if (!mine.ok()) GTEST_SKIP() << mine.error();
    fs::path parent = fs::path(mine.path()).parent_path();
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, nullptr, 0);
    fs::path stale = parent / ("muxbench-" + std::to_string(dead) + "-0");
    fs::path not_ours = parent / "muxbench-notes";
    ASSERT_EQ(mkdir(stale.c_str(), 0755), 0) << stale << ": " << std::strerror(errno);
    ASSERT_EQ(mkdir(not_ours.c_str(), 0755), 0) << not_ours << ": " << std::strerror(errno);
    std::vector<std::string> errors;
    auto removed = mux::sweep::remove_stale_cgroups(&errors);
    EXPECT_TRUE(errors.empty()) << errors.front();
    EXPECT_FALSE(fs::exists(stale));
    EXPECT_NE(std::find(removed.begin(), removed.end(), stale.string()), removed.end());
    EXPECT_TRUE(fs::exists(mine.path()));  // its creator (this test) is alive
    EXPECT_TRUE(fs::exists(not_ours));
    rmdir(not_ours.c_str());
}

// A killed sweep's pid is soon another process's: a fork point starts thousands of processes
// and pid_max is 32,768 here. A group holding a process that started before the process now
// bearing the group's pid was not made by it, whatever the pid says: it is stale. A group
// whose creator is alive keeps what it holds.
TEST(RunCgroup, AStaleGroupWhosePidWasReusedIsRemoved) {
    mux::sweep::RunCgroup mine;
    if (!mine.ok()) GTEST_SKIP() << mine.error();
    fs::path parent = fs::path(mine.path()).parent_path();
    mux::SpawnOptions options;
    options.kill_with_parent = true;
    mux::Subprocess server({"/bin/sleep", "60"}, options);  // what the killed sweep left
    mux::Subprocess mine_server({"/bin/sleep", "60"}, options);
    std::string error;
    ASSERT_TRUE(mine.attach(mine_server.pid(), &error)) << error;
    // /proc's start times are in ticks of 1/CLK_TCK s: the pid's new bearer starts later.
    std::this_thread::sleep_for(50ms);
    mux::Subprocess reuser({"/bin/sleep", "60"}, options);
    ASSERT_TRUE(server.running() && reuser.running());
    fs::path stale = parent / ("muxbench-" + std::to_string(reuser.pid()) + "-0");
    ASSERT_EQ(mkdir(stale.c_str(), 0755), 0) << stale << ": " << std::strerror(errno);
    std::ofstream(stale / "cgroup.procs") << server.pid() << std::endl;
    std::vector<std::string> errors;
    auto removed = mux::sweep::remove_stale_cgroups(&errors);
    EXPECT_TRUE(errors.empty()) << errors.front();
    EXPECT_FALSE(fs::exists(stale));
    EXPECT_NE(std::find(removed.begin(), removed.end(), stale.string()), removed.end());
    EXPECT_TRUE(server.wait(5s).has_value()) << "what the stale group held still runs";
    EXPECT_TRUE(fs::exists(mine.path()));
    EXPECT_TRUE(mine_server.running() && !mine_server.wait(0ms).has_value());
    EXPECT_TRUE(reuser.running() && !reuser.wait(0ms).has_value());
    if (fs::exists(stale)) {  // before the fix: leave nothing behind
        server.send_signal(SIGKILL);
        server.wait(5s);
        rmdir(stale.c_str());
    }
}

// Where v2 is left out, v1's cpuacct gives the CPU; perf's counters cannot follow a cpuacct
// group (perf_event is not on that hierarchy), so they are inherited instead, and say why.
TEST(ServerCostProbe, OnCgroupV1TheCpuComesFromCpuacctAndTheCountersAreInherited) {
    setenv("MUXBENCH_DISABLE_CGROUP", "cgroup2", 1);
    mux::sweep::RunCgroup v1;
    unsetenv("MUXBENCH_DISABLE_CGROUP");
    if (!v1.ok()) GTEST_SKIP() << v1.error();
    EXPECT_EQ(v1.hierarchy(), "cgroup1");
    ProbeRun run;
    ASSERT_NO_FATAL_FAILURE(
        probe_burner({mux::test::binary_path("cpu_burner"), "--children", "1", "--burn-ms", "50"},
                     {{"MUXBENCH_DISABLE_CGROUP", "cgroup2"}}, run));
    const auto& c = run.cost;
    EXPECT_EQ(c["sources"]["cpu"], "cgroup1");
    EXPECT_EQ(c["sources"]["cpu_split"], "cgroup1");
    EXPECT_GE(c["cpu_s"].get<double>(), 0.0495);
    std::string why;
    if (!perf_available(&why)) return;
    EXPECT_EQ(c["perf"]["mode"], "inherit");
    EXPECT_TRUE(c["perf"].contains("cgroup_mode_error")) << c["perf"].dump();
    EXPECT_EQ(c["sources"]["syscalls"], "perf");
}

TEST(RunCgroup, DisabledByTheEnvironmentSaysSo) {
    setenv("MUXBENCH_DISABLE_CGROUP", "1", 1);
    mux::sweep::RunCgroup cgroup;
    unsetenv("MUXBENCH_DISABLE_CGROUP");
    EXPECT_FALSE(cgroup.ok());
    EXPECT_NE(cgroup.error().find("MUXBENCH_DISABLE_CGROUP"), std::string::npos);
}

// --- /proc, still used for memory and as the fallback

TEST(ProcessCost, MemoryOfALivingChildIsItsProportionalSetSize) {
    constexpr uint64_t kMiB = 1 << 20;
    mux::Subprocess burner(
        {mux::test::binary_path("cpu_burner"), "--children", "1", "--touch-mib", "50"});
    ASSERT_EQ(burner.read_line(30s).value_or("(nothing)"), "started");
    auto start = mux::sweep::sample_process_tree(burner.pid());
    burner.send_signal(SIGUSR1);
    ASSERT_EQ(burner.read_line(60s).value_or("(nothing)"), "done");
    auto end = mux::sweep::sample_process_tree(burner.pid());
    auto cost = mux::sweep::cost_between(start, end);
    burner.stop(10s);
    ASSERT_EQ(end.processes.size(), 2u);
    // 50 MiB of private pages: the child's own Pss holds them (whole KiB; 1 MiB covers it).
    EXPECT_GE(end.processes[1].pss_bytes, 49 * kMiB);
    // The tree's growth also carries the root's own allocator moves (ASan returned 0.4 MiB).
    EXPECT_GE(cost.end_pss_bytes, cost.start_pss_bytes + 45 * kMiB);
    // They are anonymous pages, which the tree's Pss_Anon counts once.
    EXPECT_GE(end.processes[1].anon_pss_bytes, 49 * kMiB);
    std::string why;
    auto anon_start = mux::sweep::tree_anon_bytes(start, &why);
    auto anon_end = mux::sweep::tree_anon_bytes(end, &why);
    ASSERT_TRUE(anon_start && anon_end) << why;
    EXPECT_GE(*anon_end, *anon_start + 45 * kMiB);
    EXPECT_GE(cost.page_faults, 50u * 256);  // the child's faults, from /proc
}

TEST(ProcessCost, PeakRssOfTheRootOutlivesTheMemory) {
    mux::Subprocess burner(
        {mux::test::binary_path("cpu_burner"), "--children", "1", "--root-touch-mib", "50"});
    ASSERT_EQ(burner.read_line(30s).value_or("(nothing)"), "started");
    auto start = mux::sweep::sample_process_tree(burner.pid());
    auto cost = mux::sweep::cost_between(start, mux::sweep::sample_process_tree(burner.pid()));
    burner.stop(10s);
    const auto& root = start.processes.front();
    EXPECT_EQ(cost.root_peak_rss_bytes, root.peak_rss_bytes);
    EXPECT_GE(root.peak_rss_bytes, root.rss_bytes + 40 * (1u << 20));  // unmapped before "started"
}

// /proc's CPU sum rule: a child reaped in the window lands in its reaper's cutime.
TEST(ProcessCost, FallbackCpuHoldsAReapedChild) {
    mux::Subprocess burner({mux::test::binary_path("cpu_burner"), "--children", "2", "--exiting",
                            "2", "--burn-ms", "100"});
    ASSERT_EQ(burner.read_line(30s).value_or("(nothing)"), "started");
    auto start = mux::sweep::sample_process_tree(burner.pid());
    burner.send_signal(SIGUSR1);
    ASSERT_EQ(burner.read_line(60s).value_or("(nothing)"), "done");
    auto end = mux::sweep::sample_process_tree(burner.pid());
    auto cost = mux::sweep::cost_between(start, end);
    burner.stop(10s);
    EXPECT_FALSE(cost.problems.contains("cpu")) << cost.problems["cpu"];
    EXPECT_GE(cost.user_cpu_us + cost.system_cpu_us, 180'000u);
    EXPECT_TRUE(cost.problems.contains("context_switches"));
}

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
    for (const char* figure : {"cpu", "page_faults", "io_calls", "context_switches", "memory"}) {
        ASSERT_TRUE(cost.problems.contains(figure)) << figure;
        EXPECT_NE(cost.problems[figure].find(std::to_string(start.root)), std::string::npos);
    }
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
    EXPECT_EQ(life.max_rss_bytes, 2u << 20);
}

}  // namespace
