#include "schedule.hpp"

#include <numeric>

namespace mux::load {

uint64_t derive_seed(uint64_t run_seed, uint32_t thread, uint32_t stream) {
    // An odd multiplier is a bijection, so distinct (thread, stream) give distinct states.
    Rng mix(run_seed ^ (((uint64_t(thread) << 32) | stream) * 0xd1b54a32d192ed03ull));
    mix.next();
    return mix.next();
}

ArrivalShare arrival_share(const std::vector<uint32_t>& active_per_thread, uint32_t thread) {
    uint32_t total = 0, before = 0, divisor = 0;
    for (uint32_t t = 0; t < active_per_thread.size(); ++t) {
        if (t < thread) before += active_per_thread[t];
        total += active_per_thread[t];
        divisor = std::gcd(divisor, active_per_thread[t]);
    }
    return {before / divisor, active_per_thread[thread] / divisor, total / divisor};
}

ArrivalSchedule::ArrivalSchedule(double rate_per_s, Arrival arrival, uint64_t start_ns,
                                 uint64_t seed, ArrivalShare share)
    : period_ns_(1e9 / rate_per_s),
      merged_period_ns_(period_ns_ * share.count / share.of),
      share_(share),
      arrival_(arrival),
      start_ns_(start_ns),
      next_ns_(arrival == Arrival::Uniform ? instant_ns(0) : start_ns),
      rng_(seed) {
    // A Poisson stream's first arrival comes a gap after its start, as every later one
    // does; at the start itself, the T threads of a run would all send at that instant.
    if (arrival == Arrival::Poisson) next_ns_ = start_ns_ + poisson_gap_ns();
}

uint64_t ArrivalSchedule::poisson_gap_ns() {
    // Exponential gaps, -ln(1 - U) * mean, kept as a running sum in double so that
    // truncating each arrival to whole nanoseconds never accumulates.
    poisson_offset_ns_ += -std::log1p(-rng_.uniform()) * period_ns_;
    return static_cast<uint64_t>(poisson_offset_ns_);
}

uint64_t ArrivalSchedule::instant_ns(uint64_t n) const {
    // The n-th of this schedule's instants, counted in the merged stream; from the start
    // each time, so rounding never accumulates into drift.
    uint64_t k = n / share_.count * share_.of + share_.first + n % share_.count;
    return start_ns_ + static_cast<uint64_t>(double(k) * merged_period_ns_);
}

uint64_t ArrivalSchedule::take() {
    uint64_t intended = next_ns_;
    taken_ += 1;
    if (arrival_ == Arrival::Uniform) {
        next_ns_ = instant_ns(taken_);
    } else {
        next_ns_ = start_ns_ + poisson_gap_ns();
    }
    return intended;
}

}  // namespace mux::load
