// libFuzzer harness: the server's mux1 request framing, mux1::parse_frame (common/mux1.hpp).
//
// Every answer is checked against what the header bytes say (the function's whole contract,
// so this is an oracle, not only a crash test), under two payload limits, and the stream
// split at the fuzzer's cuts must frame exactly as the whole stream does.
#include <cstring>

#include "fuzz_input.hpp"
#include "mux1.hpp"

namespace {

using mux::mux1::Header;
using mux::mux1::kHeaderSize;

bool same(const Header& a, const Header& b) {
    return a.magic == b.magic && a.version == b.version && a.op_or_status == b.op_or_status &&
           a.payload_len == b.payload_len && a.reply_len == b.reply_len && a.work_us == b.work_us &&
           a.tag == b.tag;
}

struct Frame {
    ssize_t result = 0;
    Header header;

    bool operator==(const Frame& o) const { return result == o.result && same(header, o.header); }
};

// Filled in before each call: until a whole header with the right magic is there, the parser
// must leave it alone.
Header sentinel() {
    Header h;
    h.magic = 0xDEAD;
    h.version = 0xEE;
    h.op_or_status = 0xEE;
    h.payload_len = h.reply_len = h.work_us = 0xEEEEEEEE;
    h.tag = 0xEEEEEEEEEEEEEEEE;
    return h;
}

// How many of the first three bytes (magic, version) are present, and are they right?
bool prefix_is_mux1(const uint8_t* buf, size_t len) {
    const uint8_t want[3] = {uint8_t(mux::mux1::kMagic >> 8), uint8_t(mux::mux1::kMagic & 0xff),
                             mux::mux1::kVersion};
    for (size_t i = 0; i < len && i < 3; ++i)
        if (buf[i] != want[i]) return false;
    return true;
}

void check_answer(const uint8_t* buf, size_t len, uint32_t max_payload, ssize_t r,
                  const Header& h) {
    if (!prefix_is_mux1(buf, len)) {
        FUZZ_REQUIRE(r == mux::mux1::kBadMagic, "wrong magic or version answered %zd", r);
        FUZZ_REQUIRE(same(h, sentinel()), "a refused frame wrote the header");
        return;
    }
    if (len < kHeaderSize) {
        FUZZ_REQUIRE(r == mux::mux1::kIncomplete, "%zu header bytes answered %zd", len, r);
        FUZZ_REQUIRE(same(h, sentinel()), "an incomplete frame wrote the header");
        return;
    }
    Header decoded = mux::mux1::decode_header(buf);
    uint8_t encoded[kHeaderSize];
    mux::mux1::encode_header(decoded, encoded);
    FUZZ_REQUIRE(std::memcmp(encoded, buf, kHeaderSize) == 0, "decode then encode changed bytes");
    if (decoded.payload_len > max_payload || decoded.reply_len > max_payload) {
        FUZZ_REQUIRE(r == mux::mux1::kTooLarge, "payload %u reply %u over %u answered %zd",
                     decoded.payload_len, decoded.reply_len, max_payload, r);
        FUZZ_REQUIRE(same(h, decoded), "a refusal must carry the header it refused");
        return;
    }
    size_t frame_len = kHeaderSize + decoded.payload_len;
    if (len < frame_len) {
        FUZZ_REQUIRE(r == mux::mux1::kIncomplete, "%zu of %zu frame bytes answered %zd", len,
                     frame_len, r);
        FUZZ_REQUIRE(same(h, decoded), "an incomplete frame must say how long it will be");
        return;
    }
    FUZZ_REQUIRE(r == ssize_t(frame_len), "a complete %zu-byte frame answered %zd", frame_len, r);
    FUZZ_REQUIRE(same(h, decoded), "the header returned is not the header sent");
}

void fuzz_with_limit(const mux::fuzz::Input& in, uint32_t max_payload) {
    auto parse = [&](const uint8_t* buf, size_t len) {
        Frame f;
        f.header = sentinel();
        f.result = mux::mux1::parse_frame(buf, len, max_payload, &f.header);
        check_answer(buf, len, max_payload, f.result, f.header);
        return std::pair{f.result, f};
    };
    auto whole = mux::fuzz::feed<Frame>(in.message, {}, mux::mux1::kIncomplete, parse);
    auto split = mux::fuzz::feed<Frame>(in.message, in.cuts, mux::mux1::kIncomplete, parse);
    FUZZ_REQUIRE(
        whole == split, "split at %zu cuts: %zu frames then %zd, whole: %zu frames then %zd",
        in.cuts.size(), split.messages.size(), split.last, whole.messages.size(), whole.last);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    mux::fuzz::Input in = mux::fuzz::read_input(data, size);
    fuzz_with_limit(in, 64);  // small enough that inputs reach the refusal
    fuzz_with_limit(in, mux::mux1::kDefaultMaxPayload);
    return 0;
}
