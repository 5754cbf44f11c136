// libFuzzer harness: the server's HTTP/1.1 request parser, http::parse_request (common/http.hpp),
// checked against its own contract and against a second parser, Debian's nodejs/http-parser.
//
// Own contract: a head ends at the first blank line and within kMaxHeadBytes; what the parser
// returns points into that head; a refusal writes nothing; and a stream split at the fuzzer's
// cuts parses exactly as the whole stream does.
//
// Second opinion, for every request the stream holds:
//   - a request our server would serve (GET or HEAD, no body; servers/connection.cpp answers
//     anything else with 400 or 405 and closes) must be one http-parser completes at the same
//     byte, with the same method, target, version, header fields and keep-alive decision;
//   - bytes http-parser rejects before the end of their head must not be a request our server
//     serves.
// The places where the two deliberately differ are listed in kDeliberateDifferences below,
// and each is applied by name where the comparison is made.
#include <http_parser.h>

#include <cctype>
#include <cstring>
#include <string>
#include <utility>

#include "fuzz_input.hpp"
#include "http.hpp"

namespace {

// Where our subset and http-parser 2.9.4 part ways on purpose. Ours is the stricter in each,
// or follows RFC 9110/9112 where http-parser does not. Each is applied where its name appears.
[[maybe_unused]] constexpr const char* kDeliberateDifferences[] = {
    // trailing_whitespace: RFC 9110 5.5, the spaces and tabs after a field value are not part
    // of it; http-parser passes them on, ours trims them.
    "trailing_whitespace",
    // close_wins: RFC 9112 9.6, a "close" option means the connection does not persist, even
    // beside "keep-alive"; http-parser lets an HTTP/1.0 keep-alive win.
    "close_wins",
    // proxy_connection: Proxy-Connection is no standard header (RFC 9112 names none); an
    // origin server ignores it, as nginx does, while http-parser reads it as Connection.
    "proxy_connection",
    // list_elements: RFC 9110 5.6.1, a list is read element by element: empty ones are
    // ignored ("Connection: ,close") and one that is not a token does not hide the rest
    // ("Connection: a b, close"). http-parser misses the "close" in both; ours closes.
    "list_elements",
    // tab_is_whitespace: RFC 9110 5.6.3, a tab is whitespace like a space; http-parser's
    // Connection matcher misses "close\t", and it refuses "Content-Length: 0\t".
    "tab_is_whitespace",
    // whole_field_names: RFC 9110 5.1 compares field names whole. http-parser 2.9.4 marks a
    // Transfer-Encoding as soon as a name begins with one ("Transfer-Encodingx: chunked"),
    // then refuses the request for it; to us that is an unknown field.
    "whole_field_names",
    // prefix_elements: RFC 9110 5.6.1 again. In a Connection list, an element that is the start
    // of "close", "keep-alive" or "upgrade" and ends at a comma ("Upgrad,keep-alive") leaves
    // http-parser 2.9.4's matcher in a state where it reads no later element; ours reads the
    // "keep-alive" after it. (Found by this harness on "GET / HTTP/1.0".)
    "prefix_elements",
    // underscore_elements: '_' is a token character (RFC 9110 5.6.2), but an element after a
    // comma that starts with one ("x, _y, close") ends http-parser 2.9.4's reading of the list,
    // so it misses the "close"; ours reads it. (Found by this harness; '_' is the only such byte.)
    "underscore_elements",
};

// Where ours refuses what http-parser takes. The check runs one way (what it rejects we must
// not serve), so these need no handling; they are listed so that no one mistakes them for bugs.
//   - versions: only HTTP/1.0 and 1.1; http-parser reads any digits, and a bare "GET /" as 0.9.
//   - crlf_only: lines end in CRLF (docs/protocol.md); http-parser also takes a bare LF.
//   - single_spaces: one space between method, target and version (RFC 9112 3); http-parser
//     skips runs of them.
//   - origin_form_only: "/path" targets only; http-parser also takes absolute form and "*".
//   - no_obs_fold: a line starting with a space continues nothing (RFC 9112 5.2 lets a server
//     refuse it); http-parser folds it into the field before.
//   - field_names_are_tokens: "Name : v" is refused (RFC 9112 5.1 says a server MUST); the
//     lenient http-parser build takes spaces in names.
//   - no_leading_blank_lines: a request starts with its request line; http-parser skips blank
//     lines before it.
//   - head_limit: 8 KiB of head (431 beyond); http-parser allows 80 KiB.
//   - methods: any token parses, but only GET and HEAD are served (405 otherwise); http-parser
//     knows a fixed table, and misreads some unknown ones ("PUX" as PUT).

using FieldList = std::vector<std::pair<std::string, std::string>>;

struct Parsed {
    ssize_t result = 0;
    std::string method, target;
    int minor_version = -1;
    bool keep_alive = false, has_body = false;
    FieldList fields;

