#include "schedule.hpp"

#include <algorithm>
#include <numeric>
#include <utility>

namespace mux::load {

uint64_t derive_seed(uint64_t run_seed, uint32_t thread, uint32_t stream) {
    // An odd multiplier is a bijection, so distinct (thread, stream) give distinct states.
    Rng mix(run_seed ^ (((uint64_t(thread) << 32) | stream) * 0xd1b54a32d192ed03ull));
    mix.next();
    return mix.next();
}

std::vector<ArrivalShare> arrival_shares(const std::vector<uint32_t>& active_per_thread) {
    uint32_t divisor = 0;
    for (uint32_t a : active_per_thread) divisor = std::gcd(divisor, a);
    struct Ideal {
        uint32_t thread;
        uint32_t n;  // the thread's n-th instant, ideally at (2n + 1) / (2 w) of the cycle
    };
    std::vector<uint32_t> weight;
    std::vector<Ideal> ideals;
    for (uint32_t t = 0; t < active_per_thread.size(); ++t) {
        weight.push_back(active_per_thread[t] / divisor);
        for (uint32_t n = 0; n < weight[t]; ++n) ideals.push_back({t, n});
    }
    // (2n + 1) / w_t < (2m + 1) / w_s, in integers; ties go to the lower thread.
    std::sort(ideals.begin(), ideals.end(), [&](const Ideal& a, const Ideal& b) {
        uint64_t left = (2 * uint64_t(a.n) + 1) * weight[b.thread];
        uint64_t right = (2 * uint64_t(b.n) + 1) * weight[a.thread];
        return left != right ? left < right : a.thread < b.thread;
    });
    std::vector<ArrivalShare> shares(active_per_thread.size());
    for (ArrivalShare& share : shares) {
        share.instants.clear();
        share.of = uint32_t(ideals.size());
    }
    for (uint32_t k = 0; k < ideals.size(); ++k) shares[ideals[k].thread].instants.push_back(k);
    return shares;
}

ArrivalSchedule::ArrivalSchedule(double rate_per_s, Arrival arrival, uint64_t start_ns,
                                 uint64_t seed, ArrivalShare share)
    : period_ns_(1e9 / rate_per_s),
      merged_period_ns_(period_ns_ * double(share.instants.size()) / share.of),
      share_(std::move(share)),
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
    uint64_t count = share_.instants.size();
    uint64_t k = n / count * share_.of + share_.instants[n % count];
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
