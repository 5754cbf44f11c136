// A deliberately wrong server, written here, and the error kind each of its faults must be
// counted under. Also: a dead server and one that dies mid-run; the run always ends.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
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
    BadBytes,
    WrongTag,
    WrongPayload,
    BadStatus,
    EarlyClose,
    Stall,
    HttpStatus500,
    HttpNoLength,
    HttpShortBody
};

// Answers every request wrongly, in one way. One thread, poll(), bounded by stop().
class WrongServer {
  public:
    explicit WrongServer(Fault fault) : fault_(fault) {
        std::string error;
        mux::Endpoint ep{mux::Endpoint::Kind::Tcp, "127.0.0.1", 0, ""};
        listen_fd_ = mux::listen_on(ep, 128, true, &error);
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

  private:
    struct Client {
        int fd;
        std::vector<uint8_t> in;
        bool done = false;
    };

    void loop() {
        while (!stop_) {
            std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
            for (auto& c : clients_) fds.push_back({c.fd, short(c.done ? 0 : POLLIN), 0});
            if (poll(fds.data(), fds.size(), 20) <= 0) continue;
            if (fds[0].revents & POLLIN) {
                int fd;
                while ((fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0)
                    clients_.push_back({fd, {}});
            }
            for (size_t i = 1; i < fds.size() && i - 1 < clients_.size(); ++i)
                if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) serve(clients_[i - 1]);
            std::erase_if(clients_, [](const Client& c) {
                if (c.fd < 0) return true;
                return false;
            });
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
        bool is_http = fault_ >= Fault::HttpStatus500;
        if (is_http) {
            mux::http::Request req;
            auto len = mux::http::parse_request(reinterpret_cast<const char*>(c.in.data()),
                                                c.in.size(), &req);
            if (len <= 0) return;
            c.in.erase(c.in.begin(), c.in.begin() + len);
            answer_http(c);
            return;
        }
        mux::mux1::Header h;
        auto len = mux::mux1::parse_frame(c.in.data(), c.in.size(), 1 << 20, &h);
        if (len <= 0) return;
        std::vector<uint8_t> payload(c.in.begin() + mux::mux1::kHeaderSize, c.in.begin() + len);
        c.in.erase(c.in.begin(), c.in.begin() + len);
        answer_mux1(c, h, payload);
    }

    void send_all(int fd, const void* data, size_t len) {
        (void)!send(fd, data, len, MSG_NOSIGNAL);
    }

    void answer_mux1(Client& c, mux::mux1::Header h, std::vector<uint8_t> payload) {
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
                close(c.fd);
                c.fd = -1;
                return;
            case Fault::Stall:
                c.done = true;
                return;  // never answers, never closes
            default:
                break;
        }
        uint8_t head[mux::mux1::kHeaderSize];
        mux::mux1::encode_header(h, head);
        send_all(c.fd, head, sizeof head);
        send_all(c.fd, payload.data(), payload.size());
    }

    void answer_http(Client& c) {
        std::string reply;
        if (fault_ == Fault::HttpStatus500)
            reply = "HTTP/1.1 500 Oops\r\nContent-Length: 9\r\n\r\nmuxbench\n";
        else if (fault_ == Fault::HttpNoLength)
            reply = "HTTP/1.1 200 OK\r\n\r\nmuxbench\n";
        else
            reply = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nmuxbench";  // then closes
        send_all(c.fd, reply.data(), reply.size());
        if (fault_ == Fault::HttpShortBody) {
            close(c.fd);
            c.fd = -1;
        }
    }

    Fault fault_;
    int listen_fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::vector<Client> clients_;
    std::thread thread_;
};

RunOutput run_against(const std::string& target, Proto proto) {
    LoadOptions o;
    o.target_text = target;
    o.proto = proto;
    o.conns = 2;
    o.duration_s = 0.4;
    o.warmup_s = 0;
    o.timeout_ms = 100;
    o.ramp_timeout_s = 1;
    EXPECT_EQ(validate(&o), "");
    return run_load(o, nullptr);
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
    Proto proto = fc.fault >= Fault::HttpStatus500 ? Proto::Http : Proto::Mux1;
    RunOutput out = run_against(server.target(), proto);
    ASSERT_EQ(out.error, "");
    auto kind = static_cast<size_t>(fc.expected);
    EXPECT_GT(out.stats.errors[kind], 0u) << out.doc["errors"].dump();
    for (size_t k = 0; k < out.stats.errors.size(); ++k)
        if (k != kind) {
            EXPECT_EQ(out.stats.errors[k], 0u) << out.doc["errors"].dump();
        }
    EXPECT_EQ(out.stats.requests, 0u);  // nothing wrong was counted as an answer
    EXPECT_EQ(out.exit_code, kExitIncomplete);
    EXPECT_FALSE(out.doc["summary"]["completed"].get<bool>());
    EXPECT_EQ(out.doc["errors"][error_kind_name(fc.expected)], out.stats.errors[kind]);
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
