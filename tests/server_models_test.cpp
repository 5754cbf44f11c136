// Every model x {mux1, http} x {tcp, unix} against concurrent clients whose every reply
// is checked; blocking's one-at-a-time behaviour; unix socket files and SIGTERM; what each
// of the newer models promises (one thread per connection at a time, connections on every
// reactor, short sends, a full buffer ring, a peer that stops reading, refusal).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "models.hpp"
#include "proc_info.hpp"
#include "server_process.hpp"
#include "sole_holder.hpp"
#include "test_client.hpp"

namespace {

using mux::mux1::Op;
using mux::test::Client;
using mux::test::ServerProcess;
using namespace std::chrono_literals;

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
    MUX_ASSERT_STARTED_OR_SKIP(server);
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
    MUX_ASSERT_STARTED_OR_SKIP(server);
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
    MUX_ASSERT_STARTED_OR_SKIP(server);
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

class StopWithOpenConnections : public testing::TestWithParam<std::string> {};

// SIGTERM while connections are still open and idle: the server ends promptly with status 0,
// and its counters hold every request, including those served by threads and fork children
// that were still running. (A fork child outlives the parent's line, ending only when the
// parent has exited, so its connection is not counted closed and closed is not checked for
// fork; its requests are counted, because a child adds its counts before each wait.)
TEST_P(StopWithOpenConnections, CountersExactAndCleanExit) {
    constexpr int kConnections = 5;
    ServerProcess server(GetParam(), "mux1", "tcp");
    MUX_ASSERT_STARTED_OR_SKIP(server);
    std::vector<Client> clients;
    for (int i = 0; i < kConnections; ++i) {
        clients.push_back(Client::connect(server.address()));
        ASSERT_TRUE(clients.back().echo(i, 100 * i));
    }
    auto stats = server.stop();
    EXPECT_TRUE(WIFEXITED(server.exit_status())) << "wait status " << server.exit_status();
    EXPECT_EQ(WEXITSTATUS(server.exit_status()), 0);
    EXPECT_EQ(stats.value("requests", -1), kConnections) << stats.dump();
    EXPECT_EQ(stats.value("accepted", -1), kConnections);
    if (GetParam() != "fork") {
        EXPECT_EQ(stats.value("closed", -1), kConnections);
    }
    EXPECT_EQ(stats.value("resets", -1), 0);
}

std::vector<std::string> models_serving_many_at_once() {
    std::vector<std::string> names;
    for (const auto& name : model_names())
        if (name != "blocking") names.push_back(name);
    return names;
}

INSTANTIATE_TEST_SUITE_P(AllButBlocking, StopWithOpenConnections,
                         testing::ValuesIn(models_serving_many_at_once()),
                         [](const auto& p) { return param_name(p.param); });

// The check behind epoll-oneshot's promise can fail: a second holder aborts.
TEST(SoleHolderDeathTest, SecondHolderAborts) {
    testing::FLAGS_gtest_death_test_style = "threadsafe";
    mux::SoleHolder holder;
    holder.take(7);
    EXPECT_DEATH(holder.take(7), "7 taken by a second thread while held");
    holder.release();
    holder.take(7);  // released, so taking it again is fine
}

// A mux1 request whose handling burns work_us of CPU in the server.
std::string request_with_work(Op op, uint64_t tag, uint32_t payload_len, uint32_t reply_len,
                              uint32_t work_us) {
    std::string bytes = mux::test::mux1_request(op, tag, payload_len, reply_len);
    auto* head = reinterpret_cast<uint8_t*>(bytes.data());
    mux::mux1::Header header = mux::mux1::decode_header(head);
    header.work_us = work_us;
    mux::mux1::encode_header(header, head);
    return bytes;
}

// Pipelined bursts sent in small pieces on several connections, four workers, and some
// requests that keep a worker busy for 300 us while more bytes of the same connection
// arrive: every reply comes back in order, and no connection is ever handled by two workers
// at once (the server's SoleHolder check would abort it, which fails the exit status and the
// counters). Without EPOLLONESHOT the check does fire here: the busy connection, still
// readable, is reported to a second worker.
TEST(EpollOneshotModel, PipelinedRepliesInOrderOneWorkerAtATime) {
    constexpr int kConnections = 8;
    constexpr int kBursts = 10;
    constexpr int kPerBurst = 40;
    for (const char* transport : {"tcp", "unix"}) {
        SCOPED_TRACE(transport);
        ServerProcess server("epoll-oneshot", "mux1", transport, {"--workers", "4"});
        MUX_ASSERT_STARTED_OR_SKIP(server);
        const mux::SocketAddress address = server.address();
        std::vector<std::thread> threads;
        for (int k = 0; k < kConnections; ++k) {
            threads.emplace_back([&, k] {
                Client client = Client::connect(address);
                ASSERT_TRUE(client.valid());
                uint64_t tag = uint64_t(k + 1) << 32;
                for (int burst = 0; burst < kBursts; ++burst) {
                    std::string bytes;
                    const uint64_t first = tag;
                    for (int i = 0; i < kPerBurst; ++i, ++tag) {
                        uint32_t work_us = i % 8 == 0 ? 300 : 0;
                        bytes += i % 3 == 0 ? request_with_work(Op::Gen, tag, 0, 50u * i, work_us)
                                            : request_with_work(Op::Echo, tag, 37u * i, 0, work_us);
                    }
                    // In pieces, so requests straddle reads and arrive while one is handled.
                    for (size_t at = 0; at < bytes.size(); at += 1000)
                        ASSERT_TRUE(client.send_all(std::string_view(bytes).substr(at, 1000)));
                    for (int i = 0; i < kPerBurst; ++i) {
                        auto reply = client.read_mux1();
                        ASSERT_TRUE(reply) << client.last_error();
                        if (i % 3 == 0)
                            ASSERT_TRUE(mux::test::check_mux1_reply(*reply, Op::Gen, first + i, 0,
                                                                    50u * i));
                        else
                            ASSERT_TRUE(
                                mux::test::check_mux1_reply(*reply, Op::Echo, first + i, 37u * i));
                    }
                }
            });
        }
        for (auto& t : threads) t.join();
        auto stats = server.stop();
        ASSERT_TRUE(WIFEXITED(server.exit_status())) << "wait status " << server.exit_status();
        EXPECT_EQ(WEXITSTATUS(server.exit_status()), 0);
        EXPECT_EQ(stats.value("requests", -1), kConnections * kBursts * kPerBurst);
        EXPECT_EQ(stats.value("workers", -1), 4);
        ASSERT_EQ(stats["accepted_by_worker"].size(), 4u) << stats.dump();
        int accepted = 0;
        for (const auto& n : stats["accepted_by_worker"]) accepted += n.get<int>();
        EXPECT_EQ(accepted, kConnections);
    }
}

// The kernel spreads connections over the workers' SO_REUSEPORT listeners by a hash of the
// addresses: 200 connections leave no worker of four without any (a chance of 4 x 0.75^200).
TEST(ReuseportModel, EveryWorkerGetsConnections) {
    constexpr int kConnections = 200;
    ServerProcess server("reuseport", "mux1", "tcp", {"--workers", "4"});
    MUX_ASSERT_STARTED_OR_SKIP(server);
    for (int i = 0; i < kConnections; ++i) {
        Client client = Client::connect(server.address());
        ASSERT_TRUE(client.echo(i, 10)) << "connection " << i;
    }
    auto stats = server.stop();
    EXPECT_EQ(stats.value("workers", -1), 4);
    ASSERT_EQ(stats["accepted_by_worker"].size(), 4u) << stats.dump();
    int accepted = 0;
    for (const auto& n : stats["accepted_by_worker"]) {
        EXPECT_GT(n.get<int>(), 0) << stats.dump();
        accepted += n.get<int>();
    }
    EXPECT_EQ(accepted, kConnections);
    EXPECT_EQ(stats.value("requests", -1), kConnections);
}

// --workers defaults to the CPUs in the server's affinity mask, and is recorded.
TEST(PoolModels, WorkersDefaultToAffinityMask) {
    for (const char* model : {"epoll-oneshot", "reuseport"}) {
        mux::SpawnOptions options;
        options.cpus = {0};
        ServerProcess server(model, "mux1", "tcp", {}, options);
        MUX_ASSERT_STARTED_OR_SKIP(server);
        EXPECT_TRUE(Client::connect(server.address()).echo(1, 10));
        auto stats = server.stop();
        EXPECT_EQ(stats.value("workers", -1), 1) << model;
        EXPECT_EQ(stats["accepted_by_worker"].size(), 1u) << model;
    }
}

// An option a model has no use for is refused, not ignored.
TEST(ModelOptions, MisplacedOptionIsAnError) {
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"--model", "poll", "--workers", "2"},
                                               {"--model", "epoll-oneshot", "--max-threads", "5"},
                                               {"--model", "fork", "--thread-stack-kib", "512"}}) {
        std::vector<std::string> argv{mux::test::binary_path("muxserver"), "--listen",
                                      "tcp:127.0.0.1:0"};
        argv.insert(argv.end(), args.begin(), args.end());
        mux::SpawnOptions options;
        options.quiet_stderr = true;
        mux::Subprocess process(argv, options);
        auto status = process.wait(10s);
        ASSERT_TRUE(status) << args[1] << " still running";
        EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << args[1] << " " << args[2];
    }
}

