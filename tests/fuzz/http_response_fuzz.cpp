// libFuzzer harness: muxload's HTTP response parser, http::parse_response (common/http.hpp),
// and the verifier built on it, load::verify_http_reply (loadgen/verify.hpp).
//
// The input is a server's byte stream (a raw capture is a seed as it is: corpus/http_response/
// holds nginx's replies). It is read as muxload reads a keep-alive connection, reply after
// reply, under two body limits, whole and split at the fuzzer's cuts; the two must agree.
//
// parse_response's contract, checked on every reply it accepts: the head and body lie inside
// the reply and the reply inside the buffer; a Content-Length body is exactly body_bytes long;
// a chunked body's pieces lie inside its framing and add up to body_bytes; no body is over the
// limit; 1xx, 204 and 304 replies have none.
//
// verify_http_reply, under four expectations muxload uses (framing only, with two limits; the
// full body of GET / and of GET /bytes/26), must answer what the parsed reply implies: Ok with
// the reply's length and its Connection decision, Incomplete, Protocol for bytes that are no
// reply, Mismatch for a reply that is not the answer; and a failure is explained.
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "http.hpp"
#include "verify.hpp"

namespace {

using mux::http::BodyFraming;
using mux::http::Response;
using mux::load::HttpExpectation;
using mux::load::ReplyCheck;

struct Reply {
    int status = 0;
    int minor_version = 0;
    bool keep_alive = false;
    BodyFraming framing = BodyFraming::None;
    size_t head_bytes = 0;
    uint64_t body_bytes = 0;
    std::string body;  // decoded

