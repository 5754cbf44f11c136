#include "histogram.hpp"

#include <bit>
#include <nlohmann/json.hpp>

namespace mux {

Histogram::Histogram(int sub_bucket_bits, uint64_t max_value_ns)
    : sub_bucket_bits_(sub_bucket_bits < 1 ? 1 : (sub_bucket_bits > 16 ? 16 : sub_bucket_bits)),
      sub_bucket_count_(uint64_t{1} << sub_bucket_bits_),
      max_value_ns_(max_value_ns < 1 ? 1 : max_value_ns) {
    counts_.assign(index_of(max_value_ns_) + 1, 0);
}

size_t Histogram::index_of(uint64_t v) const {
    if (v < sub_bucket_count_) return static_cast<size_t>(v);
    int k = 63 - std::countl_zero(v);  // v is in [2^k, 2^(k+1))
    int shift = k - sub_bucket_bits_;
    uint64_t group = static_cast<uint64_t>(shift) + 1;
    uint64_t sub = (v >> shift) - sub_bucket_count_;
    return static_cast<size_t>(group * sub_bucket_count_ + sub);
}

uint64_t Histogram::bucket_low(size_t index) const {
    if (index < sub_bucket_count_) return index;
    uint64_t group = index / sub_bucket_count_;
    uint64_t sub = index % sub_bucket_count_;
    return (sub_bucket_count_ + sub) << (group - 1);
}

uint64_t Histogram::bucket_high(size_t index) const {
    if (index < sub_bucket_count_) return index;
    uint64_t group = index / sub_bucket_count_;
    return bucket_low(index) + (uint64_t{1} << (group - 1)) - 1;
}

uint64_t Histogram::percentile_ns(double q) const {
    if (total_ == 0) return 0;
    if (q <= 0) return min_ns_;
    if (q >= 1) return max_ns_;
    auto rank = static_cast<uint64_t>(q * double(total_));
    if (double(rank) < q * double(total_)) rank += 1;  // ceil
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
        seen += counts_[i];
        if (seen >= rank) {
            uint64_t low = bucket_low(i);
            uint64_t mid = low + (bucket_high(i) - low) / 2;
            if (mid < min_ns_) mid = min_ns_;
            if (mid > max_ns_) mid = max_ns_;
            return mid;
        }
    }
    return max_ns_;
}

bool Histogram::merge(const Histogram& other) {
    if (other.sub_bucket_bits_ != sub_bucket_bits_ || other.max_value_ns_ != max_value_ns_)
        return false;
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    sum_ns_ += other.sum_ns_;
    if (other.total_ > 0) {
        if (other.min_ns_ < min_ns_) min_ns_ = other.min_ns_;
        if (other.max_ns_ > max_ns_) max_ns_ = other.max_ns_;
    }
    return true;
}

void Histogram::reset() {
    std::fill(counts_.begin(), counts_.end(), 0);
    total_ = sum_ns_ = max_ns_ = 0;
    min_ns_ = UINT64_MAX;
}

nlohmann::json Histogram::to_json() const {
    // Up to this many empty buckets are written as zeros inside a run: "0," is 2 characters,
    // and closing a run and opening the next ("],[1234,") about 8.
    constexpr size_t kMostZerosInARun = 3;
    nlohmann::json buckets = nlohmann::json::array();
    nlohmann::json run;
    size_t last = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
        if (counts_[i] == 0) continue;
        if (!run.empty() && i - last - 1 <= kMostZerosInARun) {
            for (size_t gap = last + 1; gap < i; ++gap) run.push_back(0);
        } else {
            if (!run.empty()) buckets.push_back(std::move(run));
            run = nlohmann::json::array({i});
        }
        run.push_back(counts_[i]);
        last = i;
    }
    if (!run.empty()) buckets.push_back(std::move(run));
    return {{"sub_bucket_bits", sub_bucket_bits_},
            {"max_value_ns", max_value_ns_},
            {"count", total_},
            {"min_ns", min_ns()},
            {"max_ns", max_ns_},
            {"sum_ns", sum_ns_},
            {"buckets", std::move(buckets)}};
}

bool Histogram::from_json(const nlohmann::json& j, Histogram* out, std::string* error) {
    try {
        int bits = j.at("sub_bucket_bits").get<int>();
        auto max_value = j.at("max_value_ns").get<uint64_t>();
        if (bits < 1 || bits > 16 || max_value < 1) {
            *error = "histogram parameters out of range: sub_bucket_bits " + std::to_string(bits);
            return false;
        }
        Histogram h(bits, max_value);
        uint64_t total = 0;
        for (const auto& run : j.at("buckets")) {
            if (!run.is_array() || run.size() < 2) {
                *error = "a histogram bucket run is not [first_index, count, ...]: " +
                         run.dump().substr(0, 80);
                return false;
            }
            const auto first = run.at(0).get<uint64_t>();
            if (first >= h.counts_.size() || run.size() - 1 > h.counts_.size() - first) {
                *error = "histogram buckets " + std::to_string(first) + " to " +
                         std::to_string(first + run.size() - 2) + " run past the last (" +
                         std::to_string(h.counts_.size() - 1) + ")";
                return false;
            }
            for (size_t k = 1; k < run.size(); ++k) {
                auto n = run.at(k).get<uint64_t>();
                if (total + n < total) {
                    *error = "histogram bucket counts overflow 64 bits";
                    return false;
                }
                h.counts_[first + k - 1] += n;
                total += n;
            }
        }
        h.total_ = j.at("count").get<uint64_t>();
        if (total != h.total_) {
            *error = "histogram buckets hold " + std::to_string(total) + " values but count says " +
                     std::to_string(h.total_);
            return false;
        }
        h.sum_ns_ = j.at("sum_ns").get<uint64_t>();
        h.max_ns_ = j.at("max_ns").get<uint64_t>();
        h.min_ns_ = total == 0 ? UINT64_MAX : j.at("min_ns").get<uint64_t>();
        *out = std::move(h);
        return true;
    } catch (const nlohmann::json::exception& e) {
        *error = std::string("histogram JSON: ") + e.what();
        return false;
    }
}

}  // namespace mux
