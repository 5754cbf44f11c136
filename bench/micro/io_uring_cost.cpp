// io_uring's kernel entry, shared: why the io-uring model's syscalls per request can fall
// far below one.
//
// - BM_UringNopBatch/batch:B: one iteration prepares B no-op SQEs, hands them to the kernel
//   and waits for their B CQEs with one io_uring_submit_and_wait, then reaps them from the
//   shared ring without another syscall. ns_per_op divides by B: the one kernel entry is
//   paid once for B operations, which is what the model does with a pass's sends and
//   re-arms. A NOP does no I/O, so this is the ring's own cost, not a socket's.
// - The ring is set up as the model's (SINGLE_ISSUER | DEFER_TASKRUN where the kernel has
//   them). Where the kernel refuses io_uring the family is skipped with the reason.
#include <liburing.h>

#include <chrono>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "fixtures.hpp"

namespace mux::micro {

namespace {

class Ring {
  public:
    ~Ring() {
        if (ready_) io_uring_queue_exit(&ring_);
    }
    std::string open(unsigned entries) {
        io_uring_params params{};
        params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        int rc = io_uring_queue_init_params(entries, &ring_, &params);
        if (rc == -EINVAL) {
            params = {};
            rc = io_uring_queue_init_params(entries, &ring_, &params);
        }
        if (rc < 0)
            return fmt::format("io_uring unavailable: io_uring_setup: {}", std::strerror(-rc));
        ready_ = true;
        return "";
    }
    io_uring* get() { return &ring_; }

  private:
    io_uring ring_{};
    bool ready_ = false;
};

void BM_UringNopBatch(benchmark::State& state) {
    const auto batch = static_cast<unsigned>(state.range(0));
    Ring ring;
    if (std::string error = ring.open(256); !error.empty()) {
        state.SkipWithError(error.c_str());
        return;
    }
    double total_ns = 0;
    for (auto _ : state) {
        auto start = std::chrono::steady_clock::now();
        for (unsigned i = 0; i < batch; ++i) io_uring_prep_nop(io_uring_get_sqe(ring.get()));
        int rc = io_uring_submit_and_wait(ring.get(), batch);
        if (rc < 0) {
            state.SkipWithError(
                fmt::format("io_uring_submit_and_wait: {}", std::strerror(-rc)).c_str());
            break;
        }
        unsigned head, seen = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(ring.get(), head, cqe) {
            ++seen;
        }
        io_uring_cq_advance(ring.get(), seen);
        double ns =
            std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
                .count();
        state.SetIterationTime(ns / 1e9);
        total_ns += ns;
        if (seen != batch) {
            state.SkipWithError(fmt::format("reaped {} CQEs for {} NOPs", seen, batch).c_str());
            break;
        }
    }
    state.counters["ns_per_op"] =
        benchmark::Counter(total_ns / batch, benchmark::Counter::kAvgIterations);
}

BENCHMARK(BM_UringNopBatch)->ArgName("batch")->Arg(1)->Arg(8)->Arg(64)->Arg(256)->UseManualTime();

}  // namespace
}  // namespace mux::micro