    bool operator==(const Reply&) const = default;
};

bool inside(std::string_view part, const char* buf, size_t len) {
    return part.empty() || (part.data() >= buf && part.data() + part.size() <= buf + len);
}

std::string decoded_body(const Response& r, size_t reply_bytes) {
    std::string body;
    std::string_view piece;
    size_t cursor = 0;
    while (mux::http::next_body_piece(r, &cursor, &piece)) {
        FUZZ_REQUIRE(inside(piece, r.body.data(), r.body.size()),
                     "a body piece of %zu bytes outside the %zu-byte body", piece.size(),
                     r.body.size());
        FUZZ_REQUIRE(body.size() + piece.size() <= reply_bytes, "pieces longer than the reply");
        body += piece;
    }
    return body;
}

Reply check_reply(const char* buf, size_t len, ssize_t n, const Response& r, uint64_t limit) {
    auto reply_bytes = static_cast<size_t>(n);
    FUZZ_REQUIRE(
        r.head_bytes > 0 && r.head_bytes <= reply_bytes && r.head_bytes <= mux::http::kMaxHeadBytes,
        "a head of %zu bytes in a %zu-byte reply", r.head_bytes, reply_bytes);
    FUZZ_REQUIRE(r.status >= 100 && r.status <= 999, "status %d", r.status);
    FUZZ_REQUIRE(r.minor_version == 0 || r.minor_version == 1, "HTTP/1.%d", r.minor_version);
    FUZZ_REQUIRE(inside(r.reason, buf, r.head_bytes), "the reason phrase is outside the head");
    FUZZ_REQUIRE(r.body_bytes <= limit, "a body of %llu bytes over the %llu limit",
                 static_cast<unsigned long long>(r.body_bytes),
                 static_cast<unsigned long long>(limit));
    bool bodiless = r.status < 200 || r.status == 204 || r.status == 304;
    FUZZ_REQUIRE(!bodiless || r.framing == BodyFraming::None, "status %d with a body", r.status);
    std::string body = decoded_body(r, reply_bytes);
    FUZZ_REQUIRE(body.size() == r.body_bytes, "pieces of %zu bytes, body_bytes %llu", body.size(),
                 static_cast<unsigned long long>(r.body_bytes));
    switch (r.framing) {
        case BodyFraming::None:
            FUZZ_REQUIRE(r.body_bytes == 0 && r.head_bytes == reply_bytes,
                         "an unframed reply of %zu bytes after a %zu-byte head", reply_bytes,
                         r.head_bytes);
            break;
        case BodyFraming::ContentLength:
            FUZZ_REQUIRE(r.body.data() == buf + r.head_bytes && r.body.size() == r.body_bytes &&
                             r.head_bytes + r.body_bytes == reply_bytes,
                         "a Content-Length body of %zu bytes does not fill the reply",
                         r.body.size());
            break;
        case BodyFraming::Chunked:
            FUZZ_REQUIRE(
                r.body.data() == buf + r.head_bytes && r.head_bytes + r.body.size() == reply_bytes,
                "chunked framing of %zu bytes does not fill the reply", r.body.size());
            break;
    }
    FUZZ_REQUIRE(inside({buf, reply_bytes}, buf, len), "a reply longer than the buffer");
    return {r.status, r.minor_version, r.keep_alive, r.framing, r.head_bytes, r.body_bytes, body};
}

struct Expected {
    HttpExpectation expect;
    std::string body;  // Full: what the body must be
};

std::vector<Expected> expectations() {
    std::vector<Expected> out;
    HttpExpectation framing;
    framing.verify = mux::load::Verify::Framing;
    framing.max_body_bytes = 64;
    out.push_back({framing, ""});
    framing.max_body_bytes = 1 << 20;
    out.push_back({framing, ""});
    HttpExpectation root;
    root.literal_body = mux::http::kRootBody;
    root.body_bytes = root.literal_body.size();
    out.push_back({root, std::string(mux::http::kRootBody)});
    HttpExpectation bytes;
    bytes.pattern_body = true;
    bytes.body_bytes = 26;
    out.push_back({bytes, "abcdefghijklmnopqrstuvwxyz"});
    return out;
}

// What verify_http_reply must answer, from parse_response's answers under the same limit.
// Interim replies (1xx but 101) go before the final one, at most one head's limit of them;
// 101 leaves HTTP, so no reply follows. *end is where the final reply, *r, ends.
ReplyCheck implied(const char* buf, size_t len, uint64_t limit, const Expected& e, size_t* end,
                   Response* final) {
    size_t offset = 0;
    for (;;) {
        Response& r = *final = Response{};
        ssize_t n = mux::http::parse_response(buf + offset, len - offset, limit, &r);
        if (n == mux::http::kIncomplete) return ReplyCheck::Incomplete;
        if (n == mux::http::kBodyTooLarge) return ReplyCheck::Mismatch;
        if (n < 0 || r.status == 101) return ReplyCheck::Protocol;
        offset += size_t(n);
        if (r.status < 200) {
            if (offset > mux::http::kMaxHeadBytes) return ReplyCheck::Protocol;
            continue;
        }
        *end = offset;
        if (e.expect.verify == mux::load::Verify::Framing)
            return r.status <= 299 ? ReplyCheck::Ok : ReplyCheck::Mismatch;
        return r.status == 200 && decoded_body(r, size_t(n)) == e.body ? ReplyCheck::Ok
                                                                       : ReplyCheck::Mismatch;
    }
}

void check_verifier(const char* buf, size_t len, const Expected& e) {
    uint64_t limit =
        e.expect.verify == mux::load::Verify::Full ? e.expect.body_bytes : e.expect.max_body_bytes;
    std::span<const uint8_t> bytes{reinterpret_cast<const uint8_t*>(buf), len};
    mux::load::ReplyResult v = mux::load::verify_http_reply(bytes, e.expect);
    size_t end = 0;
    Response final;
    ReplyCheck want = implied(buf, len, limit, e, &end, &final);
    FUZZ_REQUIRE(v.check == want, "verify answered %d where the replies imply %d", int(v.check),
                 int(want));
    if (v.check == ReplyCheck::Ok) {
        FUZZ_REQUIRE(v.bytes == end && v.close_after == !final.keep_alive,
                     "ok with %zu bytes and close %d; the replies end at %zu, keep-alive %d",
                     v.bytes, v.close_after, end, final.keep_alive);
    } else if (v.check != ReplyCheck::Incomplete) {
        mux::load::FailureDetail d = mux::load::explain_http_failure(bytes, e.expect);
        FUZZ_REQUIRE(!d.reason.empty(), "a failure without a reason");
        FUZZ_REQUIRE(d.got.size() <= 4 * mux::load::kExcerptBytes, "an excerpt of %zu chars",
                     d.got.size());
    }
}

mux::fuzz::Stream<Reply> read_stream(std::string_view message, const std::vector<size_t>& cuts,
                                     uint64_t limit, bool with_verifier) {
    static const std::vector<Expected> kExpectations = expectations();
    auto parse = [&](const uint8_t* data, size_t len) {
        const char* buf = reinterpret_cast<const char*>(data);
        if (with_verifier)
            for (const Expected& e : kExpectations) check_verifier(buf, len, e);
        Response r;
        ssize_t n = mux::http::parse_response(buf, len, limit, &r);
        return std::pair{n, n > 0 ? check_reply(buf, len, n, r, limit) : Reply{}};
    };
    return mux::fuzz::feed<Reply>(message, cuts, mux::http::kIncomplete, parse);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    mux::fuzz::Input in = mux::fuzz::read_input(data, size);
    for (uint64_t limit : {uint64_t{64}, uint64_t{1} << 20}) {
        auto whole = read_stream(in.message, {}, limit, limit == 64);
        auto split = read_stream(in.message, in.cuts, limit, false);
        FUZZ_REQUIRE(whole == split,
                     "limit %llu, split at %zu cuts: %zu replies then %zd, whole: %zu then %zd",
                     static_cast<unsigned long long>(limit), in.cuts.size(), split.messages.size(),
                     split.last, whole.messages.size(), whole.last);
    }
    return 0;
}
