#include "limit.hpp"

#include <algorithm>

namespace mux::sweep {

const char* limit_name(Limit limit) {
    switch (limit) {
        case Limit::Loadgen:
            return "loadgen";
        case Limit::Server:
            return "server";
        case Limit::Both:
            return "both";
        case Limit::Neither:
            return "neither";
    }
    return "neither";
}

Limit judge_limit(bool loadgen_saturated, std::optional<double> server_busy_share) {
    if (!server_busy_share) return loadgen_saturated ? Limit::Loadgen : Limit::Neither;
    const bool server_saturated = *server_busy_share >= kServerSaturatedShare;
    if (loadgen_saturated) return server_saturated ? Limit::Both : Limit::Loadgen;
    return server_saturated ? Limit::Server : Limit::Neither;
}

std::optional<double> server_busy_share(const nlohmann::json& window_conditions,
                                        bool polls_when_idle) {
    if (polls_when_idle || !window_conditions.is_object()) return std::nullopt;
    const auto cpus = window_conditions.find("server_cpus");
    if (cpus == window_conditions.end() || !cpus->is_object()) return std::nullopt;
    const auto idle = cpus->find("idle_share");
    if (idle == cpus->end() || !idle->is_number()) return std::nullopt;
    return std::clamp(1.0 - idle->get<double>(), 0.0, 1.0);
}

namespace {
std::optional<double> median(std::vector<double> values) {
    if (values.empty()) return std::nullopt;
    std::sort(values.begin(), values.end());
    size_t n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}
}  // namespace

Limit judge_group_limit(const std::vector<const nlohmann::json*>& repeats) {
    size_t loadgen_saturated = 0;
    std::vector<double> shares;
    for (const auto* p : repeats) {
        // A point from before the server side was judged has only muxload's verdict.
        const char* verdict =
            p->contains("loadgen_saturated") ? "loadgen_saturated" : "loadgen_bound";
        if (p->value(verdict, false)) ++loadgen_saturated;
        if (auto share = p->find("server_busy_share"); share != p->end() && share->is_number())
            shares.push_back(share->get<double>());
    }
    return judge_limit(2 * loadgen_saturated > repeats.size(), median(std::move(shares)));
}

}  // namespace mux::sweep
