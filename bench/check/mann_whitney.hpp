// The Mann-Whitney U test and the Hodges-Lehmann shift: are two small samples drawn from the
// same distribution, and if not, by how much is one shifted? Both rank the pooled values, so
// they need no assumption of normality and one wild repeat cannot drag them far, which suits
// benchmark repeats on a shared machine.
//
// Ties are common in real runs (a count of 2.0 syscalls per request, a latency quantised by a
// histogram bucket, an open-loop rate met exactly), so the test uses the exact permutation
// distribution of U given the observed ties: every way of choosing which of the pooled values
// are the first sample's is equally likely when nothing changed, and U is counted for each.
// The normal approximation, which cannot reach the small p a family of a hundred comparisons
// asks for, is used only past kExactLimit values a side.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace mux::check {

// Both samples at most this large: exact distribution; larger: normal approximation.
inline constexpr size_t kExactLimit = 30;

// The permutation distribution of U (in steps of 1/2, as 2U) for samples of m and n values
// whose pooled, sorted values fall into tie groups of the given sizes (all 1: no ties).
class UDistribution {
  public:
    UDistribution(size_t m, size_t n, std::span<const size_t> tie_groups);
    double at_most(long twice_u) const;   // P(2U <= twice_u)
    double at_least(long twice_u) const;  // P(2U >= twice_u)
    // Two-sided: 2 min(P(U <= u), P(U >= u)), at most 1 (scipy's permutation_test's rule).
    double two_sided(long twice_u) const;
    // The smallest two-sided p any assignment gives: at the distribution's ends.
    double smallest_p() const;

  private:
    std::vector<double> counts_;  // counts_[k]: assignments with 2U == k
    double total_ = 0;
    long lowest_ = 0, highest_ = 0;
};

struct UTest {
    double u = 0;        // U of the first sample: pairs (a, b) with a > b, ties counting 1/2
    double p = 1;        // two-sided p-value
    double min_p = 1;    // the smallest p these pooled values allow (complete separation)
    bool exact = false;  // from the exact conditional distribution, else normal
};

// Two-sided test; exact given ties when both samples have at most kExactLimit values,
// otherwise the normal approximation with tie and continuity corrections.
UTest mann_whitney_u(std::span<const double> a, std::span<const double> b);

// The Hodges-Lehmann estimate of how far b is shifted from a: the median of the m n
// differences b_j - a_i, with the exact confidence interval that inverts the U test (the
// k-th smallest and largest differences, k from the tie-free U distribution, or its normal
// approximation past kExactLimit). low/high are empty when the sizes are too small to give
// an interval at that confidence.
struct Shift {
    double estimate = 0;
    std::optional<double> low, high;
};
Shift hodges_lehmann(std::span<const double> a, std::span<const double> b, double confidence);

// The smallest two-sided p any outcome can give with these sample sizes and no ties
// (complete separation): 2 / C(n_a + n_b, n_a).
double smallest_possible_p(size_t n_a, size_t n_b);

// The fewest repeats a side with which the test can reach p < alpha at all.
size_t repeats_needed(double alpha);

}  // namespace mux::check
