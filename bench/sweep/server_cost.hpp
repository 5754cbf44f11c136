// A server's cost over muxload's measured window, each figure from the best source this
// machine offers: perf counters on the server's tree, its run's cgroup, and /proc as the
// fallback, with the source of every figure recorded and every missing figure explained.
// The JSON shape is `server_cost` in results/README.md.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

#include "perf_counters.hpp"
#include "process_cost.hpp"
#include "run_cgroup.hpp"

namespace mux::sweep {

class ServerCostProbe {
  public:
    // Makes the run's cgroup (or notes why there is none).
    ServerCostProbe();

    // For SpawnOptions::before_exec: moves the server into the cgroup and opens the counters
    // on it (on the cgroup where it can, else inherited from the server), before it runs.
    void attach(pid_t pid);
    // The memory baseline: the server holding the load generator's one connection, idle
    // (point_runner.cpp). Returns the seconds it took.
    double sample_baseline();
    // At the edges of muxload's window: the counters, the cgroup, and /proc when a figure
    // must fall back to it. Each returns the seconds its reading took.
    double mark_start();
    double mark_end();
    // The tree's memory after the window (muxload still holds its connections); seconds taken.
    double sample_memory();
    // The reading after the window is missing, or does not stand: why, for every memory
    // figure that needs it.
    void memory_not_read(std::string why);

    // muxload's measured window, CLOCK_REALTIME (its summary's window_start_unix_ns and
    // window_end_unix_ns), against which the readings' lag is given.
    struct WindowUnixNs {
        uint64_t start = 0;
        uint64_t end = 0;
    };
    // server_cost for `requests` completed in the window over `connections`. When no baseline
    // was taken, `no_baseline` says why. /proc's figures
    // are left out when its walks took more than `max_walk_share` of the window.
    nlohmann::json to_json(uint64_t requests, uint64_t connections, double max_walk_share,
                           std::optional<WindowUnixNs> loadgen_window = std::nullopt,
                           const std::string& no_baseline = "") const;

    RunCgroup& cgroup() { return cgroup_; }
    const TreeCounters& counters() const { return counters_; }

  private:
    struct Edge {
        int64_t monotonic_ns = 0;
        int64_t realtime_ns = 0;  // the same instant on CLOCK_REALTIME, muxload's window's clock
        CounterReading counters;
        std::optional<CgroupCpu> cgroup;
        std::string cgroup_error;
        std::optional<ProcessTreeSample> tree;  // only when a figure falls back to /proc
        double walk_s = 0;
    };
    Edge mark(TreeCounters::Edge which);
    // The tree's memory at one instant: /proc's walk and the memory cgroup's charges.
    // Read with the tree frozen and the kernel's deferred frees landed (server_cost.cpp),
    // where there is a memory group to read.
    struct MemoryReading {
        ProcessTreeSample tree;
        std::optional<CgroupMemory> cgroup;
        std::string cgroup_error;
        bool frozen = false;
        std::string freeze_error;  // why not, when a memory group was there to read
        bool settled = false;      // the kernel part stopped changing within the rounds
        int settle_rounds = 0;
        double deferred_kernel_bytes = 0;  // what it fell by from the freeze to the reading
    };
    MemoryReading read_memory();
    void put_memory(nlohmann::json& cost, nlohmann::json& sources, nlohmann::json& missing,
                    uint64_t connections, const std::string& no_baseline) const;

    pid_t pid_ = 0;
    RunCgroup cgroup_;
    std::string cgroup_path_ = cgroup_.path();  // kept for the results once it is removed
    std::string attach_error_;                  // why the cgroup does not hold the server
    std::string cgroup_mode_error_;             // why the counters could not follow the cgroup
    TreeCounters counters_;
    std::optional<MemoryReading> baseline_, memory_;
    std::string memory_why_;  // memory_not_read's
    std::optional<Edge> start_, end_;
};

}  // namespace mux::sweep
