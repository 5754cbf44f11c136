#include "verify.hpp"

#include <fmt/format.h>

#include <cstring>

#include "http.hpp"
#include "mux1.hpp"

namespace mux::load {

namespace {

std::string_view chars(std::span<const uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Compares the decoded body of r, piece by piece, with the expected full body.
bool body_matches(const http::Response& r, const HttpExpectation& e, size_t* first_difference) {
    size_t offset = 0;
    std::string_view piece;
    for (size_t cursor = 0; http::next_body_piece(r, &cursor, &piece); offset += piece.size()) {
        for (size_t i = 0; i < piece.size(); ++i) {
            char want =
                e.pattern_body ? http::bytes_body_char(offset + i) : e.literal_body[offset + i];
            if (piece[i] != want) {
                *first_difference = offset + i;
                return false;
            }
        }
    }
    return true;
}

std::string expected_body(const HttpExpectation& e, size_t from) {
    std::string out;
    for (size_t i = from; i < e.body_bytes && out.size() < kExcerptBytes; ++i)
        out += e.pattern_body ? http::bytes_body_char(i) : e.literal_body[i];
    return out;
}

std::string decoded_body(const http::Response& r, size_t from) {
    std::string out;
    size_t offset = 0;
    std::string_view piece;
    for (size_t cursor = 0; http::next_body_piece(r, &cursor, &piece) && out.size() < kExcerptBytes;
         offset += piece.size()) {
        if (offset + piece.size() <= from) continue;
        size_t skip = from > offset ? from - offset : 0;
        out += piece.substr(skip, kExcerptBytes - out.size());
    }
    return out;
}

// parse_response's result for a 101 reply: the connection switched to another protocol.
constexpr ssize_t kSwitchedProtocols = -100;

// Parses the reply at the front of bytes, stepping over the interim (1xx) replies a server
// may send before its final one (RFC 9110 15.2: a client must accept them even unasked; nginx
// and Go send 103 Early Hints), at most http::kMaxHeadBytes of them. Returns the length of
// them all with the final reply, or parse_response's kIncomplete or error; *r is the final
// reply.
ssize_t parse_final_response(std::span<const uint8_t> bytes, uint64_t max_body, http::Response* r) {
    const auto* buf = reinterpret_cast<const char*>(bytes.data());
    size_t offset = 0;
    for (;;) {
        ssize_t n = http::parse_response(buf + offset, bytes.size() - offset, max_body, r);
        if (n < 0) return n;
        if (r->status >= 200) return static_cast<ssize_t>(offset) + n;
        if (r->status == 101) return kSwitchedProtocols;
        offset += static_cast<size_t>(n);
        // Interim replies are held to one head's limit in all: a server that sends them
        // without end would otherwise grow the connection's buffer to its largest.
        if (offset > http::kMaxHeadBytes) return http::kHeadTooLarge;
    }
}

std::string expected_mux1_head(const Mux1Expectation& e) {
    mux1::Header h;
    h.op_or_status = static_cast<uint8_t>(mux1::Status::Ok);
    h.payload_len = e.payload_bytes;
    h.reply_len = e.gen ? e.payload_bytes : 0;
    h.tag = e.tag;
    uint8_t head[mux1::kHeaderSize];
    mux1::encode_header(h, head);
    return std::string(reinterpret_cast<const char*>(head), sizeof head);
}

}  // namespace

std::string excerpt(std::string_view bytes) {
    std::string out;
    for (size_t i = 0; i < bytes.size() && i < kExcerptBytes; ++i) {
        auto c = static_cast<unsigned char>(bytes[i]);
        if (c == '\r')
            out += "\\r";
        else if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\\')
            out += "\\\\";
        else if (c >= 0x20 && c < 0x7f)
            out += static_cast<char>(c);
        else
            out += fmt::format("\\x{:02x}", c);
    }
    return out;
}

ReplyResult verify_mux1_reply(std::span<const uint8_t> bytes, const Mux1Expectation& e) {
    mux1::Header h;
    // A frame longer than expected is refused from its header alone: a wrong length.
    ssize_t n = mux1::parse_frame(bytes.data(), bytes.size(), e.payload_bytes, &h);
    if (n == mux1::kIncomplete) return {ReplyCheck::Incomplete};
    if (n == mux1::kBadMagic) return {ReplyCheck::Protocol};
    if (n < 0) return {ReplyCheck::Mismatch};
    if (h.tag != e.tag || h.op_or_status != static_cast<uint8_t>(mux1::Status::Ok) ||
        h.payload_len != e.payload_bytes)
        return {ReplyCheck::Mismatch};
    std::span<const uint8_t> payload = bytes.subspan(mux1::kHeaderSize, h.payload_len);
    bool same = e.gen ? mux1::check_gen_payload(e.tag, payload) == payload.size()
                      : e.echo_payload.size() == payload.size() &&
                            std::memcmp(payload.data(), e.echo_payload.data(), payload.size()) == 0;
    if (!same) return {ReplyCheck::Mismatch};
    return {ReplyCheck::Ok, static_cast<size_t>(n)};
}

ReplyResult verify_http_reply(std::span<const uint8_t> bytes, const HttpExpectation& e) {
    http::Response r;
    uint64_t max_body = e.verify == Verify::Full ? e.body_bytes : e.max_body_bytes;
    ssize_t n = parse_final_response(bytes, max_body, &r);
    if (n == http::kIncomplete) return {ReplyCheck::Incomplete};
    if (n == http::kBodyTooLarge) return {ReplyCheck::Mismatch};
    if (n < 0) return {ReplyCheck::Protocol};
    if (e.verify == Verify::Framing) {
        if (r.status < 200 || r.status > 299) return {ReplyCheck::Mismatch};
    } else {
        size_t at = 0;
        if (r.status != 200 || r.body_bytes != e.body_bytes || !body_matches(r, e, &at))
            return {ReplyCheck::Mismatch};
    }
    return {ReplyCheck::Ok, static_cast<size_t>(n), !r.keep_alive};
}

FailureDetail explain_mux1_failure(std::span<const uint8_t> bytes, const Mux1Expectation& e) {
    FailureDetail d{"", excerpt(expected_mux1_head(e)), excerpt(chars(bytes))};
    if (bytes.size() < mux1::kHeaderSize) {
        d.reason =
            fmt::format("not a mux1 reply: {} bytes that do not start a mux1 header", bytes.size());
        return d;
    }
    mux1::Header h = mux1::decode_header(bytes.data());
    if (h.magic != mux1::kMagic || h.version != mux1::kVersion)
        d.reason = fmt::format(
            "not a mux1 reply: magic {:#06x} version {} (expected {:#06x} "
            "version {})",
            h.magic, h.version, mux1::kMagic, mux1::kVersion);
    else if (h.tag != e.tag)
        d.reason = fmt::format("tag {} answers another request (expected {})", h.tag, e.tag);
    else if (h.op_or_status != static_cast<uint8_t>(mux1::Status::Ok))
        d.reason = fmt::format("status {} (expected 0, Ok)", h.op_or_status);
    else if (h.payload_len != e.payload_bytes)
        d.reason = fmt::format("payload of {} bytes (expected {})", h.payload_len, e.payload_bytes);
    else if (h.reply_len > e.payload_bytes)
        d.reason = fmt::format("reply_len field {} over the {} bytes expected", h.reply_len,
                               e.payload_bytes);
    if (!d.reason.empty()) return d;
    std::span<const uint8_t> payload = bytes.subspan(mux1::kHeaderSize);
    size_t i = 0;
    while (i < payload.size() && i < e.payload_bytes &&
           payload[i] == (e.gen ? mux1::gen_byte(e.tag, i) : e.echo_payload[i]))
        ++i;
    d.reason = fmt::format("payload byte {} of {} differs", i, e.payload_bytes);
    std::string want;
    for (size_t k = i; k < e.payload_bytes && want.size() < kExcerptBytes; ++k)
        want += static_cast<char>(e.gen ? mux1::gen_byte(e.tag, k) : e.echo_payload[k]);
    d.expected = excerpt(want);
    d.got = excerpt(chars(payload.subspan(std::min(i, payload.size()))));
    return d;
}

FailureDetail explain_http_failure(std::span<const uint8_t> bytes, const HttpExpectation& e) {
    bool full = e.verify == Verify::Full;
    FailureDetail d{"", full ? "HTTP/1.1 200 ..." : "HTTP/1.1 2xx ...", excerpt(chars(bytes))};
    http::Response r;
    ssize_t n = parse_final_response(bytes, UINT64_MAX, &r);
    if (n == kSwitchedProtocols) {
        d.reason = "101 Switching Protocols: the connection left HTTP";
        return d;
    }
    if (n == http::kUnframed) {
        d.reason =
            "a reply framed by neither Content-Length nor chunked: its body ends only "
            "when the server closes, which a keep-alive load cannot use";
        return d;
    }
    if (n < 0 && n != http::kIncomplete) {
        d.reason = fmt::format("not a well-formed HTTP/1.x reply (parse result {})", n);
        return d;
    }
    if (n == http::kIncomplete) {
        // Refused from its framing before the body came: over the expected length.
        d.reason =
            full ? fmt::format("a body longer than the {} bytes expected", e.body_bytes)
                 : fmt::format("a body longer than muxload's limit of {} bytes", e.max_body_bytes);
        return d;
    }
    if (full ? r.status != 200 : (r.status < 200 || r.status > 299)) {
        d.reason =
            fmt::format("status {} {} (expected {})", r.status, r.reason, full ? "200" : "2xx");
        return d;
    }
    if (r.body_bytes != e.body_bytes) {
        d.reason = fmt::format("a body of {} bytes (expected {})", r.body_bytes, e.body_bytes);
        d.expected = excerpt(expected_body(e, 0));
        d.got = excerpt(decoded_body(r, 0));
        return d;
    }
    size_t at = 0;
    body_matches(r, e, &at);
    d.reason = fmt::format("body byte {} of {} differs", at, e.body_bytes);
    d.expected = excerpt(expected_body(e, at));
    d.got = excerpt(decoded_body(r, at));
    return d;
}

}  // namespace mux::load
