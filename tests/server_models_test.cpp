// Every model x {mux1, http} x {tcp, unix} against concurrent clients whose every reply
// is checked; blocking's one-at-a-time behaviour; unix socket files and SIGTERM.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "models.hpp"
#include "server_process.hpp"
#include "test_client.hpp"

namespace {

using mux::mux1::Op;
using mux::test::Client;
using mux::test::ServerProcess;

std::vector<std::string> model_names() {
    std::vector<std::string> names;
    for (const auto& m : mux::all_models()) names.emplace_back(m.name);
    return names;
}

std::string param_name(std::string s) {
    for (char& c : s)
        if (c == '-') c = '_';
    return s;
}

constexpr int kClients = 4;
constexpr int kPipelined = 8;
constexpr uint32_t kEchoSizes[] = {0, 1, 13, 1000, 70000};  // 70000: over the 64 KiB read chunk
constexpr uint32_t kGenSizes[] = {0, 1, 4096, 100000};
constexpr int kHeldBack = 8;
constexpr uint32_t kHeldBackReply = 100000;

// One mux1 connection: sequential echo/gen of several sizes, then a pipelined burst whose
// replies must come back in order. Returns the number of requests sent.
int mux1_client(const mux::SocketAddress& address, uint64_t id) {
    Client client = Client::connect(address);
    EXPECT_TRUE(client.valid());
    if (!client.valid()) return 0;
    int sent = 0;
    for (uint32_t len : kEchoSizes) EXPECT_TRUE(client.echo(id << 32 | sent++, len));
    for (uint32_t len : kGenSizes) EXPECT_TRUE(client.gen(id << 32 | sent++, len));
    std::string burst;
    const int first = sent;
    for (int i = 0; i < kPipelined; ++i) {
        uint64_t tag = id << 32 | sent++;
        burst += i % 2 == 0 ? mux::test::mux1_request(Op::Echo, tag, 100u * i)
                            : mux::test::mux1_request(Op::Gen, tag, 0, 300u * i);
    }
    EXPECT_TRUE(client.send_all(burst)) << client.last_error();
    for (int i = 0; i < kPipelined; ++i) {
        auto reply = client.read_mux1();
        if (!reply) {
            ADD_FAILURE() << "pipelined reply " << i << ": " << client.last_error();
            break;
        }
        uint64_t tag = id << 32 | (first + i);
        if (i % 2 == 0)
            EXPECT_TRUE(mux::test::check_mux1_reply(*reply, Op::Echo, tag, 100u * i));
        else
            EXPECT_TRUE(mux::test::check_mux1_reply(*reply, Op::Gen, tag, 0, 300u * i));
    }
    // Replies well past the handler's 256 KiB output high-water mark, then the FIN: requests
    // held back until the output drains are still answered, all of them, before the close.
    std::string held_back;
    const int first_held = sent;
    for (int i = 0; i < kHeldBack; ++i)
        held_back += mux::test::mux1_request(Op::Gen, id << 32 | sent++, 0, kHeldBackReply);
    EXPECT_TRUE(client.send_all(held_back)) << client.last_error();
    client.shutdown_write();
    for (int i = 0; i < kHeldBack; ++i) {
        auto reply = client.read_mux1();
        if (!reply) {
            ADD_FAILURE() << "held-back reply " << i << ": " << client.last_error();
            return sent;
        }
        uint64_t tag = id << 32 | (first_held + i);
        EXPECT_TRUE(mux::test::check_mux1_reply(*reply, Op::Gen, tag, 0, kHeldBackReply));
    }
    EXPECT_TRUE(client.expect_closed());
    return sent;
}

// Two http connections: keep-alive GETs, a pipelined burst and an HTTP/1.0 request that
// ends the first; HTTP/1.0 keep-alive then "Connection: close" on the second.
int http_client(const mux::SocketAddress& address) {
    int sent = 0;
    {
        Client client = Client::connect(address);
        EXPECT_TRUE(client.valid());
        if (!client.valid()) return 0;
        for (const char* target : {"/", "/bytes/0", "/bytes/1", "/bytes/1000", "/bytes/100000"}) {
            EXPECT_TRUE(client.get(target));
            ++sent;
        }
        const std::vector<std::string> piped = {"/bytes/5", "/", "/bytes/3000", "/bytes/0", "/"};
        std::string burst;
        for (const auto& target : piped) burst += mux::test::http_get(target);
        EXPECT_TRUE(client.send_all(burst));
        for (const auto& target : piped) {
            auto reply = client.read_http();
            EXPECT_TRUE(reply) << client.last_error();
            if (reply) {
                EXPECT_TRUE(mux::test::check_http_reply(*reply, target));
            }
            ++sent;
        }
        EXPECT_TRUE(client.send_all(mux::test::http_get("/bytes/10", 0)));
        auto reply = client.read_http();
        EXPECT_TRUE(reply && mux::test::check_http_reply(*reply, "/bytes/10"));
        EXPECT_TRUE(reply && !reply->head.keep_alive && reply->head.minor_version == 0);
        EXPECT_TRUE(client.expect_closed());
        ++sent;
    }
    Client client = Client::connect(address);
    EXPECT_TRUE(client.valid());
    EXPECT_TRUE(client.send_all(mux::test::http_get("/", 0, "keep-alive")));
    auto kept = client.read_http();
    EXPECT_TRUE(kept && mux::test::check_http_reply(*kept, "/") && kept->head.keep_alive);
    EXPECT_TRUE(client.send_all(mux::test::http_get("/bytes/20", 1, "close")));
    auto last = client.read_http();
    EXPECT_TRUE(last && mux::test::check_http_reply(*last, "/bytes/20") && !last->head.keep_alive);
    EXPECT_TRUE(client.expect_closed());
    return sent + 2;
}

using MatrixParam = std::tuple<std::string, std::string, std::string>;  // model, proto, transport
class ServerMatrix : public testing::TestWithParam<MatrixParam> {};

// Clients run concurrently. Each one closes when it is done, so the blocking model, which
// serves one connection at a time, serves them one after another.
TEST_P(ServerMatrix, ConcurrentClientsGetCheckedReplies) {
    const auto& [model, proto, transport] = GetParam();
    ServerProcess server(model, proto, transport);
    ASSERT_TRUE(server.started()) << server.error();
    const mux::SocketAddress address = server.address();
    std::vector<int> sent(kClients, 0);
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i) {
        threads.emplace_back([&, i] {
            sent[i] = proto == "mux1" ? mux1_client(address, i + 1) : http_client(address);
        });
    }
    for (auto& t : threads) t.join();
    int total = 0;
    for (int n : sent) total += n;
    auto stats = server.stop();
    EXPECT_EQ(stats.value("requests", -1), total);
    EXPECT_EQ(stats.value("accepted", -1), proto == "mux1" ? kClients : 2 * kClients);
    EXPECT_EQ(stats.value("protocol_errors", -1), 0);
    EXPECT_EQ(stats.value("resets", -1), 0);
}

