// The Mann-Whitney U test: are two small samples drawn from the same distribution?
// It ranks the pooled values, so it needs no assumption of normality and one wild repeat
// cannot drag it far, which suits benchmark repeats on a shared machine.
#pragma once

#include <cstddef>
#include <span>

namespace mux::check {

struct UTest {
    double u = 0;        // U of the first sample: pairs (a, b) with a > b, ties counting 1/2
    double p = 1;        // two-sided p-value
    bool exact = false;  // from the exact distribution (no ties, small samples), else normal
};

// Two-sided test. Exact when there are no ties and both samples have at most 20 values;
// otherwise the normal approximation with tie and continuity corrections.
UTest mann_whitney_u(std::span<const double> a, std::span<const double> b);

// The smallest two-sided p any outcome can give with these sample sizes (complete
// separation): 2 / C(n_a + n_b, n_a). If it is not below alpha, the test cannot find anything.
double smallest_possible_p(size_t n_a, size_t n_b);

// The fewest repeats a side with which the test can reach p < alpha at all.
size_t repeats_needed(double alpha);

}  // namespace mux::check
