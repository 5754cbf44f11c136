// The check's two other exact tests: Fisher's, for a change in how many repeats failed, and a
// permutation test of whole repeats, for a shift that shows at many points at once.
#pragma once

#include <cstddef>
#include <span>

namespace mux::check {

struct ExactTest {
    double p = 1;      // two-sided
    double min_p = 1;  // the smallest p any outcome with these margins could give
};

// Fisher's exact test of k_a of n_a against k_b of n_b (here, failed repeats of all repeats).
// Two-sided as scipy.stats.fisher_exact: the sum of the probabilities of every table, with
// the same margins, no more likely than the one observed.
ExactTest fisher_exact(size_t k_a, size_t n_a, size_t k_b, size_t n_b);

// A two-sample permutation test of whole repeats: every way of choosing which of the pooled
// scores are the second sample's is equally likely when nothing changed, and the statistic is
// the sum of the second sample's scores. Scores must be multiples of 1/2 (sums of midranks).
// Two-sided: 2 min(P(S <= s), P(S >= s)), at most 1. Exact by counting subset sums; past a
// size where counting would take too long, the normal approximation of a sample sum.
ExactTest repeats_sum_test(std::span<const double> base, std::span<const double> current);

}  // namespace mux::check
