#include "mann_whitney.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace mux::check {

namespace {
constexpr size_t kExactLimit = 20;

// counts[u] = how many of the C(m+n, m) orderings of m a-values among n b-values give U = u.
// Built up one value at a time: the largest pooled value is either an a (it beats all n b's,
// adding n to U) or a b (adding nothing).
std::vector<double> u_distribution(size_t m, size_t n) {
    // table[i][j] is the distribution for i a-values and j b-values.
    std::vector<std::vector<std::vector<double>>> table(m + 1,
                                                        std::vector<std::vector<double>>(n + 1));
    for (size_t i = 0; i <= m; ++i)
        for (size_t j = 0; j <= n; ++j) {
            auto& here = table[i][j];
            here.assign(i * j + 1, 0.0);
            if (i == 0 || j == 0) {
                here[0] = 1;
                continue;
            }
            const auto& last_is_a = table[i - 1][j];
            const auto& last_is_b = table[i][j - 1];
            for (size_t u = 0; u < last_is_a.size(); ++u) here[u + j] += last_is_a[u];
            for (size_t u = 0; u < last_is_b.size(); ++u) here[u] += last_is_b[u];
        }
    return table[m][n];
}

double normal_two_sided(double z) {
    return std::erfc(std::fabs(z) / std::sqrt(2.0));
}
}  // namespace

UTest mann_whitney_u(std::span<const double> a, std::span<const double> b) {
    UTest result;
    const size_t m = a.size(), n = b.size();
    if (m == 0 || n == 0) return result;

    // Rank the pooled values, giving tied values their average rank.
    std::vector<std::pair<double, bool>> pooled;  // value, is from a
    for (double x : a) pooled.emplace_back(x, true);
    for (double x : b) pooled.emplace_back(x, false);
    std::sort(pooled.begin(), pooled.end(),
              [](const auto& l, const auto& r) { return l.first < r.first; });
    double rank_sum_a = 0, tie_term = 0;
    bool ties = false;
    for (size_t i = 0; i < pooled.size();) {
        size_t j = i;
        while (j < pooled.size() && pooled[j].first == pooled[i].first) ++j;
        double average_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
        for (size_t k = i; k < j; ++k)
            if (pooled[k].second) rank_sum_a += average_rank;
        double t = static_cast<double>(j - i);
        if (j - i > 1) ties = true;
        tie_term += t * t * t - t;
        i = j;
    }
    result.u = rank_sum_a - static_cast<double>(m * (m + 1)) / 2;

    const double mn = static_cast<double>(m * n);
    if (!ties && m <= kExactLimit && n <= kExactLimit) {
        auto counts = u_distribution(m, n);
        double total = 0;
        for (double c : counts) total += c;
        auto u = static_cast<size_t>(std::llround(result.u));
        double at_most = 0, at_least = 0;
        for (size_t k = 0; k <= u; ++k) at_most += counts[k];
        for (size_t k = u; k < counts.size(); ++k) at_least += counts[k];
        result.p = std::min(1.0, 2 * std::min(at_most, at_least) / total);
        result.exact = true;
        return result;
    }
    const double size = static_cast<double>(m + n);
    double variance = mn / 12 * ((size + 1) - tie_term / (size * (size - 1)));
    if (variance <= 0) return result;  // every value tied: no evidence of a difference
    double distance = std::fabs(result.u - mn / 2) - 0.5;  // continuity correction
    result.p = std::min(1.0, normal_two_sided(std::max(0.0, distance) / std::sqrt(variance)));
    return result;
}

double smallest_possible_p(size_t n_a, size_t n_b) {
    if (n_a == 0 || n_b == 0) return 1;
    // C(n_a + n_b, n_a) computed in floating point; exact enough for any sample size here.
    double orderings = 1;
    for (size_t k = 1; k <= n_a; ++k)
        orderings = orderings * static_cast<double>(n_b + k) / static_cast<double>(k);
    return std::min(1.0, 2 / orderings);
}

size_t repeats_needed(double alpha) {
    size_t n = 2;
    while (n < 64 && smallest_possible_p(n, n) >= alpha) ++n;
    return n;
}

}  // namespace mux::check