    bool operator==(const Parsed&) const = default;
};

constexpr size_t kMaxFields = mux::http::kMaxHeadBytes / 4;  // "a:\r\n" is the shortest line

bool is_token(char c) {
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

bool within(std::string_view part, const char* buf, size_t len) {
    return part.data() >= buf && part.data() + part.size() <= buf + len;
}

size_t first_blank_line_end(std::string_view bytes) {
    size_t at = bytes.find("\r\n\r\n");
    return at == std::string_view::npos ? std::string_view::npos : at + 4;
}

// Our parser's answer for one call, checked against what the bytes hold.
Parsed parse_ours(const char* buf, size_t len) {
    static mux::http::HeaderField fields[kMaxFields];
    mux::http::Request req;
    req.method = "sentinel";
    size_t count = 12345;
    Parsed p;
    p.result = mux::http::parse_request(buf, len, &req, fields, &count);
    std::string_view bytes(buf, len);
    size_t head_end = first_blank_line_end(bytes.substr(0, mux::http::kMaxHeadBytes));
    if (p.result <= 0) {
        FUZZ_REQUIRE(req.method == "sentinel" && count == 12345, "a refusal (%zd) wrote output",
                     p.result);
        if (p.result == mux::http::kHeadTooLarge)
            FUZZ_REQUIRE(len >= mux::http::kMaxHeadBytes && head_end == std::string_view::npos,
                         "431 for %zu bytes with a head end at %zu", len, head_end);
        if (p.result == mux::http::kIncomplete)
            FUZZ_REQUIRE(len < mux::http::kMaxHeadBytes && head_end == std::string_view::npos,
                         "incomplete for %zu bytes with a head end at %zu", len, head_end);
        FUZZ_REQUIRE(p.result == mux::http::kHeadTooLarge || p.result == mux::http::kIncomplete ||
                         p.result == mux::http::kMalformed,
                     "unknown answer %zd", p.result);
        return p;
    }
    size_t head = size_t(p.result);
    FUZZ_REQUIRE(head == head_end, "head of %zu bytes, first blank line ends at %zu", head,
                 head_end);
    FUZZ_REQUIRE(within(req.method, buf, head) && within(req.target, buf, head),
                 "method or target outside the head");
    FUZZ_REQUIRE(!req.method.empty() && std::all_of(req.method.begin(), req.method.end(), is_token),
                 "method is not a token");
    FUZZ_REQUIRE(!req.target.empty() && req.target.front() == '/', "target not in origin form");
    FUZZ_REQUIRE(req.minor_version == 0 || req.minor_version == 1, "HTTP/1.%d", req.minor_version);
    FUZZ_REQUIRE(count <= kMaxFields, "%zu fields in %zu bytes", count, head);
    bool transfer_encoding = false, content = false;
    for (size_t i = 0; i < count; ++i) {
        auto [name, value] = fields[i];
        FUZZ_REQUIRE(within(name, buf, head) && within(value, buf, head), "field %zu outside", i);
        FUZZ_REQUIRE(!name.empty() && std::all_of(name.begin(), name.end(), is_token),
                     "field %zu name is not a token", i);
        FUZZ_REQUIRE(value.empty() || (value.front() != ' ' && value.front() != '\t' &&
                                       value.back() != ' ' && value.back() != '\t'),
                     "field %zu value not trimmed", i);
        auto lower = [](std::string_view s) {
            std::string out(s);
            for (char& c : out) c = char(c | 0x20);
            return out;
        };
        if (lower(name) == "transfer-encoding") transfer_encoding = true;
        if (lower(name) == "content-length" && value.find_first_not_of('0') != value.npos)
            content = true;
        p.fields.emplace_back(name, value);
    }
    FUZZ_REQUIRE(req.has_body == (transfer_encoding || content), "has_body %d, fields say %d",
                 req.has_body, transfer_encoding || content);
    p.method = req.method;
    p.target = req.target;
    p.minor_version = req.minor_version;
    p.keep_alive = req.keep_alive;
    p.has_body = req.has_body;
    return p;
}

// What servers/connection.cpp serves rather than refuses with 400 or 405 and a close.
bool served(const Parsed& p) {
    return p.result > 0 && (p.method == "GET" || p.method == "HEAD") && !p.has_body;
}

// http-parser's reading of the first request in some bytes.
struct Theirs {
    bool complete = false;  // a whole message, ending at `consumed`
    bool error = false;
    bool error_in_head = false;
    http_errno code = HPE_OK;
    size_t consumed = 0;
    std::string method, url;
    int major = 0, minor = 0;
    unsigned flags = 0;
    bool keep_alive = false;
    FieldList fields;
    bool in_value = false;
    bool headers_done = false;
};

int on_url(http_parser* p, const char* at, size_t n) {
    static_cast<Theirs*>(p->data)->url.append(at, n);
    return 0;
}
int on_header_field(http_parser* p, const char* at, size_t n) {
    auto* t = static_cast<Theirs*>(p->data);
    if (t->fields.empty() || t->in_value) t->fields.emplace_back();
    t->in_value = false;
    t->fields.back().first.append(at, n);
    return 0;
}
int on_header_value(http_parser* p, const char* at, size_t n) {
    auto* t = static_cast<Theirs*>(p->data);
    if (t->fields.empty()) t->fields.emplace_back();  // a value with no name: keep it visible
    t->in_value = true;
    t->fields.back().second.append(at, n);
    return 0;
}
int on_headers_complete(http_parser* p) {
    auto* t = static_cast<Theirs*>(p->data);
    t->headers_done = true;
    t->method = http_method_str(static_cast<http_method>(p->method));
    t->major = p->http_major;
    t->minor = p->http_minor;
    t->flags = p->flags;
    return 0;
}
int on_message_complete(http_parser* p) {
    auto* t = static_cast<Theirs*>(p->data);
    t->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1);  // stop at the end of this message, as ours does
    return 0;
}

Theirs parse_theirs(std::string_view bytes) {
    static http_parser_settings settings = [] {
        http_parser_settings s;
        http_parser_settings_init(&s);
        s.on_url = on_url;
        s.on_header_field = on_header_field;
        s.on_header_value = on_header_value;
        s.on_headers_complete = on_headers_complete;
        s.on_message_complete = on_message_complete;
        return s;
    }();
    Theirs t;
    http_parser parser;
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &t;
    size_t n = http_parser_execute(&parser, &settings, bytes.data(), bytes.size());
    t.code = HTTP_PARSER_ERRNO(&parser);
    if (t.code == HPE_PAUSED) {
        t.complete = true;
        t.consumed = n;
    } else if (t.code != HPE_OK) {
        t.error = true;
        t.error_in_head = !t.headers_done;
    }
    return t;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x | 0x20) == (y | 0x20);
           });
}

