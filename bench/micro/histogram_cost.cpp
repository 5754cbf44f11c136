// Notes about the histogram record cost
// - muxload records one latency per reply into a per-thread Histogram (common/histogram.hpp):
//   an index computation and an increment, no allocation, no atomics. This is that cost, so
//   it can be set against the microseconds a request costs and shown to be negligible.
// - The values come from a precomputed log-uniform spread between 1 us and 60 s, so the
//   index computation sees every bucket range rather than one hot bucket; generating them is
//   outside the timed loop. `values` is the spread's length (a power of two for cheap
//   wrap-around).
// - BM_HistogramMerge is what muxload pays once per thread at the end of a run.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "histogram.hpp"

namespace {

std::vector<uint64_t> log_uniform_latencies_ns(size_t n) {
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> exponent(std::log(1e3), std::log(60e9));
    std::vector<uint64_t> values(n);
    for (auto& v : values) v = static_cast<uint64_t>(std::exp(exponent(rng)));
    return values;
}

void BM_HistogramRecord(benchmark::State& state) {
    const auto values = log_uniform_latencies_ns(static_cast<size_t>(state.range(0)));
    const size_t mask = values.size() - 1;
    mux::Histogram histogram;
    size_t i = 0;
    for (auto _ : state) {
        histogram.record(values[i++ & mask]);
    }
    benchmark::DoNotOptimize(histogram.count());
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramRecord)->Arg(1 << 16)->ArgNames({"values"});

void BM_HistogramMerge(benchmark::State& state) {
    mux::Histogram source, target;
    for (uint64_t v : log_uniform_latencies_ns(1 << 16)) source.record(v);
    for (auto _ : state) {
        target.merge(source);
    }
    benchmark::DoNotOptimize(target.count());
    state.counters["buckets"] = static_cast<double>(source.bucket_count());
}
BENCHMARK(BM_HistogramMerge);

}  // namespace
