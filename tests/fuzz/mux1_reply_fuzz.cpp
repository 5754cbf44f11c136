// libFuzzer harness: muxload's mux1 reply verifier, load::verify_mux1_reply (loadgen/verify.hpp).
//
// An input is CONFIG STREAM [CUTS MARK]: four bytes say what muxload expects (byte 0 bit 0:
// GEN rather than ECHO; byte 1: the payload length; bytes 2-3: the first tag, each later
// reply answering the next tag, as a pipelined connection's replies do), and the rest is the
// server's byte stream. An ECHO request's payload is the letters a-z repeated, so a reply
// that echoes it is a few bytes the fuzzer can learn.
//
// Every answer is checked against the reply's definition, decoded here from the header bytes
// (docs/protocol.md): Protocol for a wrong magic or version, Incomplete until the frame the
// header announces is there, Mismatch for a frame that is not the answer, and Ok with the
// frame's length only for the expected tag, status, length and payload. A failure must be
// explained in a sentence with bounded excerpts. The stream split at the fuzzer's cuts must
// verify exactly as the whole stream does.
#include <cstring>
#include <string>

#include "fuzz_input.hpp"
#include "mux1.hpp"
#include "verify.hpp"

namespace {

using mux::load::ReplyCheck;
using mux::mux1::kHeaderSize;

constexpr size_t kConfigBytes = 4;

struct Expectation {
    bool gen = false;
    uint32_t payload_bytes = 0;
    uint64_t first_tag = 0;
    std::string echo_payload;
};

Expectation read_config(std::string_view config) {
    auto byte = [&](size_t i) { return static_cast<uint8_t>(config[i]); };
    Expectation e;
    e.gen = byte(0) & 1;
    e.payload_bytes = byte(1);
    e.first_tag = uint64_t(byte(2)) << 8 | byte(3);
    for (size_t i = 0; i < e.payload_bytes; ++i) e.echo_payload += char('a' + i % 26);
    return e;
}

// What verify_mux1_reply must answer for buf, from the protocol's definition.
ReplyCheck definition(const uint8_t* buf, size_t len, const Expectation& e, uint64_t tag) {
    const uint8_t prefix[3] = {uint8_t(mux::mux1::kMagic >> 8), uint8_t(mux::mux1::kMagic & 0xff),
                               mux::mux1::kVersion};
    for (size_t i = 0; i < len && i < 3; ++i)
        if (buf[i] != prefix[i]) return ReplyCheck::Protocol;
    if (len < kHeaderSize) return ReplyCheck::Incomplete;
    mux::mux1::Header h = mux::mux1::decode_header(buf);
    // Refused from the header alone: muxload never buffers more than the reply it expects.
    if (h.payload_len > e.payload_bytes || h.reply_len > e.payload_bytes)
        return ReplyCheck::Mismatch;
    if (len < kHeaderSize + h.payload_len) return ReplyCheck::Incomplete;
    if (h.tag != tag || h.op_or_status != 0 || h.payload_len != e.payload_bytes)
        return ReplyCheck::Mismatch;
    for (size_t i = 0; i < h.payload_len; ++i) {
        uint8_t want = e.gen ? uint8_t((tag + i) & 0xff) : uint8_t(e.echo_payload[i]);
        if (buf[kHeaderSize + i] != want) return ReplyCheck::Mismatch;
    }
    return ReplyCheck::Ok;
}

struct Reply {
    ReplyCheck check = ReplyCheck::Incomplete;
    size_t bytes = 0;

    bool operator==(const Reply&) const = default;
};

mux::fuzz::Stream<Reply> verify_stream(const mux::fuzz::Input& in, const Expectation& e) {
    uint64_t tag = e.first_tag;  // the tag the next reply must carry
    auto verify = [&](const uint8_t* buf, size_t len) {
        mux::load::Mux1Expectation expect;
        expect.tag = tag;
        expect.gen = e.gen;
        expect.payload_bytes = e.payload_bytes;
        expect.echo_payload = {reinterpret_cast<const uint8_t*>(e.echo_payload.data()),
                               e.echo_payload.size()};
        mux::load::ReplyResult r = mux::load::verify_mux1_reply({buf, len}, expect);
        ReplyCheck want = definition(buf, len, e, tag);
        FUZZ_REQUIRE(r.check == want, "tag %llu: answered %d where the protocol says %d",
                     static_cast<unsigned long long>(tag), int(r.check), int(want));
        FUZZ_REQUIRE(!r.close_after, "a mux1 reply never closes its connection");
        if (r.check == ReplyCheck::Ok) {
            FUZZ_REQUIRE(r.bytes == kHeaderSize + e.payload_bytes, "ok with %zu bytes for %u",
                         r.bytes, e.payload_bytes);
            ++tag;
            return std::pair{static_cast<ssize_t>(r.bytes), Reply{r.check, r.bytes}};
        }
        FUZZ_REQUIRE(r.bytes == 0, "a reply that is not ok claimed %zu bytes", r.bytes);
        if (r.check != ReplyCheck::Incomplete) {
            mux::load::FailureDetail d = mux::load::explain_mux1_failure({buf, len}, expect);
            // Each excerpt is at most kExcerptBytes bytes, each escaped to at most 4 chars.
            FUZZ_REQUIRE(!d.reason.empty(), "a failure without a reason");
            FUZZ_REQUIRE(d.expected.size() <= 4 * mux::load::kExcerptBytes &&
                             d.got.size() <= 4 * mux::load::kExcerptBytes,
                         "excerpts of %zu and %zu chars", d.expected.size(), d.got.size());
        }
        // Incomplete and the failures map to results feed() reads as "stop here".
        ssize_t code = r.check == ReplyCheck::Incomplete ? -2 : -1 - ssize_t(r.check);
        return std::pair{code, Reply{r.check, 0}};
    };
    return mux::fuzz::feed<Reply>(in.message, in.cuts, -2, verify);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < kConfigBytes) return 0;
    Expectation e = read_config({reinterpret_cast<const char*>(data), kConfigBytes});
    mux::fuzz::Input in = mux::fuzz::read_input(data + kConfigBytes, size - kConfigBytes);
    mux::fuzz::Input whole{in.message, {}};
    auto split = verify_stream(in, e);
    auto all = verify_stream(whole, e);
    FUZZ_REQUIRE(split == all, "split at %zu cuts: %zu replies then %zd, whole: %zu then %zd",
                 in.cuts.size(), split.messages.size(), split.last, all.messages.size(), all.last);
    return 0;
}
