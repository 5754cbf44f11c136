// One muxload run, start to finish: limits, ramp, warmup, window, merge, result document.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "options.hpp"
#include "stats.hpp"

namespace mux::load {

// Exit codes of muxload.
inline constexpr int kExitOk = 0;
inline constexpr int kExitSetupFailed = 1;  // nothing was measured
inline constexpr int kExitIncomplete = 3;   // measured, but errors or an incomplete run

struct RunOutput {
    std::string error;  // set when nothing could be measured
    Stats stats;
    nlohmann::json doc;  // the muxload/1 document
    int exit_code = kExitSetupFailed;
};

// options must have passed validate(). The measure_start / measure_end lines go to events
// (flushed at once) when it is not null.
RunOutput run_load(const LoadOptions& options, std::FILE* events);

// Exit code for a finished run.
int exit_code_for(const Stats& stats);

}  // namespace mux::load
