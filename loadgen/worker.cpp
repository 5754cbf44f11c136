#include "worker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>

namespace mux::load {

namespace {
constexpr int kMaxEvents = 512;
constexpr uint64_t kConnectRetryNs = 20'000'000;
constexpr uint64_t kMaintenanceNs = 20'000'000;  // timeout scan and connect retries
// While the window's start is undecided a worker sleeps at most this long, so it learns the
// start well within the half interval by which it is published ahead.
constexpr uint64_t kUndecidedWaitNs = 1'000'000;
constexpr size_t kReadRoom = 16 * 1024;
// A ramp that has seen this many replies fail verification, and none pass, stops waiting:
// the server does not answer what muxload expects, and every retry would fail the same way.
constexpr uint64_t kRampFailuresToGiveUp = 64;

// How many connections to one destination one loopback source address takes before the rest
// spread over 127.0.0.2, .3, ... Linux's connect() tries the even ports of
// ip_local_port_range first and walks past every even port in use before it tries an odd
// one, so once most even ports of one source are taken each connect() scans thousands. Here
// (range 32768-60999, 14,116 even ports) 12,000 connections from 127.0.0.1 ramped in 0.8 s
// and 16,100 in 3.5-4.8 s. A quarter of the range per source keeps the walk short.
uint32_t conns_per_source_address() {
    static const uint32_t per_source = [] {
        uint32_t low = 32768, high = 60999;  // the kernel's default range
        std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
        range >> low >> high;
        return std::max<uint32_t>(1024, (high > low ? high - low + 1 : 0) / 4);
    }();
    return per_source;
}

struct ThreadUsage {
    uint64_t cpu_ns = 0;
    uint64_t runqueue_wait_ns = 0;
};

// The calling thread's CPU time, and from schedstat the time it spent runnable but waiting
// for a CPU (0 when the kernel keeps no schedstats).
ThreadUsage thread_usage() {
    ThreadUsage u;
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    u.cpu_ns = uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
    if (std::FILE* f = std::fopen("/proc/thread-self/schedstat", "r")) {
        unsigned long long run = 0, wait = 0;
        if (std::fscanf(f, "%llu %llu", &run, &wait) == 2) u.runqueue_wait_ns = wait;
        std::fclose(f);
    }
    return u;
}

uint64_t key(uint32_t index, uint32_t generation) {
    return (uint64_t(generation) << 32) | index;
}

bool is_ipv4_loopback(const SocketAddress& a) {
    if (a.family != AF_INET) return false;
    auto* in4 = reinterpret_cast<const sockaddr_in*>(&a.storage);
    return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
}
}  // namespace

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
}

Worker::Worker(const LoadOptions& options, const Codec& codec, const SocketAddress& target,
               WorkerPlan plan, size_t seconds, size_t warmup_intervals)
    : options_(options),
      codec_(codec),
      target_(target),
      plan_(plan),
      conns_(plan.active + plan.idle),
      next_tag_(uint64_t(plan.index) << 48),
      rng_(derive_seed(options.seed, plan.index, 1)),
      schedule_(plan.rate_per_s > 0 ? plan.rate_per_s : 1, options.arrival, 0,
                derive_seed(options.seed, plan.index, 0)),
      // Room for every slot twice: entries of closed connections wait to be skipped.
      free_slots_(options.open_loop() ? 2 * size_t(plan.active) * options.pipeline + 1 : 0),
      stats_(seconds, options.open_loop()),
      warmup_counts_(warmup_intervals) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    size_t n = conns_.size();
    for (size_t i = 0; i < n; ++i) {
        Conn& c = conns_[i];
        c.active = i < plan.active;
        uint32_t depth = c.active ? options.pipeline : 1;
        c.ring.resize(depth);
        c.out.resize(depth * codec.max_request_bytes());
        // Idle connections start small; a reply that does not fit grows the buffer once.
        c.in.resize(c.active ? depth * codec.max_reply_bytes() + kReadRoom
                             : std::min<size_t>(codec.max_reply_bytes(), 1024) + 256);
    }
    retry_.reserve(n);
    retry_at_ns_.reserve(n);
    uint32_t per_source = conns_per_source_address();
    if (options.conns > per_source && is_ipv4_loopback(target)) {
        sources_.resize(n);
        for (size_t i = 0; i < n; ++i) {
            uint32_t global = plan.first_conn + uint32_t(i);
            auto* in4 = reinterpret_cast<sockaddr_in*>(&sources_[i].storage);
            in4->sin_family = AF_INET;
            in4->sin_addr.s_addr = htonl((127u << 24) | (1 + global / per_source));
            sources_[i].len = sizeof(sockaddr_in);
            sources_[i].family = AF_INET;
        }
    }
}

