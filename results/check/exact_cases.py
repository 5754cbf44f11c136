#!/usr/bin/env python3
"""Reference values for the check's exact tests, written as a C++ table that check_test reads.

Every figure is computed here independently of the C++ code, and cross-checked against scipy
(Debian's python3-scipy) where scipy can compute it:
- U test p and smallest p, given ties: the exact conditional distribution of the first
  sample's midrank sum, by counting subsets of the pooled midranks (not the C++ code's tie-group
  recursion); where all C(n, m) assignments can be listed, also scipy.stats.permutation_test
  with every permutation (scipy's mannwhitneyu(method='exact') ignores ties, so it is no oracle).
  Past 30 values a side, scipy.stats.mannwhitneyu's asymptotic p (tie and continuity corrected).
- Hodges-Lehmann shift and its interval: the median of all pairwise differences, and the k-th
  smallest and largest, k from the tie-free rank-sum distribution.
- Fisher's exact test: scipy.stats.fisher_exact; its smallest p by trying every table.
- The whole-repeats sum test: by listing every way to pick the current run's repeats.

    /usr/bin/python3 results/check/exact_cases.py > results/check/exact_cases.hpp
"""
import itertools
import math
import random
import sys

import numpy as np
from scipy import stats


def midranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and values[order[j]] == values[order[i]]:
            j += 1
        for k in range(i, j):
            ranks[order[k]] = (i + 1 + j) / 2
        i = j
    return ranks


def subset_sum_counts(items, k):
    """counts[s] = number of k-subsets of the (integer) items summing to s."""
    counts = [dict() for _ in range(k + 1)]
    counts[0][0] = 1
    for n, v in enumerate(items):
        for j in range(min(k, n + 1), 0, -1):
            for s, c in counts[j - 1].items():
                counts[j][s + v] = counts[j].get(s + v, 0) + c
    return counts[k]


def two_sided(counts, observed):
    total = sum(counts.values())
    le = sum(c for s, c in counts.items() if s <= observed)
    ge = sum(c for s, c in counts.items() if s >= observed)
    low, high = min(counts), max(counts)
    return min(1.0, 2 * min(le, ge) / total), min(1.0, 2 * min(counts[low], counts[high]) / total)


def u_exact(a, b):
    """Two-sided p and smallest p of the U test given ties, by counting midrank subsets."""
    ranks = midranks(list(a) + list(b))
    twice = [round(2 * r) for r in ranks]
    observed = sum(twice[:len(a)])
    return two_sided(subset_sum_counts(twice, len(a)), observed)


def u_scipy(a, b):
    """The same p from scipy, with every permutation listed."""
    def statistic(x, y, axis):
        return stats.mannwhitneyu(x, y, axis=axis).statistic
    return stats.permutation_test((a, b), statistic, permutation_type="independent",
                                  alternative="two-sided", n_resamples=np.inf,
                                  vectorized=True).pvalue


