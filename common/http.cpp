#include "http.hpp"

#include <charconv>
#include <cstdio>
#include <cstring>

namespace mux::http {

namespace {

bool is_token_char(char c) {
    if (c >= '0' && c <= '9') return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Finds the blank line that ends a head. Returns the head length or a parse result.
ssize_t find_head_end(const char* buf, size_t len) {
    size_t limit = len < kMaxHeadBytes ? len : kMaxHeadBytes;
    for (size_t i = 3; i < limit; ++i) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return static_cast<ssize_t>(i + 1);
    }
    return len >= kMaxHeadBytes ? kHeadTooLarge : kIncomplete;
}

// Splits off one CRLF-terminated line from *rest.
bool next_line(std::string_view* rest, std::string_view* line) {
    size_t eol = rest->find("\r\n");
    if (eol == std::string_view::npos) return false;
    *line = rest->substr(0, eol);
    rest->remove_prefix(eol + 2);
    return true;
}

bool parse_version(std::string_view v, int* minor) {
    if (v.size() != 8 || v.substr(0, 7) != "HTTP/1.") return false;
    if (v[7] != '0' && v[7] != '1') return false;
    *minor = v[7] - '0';
    return true;
}

bool parse_u64(std::string_view s, uint64_t* out) {
    if (s.empty()) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && end == s.data() + s.size();
}

struct HeaderEffects {
    std::span<HeaderField> fields;  // where to list the fields, if anywhere
    size_t field_count = 0;
    bool saw_close = false;
    bool saw_keep_alive = false;
    bool has_content_length = false;
    uint64_t content_length = 0;
    bool has_transfer_encoding = false;
    bool chunked_last = false;  // the last Transfer-Encoding coding is chunked
    bool repeated_length = false;      // a second Content-Length
    bool conflicting_lengths = false;  // ... with another value
};

// The last token of a comma-separated list, trimmed.
std::string_view last_token(std::string_view value) {
    size_t comma = value.rfind(',');
    return trim(comma == std::string_view::npos ? value : value.substr(comma + 1));
}

// Parses header lines until the blank line, recording what the subset cares about.
bool parse_headers(std::string_view rest, HeaderEffects* fx) {
    std::string_view line;
    while (next_line(&rest, &line)) {
        if (line.empty()) return true;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return false;
        std::string_view name = line.substr(0, colon);
        for (char c : name)
            if (!is_token_char(c)) return false;
        std::string_view value = trim(line.substr(colon + 1));
        for (char c : value)
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return false;
        if (fx->field_count < fx->fields.size()) fx->fields[fx->field_count] = {name, value};
        ++fx->field_count;
        if (iequals(name, "connection")) {
            // A comma-separated token list, e.g. "keep-alive, Upgrade".
            while (!value.empty()) {
                size_t comma = value.find(',');
                std::string_view token = trim(value.substr(0, comma));
                if (iequals(token, "close")) fx->saw_close = true;
                if (iequals(token, "keep-alive")) fx->saw_keep_alive = true;
                if (comma == std::string_view::npos) break;
                value.remove_prefix(comma + 1);
            }
        } else if (iequals(name, "content-length")) {
            // Recorded, not refused here: a request refuses any second one, a response only
            // one that differs (see parse_request and parse_response).
            uint64_t n = 0;
            if (!parse_u64(value, &n)) return false;
            if (fx->has_content_length) fx->repeated_length = true;
            if (fx->has_content_length && n != fx->content_length) fx->conflicting_lengths = true;
            fx->content_length = n;
            fx->has_content_length = true;
        } else if (iequals(name, "transfer-encoding")) {
            fx->has_transfer_encoding = true;
            fx->chunked_last = iequals(last_token(value), "chunked");
        }
    }
    return false;
}

bool keep_alive_for(int minor_version, const HeaderEffects& fx) {
    if (fx.saw_close) return false;
    return minor_version == 1 || fx.saw_keep_alive;
}

}  // namespace

ssize_t parse_request(const char* buf, size_t len, Request* request) {
    size_t field_count = 0;
    return parse_request(buf, len, request, {}, &field_count);
}

ssize_t parse_request(const char* buf, size_t len, Request* out, std::span<HeaderField> fields,
                      size_t* field_count) {
    ssize_t head_len = find_head_end(buf, len);
    if (head_len < 0) {
        // Refuse a request line that is already wrong without waiting for the whole head.
        for (size_t i = 0; i < len && buf[i] != ' '; ++i)
            if (!is_token_char(buf[i])) return kMalformed;
        return head_len;
    }
    std::string_view rest(buf, static_cast<size_t>(head_len));
    std::string_view line;
    next_line(&rest, &line);
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) return kMalformed;
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return kMalformed;
    Request request;
    request.method = line.substr(0, sp1);
    for (char c : request.method)
        if (!is_token_char(c)) return kMalformed;
    // Origin form only ("/path?query"): what clients send an origin server. The absolute form
    // is for proxies and "*" for OPTIONS, and a target that is neither is no target at all.
    request.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (request.target.front() != '/') return kMalformed;
    for (char c : request.target)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return kMalformed;
    if (!parse_version(line.substr(sp2 + 1), &request.minor_version)) return kMalformed;

