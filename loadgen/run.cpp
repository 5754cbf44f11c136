#include "run.hpp"

#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

#include "codec.hpp"
#include "environment.hpp"
#include "net.hpp"
#include "steady.hpp"
#include "worker.hpp"

namespace mux::load {

namespace {

// Spare descriptors beyond the connections: epoll sets, stdio, the JSON file.
constexpr uint64_t kSpareFds = 32;
// Connections in progress (opened, first reply not yet verified) over all threads: what the
// server is asked to accept at once.
constexpr uint32_t kMaxInProgress = 512;
// After the window, the replies of the requests still in flight are read for at most this
// long (or --timeout, if shorter), and recorded at their true latency. Cut off at the
// window's end, they added a short latency per connection and pipeline slot to every run:
// with 1,000 connections in a 1 s window, 7% of the histogram; over a 2 s window, the
// second that held them read min 5 ms and p1 7 ms, the second before it 24 and 36 ms (13
// and 30 ms against 27 and 32 with the drain). A server that answers has answered them well
// within a second; a stalled one delays the run's end by no more than this.
constexpr uint64_t kMaxDrainNs = 1'000'000'000;

}  // namespace

std::vector<WorkerPlan> plan_workers(const LoadOptions& o) {
    std::vector<WorkerPlan> plans(o.threads);
    uint32_t active = o.active_conns(), idle = o.conns - active, first = 0;
    for (uint32_t t = 0; t < o.threads; ++t) {
        WorkerPlan& p = plans[t];
        p.index = t;
        p.first_conn = first;
        p.active = active / o.threads + (t < active % o.threads ? 1 : 0);
        p.idle = idle / o.threads + (t < idle % o.threads ? 1 : 0);
        p.connect_rate_per_s = o.connect_rate_per_s / o.threads;
        p.max_in_progress = std::max<uint32_t>(1, kMaxInProgress / o.threads);
        // Open-loop rate follows the active connections, so no thread is asked for more
        // than its connections could carry relative to the others.
        p.rate_per_s = o.rate_per_s * p.active / active;
        first += p.active + p.idle;
    }
    std::vector<uint32_t> active_per_thread;
    for (const WorkerPlan& p : plans) active_per_thread.push_back(p.active);
    std::vector<ArrivalShare> shares = arrival_shares(active_per_thread);
    for (WorkerPlan& p : plans) p.share = std::move(shares[p.index]);
    return plans;
}

namespace {

void sleep_until_ns(uint64_t t) {
    timespec ts{time_t(t / 1'000'000'000), long(t % 1'000'000'000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

void emit(std::FILE* events, const nlohmann::json& line) {
    if (events == nullptr) return;
    std::fprintf(events, "%s\n", line.dump().c_str());
    std::fflush(events);
}

uint64_t clock_ns(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
}

uint32_t affinity_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return uint32_t(CPU_COUNT(&set));
}

// Waits until standard input reaches end-of-file, or timeout_ms passes: bounded, so a
// driver that never closes it cannot keep a run from ending.
void wait_for_stdin_eof(int timeout_ms) {
    uint64_t deadline = now_ns() + uint64_t(timeout_ms) * 1'000'000;
    char sink[256];
    for (uint64_t now = now_ns(); now < deadline; now = now_ns()) {
        pollfd pfd{STDIN_FILENO, POLLIN, 0};
        int left_ms = int((deadline - now) / 1'000'000) + 1;
        if (poll(&pfd, 1, left_ms) <= 0) continue;
        if (read(STDIN_FILENO, sink, sizeof sink) <= 0) return;
    }
}

// The steadiness check's clock: interval_ns = 0 when there is no warmup to judge.
struct SteadySchedule {
    uint64_t interval_ns = 0;
    size_t intervals = 0;  // counted per worker: the warmup and its longest extension
    uint32_t max_extensions = 0;
};

SteadySchedule steady_schedule(const LoadOptions& o) {
    SteadySchedule p;
    auto warmup_ns = uint64_t(o.warmup_s * 1e9);
    p.interval_ns = warmup_ns / kIntervalsPerWarmup;
    if (p.interval_ns == 0) return p;
    p.max_extensions =
        uint32_t(o.steady_max_extend_s * 1e9 / double(p.interval_ns * kExtensionIntervals));
    p.intervals = kIntervalsPerWarmup + size_t(p.max_extensions) * kExtensionIntervals + 1;
    return p;
}

struct SteadyOutcome {
    bool judged = false;
    uint64_t window_start_ns = 0;
    uint32_t checks = 0;
    uint64_t active_connections = 0;
    SteadyVerdict verdict;
};

// Judges the warmup (steady.hpp) at each planned window start, kAnnounceIntervals ahead,
// extending it until it is steady or the extensions run out; returns the window's start.
SteadyOutcome settle_window(const LoadOptions& o, const SteadySchedule& plan, uint64_t run_start,
                            uint64_t active_ready,
                            const std::vector<std::unique_ptr<Worker>>& workers,
                            std::FILE* events) {
    SteadyOutcome out;
    out.window_start_ns = run_start + uint64_t(o.warmup_s * 1e9);
    if (plan.interval_ns == 0) {
        out.window_start_ns = run_start;
        return out;
    }
    out.judged = true;
    out.active_connections = active_ready;
    SteadyRule rule{out.active_connections, o.open_loop(), double(plan.interval_ns) / 1e9,
                    o.rate_per_s};
    std::vector<WarmupInterval> counts;
    for (size_t end = kIntervalsPerWarmup - kAnnounceIntervals;; end += kExtensionIntervals) {
        // A quarter interval past the span's end, so replies read just before it are counted.
        sleep_until_ns(run_start + end * plan.interval_ns + plan.interval_ns / 4);
        counts.assign(end, WarmupInterval{});
        for (auto& w : workers)
            for (size_t i = 0; i < end; ++i) {
                counts[i].replies += w->warmup_counts().replies(i);
                counts[i].first_served += w->warmup_counts().first_served(i);
            }
        out.verdict = judge_steady(counts, rule);
        out.checks += 1;
        out.window_start_ns = run_start + (end + kAnnounceIntervals) * plan.interval_ns;
        if (out.verdict.steady || out.checks > plan.max_extensions) break;
        emit(events, {{"event", "warmup_extended"},
                      {"pid", getpid()},
                      {"t_ns", now_ns()},
                      {"reasons", out.verdict.reasons}});
    }
    // Published at least half an interval ahead, even when this thread ran late.
    out.window_start_ns = std::max(out.window_start_ns, now_ns() + plan.interval_ns / 2);
    return out;
}

}  // namespace

RunOutput run_load(const LoadOptions& o, std::FILE* events) {
    RunOutput out;
    uint64_t fd_soft = raise_fd_limit();
    uint64_t need = uint64_t(o.conns) + o.threads + kSpareFds;
    if (need > fd_soft) {
        out.error = "need " + std::to_string(need) + " fds (" + std::to_string(o.conns) +
                    " connections + " + std::to_string(o.threads + kSpareFds) +
                    " spare), but the fd limit is " + std::to_string(fd_soft) +
                    " after raising the soft limit to the hard limit";
        return out;
    }
    std::string error;
    auto address = resolve(o.target, &error);
    if (!address) {
        out.error = error;
        return out;
    }
    Codec codec(o);
    auto seconds = size_t(std::ceil(o.duration_s));
    SteadySchedule steady = steady_schedule(o);
    std::vector<std::unique_ptr<Worker>> workers;
    for (const WorkerPlan& plan : plan_workers(o))
        workers.push_back(
            std::make_unique<Worker>(o, codec, *address, plan, seconds, steady.intervals));

    uint64_t ramp_deadline = now_ns() + uint64_t(o.ramp_timeout_s * 1e9);
    RunTimes times;
    times.interval_ns = steady.interval_ns;
    std::atomic<uint64_t> window_start{kUndecidedNs};
    auto window_ns = uint64_t(o.duration_s * 1e9);
    uint64_t ready = 0, active_ready = 0, realtime_offset_ns = 0;
    // The ramp: from the first connect to the last connection ready. Read here, while every
    // worker waits at the barrier: a connection readied later writes its worker's figure
    // while this thread would be reading it.
    uint64_t first_connect = UINT64_MAX, last_ready = 0;
    auto on_ramped = [&]() noexcept {
        times.run_start_ns = now_ns();
        realtime_offset_ns = clock_ns(CLOCK_REALTIME) - times.run_start_ns;
        // No warmup, nothing to judge: the window starts with the load.
        if (steady.interval_ns == 0) window_start.store(times.run_start_ns);
        for (auto& w : workers) {
            ready += w->ready_connections();
            active_ready += w->ready_active_connections();
            if (w->first_connect_ns() != 0)
                first_connect = std::min(first_connect, w->first_connect_ns());
            last_ready = std::max(last_ready, w->last_ready_ns());
        }
    };
    std::barrier ramped(std::ptrdiff_t(workers.size() + 1), on_ramped);
    uint64_t drain_ns = std::min(kMaxDrainNs, uint64_t(o.timeout_ms * 1e6));
    std::vector<std::thread> threads;
    for (auto& w : workers)
        threads.emplace_back([&, worker = w.get()] {
            worker->ramp(ramp_deadline);
            ramped.arrive_and_wait();
            worker->run(times, window_start, window_ns, drain_ns);
        });
    ramped.arrive_and_wait();
    emit(events, {{"event", "warmup"}, {"pid", getpid()}, {"start_ns", times.run_start_ns}});
    // The ramp ends at the last connection ready (or at the ramp's end, when not all became
    // ready).
    uint64_t ramp_end = ready == o.conns ? last_ready : times.run_start_ns;
    double ramp_s = first_connect < ramp_end ? double(ramp_end - first_connect) / 1e9 : 0.0;

    SteadyOutcome outcome =
        settle_window(o, steady, times.run_start_ns, active_ready, workers, events);
    // This thread's own copy: the workers copy `times` as they start running, and learn the
    // window's start from the atomic alone.
    RunTimes edges = times;
    edges.window_start_ns = outcome.window_start_ns;
    edges.window_end_ns = edges.window_start_ns + window_ns;
    window_start.store(edges.window_start_ns, std::memory_order_release);
    // The window's edges, known from now: a driver that reads the server's counters can
    // wake at these instants instead of waiting for the lines below, which this thread prints
    // only once it is scheduled after each edge.
    emit(events, {{"event", "window"},
                  {"pid", getpid()},
                  {"start_ns", edges.window_start_ns},
                  {"end_ns", edges.window_end_ns}});
    sleep_until_ns(edges.window_start_ns);
    uint64_t process_cpu_start = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    emit(events, {{"event", "measure_start"},
                  {"pid", getpid()},
                  {"t_ns", now_ns()},
                  {"ramp_s", ramp_s},
                  {"connect_time_s", ramp_s},
                  {"connections_ready", ready}});
    sleep_until_ns(edges.window_end_ns);
    uint64_t process_cpu_end = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    emit(events, {{"event", "measure_end"}, {"pid", getpid()}, {"t_ns", now_ns()}});
    for (auto& t : threads) t.join();

    Stats& s = out.stats;
    s = std::move(workers[0]->stats());
    for (size_t i = 1; i < workers.size(); ++i) s.merge(workers[i]->stats());
    s.steady_judged = outcome.judged;
    s.steady = outcome.verdict.steady;
    s.unsteady_reasons = outcome.verdict.reasons;
    s.steady_checks = outcome.checks;
    s.has_last_check = outcome.judged;
    s.last_check = outcome.verdict;
    s.steady_active_connections = outcome.active_connections;
    s.warmup_s = double(edges.window_start_ns - edges.run_start_ns) / 1e9;
    s.warmup_extended_s = std::max(0.0, s.warmup_s - o.warmup_s);
    s.open_loop = o.open_loop();
    s.duration_s = double(edges.window_end_ns - edges.window_start_ns) / 1e9;
    s.window_start_unix_ns = edges.window_start_ns + realtime_offset_ns;
    s.window_end_unix_ns = edges.window_end_ns + realtime_offset_ns;
    s.throughput_per_s = double(s.requests) / s.duration_s;
    s.connect_time_s = ramp_s;
    s.process_cpu_us = double(process_cpu_end - process_cpu_start) / 1e3;
    s.cpus = affinity_cpus();
    s.connections_wanted = o.conns;
    s.connections_at_start = ready;
    s.littles_law_judged = !(o.requests_per_conn > 0 && o.pipeline > 1);
    s.completed = ready == o.conns && s.requests > 0;
    judge(&s);
    out.doc = result_json(s, to_json(o), describe_environment());
    out.exit_code = exit_code_for(s);
    // The connections are still open, and idle: a server with a process per connection
    // loses those processes as they close, so a driver that samples the server at
    // measure_end asks us to wait until it is done. They close when the workers go.
    if (o.hold_after_window) {
        // Every worker has collected its window's last replies (or given up on them), so a
        // driver may now stop or freeze the server to read it without delaying a reply
        // muxload would count: at measure_end those were still in flight.
        emit(events, {{"event", "holding"}, {"pid", getpid()}, {"t_ns", now_ns()}});
        wait_for_stdin_eof(10'000);
    }
    return out;
}

}  // namespace mux::load
