// A deliberately wrong server, written here, and the error kind each of its faults must be
// counted under, once per request it cost. Also: a server slow to answer its first reply
// (the ramp waits), one that never answers (the ramp's cap), other HTTP servers (--verify),
// a dead server and one that dies mid-run; the run always ends.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <tuple>
#include <vector>

#include "http.hpp"
#include "mux1.hpp"
#include "net.hpp"
#include "options.hpp"
#include "run.hpp"
#include "server_process.hpp"

namespace {

using namespace mux::load;

enum class Fault {
    // mux1
    BadBytes,
    WrongTag,
    WrongPayload,
    BadStatus,
    EarlyClose,
    Stall,
    SlowFirstReply,   // each connection's first reply comes 1.5 s late, then all on time
    StallAfterFirst,  // the first request of the run is answered, then nothing ever again
    CloseAfterFirst,  // the first request of the run is answered, then every connection closes
    // HTTP
    HttpStatus500,
    HttpNoLength,
    HttpShortBody,
    HttpCloseEachReply,  // a right answer, with Connection: close, then the close
    HttpOk,              // another server: 200 with the body "ok", as nginx's return 200
    HttpChunkedOk,       // another server: 200 with a chunked body
};

bool is_http(Fault f) {
    return f >= Fault::HttpStatus500;
}

// Answers requests wrongly, or as a server other than muxserver would. One thread, poll(),
// bounded by its destructor.
class WrongServer {
  public:
    explicit WrongServer(Fault fault) : fault_(fault) {
        std::string error;
        mux::Endpoint ep{mux::Endpoint::Kind::Tcp, "127.0.0.1", 0, ""};
        listen_fd_ = mux::listen_on(ep, 1024, true, &error);
        port_ = mux::bound_port(listen_fd_);
        thread_ = std::thread([this] { loop(); });
    }
    ~WrongServer() {
        stop_ = true;
        thread_.join();
        for (auto& c : clients_) close(c.fd);
        close(listen_fd_);
    }
    std::string target() const { return "tcp:127.0.0.1:" + std::to_string(port_); }
    uint64_t accepted() const { return accepted_; }

  private:
    using Clock = std::chrono::steady_clock;
    struct Client {
        int fd = -1;
        std::vector<uint8_t> in;
        bool done = false;
        uint64_t answered = 0;
        std::string delayed;  // a reply held back until due
        Clock::time_point due{};
    };

    void loop() {
        while (!stop_) {
            std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
            for (auto& c : clients_) fds.push_back({c.fd, short(c.done ? 0 : POLLIN), 0});
            int n = poll(fds.data(), fds.size(), 10);
            for (auto& c : clients_)
                if (!c.delayed.empty() && Clock::now() >= c.due) {
                    send_all(c.fd, c.delayed.data(), c.delayed.size());
                    c.delayed.clear();
                }
            if (n <= 0) continue;
            if (fds[0].revents & POLLIN) {
                int fd;
                while ((fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
                    Client client;
                    client.fd = fd;
                    clients_.push_back(std::move(client));
                    accepted_ += 1;
                }
            }
            for (size_t i = 1; i < fds.size() && i - 1 < clients_.size(); ++i)
                if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) serve(clients_[i - 1]);
            std::erase_if(clients_, [](const Client& c) { return c.fd < 0; });
        }
    }

    void serve(Client& c) {
        uint8_t buf[65536];
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n <= 0) {
            close(c.fd);
            c.fd = -1;
            return;
        }
        c.in.insert(c.in.end(), buf, buf + n);
        while (c.fd >= 0 && !c.done) {  // every whole request received, in order
            if (is_http(fault_)) {
                mux::http::Request req;
                auto len = mux::http::parse_request(reinterpret_cast<const char*>(c.in.data()),
                                                    c.in.size(), &req);
                if (len <= 0) return;
                c.in.erase(c.in.begin(), c.in.begin() + len);
                answer_http(c);
                continue;
            }
            mux::mux1::Header h;
            auto len = mux::mux1::parse_frame(c.in.data(), c.in.size(), 1 << 20, &h);
            if (len <= 0) return;
            std::vector<uint8_t> payload(c.in.begin() + mux::mux1::kHeaderSize, c.in.begin() + len);
            c.in.erase(c.in.begin(), c.in.begin() + len);
            answer_mux1(c, h, payload);
        }
    }

