// Which source gives which figure, best first (results/README.md, `server_cost`):
//   cpu               cgroup usage, perf task clock (steal included), /proc run time
//   cpu_split         cgroup (its exact usage, split as its ticks), /proc (the same from ticks)
//   context_switches  perf, /proc (only for a tree that had no child: see process_cost.cpp)
//   page_faults       perf, /proc
//   syscalls          perf (raw_syscalls:sys_enter); nothing else counts every call
//   wait_calls        perf (sys_enter filtered to the wait calls)
//   io_calls          perf (sys_enter filtered to the I/O calls), /proc syscr + syscw
//   memory_anon       /proc (the tree's Pss_Anon), at the baseline and after the window
//   memory_kernel     the run's v1 memory cgroup (kernel and socket memory), the same
//   memory            both: memory_bytes_per_connection is anon + kernel per connection.
//                     Each reading is taken with the tree frozen (read_memory).
//                     Socket buffers (kmem.tcp) are reported beside it, never in it: they
//                     hold the data in flight when memory is read, a page per socket with a
//                     request queued, so they move with the moment of reading, not the model.
// A figure no source gives is null, and `missing` says why for each of its keys; a source's
// problem only ever moves the figures it would have given to the next source.
#include "server_cost.hpp"

#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <thread>

#include <fmt/format.h>

