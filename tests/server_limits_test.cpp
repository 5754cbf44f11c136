// The models at their limits: 2,000 simultaneous connections, select's 1024 wall, running
// out of fds, fork's children being reaped, and threads that cannot be created.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "proc_info.hpp"
#include "server_process.hpp"
#include "test_client.hpp"

namespace {

using mux::mux1::Op;
using mux::test::Client;
using mux::test::ServerProcess;
using namespace std::chrono_literals;

std::string param_name(std::string s) {
    for (char& c : s)
        if (c == '-') c = '_';
    return s;
}

std::vector<Client> open_clients(const mux::SocketAddress& address, int count) {
    std::vector<Client> clients;
    clients.reserve(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
        std::string error;
        clients.push_back(Client::connect(address, &error));
        if (!clients.back().valid()) {
            ADD_FAILURE() << "connection " << i << " of " << count << ": " << error;
            clients.pop_back();
            break;
        }
    }
    return clients;
}

// Sends one ECHO (tag = index) on every client, then reads every reply. A client whose
// connection the server closed instead is recorded in shed. Wrong replies fail the test.
struct Outcome {
    std::vector<size_t> served;
    std::vector<size_t> shed;
};
Outcome echo_on_each(std::vector<Client>& clients, uint64_t tag_base = 0) {
    for (size_t i = 0; i < clients.size(); ++i)
        clients[i].send_all(
            mux::test::mux1_request(Op::Echo, tag_base + i, 16));  // may hit a reset
    Outcome outcome;
    for (size_t i = 0; i < clients.size(); ++i) {
        auto reply = clients[i].read_mux1();
        if (reply) {
            EXPECT_TRUE(mux::test::check_mux1_reply(*reply, Op::Echo, tag_base + i, 16));
            outcome.served.push_back(i);
        } else {
            EXPECT_EQ(clients[i].last_error().find("timed out"), std::string::npos)
                << "connection " << i << " neither answered nor closed";
            outcome.shed.push_back(i);
        }
    }
    return outcome;
}

// Connections are accepted in the order they were made and no server fd is freed while
// they stay open, so the served ones must be a prefix and the shed ones the rest. Not so for
// reuseport, whose workers accept from listeners of their own, side by side.
void expect_served_prefix(const std::string& model, const Outcome& outcome) {
    if (model == "reuseport") return;
    for (size_t k = 0; k < outcome.served.size(); ++k) ASSERT_EQ(outcome.served[k], k);
}

class HoldsManyConnections : public testing::TestWithParam<std::string> {};

TEST_P(HoldsManyConnections, TwoThousandAllServed) {
    constexpr int kConnections = 2000;
    ASSERT_GE(mux::raise_fd_limit(), uint64_t{kConnections + 100});
    ServerProcess server(GetParam(), "mux1", "tcp");
    MUX_ASSERT_STARTED_OR_SKIP(server);
    std::vector<Client> clients = open_clients(server.address(), kConnections);
    ASSERT_EQ(clients.size(), size_t{kConnections});
    Outcome outcome = echo_on_each(clients);
    EXPECT_EQ(outcome.served.size(), size_t{kConnections});
    EXPECT_TRUE(outcome.shed.empty()) << outcome.shed.size() << " connections were closed";
    clients.clear();
    mux::test::wait_for_no_children(server.pid(), 10s);
    auto stats = server.stop();
    EXPECT_EQ(stats.value("accepted", -1), kConnections);
    EXPECT_EQ(stats.value("requests", -1), kConnections);
    EXPECT_EQ(stats["rejected"].value("fd_limit", -1), 0);
}

INSTANTIATE_TEST_SUITE_P(Models, HoldsManyConnections,
                         testing::Values("poll", "epoll-lt", "epoll-et", "epoll-et/eagain", "fork",
                                         "threads", "epoll-oneshot", "reuseport", "io-uring"),
                         [](const auto& p) { return mux::test::test_name(p.param); });

// Connections whose server fd would be >= FD_SETSIZE are closed at once and counted; the
// ones below keep being served, and a fresh connection is served once room is made.
TEST(SelectModel, PastFdSetsizeRefusesTheRestServesTheFirst) {
    constexpr int kConnections = 1100;
    ASSERT_GE(mux::raise_fd_limit(), uint64_t{kConnections + 100});
    ServerProcess server("select", "mux1", "tcp");
    MUX_ASSERT_STARTED_OR_SKIP(server);
    std::vector<Client> clients = open_clients(server.address(), kConnections);
    ASSERT_EQ(clients.size(), size_t{kConnections});
    Outcome outcome = echo_on_each(clients);
    EXPECT_FALSE(outcome.shed.empty());
    EXPECT_LE(outcome.served.size(), size_t{FD_SETSIZE});
    EXPECT_GE(outcome.served.size(), size_t{FD_SETSIZE - 64}) << "too few served below the wall";
    expect_served_prefix("select", outcome);
    // The ones under the wall are still served after the refusals.
    for (size_t k = 0; k < 10 && k < outcome.served.size(); ++k)
        EXPECT_TRUE(clients[outcome.served[k]].gen(5000 + k, 333));
    for (size_t k = 0; k < 10; ++k) clients[outcome.served[k]].close();
    // select reports those EOFs in the same call as this request, so once it is answered
    // their fds are free and the next connection lands below the wall.
    EXPECT_TRUE(clients[outcome.served[10]].echo(7777, 10));
    Client fresh = Client::connect(server.address());
    EXPECT_TRUE(fresh.echo(9999, 100));
    fresh.close();
    clients.clear();
    auto stats = server.stop();
    const auto shed = static_cast<int64_t>(outcome.shed.size());
    const auto served = static_cast<int64_t>(outcome.served.size());
    EXPECT_EQ(stats["rejected"].value("fd_setsize", int64_t{-1}), shed);
    EXPECT_EQ(stats.value("accepted", int64_t{-1}), kConnections + 1);
    EXPECT_EQ(stats.value("requests", int64_t{-1}), served + 10 + 2);
}

class RunsOutOfFds : public testing::TestWithParam<std::string> {};

// With a 64-fd limit the server keeps the connections it has, sheds the rest, and does
// not spin on EMFILE. The CPU bound catches a busy loop (a full core); it is not a
// performance figure. Not run for nonblocking, which spins by design, nor for blocking
// and fork, which hold one connection fd at a time in the accepting process. (io-uring's
// multishot accept fails at once at the fd limit, pending connection or not: this is where
// it must wait on a poll instead of re-arming.)
TEST_P(RunsOutOfFds, KeepsServingShedsNewDoesNotSpin) {
    constexpr uint64_t kFdLimit = 64;
    constexpr int kConnections = 100;
    constexpr int kOverload = 100;
    mux::SpawnOptions options;
    options.fd_hard_limit = kFdLimit;
    ServerProcess server(GetParam(), "mux1", "tcp", {}, options);
    MUX_ASSERT_STARTED_OR_SKIP(server);
    std::vector<Client> clients = open_clients(server.address(), kConnections);
    ASSERT_EQ(clients.size(), size_t{kConnections});
    Outcome first = echo_on_each(clients);
    ASSERT_FALSE(first.served.empty());
    ASSERT_FALSE(first.shed.empty()) << "the server never reached its fd limit";
    EXPECT_LT(first.served.size(), size_t{kFdLimit});
    expect_served_prefix(GetParam(), first);

    // About a second of overload: new connections keep arriving at a full server.
    const long ticks_per_s = sysconf(_SC_CLK_TCK);
    auto cpu_before = mux::test::cpu_ticks(server.pid());
    auto wall_before = std::chrono::steady_clock::now();
    std::vector<Client> overload;
    for (int i = 0; i < kOverload; ++i) {
        overload.push_back(Client::connect(server.address()));
        std::this_thread::sleep_for(10ms);
    }
    auto cpu_after = mux::test::cpu_ticks(server.pid());
    double wall_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
    ASSERT_TRUE(cpu_before && cpu_after);
    double cpu_s = static_cast<double>(*cpu_after - *cpu_before) / static_cast<double>(ticks_per_s);
    EXPECT_LT(cpu_s, 0.5 * wall_s) << "server used " << cpu_s << " s of CPU in " << wall_s
                                   << " s while at its fd limit: a busy loop";
    for (auto& c : overload) EXPECT_TRUE(c.valid() && c.expect_closed());

    // The connections it kept are still served.
    std::vector<Client> kept;
    for (size_t i : first.served) kept.push_back(std::move(clients[i]));
    Outcome again = echo_on_each(kept, 10000);
    EXPECT_EQ(again.served.size(), first.served.size());
    kept.clear();
    clients.clear();
    overload.clear();
    auto stats = server.stop();
    const auto shed_total = static_cast<int64_t>(first.shed.size() + kOverload);
    EXPECT_EQ(stats["rejected"].value("fd_limit", int64_t{-1}), shed_total);
    EXPECT_EQ(stats.value("requests", int64_t{-1}), static_cast<int64_t>(2 * first.served.size()));
}

INSTANTIATE_TEST_SUITE_P(Models, RunsOutOfFds,
                         testing::Values("select", "poll", "epoll-lt", "epoll-et", "threads",
                                         "epoll-oneshot", "reuseport", "io-uring"),
                         [](const auto& p) { return param_name(p.param); });

// Each connection gets a child; once the clients close, every child exits and is reaped.
TEST(ForkModel, ChildrenAreReapedAfterClientsClose) {
    constexpr int kConnections = 20;
    ServerProcess server("fork", "mux1", "tcp");
    MUX_ASSERT_STARTED_OR_SKIP(server);
    std::vector<Client> clients = open_clients(server.address(), kConnections);
    ASSERT_EQ(clients.size(), size_t{kConnections});
    Outcome outcome = echo_on_each(clients);
    ASSERT_EQ(outcome.served.size(), size_t{kConnections});
    // Every connection has been answered, so each has its own live child now.
    EXPECT_EQ(mux::test::child_pids(server.pid()).size(), size_t{kConnections});
    clients.clear();
    auto left = mux::test::wait_for_no_children(server.pid(), 5s);
    EXPECT_TRUE(left.empty()) << left.size()
                              << " children (zombies included) outlived their connection";
    auto stats = server.stop();
    EXPECT_EQ(stats.value("requests", -1), kConnections);
    EXPECT_EQ(stats.value("closed", -1), kConnections);
}

// A connection that gets no thread (here --max-threads 3 stands in for the kernel's limits)
// is closed at once and counted; the threads already running keep serving, and a new
// connection is served again once a thread has ended.
TEST(ThreadsModel, NoThreadRejectsCountsAndServingGoesOn) {
    ServerProcess server("threads", "mux1", "tcp", {"--max-threads", "3"});
    MUX_ASSERT_STARTED_OR_SKIP(server);
    std::vector<Client> kept = open_clients(server.address(), 3);
    ASSERT_EQ(kept.size(), 3u);
    for (size_t i = 0; i < kept.size(); ++i) ASSERT_TRUE(kept[i].echo(i, 10));
    for (int i = 0; i < 3; ++i) {
        Client refused = Client::connect(server.address());
        ASSERT_TRUE(refused.valid());
        EXPECT_TRUE(refused.expect_closed()) << "connection " << i << " past the cap";
    }
    for (size_t i = 0; i < kept.size(); ++i) EXPECT_TRUE(kept[i].gen(10 + i, 1000));
    kept[0].close();
    // The closed connection's thread ends on its own time: retry until one is accepted.
    int rejected_while_waiting = 0;
    bool served = false;
    for (int attempt = 0; attempt < 100 && !served; ++attempt) {
        Client again = Client::connect(server.address());
        if (again.echo(99, 10)) {
            served = true;
        } else {
            ++rejected_while_waiting;
            std::this_thread::sleep_for(20ms);
        }
    }
    EXPECT_TRUE(served);
    kept.clear();
    auto stats = server.stop();
    EXPECT_EQ(stats["rejected"].value("thread_failed", -1), 3 + rejected_while_waiting)
        << stats.dump();
    EXPECT_EQ(stats.value("requests", -1), 3 + 3 + 1);
    EXPECT_EQ(stats.value("max_threads", -1), 3);
    EXPECT_EQ(stats.value("thread_stack_bytes", -1), 256 * 1024);
}

}  // namespace
