#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "models.hpp"
#include "plan.hpp"
#include "point_runner.hpp"
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
    plan.slow_rate_per_s = 1234;
    auto points = expand_plan(plan, {"fork"});
    ASSERT_EQ(points.size(), 3u);
    EXPECT_EQ(points[0].rate_per_s, plan.latency_rate_per_s);
    EXPECT_EQ(points[1].requests_per_conn, 1);
    EXPECT_EQ(points[1].rate_per_s, 0);
    // slow runs open loop at its own rate, which is where it sits on its chart.
    EXPECT_EQ(points[2].slow_mix, plan.slow_mix);
    EXPECT_EQ(points[2].rate_per_s, 1234);
    EXPECT_EQ(points[2].x_name, "rate_per_s");
    EXPECT_EQ(points[2].x_value, 1234);
    EXPECT_EQ(points[2].conns, plan.slow_conns);
    EXPECT_EQ(points[2].active, plan.slow_conns);
    EXPECT_EQ(plan.to_json()["slow_rate_per_s"], 1234);
}

namespace {
// muxbench's own parsing: --plan on the top level, the plan's [sweep] keys on the subcommand.
// Returns the CLI11 error text, empty when the command line parsed.
std::string parse_sweep(std::vector<std::string> args, mux::sweep::SweepOptions& options) {
    CLI::App app;
    mux::sweep::add_plan_option(app);
    CLI::App* sweep = app.add_subcommand("sweep");
    sweep->fallthrough();
    mux::sweep::setup_sweep(*sweep, options);
    args.insert(args.begin(), "sweep");
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    try {
        app.parse(args);
    } catch (const CLI::ParseError& e) {
        return e.what();
    }
    return "";
}

std::filesystem::path write_plan(const std::string& name, const std::string& text) {
    auto path = std::filesystem::temp_directory_path() /
                ("muxbench-plan-test-" + std::to_string(getpid()) + "-" + name + ".toml");
    std::ofstream(path) << text;
    return path;
}

// The number a plan file gives its key, read as text, so a key the parser ignores shows.
std::optional<double> plan_number(const std::string& path, const std::string& key) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(key + " ")) return std::stod(line.substr(line.find('=') + 1));
    return std::nullopt;
}

bool has_pair(const std::vector<std::string>& argv, const std::string& flag,
              const std::string& value) {
    for (size_t i = 0; i + 1 < argv.size(); ++i)
        if (argv[i] == flag && argv[i + 1] == value) return true;
    return false;
}
}  // namespace

TEST(SweepPlan, APlanFileSetsTheSlowRate) {
    auto path = write_plan("slow-rate", "[sweep]\nname = \"t\"\nslow-rate = 1234\n");
    mux::sweep::SweepOptions options;
    EXPECT_EQ(parse_sweep({"--plan", path.string()}, options), "");
    EXPECT_EQ(options.plan.slow_rate_per_s, 1234);
    EXPECT_EQ(options.plan.name, "t");
    // The command line overrides the plan.
    mux::sweep::SweepOptions overridden;
    EXPECT_EQ(parse_sweep({"--plan", path.string(), "--slow-rate", "900"}, overridden), "");
    EXPECT_EQ(overridden.plan.slow_rate_per_s, 900);
    // Open loop needs a rate: 0 or less is refused with the option's name.
    for (const char* bad : {"0", "-5"}) {
        mux::sweep::SweepOptions refused;
        EXPECT_NE(parse_sweep({"--slow-rate", bad}, refused).find("--slow-rate"), std::string::npos)
            << bad;
    }
    std::filesystem::remove(path);
}

// Every shipped plan states its slow rate, and muxbench reads the rate the file states.
TEST(SweepPlan, EveryShippedPlanSetsTheSlowRate) {
    for (const char* name : {"quick", "full", "check"}) {
        SCOPED_TRACE(name);
        std::string path = mux::sweep::plan_path(name);
        auto stated = plan_number(path, "slow-rate");
        ASSERT_TRUE(stated) << path << " has no slow-rate";
        mux::sweep::SweepOptions options;
        ASSERT_EQ(parse_sweep({"--plan", name}, options), "");
        EXPECT_EQ(options.plan.name, name);
        EXPECT_EQ(options.plan.slow_rate_per_s, *stated);
        EXPECT_GT(options.plan.slow_rate_per_s, 0);
    }
}

