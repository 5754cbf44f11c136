// Handler cost: answering one request, with and without the sockets around it.
//
// - BM_HandlerMux1Echo/read:MODE, BM_HandlerHttpGet: the shared servers/connection.hpp
//   Connection owns one end of a socketpair. Each iteration the other end sends one request,
//   the handler runs on_readable (recv, parse, answer, send), and the other end reads the
//   whole reply. So the figure is the syscalls plus the handler's own work: what a server
//   pays per request once a wait has said the socket is readable. MODE is how the model
//   reads: lt_once (one recv per report, level-triggered epoll, poll, select; HTTP too),
//   et_short (edge-triggered, until a short read: epoll-et's default) or et_eagain
//   (edge-triggered, until EAGAIN: --et-drain eagain). et_eagain makes one more recv per
//   request, the one that fails with EAGAIN: four syscalls against three.
// - BM_HandlerFeedMux1Echo: the handler's bytes-in/bytes-out core alone, as a completion model
//   drives it: feed() one request already in memory, take_output() the reply and report it
//   sent. No syscall: the handler's share of BM_HandlerMux1Echo.
// - BM_ParseMux1Frame, BM_ParseHttpRequest: the shared parse function on a request already
//   in memory, plus formatting the reply header. No syscall, no handler: the pure compute
//   part of the figures above.
// The requests: a mux1 ECHO with a 64-byte payload; an HTTP GET / with the three headers
// curl sends, answered with the 9-byte root body.
// (Histogram record cost belongs to histogram_cost.cpp, once the shared histogram exists.)
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "connection.hpp"
#include "fixtures.hpp"
#include "http.hpp"
#include "mux1.hpp"
#include "server.hpp"

namespace mux::micro {

namespace {

constexpr uint32_t kEchoPayload = 64;
constexpr uint64_t kTag = 7;
constexpr std::string_view kHttpRequest =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

// The reply a keep-alive GET / gets: head plus the root body, formatted by the shared code.
size_t http_reply_len() {
    char head[http::kMaxResponseHead];
    return http::format_response_head(head, 200, http::kRootBody.size(), true, 1) +
           http::kRootBody.size();
}

void run_handler(benchmark::State& state, Protocol proto, const std::vector<uint8_t>& request,
                 size_t reply_len, ReadMode mode) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
        state.SkipWithError(fmt::format("socketpair: {}", std::strerror(errno)).c_str());
        return;
    }
    ServerConfig config;
    config.proto = proto;
    CounterTotals totals;
    Server server(config, /*listen_fd=*/-1, &totals);
    ServerCounters& counters = thread_counters();  // the handler counts into this thread's
    counters.reset();
    std::vector<uint8_t> reply(reply_len);
    std::string error;
    {
        Connection connection(pair[0], server);  // closes pair[0]
        for (auto _ : state) {
            error = send_request(pair[1], request);
            if (error.empty() && connection.on_readable(mode) != Next::Keep)
                error = "handler closed the connection";
            if (error.empty()) error = read_reply(pair[1], reply.data(), reply.size());
            if (!error.empty()) {
                state.SkipWithError(error.c_str());
                break;
            }
        }
    }
    close(pair[1]);
    if (error.empty() && counters.requests.get() != static_cast<uint64_t>(state.iterations()))
        state.SkipWithError(fmt::format("handler counted {} requests for {} iterations",
                                        counters.requests.get(), state.iterations())
                                .c_str());
}

template <ReadMode kMode>
void BM_HandlerMux1Echo(benchmark::State& state) {
    run_handler(state, Protocol::Mux1, mux1_echo_request(kEchoPayload, kTag),
                mux1::kHeaderSize + kEchoPayload, kMode);
}

void BM_HandlerHttpGet(benchmark::State& state) {
    std::vector<uint8_t> request(kHttpRequest.begin(), kHttpRequest.end());
    run_handler(state, Protocol::Http, request, http_reply_len(), ReadMode::Once);
}

void BM_HandlerFeedMux1Echo(benchmark::State& state) {
    int pair[2];  // the Connection owns (and closes) an fd it never touches here
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        state.SkipWithError(fmt::format("socketpair: {}", std::strerror(errno)).c_str());
        return;
    }
    ServerConfig config;
    config.proto = Protocol::Mux1;
    CounterTotals totals;
    Server server(config, /*listen_fd=*/-1, &totals);
    ServerCounters& counters = thread_counters();
    counters.reset();
    const std::vector<uint8_t> request = mux1_echo_request(kEchoPayload, kTag);
    std::string error;
    {
        Connection connection(pair[0], server);
        for (auto _ : state) {
            connection.feed(request.data(), request.size());
            std::span<const uint8_t> reply = connection.take_output();
            if (reply.size() != mux1::kHeaderSize + kEchoPayload) {
                error = fmt::format("reply of {} bytes", reply.size());
                break;
            }
            benchmark::DoNotOptimize(reply.data());
            connection.output_sent(reply.size());
        }
    }
    close(pair[1]);
    if (error.empty() && counters.requests.get() != static_cast<uint64_t>(state.iterations()))
        error = fmt::format("handler counted {} requests for {} iterations",
                            counters.requests.get(), state.iterations());
    if (!error.empty()) state.SkipWithError(error.c_str());
}

void BM_ParseMux1Frame(benchmark::State& state) {
    const std::vector<uint8_t> request = mux1_echo_request(kEchoPayload, kTag);
    uint8_t head[mux1::kHeaderSize];
    for (auto _ : state) {
        mux1::Header header;
        ssize_t len =
            mux1::parse_frame(request.data(), request.size(), mux1::kDefaultMaxPayload, &header);
        header.op_or_status = static_cast<uint8_t>(mux1::Status::Ok);
        mux1::encode_header(header, head);
        benchmark::DoNotOptimize(len);
        benchmark::DoNotOptimize(head);
    }
}

void BM_ParseHttpRequest(benchmark::State& state) {
    char head[http::kMaxResponseHead];
    for (auto _ : state) {
        http::Request request;
        ssize_t len = http::parse_request(kHttpRequest.data(), kHttpRequest.size(), &request);
        size_t head_len = http::format_response_head(head, 200, http::kRootBody.size(),
                                                     request.keep_alive, request.minor_version);
        benchmark::DoNotOptimize(len);
        benchmark::DoNotOptimize(head_len);
        benchmark::DoNotOptimize(head);
    }
}

BENCHMARK(BM_HandlerMux1Echo<ReadMode::Once>)->Name("BM_HandlerMux1Echo/read:lt_once");
BENCHMARK(BM_HandlerMux1Echo<ReadMode::UntilShort>)->Name("BM_HandlerMux1Echo/read:et_short");
BENCHMARK(BM_HandlerMux1Echo<ReadMode::UntilRetry>)->Name("BM_HandlerMux1Echo/read:et_eagain");
BENCHMARK(BM_HandlerHttpGet);
BENCHMARK(BM_HandlerFeedMux1Echo);
BENCHMARK(BM_ParseMux1Frame);
BENCHMARK(BM_ParseHttpRequest);

}  // namespace
}  // namespace mux::micro