namespace mux::sweep {

namespace {

using json = nlohmann::json;

int64_t now_ns(clockid_t clock) {
    timespec now{};
    clock_gettime(clock, &now);
    return int64_t(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

int64_t monotonic_now_ns() {
    return now_ns(CLOCK_MONOTONIC);
}

// One figure: its values (a total, or user and system), the source that gave them, or why
// no source could.
struct Figure {
    std::vector<double> values;
    std::string source;
    std::vector<std::string> why_not;
    bool found() const { return !values.empty(); }
    void give(std::string from, std::vector<double> v) {
        if (found()) return;
        source = std::move(from);
        values = std::move(v);
    }
    void refuse(const std::string& from, const std::string& why) {
        if (!found()) why_not.push_back(from + ": " + why);
    }
};

}  // namespace

ServerCostProbe::ServerCostProbe() = default;

void ServerCostProbe::attach(pid_t pid) {
    pid_ = pid;
    bool in_cgroup = cgroup_.ok() && cgroup_.attach(pid, &attach_error_);
    if (cgroup_.ok() && !in_cgroup && attach_error_.empty())
        attach_error_ = "the server could not be moved into " + cgroup_.path();
    // Counters on the cgroup cost the tree nothing per fork; inherited ones are copied into
    // every child (perf_counters.cpp). The cgroup's are used when they all open.
    auto open_count = [](const TreeCounters& c) {
        size_t n = 0;
        for (size_t i = 0; i < kCounters; ++i) n += c.is_open(Counter(i));
        return n;
    };
    if (in_cgroup) {
        counters_ = TreeCounters::on_cgroup(cgroup_.path());
        if (open_count(counters_) == kCounters) return;
        for (size_t i = 0; i < kCounters && cgroup_mode_error_.empty(); ++i)
            cgroup_mode_error_ = counters_.error(Counter(i));
    }
    TreeCounters inherited(pid);
    if (!in_cgroup || open_count(inherited) > open_count(counters_))
        counters_ = std::move(inherited);
}

namespace {

// Waits, with the tree frozen, until what the kernel frees after an RCU grace period has been
// freed: rounds of one grace period (membarrier's MEMBARRIER_CMD_GLOBAL waits for one, where
// more than one CPU is online) and kSettlePause for the callbacks, which run after it in
// batches, until the group's kernel memory is unchanged over kSettledRounds rounds in a row,
// at most kSettleRounds. Why: a socket a failing accept4 made, with the file and inode around
// it, is freed a grace period after the call. A busy-polling server fails a million accept4s
// a second, so while it runs its group holds 1-5 MB of such frees in waiting, more the
// faster its loop turns, which is fastest with no connection to poll: its baseline read
// higher than 100 held connections. Frozen and settled, it holds what the others hold
// (in one run here: 1,445,888 B at the freeze, 1,126,400 after one grace period, 4,096 after
// the second).
constexpr auto kSettlePause = std::chrono::milliseconds(10);
constexpr auto kSettlePauseAlone = std::chrono::milliseconds(50);
constexpr int kSettledRounds = 2;
constexpr int kSettleRounds = 30;
constexpr auto kFreezeTimeout = std::chrono::seconds(5);

struct Settling {
    bool settled = false;
    int rounds = 0;
    double fell_bytes = 0;  // from the freeze to the last reading
};

Settling settle_deferred_frees(const RunCgroup& cgroup) {
    Settling out;
    std::string why;
    auto first = cgroup.read_memory(&why);
    if (!first) return out;
    uint64_t last = first->kernel_bytes;
    int unchanged = 0;
    while (out.rounds < kSettleRounds && unchanged < kSettledRounds) {
        // It waits for no grace period with one CPU online, and fails on nohz_full: a
        // round then waits kSettlePauseAlone, a few grace periods of a loaded machine.
        bool waited = syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0 &&
                      std::thread::hardware_concurrency() > 1;
        std::this_thread::sleep_for(waited ? kSettlePause : kSettlePauseAlone);
        ++out.rounds;
        auto now = cgroup.read_memory(&why);
        if (!now) return out;
        unchanged = now->kernel_bytes == last ? unchanged + 1 : 0;
        last = now->kernel_bytes;
    }
    out.settled = unchanged >= kSettledRounds;
    out.fell_bytes = double(first->kernel_bytes) - double(last);
    return out;
}

}  // namespace

ServerCostProbe::MemoryReading ServerCostProbe::read_memory() {
    MemoryReading reading;
    // Frozen, the tree allocates and frees nothing, so every part describes one instant and
    // the kernel's deferred frees can land. Only the memory group's figures need it.
    struct ThawOnExit {
        RunCgroup& group;
        ~ThawOnExit() { group.thaw(); }
    } thaw{cgroup_};
    if (!attach_error_.empty()) {
        reading.freeze_error = "the server is not in the run's group: " + attach_error_;
    } else if (!cgroup_.memory_path().empty()) {
        reading.frozen = cgroup_.freeze(kFreezeTimeout, &reading.freeze_error);
        if (reading.frozen) {
            Settling settling = settle_deferred_frees(cgroup_);
            reading.settled = settling.settled;
            reading.settle_rounds = settling.rounds;
            reading.deferred_kernel_bytes = settling.fell_bytes;
        }
    }
    reading.cgroup = cgroup_.read_memory(&reading.cgroup_error);
    reading.tree = sample_process_tree(pid_);
    return reading;
}

double ServerCostProbe::sample_baseline() {
    int64_t began = monotonic_now_ns();
    baseline_ = read_memory();
    return double(monotonic_now_ns() - began) / 1e9;
}

ServerCostProbe::Edge ServerCostProbe::mark(TreeCounters::Edge which) {
    Edge edge;
    edge.monotonic_ns = monotonic_now_ns();
    edge.realtime_ns = now_ns(CLOCK_REALTIME);
    edge.counters = counters_.read(which);
    if (!cgroup_.ok())
        edge.cgroup_error = cgroup_.error();
    else if (!attach_error_.empty())
        edge.cgroup_error = attach_error_;
    else
        edge.cgroup = cgroup_.read_cpu(&edge.cgroup_error);
    // /proc is walked only for a figure whose counter is missing: the walk of thousands of
    // fork children takes seconds, inside the window.
    bool want_proc = !edge.cgroup || !counters_.is_open(Counter::context_switches) ||
                     !counters_.is_open(Counter::page_faults) ||
                     !counters_.is_open(Counter::io_calls);
    if (want_proc) {
        // The walk can take seconds: never at the real-time priority an edge may be read at
        // (point_runner.cpp).
        sched_param normal{};
        if (sched_getscheduler(0) != SCHED_OTHER) sched_setscheduler(0, SCHED_OTHER, &normal);
        auto began = std::chrono::steady_clock::now();
        edge.tree = sample_process_tree(pid_);
        edge.walk_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    }
    return edge;
}

double ServerCostProbe::mark_start() {
    int64_t began = monotonic_now_ns();
    start_ = mark(TreeCounters::Edge::opening);
    return double(monotonic_now_ns() - began) / 1e9;
}

double ServerCostProbe::mark_end() {
    int64_t began = monotonic_now_ns();
    end_ = mark(TreeCounters::Edge::closing);
    return double(monotonic_now_ns() - began) / 1e9;
}

void ServerCostProbe::memory_not_read(std::string why) {
    memory_.reset();
    memory_why_ = std::move(why);
}

double ServerCostProbe::sample_memory() {
    int64_t began = monotonic_now_ns();
    memory_ = read_memory();
    return double(monotonic_now_ns() - began) / 1e9;
}

namespace {

// The window's delta of one counter, or nullopt with *why.
std::optional<CounterValue> counter_delta(const TreeCounters& counters, const CounterReading& a,
                                          const CounterReading& b, Counter c, std::string* why) {
    if (!counters.is_open(c)) {
        *why = counters.error(c);
        return std::nullopt;
    }
    const auto &x = a.values[size_t(c)], &y = b.values[size_t(c)];
    if (!x || !y) {
        *why = fmt::format("reading the {} counter failed", counter_name(c));
        return std::nullopt;
    }
    CounterValue d{y->value - x->value, y->time_enabled_ns - x->time_enabled_ns,
                   y->time_running_ns - x->time_running_ns};
    if (d.time_running_ns < d.time_enabled_ns) {
        *why = fmt::format("the {} counter ran {:.1f}% of the time it was enabled (multiplexed)",
                           counter_name(c),
                           100.0 * double(d.time_running_ns) / double(d.time_enabled_ns));
        return std::nullopt;
    }
    return d;
}

void put_figure(json& cost, json& sources, json& missing, const char* figure, const Figure& f,
                const std::vector<std::pair<const char*, double>>& totals,
                const std::vector<std::pair<const char*, double>>& per_request, uint64_t requests) {
    std::string reason = fmt::format("{}", fmt::join(f.why_not, "; "));
    sources[figure] = f.found() ? json(f.source) : json();
    for (size_t i = 0; i < totals.size(); ++i) {
        auto [key, scale] = totals[i];
        if (f.found()) {
            double v = f.values[i] * scale;
            // Counts stay integers in the JSON.
            bool count = scale == 1 && v >= 0 && v < 9e15 && std::floor(v) == v;
            cost[key] = count ? json(uint64_t(v)) : json(v);
        } else {
            cost[key] = json();
            missing[key] = reason;
        }
    }
    for (size_t i = 0; i < per_request.size(); ++i) {
        auto [key, scale] = per_request[i];
        if (f.found() && requests > 0) {
            cost[key] = f.values[i] * scale / double(requests);
        } else {
            cost[key] = json();
            missing[key] = f.found() ? "muxload completed no request in the window" : reason;
        }
    }
}

// One part of the tree's memory, at the baseline and after the window, or why not.
struct MemoryPart {
    std::optional<double> baseline, after;
    std::string baseline_why, after_why;
    // (after - baseline) over the connections beyond the baseline's one, or nullopt with *why.
    // Never floored: a part that shrank says so.
    std::optional<double> per_connection(uint64_t connections, std::string* why) const {
        if (!after) return *why = after_why, std::nullopt;
        if (!baseline) return *why = baseline_why, std::nullopt;
        if (connections < 2) {
            *why = "a point of one connection has none beyond the baseline's";
            return std::nullopt;
        }
        return (*after - *baseline) / double(connections - 1);
    }
};

// Puts `value` under `key`, or null and why not in `missing`.
void put_value(json& cost, json& missing, const char* key, std::optional<double> value,
               const std::string& why) {
    if (value) {
        bool whole = *value >= 0 && *value < 9e15 && std::floor(*value) == *value;
        cost[key] = whole ? json(uint64_t(*value)) : json(*value);
    } else {
        cost[key] = json();
        missing[key] = why;
    }
}

}  // namespace

void ServerCostProbe::put_memory(json& cost, json& sources, json& missing, uint64_t connections,
                                 const std::string& no_baseline) const {
    const std::string not_after =
        memory_why_.empty() ? "the server's memory was not read after the window" : memory_why_;
    const std::string not_before = no_baseline.empty() ? "no baseline was taken" : no_baseline;
    MemoryPart anon, kernel, socket;
    anon.after_why = kernel.after_why = socket.after_why = not_after;
    anon.baseline_why = kernel.baseline_why = socket.baseline_why = not_before;
    auto fill = [&](const std::optional<MemoryReading>& r, bool after) {
        if (!r) return;
        std::string why;
        auto anon_bytes = tree_anon_bytes(r->tree, &why);
        (after ? anon.after : anon.baseline) =
            anon_bytes ? std::optional<double>(*anon_bytes) : std::nullopt;
        (after ? anon.after_why : anon.baseline_why) = "proc: " + why;
        std::string cgroup_why = "cgroup: " + r->cgroup_error;
        for (auto* part : {&kernel, &socket})
            (after ? part->after_why : part->baseline_why) = cgroup_why;
        if (!r->cgroup) return;
        (after ? socket.after : socket.baseline) = double(r->cgroup->socket_bytes);
        // Unfrozen or unsettled, the kernel part holds frees in waiting, as many as the
        // tree's pace left: not a figure of its connections.
        if (!r->frozen)
            (after ? kernel.after_why : kernel.baseline_why) =
                "cgroup: the tree could not be frozen for the reading, so the kernel part would "
                "hold frees waiting for a grace period: " +
                r->freeze_error;
        else if (!r->settled)
            (after ? kernel.after_why : kernel.baseline_why) = fmt::format(
                "cgroup: the frozen tree's kernel memory still changed after {} grace periods",
                r->settle_rounds);
        else
            (after ? kernel.after : kernel.baseline) = double(r->cgroup->kernel_bytes);
    };
    if (no_baseline.empty()) fill(baseline_, false);
    fill(memory_, true);

    sources["memory_anon"] = anon.after ? json("proc") : json();
    put_value(cost, missing, "anon_bytes", anon.after, anon.after_why);
    put_value(cost, missing, "baseline_anon_bytes", anon.baseline, anon.baseline_why);
    std::string why;
    auto anon_per = anon.per_connection(connections, &why);
    put_value(cost, missing, "anon_bytes_per_connection", anon_per, why);
    // /proc's other readings of the same walks
    bool tree_after = memory_ && memory_->tree.root_alive;
    bool tree_before = no_baseline.empty() && baseline_ && baseline_->tree.root_alive;
    auto tree_sum = [](const ProcessTreeSample& t, uint64_t ProcessReading::*field) {
        uint64_t sum = 0;
        for (const auto& p : t.processes) sum += p.*field;
        return double(sum);
    };
    std::string gone = "proc: the server was not read, or was gone";
    put_value(cost, missing, "peak_rss_bytes",
              tree_after ? std::optional(double(memory_->tree.processes.front().peak_rss_bytes))
                         : std::nullopt,
              gone);
    put_value(cost, missing, "pss_bytes",
              tree_after ? std::optional(tree_sum(memory_->tree, &ProcessReading::pss_bytes))
                         : std::nullopt,
              gone);
    put_value(cost, missing, "idle_pss_bytes",
              tree_before ? std::optional(tree_sum(baseline_->tree, &ProcessReading::pss_bytes))
                          : std::nullopt,
              tree_before || !no_baseline.empty() ? not_before : gone);
    put_value(cost, missing, "descendants_at_end",
              tree_after ? std::optional(double(memory_->tree.processes.size() - 1)) : std::nullopt,
              gone);

    sources["memory_kernel"] = kernel.after ? json("cgroup1") : json();
    put_value(cost, missing, "kernel_bytes", kernel.after, kernel.after_why);
    put_value(cost, missing, "baseline_kernel_bytes", kernel.baseline, kernel.baseline_why);
    // What the tree held in frees awaiting a grace period when it was frozen, and the rounds
    // of waiting for them: beside the figures above, never in them, so that a busy loop's
    // share shows.
    auto deferred = [](const std::optional<MemoryReading>& r) {
        return r && r->cgroup && r->frozen && r->settled ? std::optional(r->deferred_kernel_bytes)
                                                         : std::nullopt;
    };
    auto rounds = [](const std::optional<MemoryReading>& r) {
        return r && r->frozen ? std::optional(double(r->settle_rounds)) : std::nullopt;
    };
    put_value(cost, missing, "deferred_kernel_bytes", deferred(memory_), kernel.after_why);
    put_value(cost, missing, "settle_rounds", rounds(memory_), kernel.after_why);
    const std::optional<MemoryReading> none;
    const auto& baseline = no_baseline.empty() ? baseline_ : none;
    put_value(cost, missing, "baseline_deferred_kernel_bytes", deferred(baseline),
              kernel.baseline_why);
    put_value(cost, missing, "baseline_settle_rounds", rounds(baseline), kernel.baseline_why);
    auto kernel_per = kernel.per_connection(connections, &why);
    put_value(cost, missing, "kernel_bytes_per_connection", kernel_per, why);
    put_value(cost, missing, "socket_bytes", socket.after, socket.after_why);
    put_value(cost, missing, "baseline_socket_bytes", socket.baseline, socket.baseline_why);
    auto socket_per = socket.per_connection(connections, &why);
    put_value(cost, missing, "socket_bytes_per_connection", socket_per, why);

    std::optional<double> total;
    std::vector<std::string> total_why;
    if (anon_per && kernel_per) total = *anon_per + *kernel_per;
    if (!anon_per) total_why.push_back(missing["anon_bytes_per_connection"].get<std::string>());
    if (!kernel_per &&
        (total_why.empty() || total_why.back() != missing["kernel_bytes_per_connection"]))
        total_why.push_back(missing["kernel_bytes_per_connection"].get<std::string>());
    sources["memory"] = total ? json("proc+cgroup1") : json();
    put_value(cost, missing, "memory_bytes_per_connection", total,
              fmt::format("{}", fmt::join(total_why, "; ")));
}

json ServerCostProbe::to_json(uint64_t requests, uint64_t connections, double max_walk_share,
                              std::optional<WindowUnixNs> loadgen_window,
                              const std::string& no_baseline) const {
    json cost = json::object(), sources = json::object(), missing = json::object();
    Figure cpu, split, switches, faults, syscalls, waits, ios;
    if (start_ && end_) {
        const Edge &a = *start_, &b = *end_;
        double window_s = double(b.monotonic_ns - a.monotonic_ns) / 1e9;
        cost["window_s"] = window_s;
        // The counters are read when muxload's line arrives, after its window's edge: the
        // lag at each edge says how far the two windows differ.
        if (loadgen_window && loadgen_window->start > 0 && loadgen_window->end > 0) {
            cost["edge_lag_s"] = {
                {"start", double(a.realtime_ns - int64_t(loadgen_window->start)) / 1e9},
                {"end", double(b.realtime_ns - int64_t(loadgen_window->end)) / 1e9}};
        } else {
            cost["edge_lag_s"] = json();
            missing["edge_lag_s"] =
                "muxload's report gives no window_start_unix_ns and "
                "window_end_unix_ns";
        }

        // The cgroup first for CPU: its usage is the scheduler's run time, which leaves out
        // the time a hypervisor stole from the VM; perf's task clock counts the time a task
        // was switched in, steal included (26 ms over 400 ms of work in one test here).
        // Its split into user and system is the only good one.
        bool cgroup_read = a.cgroup && b.cgroup;
        std::string cgroup_why = a.cgroup_error.empty() ? b.cgroup_error : a.cgroup_error;
        if (cgroup_read &&
            (b.cgroup->usage_us < a.cgroup->usage_us || b.cgroup->user_us < a.cgroup->user_us ||
             b.cgroup->system_us < a.cgroup->system_us)) {
            cgroup_read = false;
            cgroup_why = "the cgroup's CPU figures went backwards";
        }
        if (cgroup_read) {
            uint64_t usage = b.cgroup->usage_us - a.cgroup->usage_us;
            uint64_t user = b.cgroup->user_us - a.cgroup->user_us;
            uint64_t system = b.cgroup->system_us - a.cgroup->system_us;
            double usage_us = double(usage), user_us = double(user), system_us = double(system);
            cpu.give(cgroup_.hierarchy(), {usage_us / 1e6});
            if (user_us + system_us > 0) {
                double user_share = user_us / (user_us + system_us);
                split.give(cgroup_.hierarchy(),
                           {usage_us * user_share / 1e6, usage_us * (1 - user_share) / 1e6});
            } else {
                split.refuse("cgroup", "no scheduler tick landed on the tree in the window");
            }
            cost["cgroup"] = {{"hierarchy", cgroup_.hierarchy()},
                              {"path", cgroup_path_},
                              {"usage_us", usage},
                              {"user_us", user},
                              {"system_us", system}};
        } else {
            cpu.refuse("cgroup", cgroup_why);
            split.refuse("cgroup", cgroup_why);
            cost["cgroup"] = {{"error", cgroup_why}};
        }

        // perf, for every figure it has a counter for
        json perf_counters = json::object(), perf_errors = json::object();
        auto from_perf = [&](Figure& f, Counter c, double scale) {
            std::string why;
            if (auto d = counter_delta(counters_, a.counters, b.counters, c, &why)) {
                f.give("perf", {double(d->value) * scale});
                perf_counters[counter_name(c)] = {{"value", d->value},
                                                  {"time_enabled_ns", d->time_enabled_ns},
                                                  {"time_running_ns", d->time_running_ns}};
            } else {
                f.refuse("perf", why);
                perf_errors[counter_name(c)] = why;
            }
        };
        from_perf(cpu, Counter::task_clock_ns, 1e-9);
        from_perf(switches, Counter::context_switches, 1);
        from_perf(faults, Counter::page_faults, 1);
        from_perf(syscalls, Counter::syscalls, 1);
        from_perf(waits, Counter::wait_calls, 1);
        from_perf(ios, Counter::io_calls, 1);
        cost["perf"] = {
            {"mode", counters_.mode()}, {"counters", perf_counters}, {"errors", perf_errors}};
        if (!cgroup_mode_error_.empty()) cost["perf"]["cgroup_mode_error"] = cgroup_mode_error_;

        // /proc, for what is still missing
        if (a.tree && b.tree) {
            ServerCost proc = cost_between(*a.tree, *b.tree);
            std::string too_slow;
            if (a.walk_s + b.walk_s > max_walk_share * window_s)
                too_slow = fmt::format(
                    "reading {} processes took {:.2f} s at the window's start and {:.2f} s at "
                    "its end, over {:g}% of the {:.2f} s window: the cost and muxload's "
                    "requests would not cover the same time",
                    b.tree->processes.size(), a.walk_s, b.walk_s, 100 * max_walk_share, window_s);
            auto from_proc = [&](Figure& f, std::initializer_list<const char*> figures,
                                 std::vector<double> values) {
                if (!too_slow.empty()) return f.refuse("proc", too_slow);
                for (const char* figure : figures)
                    if (auto problem = proc.problems.find(figure); problem != proc.problems.end())
                        return f.refuse("proc", problem->second);
                f.give("proc", std::move(values));
            };
            double user_s = double(proc.user_cpu_us) / 1e6,
                   system_s = double(proc.system_cpu_us) / 1e6;
            from_proc(cpu, {"cpu"}, {user_s + system_s});
            from_proc(split, {"cpu", "cpu_split"}, {user_s, system_s});
            from_proc(switches, {"context_switches"},
                      {double(proc.voluntary_switches + proc.involuntary_switches)});
            from_proc(faults, {"page_faults"}, {double(proc.page_faults)});
            from_proc(ios, {"io_calls"}, {double(proc.read_syscalls + proc.write_syscalls)});
        }
        syscalls.refuse("proc", "/proc counts only the read and write families");
        waits.refuse("proc", "/proc has no count of wait calls");
    } else {
        cost["window_s"] = cost["edge_lag_s"] = json();
        missing["window_s"] = missing["edge_lag_s"] = "muxload never reported its measured window";
        for (Figure* f : {&cpu, &split, &switches, &faults, &syscalls, &waits, &ios})
            f->refuse("window", "muxload never reported its measured window");
    }
    cost["requests"] = requests;
    put_figure(cost, sources, missing, "cpu", cpu, {{"cpu_s", 1}}, {{"cpu_us_per_request", 1e6}},
               requests);
    put_figure(cost, sources, missing, "cpu_split", split, {{"cpu_user_s", 1}, {"cpu_sys_s", 1}},
               {{"cpu_user_us_per_request", 1e6}, {"cpu_sys_us_per_request", 1e6}}, requests);
    put_figure(cost, sources, missing, "context_switches", switches, {{"context_switches", 1}},
               {{"context_switches_per_request", 1}}, requests);
    put_figure(cost, sources, missing, "page_faults", faults, {{"page_faults", 1}},
               {{"page_faults_per_request", 1}}, requests);
    put_figure(cost, sources, missing, "syscalls", syscalls, {{"syscalls", 1}},
               {{"syscalls_per_request", 1}}, requests);
    put_figure(cost, sources, missing, "wait_calls", waits, {{"wait_calls", 1}},
               {{"wait_calls_per_request", 1}}, requests);
    put_figure(cost, sources, missing, "io_calls", ios, {{"io_calls", 1}},
               {{"io_calls_per_request", 1}}, requests);

    put_memory(cost, sources, missing, connections, no_baseline);
    cost["sources"] = sources;
    cost["missing"] = missing;
    return cost;
}

}  // namespace mux::sweep