// muxload is told the rate for the open-loop scenarios (latency, slow) and for no other.
TEST(SweepPlan, TheRateReachesMuxloadOnlyForOpenLoopScenarios) {
    Plan plan;
    plan.conns = {10};
    plan.idle_conns = {100};
    plan.latency_rate_per_s = 2500;
    plan.slow_rate_per_s = 4000;
    plan.repeats = 1;
    mux::sweep::Binaries bin{"muxserver", "muxload"};
    auto points = expand_plan(plan, {"poll"});
    ASSERT_EQ(points.size(), 5u);
    for (const auto& p : points) {
        SCOPED_TRACE(p.scenario);
        auto argv = mux::sweep::loadgen_argv(p, plan, bin, "tcp:127.0.0.1:1", "/tmp/r.json");
        bool has_rate = std::find(argv.begin(), argv.end(), "--rate") != argv.end();
        if (p.scenario == "slow") {
            EXPECT_TRUE(has_pair(argv, "--rate", "4000"));
            EXPECT_TRUE(has_pair(argv, "--slow", "1%:10000"));
            EXPECT_TRUE(has_pair(argv, "--conns", std::to_string(plan.slow_conns)));
        } else if (p.scenario == "latency") {
            EXPECT_TRUE(has_pair(argv, "--rate", "2500"));
        } else {
            EXPECT_FALSE(has_rate) << "closed-loop scenario given a rate";
        }
        EXPECT_EQ(std::find(argv.begin(), argv.end(), "--slow") != argv.end(),
                  p.scenario == "slow");
    }
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
    // slow-pools: the slow scenario alone, every model, the pools at 4 workers.
    Plan pools = parse_plan(mux::sweep::plan_path("slow-pools"));
    EXPECT_TRUE(pools.models.empty());
    EXPECT_EQ(pools.scenarios, std::vector<std::string>{"slow"});
    EXPECT_EQ(pools.workers, 4);
    EXPECT_GT(pools.slow_rate_per_s, 0);
}

// --- the rate scenario (Gammo et al.): an open-loop rate sweep at each idle count

namespace {
Plan rate_plan() {
    Plan plan;
    plan.scenarios = {"rate"};
    plan.rate_idle_conns = {0, 1000};
    plan.rates_per_s = {1000, 5000, 20000};
    plan.rate_active = 10;
    plan.repeats = 1;
    return plan;
}
}  // namespace

TEST(SweepPlan, RateSweepsEveryRateAtEveryIdleCount) {
    Plan plan = rate_plan();
    auto points = expand_plan(plan, {"poll", "epoll-et"});
    // 2 idle counts x 3 rates x 2 models, the rates in order at one idle count, then the next.
    ASSERT_EQ(points.size(), 12u);
    for (size_t i = 0; i < points.size(); ++i) {
        const Point& p = points[i];
        SCOPED_TRACE(p.label());
        int idle = i < 6 ? 0 : 1000;
        EXPECT_EQ(p.scenario, i < 6 ? "rate-idle-0" : "rate-idle-1000");
        EXPECT_EQ(p.x_name, "rate_per_s");
        EXPECT_EQ(p.x_value, plan.rates_per_s[(i / 2) % 3]);
        EXPECT_EQ(p.rate_per_s, p.x_value);  // the offered rate is where it plots
        EXPECT_EQ(p.active, 10);
        EXPECT_EQ(p.conns, idle + 10);  // the idle count is conns - active
        EXPECT_TRUE(p.reply_rate_is_figure);
        EXPECT_EQ(p.requests_per_conn, 0);
        EXPECT_TRUE(p.slow_mix.empty());
    }
    // muxload opens every connection, loads rate_active of them, open loop at the rate.
    mux::sweep::Binaries bin{"muxserver", "muxload"};
    auto argv = mux::sweep::loadgen_argv(points[11], plan, bin, "tcp:127.0.0.1:1", "/tmp/r.json");
    EXPECT_TRUE(has_pair(argv, "--rate", "20000"));
    EXPECT_TRUE(has_pair(argv, "--conns", "1010"));
    EXPECT_TRUE(has_pair(argv, "--active", "10"));
    // The plan records what it swept.
    auto j = plan.to_json();
    EXPECT_EQ(j["rates_per_s"], nlohmann::json({1000, 5000, 20000}));
    EXPECT_EQ(j["rate_idle_conns"], nlohmann::json({0, 1000}));
    EXPECT_EQ(j["rate_active"], 10);
    // No other scenario says its reply rate is the figure.
    for (const auto& p : expand_plan(small_plan(), {"poll"})) EXPECT_FALSE(p.reply_rate_is_figure);
}

