#include "fixtures.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "mux1.hpp"
#include "net.hpp"

namespace mux::micro {

namespace {
// fds the process holds besides the benchmark's own: stdio, the JSON output, the epoll fd.
int64_t open_fd_count() {
    int64_t count = 0;
    if (DIR* dir = opendir("/proc/self/fd")) {
        while (dirent* entry = readdir(dir))
            if (entry->d_name[0] != '.') ++count;
        closedir(dir);
        --count;  // the directory stream itself
    }
    return count;
}
}  // namespace

SocketSet::~SocketSet() {
    for (int fd : fds_) close(fd);
}

bool SocketSet::open(int64_t n, std::string* error) {
    if (n % 2 != 0) {
        *error = fmt::format("SocketSet needs an even number of fds, got {}", n);
        return false;
    }
    if (std::string budget = check_fd_budget(n); !budget.empty()) {
        *error = budget;
        return false;
    }
    fds_.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i += 2) {
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
            *error =
                fmt::format("socketpair failed after {} of {} fds: {}", i, n, std::strerror(errno));
            for (int fd : fds_) close(fd);
            fds_.clear();
            return false;
        }
        fds_.push_back(pair[0]);
        fds_.push_back(pair[1]);
    }
    return true;
}

int SocketSet::max_fd() const {
    return fds_.empty() ? -1 : *std::max_element(fds_.begin(), fds_.end());
}

SocketSet::Active SocketSet::spread_active(int64_t k) const {
    Active active;
    const size_t pairs = fds_.size() / 2;
    const size_t step = pairs / static_cast<size_t>(k);
    for (size_t i = 0; i < static_cast<size_t>(k); ++i) {
        size_t pair = i * step;
        active.readers.push_back(fds_[2 * pair]);
        active.writers.push_back(fds_[2 * pair + 1]);
    }
    return active;
}

std::string check_fd_budget(int64_t needed) {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return fmt::format("getrlimit: {}", std::strerror(errno));
    const int64_t in_use = open_fd_count();
    const auto soft = static_cast<int64_t>(lim.rlim_cur);
    if (in_use + needed + 16 > soft)
        return fmt::format("fd limit: need {} fds plus {} in use, soft limit is {}", needed, in_use,
                           soft);
    return "";
}

std::vector<uint8_t> mux1_echo_request(uint32_t payload_len, uint64_t tag) {
    std::vector<uint8_t> frame(mux1::kHeaderSize + payload_len, 'p');
    mux1::Header header;
    header.op_or_status = static_cast<uint8_t>(mux1::Op::Echo);
    header.payload_len = payload_len;
    header.tag = tag;
    mux1::encode_header(header, frame.data());
    return frame;
}

std::string send_request(int fd, const std::vector<uint8_t>& data) {
    IoResult w = write_some(fd, data.data(), data.size());
    if (w.status == IoStatus::Ok && w.bytes == data.size()) return "";
    return fmt::format("sent {} of {} bytes: {}", w.bytes, data.size(),
                       w.status == IoStatus::Error ? std::strerror(w.error) : "would block");
}

std::string read_reply(int fd, uint8_t* buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        IoResult r = read_some(fd, buf + got, len - got);
        if (r.status != IoStatus::Ok)
            return fmt::format("reply: got {} of {} bytes, then {}", got, len,
                               r.status == IoStatus::Retry    ? "timeout"
                               : r.status == IoStatus::Closed ? "EOF"
                                                              : std::strerror(r.error));
        got += r.bytes;
    }
    return "";
}

void dispatch_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"fds", "active"});
    for (int64_t n = kMinFds; n <= kMaxFds; n *= 2)
        for (int64_t active : {int64_t{1}, int64_t{100}})
            if (2 * active <= n) b->Args({n, active});
}

void fds_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"fds"});
    for (int64_t n = kMinFds; n <= kMaxFds; n *= 2) b->Args({n});
}

void set_per_round_counters(benchmark::State& state, double total_ns, int64_t fds) {
    using benchmark::Counter;
    state.counters["ns_per_round"] = Counter(total_ns, Counter::kAvgIterations);
    state.counters["ns_per_fd"] =
        Counter(total_ns / static_cast<double>(fds), Counter::kAvgIterations);
}

}  // namespace mux::micro
