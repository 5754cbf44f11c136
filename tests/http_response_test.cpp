// http::parse_response against a table of replies real servers send (Content-Length,
// chunked, bodiless statuses) and broken ones, each fed whole and one prefix at a time with
// the buffer ending at a guard page, as picohttpparser's tests do.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "guarded_buffer.hpp"
#include "http.hpp"

namespace {

using mux::http::BodyFraming;
using mux::http::kBodyTooLarge;
using mux::http::kHeadTooLarge;
using mux::http::kIncomplete;
using mux::http::kMalformed;
using mux::http::kMaxChunkLineBytes;
using mux::http::kMaxHeadBytes;
using mux::http::kUnframed;

constexpr size_t kWhole = SIZE_MAX;  // decided only by the complete input
constexpr uint64_t kNoLimit = UINT64_MAX;

struct ResponseCase {
    std::string name;
    std::string bytes;
    ssize_t expected = 0;        // message length or an error
    size_t decided_at = kWhole;  // shortest prefix giving the answer
    int status = 200;
    int minor_version = 1;
    bool keep_alive = true;
    BodyFraming framing = BodyFraming::ContentLength;
    std::string body;  // decoded
    uint64_t max_body_bytes = kNoLimit;
    std::string reason = "OK";
};

ssize_t len_of(const std::string& s) {
    return static_cast<ssize_t>(s.size());
}

const std::string kChunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

ResponseCase whole(std::string name, std::string bytes, std::string body,
                   BodyFraming framing = BodyFraming::ContentLength) {
    ResponseCase c;
    c.name = std::move(name);
    c.expected = len_of(bytes);
    c.bytes = std::move(bytes);
    c.body = std::move(body);
    c.framing = framing;
    return c;
}

ResponseCase bad(std::string name, std::string bytes, ssize_t expected,
                 size_t decided_at = kWhole) {
    ResponseCase c;
    c.name = std::move(name);
    c.bytes = std::move(bytes);
    c.expected = expected;
    c.decided_at = decided_at;
    return c;
}

std::vector<ResponseCase> response_cases() {
    std::vector<ResponseCase> c;
    c.push_back(
        whole("ContentLength", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello"));
    ResponseCase ok10 =
        whole("Http10KeepsNothing", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "");
    ok10.minor_version = 0;
    ok10.keep_alive = false;
    c.push_back(ok10);
    ResponseCase close =
        whole("ConnectionClose",
              "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok");
    close.keep_alive = false;
    c.push_back(close);
    ResponseCase noreason =
        whole("NoReasonPhrase", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", "");
    noreason.status = 404;
    noreason.reason = "";
    c.push_back(noreason);
    // Only the first reply is parsed; the caller comes back for the next at the returned offset.
    std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    ResponseCase piped =
        whole("Pipelined", first + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "abc");
    piped.expected = len_of(first);
    piped.decided_at = first.size();
    c.push_back(piped);
    ResponseCase same_lengths =
        whole("RepeatedEqualLengths",
              "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", "x");
    c.push_back(same_lengths);

    // Statuses without a body, whatever the headers say.
    for (auto [name, head, status] :
         {std::tuple{"NoContent204", "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", 204},
          std::tuple{"NotModified304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                     304},
          std::tuple{"Continue100", "HTTP/1.1 100 Continue\r\n\r\n", 100}}) {
        ResponseCase r = whole(name, head, "", BodyFraming::None);
        r.status = status;
        r.reason = std::string(head).substr(13, std::string(head).find('\r') - 13);
        c.push_back(r);
    }

    // Chunked, as nginx and most application servers send it.
    c.push_back(whole("Chunked", kChunkedHead + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                      "hello world", BodyFraming::Chunked));
    c.push_back(whole("ChunkedUpperHexAndExtensions",
                      kChunkedHead + "A;name=value\r\n0123456789\r\n1 ; x\r\n!\r\n0;last\r\n\r\n",
                      "0123456789!", BodyFraming::Chunked));
    c.push_back(whole("ChunkedWithTrailers",
                      kChunkedHead + "3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Empty:\r\n\r\n", "abc",
                      BodyFraming::Chunked));
    c.push_back(whole("ChunkedEmptyBody", kChunkedHead + "0\r\n\r\n", "", BodyFraming::Chunked));
    c.push_back(whole("ChunkedLeadingZeros", kChunkedHead + "0003\r\nabc\r\n000\r\n\r\n", "abc",
                      BodyFraming::Chunked));
    c.push_back(
        whole("ChunkedAfterOtherCoding",
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n",
              "zz", BodyFraming::Chunked));
    std::string chunked_first = kChunkedHead + "1\r\na\r\n0\r\n\r\n";
    ResponseCase chunked_piped =
        whole("ChunkedPipelined", chunked_first + "HTTP/1.1 200", "a", BodyFraming::Chunked);
    chunked_piped.expected = len_of(chunked_first);
    chunked_piped.decided_at = chunked_first.size();
    c.push_back(chunked_piped);
    // A size line of exactly the limit (without its CRLF), and one byte over it.
    std::string long_ext = std::string("1;") + std::string(kMaxChunkLineBytes - 2, 'e');
    c.push_back(whole("ChunkLineAtLimit", kChunkedHead + long_ext + "\r\nx\r\n0\r\n\r\n", "x",
                      BodyFraming::Chunked));

    // Framing a keep-alive client cannot use, or that is ambiguous.
    c.push_back(bad("NoLengthIsUnframed", "HTTP/1.1 200 OK\r\n\r\nbody until close", kUnframed,
                    len_of("HTTP/1.1 200 OK\r\n\r\n")));
    c.push_back(bad("OtherCodingIsUnframed", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                    kUnframed));
    c.push_back(bad("LengthAndChunked",
                    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                    kMalformed));
    c.push_back(bad("TwoDifferentLengths",
                    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                    kMalformed));

    // Broken chunked bodies: refused at the first byte that makes them impossible.
    const size_t h = kChunkedHead.size();
    c.push_back(bad("ChunkSizeNotHex", kChunkedHead + "zz\r\n", kMalformed, h + 1));
    c.push_back(bad("ChunkSizeMissing", kChunkedHead + ";ext\r\n", kMalformed, h + 1));
    c.push_back(bad("ChunkSizeLeadingSpace", kChunkedHead + " 5\r\nhello\r\n", kMalformed, h + 1));
    c.push_back(bad("ChunkSizeJunkAfter", kChunkedHead + "5 x\r\nhello\r\n", kMalformed, h + 3));
    c.push_back(
        bad("ChunkSizeOver64Bits", kChunkedHead + "12345678901234567\r\n", kMalformed, h + 17));
    c.push_back(bad("ChunkLineBareLf", kChunkedHead + "5\nhello\r\n", kMalformed, h + 2));
    c.push_back(bad("ChunkLineCrWithoutLf", kChunkedHead + "5\rhello", kMalformed, h + 3));
    c.push_back(bad("ChunkLineTooLong", kChunkedHead + long_ext + "e\r\nx\r\n0\r\n\r\n", kMalformed,
                    h + kMaxChunkLineBytes + 1));
    c.push_back(
        bad("ChunkDataTooLong", kChunkedHead + "5\r\nhello!\r\n0\r\n\r\n", kMalformed, h + 9));
    c.push_back(bad("ChunkDataNoLf", kChunkedHead + "5\r\nhello\rX", kMalformed, h + 10));
    c.push_back(
        bad("TrailerWithoutColon", kChunkedHead + "0\r\nNoColon\r\n\r\n", kMalformed, h + 3 + 8));
    c.push_back(
        bad("TrailerBadName", kChunkedHead + "0\r\nBad Name: x\r\n\r\n", kMalformed, h + 3 + 4));
    c.push_back(bad("TrailersTooLarge",
                    kChunkedHead + "0\r\nX: " + std::string(kMaxHeadBytes, 't') + "\r\n\r\n",
                    kHeadTooLarge, h + 3 + kMaxHeadBytes + 1));

    // Bodies over the caller's limit are refused from their framing, before the bytes come.
    ResponseCase big =
        bad("LengthOverLimit", "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n0123456789A",
            kBodyTooLarge, len_of("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"));
    big.max_body_bytes = 10;
    c.push_back(big);
    ResponseCase big_chunks =
        bad("ChunksOverLimit", kChunkedHead + "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n",
            kBodyTooLarge, h + 11 + 3);
    big_chunks.max_body_bytes = 10;
    c.push_back(big_chunks);
    ResponseCase at_limit =
        whole("ChunksAtLimit", kChunkedHead + "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n", "abcdefghij",
              BodyFraming::Chunked);
    at_limit.max_body_bytes = 10;
    c.push_back(at_limit);

    // Heads.
    c.push_back(bad("Incomplete", "HTTP/1.1 200 OK\r\n", kIncomplete));
    c.push_back(bad("Empty", "", kIncomplete));
    c.push_back(bad("NotHttp", "HTTX/1.1 200 OK\r\n\r\n", kMalformed, 4));
    c.push_back(bad("Mux1Bytes", std::string("\x58\x4d\x01\x00", 4), kMalformed, 1));
    c.push_back(bad("StatusNotNumber", "HTTP/1.1 2x0 OK\r\n\r\n", kMalformed));
    c.push_back(bad("StatusBelow100", "HTTP/1.1 099 OK\r\n\r\n", kMalformed));
    c.push_back(bad("StatusTooLong", "HTTP/1.1 2000 OK\r\n\r\n", kMalformed));
    c.push_back(bad("NoSpaceAfterVersion", "HTTP/1.1-200 OK\r\n\r\n", kMalformed));
    c.push_back(
        bad("ControlCharInReason", "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", kMalformed));
    c.push_back(
        bad("BadContentLength", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", kMalformed));
    c.push_back(bad("HeadTooLarge", "HTTP/1.1 200 OK\r\nX: " + std::string(9000, 'a'),
                    kHeadTooLarge, kMaxHeadBytes));
    return c;
}

void PrintTo(const ResponseCase& c, std::ostream* os) {
    *os << c.name;
}

std::string decoded_body(const mux::http::Response& r) {
    std::string out;
    std::string_view piece;
    for (size_t cursor = 0; mux::http::next_body_piece(r, &cursor, &piece);) out += piece;
    return out;
}

void expect_response(const mux::http::Response& got, const ResponseCase& want) {
    EXPECT_EQ(got.status, want.status);
    EXPECT_EQ(got.minor_version, want.minor_version);
    EXPECT_EQ(got.reason, want.reason);
    EXPECT_EQ(got.keep_alive, want.keep_alive);
    EXPECT_EQ(got.framing, want.framing);
    EXPECT_EQ(got.body_bytes, want.body.size());
    EXPECT_EQ(decoded_body(got), want.body);
}

class HttpResponse : public testing::TestWithParam<ResponseCase> {};

TEST_P(HttpResponse, WholeAndOneByteAtATime) {
    const ResponseCase& c = GetParam();
    mux::test::GuardedBuffer guard(c.bytes.size());
    size_t decided = c.decided_at != kWhole ? c.decided_at
                     : c.expected > 0       ? static_cast<size_t>(c.expected)
                                            : c.bytes.size();
    for (size_t len = 0; len <= c.bytes.size(); ++len) {
        mux::http::Response resp;
        const char* at = guard.place(std::string_view(c.bytes).substr(0, len));
        ssize_t got = mux::http::parse_response(at, len, c.max_body_bytes, &resp);
        ssize_t want = len < decided ? kIncomplete : c.expected;
        ASSERT_EQ(got, want) << "prefix of " << len << " bytes";
        if (got > 0) expect_response(resp, c);
    }
}

INSTANTIATE_TEST_SUITE_P(Table, HttpResponse, testing::ValuesIn(response_cases()),
                         [](const auto& p) { return p.param.name; });

// What the server writes, the client-side parser reads back unchanged.
TEST(HttpResponseHead, FormatThenParseRoundTrips) {
    for (int status : {200, 400, 404, 431}) {
        for (int minor : {0, 1}) {
            for (bool keep_alive : {false, true}) {
                char out[mux::http::kMaxResponseHead + 4];
                size_t n = mux::http::format_response_head(out, status, 4, keep_alive, minor);
                std::memcpy(out + n, "body", 4);
                mux::test::GuardedBuffer guard(n + 4);
                mux::http::Response resp;
                ssize_t got = mux::http::parse_response(guard.place({out, n + 4}), n + 4, 4, &resp);
                ASSERT_EQ(got, static_cast<ssize_t>(n + 4))
                    << status << " 1." << minor << " " << keep_alive;
                EXPECT_EQ(resp.status, status);
                EXPECT_EQ(resp.minor_version, minor);
                EXPECT_EQ(resp.keep_alive, keep_alive);
                EXPECT_EQ(resp.head_bytes, n);
                EXPECT_EQ(resp.framing, BodyFraming::ContentLength);
                EXPECT_EQ(resp.body, "body");
            }
        }
    }
}

TEST(HttpResponseBody, PiecesOfAnUnparsedOrBodilessResponseAreNone) {
    mux::http::Response none;
    size_t cursor = 0;
    std::string_view piece;
    EXPECT_FALSE(mux::http::next_body_piece(none, &cursor, &piece));
    none.framing = BodyFraming::Chunked;  // an empty view: nothing to walk
    EXPECT_FALSE(mux::http::next_body_piece(none, &cursor, &piece));
}

}  // namespace
