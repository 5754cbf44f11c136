// mux1: the suite's binary request/reply protocol (see docs/protocol.md).
//
// One stateless framing module shared by servers, the load generator, benchmarks and tests.
// Like picohttpparser, a parse call looks at a caller-owned buffer, allocates nothing, and
// returns the bytes the frame occupies, kIncomplete, or a negative error.
#pragma once

#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <span>

namespace mux::mux1 {

inline constexpr uint16_t kMagic = 0x4D58;
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kHeaderSize = 24;
inline constexpr uint32_t kDefaultMaxPayload = 1u << 20;

enum class Op : uint8_t { Echo = 0, Gen = 1 };

// Carried in byte 3 of a reply, where a request carries its op.
enum class Status : uint8_t { Ok = 0, BadOp = 1, TooLarge = 2 };

struct Header {
    uint16_t magic = kMagic;
    uint8_t version = kVersion;
    uint8_t op_or_status = 0;
    uint32_t payload_len = 0;
    uint32_t reply_len = 0;
    uint32_t work_us = 0;
    uint64_t tag = 0;
};

void encode_header(const Header& header, uint8_t* out);
Header decode_header(const uint8_t* in);

// Results of parse_frame besides a frame length.
inline constexpr ssize_t kIncomplete = -2;
inline constexpr ssize_t kBadMagic = -1;  // wrong magic or version: not a mux1 peer
inline constexpr ssize_t kTooLarge = -3;  // payload_len or reply_len over max_payload

// Parses one frame at the start of buf. On success fills *header and returns
// kHeaderSize + payload_len. The length check needs only the header, so an oversized
// frame is refused before any of its payload has to be buffered. Once a whole header with
// the right magic is there, *header is filled whatever the result (a refusal carries the
// request's tag; an incomplete frame says how long it will be); before that, or for the
// wrong magic, *header is left alone.
ssize_t parse_frame(const uint8_t* buf, size_t len, uint32_t max_payload, Header* header);

// Byte i of a GEN reply: a pattern that depends on the tag so a reply delivered to the
// wrong request, or shifted by one byte, fails verification.
inline uint8_t gen_byte(uint64_t tag, size_t i) {
    return static_cast<uint8_t>((tag + i) & 0xff);
}
void fill_gen_payload(uint64_t tag, std::span<uint8_t> out);
// Returns the index of the first wrong byte, or out.size() if all match.
size_t check_gen_payload(uint64_t tag, std::span<const uint8_t> payload);

}  // namespace mux::mux1
