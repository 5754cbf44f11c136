// The HTTP/1.1 subset muxbench speaks: GET with no body, keep-alive, pipelining.
//
// Same contract as mux1.hpp: parse calls are stateless, allocate nothing, point into the
// caller's buffer, and return bytes consumed, kIncomplete, or a negative error. Feeding a
// message one byte at a time gives the same answer as feeding it whole. Requests are the
// subset muxserver serves; responses are whatever a real HTTP/1.x server sends.
#pragma once

#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <span>
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
// *request is written only when a length is returned.
ssize_t parse_request(const char* buf, size_t len, Request* request);

// A header field as the head carries it: the name as sent, the value without the spaces and
// tabs around it. Both point into the caller's buffer.
struct HeaderField {
    std::string_view name;
    std::string_view value;
};

// parse_request that also lists the header fields, in order, into fields (as many as fit)
// and sets *field_count to how many the head has. For tests and the fuzzers: the server
// needs only what Request holds.
ssize_t parse_request(const char* buf, size_t len, Request* request, std::span<HeaderField> fields,
                      size_t* field_count);

// ---- Responses: what a client (muxload, the tests, a fuzzer) reads back.
//
// parse_response is a pure function of (buf, len, max_body_bytes): it allocates nothing,
// keeps no state between calls, never reads past buf + len, and fills *response with views
// into buf. It returns
//   > 0            the length of the whole message, head and body: the next message (a
//                  pipelined reply) starts there;
//   kIncomplete    every byte so far fits a response, but it has not ended yet;
//   < 0 otherwise  an error below; the connection's byte stream cannot be trusted after it.
// Feeding a message one byte at a time gives kIncomplete for every proper prefix (or the
// error, as soon as a byte makes the prefix impossible) and then the same answer as feeding
// it whole. *response is meaningful only when the result is > 0.
//
// The body is framed by Content-Length, or by Transfer-Encoding: chunked (chunk extensions
// and trailer fields are accepted and skipped). 1xx, 204 and 304 replies have no body
// whatever their headers say. A reply framed by neither header ends only when the server
// closes the connection, which a keep-alive client cannot use: that is kUnframed.
inline constexpr ssize_t kUnframed = -4;            // no Content-Length and not chunked
inline constexpr ssize_t kBodyTooLarge = -5;        // the body is longer than max_body_bytes
inline constexpr size_t kMaxChunkLineBytes = 1024;  // size line with its extensions

enum class BodyFraming : uint8_t { None, ContentLength, Chunked };

struct Response {
    int status = 0;
    int minor_version = 1;  // HTTP/1.<minor_version>
    std::string_view reason;
    bool keep_alive = true;  // after the version default and any Connection header
    BodyFraming framing = BodyFraming::None;
    size_t head_bytes = 0;    // status line and headers, blank line included
    std::string_view body;    // the body as sent: with its chunk framing when chunked
    uint64_t body_bytes = 0;  // the body's length once decoded
};

ssize_t parse_response(const char* buf, size_t len, uint64_t max_body_bytes, Response* response);

// Walks the decoded body of a response parse_response accepted: each call gives the next
// piece of body data (the whole body, or one chunk's data) and returns false after the
// last. *cursor starts at 0 and is the caller's only state.
bool next_body_piece(const Response& response, size_t* cursor, std::string_view* piece);

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
