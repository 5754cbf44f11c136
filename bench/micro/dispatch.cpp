// Dispatch cost: one round of waiting on N registered fds of which K are ready, for
// select, poll, epoll level-triggered and epoll edge-triggered.
//
// What one round is
// - Untimed, before the wait: write one byte to each of the K active pairs, so the K
//   readers are readable when the wait starts. Nothing sleeps: the wait's timeout is 0 and
//   a round that does not find exactly K ready fds stops the benchmark with an error.
// - TIMED: the wait call plus what the application must do to learn which fds are ready.
//   select: copy the master fd_set (select overwrites its argument), select(), and scan
//   FD_ISSET up to the highest fd. poll: poll() on the N-entry array and scan all N
//   revents. epoll: epoll_wait(), which hands back only the ready fds.
// - Untimed, after the wait: read the byte from each ready fd (one read empties it, since
//   exactly one byte was queued; edge-triggered epoll needs nothing more to re-arm).
// - Registration (fd_set, pollfd array, epoll_ctl ADD of all N) happens once, before the
//   timing loop, and is measured separately in registration.cpp.
// The clock is read around the timed part of every round (UseManualTime); steady_clock
// costs about 20 ns per read on the vDSO, a constant that shifts every line equally.
//
// How this differs from libevent's bench.c
// - bench.c re-registers every fd before starting its clock and times a whole event-loop
//   run, including the callbacks' reads and the writes they chain. Here the K writes and K
//   reads are outside the clock, so the figure is the waiting primitive's own cost and
//   K = 100 is not swamped by 200 syscalls of I/O.
//
// Which fds
// - Every registered fd is a unix stream socket: N/2 socketpairs with both ends registered
//   (see SocketSet). A pair's second end writes, its first end becomes readable, the second
//   end stays idle. One socketpair per registered fd would need 2N fds, 32768 at N = 16384,
//   over the 20000 hard limit; pipes or eventfds would change the per-fd poll callback that
//   select and poll pay N times.
// - K = 100 runs only where N >= 2K (from N = 256), since each active fd needs its own pair.
// - select cannot watch an fd >= FD_SETSIZE (1024); those N are reported as skipped.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "fixtures.hpp"

namespace mux::micro {

namespace {

class SelectWaiter {
  public:
    static constexpr const char* kName = "select";
    bool init(const SocketSet& set, std::string* error) {
        max_fd_ = set.max_fd();
        if (max_fd_ >= FD_SETSIZE) {
            *error = fmt::format("select: fd {} >= FD_SETSIZE {} with {} registered fds", max_fd_,
                                 FD_SETSIZE, set.fds().size());
            return false;
        }
        FD_ZERO(&master_);
        for (int fd : set.fds()) FD_SET(fd, &master_);
        return true;
    }
    int wait(int* ready) {
        fd_set work = master_;
        timeval no_wait{0, 0};
        if (select(max_fd_ + 1, &work, nullptr, nullptr, &no_wait) < 0) return -1;
        int count = 0;
        for (int fd = 0; fd <= max_fd_; ++fd)
            if (FD_ISSET(fd, &work)) ready[count++] = fd;
        return count;
    }

  private:
    fd_set master_{};
    int max_fd_ = -1;
};

class PollWaiter {
  public:
    static constexpr const char* kName = "poll";
    bool init(const SocketSet& set, std::string*) {
        for (int fd : set.fds()) pfds_.push_back({fd, POLLIN, 0});
        return true;
    }
    int wait(int* ready) {
        if (poll(pfds_.data(), pfds_.size(), 0) < 0) return -1;
        int count = 0;
        for (const pollfd& p : pfds_)
            if (p.revents != 0) ready[count++] = p.fd;
        return count;
    }

  private:
    std::vector<pollfd> pfds_;
};

template <bool kEdge>
class EpollWaiter {
  public:
    static constexpr const char* kName = kEdge ? "epoll-et" : "epoll-lt";
    ~EpollWaiter() {
        if (ep_ >= 0) close(ep_);
    }
    bool init(const SocketSet& set, std::string* error) {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) {
            *error = fmt::format("epoll_create1: {}", std::strerror(errno));
            return false;
        }
        for (int fd : set.fds()) {
            epoll_event ev{};
            ev.events = EPOLLIN | (kEdge ? EPOLLET : 0u);
            ev.data.fd = fd;
            if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
                *error = fmt::format("epoll_ctl ADD fd {}: {}", fd, std::strerror(errno));
                return false;
            }
        }
        events_.resize(set.fds().size());
        return true;
    }
    int wait(int* ready) {
        int n = epoll_wait(ep_, events_.data(), static_cast<int>(events_.size()), 0);
        for (int i = 0; i < n; ++i) ready[i] = events_[i].data.fd;
        return n;
    }

  private:
    int ep_ = -1;
    std::vector<epoll_event> events_;
};

// Returns false (and skips the benchmark) if a write that should make a reader ready fails.
bool make_ready(benchmark::State& state, const std::vector<int>& writers) {
    const char byte = 'x';
    for (int fd : writers) {
        if (write(fd, &byte, 1) != 1) {
            state.SkipWithError(
                fmt::format("write to fd {}: {}", fd, std::strerror(errno)).c_str());
            return false;
        }
    }
    return true;
}

void drain(const int* ready, int count) {
    char sink[16];
    for (int i = 0; i < count; ++i) benchmark::DoNotOptimize(read(ready[i], sink, sizeof sink));
}

template <typename Waiter>
void BM_Dispatch(benchmark::State& state) {
    const int64_t fds = state.range(0);
    const int64_t active = state.range(1);
    SocketSet set;
    Waiter waiter;
    std::string error;
    if (!set.open(fds, &error) || !waiter.init(set, &error)) {
        state.SkipWithError(error.c_str());
        return;
    }
    const SocketSet::Active pairs = set.spread_active(active);
    std::vector<int> ready(static_cast<size_t>(fds));
    double total_ns = 0;
    for (auto _ : state) {
        if (!make_ready(state, pairs.writers)) break;
        auto start = std::chrono::steady_clock::now();
        int count = waiter.wait(ready.data());
        auto stop = std::chrono::steady_clock::now();
        double ns = std::chrono::duration<double, std::nano>(stop - start).count();
        state.SetIterationTime(ns * 1e-9);
        total_ns += ns;
        if (count != active) {
            state.SkipWithError(fmt::format("{} reported {} ready fds, expected {} ({})",
                                            Waiter::kName, count, active,
                                            count < 0 ? std::strerror(errno) : "wrong count")
                                    .c_str());
            break;
        }
        drain(ready.data(), count);
    }
    set_per_round_counters(state, total_ns, fds);
}

// One registration per model; the names read BM_DispatchPoll/fds:1024/active:1.
BENCHMARK(BM_Dispatch<SelectWaiter>)
    ->Name("BM_DispatchSelect")
    ->Apply(dispatch_args)
    ->UseManualTime();
BENCHMARK(BM_Dispatch<PollWaiter>)->Name("BM_DispatchPoll")->Apply(dispatch_args)->UseManualTime();
BENCHMARK(BM_Dispatch<EpollWaiter<false>>)
    ->Name("BM_DispatchEpollLT")
    ->Apply(dispatch_args)
    ->UseManualTime();
BENCHMARK(BM_Dispatch<EpollWaiter<true>>)
    ->Name("BM_DispatchEpollET")
    ->Apply(dispatch_args)
    ->UseManualTime();

}  // namespace
}  // namespace mux::micro
