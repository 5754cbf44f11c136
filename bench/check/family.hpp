// How the check holds its false-alarm rate over all of its tests at once.
//
// --alpha is the chance that noise alone makes any test of a check significant. It is shared
// equally by the kinds of test the check makes (single points, and pooled judgements of each
// model's metric across its points), and within a kind by Holm's step-down: weighted Holm
// over the union, so the share of a test that is rejected passes to the rest.
//
// A test that cannot reach significance with its sample sizes (the smallest p any outcome could
// give is not below its level) is untestable and left out, in the count of the family as in
// the step-down. Which tests those are depends on the family's size, which depends on them;
// Tarone's rule settles it: the family is the K tests whose smallest possible p is below
// share / K, for the smallest K with at most K such tests.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace mux::check {

struct FamilyTest {
    double p = 1, min_p = 1;
    size_t kind = 0;        // which share of alpha it draws on
    bool testable = false;  // set by hold_family
    double p_holm = 1;      // set by hold_family: significant when below alpha
};

struct FamilyShare {
    double alpha = 0;       // this kind's share of the check's alpha
    size_t candidates = 0;  // tests of this kind
    size_t size = 0;        // K: its family size, so its strictest step is alpha / K
    size_t testable = 0;    // tests that can reach alpha / K
};

// Fills in testable and p_holm for every test; returns each kind's share (kinds 0 .. kinds-1).
std::vector<FamilyShare> hold_family(std::span<FamilyTest* const> tests, double alpha,
                                     size_t kinds);

}  // namespace mux::check