// Replies far larger than the socket buffer: the first send goes out short and the rest
// follows in later sends, every byte in order. Unix sockets (a ~200 KiB buffer) make a short
// send certain; on TCP it is only checked that everything arrives.
TEST(IoUringModel, ShortSendsCompleteInOrder) {
    for (const char* transport : {"unix", "tcp"}) {
        SCOPED_TRACE(transport);
        ServerProcess server("io-uring", "mux1", transport);
        MUX_ASSERT_STARTED_OR_SKIP(server);
        Client client = Client::connect(server.address());
        constexpr uint32_t kReply = 1u << 20;
        std::string burst;  // requests only 96 bytes: they never wait for the replies' room
        for (uint64_t tag = 1; tag <= 4; ++tag)
            burst += mux::test::mux1_request(Op::Gen, tag, 0, kReply);
        ASSERT_TRUE(client.send_all(burst));
        for (uint64_t tag = 1; tag <= 4; ++tag) {
            auto reply = client.read_mux1();
            ASSERT_TRUE(reply) << client.last_error();
            EXPECT_TRUE(mux::test::check_mux1_reply(*reply, Op::Gen, tag, 0, kReply));
        }
        EXPECT_TRUE(client.echo(5, kReply - 100));
        client.close();
        auto stats = server.stop();
        EXPECT_EQ(stats.value("requests", -1), 5);
        if (std::string(transport) == "unix") {
            EXPECT_GT(stats.value("short_sends", 0), 0);
        }
    }
}