    HeaderEffects fx;
    fx.fields = fields;
    if (!parse_headers(rest, &fx)) return kMalformed;
    // A second Content-Length is refused even when equal, as RFC 9112 6.3 lets a recipient
    // do: two lengths are how a request is smuggled past a proxy that reads the other.
    if (fx.repeated_length) return kMalformed;
    request.keep_alive = keep_alive_for(request.minor_version, fx);
    request.has_body = fx.has_transfer_encoding || fx.content_length > 0;
    *out = request;
    *field_count = fx.field_count;
    return head_len;
}

// ---- Response bodies

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

bool is_field_value_char(char c) {
    auto u = static_cast<unsigned char>(c);
    return c == '\t' || (u >= 0x20 && u != 0x7f);  // visible, space, tab, obs-text
}

// Scans the chunk-size line at buf[pos]: 1*HEXDIG [ BWS ";" extensions ] CRLF. On success
// sets *size and *next (the first byte after the CRLF) and returns 0.
ssize_t scan_chunk_line(const char* buf, size_t len, size_t pos, uint64_t* size, size_t* next) {
    size_t start = pos;
    uint64_t n = 0;
    size_t digits = 0;
    for (int h; pos < len && (h = hex_value(buf[pos])) >= 0; ++pos) {
        if (++digits > 16) return kMalformed;  // more than 64 bits of size
        n = n * 16 + static_cast<uint64_t>(h);
    }
    if (pos < len && digits == 0) return kMalformed;
    bool in_extension = false;
    for (; pos < len && buf[pos] != '\r'; ++pos) {
        if (pos - start >= kMaxChunkLineBytes) return kMalformed;
        char c = buf[pos];
        if (!is_field_value_char(c)) return kMalformed;
        if (!in_extension && c == ';') in_extension = true;
        if (!in_extension && c != ' ' && c != '\t') return kMalformed;
    }
    if (pos + 1 >= len) return kIncomplete;
    if (buf[pos + 1] != '\n') return kMalformed;
    *size = n;
    *next = pos + 2;
    return 0;
}

// Scans one field line (a trailer) at buf[pos]. Returns 0 and sets *next past its CRLF,
// 1 for the blank line that ends the section, or kIncomplete / kMalformed.
ssize_t scan_field_line(const char* buf, size_t len, size_t pos, size_t* next) {
    size_t start = pos;
    for (; pos < len && buf[pos] != ':' && buf[pos] != '\r'; ++pos)
        if (!is_token_char(buf[pos])) return kMalformed;
    if (pos < len && buf[pos] == ':' && pos == start) return kMalformed;
    bool blank = pos < len && buf[pos] == '\r' && pos == start;
    if (pos < len && buf[pos] == '\r' && !blank) return kMalformed;  // a name with no colon
    for (; pos < len && buf[pos] != '\r'; ++pos)
        if (!is_field_value_char(buf[pos])) return kMalformed;
    if (pos + 1 >= len) return kIncomplete;
    if (buf[pos + 1] != '\n') return kMalformed;
    *next = pos + 2;
    return blank ? 1 : 0;
}

// Parses a chunked body at the start of buf. Returns its length as sent (trailers and the
// final blank line included) and sets *decoded, or kIncomplete or an error.
ssize_t parse_chunked(const char* buf, size_t len, uint64_t max_body_bytes, uint64_t* decoded) {
    size_t pos = 0;
    uint64_t total = 0;
    for (;;) {
        uint64_t size = 0;
        ssize_t r = scan_chunk_line(buf, len, pos, &size, &pos);
        if (r < 0) return r;
        if (size > max_body_bytes - total) return kBodyTooLarge;
        if (size == 0) break;
        total += size;
        if (len - pos < size) return kIncomplete;
        pos += static_cast<size_t>(size);
        if (pos < len && buf[pos] != '\r') return kMalformed;
        if (pos + 1 < len && buf[pos + 1] != '\n') return kMalformed;
        if (pos + 1 >= len) return kIncomplete;
        pos += 2;
    }
    // Trailers are a head of their own, held to the same limit. Bytes past the limit are
    // never looked at, so a prefix and the whole message get the same answer.
    size_t limit = len - pos > kMaxHeadBytes ? pos + kMaxHeadBytes : len;
    for (;;) {
        ssize_t r = scan_field_line(buf, limit, pos, &pos);
        if (r == kIncomplete && limit < len) return kHeadTooLarge;
        if (r < 0) return r;
        if (r == 1) break;
    }
    *decoded = total;
    return static_cast<ssize_t>(pos);
}

bool status_has_no_body(int status) {
    return status < 200 || status == 204 || status == 304;
}

