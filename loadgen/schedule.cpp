#include "schedule.hpp"

namespace mux::load {

uint64_t derive_seed(uint64_t run_seed, uint32_t thread, uint32_t stream) {
    // An odd multiplier is a bijection, so distinct (thread, stream) give distinct states.
    Rng mix(run_seed ^ (((uint64_t(thread) << 32) | stream) * 0xd1b54a32d192ed03ull));
    mix.next();
    return mix.next();
}

uint64_t thread_schedule_start_ns(uint64_t run_start_ns, uint32_t thread, double total_rate_per_s) {
    return run_start_ns + static_cast<uint64_t>(double(thread) * 1e9 / total_rate_per_s);
}

ArrivalSchedule::ArrivalSchedule(double rate_per_s, Arrival arrival, uint64_t start_ns,
                                 uint64_t seed)
    : period_ns_(1e9 / rate_per_s),
      arrival_(arrival),
      start_ns_(start_ns),
      next_ns_(start_ns),
      rng_(seed) {}

uint64_t ArrivalSchedule::take() {
    uint64_t intended = next_ns_;
    taken_ += 1;
    if (arrival_ == Arrival::Uniform) {
        // From the start each time, so rounding never accumulates into drift.
        next_ns_ = start_ns_ + static_cast<uint64_t>(double(taken_) * period_ns_);
    } else {
        // Exponential gaps: -ln(1 - U) * mean.
        poisson_offset_ns_ += -std::log1p(-rng_.uniform()) * period_ns_;
        next_ns_ = start_ns_ + static_cast<uint64_t>(poisson_offset_ns_);
    }
    return intended;
}

}  // namespace mux::load
