#include "test_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mux::test {

namespace {
using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

std::string_view bytes_of(const uint8_t* p, size_t n) {
    return {reinterpret_cast<const char*>(p), n};
}
}  // namespace

uint64_t echo_pattern_tag(uint64_t tag) {
    return tag * 31 + 7;
}

std::string mux1_request(mux1::Op op, uint64_t tag, uint32_t payload_len, uint32_t reply_len) {
    mux1::Header h;
    h.op_or_status = static_cast<uint8_t>(op);
    h.payload_len = payload_len;
    h.reply_len = reply_len;
    h.tag = tag;
    std::string out(mux1::kHeaderSize + payload_len, '\0');
    auto* bytes = reinterpret_cast<uint8_t*>(out.data());
    mux1::encode_header(h, bytes);
    mux1::fill_gen_payload(echo_pattern_tag(tag), {bytes + mux1::kHeaderSize, payload_len});
    return out;
}

std::string http_get(std::string_view target, int minor_version, std::string_view connection) {
    std::string req = "GET " + std::string(target) + " HTTP/1." + std::to_string(minor_version) +
                      "\r\nHost: muxtest\r\n";
    if (!connection.empty()) req += "Connection: " + std::string(connection) + "\r\n";
    return req + "\r\n";
}

testing::AssertionResult check_mux1_reply(const Mux1Reply& reply, mux1::Op op, uint64_t tag,
                                          uint32_t payload_len, uint32_t reply_len) {
    const mux1::Header& h = reply.header;
    if (h.tag != tag) return testing::AssertionFailure() << "tag " << h.tag << ", sent " << tag;
    if (h.op_or_status != static_cast<uint8_t>(mux1::Status::Ok))
        return testing::AssertionFailure()
               << "status " << int{h.op_or_status} << " for tag " << tag;
    bool is_echo = op == mux1::Op::Echo;
    uint32_t want_len = is_echo ? payload_len : reply_len;
    if (h.payload_len != want_len || reply.payload.size() != want_len)
        return testing::AssertionFailure()
               << "reply length " << h.payload_len << " (" << reply.payload.size()
               << " read), want " << want_len << " for tag " << tag;
    auto* p = reinterpret_cast<const uint8_t*>(reply.payload.data());
    uint64_t pattern = is_echo ? echo_pattern_tag(tag) : tag;
    size_t bad = mux1::check_gen_payload(pattern, {p, reply.payload.size()});
    if (bad != reply.payload.size())
        return testing::AssertionFailure() << "payload byte " << bad << " wrong for tag " << tag;
    return testing::AssertionSuccess();
}

testing::AssertionResult check_http_reply(const HttpReply& reply, std::string_view target) {
    if (reply.head.status != 200)
        return testing::AssertionFailure() << "status " << reply.head.status << " for " << target;
    if (target == "/") {
        if (reply.body != http::kRootBody)
            return testing::AssertionFailure() << "GET / body '" << reply.body << "'";
        return testing::AssertionSuccess();
    }
    uint64_t n = 0;
    if (!http::parse_bytes_target(target, &n))
        return testing::AssertionFailure() << "test bug: target " << target;
    if (reply.body.size() != n)
        return testing::AssertionFailure()
               << "body " << reply.body.size() << " bytes for " << target;
    for (size_t i = 0; i < n; ++i)
        if (reply.body[i] != http::bytes_body_char(i))
            return testing::AssertionFailure() << "body byte " << i << " wrong for " << target;
    return testing::AssertionSuccess();
}

Client::~Client() {
    close();
}

Client::Client(Client&& other) noexcept
    : fd_(other.fd_), in_(std::move(other.in_)), error_(std::move(other.error_)) {
    other.fd_ = -1;
}

Client& Client::operator=(Client&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = other.fd_;
        other.fd_ = -1;
        in_ = std::move(other.in_);
        error_ = std::move(other.error_);
    }
    return *this;
}

Client Client::connect(const SocketAddress& address, std::string* error) {
    int fd = connect_to(address, /*nonblocking=*/false);
    if (fd < 0 && error != nullptr) *error = std::string("connect: ") + std::strerror(errno);
    return Client(fd);
}

