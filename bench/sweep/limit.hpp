// Which side of a point set its limit: the load generator, the server, both, or neither.
//
// muxload says when it was the limit (a thread or the process at 90% of what it could use,
// an open-loop schedule falling behind, its own delay large beside the latency). That alone
// does not make the server's figure a lower bound: when the server was as busy, both sides
// ran out together, and the figure is the pair's ceiling. So the server's side is judged too,
// from the kernel's count of its CPU time over the window against the CPUs it may use.
//
// Busy-poll (nonblocking) spends every spare cycle polling, so its server side always reads as
// saturated and its points are never "loadgen" alone: its CPU share cannot show headroom.
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

// CPU seconds over the window, against the window times the CPUs the server may use.
std::optional<double> server_busy_share(const nlohmann::json& server_cost, size_t server_cpus);

// A group of repeats, judged on their medians: the load generator is saturated when more than
// half of the repeats say so, the server when its median busy share is at the bar.
Limit judge_group_limit(const std::vector<const nlohmann::json*>& repeats);

}  // namespace mux::sweep
