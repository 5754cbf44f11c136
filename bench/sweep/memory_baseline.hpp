// The baseline of a server's memory: the server holding one idle connection of the load
// generator, once it has served that connection for a while. Taken before the point's own
// muxload runs, it holds what a started and warmed server costs and what its first connection
// brings that later ones do not (lazily grown tables and pools, the first fork child's or
// thread's set-up), so that the point's growth over it is what its other connections cost
// (server_cost.hpp, results/README.md `memory`).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "plan.hpp"
#include "point_runner.hpp"

namespace mux::sweep {

// Replies the baseline's connection must have had before the reading stands, for a server
// whose listening line is `listening`: at least kBaselineMinReplies, and twice the buffers of
// a pool the server touches only as it turns over (io-uring's provided-buffer ring: each
// receive takes the next buffer, so 1024 buffers of 4 KiB fill in over 1024 receives, and a
// baseline of a few replies would leave 4 MB to be divided among the point's connections).
uint64_t baseline_replies_needed(const nlohmann::json& listening);

// Runs muxload against `target` with one connection, one request at a time and no work, for
// a window sized as below, holding the connection idle after it (--hold-after-window)
// while `sample` runs, then lets it close. Returns "" once `sample` ran with the connection
// open after a completed window with `replies_needed` replies or more, else why no baseline
// was taken (`sample` may have run; it runs again on each of up to kBaselineTries runs, each
// with a longer window). *replies gets the replies of the run that stood, or of the
// last. Never longer than `time_left`.
std::string with_one_idle_connection(const Point& point, const Plan& plan, const Binaries& bin,
                                     const std::string& target, uint64_t replies_needed,
                                     std::chrono::milliseconds time_left,
                                     const std::function<void()>& sample, uint64_t* replies);

// The first try's window: long enough for the replies needed at kBaselineRoundTripS each, 1.5
// times this machine's usual loopback round trip (50 us), and at least kBaselineWindowS: 50 ms
// for 256 replies (20 ms missed them in half the quick plan's points, where the connection
// was accepted late), 0.15 s for io-uring's 2,048. A slower day takes a second try.
constexpr double kBaselineWindowS = 0.05;
constexpr double kBaselineRoundTripS = 75e-6;
constexpr int kBaselineTries = 3;
constexpr uint64_t kBaselineMinReplies = 256;
// Kept for a try's process start, freeze and reading when its window is sized.
constexpr double kBaselineReadingS = 3.0;

}  // namespace mux::sweep
