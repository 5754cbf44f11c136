// What one worker thread measured, and, after merging, what a whole run (or several runs
// of several processes: `muxload merge`) measured. Every field merges exactly: counts add,
// histograms add, maxima take the max. Derived figures (percentiles, throughput, Jain's
// index) are computed from the merged raw fields, never averaged.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "codec.hpp"
#include "histogram.hpp"

namespace mux::load {

// Per-second histograms are coarser (0.8% error) to keep a long run's memory small.
inline constexpr int kSecondHistogramBits = 6;

struct Stats {
    Stats() = default;
    // Sizes the time series; nothing is allocated after this.
    Stats(size_t seconds, bool open_loop);

    // Measured window only.
    Histogram latency;      // corrected in open loop
    Histogram uncorrected;  // open loop only
    std::vector<Histogram> second_latency;
    std::vector<uint64_t> second_errors;
    uint64_t requests = 0;

    // Whole run, ramp included: a refused connect during the ramp is still an error.
    std::array<uint64_t, kErrorKinds> errors{};
    uint64_t reconnects = 0;  // connections reopened after an error or --requests-per-conn
    uint64_t idle_probes_ok = 0;
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;

    // Open-loop schedule, measured window.
    uint64_t sends = 0;
    uint64_t late_sends = 0;
    uint64_t max_send_delay_ns = 0;
    uint64_t backlog_at_end = 0;  // requests due by the window's end but never sent

    // Fairness over active connections: Jain = sum^2 / (n * sum_sq).
    uint64_t fair_connections = 0;
    uint64_t unserved_connections = 0;
    double fair_sum = 0;
    double fair_sum_sq = 0;

    // Loadgen CPU over the window.
    double cpu_us = 0;
    std::vector<double> thread_utilisation;

    // Run shape.
    bool open_loop = false;
    double duration_s = 0;
    double throughput_per_s = 0;  // sums when runs of parallel processes are merged
    double connect_time_s = 0;
    uint64_t connections_wanted = 0;
    uint64_t connections_at_start = 0;
    bool completed = false;
    std::vector<std::string> bound_reasons;

    void count_error(ErrorKind kind) { errors[static_cast<size_t>(kind)] += 1; }
    uint64_t total_errors() const;
    // Adds other into this. Returns "" or why they cannot be merged.
    std::string merge(const Stats& other);
    double jain_index() const;
    bool loadgen_bound() const { return !bound_reasons.empty(); }
};

// The muxload/1 document: {"schema", "config", "environment", "summary", "timeseries",
// "errors", "histogram", "histogram_uncorrected"?}. See docs/muxload-json.md.
inline constexpr const char* kSchema = "muxload/1";
nlohmann::json result_json(const Stats& stats, const nlohmann::json& config,
                           const nlohmann::json& environment);
// Rebuilds Stats from a muxload/1 document. Returns "" or what is wrong.
std::string stats_from_json(const nlohmann::json& doc, Stats* out);

}  // namespace mux::load
