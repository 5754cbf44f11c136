// What muxload sends and what it expects back, for both protocols. Framing comes from
// common/mux1.hpp and common/http.hpp, verification from verify.hpp; this file holds the
// run's requests and expectations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "options.hpp"
#include "verify.hpp"

namespace mux::load {

// Abandoned: a request in flight on a connection muxload closed because of an earlier
// reply on it (Connection: close, or a reply that failed verification), so it was never
// answered.
enum class ErrorKind : uint8_t { Connect, Reset, Timeout, Protocol, Mismatch, Abandoned };
inline constexpr int kErrorKinds = 6;
const char* error_kind_name(ErrorKind kind);

class Codec {
  public:
    explicit Codec(const LoadOptions& options);

    size_t max_request_bytes() const { return max_request_bytes_; }
    // Room for one reply: what a reply may take before it is refused as too long.
    size_t max_reply_bytes() const { return max_reply_bytes_; }
    // Longest a connection's input buffer may grow for one reply (chunked framing included).
    size_t max_buffer_bytes() const { return max_buffer_bytes_; }

    // Writes one request into out (room for max_request_bytes) and returns its length.
    size_t write_request(uint8_t* out, uint64_t tag, uint32_t work_us) const;
    // Checks the reply at the front of buf, which answers the request with this tag.
    ReplyResult check_reply(const uint8_t* buf, size_t len, uint64_t tag) const;
    // Why that reply failed (allocates; for the first failure only).
    FailureDetail explain(const uint8_t* buf, size_t len, uint64_t tag) const;

  private:
    Mux1Expectation mux1_expectation(uint64_t tag) const;

    Proto proto_;
    bool gen_;
    uint32_t payload_bytes_;
    uint32_t expected_reply_payload_;
    std::vector<uint8_t> payload_;  // the ECHO payload; also what comes back
    std::string http_request_;
    HttpExpectation http_expect_;
    size_t max_request_bytes_;
    size_t max_reply_bytes_;
    size_t max_buffer_bytes_;
};

}  // namespace mux::load
