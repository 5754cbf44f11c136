#include "mux1.hpp"

#include <endian.h>

#include <cstring>

namespace mux::mux1 {

namespace {
template <typename T>
void store(uint8_t* out, T value) {
    std::memcpy(out, &value, sizeof value);
}
template <typename T>
T load(const uint8_t* in) {
    T value;
    std::memcpy(&value, in, sizeof value);
    return value;
}
}  // namespace

// Layout, network byte order, as Python's struct format "!HBBIIIQ".
void encode_header(const Header& h, uint8_t* out) {
    store(out + 0, htobe16(h.magic));
    out[2] = h.version;
    out[3] = h.op_or_status;
    store(out + 4, htobe32(h.payload_len));
    store(out + 8, htobe32(h.reply_len));
    store(out + 12, htobe32(h.work_us));
    store(out + 16, htobe64(h.tag));
}

Header decode_header(const uint8_t* in) {
    Header h;
    h.magic = be16toh(load<uint16_t>(in + 0));
    h.version = in[2];
    h.op_or_status = in[3];
    h.payload_len = be32toh(load<uint32_t>(in + 4));
    h.reply_len = be32toh(load<uint32_t>(in + 8));
    h.work_us = be32toh(load<uint32_t>(in + 12));
    h.tag = be64toh(load<uint64_t>(in + 16));
    return h;
}

ssize_t parse_frame(const uint8_t* buf, size_t len, uint32_t max_payload, Header* header) {
    // Judge the magic from the first bytes so garbage is refused without waiting for 24.
    if (len >= 1 && buf[0] != (kMagic >> 8)) return kBadMagic;
    if (len >= 2 && buf[1] != (kMagic & 0xff)) return kBadMagic;
    if (len >= 3 && buf[2] != kVersion) return kBadMagic;
    if (len < kHeaderSize) return kIncomplete;
    *header = decode_header(buf);
    if (header->payload_len > max_payload || header->reply_len > max_payload) return kTooLarge;
    size_t frame_len = kHeaderSize + header->payload_len;
    if (len < frame_len) return kIncomplete;
    return static_cast<ssize_t>(frame_len);
}

void fill_gen_payload(uint64_t tag, std::span<uint8_t> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = gen_byte(tag, i);
}

size_t check_gen_payload(uint64_t tag, std::span<const uint8_t> payload) {
    for (size_t i = 0; i < payload.size(); ++i)
        if (payload[i] != gen_byte(tag, i)) return i;
    return payload.size();
}

}  // namespace mux::mux1