TEST(SweepPlan, RateRunsOnlyWhenAPlanAsksAndNeedsItsRates) {
    // A plan that names no scenarios runs the five it always did: rate multiplies points.
    EXPECT_EQ(Plan{}.scenarios,
              (std::vector<std::string>{"active", "idle", "latency", "churn", "slow"}));
    EXPECT_FALSE(mux::sweep::plan_error(Plan{}));
    EXPECT_FALSE(mux::sweep::plan_error(rate_plan()));
    auto error_of = [](auto change) {
        Plan plan = rate_plan();
        change(plan);
        return mux::sweep::plan_error(plan).value_or("");
    };
    EXPECT_NE(error_of([](Plan& p) { p.rates_per_s.clear(); }).find("rates"), std::string::npos);
    EXPECT_NE(error_of([](Plan& p) {
                  p.rates_per_s = {1000, 0};
              }).find("not 0"),
              std::string::npos);
    EXPECT_NE(error_of([](Plan& p) { p.rate_idle_conns = {-1}; }).find("not -1"),
              std::string::npos);
    EXPECT_NE(error_of([](Plan& p) { p.rate_active = 0; }).find("not 0"), std::string::npos);
    // Rates are only needed where rate runs.
    Plan other = rate_plan();
    other.scenarios = {"active"};
    other.rates_per_s.clear();
    EXPECT_FALSE(mux::sweep::plan_error(other));
    // On the command line: rates and counts are lists; a rate of 0 or less is refused there.
    mux::sweep::SweepOptions options;
    EXPECT_EQ(parse_sweep({"--scenarios", "rate", "--rates", "2000,4000", "--rate-idle-conns",
                           "0,5000", "--rate-active", "4"},
                          options),
              "");
    EXPECT_EQ(options.plan.rates_per_s, (std::vector<double>{2000, 4000}));
    EXPECT_EQ(options.plan.rate_idle_conns, (std::vector<int>{0, 5000}));
    EXPECT_EQ(options.plan.rate_active, 4);
    for (const char* bad : {"0", "-5"}) {
        mux::sweep::SweepOptions refused;
        EXPECT_NE(parse_sweep({"--rates", bad}, refused).find("--rates"), std::string::npos) << bad;
    }
    mux::sweep::SweepOptions refused;
    EXPECT_NE(parse_sweep({"--scenarios", "rates"}, refused).find("--scenarios"),
              std::string::npos);
}

TEST(SweepPlan, FdLimitTrimsRateIdleCountsAndSaysWhy) {
    Plan plan = rate_plan();
    plan.rate_idle_conns = {0, 5000, 9990};
    plan.conns = {1};  // the other scenarios' counts fit
    plan.idle_conns = {0};
    auto notes = mux::sweep::trim_to_fd_limit(plan, Limits{10000});
    EXPECT_EQ(plan.rate_idle_conns, (std::vector<int>{0, 5000}));
    ASSERT_EQ(notes.size(), 1u);
    // 9,990 idle + 10 loaded + 32 headroom.
    EXPECT_NE(notes[0].find("rate idle conns 9990 dropped: needs 10032 fds"), std::string::npos)
        << notes[0];
}

// The gammo plan: its rates and idle counts come from its file, every idle count fits this
// machine's 20,000 fds per process, and the rates rise from well below saturation past it.
TEST(SweepPlan, GammoPlanSweepsRatesAtEachIdleCount) {
    Plan plan = parse_plan(mux::sweep::plan_path("gammo"));
    EXPECT_EQ(plan.name, "gammo");
    EXPECT_EQ(plan.scenarios, std::vector<std::string>{"rate"});
    EXPECT_FALSE(mux::sweep::plan_error(plan));
    EXPECT_EQ(plan.rate_idle_conns, (std::vector<int>{0, 1000, 5000, 10000}));
    ASSERT_GE(plan.rates_per_s.size(), 5u);
    EXPECT_TRUE(std::is_sorted(plan.rates_per_s.begin(), plan.rates_per_s.end()));
    EXPECT_GE(plan.rates_per_s.back() / plan.rates_per_s.front(), 8);
    Plan trimmed = plan;
    EXPECT_TRUE(mux::sweep::trim_to_fd_limit(trimmed, Limits{20000}).empty());
    EXPECT_EQ(trimmed.rate_idle_conns, plan.rate_idle_conns);
}