    void send_all(int fd, const void* data, size_t len) {
        (void)!send(fd, data, len, MSG_NOSIGNAL);
    }

    void hang_up(Client& c) {
        close(c.fd);
        c.fd = -1;
    }

    void answer_mux1(Client& c, mux::mux1::Header h, std::vector<uint8_t> payload) {
        bool first_of_run = answered_total_++ == 0;
        switch (fault_) {
            case Fault::BadBytes:
                send_all(c.fd, "garbage, not mux1 at all", 24);
                return;
            case Fault::WrongTag:
                h.tag += 1;
                break;
            case Fault::WrongPayload:
                if (!payload.empty()) payload[payload.size() / 2] ^= 0x01;
                break;
            case Fault::BadStatus:
                h.op_or_status = uint8_t(mux::mux1::Status::BadOp);
                break;
            case Fault::EarlyClose:
                return hang_up(c);
            case Fault::Stall:
                c.done = true;
                return;  // never answers, never closes
            case Fault::StallAfterFirst:
                if (!first_of_run) {
                    c.done = true;
                    return;
                }
                break;
            case Fault::CloseAfterFirst:
                if (!first_of_run) return hang_up(c);
                break;
            default:
                break;
        }
        h.op_or_status = fault_ == Fault::BadStatus ? h.op_or_status : uint8_t(0);
        uint8_t head[mux::mux1::kHeaderSize];
        mux::mux1::encode_header(h, head);
        std::string reply(reinterpret_cast<const char*>(head), sizeof head);
        reply.append(payload.begin(), payload.end());
        if (fault_ == Fault::SlowFirstReply && c.answered++ == 0) {
            c.delayed = reply;
            c.due = Clock::now() + std::chrono::milliseconds(1500);
            return;
        }
        if (!c.delayed.empty()) {  // keep the order of replies
            c.delayed += reply;
            return;
        }
        send_all(c.fd, reply.data(), reply.size());
    }

    void answer_http(Client& c) {
        std::string reply;
        switch (fault_) {
            case Fault::HttpStatus500:
                reply = "HTTP/1.1 500 Oops\r\nContent-Length: 9\r\n\r\nmuxbench\n";
                break;
            case Fault::HttpNoLength:
                reply = "HTTP/1.1 200 OK\r\n\r\nmuxbench\n";
                break;
            case Fault::HttpShortBody:
                reply = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nmuxbench";  // then closes
                break;
            case Fault::HttpCloseEachReply:
                reply =
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 9\r\n\r\nmuxbench\n";
                send_all(c.fd, reply.data(), reply.size());
                // A FIN after the reply, as a server that honours its own header does; the
                // requests pipelined behind this one are never read.
                shutdown(c.fd, SHUT_WR);
                c.done = true;
                return;
            case Fault::HttpOk:
                reply =
                    "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n"
                    "Content-Length: 2\r\n\r\nok";
                break;
            default:
                reply =
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        }
        send_all(c.fd, reply.data(), reply.size());
        if (fault_ == Fault::HttpShortBody) hang_up(c);
    }

    Fault fault_;
    int listen_fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> accepted_{0};
    uint64_t answered_total_ = 0;
    std::vector<Client> clients_;
    std::thread thread_;
};

LoadOptions options_for(const std::string& target, Proto proto) {
    LoadOptions o;
    o.target_text = target;
    o.proto = proto;
    o.conns = 2;
    o.duration_s = 0.4;
    o.warmup_s = 0;
    // Long enough that this busy machine's scheduling never makes a timeout of a reply the
    // server did send; probes held through the 1 s ramp are older than that at its end.
    o.timeout_ms = 500;
    o.ramp_timeout_s = 1;
    return o;
}

RunOutput run_checked(LoadOptions o) {
    EXPECT_EQ(validate(&o), "");
    return run_load(o, nullptr);
}

RunOutput run_against(const std::string& target, Proto proto) {
    return run_checked(options_for(target, proto));
}

