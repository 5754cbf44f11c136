#include "codec.hpp"

#include <cstring>
#include <span>

#include "http.hpp"
#include "mux1.hpp"

namespace mux::load {

namespace {
// --verify framing against an unknown server: a body longer than this is refused (and the
// connection's buffer never grows past it).
constexpr uint64_t kMaxFramingBodyBytes = 16u << 20;
}  // namespace

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
        case ErrorKind::Abandoned:
            return "abandoned";
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
        max_buffer_bytes_ = max_reply_bytes_;
        return;
    }
    http_request_ = "GET " + o.path + " HTTP/1.1\r\n";
    if (!o.host_header.empty()) http_request_ += "Host: " + o.host_header + "\r\n";
    for (const auto& h : o.headers) http_request_ += h + "\r\n";
    http_request_ += "\r\n";
    max_request_bytes_ = http_request_.size();
    http_expect_.verify = o.verify;
    if (o.verify == Verify::Full) {
        http_expect_.pattern_body = gen_;
        http_expect_.body_bytes = gen_ ? uint64_t(o.reply_bytes) : http::kRootBody.size();
        http_expect_.literal_body = http::kRootBody;
        max_reply_bytes_ = http::kMaxHeadBytes + http_expect_.body_bytes;
        // A chunked body of the right length takes more than its bytes: room for the framing
        // of small chunks, so the reply is verified (or refused) rather than cut off.
        max_buffer_bytes_ = 2 * max_reply_bytes_ + http::kMaxHeadBytes;
    } else {
        http_expect_.max_body_bytes = kMaxFramingBodyBytes;
        // Chunk framing adds to the body's bytes; a reply that needs more room than this
        // grows its connection's buffer, up to the limit and its framing.
        max_reply_bytes_ = http::kMaxHeadBytes + (gen_ ? uint64_t(o.reply_bytes) : 4096);
        max_buffer_bytes_ = 2 * (http::kMaxHeadBytes + kMaxFramingBodyBytes);
    }
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

Mux1Expectation Codec::mux1_expectation(uint64_t tag) const {
    return {tag, gen_, expected_reply_payload_, payload_};
}

ReplyResult Codec::check_reply(const uint8_t* buf, size_t len, uint64_t tag) const {
    if (proto_ == Proto::Mux1) return verify_mux1_reply({buf, len}, mux1_expectation(tag));
    return verify_http_reply({buf, len}, http_expect_);
}

FailureDetail Codec::explain(const uint8_t* buf, size_t len, uint64_t tag) const {
    if (proto_ == Proto::Mux1) return explain_mux1_failure({buf, len}, mux1_expectation(tag));
    return explain_http_failure({buf, len}, http_expect_);
}

}  // namespace mux::load
