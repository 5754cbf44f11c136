// Reply verification: is the reply at the front of a buffer the answer muxload expects?
//
// Contract (the fuzz harnesses rely on it):
// - verify_mux1_reply and verify_http_reply are pure functions of (bytes, expectation):
//   no clock, no state kept between calls, no allocation, and no read outside
//   [bytes.data(), bytes.data() + bytes.size()).
// - The result is Incomplete while every byte so far could still become the expected reply
//   (feed more and call again with the longer buffer), Ok with the reply's length in bytes
//   (the next reply starts there), or Protocol / Mismatch. After Protocol or Mismatch the
//   connection's stream cannot be trusted and the caller closes it.
// - HTTP: interim 1xx replies before the final one (103 Early Hints, 100 Continue) belong
//   to the reply (up to http::kMaxHeadBytes of them): the final reply is verified, and the
//   length covers them all.
// - Protocol: not a well-formed reply (bad mux1 magic or version; malformed HTTP, a body
//   framed by neither Content-Length nor chunked, a head over http::kMaxHeadBytes, a 101
//   Switching Protocols).
//   Mismatch: well formed, but not the answer (mux1 tag, status, length or payload; HTTP
//   status, body length or body bytes; a body over the expectation's limit).
// - Feeding a reply one byte at a time gives Incomplete for every proper prefix (or the
//   failure, as soon as a byte decides it) and then the same answer as feeding it whole.
// The explain_* functions say why a reply failed, for the first failure's report: they
// allocate and are called once per run, never on the hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "options.hpp"

namespace mux::load {

enum class ReplyCheck : uint8_t { Ok, Incomplete, Protocol, Mismatch };

struct ReplyResult {
    ReplyCheck check;
    size_t bytes = 0;          // the reply's length when Ok
    bool close_after = false;  // an HTTP reply that ends its connection (Connection: close)
};

// What answers a mux1 request: the reply carries the request's tag and status Ok, and its
// payload is the echoed request payload (ECHO) or the tag's GEN pattern of a fixed length.
struct Mux1Expectation {
    uint64_t tag = 0;
    bool gen = false;
    uint32_t payload_bytes = 0;             // the reply's payload length
    std::span<const uint8_t> echo_payload;  // ECHO: what must come back
};
ReplyResult verify_mux1_reply(std::span<const uint8_t> bytes, const Mux1Expectation& expect);

// What answers an HTTP GET. Full: status 200 and exactly this body (a literal, or the
// /bytes/N pattern of body_bytes bytes). Framing: any 2xx status with a body of any bytes
// up to max_body_bytes.
struct HttpExpectation {
    Verify verify = Verify::Full;
    uint64_t body_bytes = 0;        // Full: the body's length
    std::string_view literal_body;  // Full: the body, unless pattern_body
    bool pattern_body = false;      // Full: the body is http::bytes_body_char(0..body_bytes)
    uint64_t max_body_bytes = 0;    // Framing: longest body accepted
};
ReplyResult verify_http_reply(std::span<const uint8_t> bytes, const HttpExpectation& expect);

// Why a reply failed: a sentence, and the first kExcerptBytes of what was expected and of
// what came, escaped to printable ASCII (\r, \n, \t, \xHH).
inline constexpr size_t kExcerptBytes = 40;
struct FailureDetail {
    std::string reason;
    std::string expected;
    std::string got;
};
FailureDetail explain_mux1_failure(std::span<const uint8_t> bytes, const Mux1Expectation& expect);
FailureDetail explain_http_failure(std::span<const uint8_t> bytes, const HttpExpectation& expect);

// Printable form of up to kExcerptBytes of bytes.
std::string excerpt(std::string_view bytes);

}  // namespace mux::load
