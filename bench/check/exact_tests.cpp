#include "exact_tests.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace mux::check {

namespace {

double log_choose(size_t n, size_t k) {
    return std::lgamma(double(n) + 1) - std::lgamma(double(k) + 1) - std::lgamma(double(n - k) + 1);
}

// Counting subset sums costs (values) x (subset size) x (range of sums) steps; past this, the
// normal approximation. The check meets a few thousand steps per test.
constexpr double kMostCountingSteps = 2e8;

}  // namespace

ExactTest fisher_exact(size_t k_a, size_t n_a, size_t k_b, size_t n_b) {
    ExactTest result;
    const size_t k = k_a + k_b, n = n_a + n_b;
    if (n_a == 0 || n_b == 0 || k_a > n_a || k_b > n_b) return result;
    // x: how many of the k events fall in a; hypergeometric.
    const size_t lo = k > n_b ? k - n_b : 0, hi = std::min(k, n_a);
    std::vector<double> probability(hi + 1, 0.0);
    for (size_t x = lo; x <= hi; ++x)
        probability[x] = std::exp(log_choose(n_a, x) + log_choose(n_b, k - x) - log_choose(n, k));
    auto p_of = [&](size_t x) {
        double sum = 0;  // scipy's relative tolerance, so equal probabilities count as equal
        for (size_t y = lo; y <= hi; ++y)
            if (probability[y] <= probability[x] * (1 + 1e-7)) sum += probability[y];
        return std::min(1.0, sum);
    };
    result.p = p_of(k_a);
    for (size_t x = lo; x <= hi; ++x) result.min_p = std::min(result.min_p, p_of(x));
    return result;
}

ExactTest repeats_sum_test(std::span<const double> base, std::span<const double> current) {
    ExactTest result;
    const size_t n = base.size() + current.size(), k = current.size();
    if (base.empty() || current.empty()) return result;
    std::vector<long> twice;  // scores in halves, so sums are whole numbers
    for (auto side : {base, current})
        for (double s : side) twice.push_back(std::lround(2 * s));
    long lowest = 0, highest = 0, observed = 0;
    for (long v : twice) (v < 0 ? lowest : highest) += v;
    for (size_t i = base.size(); i < n; ++i) observed += twice[i];
    const size_t width = size_t(highest - lowest) + 1;

    if (double(n) * double(k) * double(width) > kMostCountingSteps) {
        // The sum of k of n values drawn without replacement: mean k v̄, variance
        // k (n - k) / (n - 1) times the values' population variance.
        double mean = 0, square = 0;
        for (long v : twice) mean += double(v) / double(n);
        for (long v : twice) square += (double(v) - mean) * (double(v) - mean) / double(n);
        double sd = std::sqrt(double(k) * double(n - k) / double(n - 1) * square);
        if (sd <= 0) return result;
        auto p_at = [&](double sum) {
            double distance = std::max(0.0, std::fabs(sum - double(k) * mean) - 0.5);
            return std::min(1.0, std::erfc(distance / sd / std::sqrt(2.0)));
        };
        std::vector<long> sorted = twice;
        std::sort(sorted.begin(), sorted.end());
        long top = 0;
        for (size_t i = n - k; i < n; ++i) top += sorted[i];
        result.p = p_at(double(observed));
        result.min_p = p_at(double(top));
        return result;
    }

    // ways[j][s]: subsets of j of the values seen so far whose sum is lowest + s.
    std::vector<std::vector<double>> ways(k + 1, std::vector<double>(width, 0.0));
    ways[0][size_t(-lowest)] = 1;
    for (size_t i = 0; i < n; ++i)
        for (size_t j = std::min(k, i + 1); j >= 1; --j)
            for (size_t s = 0; s < width; ++s) {
                double w = ways[j - 1][s];
                long to = long(s) + twice[i];
                if (w != 0 && to >= 0 && to < long(width)) ways[j][size_t(to)] += w;
            }
    const auto& counts = ways[k];
    double total = 0, at_most = 0, at_least = 0;
    size_t index = size_t(observed - lowest), first = width, last = 0;
    for (size_t s = 0; s < width; ++s) {
        total += counts[s];
        if (s <= index) at_most += counts[s];
        if (s >= index) at_least += counts[s];
        if (counts[s] != 0) first = std::min(first, s), last = s;
    }
    result.p = std::min(1.0, 2 * std::min(at_most, at_least) / total);
    result.min_p = std::min(1.0, 2 * std::min(counts[first], counts[last]) / total);
    return result;
}

}  // namespace mux::check
