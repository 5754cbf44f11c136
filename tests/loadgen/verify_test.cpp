// muxload's reply verifiers (verify.hpp) against tables of replies, each fed whole and one
// prefix at a time from a buffer that ends at a guard page: the contract the fuzz harnesses
// rely on. And what the first failure's report says.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "guarded_buffer.hpp"
#include "http.hpp"
#include "mux1.hpp"
#include "verify.hpp"

namespace {

using namespace mux::load;

std::span<const uint8_t> bytes_of(const char* at, size_t len) {
    return {reinterpret_cast<const uint8_t*>(at), len};
}

// Feeds every prefix of `bytes`: Incomplete before decided_at, `want` from there on.
void expect_prefixes(const std::string& bytes, size_t decided_at, ReplyCheck want, size_t want_len,
                     const auto& verify) {
    mux::test::GuardedBuffer guard(bytes.size());
    for (size_t len = 0; len <= bytes.size(); ++len) {
        const char* at = guard.place(std::string_view(bytes).substr(0, len));
        ReplyResult r = verify(bytes_of(at, len));
        ReplyCheck expected = len < decided_at ? ReplyCheck::Incomplete : want;
        ASSERT_EQ(int(r.check), int(expected)) << "prefix of " << len << " bytes";
        if (r.check == ReplyCheck::Ok) {
            EXPECT_EQ(r.bytes, want_len);
        }
    }
}

std::string mux1_reply(uint64_t tag, uint8_t status, const std::string& payload) {
    mux::mux1::Header h;
    h.op_or_status = status;
    h.payload_len = uint32_t(payload.size());
    h.tag = tag;
    std::string out(mux::mux1::kHeaderSize, '\0');
    mux::mux1::encode_header(h, reinterpret_cast<uint8_t*>(out.data()));
    return out + payload;
}

const std::vector<uint8_t> kEcho = {'a', 'b', 'c', 'd', 'e'};

Mux1Expectation echo(uint64_t tag) {
    return {tag, false, uint32_t(kEcho.size()), kEcho};
}

TEST(VerifyMux1, TheAnswerIsOkAndFollowingBytesAreNotPartOfIt) {
    std::string reply = mux1_reply(7, 0, "abcde");
    expect_prefixes(reply + "next", reply.size(), ReplyCheck::Ok, reply.size(),
                    [](auto b) { return verify_mux1_reply(b, echo(7)); });
    std::string gen(16, '\0');
    for (size_t i = 0; i < gen.size(); ++i) gen[i] = char(mux::mux1::gen_byte(9, i));
    std::string gen_reply = mux1_reply(9, 0, gen);
    expect_prefixes(gen_reply, gen_reply.size(), ReplyCheck::Ok, gen_reply.size(), [](auto b) {
        return verify_mux1_reply(b, Mux1Expectation{9, true, 16, {}});
    });
}

TEST(VerifyMux1, EachWrongnessHasItsKind) {
    auto check = [](const std::string& reply, size_t decided_at, ReplyCheck want) {
        expect_prefixes(reply, decided_at, want, 0,
                        [](auto b) { return verify_mux1_reply(b, echo(7)); });
    };
    std::string ok = mux1_reply(7, 0, "abcde");
    check(mux1_reply(8, 0, "abcde"), ok.size(), ReplyCheck::Mismatch);          // wrong tag
    check(mux1_reply(7, 1, ""), mux::mux1::kHeaderSize, ReplyCheck::Mismatch);  // bad status
    check(mux1_reply(7, 0, "abcdX"), ok.size(), ReplyCheck::Mismatch);          // a payload byte
    check(mux1_reply(7, 0, "abc"), 27, ReplyCheck::Mismatch);                   // short payload
    // Too long: refused from the header, before its payload is buffered.
    check(mux1_reply(7, 0, "abcdefgh"), mux::mux1::kHeaderSize, ReplyCheck::Mismatch);
    check("HTTP/1.1 200 OK\r\n", 1, ReplyCheck::Protocol);  // not mux1 at all
}

TEST(VerifyMux1, TheFirstFailureSaysWhatDiffered) {
    std::string reply = mux1_reply(8, 0, "abcde");
    FailureDetail d = explain_mux1_failure(bytes_of(reply.data(), reply.size()), echo(7));
    EXPECT_EQ(d.reason, "tag 8 answers another request (expected 7)");
    reply = mux1_reply(7, 0, "abXde");
    d = explain_mux1_failure(bytes_of(reply.data(), reply.size()), echo(7));
    EXPECT_EQ(d.reason, "payload byte 2 of 5 differs");
    EXPECT_EQ(d.expected, "cde");
    EXPECT_EQ(d.got, "Xde");
    d = explain_mux1_failure(bytes_of("garbage, not mux1 at all", 24), echo(7));
    EXPECT_NE(d.reason.find("not a mux1 reply"), std::string::npos) << d.reason;
    EXPECT_EQ(d.got, "garbage, not mux1 at all");
}

HttpExpectation full_root() {
    HttpExpectation e;
    e.body_bytes = mux::http::kRootBody.size();
    e.literal_body = mux::http::kRootBody;
    return e;
}

HttpExpectation full_bytes(uint64_t n) {
    HttpExpectation e;
    e.body_bytes = n;
    e.pattern_body = true;
    return e;
}

HttpExpectation framing() {
    HttpExpectation e;
    e.verify = Verify::Framing;
    e.max_body_bytes = 1000;
    return e;
}

const std::string kRootReply = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nmuxbench\n";
const std::string kChunkedRoot =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nmux\r\n6\r\nbench\n\r\n0\r\n\r\n";
const std::string kNginxOk = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\n\r\nok";

TEST(VerifyHttp, FullChecksEveryBodyByteWhateverTheFraming) {
    for (const std::string& reply : {kRootReply, kChunkedRoot})
        expect_prefixes(reply, reply.size(), ReplyCheck::Ok, reply.size(),
                        [](auto b) { return verify_http_reply(b, full_root()); });
    std::string bytes = "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n";
    for (size_t i = 0; i < 30; ++i) bytes += mux::http::bytes_body_char(i);
    expect_prefixes(bytes, bytes.size(), ReplyCheck::Ok, bytes.size(),
                    [](auto b) { return verify_http_reply(b, full_bytes(30)); });
}

TEST(VerifyHttp, FullRefusesAnotherServersAnswer) {
    size_t head = kNginxOk.size() - 2;
    // "ok" is 2 bytes where 9 were expected: a mismatch once the reply is whole.
    expect_prefixes(kNginxOk, head + 2, ReplyCheck::Mismatch, 0,
                    [](auto b) { return verify_http_reply(b, full_root()); });
    // A body longer than expected is refused from its Content-Length.
    std::string page = "HTTP/1.1 404 Not Found\r\nContent-Length: 150\r\n\r\n";
    expect_prefixes(page + std::string(150, 'x'), page.size(), ReplyCheck::Mismatch, 0,
                    [](auto b) { return verify_http_reply(b, full_root()); });
    std::string wrong = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nmuxbenck\n";
    expect_prefixes(wrong, wrong.size(), ReplyCheck::Mismatch, 0,
                    [](auto b) { return verify_http_reply(b, full_root()); });
}

TEST(VerifyHttp, FramingAcceptsAnyServersWellFramedSuccess) {
    for (const std::string& reply : {kNginxOk, kChunkedRoot, kRootReply})
        expect_prefixes(reply, reply.size(), ReplyCheck::Ok, reply.size(),
                        [](auto b) { return verify_http_reply(b, framing()); });
    std::string no_content = "HTTP/1.1 204 No Content\r\n\r\n";
    expect_prefixes(no_content, no_content.size(), ReplyCheck::Ok, no_content.size(),
                    [](auto b) { return verify_http_reply(b, framing()); });
}

TEST(VerifyHttp, FramingRefusesFailuresAndUnusableFraming) {
    auto check = [](const std::string& reply, size_t decided_at, ReplyCheck want) {
        expect_prefixes(reply, decided_at, want, 0,
                        [](auto b) { return verify_http_reply(b, framing()); });
    };
    std::string e404 = "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx";
    check(e404, e404.size(), ReplyCheck::Mismatch);
    std::string unframed = "HTTP/1.1 200 OK\r\n\r\n";
    check(unframed, unframed.size(), ReplyCheck::Protocol);
    std::string huge = "HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n";
    check(huge, huge.size(), ReplyCheck::Mismatch);
    check("HTTX", 4, ReplyCheck::Protocol);
}

TEST(VerifyHttp, ConnectionCloseIsReported) {
    std::string reply =
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 9\r\n\r\nmuxbench\n";
    ReplyResult r = verify_http_reply(bytes_of(reply.data(), reply.size()), full_root());
    EXPECT_EQ(int(r.check), int(ReplyCheck::Ok));
    EXPECT_TRUE(r.close_after);
}

TEST(VerifyHttp, InterimRepliesBeforeTheFinalOneArePartOfIt) {
    // RFC 9110 15.2: a client must accept 1xx replies before the final one, even unasked
    // (nginx and Go send 103 Early Hints on a GET). They answer nothing on their own: the
    // final reply answers the request, and the reply's length covers them all.
    std::string hints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
    std::string go_on = "HTTP/1.1 100 Continue\r\n\r\n";
    for (const std::string& before : {hints, go_on, hints + hints}) {
        std::string reply = before + kRootReply;
        expect_prefixes(reply, reply.size(), ReplyCheck::Ok, reply.size(),
                        [](auto b) { return verify_http_reply(b, full_root()); });
        std::string other = before + kNginxOk;
        expect_prefixes(other, other.size(), ReplyCheck::Ok, other.size(),
                        [](auto b) { return verify_http_reply(b, framing()); });
        // What fails after them is said of the final reply, not of the hints.
        std::string e404 = before + "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx";
        FailureDetail d = explain_http_failure(bytes_of(e404.data(), e404.size()), framing());
        EXPECT_EQ(d.reason, "status 404 Not Found (expected 2xx)");
    }
    // Interim replies without end are refused once they pass one head's limit.
    std::string endless;
    while (endless.size() <= mux::http::kMaxHeadBytes) endless += hints;
    expect_prefixes(endless + kRootReply, endless.size(), ReplyCheck::Protocol, 0,
                    [](auto b) { return verify_http_reply(b, framing()); });
    // 101 switches the connection to another protocol: nothing after it is HTTP.
    std::string upgrade = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    std::string switched = upgrade + kRootReply;
    expect_prefixes(switched, upgrade.size(), ReplyCheck::Protocol, 0,
                    [](auto b) { return verify_http_reply(b, framing()); });
}

TEST(VerifyHttp, TheFirstFailureShowsExpectedAgainstGot) {
    FailureDetail d = explain_http_failure(bytes_of(kNginxOk.data(), kNginxOk.size()), full_root());
    EXPECT_EQ(d.reason, "a body of 2 bytes (expected 9)");
    EXPECT_EQ(d.expected, "muxbench\\n");
    EXPECT_EQ(d.got, "ok");
    std::string e404 = "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx";
    d = explain_http_failure(bytes_of(e404.data(), e404.size()), framing());
    EXPECT_EQ(d.reason, "status 404 Not Found (expected 2xx)");
    EXPECT_EQ(d.got, "HTTP/1.1 404 Not Found\\r\\nContent-Length: ");  // the first 40 bytes
    std::string wrong = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nmuxbenck\n";
    d = explain_http_failure(bytes_of(wrong.data(), wrong.size()), full_root());
    EXPECT_EQ(d.reason, "body byte 7 of 9 differs");
    EXPECT_EQ(d.expected, "h\\n");
    EXPECT_EQ(d.got, "k\\n");
}

TEST(Excerpt, IsPrintableAndAtMostFortyBytes) {
    EXPECT_EQ(excerpt(std::string("a\r\n\t\\\x01\xff", 7)), "a\\r\\n\\t\\\\\\x01\\xff");
    EXPECT_EQ(excerpt(std::string(100, 'z')), std::string(kExcerptBytes, 'z'));
}

}  // namespace
