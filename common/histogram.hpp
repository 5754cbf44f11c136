// A log-linear latency histogram in the HdrHistogram style.
//
// Values (nanoseconds) below 2^b are counted exactly. Above, each power of two
// [2^k, 2^(k+1)) is cut into 2^b equal buckets, so a bucket is at most 1/2^b of its lower
// bound wide. Queries answer with the bucket's midpoint (clamped to the exact min and max),
// so the relative error is at most 1/2^(b+1): 0.39% with the default b = 7.
//
// Recording is an index computation and an increment into storage sized once at
// construction: no allocation, no atomics. Each thread records into its own histogram and
// they are merged after join; merging adds counts, so it is exact.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace mux {

class Histogram {
  public:
    static constexpr int kDefaultSubBucketBits = 7;
    static constexpr uint64_t kDefaultMaxValueNs = 60'000'000'000ull;  // 60 s

    explicit Histogram(int sub_bucket_bits = kDefaultSubBucketBits,
                       uint64_t max_value_ns = kDefaultMaxValueNs);

    // Values above max_value_ns land in the top bucket; max_ns() still reports them exactly.
    void record(uint64_t value_ns) {
        counts_[index_of(value_ns < max_value_ns_ ? value_ns : max_value_ns_)] += 1;
        total_ += 1;
        sum_ns_ += value_ns;
        if (value_ns < min_ns_) min_ns_ = value_ns;
        if (value_ns > max_ns_) max_ns_ = value_ns;
    }

    // Adds other's counts. Returns false (and changes nothing) if the parameters differ.
    bool merge(const Histogram& other);
    void reset();

    uint64_t count() const { return total_; }
    uint64_t min_ns() const { return total_ == 0 ? 0 : min_ns_; }
    uint64_t max_ns() const { return max_ns_; }
    uint64_t sum_ns() const { return sum_ns_; }
    double mean_ns() const { return total_ == 0 ? 0.0 : double(sum_ns_) / double(total_); }
    // The value at quantile q in [0, 1]: the smallest recorded value v with at least
    // ceil(q * count) values <= v, to within the bucket error. 0 when empty.
    uint64_t percentile_ns(double q) const;

    int sub_bucket_bits() const { return sub_bucket_bits_; }
    uint64_t max_value_ns() const { return max_value_ns_; }
    size_t bucket_count() const { return counts_.size(); }

    // Bucket geometry, public for tests and for anyone reading the serialised form.
    size_t index_of(uint64_t value_ns) const;
    uint64_t bucket_low(size_t index) const;   // smallest value in the bucket
    uint64_t bucket_high(size_t index) const;  // largest value in the bucket

    // {"sub_bucket_bits", "max_value_ns", "count", "min_ns", "max_ns", "sum_ns",
    //  "buckets": [[first_index, count, count, ...], ...]}: runs of adjacent buckets in index
    // order, each its first index then its counts. Runs hold the non-empty buckets, and the
    // few empty ones between two that are closer than a new run would cost. A run of one
    // bucket is the [index, count] pair of files written before runs.
    nlohmann::json to_json() const;
    // Rebuilds a histogram from to_json's output. On malformed input returns false and says
    // why in *error.
    static bool from_json(const nlohmann::json& j, Histogram* out, std::string* error);

  private:
    int sub_bucket_bits_;
    uint64_t sub_bucket_count_;
    uint64_t max_value_ns_;
    std::vector<uint64_t> counts_;
    uint64_t total_ = 0;
    uint64_t sum_ns_ = 0;
    uint64_t min_ns_ = UINT64_MAX;
    uint64_t max_ns_ = 0;
};

}  // namespace mux