// Field names http-parser gives a meaning we do not: Proxy-Connection (proxy_connection), and
// a longer name that begins with one it knows (whole_field_names).
bool theirs_alone(std::string_view name) {
    if (iequals(name, "proxy-connection")) return true;
    for (std::string_view known : {"connection", "content-length", "transfer-encoding", "upgrade"})
        if (name.size() > known.size() && iequals(name.substr(0, known.size()), known)) return true;
    return false;
}

// What we expect http-parser to call a field of ours once such names are neutralised.
std::string neutral_name(std::string_view name) {
    std::string out(name);
    if (theirs_alone(name)) out[0] = 'X';
    return out;
}

// True for a proper, case-blind start of one of the Connection options http-parser matches.
bool is_option_prefix(std::string_view element) {
    for (std::string_view option : {"close", "keep-alive", "upgrade"}) {
        if (element.size() >= option.size()) continue;
        bool same = true;
        for (size_t i = 0; i < element.size() && same; ++i)
            same = std::tolower(static_cast<unsigned char>(element[i])) == option[i];
        if (same) return true;
    }
    return false;
}

// A Connection value spelled as http-parser reads lists: tabs as spaces (tab_is_whitespace),
// no comma that ends an empty element, and every element a token, its other bytes made 'x'
// (list_elements; no option we read has an 'x', so none is made or unmade), and no element
// the bare start of an option (prefix_elements: its last byte made 'x') or starting with '_'
// (underscore_elements: made 'x'). Same length.
void plain_list(std::string& out, size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i)
        if (out[i] == '\t') out[i] = ' ';
    for (size_t start = begin; start <= end;) {
        size_t comma = std::min(end, out.find(',', start));
        size_t first = out.find_first_not_of(' ', start),
               last = out.find_last_not_of(' ', comma - 1);
        if (first >= comma || last < first) {  // an empty element
            if (comma < end) out[comma] = ' ';
        } else {
            for (size_t i = first; i <= last; ++i)
                if (!is_token(out[i])) out[i] = 'x';
            if (is_option_prefix(std::string_view(out).substr(first, last + 1 - first)))
                out[last] = 'x';
            if (out[first] == '_') out[first] = 'x';
        }
        start = comma + 1;
    }
}