Worker::~Worker() {
    for (Conn& c : conns_) close_conn(c);
    if (epfd_ >= 0) close(epfd_);
}

uint32_t Worker::ready_active_connections() const {
    uint32_t n = 0;
    for (const Conn& c : conns_) n += c.active && c.ready ? 1 : 0;
    return n;
}

void Worker::open(uint32_t index, uint64_t now) {
    Conn& c = conns_[index];
    if (first_connect_ns_ == 0) first_connect_ns_ = now;
    c.fd = connect_to(target_, /*nonblocking=*/true, sources_.empty() ? nullptr : &sources_[index]);
    if (c.fd < 0) {
        count_errors(ErrorKind::Connect, 1, now);
        retry_.push_back(index);
        retry_at_ns_.push_back(now + kConnectRetryNs);
        return;
    }
    c.state = State::Connecting;
    c.connect_ns = now;
    if (!c.ready) in_progress_ += 1;
    epoll_event ev{EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, {.u64 = key(index, c.generation)}};
    epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
}

void Worker::close_conn(Conn& c) {
    if (c.state == State::Closed) return;
    if (!c.ready) in_progress_ -= 1;
    close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
    c.generation += 1;  // its open-loop free slots are stale from now on
    c.state = State::Closed;
    c.in_flight = c.ring_head = c.queued = 0;
    c.issued = c.answered = 0;
    c.in_len = c.out_len = c.out_sent = 0;
}

void Worker::count_errors(ErrorKind kind, uint64_t n, uint64_t now) {
    if (n == 0) return;
    stats_.count_error(kind, n);
    if (in_window(now)) stats_.second_errors[second_of(now)] += n;
}

void Worker::fail(uint32_t index, ErrorKind kind, uint64_t now) {
    Conn& c = conns_[index];
    // Every request the connection had in flight is lost. A timeout or reset loses each of
    // them the same way; a bad reply is one error, and the requests behind it are abandoned.
    uint64_t count = 1, abandoned = 0;
    if (kind == ErrorKind::Timeout || kind == ErrorKind::Reset)
        count = std::max<uint64_t>(1, c.in_flight);
    else if (kind == ErrorKind::Protocol || kind == ErrorKind::Mismatch)
        abandoned = c.in_flight > 1 ? c.in_flight - 1 : 0;
    count_errors(kind, count, now);
    count_errors(ErrorKind::Abandoned, abandoned, now);
    if (kind == ErrorKind::Timeout) record_timed_out(c, now);
    close_conn(c);
    stats_.reconnects += 1;
    if (kind == ErrorKind::Connect) {
        retry_.push_back(index);
        retry_at_ns_.push_back(now + kConnectRetryNs);
    } else {
        open(index, now);
    }
}