def hodges_lehmann(a, b, confidence):
    d = sorted(y - x for x in a for y in b)
    mn = len(d)
    estimate = d[mn // 2] if mn % 2 else (d[mn // 2 - 1] + d[mn // 2]) / 2
    # Tie-free U = rank sum of a less m(m+1)/2; P(U <= k - 1) from counting rank subsets.
    m = len(a)
    counts = subset_sum_counts(list(range(1, len(a) + len(b) + 1)), m)
    total = sum(counts.values())
    base = m * (m + 1) // 2
    tail = (1 - confidence) / 2
    k = 0
    while k < mn // 2 and sum(c for s, c in counts.items() if s - base <= k) / total <= tail:
        k += 1
    if k == 0:
        return estimate, None, None
    return estimate, d[k - 1], d[mn - k]


def fisher(ka, na, kb, nb):
    p = stats.fisher_exact([[ka, na - ka], [kb, nb - kb]]).pvalue
    k = ka + kb
    smallest = min(stats.fisher_exact([[x, na - x], [k - x, nb - k + x]]).pvalue
                   for x in range(max(0, k - nb), min(k, na) + 1))
    return min(1.0, p), min(1.0, smallest)


def repeats_sum(base, current):
    scores = list(base) + list(current)
    n, k = len(scores), len(current)
    observed = sum(current)
    sums = [sum(scores[i] for i in pick) for pick in itertools.combinations(range(n), k)]
    le = sum(s <= observed + 1e-9 for s in sums)
    ge = sum(s >= observed - 1e-9 for s in sums)
    low, high = min(sums), max(sums)
    at_low = sum(abs(s - low) < 1e-9 for s in sums)
    at_high = sum(abs(s - high) < 1e-9 for s in sums)
    return min(1.0, 2 * min(le, ge) / len(sums)), min(1.0, 2 * min(at_low, at_high) / len(sums))


def cpp_list(values):
    return "{" + ", ".join(repr(float(v)) for v in values) + "}"


def u_cases():
    cases = [
        ("the issue's small case: 0.040 by the normal approximation",
         [1, 2, 2, 3], [3, 4, 5, 5]),
        ("8 against 8, complete separation, one tied pair in the baseline",
         [1, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15]),
        ("8 against 8, complete separation but for one tie across the runs",
         [1, 2, 3, 4, 5, 6, 7, 8], [8, 9, 10, 11, 12, 13, 14, 15]),
        ("syscalls per request: a count that barely moves",
         [2.0, 2.0, 2.00003, 2.0, 2.0, 2.00001, 2.0, 2.0],
         [2.0, 2.00002, 2.0, 2.0, 2.00004, 2.0, 2.00003, 2.0]),
        ("histogram-quantised p50",
         [95.999, 95.999, 98.047, 95.999, 98.047, 95.999, 93.951, 95.999],
         [98.047, 100.095, 98.047, 98.047, 100.095, 98.047, 98.047, 102.143]),
        ("open-loop throughput met exactly, then missed",
         [5000, 5000, 5000, 5000, 4998, 5000, 5000, 5000],
         [5000, 4990, 4985, 5000, 4970, 4992, 4981, 4987]),
        ("every value tied", [3, 3, 3, 3], [3, 3, 3]),
    ]
    rng = random.Random(14)
    for m, n, levels in [(3, 3, 3), (4, 6, 4), (5, 5, 3), (6, 4, 5), (7, 9, 6), (8, 8, 5),
                         (8, 8, 10), (10, 10, 6), (9, 11, 4), (12, 15, 8), (16, 14, 12),
                         (20, 20, 7), (20, 17, 15), (23, 30, 9)]:
        shift = rng.choice([0, 1, 2])
        a = [rng.randrange(levels) for _ in range(m)]
        b = [rng.randrange(levels) + shift for _ in range(n)]
        cases.append((f"random ties, {m} against {n}, values 0-{levels - 1}, shift {shift}", a, b))
    lines = []
    for why, a, b in cases:
        p, smallest = u_exact(a, b)
        if math.comb(len(a) + len(b), len(a)) <= 200000:
            reference = u_scipy(np.array(a, float), np.array(b, float))
            assert abs(reference - p) <= 1e-9 + 1e-9 * p, (why, reference, p)
        lines.append(f"    // {why}")
        lines.append(f"    {{{cpp_list(a)}, {cpp_list(b)}, {p!r}, {smallest!r}}},")
    return lines


def normal_cases():
    rng = random.Random(7)
    lines = []
    for m, n in [(35, 35), (40, 31)]:
        a = [rng.randrange(12) for _ in range(m)]
        b = [rng.randrange(12) + 1 for _ in range(n)]
        p = stats.mannwhitneyu(a, b, method="asymptotic").pvalue
        lines.append(f"    {{{cpp_list(a)}, {cpp_list(b)}, {p!r}}},")
    return lines


def hl_cases():
    rng = random.Random(3)
    lines = []
    for m, n, confidence in [(3, 3, 0.9), (5, 5, 0.95), (8, 8, 0.95), (8, 8, 0.99), (6, 9, 0.95),
                             (12, 10, 0.9), (20, 20, 0.95)]:
        a = [round(rng.gauss(10, 1), 3) for _ in range(m)]
        b = [round(rng.gauss(11, 1), 3) for _ in range(n)]
        estimate, low, high = hodges_lehmann(a, b, confidence)
        bounds = "false, 0, 0" if low is None else f"true, {low!r}, {high!r}"
        lines.append(f"    {{{cpp_list(a)}, {cpp_list(b)}, {confidence!r}, {estimate!r}, {bounds}}},")
    return lines


def fisher_cases():
    lines = []
    for ka, na, kb, nb in [(0, 8, 8, 8), (0, 8, 1, 8), (0, 8, 7, 8), (1, 8, 3, 8), (2, 8, 2, 8),
                           (8, 8, 8, 8), (0, 10, 10, 10), (0, 8, 3, 8), (5, 9, 0, 7)]:
        p, smallest = fisher(ka, na, kb, nb)
        lines.append(f"    {{{ka}, {na}, {kb}, {nb}, {p!r}, {smallest!r}}},")
    return lines


def repeats_sum_cases():
    rng = random.Random(5)
    lines = []
    for n_base, n_current, points in [(4, 4, 2), (5, 6, 3), (8, 8, 4), (8, 8, 6), (7, 8, 1)]:
        def score():
            return sum(rng.randrange(-7, 8) / 2 for _ in range(points))
        base = [score() for _ in range(n_base)]
        current = [score() + rng.choice([0, 1, 3]) for _ in range(n_current)]
        p, smallest = repeats_sum(base, current)
        lines.append(f"    {{{cpp_list(base)}, {cpp_list(current)}, {p!r}, {smallest!r}}},")
    # Complete separation: the largest sum is unique.
    p, smallest = repeats_sum([-3, -2.5, -2, -1], [1, 2, 2.5, 3])
    lines.append(f"    {{{cpp_list([-3, -2.5, -2, -1])}, {cpp_list([1, 2, 2.5, 3])}, {p!r}, "
                 f"{smallest!r}}},")
    return lines


STRUCTS = {
    "UCase": "std::vector<double> a, b; double p, min_p;",
    "NormalCase": "std::vector<double> a, b; double p;",
    "ShiftCase": "std::vector<double> a, b; double confidence, estimate; bool bounded; "
                 "double low, high;",
    "FisherCase": "size_t k_a, n_a, k_b, n_b; double p, min_p;",
    "RepeatsSumCase": "std::vector<double> base, current; double p, min_p;",
}


def main():
    out = sys.stdout
    out.write("// Generated by results/check/exact_cases.py: reference values for check_test.\n"
              "// Do not edit; re-run the script.\n"
              "#pragma once\n\n#include <cstddef>\n#include <vector>\n\n"
              "namespace exact_cases {\n\n")
    for name, lines in [("UCase", u_cases()), ("NormalCase", normal_cases()),
                        ("ShiftCase", hl_cases()), ("FisherCase", fisher_cases()),
                        ("RepeatsSumCase", repeats_sum_cases())]:
        out.write(f"struct {name} {{\n    {STRUCTS[name]}\n}};\n")
        out.write(f"inline const std::vector<{name}> k{name}s = {{\n")
        for line in lines:
            out.write(line.rstrip() + "\n")
        out.write("};\n\n")
    out.write("}  // namespace exact_cases\n")


if __name__ == "__main__":
    main()
