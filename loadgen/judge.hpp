// The verdicts on a run, from its (merged) Stats alone, so `muxload merge` reaches the same
// verdicts from the same raw figures. Pure functions: tests feed them made-up Stats.
//
// - saturated: muxload's own CPU evidence says it could not have done more. A thread was
//   busy (CPU minus idle polling) or runnable-but-waiting for a CPU at least 90% of the
//   window, or the process used at least 90% of min(threads, CPUs in its affinity mask).
//   The second rule is the one that works when threads outnumber CPUs: each thread then
//   shows only its share of a CPU.
// - loadgen_bound: muxload's own evidence says it was the limit: saturated, or the
//   open-loop schedule fell behind (more than 1% of sends over 1 ms late with a connection
//   free), or its self-delay p99 is above kSelfDelayP99Share of the corrected p50. It says
//   nothing of the server; a driver compares both sides.
// - clean: the run measured what it was asked to, with nothing hidden; otherwise a list of
//   reasons, and a non-zero exit status (exit_code_for).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "stats.hpp"

namespace mux::load {

// Exit codes of muxload.
inline constexpr int kExitOk = 0;
inline constexpr int kExitSetupFailed = 1;   // nothing was measured
inline constexpr int kExitRefused = 2;       // bad command line, or merge inputs that differ
inline constexpr int kExitIncomplete = 3;    // measured, but errors or an incomplete ramp
inline constexpr int kExitNotClean = 4;      // measured, but the run hid or missed load
inline constexpr int kExitVerifyFailed = 5;  // most replies failed verification

inline constexpr double kSaturatedShare = 0.9;
// Open loop: the run is not clean below this share of the offered rate...
inline constexpr double kMinAchievedShare = 0.99;
// ... or with more unfinished requests at the end than the connections can hold
// (connections x --pipeline) plus this share of the requests offered in the window.
inline constexpr double kUnfinishedAllowanceShare = 0.01;
// Closed loop: Little's law must hold to within this.
inline constexpr double kLittlesLawTolerance = 0.10;

// Closed loop: (mean latency x throughput) / (connections x --pipeline), which is 1 when
// every connection always has its --pipeline requests in flight, a little less by what the
// loop holds back between a reply and the next send. Empty in open loop or with no replies.
// Judged (not clean beyond kLittlesLawTolerance) only when Stats::littles_law_judged.
std::optional<double> littles_law_ratio(const Stats& s);

std::vector<std::string> saturation_reasons(const Stats& s);
std::vector<std::string> bound_reasons(const Stats& s);
std::vector<std::string> not_clean_reasons(const Stats& s);
// Sets all three lists.
void judge(Stats* s);
int exit_code_for(const Stats& s);

}  // namespace mux::load
