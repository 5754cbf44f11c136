// Registration cost: telling the kernel (or the next select/poll call) what to watch.
//
// - epoll keeps its interest set in the kernel: one epoll_ctl per change, O(log N) in a
//   red-black tree. BM_EpollCtl{Add,Mod,Del}/fds:N time a batch of min(N, 64) operations
//   on distinct fds of an epoll set that already holds N sockets; the undo (DEL after ADD,
//   ADD after DEL) runs outside the clock. ns_per_op is per single epoll_ctl.
// - select and poll keep no state in the kernel: a program that changes its set rebuilds
//   the fd_set or pollfd array in user memory and hands it over again on every call.
//   BM_PollArrayRebuild and BM_FdSetRebuild time that rebuild alone for N fds. The fd
//   numbers 0..N-1 are plain integers here: rebuilding touches only memory, so no fd is
//   opened. An fd_set cannot hold N > FD_SETSIZE fds; those N are skipped.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "fixtures.hpp"

namespace mux::micro {

namespace {

constexpr int kBatch = 64;
using Clock = std::chrono::steady_clock;

double elapsed_ns(Clock::time_point start) {
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

// An epoll set holding N sockets, plus min(N, kBatch) more that are not (yet) in it.
struct EpollFixture {
    SocketSet registered;
    SocketSet extra;
    int ep = -1;
    ~EpollFixture() {
        if (ep >= 0) close(ep);
    }
    bool open(int64_t n, std::string* error) {
        if (!registered.open(n, error) || !extra.open(std::min<int64_t>(n, kBatch), error))
            return false;
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) {
            *error = fmt::format("epoll_create1: {}", std::strerror(errno));
            return false;
        }
        for (int fd : registered.fds())
            if (!ctl(EPOLL_CTL_ADD, fd, EPOLLIN, error)) return false;
        return true;
    }
    bool ctl(int op, int fd, uint32_t events, std::string* error) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        if (epoll_ctl(ep, op, fd, &ev) == 0) return true;
        *error = fmt::format("epoll_ctl op {} fd {}: {}", op, fd, std::strerror(errno));
        return false;
    }
    // Applies op to every fd in fds; returns false at the first failure.
    bool ctl_all(int op, const std::vector<int>& fds, uint32_t events, std::string* error) {
        for (int fd : fds)
            if (!ctl(op, fd, events, error)) return false;
        return true;
    }
};

void set_per_op_counter(benchmark::State& state, double total_ns, size_t batch) {
    state.counters["ns_per_op"] = benchmark::Counter(total_ns / static_cast<double>(batch),
                                                     benchmark::Counter::kAvgIterations);
}

// Which fds each op touches: the extra ones for ADD; for MOD and DEL as many registered
// ones, spread evenly over the set.
std::vector<int> batch_targets(const EpollFixture& fx, int op) {
    if (op == EPOLL_CTL_ADD) return fx.extra.fds();
    const std::vector<int>& all = fx.registered.fds();
    const size_t batch = fx.extra.fds().size();
    std::vector<int> fds;
    for (size_t i = 0; i < batch; ++i) fds.push_back(all[i * (all.size() / batch)]);
    return fds;
}

template <int kOp>
void BM_EpollCtl(benchmark::State& state) {
    EpollFixture fx;
    std::string error;
    if (!fx.open(state.range(0), &error)) {
        state.SkipWithError(error.c_str());
        return;
    }
    const std::vector<int> fds = batch_targets(fx, kOp);
    double total_ns = 0;
    bool flip = false;
    for (auto _ : state) {
        // MOD flips EPOLLRDHUP, which a socket nobody closes never reports, so the batch
        // changes the interest mask without making anything ready.
        flip = !flip;
        const uint32_t events = EPOLLIN | (kOp == EPOLL_CTL_MOD && flip ? EPOLLRDHUP : 0u);
        auto start = Clock::now();
        bool ok = fx.ctl_all(kOp, fds, events, &error);
        double ns = elapsed_ns(start);
        state.SetIterationTime(ns * 1e-9);
        total_ns += ns;
        if (ok && kOp == EPOLL_CTL_ADD) ok = fx.ctl_all(EPOLL_CTL_DEL, fds, 0, &error);
        if (ok && kOp == EPOLL_CTL_DEL) ok = fx.ctl_all(EPOLL_CTL_ADD, fds, EPOLLIN, &error);
        if (!ok) {
            state.SkipWithError(error.c_str());
            break;
        }
    }
    set_per_op_counter(state, total_ns, fds.size());
}

void BM_PollArrayRebuild(benchmark::State& state) {
    const auto n = static_cast<size_t>(state.range(0));
    std::vector<int> fds(n);
    for (size_t i = 0; i < n; ++i) fds[i] = static_cast<int>(i);
    std::vector<pollfd> pfds(n);
    auto start = Clock::now();
    for (auto _ : state) {
        for (size_t i = 0; i < n; ++i) pfds[i] = {fds[i], POLLIN, 0};
        benchmark::DoNotOptimize(pfds.data());
        benchmark::ClobberMemory();
    }
    set_per_round_counters(state, elapsed_ns(start), state.range(0));
}

void BM_FdSetRebuild(benchmark::State& state) {
    const int64_t n = state.range(0);
    if (n > FD_SETSIZE) {
        state.SkipWithError(
            fmt::format("fd_set holds fds below FD_SETSIZE {}, asked for {}", FD_SETSIZE, n)
                .c_str());
        return;
    }
    fd_set set;
    auto start = Clock::now();
    for (auto _ : state) {
        FD_ZERO(&set);
        for (int fd = 0; fd < n; ++fd) FD_SET(fd, &set);
        benchmark::DoNotOptimize(&set);
        benchmark::ClobberMemory();
    }
    set_per_round_counters(state, elapsed_ns(start), n);
}

BENCHMARK(BM_EpollCtl<EPOLL_CTL_ADD>)->Name("BM_EpollCtlAdd")->Apply(fds_args)->UseManualTime();
BENCHMARK(BM_EpollCtl<EPOLL_CTL_MOD>)->Name("BM_EpollCtlMod")->Apply(fds_args)->UseManualTime();
BENCHMARK(BM_EpollCtl<EPOLL_CTL_DEL>)->Name("BM_EpollCtlDel")->Apply(fds_args)->UseManualTime();
BENCHMARK(BM_PollArrayRebuild)->Apply(fds_args);
BENCHMARK(BM_FdSetRebuild)->Apply(fds_args);

}  // namespace
}  // namespace mux::micro
