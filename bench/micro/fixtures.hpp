// Set-up shared by the microbenchmarks: sets of registered sockets, fd budget checks, and
// the argument lists, so every benchmark family sweeps the same N.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mux::micro {

// N registered fds, all of them sockets, built from N/2 unix socketpairs with BOTH ends
// registered. Pair j is (fds[2j], fds[2j+1]). A pair makes its first end readable by
// writing on its second end; the second end stays idle, so the set holds exactly as many
// sockets as fds are registered. That keeps N = 16384 inside the 20000-fd hard limit,
// where one socketpair per registered fd would need 32768.
class SocketSet {
  public:
    SocketSet() = default;
    ~SocketSet();
    SocketSet(const SocketSet&) = delete;
    SocketSet& operator=(const SocketSet&) = delete;

    // Opens n sockets (n even, non-blocking). On failure closes what it opened and returns
    // false with *error saying why, with the numbers.
    bool open(int64_t n, std::string* error);

    const std::vector<int>& fds() const { return fds_; }
    int max_fd() const;

    // k readers spread evenly over the pairs, and the writer that makes each one readable.
    // Needs k <= n/2.
    struct Active {
        std::vector<int> readers;
        std::vector<int> writers;
    };
    Active spread_active(int64_t k) const;

  private:
    std::vector<int> fds_;
};

// Returns "" when the process may open `needed` more fds, else the reason with the numbers.
std::string check_fd_budget(int64_t needed);

// N from 8 to 16384 by doubling: the sweep every N-dependent family uses.
inline constexpr int64_t kMinFds = 8;
inline constexpr int64_t kMaxFds = 16384;

// Adds {fds, active} pairs for every N and K in {1, 100} with 2K <= N (each active fd needs
// a partner in its pair to write from).
void dispatch_args(benchmark::internal::Benchmark* b);
// Adds {fds} for every N.
void fds_args(benchmark::internal::Benchmark* b);

// A mux1 ECHO request carrying payload_len bytes, encoded by the shared framing module.
std::vector<uint8_t> mux1_echo_request(uint32_t payload_len, uint64_t tag);
// Sends data in one send; returns "" on success, else what went wrong.
std::string send_request(int fd, const std::vector<uint8_t>& data);
// Reads exactly len bytes into buf; returns "" on success, else what went wrong. A Retry
// (EAGAIN or a receive timeout) is a failure: every caller expects the whole answer to be
// there already, or to arrive within the socket's timeout.
std::string read_reply(int fd, uint8_t* buf, size_t len);

// Counters every family reports: ns per timed unit and ns per registered fd.
void set_per_round_counters(benchmark::State& state, double total_ns, int64_t fds);

}  // namespace mux::micro