void Client::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void Client::reset() {
    linger lin{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
    close();
}

void Client::shutdown_write() {
    ::shutdown(fd_, SHUT_WR);
}

bool Client::send_all(std::string_view bytes) {
    while (!bytes.empty()) {
        IoResult r = write_some(fd_, bytes.data(), bytes.size());
        if (r.status != IoStatus::Ok) {
            error_ = std::string("send: ") + std::strerror(r.error);
            return false;
        }
        bytes.remove_prefix(r.bytes);
    }
    return true;
}

bool Client::fill(size_t want, Clock::time_point deadline) {
    char chunk[65536];
    while (in_.size() < want) {
        pollfd pfd{fd_, POLLIN, 0};
        int ready = poll(&pfd, 1, ms_left(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready == 0) {
            error_ = "timed out waiting for a reply";
            return false;
        }
        IoResult r = read_some(fd_, chunk, sizeof chunk);
        if (r.status == IoStatus::Closed) {
            error_ = "connection closed by the server";
            return false;
        }
        if (r.status == IoStatus::Error) {
            error_ = std::string("recv: ") + std::strerror(r.error);
            return false;
        }
        if (r.status == IoStatus::Ok) in_.append(chunk, r.bytes);
    }
    return true;
}

std::optional<Mux1Reply> Client::read_mux1(Millis timeout) {
    auto deadline = Clock::now() + timeout;
    if (!fill(mux1::kHeaderSize, deadline)) return std::nullopt;
    Mux1Reply reply;
    auto* data = reinterpret_cast<const uint8_t*>(in_.data());
    ssize_t len = mux1::parse_frame(data, in_.size(), UINT32_MAX, &reply.header);
    if (len == mux1::kBadMagic) {
        error_ = "reply is not a mux1 frame";
        return std::nullopt;
    }
    size_t frame_len = mux1::kHeaderSize + reply.header.payload_len;
    if (!fill(frame_len, deadline)) return std::nullopt;
    data = reinterpret_cast<const uint8_t*>(in_.data());
    reply.payload = std::string(bytes_of(data + mux1::kHeaderSize, reply.header.payload_len));
    in_.erase(0, frame_len);
    return reply;
}

std::optional<HttpReply> Client::read_http(Millis timeout) {
    auto deadline = Clock::now() + timeout;
    HttpReply reply;
    ssize_t len;
    while ((len = http::parse_response(in_.data(), in_.size(), UINT32_MAX, &reply.head)) ==
           http::kIncomplete) {
        if (!fill(in_.size() + 1, deadline)) return std::nullopt;
    }
    if (len < 0) {
        error_ = "malformed response (" + std::to_string(len) + "): " + in_.substr(0, 200);
        return std::nullopt;
    }
    std::string_view piece;
    for (size_t cursor = 0; http::next_body_piece(reply.head, &cursor, &piece);)
        reply.body += piece;
    reply.head.reason = reply.head.body = {};  // they point into in_, which moves on
    in_.erase(0, static_cast<size_t>(len));
    return reply;
}

testing::AssertionResult Client::echo(uint64_t tag, uint32_t payload_len) {
    if (!send_all(mux1_request(mux1::Op::Echo, tag, payload_len)))
        return testing::AssertionFailure() << error_;
    auto reply = read_mux1();
    if (!reply) return testing::AssertionFailure() << "echo tag " << tag << ": " << error_;
    return check_mux1_reply(*reply, mux1::Op::Echo, tag, payload_len);
}

testing::AssertionResult Client::gen(uint64_t tag, uint32_t reply_len) {
    if (!send_all(mux1_request(mux1::Op::Gen, tag, 0, reply_len)))
        return testing::AssertionFailure() << error_;
    auto reply = read_mux1();
    if (!reply) return testing::AssertionFailure() << "gen tag " << tag << ": " << error_;
    return check_mux1_reply(*reply, mux1::Op::Gen, tag, 0, reply_len);
}

testing::AssertionResult Client::get(std::string_view target) {
    if (!send_all(http_get(target))) return testing::AssertionFailure() << error_;
    auto reply = read_http();
    if (!reply) return testing::AssertionFailure() << "GET " << target << ": " << error_;
    return check_http_reply(*reply, target);
}

testing::AssertionResult Client::expect_closed(Millis timeout) {
    size_t before = in_.size();
    if (fill(before + 1, Clock::now() + timeout))
        return testing::AssertionFailure()
               << "got " << in_.size() - before << " unexpected bytes instead of a close";
    if (error_.starts_with("timed out")) return testing::AssertionFailure() << error_;
    return testing::AssertionSuccess();
}

bool Client::readable_within(Millis timeout) {
    if (!in_.empty()) return true;
    pollfd pfd{fd_, POLLIN, 0};
    return poll(&pfd, 1, static_cast<int>(timeout.count())) > 0;
}

}  // namespace mux::test