// The bytes as http-parser should read them to agree with RFC 9110 where it does not: fields
// it alone gives a meaning renamed (first letter 'X'), Connection lists spelled plainly, no
// tab around a Content-Length. Every edit keeps the length, so its offsets are ours.
std::string neutralised(std::string_view bytes) {
    std::string out(bytes);
    size_t head_end = std::min(out.size(), out.find("\r\n\r\n"));
    for (size_t line = out.find("\r\n"); line < head_end; line = out.find("\r\n", line + 2)) {
        size_t begin = line + 2, colon = out.find(':', begin);
        size_t eol = std::min(out.size(), out.find("\r\n", begin));
        if (colon >= eol) continue;
        std::string_view name = std::string_view(out).substr(begin, colon - begin);
        if (iequals(name, "connection")) plain_list(out, colon + 1, eol);
        if (iequals(name, "content-length")) std::replace(&out[colon + 1], &out[eol], '\t', ' ');
        if (theirs_alone(name)) out[begin] = 'X';
    }
    return out;
}

void compare(const Parsed& ours, std::string_view bytes) {
    std::string shown(bytes.substr(0, 200));
    Theirs t = parse_theirs(neutralised(bytes));
    if (served(ours)) {
        FUZZ_REQUIRE(t.complete, "we serve %zd bytes; http-parser %s (%s) on:\n%s", ours.result,
                     t.error ? "rejects them" : "wants more", http_errno_name(t.code),
                     shown.c_str());
        FUZZ_REQUIRE(t.consumed == size_t(ours.result),
                     "we read a %zd-byte request, http-parser %zu bytes:\n%s", ours.result,
                     t.consumed, shown.c_str());
        FUZZ_REQUIRE(t.method == ours.method, "method %s, http-parser %s", ours.method.c_str(),
                     t.method.c_str());
        FUZZ_REQUIRE(t.url == ours.target, "target '%s', http-parser '%s'", ours.target.c_str(),
                     t.url.c_str());
        FUZZ_REQUIRE(t.major == 1 && t.minor == ours.minor_version, "HTTP/1.%d, http-parser %d.%d",
                     ours.minor_version, t.major, t.minor);
        FieldList theirs = t.fields, expected = ours.fields;
        for (auto& field : theirs) field.second = trimmed(field.second);  // trailing_whitespace
        for (auto& [name, value] : expected) {
            if (iequals(name, "connection")) {  // as neutralised() spelled it for them
                plain_list(value, 0, value.size());
                value = trimmed(value.substr(std::min(value.size(), value.find_first_not_of(' '))));
            }
            name = neutral_name(name);
        }
        FUZZ_REQUIRE(theirs == expected, "%zu fields, http-parser %zu, on:\n%s", expected.size(),
                     theirs.size(), shown.c_str());
        bool keep_alive = t.keep_alive && !(t.flags & F_CONNECTION_CLOSE);  // close_wins
        FUZZ_REQUIRE(keep_alive == ours.keep_alive, "keep-alive %d, http-parser %d, on:\n%s",
                     ours.keep_alive, keep_alive, shown.c_str());
    }
    if (t.error && t.error_in_head)
        FUZZ_REQUIRE(!served(ours), "http-parser rejects (%s) a request we serve:\n%s",
                     http_errno_name(t.code), shown.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    mux::fuzz::Input in = mux::fuzz::read_input(data, size);
    auto parse = [](const uint8_t* buf, size_t len) {
        Parsed p = parse_ours(reinterpret_cast<const char*>(buf), len);
        return std::pair{p.result, p};
    };
    auto whole = mux::fuzz::feed<Parsed>(in.message, {}, mux::http::kIncomplete, parse);
    auto split = mux::fuzz::feed<Parsed>(in.message, in.cuts, mux::http::kIncomplete, parse);
    FUZZ_REQUIRE(whole == split, "split at %zu cuts: %zu requests then %zd, whole: %zu then %zd",
                 in.cuts.size(), split.messages.size(), split.last, whole.messages.size(),
                 whole.last);

    // The second opinion, request by request, as far as our server would go. What stops the
    // stream (a refusal, or a head still incomplete) needs none: only a request we serve is
    // held to http-parser's verdict.
    size_t at = 0;
    for (const Parsed& request : whole.messages) {
        std::string_view rest = in.message.substr(at);
        compare(request, rest);
        if (!served(request) || !request.keep_alive) return 0;
        at += size_t(request.result);
    }
    return 0;
}
