// The latency histogram against exact sorted values, its merge, and its serialised form.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "histogram.hpp"

namespace {

using mux::Histogram;

// Log-uniform between 1 us and 60 s: every decade of the promised range gets values.
std::vector<uint64_t> log_uniform_values(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> exponent(std::log(1e3), std::log(6e10));
    std::vector<uint64_t> values(n);
    for (auto& v : values) v = static_cast<uint64_t>(std::exp(exponent(rng)));
    return values;
}

uint64_t exact_percentile(std::vector<uint64_t> sorted, double q) {
    auto rank = static_cast<size_t>(std::ceil(q * double(sorted.size())));
    return sorted[std::max<size_t>(rank, 1) - 1];
}

TEST(Histogram, PercentilesWithinOnePercentOfExactSortedValues) {
    auto values = log_uniform_values(200'000, 1);
    Histogram h;
    for (uint64_t v : values) h.record(v);
    std::sort(values.begin(), values.end());
    for (double q : {0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999}) {
        double exact = double(exact_percentile(values, q));
        double got = double(h.percentile_ns(q));
        EXPECT_LE(std::abs(got - exact) / exact, 0.01) << "q=" << q;
    }
    EXPECT_EQ(h.count(), values.size());
    EXPECT_EQ(h.min_ns(), values.front());
    EXPECT_EQ(h.max_ns(), values.back());
    EXPECT_EQ(h.percentile_ns(1.0), values.back());
}

TEST(Histogram, EveryBucketIsNarrowerThanOnePercentOfItsValues) {
    Histogram h;
    for (uint64_t v = 1000; v < 60'000'000'000ull; v = v * 101 / 100 + 7) {
        size_t i = h.index_of(v);
        ASSERT_LE(h.bucket_low(i), v);
        ASSERT_GE(h.bucket_high(i), v);
        double width = double(h.bucket_high(i) - h.bucket_low(i) + 1);
        ASSERT_LE(width / double(h.bucket_low(i)), 0.01) << v;
    }
    // Adjacent buckets tile the line with no gap.
    for (size_t i = 1; i < h.bucket_count(); ++i)
        ASSERT_EQ(h.bucket_low(i), h.bucket_high(i - 1) + 1);
}

TEST(Histogram, SmallValuesAreExact) {
    Histogram h;
    for (uint64_t v = 0; v < 128; ++v) h.record(v);
    EXPECT_EQ(h.percentile_ns(0.5), 63u);
    EXPECT_EQ(h.percentile_ns(0.01), 1u);
}

TEST(Histogram, ValuesAboveTheRangeKeepAnExactMax) {
    Histogram h(7, 1'000'000);
    h.record(5'000'000);
    EXPECT_EQ(h.max_ns(), 5'000'000u);
    EXPECT_EQ(h.count(), 1u);
    EXPECT_EQ(h.percentile_ns(0.5), 5'000'000u);  // clamped to the exact extremes
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne) {
    auto a = log_uniform_values(50'000, 2);
    auto b = log_uniform_values(30'000, 3);
    Histogram ha, hb, all;
    for (uint64_t v : a) ha.record(v), all.record(v);
    for (uint64_t v : b) hb.record(v), all.record(v);
    ASSERT_TRUE(ha.merge(hb));
    EXPECT_EQ(ha.to_json(), all.to_json());
    for (double q : {0.5, 0.99, 0.9999}) EXPECT_EQ(ha.percentile_ns(q), all.percentile_ns(q));
}

TEST(Histogram, MergeRefusesDifferentParameters) {
    Histogram a(7), b(6);
    b.record(1000);
    EXPECT_FALSE(a.merge(b));
    EXPECT_EQ(a.count(), 0u);
}

TEST(Histogram, JsonRoundTripIsLossless) {
    Histogram h;
    for (uint64_t v : log_uniform_values(10'000, 4)) h.record(v);
    auto text = h.to_json().dump();
    Histogram back;
    std::string error;
    ASSERT_TRUE(Histogram::from_json(nlohmann::json::parse(text), &back, &error)) << error;
    EXPECT_EQ(back.to_json(), h.to_json());
    EXPECT_EQ(back.percentile_ns(0.999), h.percentile_ns(0.999));
    EXPECT_EQ(back.sum_ns(), h.sum_ns());
}

TEST(Histogram, JsonListsRunsOfAdjacentBucketsAndReadsThePairsOfOlderFiles) {
    Histogram h;  // exact below 2^7 ns: value v is bucket v
    for (uint64_t v : {10, 11, 11, 13, 40}) h.record(v);
    auto j = h.to_json();
    // 10, 11 and 13 in one run (one empty bucket between them is cheaper than a new run);
    // 40 is too far, so it opens a run of its own.
    EXPECT_EQ(j["buckets"], nlohmann::json::parse("[[10,1,2,0,1],[40,1]]"));
    Histogram back;
    std::string error;
    ASSERT_TRUE(Histogram::from_json(j, &back, &error)) << error;
    EXPECT_EQ(back.to_json(), j);
    // The [index, count] pairs of files written before runs are runs of one bucket.
    j["buckets"] = nlohmann::json::parse("[[10,1],[11,2],[13,1],[40,1]]");
    ASSERT_TRUE(Histogram::from_json(j, &back, &error)) << error;
    EXPECT_EQ(back.to_json(), h.to_json());
    EXPECT_EQ(back.percentile_ns(0.5), h.percentile_ns(0.5));
}

TEST(Histogram, JsonRunsThatAreEmptyPastTheEndOrOverflowingAreRefused) {
    Histogram h;
    h.record(10);
    auto j = h.to_json();
    Histogram back;
    std::string error;
    j["buckets"] = nlohmann::json::parse("[[10]]");
    EXPECT_FALSE(Histogram::from_json(j, &back, &error));
    EXPECT_NE(error.find("first_index"), std::string::npos) << error;
    j["buckets"] = {nlohmann::json::array({h.bucket_count() - 1, 0, 1})};
    EXPECT_FALSE(Histogram::from_json(j, &back, &error));
    EXPECT_NE(error.find("past the last"), std::string::npos) << error;
    j["buckets"] = nlohmann::json::parse("[[10,18446744073709551615,1]]");
    EXPECT_FALSE(Histogram::from_json(j, &back, &error));
    EXPECT_NE(error.find("overflow"), std::string::npos) << error;
}

TEST(Histogram, JsonWithWrongCountOrIndexIsRefused) {
    Histogram h;
    h.record(5000);
    auto j = h.to_json();
    j["count"] = 2;
    Histogram back;
    std::string error;
    EXPECT_FALSE(Histogram::from_json(j, &back, &error));
    EXPECT_NE(error.find("count"), std::string::npos);
    j = h.to_json();
    j["buckets"].push_back({1'000'000, 1});
    j["count"] = 2;
    EXPECT_FALSE(Histogram::from_json(j, &back, &error));
}

}  // namespace
