// A sweep plan and its expansion into points. Pure data: no processes, no clock, so the
// expansion is tested on its own.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mux::sweep {

// Every scenario a plan may name. A plan that names none runs kDefaultScenarios: rate is run
// only by plans that ask for it (gammo), since its points multiply (idle counts x rates).
inline const std::vector<std::string> kScenarios = {"active", "idle", "latency",
                                                    "churn",  "slow", "rate"};
inline const std::vector<std::string> kDefaultScenarios = {"active", "idle", "latency", "churn",
                                                           "slow"};

struct Plan {
    std::string name = "custom";
    std::vector<std::string> models;  // empty: every registered model
    std::vector<std::string> scenarios = kDefaultScenarios;
    std::string proto = "mux1";
    uint32_t payload_bytes = 64;
    uint32_t reply_bytes = 64;
    uint32_t work_us = 0;
    // active: every connection carries load, closed loop.
    std::vector<int> conns = {1, 10, 100, 500, 1000, 2000, 5000, 10000};
    // idle: idle_active loaded connections plus each count of idle ones.
    std::vector<int> idle_conns = {0, 100, 1000, 2000, 5000, 10000};
    int idle_active = 10;
    // latency: open loop at a fixed total rate, below saturation.
    double latency_rate_per_s = 5000;
    int latency_conns = 50;
    // churn: a new connection for every request, this many at once.
    int churn_conns = 10;
    // slow: a heavy-tailed work mix, e.g. 1% of requests burn 10 ms, open loop at a fixed
    // total rate. Open loop because a closed loop's clients stop sending while the server is
    // blocked, which hides the wait of every request that would have arrived meanwhile. The
    // rate leaves every one-thread event model below about 60% busy (bench/plans/full.toml
    // derives it).
    std::string slow_mix = "1%:10000";
    int slow_conns = 50;
    double slow_rate_per_s = 4000;
    // rate: Gammo et al.'s experiment. At each idle count, rate_active loaded connections are
    // driven open loop at each offered rate; the reply rate achieved is the figure. Each idle
    // count is a scenario of its own in the results (rate_scenario_name), so its points group
    // by rate and model like every other scenario's. No default rates: they come from a
    // measurement on the machine, so the plan must say them.
    std::vector<double> rates_per_s;
    std::vector<int> rate_idle_conns = {0};
    int rate_active = 10;

    double duration_s = 5;
    double warmup_s = 1;
    int repeats = 3;
    int loadgen_threads = 1;
    // --workers of the pool models (epoll-oneshot, reuseport); 0 passes none, so muxserver
    // takes the CPUs in its affinity mask (server_cpus). Each point records what it used.
    int workers = 0;
    std::vector<int> server_cpus = {0};
    std::vector<int> client_cpus = {1};
    double point_timeout_s = 60;

    nlohmann::json to_json() const;
};

// One run of one model: what muxload is asked to do, and which x value it plots at.
struct Point {
    std::string scenario;
    std::string model;
    std::string x_name;  // "conns", "idle_conns", "rate_per_s"
    double x_value = 0;
    int conns = 0;              // connections muxload opens
    int active = 0;             // of which carry load
    double rate_per_s = 0;      // 0: closed loop
    int requests_per_conn = 0;  // 0: unlimited; 1: churn
    std::string slow_mix;       // empty: none
    // rate: the reply rate achieved against the rate offered is the figure, so falling short
    // of the rate past saturation is what the point measures, not a fault of the run.
    bool reply_rate_is_figure = false;
    int repeat = 0;  // 0-based

    static Point at(std::string scenario, std::string x_name, double x_value, int conns,
                    int active) {
        Point p;
        p.scenario = std::move(scenario);
        p.x_name = std::move(x_name);
        p.x_value = x_value;
        p.conns = conns;
        p.active = active;
        return p;
    }

    // Connections the server holds at once, which the fd limits apply to.
    int concurrent_connections() const { return conns; }
    std::string label() const;  // "epoll-et active conns=1000 #2"
};

// Why a model cannot run a point, known before running it.
struct Refusal {
    // "fd_setsize", "one_connection_at_a_time", "fd_limit", "task_limit"; measured, by the
    // server: "io_uring_unavailable"
    std::string code;
    std::string detail;  // with the numbers
};

struct Limits {
    uint64_t fd_hard_limit = 0;  // per process; server and loadgen each need conns + headroom
    // Tasks (processes and threads) the kernel will still create: the lower of pid_max (less
    // the pids it reserves) and threads-max, less the tasks that exist, and RLIMIT_NPROC where
    // it applies. fork and threads need one per connection. 0: unknown, nothing refused.
    uint64_t tasks_available = 0;
    std::string tasks_why{};  // how tasks_available was found, with its numbers
};

// Reads the kernel's task limits for Limits (tasks_available, tasks_why).
void read_task_limits(Limits& limits);

// Points in run order: repeat, scenario, x value, then model. Models measured side by side
// share whatever the machine was doing at that moment, and each pass over the whole plan is
// one repeat, so a point's repeats lie minutes apart and sample the machine's drift, not one
// moment of it: on a shared host that drift is the noise two runs differ by.
std::vector<Point> expand_plan(const Plan& plan, const std::vector<std::string>& models);

// The scenario name a rate point records: "rate-idle-1000" for 1,000 idle connections.
std::string rate_scenario_name(int idle_conns);

// What makes a plan unrunnable, said with its numbers ("the rate scenario needs rates"), or
// nullopt. Checked before the first point runs.
std::optional<std::string> plan_error(const Plan& plan);

// Connection counts above the fd limit are dropped from the plan; these say which and why.
std::vector<std::string> trim_to_fd_limit(Plan& plan, const Limits& limits);

std::optional<Refusal> predicted_refusal(const Point& point, const Limits& limits);

// Fds a process needs beyond its connections: stdio, listener, epoll, reserve, slack.
inline constexpr int kFdHeadroom = 32;
// Tasks a point needs beyond one per connection: the server's own, muxload's threads, and
// room for whatever else starts on the machine meanwhile.
inline constexpr int kTaskHeadroom = 64;

}  // namespace mux::sweep
