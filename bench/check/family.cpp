#include "family.hpp"

#include <algorithm>

namespace mux::check {

std::vector<FamilyShare> hold_family(std::span<FamilyTest* const> tests, double alpha,
                                     size_t kinds) {
    std::vector<FamilyShare> shares(kinds);
    for (const auto* t : tests) ++shares[t->kind].candidates;
    size_t present = size_t(
        std::count_if(shares.begin(), shares.end(), [](const auto& s) { return s.candidates; }));
    for (size_t kind = 0; kind < kinds; ++kind) {
        FamilyShare& share = shares[kind];
        if (!share.candidates) continue;
        share.alpha = alpha / double(present);
        std::vector<double> smallest;
        for (const auto* t : tests)
            if (t->kind == kind) smallest.push_back(t->min_p);
        std::sort(smallest.begin(), smallest.end());
        // Tarone: the smallest K with at most K tests able to reach share / K.
        for (size_t k = 1; k <= smallest.size(); ++k) {
            size_t able =
                size_t(std::lower_bound(smallest.begin(), smallest.end(), share.alpha / double(k)) -
                       smallest.begin());
            if (able <= k) {
                share.size = k;
                share.testable = able;
                break;
            }
        }
    }

    // Weighted Holm: a testable test weighs its kind's share over K, as a fraction of alpha.
    // In turn from the smallest p / weight, each is held to alpha * weight / (weight still in
    // play); its adjusted p is the running maximum of p * (weight in play) / weight. Weight
    // of tests that could not reach their level stays in play, so the first step of each kind
    // is exactly share / K.
    std::vector<std::pair<FamilyTest*, double>> family;  // test, weight
    for (auto* t : tests) {
        const FamilyShare& share = shares[t->kind];
        t->testable = t->min_p < share.alpha / double(share.size);
        t->p_holm = 1;
        if (t->testable) family.emplace_back(t, share.alpha / alpha / double(share.size));
    }
    std::stable_sort(family.begin(), family.end(), [](const auto& l, const auto& r) {
        return l.first->p / l.second < r.first->p / r.second;
    });
    double in_play = 1, running = 0;
    for (auto& [t, weight] : family) {
        // (in_play cannot truly fall below the weight of a test still in play; rounding can.)
        running = std::max(running, std::min(1.0, t->p * std::max(in_play, weight) / weight));
        t->p_holm = running;
        in_play -= weight;
    }
    return shares;
}

}  // namespace mux::check
