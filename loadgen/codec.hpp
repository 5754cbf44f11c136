// What muxload sends and how it checks what comes back, for both protocols. Framing comes
// from common/mux1.hpp and common/http.hpp; this file adds only the expectations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "options.hpp"

namespace mux::load {

enum class ErrorKind : uint8_t { Connect, Reset, Timeout, Protocol, Mismatch };
inline constexpr int kErrorKinds = 5;
const char* error_kind_name(ErrorKind kind);

enum class ReplyCheck : uint8_t {
    Ok,
    Incomplete,
    Protocol,  // not a well-formed reply: bad magic/version, malformed HTTP, no Content-Length
    Mismatch,  // well formed but not the answer: tag, status, length or payload bytes
};

struct ReplyResult {
    ReplyCheck check;
    size_t bytes = 0;          // bytes of the reply when Ok
    bool close_after = false;  // HTTP server said Connection: close
};

class Codec {
  public:
    explicit Codec(const LoadOptions& options);

    size_t max_request_bytes() const { return max_request_bytes_; }
    size_t max_reply_bytes() const { return max_reply_bytes_; }

    // Writes one request into out (room for max_request_bytes) and returns its length.
    size_t write_request(uint8_t* out, uint64_t tag, uint32_t work_us) const;
    // Checks the reply at the front of buf, which answers the request with this tag.
    ReplyResult check_reply(const uint8_t* buf, size_t len, uint64_t tag) const;

  private:
    ReplyResult check_mux1(const uint8_t* buf, size_t len, uint64_t tag) const;
    ReplyResult check_http(const uint8_t* buf, size_t len) const;

    Proto proto_;
    bool gen_;
    uint32_t payload_bytes_;
    uint32_t expected_reply_payload_;
    std::vector<uint8_t> payload_;  // the ECHO payload; also what comes back
    std::string http_request_;
    std::string http_root_body_;
    size_t max_request_bytes_;
    size_t max_reply_bytes_;
};

}  // namespace mux::load