INSTANTIATE_TEST_SUITE_P(AllModels, ServerMatrix,
                         testing::Combine(testing::ValuesIn(mux::test::test_models()),
                                          testing::Values("mux1", "http"),
                                          testing::Values("tcp", "unix")),
                         [](const auto& p) {
                             return mux::test::test_name(std::get<0>(p.param) + "_" +
                                                         std::get<1>(p.param) + "_" +
                                                         std::get<2>(p.param));
                         });

class BlockingModel : public testing::TestWithParam<std::string> {};

// While one connection is open, a second one's request stays unanswered; it is answered
// once the first closes. The short poll only observes "not yet": it bounds nothing.
TEST_P(BlockingModel, SecondConnectionWaitsUntilFirstCloses) {
    ServerProcess server("blocking", "mux1", GetParam());
    ASSERT_TRUE(server.started()) << server.error();
    Client first = Client::connect(server.address());
    ASSERT_TRUE(first.valid());
    ASSERT_TRUE(first.echo(1, 10));
    Client second = Client::connect(server.address());
    ASSERT_TRUE(second.valid());
    ASSERT_TRUE(second.send_all(mux::test::mux1_request(Op::Echo, 2, 10)));
    EXPECT_FALSE(second.readable_within(std::chrono::milliseconds(300)));
    EXPECT_TRUE(first.echo(3, 10));  // the first connection is still the one being served
    EXPECT_FALSE(second.readable_within(std::chrono::milliseconds(0)));
    first.close();
    auto reply = second.read_mux1();
    ASSERT_TRUE(reply) << second.last_error();
    EXPECT_TRUE(mux::test::check_mux1_reply(*reply, Op::Echo, 2, 10));
    second.close();
    auto stats = server.stop();
    EXPECT_EQ(stats.value("accepted", -1), 2);
    EXPECT_EQ(stats.value("requests", -1), 3);
}

INSTANTIATE_TEST_SUITE_P(Transports, BlockingModel, testing::Values("tcp", "unix"));

class UnixLifecycle : public testing::TestWithParam<std::string> {};

// A socket file left by a dead server is replaced at start and removed on SIGTERM, which
// ends the server with status 0 and a counters line that matches what was sent.
TEST_P(UnixLifecycle, StaleFileReplacedRemovedAtExitCleanSigterm) {
    const std::string path =
        (std::filesystem::temp_directory_path() /
         ("muxtest-stale-" + std::to_string(getpid()) + "-" + param_name(GetParam()) + ".sock"))
            .string();
    {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        path.copy(addr.sun_path, sizeof addr.sun_path - 1);
        unlink(path.c_str());
        ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        close(fd);  // leaves the file behind, with nobody listening on it
    }
    struct stat st {};
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    ASSERT_TRUE(S_ISSOCK(st.st_mode));

    ServerProcess server(GetParam(), "mux1", "unix:" + path);
    ASSERT_TRUE(server.started()) << server.error();
    constexpr int kRequests = 5;
    {
        Client client = Client::connect(server.address());
        ASSERT_TRUE(client.valid());
        for (int i = 0; i < kRequests; ++i) EXPECT_TRUE(client.echo(100 + i, 64));
    }
    auto stats = server.stop();
    EXPECT_TRUE(WIFEXITED(server.exit_status())) << "wait status " << server.exit_status();
    EXPECT_EQ(WEXITSTATUS(server.exit_status()), 0);
    EXPECT_EQ(stats.value("event", ""), "stats");
    EXPECT_EQ(stats.value("model", ""), GetParam());
    EXPECT_EQ(stats.value("requests", -1), kRequests);
    EXPECT_NE(lstat(path.c_str(), &st), 0) << path << " still exists after exit";
    unlink(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(AllModels, UnixLifecycle, testing::ValuesIn(model_names()),
                         [](const auto& p) { return param_name(p.param); });

}  // namespace