void Worker::on_event(uint32_t index, uint32_t events) {
    Conn& c = conns_[index];
    if (c.state == State::Connecting) {
        // A clean EPOLLOUT means connected; only ERR/HUP need SO_ERROR's verdict. That is one
        // syscall less per connection, which the 16k-connection ramp feels.
        if (events & (EPOLLERR | EPOLLHUP)) return fail(index, ErrorKind::Connect, now_ns());
        if (!(events & EPOLLOUT)) return;
        on_connected(index, now_ns());
        return;
    }
    if (c.state != State::Open) return;
    if ((events & EPOLLOUT) && c.out_sent < c.out_len && !flush(index, now_ns())) return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        on_readable(index, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
}

void Worker::on_connected(uint32_t index, uint64_t now) {
    Conn& c = conns_[index];
    c.state = State::Open;
    c.fresh = true;
    // A connection proves it is served before it counts as ready; an idle one proves it
    // again each time it is reopened.
    if (!c.ready || !c.active) return probe(index, now);
    after_replies(index, now);
}

void Worker::probe(uint32_t index, uint64_t now) {
    issue(conns_[index], now, now, /*probe=*/true);
    flush(index, now);
}

bool Worker::on_readable(uint32_t index, bool peer_closed) {
    Conn& c = conns_[index];
    size_t limit = codec_.max_buffer_bytes() * c.ring.size() + kReadRoom;
    for (;;) {
        size_t room = c.in.size() - c.in_len;
        if (room < 256 && c.in.size() < limit) {
            c.in.resize(std::min(limit, c.in.size() * 2 + kReadRoom));  // rare: a big reply
            room = c.in.size() - c.in_len;
        }
        if (room == 0) {  // a reply longer than any this run accepts
            uint64_t now = now_ns();
            note_failure(ErrorKind::Protocol, c.in.data(), c.in_len, c.ring[c.ring_head].tag, now);
            fail(index, ErrorKind::Protocol, now);
            return false;
        }
        IoResult r = read_some(c.fd, c.in.data() + c.in_len, room);
        if (r.status == IoStatus::Retry) break;
        uint64_t now = now_ns();
        if (r.status != IoStatus::Ok) {
            // The server closed or reset a connection it was supposed to keep.
            fail(index, ErrorKind::Reset, now);
            return false;
        }
        c.in_len += r.bytes;
        stats_.bytes_received += r.bytes;
        if (!consume_replies(index, now)) return false;
        if (c.state != State::Open) return false;
        // A short read drained the socket and the next arrival brings a new edge; but a FIN
        // reported with this event has no edge left to bring, so read on until it shows.
        if (r.bytes < room && !peer_closed) break;
    }
    return true;
}

bool Worker::consume_replies(uint32_t index, uint64_t now) {
    Conn& c = conns_[index];
    size_t pos = 0;
    bool close_after = false;
    while (c.in_flight > 0 && pos < c.in_len) {
        const InFlight& f = c.ring[c.ring_head];
        ReplyResult r = codec_.check_reply(c.in.data() + pos, c.in_len - pos, f.tag);
        if (r.check == ReplyCheck::Incomplete) break;
        if (r.check != ReplyCheck::Ok) {
            ErrorKind kind =
                r.check == ReplyCheck::Protocol ? ErrorKind::Protocol : ErrorKind::Mismatch;
            note_failure(kind, c.in.data() + pos, c.in_len - pos, f.tag, now);
            fail(index, kind, now);
            return false;
        }
        pos += r.bytes;
        InFlight done = f;
        c.ring_head = c.ring_head + 1 == c.ring.size() ? 0 : c.ring_head + 1;
        c.in_flight -= 1;
        on_reply(index, done, now);
        if (r.close_after) {
            close_after = true;
            break;
        }
    }
    if (pos < c.in_len && (c.in_flight == 0 || close_after)) {
        if (!stats_.first_failure.set)
            stats_.first_failure = {
                true,
                now,
                ErrorKind::Protocol,
                {"bytes after the last reply that no request asked for", "",
                 excerpt({reinterpret_cast<const char*>(c.in.data()) + pos, c.in_len - pos})}};
        fail(index, ErrorKind::Protocol, now);
        return false;
    }
    if (pos > 0) {
        std::memmove(c.in.data(), c.in.data() + pos, c.in_len - pos);
        c.in_len -= pos;
    }
    if (close_after) {
        // The server ends the connection with requests still in flight on it.
        count_errors(ErrorKind::Abandoned, c.in_flight, now);
        close_conn(c);
        stats_.reconnects += 1;
        open(index, now);
        return false;
    }
    after_replies(index, now);
    return c.state == State::Open;
}

void Worker::note_failure(ErrorKind kind, const uint8_t* buf, size_t len, uint64_t tag,
                          uint64_t now) {
    if (stats_.first_failure.set) return;
    stats_.first_failure = {true, now, kind, codec_.explain(buf, len, tag)};
}

void Worker::on_reply(uint32_t index, const InFlight& f, uint64_t now) {
    Conn& c = conns_[index];
    c.answered += 1;
    stats_.replies_verified += 1;
    if (f.probe) {
        if (!c.active) stats_.idle_probes_ok += 1;
        if (!c.ready) mark_ready(index, now);
        return;
    }
    if (now >= times_.window_end_ns) return record_answered_after_end(f, now);
    if (now < times_.window_start_ns) return count_warmup_reply(c, now);
    Latency l = measure_latency(f.intended_ns, f.sent_ns, now);
    stats_.record_latency(l.corrected_ns, second_of(now));
    stats_.latency_sum_ns += l.corrected_ns;
    if (options_.open_loop()) stats_.uncorrected.record(l.uncorrected_ns);
    stats_.requests += 1;
    c.completed_in_window += 1;
}

void Worker::count_warmup_reply(Conn& c, uint64_t now) {
    if (times_.interval_ns == 0 || now < times_.run_start_ns) return;
    bool first = !c.served_in_run;
    c.served_in_run = true;
    warmup_counts_.add(size_t((now - times_.run_start_ns) / times_.interval_ns), first);
}

// The window's edges once the main thread has published them. Read at each pass of the run
// loop and after each epoll wait, so the replies of a batch are judged against the decided
// window: the main thread publishes the start at least half an interval ahead.
void Worker::refresh_window() {
    if (times_.window_start_ns != kUndecidedNs) return;
    uint64_t start = window_start_->load(std::memory_order_acquire);
    if (start == kUndecidedNs) return;
    times_.window_start_ns = start;
    times_.window_end_ns = start + window_ns_;
}

void Worker::mark_ready(uint32_t index, uint64_t now) {
    conns_[index].ready = true;
    ready_ += 1;
    in_progress_ -= 1;
    last_ready_ns_ = now;
}

void Worker::after_replies(uint32_t index, uint64_t now) {
    Conn& c = conns_[index];
    // With --requests-per-conn, a connection that has proved itself in the ramp is closed
    // until the run: held open, it would keep a server that serves one connection at a time
    // (blocking) from ever reaching the next one's probe.
    if (phase_ == Phase::Ramp && c.active && c.ready && options_.requests_per_conn != 0 &&
        c.in_flight == 0)
        return close_conn(c);
    // No new request after the window: with --hold-after-window the connections stay idle.
    if (!c.active || !c.ready || phase_ != Phase::Run || c.state != State::Open ||
        now >= times_.window_end_ns)
        return;
    uint64_t limit = options_.requests_per_conn;
    if (limit != 0 && c.answered >= limit) {
        close_conn(c);
        stats_.reconnects += 1;
        open(index, now);
        return;
    }
    if (options_.open_loop()) return offer_free_slots(index, now);
    bool wrote = false;
    while (c.in_flight < c.ring.size() && (limit == 0 || c.issued < limit)) {
        // With --requests-per-conn the first request is timed from connect(): churn's cost.
        uint64_t intended = (limit != 0 && c.fresh) ? c.connect_ns : now;
        issue(c, intended, now, /*probe=*/false);
        wrote = true;
    }
    if (wrote) flush(index, now);
}

void Worker::offer_free_slots(uint32_t index, uint64_t now) {
    Conn& c = conns_[index];
    uint64_t limit = options_.requests_per_conn;
    while (c.in_flight + c.queued < c.ring.size() && (limit == 0 || c.issued + c.queued < limit)) {
        if (free_slots_.full())
            free_slots_.compact(
                [this](const FreeSlot& s) { return conns_[s.index].generation == s.generation; });
        free_slots_.push({index, c.generation, now});
        c.queued += 1;
    }
}

void Worker::issue(Conn& c, uint64_t intended_ns, uint64_t now, bool probe) {
    size_t need = codec_.max_request_bytes();
    if (c.out_len + need > c.out.size()) {
        std::memmove(c.out.data(), c.out.data() + c.out_sent, c.out_len - c.out_sent);
        c.out_len -= c.out_sent;
        c.out_sent = 0;
    }
    uint64_t tag = next_tag_++;
    c.out_len += codec_.write_request(c.out.data() + c.out_len, tag, probe ? 0 : pick_work_us());
    uint32_t slot = c.ring_head + c.in_flight;
    if (slot >= c.ring.size()) slot -= uint32_t(c.ring.size());
    c.ring[slot] = {tag, intended_ns, now, probe};
    c.in_flight += 1;
    c.issued += 1;
    c.fresh = false;
}

bool Worker::flush(uint32_t index, uint64_t now) {
    Conn& c = conns_[index];
    while (c.out_sent < c.out_len) {
        IoResult r = write_some(c.fd, c.out.data() + c.out_sent, c.out_len - c.out_sent);
        if (r.status == IoStatus::Retry) return true;  // EPOLLOUT's next edge resumes
        if (r.status != IoStatus::Ok) {
            fail(index, ErrorKind::Reset, now);
            return false;
        }
        c.out_sent += r.bytes;
        stats_.bytes_sent += r.bytes;
    }
    c.out_len = c.out_sent = 0;
    return true;
}

uint32_t Worker::pick_work_us() {
    if (options_.slow.empty()) return options_.work_us;
    double u = rng_.uniform() * 100.0;
    for (const SlowSpec& s : options_.slow) {
        if (u < s.percent) return s.work_us;
        u -= s.percent;
    }
    return options_.work_us;
}

uint32_t Worker::dispatch_open_loop() {
    uint64_t limit = options_.requests_per_conn;
    auto usable = [&](const FreeSlot& slot) {
        Conn& c = conns_[slot.index];
        if (c.generation != slot.generation) return false;  // the connection closed since
        c.queued -= 1;
        return c.state == State::Open && c.in_flight < c.ring.size() &&
               (limit == 0 || c.issued < limit);
    };
    auto send = [&](const FreeSlot& slot, uint64_t intended, uint64_t now) {
        if (in_window(intended)) stats_.offered += 1;
        if (in_window(now)) {
            uint64_t delay = self_send_delay_ns(intended, slot.free_since_ns, now);
            stats_.self_delay.record(delay);
            stats_.sends += 1;
            if (delay > kLateSendNs) stats_.late_sends += 1;
            stats_.max_send_delay_ns = std::max(stats_.max_send_delay_ns, delay);
        }
        issue(conns_[slot.index], intended, now, /*probe=*/false);
        flush(slot.index, now);
    };
    return send_due_requests(schedule_, free_slots_, times_.window_end_ns, now_ns, usable, send);
}

void Worker::maintain(uint64_t now) {
    next_maintenance_ns_ = now + kMaintenanceNs;
    auto timeout_ns = uint64_t(options_.timeout_ms * 1e6);
    bool ramping = now < ramp_deadline_ns_;
    for (uint32_t i = 0; i < conns_.size(); ++i) {
        Conn& c = conns_[i];
        if (ramping && !c.ready) continue;  // held to the ramp's deadline, not --timeout
        if (c.state == State::Connecting && now - c.connect_ns > timeout_ns) {
            fail(i, ErrorKind::Connect, now);
        } else if (c.state == State::Open && c.in_flight > 0 &&
                   now - c.ring[c.ring_head].sent_ns > timeout_ns) {
            fail(i, ErrorKind::Timeout, now);
        }
    }
    size_t kept = 0;
    size_t n = retry_.size();  // open() may append; those wait for the next pass
    for (size_t k = 0; k < n; ++k) {
        uint32_t index = retry_[k];
        bool capped =
            phase_ == Phase::Ramp && !conns_[index].ready && in_progress_ >= plan_.max_in_progress;
        if (retry_at_ns_[k] <= now && !capped) {
            open(index, now);
        } else {
            retry_[kept] = index;
            retry_at_ns_[kept++] = retry_at_ns_[k];
        }
    }
    for (size_t k = n; k < retry_.size(); ++k) {
        retry_[kept] = retry_[k];
        retry_at_ns_[kept++] = retry_at_ns_[k];
    }
    retry_.resize(kept);
    retry_at_ns_.resize(kept);
}

int Worker::wait(uint64_t until_ns) {
    epoll_event events[kMaxEvents];
    uint64_t now = now_ns();
    uint64_t left = until_ns > now ? until_ns - now : 0;
    timespec timeout{time_t(left / 1'000'000'000), long(left % 1'000'000'000)};
    int n = epoll_pwait2(epfd_, events, kMaxEvents, &timeout, nullptr);
    if (window_start_ != nullptr) refresh_window();
    for (int i = 0; i < n; ++i) {
        auto index = uint32_t(events[i].data.u64 & 0xffffffffu);
        auto generation = uint32_t(events[i].data.u64 >> 32);
        // An event for a socket closed earlier in this batch belongs to no one.
        if (conns_[index].generation != generation || conns_[index].state == State::Closed)
            continue;
        on_event(index, events[i].events);
    }
    return n;
}

std::string Worker::ramp(uint64_t deadline_ns) {
    if (epfd_ < 0) return std::string("epoll_create1: ") + std::strerror(errno);
    // Sleeps end when asked, not up to 50 us later (the default slack): the open-loop
    // schedule's sends are timed by these sleeps.
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    ramp_deadline_ns_ = deadline_ns;
    uint64_t start = now_ns();
    uint32_t next = 0;
    auto total = uint32_t(conns_.size());
    double rate = plan_.connect_rate_per_s;
    for (uint64_t now = start; ready_ < total && now < deadline_ns; now = now_ns()) {
        if (stats_.replies_verified == 0 && stats_.verification_failures() >= kRampFailuresToGiveUp)
            break;
        // Paced: by time t, at most 1 + rate * t connects have been started.
        uint64_t allowed = rate > 0 ? 1 + uint64_t(double(now - start) * rate / 1e9) : total;
        while (next < total && next < allowed && in_progress_ < plan_.max_in_progress)
            open(next++, now);
        if (now >= next_maintenance_ns_) maintain(now);
        uint64_t until = std::min(deadline_ns, now + 5'000'000);
        if (rate > 0 && next < total)
            until = std::min(until, start + uint64_t(double(next) * 1e9 / rate));
        wait(until);
    }
    return "";
}

void Worker::run(const RunTimes& times, const std::atomic<uint64_t>& window_start,
                 uint64_t window_ns, uint64_t drain_ns) {
    times_ = times;
    window_start_ = &window_start;
    window_ns_ = window_ns;
    refresh_window();
    phase_ = Phase::Run;
    spin_budget_ = SpinBudget(times.run_start_ns);
    bool open_loop = options_.open_loop();
    if (open_loop)
        schedule_ = ArrivalSchedule(plan_.rate_per_s, options_.arrival, times.run_start_ns,
                                    derive_seed(options_.seed, plan_.index, 0), plan_.share);
    uint64_t now = now_ns();
    for (uint32_t i = 0; i < conns_.size(); ++i) {
        Conn& c = conns_[i];
        if (c.active && c.ready) stats_.in_flight_capacity += options_.pipeline;
        if (c.state == State::Open)
            after_replies(i, now);
        else if (c.state == State::Closed && c.active && c.ready)
            open(i, now);  // a churn connection closed after its probe
    }
    bool window_started = false;
    ThreadUsage start_usage;
    for (now = now_ns(); now < times_.window_end_ns; now = now_ns()) {
        refresh_window();
        if (!window_started && now >= times_.window_start_ns) {
            window_started = true;
            start_usage = thread_usage();
        }
        uint32_t sent = 0;
        if (open_loop && (sent = dispatch_open_loop()) > 0) now = now_ns();  // after the sends
        if (now >= next_maintenance_ns_) maintain(now);
        uint64_t until = std::min(next_maintenance_ns_, times_.window_end_ns);
        if (!window_started) until = std::min(until, times_.window_start_ns);
        // Undecided, the window may start soon after it is published: look again shortly.
        if (times_.window_start_ns == kUndecidedNs) until = std::min(until, now + kUndecidedWaitNs);
        WaitPlan plan = plan_wait(now, until, open_loop && !free_slots_.empty(),
                                  schedule_.next_ns(), spin_budget_.allows(now));
        if (!plan.spin) {
            wait(plan.until_ns);
        } else if (wait(0) == 0 && sent == 0) {
            uint64_t idle = now_ns() - now;  // a pass that only polled
            spin_budget_.spend(idle);
            if (window_started) spin_ns_ += idle;
        }
    }
    ThreadUsage end_usage = thread_usage();
    if (!window_started) start_usage = end_usage;
    double window_s = double(times_.window_end_ns - times_.window_start_ns) / 1e9;
    ThreadCpu cpu{double(end_usage.cpu_ns - start_usage.cpu_ns) / 1e3, double(spin_ns_) / 1e3,
                  double(end_usage.runqueue_wait_ns - start_usage.runqueue_wait_ns) / 1e3};
    stats_.cpu_us = cpu.cpu_us;
    stats_.thread_utilisation.push_back(cpu.cpu_us / 1e6 / window_s);
    stats_.thread_cpu.push_back(cpu);
    drain(times_.window_end_ns + drain_ns);
    finish_window(now_ns());
}

bool Worker::measured_requests_in_flight() const {
    for (const Conn& c : conns_) {
        if (!c.active || c.state != State::Open) continue;
        for (uint32_t k = 0; k < c.in_flight; ++k)
            if (!c.ring[(c.ring_head + k) % c.ring.size()].probe) return true;
    }
    return false;
}

void Worker::drain(uint64_t deadline_ns) {
    // No request is sent after the window (after_replies and the schedule stop at its end);
    // replies that come are recorded by on_reply at their true latency.
    for (uint64_t now = now_ns(); now < deadline_ns && measured_requests_in_flight();
         now = now_ns())
        wait(deadline_ns);
}

void Worker::record_unfinished(uint64_t intended_ns, uint64_t sent_ns, bool was_sent,
                               uint64_t at_ns) {
    uint64_t end = times_.window_end_ns;
    if (intended_ns >= end) return;
    size_t second = second_of(end - 1);
    stats_.record_latency(at_ns - intended_ns, second);
    stats_.second_unfinished[second] += 1;
    if (options_.open_loop() && was_sent) stats_.uncorrected.record(at_ns - sent_ns);
    stats_.unfinished_at_end += 1;
    (was_sent ? stats_.in_flight_at_end : stats_.backlog_at_end) += 1;
}

void Worker::record_answered_after_end(const InFlight& f, uint64_t now) {
    // In flight when the window ended, answered since: unfinished as far as the window knows
    // (it counts in no second's requests), but its latency is known, so it is recorded as
    // it is rather than cut off at the window's end.
    if (f.intended_ns >= times_.window_end_ns) return;
    record_unfinished(f.intended_ns, f.sent_ns, true, now);
    stats_.answered_after_end += 1;
}

void Worker::record_timed_out(const Conn& c, uint64_t now) {
    // A request that timed out waited at least this long; left out, a stall longer than
    // --timeout would read faster than a shorter one. Recorded, like a reply, in the window
    // when it was detected.
    if (!in_window(now)) return;
    for (uint32_t k = 0; k < c.in_flight; ++k) {
        const InFlight& f = c.ring[(c.ring_head + k) % c.ring.size()];
        if (f.probe) continue;
        size_t second = second_of(now);
        stats_.record_latency(now - f.intended_ns, second);
        stats_.second_timed_out[second] += 1;
        if (options_.open_loop()) stats_.uncorrected.record(now - f.sent_ns);
        stats_.timeouts_recorded += 1;
    }
}

void Worker::finish_window(uint64_t drain_end_ns) {
    // Every request due by the end and still unanswered is recorded at its age, a lower
    // bound of its latency: a stall at the end of the window stays in the figures instead of
    // vanishing. A request never sent is as old as the window's end makes it; one still in
    // flight after the drain is as old as the drain's end.
    uint64_t end = times_.window_end_ns;
    if (options_.open_loop())
        while (schedule_.due(end - 1)) {
            uint64_t intended = schedule_.take();
            if (in_window(intended)) stats_.offered += 1;
            record_unfinished(intended, 0, false, end);
        }
    for (Conn& c : conns_) {
        if (!c.active) continue;
        for (uint32_t k = 0; k < c.in_flight && c.state == State::Open; ++k) {
            const InFlight& f = c.ring[(c.ring_head + k) % c.ring.size()];
            if (!f.probe) record_unfinished(f.intended_ns, f.sent_ns, true, drain_end_ns);
        }
        double n = double(c.completed_in_window);
        stats_.fair_connections += 1;
        stats_.fair_sum += n;
        stats_.fair_sum_sq += n * n;
        if (c.completed_in_window == 0) stats_.unserved_connections += 1;
    }
    // The connections stay open, and idle, until the worker is destroyed.
}

}  // namespace mux::load