void expect_only(const RunOutput& out, ErrorKind kind) {
    EXPECT_GT(out.stats.errors[size_t(kind)], 0u) << out.doc["errors"].dump();
    for (size_t k = 0; k < out.stats.errors.size(); ++k)
        if (k != size_t(kind)) {
            EXPECT_EQ(out.stats.errors[k], 0u) << out.doc["errors"].dump();
        }
}

struct FaultCase {
    Fault fault;
    ErrorKind expected;
    const char* name;
};
class WrongServerFault : public ::testing::TestWithParam<FaultCase> {};

TEST_P(WrongServerFault, CountedUnderItsKindOnly) {
    const FaultCase& fc = GetParam();
    WrongServer server(fc.fault);
    RunOutput out = run_against(server.target(), is_http(fc.fault) ? Proto::Http : Proto::Mux1);
    ASSERT_EQ(out.error, "");
    expect_only(out, fc.expected);
    EXPECT_EQ(out.stats.requests, 0u);  // nothing wrong was counted as an answer
    // No connection ever had a verified reply, so none was ever ready.
    EXPECT_EQ(out.stats.connections_at_start, 0u);
    EXPECT_FALSE(out.doc["summary"]["completed"].get<bool>());
    EXPECT_FALSE(out.doc["summary"]["clean"].get<bool>());
    EXPECT_EQ(out.doc["errors"][error_kind_name(fc.expected)],
              out.stats.errors[size_t(fc.expected)]);
    bool verification = fc.expected == ErrorKind::Protocol || fc.expected == ErrorKind::Mismatch;
    EXPECT_EQ(out.exit_code, verification ? kExitVerifyFailed : kExitIncomplete);
    EXPECT_EQ(out.stats.first_failure.set, verification);
    if (verification) {
        EXPECT_EQ(out.stats.first_failure.kind, fc.expected);
        EXPECT_NE(out.stats.first_failure.detail.reason, "");
    }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, WrongServerFault,
    ::testing::Values(FaultCase{Fault::BadBytes, ErrorKind::Protocol, "bad_bytes"},
                      FaultCase{Fault::WrongTag, ErrorKind::Mismatch, "wrong_tag"},
                      FaultCase{Fault::WrongPayload, ErrorKind::Mismatch, "wrong_payload"},
                      FaultCase{Fault::BadStatus, ErrorKind::Mismatch, "bad_status"},
                      FaultCase{Fault::EarlyClose, ErrorKind::Reset, "early_close"},
                      FaultCase{Fault::Stall, ErrorKind::Timeout, "stall"},
                      FaultCase{Fault::HttpStatus500, ErrorKind::Mismatch, "http_500"},
                      FaultCase{Fault::HttpNoLength, ErrorKind::Protocol, "http_no_length"},
                      FaultCase{Fault::HttpShortBody, ErrorKind::Reset, "http_short_body"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// With --pipeline 4 a connection that fails loses four requests: each is an error.
RunOutput run_pipelined(Fault fault) {
    WrongServer server(fault);
    LoadOptions o = options_for(server.target(), is_http(fault) ? Proto::Http : Proto::Mux1);
    o.conns = 1;
    o.pipeline = 4;
    o.duration_s = 1.2;  // room for a few 500 ms timeouts
    return run_checked(o);
}

TEST(Drops, ATimeoutCountsEveryRequestInFlight) {
    RunOutput out = run_pipelined(Fault::StallAfterFirst);
    expect_only(out, ErrorKind::Timeout);
    EXPECT_EQ(out.stats.errors[size_t(ErrorKind::Timeout)] % 4, 0u) << out.doc["errors"].dump();
}

TEST(Drops, ATimedOutRequestStaysInTheLatencyFigures) {
    // A request that timed out waited at least --timeout: dropped from the histogram, a
    // server that stalls for longer than --timeout would look faster than one that stalls
    // for less. Each is recorded at (timeout - start), a lower bound, like the requests
    // unfinished at the window's end.
    RunOutput out = run_pipelined(Fault::StallAfterFirst);
    uint64_t timeouts = out.stats.errors[size_t(ErrorKind::Timeout)];
    ASSERT_GT(timeouts, 0u) << out.doc["errors"].dump();
    EXPECT_EQ(out.stats.requests, 0u);
    EXPECT_EQ(out.stats.latency.count(), timeouts + out.stats.unfinished_at_end);
    EXPECT_EQ(out.stats.timeouts_recorded, timeouts);
    EXPECT_EQ(out.doc["summary"]["timeouts_recorded"], timeouts);
    // Detected no sooner than --timeout after the send: by construction, not by a clock.
    EXPECT_GE(out.stats.latency.max_ns(), uint64_t(500'000'000));
    uint64_t series_timed_out = 0, series_requests = 0;
    for (const auto& second : out.doc["timeseries"]) {
        series_timed_out += second["timed_out"].get<uint64_t>();
        series_requests += second["requests"].get<uint64_t>();
    }
    EXPECT_EQ(series_timed_out, timeouts);
    EXPECT_EQ(series_requests, 0u);  // no second shows a timed-out request as an answer
}

TEST(Drops, ARequestNeverAnsweredIsRecordedAtItsAgeWhenTheDrainEnds) {
    // The server stops answering: the requests in flight at the window's end get no reply in
    // the drain either, and are recorded at their age when it ended, a lower bound. The drain
    // lasts --timeout (500 ms, under 1 s), so each is at least that old, by construction.
    RunOutput out = run_pipelined(Fault::StallAfterFirst);
    ASSERT_GT(out.stats.in_flight_at_end, 0u) << out.doc["summary"].dump();
    EXPECT_EQ(out.stats.answered_after_end, 0u);
    const mux::Histogram& last = out.stats.second_latency.back();
    EXPECT_EQ(out.doc["timeseries"].back()["unfinished"], out.stats.in_flight_at_end);
    EXPECT_GE(last.percentile_ns(0.0), uint64_t(500'000'000)) << last.to_json().dump();
}

TEST(Drops, AResetCountsEveryRequestInFlight) {
    RunOutput out = run_pipelined(Fault::CloseAfterFirst);
    expect_only(out, ErrorKind::Reset);
    EXPECT_EQ(out.stats.errors[size_t(ErrorKind::Reset)] % 4, 0u) << out.doc["errors"].dump();
}

TEST(Drops, ConnectionCloseWithRequestsInFlightAbandonsThem) {
    // Each reply says Connection: close; the three requests pipelined behind it are lost.
    RunOutput out = run_pipelined(Fault::HttpCloseEachReply);
    expect_only(out, ErrorKind::Abandoned);
    EXPECT_EQ(out.stats.errors[size_t(ErrorKind::Abandoned)] % 3, 0u) << out.doc["errors"].dump();
    EXPECT_GT(out.stats.requests, 0u);  // the replies that came were verified and counted
    EXPECT_EQ(out.exit_code, kExitIncomplete);
}

TEST(Ramp, AServerSlowToAnswerIsASlowRampNotReconnects) {
    // Every first reply takes 1.5 s, three times --timeout. During the ramp a connection's
    // first reply waits for the ramp's deadline, so nothing times out or reconnects.
    WrongServer server(Fault::SlowFirstReply);
    LoadOptions o = options_for(server.target(), Proto::Mux1);
    o.conns = 4;
    o.ramp_timeout_s = 20;
    RunOutput out = run_checked(o);
    EXPECT_EQ(out.stats.total_errors(), 0u) << out.doc["errors"].dump();
    EXPECT_EQ(out.stats.reconnects, 0u);
    EXPECT_EQ(out.stats.connections_at_start, 4u);
    EXPECT_EQ(server.accepted(), 4u);
    EXPECT_TRUE(out.stats.completed);
    EXPECT_EQ(out.doc["summary"]["ramp_s"], out.doc["summary"]["connect_time_s"]);
}

TEST(Ramp, ConnectionsInProgressAreCappedUntilTheirFirstReply) {
    // A server that accepts but never answers. On loopback every connect completes at once
    // (it only has to enter the accept queue), so a cap on handshakes alone lets all 600
    // in; a connection stays in progress until its first verified reply, and at most 512
    // are in progress at once.
    WrongServer server(Fault::Stall);
    LoadOptions o = options_for(server.target(), Proto::Mux1);
    o.conns = 600;
    o.threads = 2;
    o.ramp_timeout_s = 1.5;
    o.duration_s = 0.1;
    std::atomic<uint64_t> accepted_in_ramp{0};
    std::thread sampler([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // within the ramp
        accepted_in_ramp = server.accepted();
    });
    RunOutput out = run_checked(o);
    sampler.join();
    EXPECT_GT(accepted_in_ramp.load(), 0u);
    EXPECT_LE(accepted_in_ramp.load(), 512u);
    EXPECT_EQ(out.stats.connections_at_start, 0u);
}

TEST(OtherServers, FullVerificationFailsAndShowsTheFirstFailure) {
    // nginx's `return 200 "ok"` at /: muxserver's path, so the body is checked, and is wrong.
    WrongServer server(Fault::HttpOk);
    LoadOptions o = options_for("http://" + server.target().substr(4) + "/", Proto::Http);
    RunOutput out = run_checked(o);
    expect_only(out, ErrorKind::Mismatch);
    EXPECT_EQ(out.exit_code, kExitVerifyFailed);
    ASSERT_TRUE(out.stats.first_failure.set);
    EXPECT_EQ(out.stats.first_failure.detail.reason, "a body of 2 bytes (expected 9)");
    EXPECT_EQ(out.stats.first_failure.detail.expected, "muxbench\\n");
    EXPECT_EQ(out.stats.first_failure.detail.got, "ok");
    EXPECT_EQ(out.doc["summary"]["first_failure"]["got"], "ok");
}

TEST(OtherServers, FramingVerifiesAnyServer) {
    for (auto [fault, path, verify] : {std::tuple{Fault::HttpOk, "/", "framing"},
                                       std::tuple{Fault::HttpChunkedOk, "/hello", ""}}) {
        WrongServer server(fault);
        LoadOptions o = options_for("http://" + server.target().substr(4) + path, Proto::Http);
        o.verify_text = verify;
        RunOutput out = run_checked(o);
        EXPECT_EQ(out.stats.total_errors(), 0u) << out.doc["errors"].dump();
        EXPECT_GT(out.stats.requests, 0u);
        EXPECT_TRUE(out.stats.completed);
        EXPECT_EQ(out.doc["config"]["verify"], "framing");
        EXPECT_EQ(out.doc["config"]["path"], path);
    }
}

TEST(WrongServer, NobodyListeningIsConnectErrorsAndTheRunStillEnds) {
    // Bind a port, then close it: nothing listens there now.
    std::string error;
    int fd = mux::listen_on({mux::Endpoint::Kind::Tcp, "127.0.0.1", 0, ""}, 1, false, &error);
    uint16_t port = mux::bound_port(fd);
    close(fd);
    RunOutput out = run_against("tcp:127.0.0.1:" + std::to_string(port), Proto::Mux1);
    ASSERT_EQ(out.error, "");
    EXPECT_GT(out.stats.errors[size_t(ErrorKind::Connect)], 0u);
    EXPECT_EQ(out.stats.connections_at_start, 0u);
    EXPECT_FALSE(out.stats.completed);
    EXPECT_EQ(out.exit_code, kExitIncomplete);
}

TEST(WrongServer, ServerDyingMidRunIsCountedAndMeasuredWorkIsKept) {
    mux::test::ServerProcess server("epoll-et", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    LoadOptions o;
    o.target_text = server.endpoint().to_string();
    o.conns = 4;
    o.duration_s = 1.0;
    o.warmup_s = 0;
    o.timeout_ms = 200;
    ASSERT_EQ(validate(&o), "");
    std::thread killer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
        server.stop();
    });
    RunOutput out = run_load(o, nullptr);
    killer.join();
    ASSERT_EQ(out.error, "");
    EXPECT_GT(out.stats.requests, 0u);  // what was measured before the death is kept
    EXPECT_GT(
        out.stats.errors[size_t(ErrorKind::Reset)] + out.stats.errors[size_t(ErrorKind::Connect)],
        0u);
    EXPECT_EQ(out.exit_code, kExitIncomplete);
}

}  // namespace
