// mux1::parse_frame against a table of cases, each fed whole and one prefix at a time,
// with every buffer ending at a guard page so an over-read crashes.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "guarded_buffer.hpp"
#include "mux1.hpp"

namespace {

using mux::mux1::Header;
using mux::mux1::kBadMagic;
using mux::mux1::kHeaderSize;
using mux::mux1::kIncomplete;
using mux::mux1::kTooLarge;

std::string frame(Header h, std::string_view payload = {}) {
    uint8_t head[kHeaderSize];
    mux::mux1::encode_header(h, head);
    return std::string(reinterpret_cast<const char*>(head), kHeaderSize) + std::string(payload);
}

Header echo_header(uint32_t payload_len, uint64_t tag = 42) {
    Header h;
    h.op_or_status = static_cast<uint8_t>(mux::mux1::Op::Echo);
    h.payload_len = payload_len;
    h.tag = tag;
    return h;
}

struct FrameCase {
    std::string name;
    std::string bytes;
    uint32_t max_payload;
    ssize_t expected;   // answer for the whole input
    size_t decided_at;  // shortest prefix that already gives that answer
    Header header{};    // checked when expected > 0 or expected == kTooLarge
};

std::vector<FrameCase> frame_cases() {
    std::vector<FrameCase> cases;
    Header gen;
    gen.op_or_status = static_cast<uint8_t>(mux::mux1::Op::Gen);
    gen.reply_len = 4096;
    gen.work_us = 17;
    gen.tag = 0x0102030405060708ULL;
    cases.push_back({"GenNoPayload", frame(gen), 1 << 20, 24, 24, gen});
    cases.push_back({"EchoHello", frame(echo_header(5), "hello"), 1 << 20, 29, 29, echo_header(5)});
    cases.push_back({"EchoAtMaxPayload", frame(echo_header(64), std::string(64, 'x')), 64, 88, 88,
                     echo_header(64)});
    cases.push_back({"ZeroMaxZeroPayload", frame(echo_header(0)), 0, 24, 24, echo_header(0)});
    // Only the first of two pipelined frames is reported; the caller comes back for the next.
    cases.push_back({"TwoPipelinedFrames",
                     frame(echo_header(3), "abc") + frame(echo_header(2, 7), "de"), 1 << 20, 27, 27,
                     echo_header(3)});
    cases.push_back({"EmptyInput", "", 1 << 20, kIncomplete, 0});
    cases.push_back({"HeaderWithoutPayload", frame(echo_header(100)), 1 << 20, kIncomplete, 0});

    std::string bad_first = frame(echo_header(0));
    bad_first[0] = 'G';
    cases.push_back({"BadMagicFirstByte", bad_first, 1 << 20, kBadMagic, 1});
    std::string bad_second = frame(echo_header(0));
    bad_second[1] = 0x59;
    cases.push_back({"BadMagicSecondByte", bad_second, 1 << 20, kBadMagic, 2});
    std::string bad_version = frame(echo_header(0));
    bad_version[2] = 2;
    cases.push_back({"BadVersion", bad_version, 1 << 20, kBadMagic, 3});
    cases.push_back({"HttpIsNotMux1", "GET / HTTP/1.1\r\n\r\n", 1 << 20, kBadMagic, 1});

    // Too large is decided from the header alone, before any payload arrives.
    cases.push_back({"PayloadOverMax", frame(echo_header(65)), 64, kTooLarge, 24, echo_header(65)});
    cases.push_back({"PayloadMaxU32", frame(echo_header(UINT32_MAX)), 1 << 20, kTooLarge, 24,
                     echo_header(UINT32_MAX)});
    Header big_reply = gen;
    big_reply.reply_len = 65;
    cases.push_back({"ReplyLenOverMax", frame(big_reply), 64, kTooLarge, 24, big_reply});
    return cases;
}

// gtest prints a failing parameter; the name says which row it is.
void PrintTo(const FrameCase& c, std::ostream* os) {
    *os << c.name;
}

class Mux1Frame : public testing::TestWithParam<FrameCase> {};

void expect_header(const Header& got, const Header& want) {
    EXPECT_EQ(got.magic, want.magic);
    EXPECT_EQ(got.version, want.version);
    EXPECT_EQ(got.op_or_status, want.op_or_status);
    EXPECT_EQ(got.payload_len, want.payload_len);
    EXPECT_EQ(got.reply_len, want.reply_len);
    EXPECT_EQ(got.work_us, want.work_us);
    EXPECT_EQ(got.tag, want.tag);
}

ssize_t parse_placed(mux::test::GuardedBuffer& guard, std::string_view bytes, uint32_t max,
                     Header* header) {
    auto* at = reinterpret_cast<const uint8_t*>(guard.place(bytes));
    return mux::mux1::parse_frame(at, bytes.size(), max, header);
}

TEST_P(Mux1Frame, WholeInput) {
    const FrameCase& c = GetParam();
    mux::test::GuardedBuffer guard(c.bytes.size());
    Header header;
    ssize_t got = parse_placed(guard, c.bytes, c.max_payload, &header);
    EXPECT_EQ(got, c.expected);
    if (got > 0 || got == kTooLarge) expect_header(header, c.header);
}

// Every prefix shorter than decided_at is incomplete; every longer one gives the same
// answer as the whole input, as a server receiving one byte per recv would see.
TEST_P(Mux1Frame, OneByteAtATime) {
    const FrameCase& c = GetParam();
    mux::test::GuardedBuffer guard(c.bytes.size());
    for (size_t len = 0; len <= c.bytes.size(); ++len) {
        Header header;
        ssize_t got =
            parse_placed(guard, std::string_view(c.bytes).substr(0, len), c.max_payload, &header);
        ssize_t want = len < c.decided_at ? kIncomplete : c.expected;
        ASSERT_EQ(got, want) << "prefix of " << len << " bytes";
        if (got > 0 || got == kTooLarge) expect_header(header, c.header);
    }
}

INSTANTIATE_TEST_SUITE_P(Table, Mux1Frame, testing::ValuesIn(frame_cases()),
                         [](const auto& p) { return p.param.name; });

// The layout is Python's struct "!HBBIIIQ": fixed offsets, network byte order.
TEST(Mux1Header, EncodesNetworkByteOrderLayout) {
    Header h;
    h.op_or_status = 1;
    h.payload_len = 0x11223344;
    h.reply_len = 0x55667788;
    h.work_us = 0x99AABBCC;
    h.tag = 0x0102030405060708ULL;
    uint8_t out[kHeaderSize];
    mux::mux1::encode_header(h, out);
    const uint8_t want[kHeaderSize] = {0x4D, 0x58, 0x01, 0x01, 0x11, 0x22, 0x33, 0x44,
                                       0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC,
                                       0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    for (size_t i = 0; i < kHeaderSize; ++i) EXPECT_EQ(out[i], want[i]) << "byte " << i;
    expect_header(mux::mux1::decode_header(out), h);
}

TEST(Mux1Gen, PatternDependsOnTagAndPosition) {
    std::vector<uint8_t> payload(300);
    mux::mux1::fill_gen_payload(250, payload);
    EXPECT_EQ(payload[0], 250);
    EXPECT_EQ(payload[6], 0);  // wraps at 256
    EXPECT_EQ(mux::mux1::check_gen_payload(250, payload), payload.size());
    EXPECT_EQ(mux::mux1::check_gen_payload(251, payload), 0u);
    payload[123] ^= 1;
    EXPECT_EQ(mux::mux1::check_gen_payload(250, payload), 123u);
}

}  // namespace

namespace {
// The guard is real: reading one byte past a placed buffer faults, so a parser that
// over-reads cannot pass the tables above by luck.
TEST(GuardedBufferDeathTest, ReadOnePastTheEndFaults) {
    mux::test::GuardedBuffer guard(64);
    const char* at = guard.place("abc");
    EXPECT_EQ(at[2], 'c');
    EXPECT_DEATH(
        {
            volatile const char* p = at;
            [[maybe_unused]] char c = p[3];
        },
        "");
}
}  // namespace