// More bytes arrive at once than the provided-buffer ring holds (here 8 x 4 KiB): the server
// is stopped (SIGSTOP) while 20 connections each send 32 KiB, so on SIGCONT a receive takes
// the last buffer with bytes still waiting, ends with ENOBUFS, and is armed again. Nothing is
// lost. (The kernel processes at most a few connections' receives per io_uring_enter, so the
// default 1024 buffers are hard to exhaust on purpose.)
TEST(IoUringModel, BufferRingExhaustedReceivesRearmedNothingLost) {
    constexpr int kConnections = 20;
    constexpr uint32_t kPayload = 32 * 1024;
    ServerProcess server("io-uring", "mux1", "tcp", {"--io-uring-buffers", "8"});
    MUX_ASSERT_STARTED_OR_SKIP(server);
    std::vector<Client> clients;
    for (int i = 0; i < kConnections; ++i) {
        clients.push_back(Client::connect(server.address()));
        ASSERT_TRUE(clients.back().echo(i, 1)) << i;  // accepted, its receive armed
    }
    ASSERT_EQ(kill(server.pid(), SIGSTOP), 0);
    for (int i = 0; i < kConnections; ++i)
        ASSERT_TRUE(clients[i].send_all(mux::test::mux1_request(Op::Echo, 1000 + i, kPayload)));
    ASSERT_EQ(kill(server.pid(), SIGCONT), 0);
    for (int i = 0; i < kConnections; ++i) {
        auto reply = clients[i].read_mux1();
        ASSERT_TRUE(reply) << i << ": " << clients[i].last_error();
        EXPECT_TRUE(mux::test::check_mux1_reply(*reply, Op::Echo, 1000 + i, kPayload));
    }
    clients.clear();
    auto stats = server.stop();
    EXPECT_EQ(stats.value("requests", -1), 2 * kConnections);
    EXPECT_GT(stats.value("recv_no_buffers", 0), 0) << stats.dump();
    EXPECT_GT(stats.value("recv_rearms", 0), 0) << stats.dump();
    EXPECT_EQ(stats.value("resets", -1), 0);
}