// The status line and headers: fills *response and returns the head's length.
ssize_t parse_response_head(const char* buf, size_t len, Response* response, HeaderEffects* fx) {
    ssize_t head_len = find_head_end(buf, len);
    if (head_len < 0) {
        size_t n = len < 5 ? len : 5;
        if (n > 0 && std::memcmp(buf, "HTTP/", n) != 0) return kMalformed;
        return head_len;
    }
    std::string_view rest(buf, static_cast<size_t>(head_len));
    std::string_view line;
    next_line(&rest, &line);
    // "HTTP/1.1 200 OK": the status is exactly three digits, then a space or the line's end.
    if (line.size() < 12 || line[8] != ' ') return kMalformed;
    if (line.size() > 12 && line[12] != ' ') return kMalformed;
    if (!parse_version(line.substr(0, 8), &response->minor_version)) return kMalformed;
    uint64_t status = 0;
    if (!parse_u64(line.substr(9, 3), &status) || status < 100 || status > 999) return kMalformed;
    response->status = static_cast<int>(status);
    response->reason = line.size() > 13 ? line.substr(13) : std::string_view();
    for (char c : response->reason)
        if (!is_field_value_char(c)) return kMalformed;
    if (!parse_headers(rest, fx)) return kMalformed;
    response->keep_alive = keep_alive_for(response->minor_version, *fx);
    return head_len;
}

}  // namespace

ssize_t parse_response(const char* buf, size_t len, uint64_t max_body_bytes, Response* response) {
    HeaderEffects fx;
    ssize_t head = parse_response_head(buf, len, response, &fx);
    if (head < 0) return head;
    auto head_len = static_cast<size_t>(head);
    response->head_bytes = head_len;
    response->body = {};
    response->body_bytes = 0;
    if (status_has_no_body(response->status)) {
        response->framing = BodyFraming::None;
        return head;
    }
    // Two lengths, or a length beside chunked, make the framing ambiguous: the pattern of
    // response smuggling. A client that guessed would misread every reply after this one.
    if (fx.conflicting_lengths || (fx.has_transfer_encoding && fx.has_content_length))
        return kMalformed;
    const char* body = buf + head_len;
    size_t left = len - head_len;
    if (fx.has_content_length) {
        if (fx.content_length > max_body_bytes) return kBodyTooLarge;
        if (left < fx.content_length) return kIncomplete;
        response->framing = BodyFraming::ContentLength;
        response->body = {body, static_cast<size_t>(fx.content_length)};
        response->body_bytes = fx.content_length;
        return static_cast<ssize_t>(head_len + response->body.size());
    }
    if (!fx.has_transfer_encoding || !fx.chunked_last) return kUnframed;
    uint64_t decoded = 0;
    ssize_t body_len = parse_chunked(body, left, max_body_bytes, &decoded);
    if (body_len < 0) return body_len;
    response->framing = BodyFraming::Chunked;
    response->body = {body, static_cast<size_t>(body_len)};
    response->body_bytes = decoded;
    return static_cast<ssize_t>(head_len) + body_len;
}

bool next_body_piece(const Response& response, size_t* cursor, std::string_view* piece) {
    const std::string_view body = response.body;
    if (response.framing == BodyFraming::ContentLength) {
        if (*cursor >= body.size()) return false;
        *piece = body.substr(*cursor);
        *cursor = body.size();
        return true;
    }
    if (response.framing != BodyFraming::Chunked || *cursor >= body.size()) return false;
    uint64_t size = 0;
    size_t data = 0;
    if (scan_chunk_line(body.data(), body.size(), *cursor, &size, &data) < 0 || size == 0) {
        *cursor = body.size();
        return false;
    }
    *piece = body.substr(data, static_cast<size_t>(size));
    *cursor = data + static_cast<size_t>(size) + 2;
    return true;
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 413:
            return "Content Too Large";
        case 431:
            return "Request Header Fields Too Large";
        case 501:
            return "Not Implemented";
        default:
            return "Unknown";
    }
}

size_t format_response_head(char* out, int status, uint64_t content_length, bool keep_alive,
                            int minor_version) {
    // HTTP/1.1 keeps alive unless told; HTTP/1.0 closes unless told. Say only what differs.
    const char* connection = "";
    if (!keep_alive && minor_version == 1) connection = "Connection: close\r\n";
    if (keep_alive && minor_version == 0) connection = "Connection: keep-alive\r\n";
    std::string_view reason = reason_phrase(status);
    int n = std::snprintf(out, kMaxResponseHead,
                          "HTTP/1.%d %d %.*s\r\nServer: muxbench\r\nContent-Type: text/plain\r\n"
                          "Content-Length: %llu\r\n%s\r\n",
                          minor_version, status, static_cast<int>(reason.size()), reason.data(),
                          static_cast<unsigned long long>(content_length), connection);
    return static_cast<size_t>(n);
}

bool parse_bytes_target(std::string_view target, uint64_t* n) {
    constexpr std::string_view prefix = "/bytes/";
    if (target.substr(0, prefix.size()) != prefix) return false;
    return parse_u64(target.substr(prefix.size()), n);
}

}  // namespace mux::http
