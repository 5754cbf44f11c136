// Which side of a point set its limit: the load generator, the server, both, or neither.
//
// muxload says when it was the limit (a thread or the process at 90% of what it could use,
// an open-loop schedule falling behind, its own delay large beside the latency). That alone
// does not make the server's figure a lower bound: when the server was as busy, both sides
// ran out together, and the figure is the pair's ceiling. So the server's side is judged too,
// from how busy its CPUs were over the window: 1 - their idle share (/proc/stat). The sweep
// keeps everything else off those CPUs, so their busy time is the server's, with the kernel
// work done on its behalf that its own CPU time misses (a loopback peer's softirqs, time a
// hypervisor stole): fork at 2,000 connections used 0.87 of its CPU by its own count while
// that CPU had no idle time. Whether one busy thread of a pool saturates is not judged: a
// pool's CPUs are its own, and idle time on any of them is headroom.
//
// Busy-poll (nonblocking) spends every spare cycle polling, so its CPUs are busy at any load:
// its share is unknown, and muxload's verdict alone decides its points.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace mux::sweep {

// The share of its CPUs a server must use to count as saturated: the same bar muxload sets
// itself (loadgen/judge.hpp), so both sides are held to one standard.
inline constexpr double kServerSaturatedShare = 0.9;

enum class Limit { Loadgen, Server, Both, Neither };

const char* limit_name(Limit limit);

// A server whose busy share is unknown (no CPU figure) has no headroom to show: muxload's
// word alone decides, as it did before the server side was judged.
Limit judge_limit(bool loadgen_saturated, std::optional<double> server_busy_share);

// 1 - the server CPUs' idle share over the window (conditions.window.server_cpus); nullopt
// when it is unknown or the model polls when idle.
std::optional<double> server_busy_share(const nlohmann::json& window_conditions,
                                        bool polls_when_idle);

// A group of repeats, judged on their medians: the load generator is saturated when more than
// half of the repeats say so, the server when its median busy share is at the bar.
Limit judge_group_limit(const std::vector<const nlohmann::json*>& repeats);

}  // namespace mux::sweep
