#include "mann_whitney.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace mux::check {

namespace {

// Row t of Pascal's triangle.
std::vector<double> binomials(size_t t) {
    std::vector<double> row(t + 1, 1.0);
    for (size_t j = 1; j < t; ++j) row[j] = row[j - 1] * double(t - j + 1) / double(j);
    return row;
}

double normal_two_sided(double z) {
    return std::erfc(std::fabs(z) / std::sqrt(2.0));
}

// z with P(Z > z) = upper, by bisection: no inverse of erfc in the standard library.
double normal_quantile_above(double upper) {
    double lo = 0, hi = 40;
    for (int i = 0; i < 200; ++i) {
        double mid = (lo + hi) / 2;
        (0.5 * std::erfc(mid / std::sqrt(2.0)) > upper ? lo : hi) = mid;
    }
    return (lo + hi) / 2;
}

// The pooled values of a and b sorted, as tie groups: how many of a and of b share each value.
struct TieGroup {
    size_t a = 0, b = 0;
};
std::vector<TieGroup> tie_groups(std::span<const double> a, std::span<const double> b) {
    std::vector<std::pair<double, bool>> pooled;  // value, is from a
    pooled.reserve(a.size() + b.size());
    for (double x : a) pooled.emplace_back(x, true);
    for (double x : b) pooled.emplace_back(x, false);
    std::sort(pooled.begin(), pooled.end(),
              [](const auto& l, const auto& r) { return l.first < r.first; });
    std::vector<TieGroup> groups;
    for (size_t i = 0; i < pooled.size(); ++i) {
        if (i == 0 || pooled[i].first != pooled[i - 1].first) groups.emplace_back();
        (pooled[i].second ? groups.back().a : groups.back().b) += 1;
    }
    return groups;
}

}  // namespace

// Tie groups are taken in value order. Placing j of the group's t values in a (C(t, j) ways)
// adds, for each of those j, 2 for every b in an earlier group and 1 for every b tied with it
// in this one: 2U grows by 2 j b_before + j (t - j). counts[i][v] carries the ways to have
// placed i of a's values so far with 2U == v.
UDistribution::UDistribution(size_t m, size_t n, std::span<const size_t> tie_groups) {
    const size_t width = 2 * m * n + 1;
    std::vector<double> ways((m + 1) * width, 0.0), next;
    ways[0] = 1;
    size_t before = 0;  // values in earlier groups
    for (size_t t : tie_groups) {
        next.assign(ways.size(), 0.0);
        auto choose = binomials(t);
        for (size_t i = 0; i <= std::min(m, before); ++i) {
            if (before - i > n) continue;
            size_t b_before = before - i;
            size_t reach = std::min(width - 1, 2 * i * b_before);  // the largest 2U so far
            for (size_t v = 0; v <= reach; ++v) {
                double w = ways[i * width + v];
                if (w == 0) continue;
                for (size_t j = 0; j <= t && i + j <= m; ++j) {
                    size_t b_here = t - j;
                    if (b_before + b_here > n) continue;
                    next[(i + j) * width + v + 2 * j * b_before + j * b_here] += w * choose[j];
                }
            }
        }
        ways.swap(next);
        before += t;
    }
    counts_.assign(ways.begin() + long(m * width), ways.end());
    for (double c : counts_) total_ += c;
    lowest_ = 0;
    while (lowest_ + 1 < long(counts_.size()) && counts_[size_t(lowest_)] == 0) ++lowest_;
    highest_ = long(counts_.size()) - 1;
    while (highest_ > 0 && counts_[size_t(highest_)] == 0) --highest_;
}

double UDistribution::at_most(long twice_u) const {
    double sum = 0;
    for (long k = 0; k <= std::min(twice_u, long(counts_.size()) - 1); ++k)
        sum += counts_[size_t(k)];
    return sum / total_;
}

double UDistribution::at_least(long twice_u) const {
    double sum = 0;
    for (long k = std::max(twice_u, 0L); k < long(counts_.size()); ++k) sum += counts_[size_t(k)];
    return sum / total_;
}

double UDistribution::two_sided(long twice_u) const {
    return std::min(1.0, 2 * std::min(at_most(twice_u), at_least(twice_u)));
}

double UDistribution::smallest_p() const {
    return std::min(1.0,
                    2 * std::min(counts_[size_t(lowest_)], counts_[size_t(highest_)]) / total_);
}

UTest mann_whitney_u(std::span<const double> a, std::span<const double> b) {
    UTest result;
    const size_t m = a.size(), n = b.size();
    if (m == 0 || n == 0) return result;

    auto groups = tie_groups(a, b);
    long twice_u = 0;
    size_t b_before = 0;
    double tie_term = 0;
    std::vector<size_t> sizes;
    for (const auto& g : groups) {
        twice_u += long(g.a * (2 * b_before + g.b));
        b_before += g.b;
        double t = double(g.a + g.b);
        tie_term += t * t * t - t;
        sizes.push_back(g.a + g.b);
    }
    result.u = double(twice_u) / 2;

    if (m <= kExactLimit && n <= kExactLimit) {
        UDistribution null(m, n, sizes);
        result.p = null.two_sided(twice_u);
        result.min_p = null.smallest_p();
        result.exact = true;
        return result;
    }
    const double mn = double(m * n), size = double(m + n);
    double variance = mn / 12 * ((size + 1) - tie_term / (size * (size - 1)));
    if (variance <= 0) return result;  // every value tied: no evidence of a difference
    auto p_at = [&](double u) {        // with the continuity correction
        double distance = std::max(0.0, std::fabs(u - mn / 2) - 0.5);
        return std::min(1.0, normal_two_sided(distance / std::sqrt(variance)));
    };
    result.p = p_at(result.u);
    result.min_p = p_at(0);
    return result;
}

Shift hodges_lehmann(std::span<const double> a, std::span<const double> b, double confidence) {
    Shift shift;
    const size_t m = a.size(), n = b.size();
    if (m == 0 || n == 0) return shift;
    std::vector<double> d;
    d.reserve(m * n);
    for (double x : a)
        for (double y : b) d.push_back(y - x);
    std::sort(d.begin(), d.end());
    const size_t mn = d.size();
    shift.estimate = mn % 2 ? d[mn / 2] : (d[mn / 2 - 1] + d[mn / 2]) / 2;

    // The interval [d_(k), d_(mn+1-k)] covers the true shift with probability
    // 1 - 2 P(U <= k - 1) for continuous data; k is the largest that keeps this >= confidence.
    const double tail = (1 - confidence) / 2;
    size_t k = 0;
    if (m <= kExactLimit && n <= kExactLimit) {
        std::vector<size_t> untied(m + n, 1);
        UDistribution null(m, n, untied);
        while (k < mn / 2 && null.at_most(2 * long(k)) <= tail) ++k;
    } else {
        double sigma = std::sqrt(double(mn) * double(m + n + 1) / 12);
        double z = normal_quantile_above(tail);
        k = size_t(std::max(0.0, std::floor(double(mn) / 2 - z * sigma + 0.5)));
        k = std::min(k, mn / 2);
    }
    if (k >= 1) {
        shift.low = d[k - 1];
        shift.high = d[mn - k];
    }
    return shift;
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
