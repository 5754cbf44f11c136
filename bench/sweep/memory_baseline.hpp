// The baseline of a server's memory: the server holding one idle connection of the load
// generator. Taken before the point's own muxload runs, it holds what a started server
// costs and what its first connection brings that later ones do not (lazily grown tables,
// the first fork child's or thread's set-up), so that the point's growth over it is what
// its other connections cost (server_cost.hpp, results/README.md `memory`).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "plan.hpp"
#include "point_runner.hpp"

namespace mux::sweep {

// Runs muxload against `target` with one connection, one request at a time, for a window of
// kBaselineWindowS, holding the connection idle after it (--hold-after-window) while
// `sample` runs, then lets it close. Returns "" once `sample` ran with the connection open
// after a completed window with replies, else why no baseline was taken (`sample` may have
// run; it runs again on each of up to kBaselineTries runs). Never longer than `time_left`.
std::string with_one_idle_connection(const Point& point, const Plan& plan, const Binaries& bin,
                                     const std::string& target, std::chrono::milliseconds time_left,
                                     const std::function<void()>& sample);

// Long enough for a few verified replies on loopback, short enough to cost the quick plan's
// hundred-odd points a few seconds in all.
constexpr double kBaselineWindowS = 0.02;
// Runs of that muxload, with windows of 0.02, 0.1 and 0.5 s, before the baseline is given up
// (its figures are then null, with why).
constexpr int kBaselineTries = 3;

}  // namespace mux::sweep
