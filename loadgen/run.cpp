#include "run.hpp"

#include <poll.h>
#include <unistd.h>

#include <barrier>
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

#include "codec.hpp"
#include "environment.hpp"
#include "net.hpp"
#include "worker.hpp"

namespace mux::load {

namespace {

// Spare descriptors beyond the connections: epoll sets, stdio, the JSON file.
constexpr uint64_t kSpareFds = 32;
constexpr double kBoundUtilisation = 0.9;

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
        // Open-loop rate follows the active connections, so no thread is asked for more
        // than its connections could carry relative to the others.
        p.rate_per_s = o.rate_per_s * p.active / active;
        first += p.active + p.idle;
    }
    return plans;
}

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

void judge(const LoadOptions& o, Stats* s) {
    for (size_t t = 0; t < s->thread_utilisation.size(); ++t)
        if (s->thread_utilisation[t] >= kBoundUtilisation)
            s->bound_reasons.push_back(
                "loadgen thread " + std::to_string(t) + " at " +
                std::to_string(int(std::lround(s->thread_utilisation[t] * 100))) + "% CPU");
    if (o.open_loop() && s->sends > 0 && double(s->late_sends) > kLateSendShare * double(s->sends))
        s->bound_reasons.push_back("open-loop schedule behind: " + std::to_string(s->late_sends) +
                                   " of " + std::to_string(s->sends) +
                                   " sends more than 1 ms late with a connection free");
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

}  // namespace

int exit_code_for(const Stats& s) {
    return s.completed && s.total_errors() == 0 ? kExitOk : kExitIncomplete;
}

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
    std::vector<std::unique_ptr<Worker>> workers;
    for (const WorkerPlan& plan : plan_workers(o))
        workers.push_back(std::make_unique<Worker>(o, codec, *address, plan, seconds));

    uint64_t start = now_ns();
    uint64_t ramp_deadline = start + uint64_t(o.ramp_timeout_s * 1e9);
    RunTimes times;
    uint64_t ready = 0;
    auto on_ramped = [&]() noexcept {
        times.run_start_ns = now_ns();
        times.window_start_ns = times.run_start_ns + uint64_t(o.warmup_s * 1e9);
        times.window_end_ns = times.window_start_ns + uint64_t(o.duration_s * 1e9);
        for (auto& w : workers) ready += w->ready_connections();
    };
    std::barrier ramped(std::ptrdiff_t(workers.size() + 1), on_ramped);
    std::vector<std::thread> threads;
    for (auto& w : workers)
        threads.emplace_back([&, worker = w.get()] {
            worker->ramp(ramp_deadline);
            ramped.arrive_and_wait();
            worker->run(times);
        });
    ramped.arrive_and_wait();
    double connect_time_s = double(times.run_start_ns - start) / 1e9;
    sleep_until_ns(times.window_start_ns);
    emit(events, {{"event", "measure_start"},
                  {"pid", getpid()},
                  {"t_ns", now_ns()},
                  {"connect_time_s", connect_time_s},
                  {"connections_ready", ready}});
    sleep_until_ns(times.window_end_ns);
    emit(events, {{"event", "measure_end"}, {"pid", getpid()}, {"t_ns", now_ns()}});
    for (auto& t : threads) t.join();
    // The connections close when the workers are destroyed, after this function. A server
    // with a process per connection loses those processes as they close, so a driver that
    // samples the server at measure_end asks us to wait until it is done.
    if (o.hold_after_window) wait_for_stdin_eof(10'000);

    Stats& s = out.stats;
    s = std::move(workers[0]->stats());
    for (size_t i = 1; i < workers.size(); ++i) s.merge(workers[i]->stats());
    s.open_loop = o.open_loop();
    s.duration_s = double(times.window_end_ns - times.window_start_ns) / 1e9;
    s.throughput_per_s = double(s.requests) / s.duration_s;
    s.connect_time_s = connect_time_s;
    s.connections_wanted = o.conns;
    s.connections_at_start = ready;
    s.completed = ready == o.conns && s.requests > 0;
    judge(o, &s);
    out.doc = result_json(s, to_json(o), describe_environment());
    out.exit_code = exit_code_for(s);
    return out;
}

}  // namespace mux::load
