#include "codec.hpp"

#include <cstring>
#include <span>

#include "http.hpp"
#include "mux1.hpp"

namespace mux::load {

const char* error_kind_name(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Connect:
            return "connect";
        case ErrorKind::Reset:
            return "reset";
        case ErrorKind::Timeout:
            return "timeout";
        case ErrorKind::Protocol:
            return "protocol";
        case ErrorKind::Mismatch:
            return "mismatch";
    }
    return "unknown";
}

Codec::Codec(const LoadOptions& o)
    : proto_(o.proto),
      gen_(o.gen()),
      payload_bytes_(o.payload_bytes),
      expected_reply_payload_(o.gen() ? static_cast<uint32_t>(o.reply_bytes) : o.payload_bytes) {
    if (proto_ == Proto::Mux1) {
        // Position-dependent bytes, so a reply shifted by one byte fails the comparison.
        payload_.resize(payload_bytes_);
        mux1::fill_gen_payload(0x5a, payload_);
        max_request_bytes_ = mux1::kHeaderSize + payload_bytes_;
        max_reply_bytes_ = mux1::kHeaderSize + expected_reply_payload_;
        return;
    }
    std::string target = gen_ ? "/bytes/" + std::to_string(o.reply_bytes) : "/";
    http_request_ = "GET " + target + " HTTP/1.1\r\nHost: muxbench\r\n\r\n";
    max_request_bytes_ = http_request_.size();
    max_reply_bytes_ =
        http::kMaxHeadBytes + (gen_ ? static_cast<size_t>(o.reply_bytes) : http::kRootBody.size());
}

size_t Codec::write_request(uint8_t* out, uint64_t tag, uint32_t work_us) const {
    if (proto_ == Proto::Http) {
        std::memcpy(out, http_request_.data(), http_request_.size());
        return http_request_.size();
    }
    mux1::Header h;
    h.op_or_status = static_cast<uint8_t>(gen_ ? mux1::Op::Gen : mux1::Op::Echo);
    h.payload_len = payload_bytes_;
    h.reply_len = gen_ ? expected_reply_payload_ : 0;
    h.work_us = work_us;
    h.tag = tag;
    mux1::encode_header(h, out);
    if (payload_bytes_ > 0) std::memcpy(out + mux1::kHeaderSize, payload_.data(), payload_bytes_);
    return mux1::kHeaderSize + payload_bytes_;
}

ReplyResult Codec::check_reply(const uint8_t* buf, size_t len, uint64_t tag) const {
    return proto_ == Proto::Mux1 ? check_mux1(buf, len, tag) : check_http(buf, len);
}

ReplyResult Codec::check_mux1(const uint8_t* buf, size_t len, uint64_t tag) const {
    mux1::Header h;
    // A frame longer than expected is refused from its header alone: a wrong length.
    ssize_t n = mux1::parse_frame(buf, len, expected_reply_payload_, &h);
    if (n == mux1::kIncomplete) return {ReplyCheck::Incomplete};
    if (n == mux1::kBadMagic) return {ReplyCheck::Protocol};
    if (n == mux1::kTooLarge) return {ReplyCheck::Mismatch};
    if (h.tag != tag || h.op_or_status != static_cast<uint8_t>(mux1::Status::Ok) ||
        h.payload_len != expected_reply_payload_)
        return {ReplyCheck::Mismatch};
    std::span<const uint8_t> payload(buf + mux1::kHeaderSize, h.payload_len);
    bool same = gen_ ? mux1::check_gen_payload(tag, payload) == payload.size()
                     : std::memcmp(payload.data(), payload_.data(), payload.size()) == 0;
    if (!same) return {ReplyCheck::Mismatch};
    return {ReplyCheck::Ok, static_cast<size_t>(n)};
}

ReplyResult Codec::check_http(const uint8_t* buf, size_t len) const {
    http::Response r;
    uint64_t expected = gen_ ? expected_reply_payload_ : http::kRootBody.size();
    // A body longer than expected is refused from its framing alone: a wrong length.
    ssize_t n = http::parse_response(reinterpret_cast<const char*>(buf), len, expected, &r);
    if (n == http::kIncomplete) return {ReplyCheck::Incomplete};
    if (n == http::kBodyTooLarge) return {ReplyCheck::Mismatch};
    if (n < 0) return {ReplyCheck::Protocol};
    if (r.status != 200 || r.body_bytes != expected) return {ReplyCheck::Mismatch};
    size_t offset = 0;
    std::string_view piece;
    for (size_t cursor = 0; http::next_body_piece(r, &cursor, &piece); offset += piece.size())
        for (size_t i = 0; i < piece.size(); ++i) {
            char want = gen_ ? http::bytes_body_char(offset + i) : http::kRootBody[offset + i];
            if (piece[i] != want) return {ReplyCheck::Mismatch};
        }
    return {ReplyCheck::Ok, static_cast<size_t>(n), !r.keep_alive};
}

}  // namespace mux::load
