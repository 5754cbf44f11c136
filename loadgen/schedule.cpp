#include "schedule.hpp"

namespace mux::load {

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
