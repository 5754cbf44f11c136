#include "connection.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "http.hpp"
#include "mux1.hpp"

namespace mux {

namespace {
// One receive buffer for all connections of a process: a connection owns memory only for
// a request that is still arriving, so an idle connection costs almost nothing.
constexpr size_t kReadChunk = 64 * 1024;
thread_local uint8_t g_read_chunk[kReadChunk];

// Memory above this is returned once a buffer empties, so one large request does not pin
// memory for the connection's lifetime.
constexpr size_t kKeepCapacity = 16 * 1024;

void release_if_large(std::vector<uint8_t>& buffer) {
    if (buffer.capacity() > kKeepCapacity) std::vector<uint8_t>().swap(buffer);
}
}  // namespace

Connection::Connection(int fd, const Server& server) : fd_(fd), server_(server) {}

Connection::~Connection() {
    close(fd_);
    ServerCounters::add(thread_counters().closed);
}

Next Connection::next() const {
    if (failed_) return Next::Close;
    if (pending_output() == 0 && (read_closed_ || close_after_flush_)) return Next::Close;
    return Next::Keep;
}

void Connection::feed(const uint8_t* data, size_t len) {
    ServerCounters::add(thread_counters().bytes_in, len);
    if (close_after_flush_ || failed_) return;  // nothing more is answered
    if (in_used_ == in_.size()) {
        // Common case: nothing buffered, so answer straight from the caller's bytes and keep
        // only an incomplete tail.
        in_.clear();
        in_used_ = 0;
        size_t used = server_.config().proto == Protocol::Mux1 ? answer_mux1(data, len)
                                                               : answer_http(data, len);
        if (!close_after_flush_) in_.insert(in_.end(), data + used, data + len);
    } else {
        in_.insert(in_.end(), data, data + len);
        if (can_answer()) answer_buffered_requests();
    }
}

void Connection::peer_closed() {
    read_closed_ = true;
}

void Connection::socket_failed() {
    if (!failed_) ServerCounters::add(thread_counters().resets);
    failed_ = true;
}

std::span<const uint8_t> Connection::take_output() {
    if (taken_ > 0 || failed_) return {};
    if (sending_done_ == sending_.size()) {
        // The usual case: everything taken before went out, so the queue becomes the
        // sending buffer without a copy.
        sending_.clear();
        sending_.swap(queued_);
        sending_done_ = 0;
    } else if (!queued_.empty()) {
        // The last send was short: one buffer again, so the next send takes everything.
        sending_.erase(sending_.begin(), sending_.begin() + static_cast<ptrdiff_t>(sending_done_));
        sending_done_ = 0;
        sending_.insert(sending_.end(), queued_.begin(), queued_.end());
        queued_.clear();
    }
    taken_ = sending_.size() - sending_done_;
    return {sending_.data() + sending_done_, taken_};
}

void Connection::output_sent(size_t n) {
    if (n > 0 && n < taken_) ServerCounters::add(thread_counters().short_sends);
    ServerCounters::add(thread_counters().bytes_out, n);
    sending_done_ += n;
    taken_ = 0;
    if (sending_done_ == sending_.size()) {
        sending_.clear();
        sending_done_ = 0;
        release_if_large(sending_);
        if (queued_.empty()) release_if_large(queued_);
    }
    if (in_used_ < in_.size() && can_answer()) answer_buffered_requests();
}

Next Connection::on_readable(ReadMode mode) {
    while (wants_read()) {
        IoResult r = read_some(fd_, g_read_chunk, kReadChunk);
        if (r.status == IoStatus::Retry) break;
        if (r.status == IoStatus::Closed) {
            peer_closed();
            break;
        }
        if (r.status == IoStatus::Error) {
            socket_failed();
            return Next::Close;
        }
        feed(g_read_chunk, r.bytes);
        if (flush_and_answer_held_back() == Next::Close) return Next::Close;
        if (mode == ReadMode::Once || (mode == ReadMode::UntilShort && r.bytes < kReadChunk)) break;
    }
    return next();
}

Next Connection::on_writable() {
    return flush_and_answer_held_back();
}

// A flush that sends everything brings no report that the socket is writable, and a peer that
// has sent its last requests (perhaps with its FIN) waits for their replies: so requests held
// back at the high-water mark are answered as the output drains (output_sent does it), and
// their replies sent, for as long as the output has room.
Next Connection::flush_and_answer_held_back() {
    for (;;) {
        std::span<const uint8_t> out = take_output();
        if (out.empty()) return next();
        if (publish_counts_) server_.add_to_totals();
        IoResult r = write_some(fd_, out.data(), out.size());
        if (r.status == IoStatus::Retry) {
            output_sent(0);
            return Next::Keep;
        }
        if (r.status != IoStatus::Ok) {
            output_sent(0);
            socket_failed();
            return Next::Close;
        }
        // Sending may have made room below the high-water mark, and output_sent answered
        // the requests that were waiting for it: loop to send those too.
        output_sent(r.bytes);
    }
}

void Connection::answer_buffered_requests() {
    const uint8_t* data = in_.data() + in_used_;
    size_t len = in_.size() - in_used_;
    size_t used =
        server_.config().proto == Protocol::Mux1 ? answer_mux1(data, len) : answer_http(data, len);
    in_used_ += used;
    if (close_after_flush_ || in_used_ == in_.size()) {
        in_.clear();
        in_used_ = 0;
        release_if_large(in_);
    } else if (in_used_ > in_.size() / 2) {
        in_.erase(in_.begin(), in_.begin() + static_cast<ptrdiff_t>(in_used_));
        in_used_ = 0;
    }
}

void Connection::queue(const void* data, size_t len) {
    auto* bytes = static_cast<const uint8_t*>(data);
    queued_.insert(queued_.end(), bytes, bytes + len);
}

size_t Connection::answer_mux1(const uint8_t* data, size_t len) {
    size_t used = 0;
    while (!close_after_flush_ && pending_output() < kOutputHighWater) {
        mux1::Header req;
        ssize_t frame_len =
            mux1::parse_frame(data + used, len - used, server_.config().max_payload, &req);
        if (frame_len == mux1::kIncomplete) break;
        if (frame_len == mux1::kBadMagic) {
            // Not a mux1 peer: there is no header to answer to.
            ServerCounters::add(thread_counters().bad_magic);
            close_after_flush_ = true;
            break;
        }
        mux1::Header reply = req;
        uint8_t head[mux1::kHeaderSize];
        if (frame_len == mux1::kTooLarge) {
            ServerCounters::add(thread_counters().too_large);
            reply.op_or_status = static_cast<uint8_t>(mux1::Status::TooLarge);
            reply.payload_len = 0;
            mux1::encode_header(reply, head);
            queue(head, sizeof head);
            close_after_flush_ = true;
            break;
        }
        burn_cpu_us(req.work_us);
        const uint8_t* payload = data + used + mux1::kHeaderSize;
        used += static_cast<size_t>(frame_len);
        ServerCounters::add(thread_counters().requests);
        auto op = static_cast<mux1::Op>(req.op_or_status);
        reply.op_or_status = static_cast<uint8_t>(mux1::Status::Ok);
        if (op == mux1::Op::Echo) {
            mux1::encode_header(reply, head);
            queue(head, sizeof head);
            queue(payload, req.payload_len);
        } else if (op == mux1::Op::Gen) {
            reply.payload_len = req.reply_len;
            mux1::encode_header(reply, head);
            queue(head, sizeof head);
            size_t at = queued_.size();
            queued_.resize(at + req.reply_len);
            mux1::fill_gen_payload(req.tag, std::span(queued_.data() + at, req.reply_len));
        } else {
            ServerCounters::add(thread_counters().bad_op);
            reply.op_or_status = static_cast<uint8_t>(mux1::Status::BadOp);
            reply.payload_len = 0;
            mux1::encode_header(reply, head);
            queue(head, sizeof head);
        }
    }
    return used;
}

size_t Connection::answer_http(const uint8_t* data, size_t len) {
    size_t used = 0;
    char head[http::kMaxResponseHead];
    while (!close_after_flush_ && pending_output() < kOutputHighWater) {
        http::Request req;
        ssize_t head_len =
            http::parse_request(reinterpret_cast<const char*>(data + used), len - used, &req);
        if (head_len == http::kIncomplete) break;
        int status = 200;
        uint64_t body_len = 0;
        bool body_is_root = false;
        if (head_len == http::kMalformed) {
            ServerCounters::add(thread_counters().http_malformed);
            status = 400;
        } else if (head_len == http::kHeadTooLarge) {
            ServerCounters::add(thread_counters().http_head_too_large);
            status = 431;
        } else if (req.method != "GET" && req.method != "HEAD") {
            ServerCounters::add(thread_counters().http_unsupported);
            status = 405;
        } else if (req.has_body) {
            // The subset has no bodies; without reading one we cannot find the next request.
            ServerCounters::add(thread_counters().http_unsupported);
            status = 400;
        } else if (req.target == "/") {
            body_len = http::kRootBody.size();
            body_is_root = true;
        } else if (!http::parse_bytes_target(req.target, &body_len)) {
            status = 404;
        } else if (body_len > server_.config().max_payload) {
            status = 413;
            body_len = 0;
        }
        bool error = status == 400 || status == 405 || status == 431;
        bool keep_alive = !error && req.keep_alive;
        if (error) req.minor_version = 1;
        if (status != 200) {
            static constexpr std::string_view kErrorBody = "error\n";
            body_len = kErrorBody.size();
            queue(head, http::format_response_head(head, status, body_len, keep_alive,
                                                   req.minor_version));
            queue(kErrorBody.data(), kErrorBody.size());
        } else {
            queue(head, http::format_response_head(head, status, body_len, keep_alive,
                                                   req.minor_version));
            if (req.method == "HEAD") {
                // Headers only.
            } else if (body_is_root) {
                queue(http::kRootBody.data(), http::kRootBody.size());
            } else {
                size_t at = queued_.size();
                queued_.resize(at + body_len);
                for (size_t i = 0; i < body_len; ++i) queued_[at + i] = http::bytes_body_char(i);
            }
        }
        if (error) {
            close_after_flush_ = true;
            break;
        }
        used += static_cast<size_t>(head_len);
        ServerCounters::add(thread_counters().requests);
        if (!keep_alive) close_after_flush_ = true;
    }
    return used;
}

void serve_until_closed(Connection& connection) {
    while (!Server::stopping()) {
        if (connection.publishes_counts()) connection.server().add_to_totals();
        Next next = connection.wants_write() ? connection.on_writable()
                                             : connection.on_readable(ReadMode::Once);
        if (next == Next::Close) return;
    }
}

Next on_edge_triggered(Connection& connection, uint32_t epoll_events, EtDrain drain) {
    constexpr uint32_t kShutDown = EPOLLRDHUP | EPOLLERR | EPOLLHUP;
    Next next = Next::Keep;
    if (epoll_events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) next = connection.on_writable();
    if (next == Next::Keep && (epoll_events & (EPOLLIN | kShutDown))) {
        // Once the peer has shut down, reading must go on to the 0 that says so.
        const bool to_eagain = drain == EtDrain::UntilEagain || (epoll_events & kShutDown);
        next = connection.on_readable(to_eagain ? ReadMode::UntilRetry : ReadMode::UntilShort);
    }
    return next;
}

}  // namespace mux
