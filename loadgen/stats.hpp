// What one worker thread measured, and, after merging, what a whole run (or several runs
// of several processes: `muxload merge`) measured. Every field merges exactly: counts add,
// histograms add, maxima take the max. Derived figures (percentiles, throughput, Jain's
// index, the ratios and verdicts of judge.hpp) are computed from the merged raw fields,
// never averaged.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "codec.hpp"
#include "histogram.hpp"
#include "steady.hpp"

namespace mux::load {

// Per-second histograms are coarser (0.8% error) to keep a long run's memory small.
inline constexpr int kSecondHistogramBits = 6;

// The first reply that failed verification, kept to be shown (the earliest over threads).
struct FirstFailure {
    bool set = false;
    uint64_t t_ns = 0;  // CLOCK_MONOTONIC
    ErrorKind kind = ErrorKind::Protocol;
    FailureDetail detail;
};

// One worker thread's CPU over the window.
struct ThreadCpu {
    double cpu_us = 0;            // on a CPU (CLOCK_THREAD_CPUTIME_ID), polling included
    double spin_us = 0;           // of which polling before due sends found nothing to do
    double runqueue_wait_us = 0;  // runnable but waiting for a CPU (schedstat; 0 without it)
};

struct Stats {
    Stats() = default;
    // Sizes the time series; nothing is allocated after this.
    Stats(size_t seconds, bool open_loop);

    // Measured window only. The latency histograms hold every reply verified inside the
    // window, every request that timed out inside it at (timeout - start), and every request
    // still unanswered at its end: at its true latency when its reply came in the drain after
    // the window (answered_after_end), else at its age when the drain (or, never sent, the
    // window) ended. Timed-out and never-answered requests are lower bounds.
    Histogram latency;      // corrected in open loop
    Histogram uncorrected;  // open loop only: from the actual send
    std::vector<Histogram> second_latency;
    std::vector<uint64_t> second_errors;
    std::vector<uint64_t> second_unfinished;
    std::vector<uint64_t> second_timed_out;
    uint64_t requests = 0;            // replies verified inside the window
    uint64_t latency_sum_ns = 0;      // of those replies (corrected), for Little's law
    uint64_t latency_overflows = 0;   // values above the histogram's range, counted at its top
    uint64_t timeouts_recorded = 0;   // requests timed out inside the window, in latency
    uint64_t unfinished_at_end = 0;   // in_flight_at_end + backlog_at_end
    uint64_t in_flight_at_end = 0;    // sent, unanswered when the window ended
    uint64_t answered_after_end = 0;  // of those, answered in the drain after the window
    uint64_t in_flight_capacity = 0;  // active connections ready x --pipeline
    // Closed loop: the connections keep in_flight_capacity requests in flight, so Little's
    // law is judged. Not with --requests-per-conn and --pipeline > 1: each connection's
    // pipeline then drains before it is replaced, by design.
    bool littles_law_judged = true;

    // Whole run, ramp included: a refused connect during the ramp is still an error.
    std::array<uint64_t, kErrorKinds> errors{};
    uint64_t reconnects = 0;  // connections reopened after an error or --requests-per-conn
    uint64_t idle_probes_ok = 0;
    uint64_t replies_verified = 0;  // every verified reply: probes, warmup and window
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;
    FirstFailure first_failure;

    // Open-loop schedule, measured window.
    uint64_t offered = 0;  // requests whose intended send time fell inside the window
    uint64_t sends = 0;
    uint64_t late_sends = 0;
    uint64_t max_send_delay_ns = 0;
    Histogram self_delay;         // actual send - max(intended, slot free)
    uint64_t backlog_at_end = 0;  // requests due by the window's end but never sent

    // Fairness over active connections: Jain = sum^2 / (n * sum_sq).
    uint64_t fair_connections = 0;
    uint64_t unserved_connections = 0;
    double fair_sum = 0;
    double fair_sum_sq = 0;

    // Loadgen CPU over the window.
    double cpu_us = 0;  // sum over threads
    std::vector<double> thread_utilisation;
    std::vector<ThreadCpu> thread_cpu;
    double process_cpu_us = 0;  // the whole process (CLOCK_PROCESS_CPUTIME_ID)
    uint32_t cpus = 0;          // CPUs in the process's affinity mask (merged: summed)

    // Run shape.
    bool open_loop = false;
    double duration_s = 0;
    double throughput_per_s = 0;        // sums when runs of parallel processes are merged
    double connect_time_s = 0;          // the ramp: first connect to last connection ready
    uint64_t window_start_unix_ns = 0;  // CLOCK_REALTIME
    uint64_t window_end_unix_ns = 0;
    uint64_t connections_wanted = 0;
    uint64_t connections_at_start = 0;
    bool completed = false;
    // The steadiness check before the window (steady.hpp): judged only with a warmup.
    bool steady_judged = false;
    bool steady = true;
    std::vector<std::string> unsteady_reasons;  // the last check's, with its numbers
    double warmup_s = 0;           // load before the window, extensions included (merge: max)
    double warmup_extended_s = 0;  // of which extensions (merge: max)
    uint32_t steady_checks = 0;    // checks made (merge: max)
    bool has_last_check = false;   // a single run's last check (merge: none; they do not add)
    SteadyVerdict last_check;
    uint64_t steady_active_connections = 0;  // what the last check held served against
    // Verdicts (judge.hpp), kept as lists of reasons.
    std::vector<std::string> saturated_reasons;
    std::vector<std::string> bound_reasons;
    std::vector<std::string> not_clean_reasons;

    void count_error(ErrorKind kind, uint64_t n = 1) { errors[static_cast<size_t>(kind)] += n; }
    // Records one corrected latency (and the second it belongs to); counts an overflow.
    void record_latency(uint64_t ns, size_t second) {
        if (ns > latency.max_value_ns()) latency_overflows += 1;
        latency.record(ns);
        second_latency[second].record(ns);
    }
    uint64_t total_errors() const;
    uint64_t verification_failures() const;
    // More replies failed verification than passed it: the server is not answering what
    // muxload expects.
    bool most_replies_failed() const {
        return verification_failures() > 0 && verification_failures() > replies_verified;
    }
    // Adds other into this. Returns "" or why they cannot be merged.
    std::string merge(const Stats& other);
    double jain_index() const;
    bool loadgen_bound() const { return !bound_reasons.empty(); }
    bool clean() const { return not_clean_reasons.empty(); }
};

// The muxload/1 document: {"schema", "config", "environment", "summary", "timeseries",
// "errors", "histogram", "histogram_uncorrected"?, "histogram_self_delay"?}. See
// docs/muxload-json.md.
inline constexpr const char* kSchema = "muxload/1";
nlohmann::json result_json(const Stats& stats, const nlohmann::json& config,
                           const nlohmann::json& environment);
// Rebuilds Stats from a muxload/1 document. Returns "" or what is wrong.
std::string stats_from_json(const nlohmann::json& doc, Stats* out);

}  // namespace mux::load