// Where the kernel refuses io_uring (here a seccomp filter, as Docker's default profile
// installs), muxserver says why in a JSON line and exits with its own status, 69.
TEST(IoUringModel, RefusedKernelGivesReasonAndStatus) {
    ServerProcess server("io-uring", "mux1", "tcp", {}, {},
                         {mux::test::binary_path("deny_io_uring")});
    ASSERT_FALSE(server.started());
    const auto& refusal = server.refusal();
    ASSERT_FALSE(refusal.is_null()) << server.error();
    EXPECT_EQ(refusal.value("event", ""), "refused");
    EXPECT_EQ(refusal.value("model", ""), "io-uring");
    EXPECT_EQ(refusal.value("reason", ""), "io_uring_unavailable");
    EXPECT_EQ(refusal.value("errno", 0), EPERM);
    server.stop();
    EXPECT_TRUE(WIFEXITED(server.exit_status()));
    EXPECT_EQ(WEXITSTATUS(server.exit_status()), mux::kExitModelUnavailable);
}

class PeerStopsReading : public testing::TestWithParam<std::tuple<std::string, std::string>> {};

// Blocking send of all of bytes on fd, without the Client's state (another thread reads it).
bool send_raw(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

// A client sends 128 MiB of echo requests on one thread and reads nothing for a while. The
// server answers up to its high-water mark and then stops taking requests in, so its resident
// memory stays far below what was sent and asked for, and the client's sends wait in the
// socket; another client is served meanwhile; once the first reads, every reply arrives in
// order. (A fork child's memory is its own, so for fork only the rest is checked.)
TEST_P(PeerStopsReading, InputAndOutputBoundedOthersServedAllRepliesInOrder) {
    const auto& [model, transport] = GetParam();
    constexpr int kRequests = 2048;
    constexpr uint32_t kPayload = 64 * 1024;
    ServerProcess server(model, "mux1", transport);
    MUX_ASSERT_STARTED_OR_SKIP(server);
    {
        Client warm = Client::connect(server.address());
        ASSERT_TRUE(warm.echo(1, kPayload));
    }
    const auto resident_before = mux::test::vm_hwm_kib(server.pid());
    Client greedy = Client::connect(server.address());
    std::thread sender([&, fd = greedy.fd()] {
        for (int i = 0; i < kRequests; ++i)
            if (!send_raw(fd, mux::test::mux1_request(Op::Echo, i, kPayload))) return;
    });
    Client other = Client::connect(server.address());
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(other.echo(100000 + i, 500));
    std::this_thread::sleep_for(300ms);  // lets the server take in what it will; asserts nothing
    const auto resident_stalled = mux::test::vm_hwm_kib(server.pid());
    bool read_all = true;
    for (int i = 0; i < kRequests && read_all; ++i) {
        auto reply = greedy.read_mux1();
        read_all = reply && mux::test::check_mux1_reply(*reply, Op::Echo, i, kPayload);
        EXPECT_TRUE(read_all) << "reply " << i << ": " << greedy.last_error();
    }
    if (!read_all) greedy.reset();  // unblocks the sender
    sender.join();
    ASSERT_TRUE(resident_before && resident_stalled);
    if (model != "fork") {
        EXPECT_LT(*resident_stalled - *resident_before, uint64_t{32 * 1024})
            << "resident set grew by " << (*resident_stalled - *resident_before)
            << " KiB while a peer sent 128 MiB of requests and read none of the replies";
    }
    greedy.close();
    other.close();
    auto stats = server.stop();
    EXPECT_EQ(stats.value("requests", -1), 1 + kRequests + 3);
}

INSTANTIATE_TEST_SUITE_P(AllButBlocking, PeerStopsReading,
                         testing::Combine(testing::ValuesIn(models_serving_many_at_once()),
                                          testing::Values("tcp", "unix")),
                         [](const auto& p) {
                             return param_name(std::get<0>(p.param) + "_" + std::get<1>(p.param));
                         });

}  // namespace
