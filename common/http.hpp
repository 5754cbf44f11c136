// The HTTP/1.1 subset muxbench speaks: GET with no body, keep-alive, pipelining.
//
// Same contract as mux1.hpp: parse calls are stateless, allocate nothing, point into the
// caller's buffer, and return bytes consumed, kIncomplete, or a negative error. Feeding a
// message one byte at a time gives the same answer as feeding it whole.
#pragma once

#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mux::http {

// A head (request line plus headers) longer than this is refused with 431.
inline constexpr size_t kMaxHeadBytes = 8192;

inline constexpr ssize_t kIncomplete = -2;
inline constexpr ssize_t kMalformed = -1;
inline constexpr ssize_t kHeadTooLarge = -3;

struct Request {
    std::string_view method;
    std::string_view target;
    int minor_version = 1;   // HTTP/1.<minor_version>
    bool keep_alive = true;  // after the version default and any Connection header
    bool has_body = false;   // Content-Length > 0 or Transfer-Encoding present
};

// Returns the length of the request head (which is the whole request: bodies are refused).
ssize_t parse_request(const char* buf, size_t len, Request* request);

struct Response {
    int status = 0;
    int minor_version = 1;
    bool keep_alive = true;
    bool has_content_length = false;
    uint64_t content_length = 0;
};

// Returns the length of the response head; the body (content_length bytes) follows it.
ssize_t parse_response_head(const char* buf, size_t len, Response* response);

std::string_view reason_phrase(int status);

// Writes a response head into out (at least kMaxResponseHead bytes) and returns its length.
inline constexpr size_t kMaxResponseHead = 256;
size_t format_response_head(char* out, int status, uint64_t content_length, bool keep_alive,
                            int minor_version);

// Body byte i of GET /bytes/N: printable, and position-dependent so a shifted body fails.
inline char bytes_body_char(size_t i) {
    return static_cast<char>('a' + i % 26);
}

// The fixed body of GET /.
inline constexpr std::string_view kRootBody = "muxbench\n";

// Parses "/bytes/N". Returns false for any other target or a malformed N.
bool parse_bytes_target(std::string_view target, uint64_t* n);

}  // namespace mux::http
