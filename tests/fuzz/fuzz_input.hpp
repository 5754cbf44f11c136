// What every harness shares: how an input names its message and where to cut it, and how a
// stateless parser is fed the way a server feeds it.
//
// An input is MESSAGE [CUTS MARK]. When the last byte is a mark 0xF0 + k (k < 8), the 2k
// bytes before it are k big-endian uint16 cut points, each taken modulo the message length
// + 1; the mark 0xF8 cuts after every byte of a message up to 1 KiB. Any other last byte
// means there is no trailer: the whole input is the message, cut into thirds. So a raw
// capture (a wrk request, a results file) is a seed as it is, and the fuzzer learns the
// mark by mutation and chooses its own cuts.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

// A harness's own invariant failing is a finding like a crash: print why, then abort so
// libFuzzer saves the input.
#define FUZZ_REQUIRE(cond, ...)                                                                \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            std::fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n  ", __FILE__, __LINE__, \
                         #cond);                                                               \
            std::fprintf(stderr, __VA_ARGS__);                                                 \
            std::fprintf(stderr, "\n");                                                        \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)

namespace mux::fuzz {

inline constexpr uint8_t kCutsMark = 0xF0;
inline constexpr uint8_t kEveryByteMark = 0xF8;
inline constexpr size_t kEveryByteLimit = 1024;

struct Input {
    std::string_view message;
    std::vector<size_t> cuts;  // ascending, unique, each in (0, message.size())
};

inline Input read_input(const uint8_t* data, size_t size) {
    Input in;
    auto text = [&](size_t n) { return std::string_view(reinterpret_cast<const char*>(data), n); };
    uint8_t mark = size ? data[size - 1] : 0;
    size_t k = mark & 7;
    if (size && mark == kEveryByteMark && size - 1 <= kEveryByteLimit) {
        in.message = text(size - 1);
        for (size_t i = 1; i < in.message.size(); ++i) in.cuts.push_back(i);
        return in;
    }
    if (size && (mark & 0xF8) == kCutsMark && size >= 1 + 2 * k) {
        in.message = text(size - 1 - 2 * k);
        const uint8_t* spec = data + in.message.size();
        for (size_t i = 0; i < k; ++i)
            in.cuts.push_back((size_t(spec[2 * i]) << 8 | spec[2 * i + 1]) %
                              (in.message.size() + 1));
    } else {
        in.message = text(size);
        in.cuts = {size / 3, 2 * size / 3};
    }
    std::sort(in.cuts.begin(), in.cuts.end());
    in.cuts.erase(std::unique(in.cuts.begin(), in.cuts.end()), in.cuts.end());
    std::erase_if(in.cuts, [&](size_t c) { return c == 0 || c >= in.message.size(); });
    return in;
}

// What a server's connection sees of a byte stream: every message taken off the front, in
// order, and then the answer for what is left (incomplete, or the error that closes it).
template <typename Message>
struct Stream {
    std::vector<Message> messages;
    ssize_t last = 0;  // the parser's answer for the unconsumed rest
    size_t consumed = 0;

    bool operator==(const Stream&) const = default;
};

// Delivers `message` in segments ending at each cut and at its end. After each segment the
// parser is asked for every complete message at the front of the unconsumed bytes, as
// servers/connection.cpp asks it. parse(buf, len) returns {result, Message}; a positive
// result is the message's length, `incomplete` asks for more bytes, and anything else is an
// error that ends the stream. Each call gets a heap copy of exactly len bytes, so
// AddressSanitizer catches a read past the end.
template <typename Message, typename Parse>
Stream<Message> feed(std::string_view message, const std::vector<size_t>& cuts, ssize_t incomplete,
                     Parse parse, size_t max_messages = 1000) {
    Stream<Message> stream;
    std::vector<size_t> ends = cuts;
    ends.push_back(message.size());
    for (size_t end : ends) {
        while (true) {
            size_t len = end - stream.consumed;
            std::unique_ptr<uint8_t[]> copy(new uint8_t[len]);
            std::copy_n(message.data() + stream.consumed, len, copy.get());
            auto [result, parsed] = parse(copy.get(), len);
            FUZZ_REQUIRE(result <= ssize_t(len), "consumed %zd of %zu bytes", result, len);
            if (result <= 0) {
                stream.last = result;
                break;
            }
            stream.messages.push_back(std::move(parsed));
            stream.consumed += size_t(result);
            if (stream.messages.size() == max_messages) return stream;
        }
        if (stream.last != incomplete) return stream;  // the connection closes
    }
    return stream;
}

}  // namespace mux::fuzz
