// One muxload run, start to finish: limits, ramp, warmup, window, merge, result document.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "judge.hpp"
#include "options.hpp"
#include "stats.hpp"
#include "worker.hpp"

namespace mux::load {

struct RunOutput {
    std::string error;  // set when nothing could be measured
    Stats stats;
    nlohmann::json doc;  // the muxload/1 document
    int exit_code = kExitSetupFailed;
};

// Each worker thread's share of the connections, the connect rate, the ramp's cap and the
// open-loop rate. options must have passed validate().
std::vector<WorkerPlan> plan_workers(const LoadOptions& options);

// options must have passed validate(). The measure_start / measure_end lines go to events
// (flushed at once) when it is not null. With --hold-after-window it returns only once
// standard input closes (at most 10 s after the window), the connections open until then.
RunOutput run_load(const LoadOptions& options, std::FILE* events);

}  // namespace mux::load
