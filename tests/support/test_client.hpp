// A small blocking client for end-to-end tests: connects over tcp or unix, sends mux1 and
// HTTP requests, and checks every reply's tag, length and bytes. All framing is common/'s;
// every wait has a deadline so a server that stops answering fails a test, never hangs it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http.hpp"
#include "mux1.hpp"
#include "net.hpp"

namespace mux::test {

using Millis = std::chrono::milliseconds;
inline constexpr Millis kReplyTimeout{20000};

// The bytes of a mux1 request. An ECHO payload follows a tag-dependent pattern so an echo
// returned to the wrong request fails verification.
std::string mux1_request(mux1::Op op, uint64_t tag, uint32_t payload_len, uint32_t reply_len = 0);
uint64_t echo_pattern_tag(uint64_t tag);

std::string http_get(std::string_view target, int minor_version = 1,
                     std::string_view connection = {});

struct Mux1Reply {
    mux1::Header header;
    std::string payload;
};
struct HttpReply {
    http::Response head;
    std::string body;
};

// Checks a reply against the request it answers.
testing::AssertionResult check_mux1_reply(const Mux1Reply& reply, mux1::Op op, uint64_t tag,
                                          uint32_t payload_len, uint32_t reply_len = 0);
// GET / or GET /bytes/N with status 200.
testing::AssertionResult check_http_reply(const HttpReply& reply, std::string_view target);

class Client {
  public:
    Client() = default;
    explicit Client(int fd) : fd_(fd) {}
    ~Client();
    Client(Client&& other) noexcept;
    Client& operator=(Client&& other) noexcept;

    // Blocking connect; on failure valid() is false and the error is in *error if given.
    static Client connect(const SocketAddress& address, std::string* error = nullptr);

    bool valid() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    void close();
    // SO_LINGER 0 then close: the peer sees a reset instead of a FIN.
    void reset();
    void shutdown_write();

    bool send_all(std::string_view bytes);

    // One reply; nullopt (with the reason in last_error()) on EOF, error, bad framing or
    // timeout.
    std::optional<Mux1Reply> read_mux1(Millis timeout = kReplyTimeout);
    std::optional<HttpReply> read_http(Millis timeout = kReplyTimeout);

    // Round trips: send one request, read its reply, check everything.
    testing::AssertionResult echo(uint64_t tag, uint32_t payload_len);
    testing::AssertionResult gen(uint64_t tag, uint32_t reply_len);
    testing::AssertionResult get(std::string_view target);

    // True when the server ended the connection (EOF or reset) within the timeout, with no
    // further reply bytes before that. Bytes that arrive instead are an error.
    testing::AssertionResult expect_closed(Millis timeout = kReplyTimeout);
    // True when a byte (or EOF) is ready to read within timeout; consumes nothing.
    bool readable_within(Millis timeout);

    const std::string& last_error() const { return error_; }

  private:
    // Appends to in_ until it holds at least want bytes. False on EOF, error or timeout.
    bool fill(size_t want, std::chrono::steady_clock::time_point deadline);

    int fd_ = -1;
    std::string in_;  // received bytes not yet consumed
    std::string error_;
};

}  // namespace mux::test
