// The models as production servers write them (issue 17), shown by what the kernel counts:
// fork's idle children sleep, its children end with it and a failed fork sheds one
// connection. Counts only: nothing here is timed.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kernel_counts.hpp"
#include "proc_info.hpp"
#include "server_process.hpp"
#include "test_client.hpp"

namespace {

using mux::test::Client;
using mux::test::ServerProcess;
using namespace std::chrono_literals;

// A field of /proc/PID/status ("voluntary_ctxt_switches"), or nullopt when the process is gone.
std::optional<uint64_t> status_field(pid_t pid, const std::string& name) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(name + ":")) return std::stoull(line.substr(name.size() + 1));
    return std::nullopt;
}

// The child that serves the connection accepted last: the one child not in before.
pid_t new_child(pid_t server, const std::vector<pid_t>& before) {
    for (pid_t pid : mux::test::child_pids(server))
        if (std::find(before.begin(), before.end(), pid) == before.end()) return pid;
    return -1;
}

// An idle fork child blocks in recv with no timeout: over a second (four times the stop-check
// period the listener's timeout has) it is not woken at all.
TEST(ForkModel, IdleChildMakesNoVoluntaryContextSwitch) {
    ServerProcess server("fork", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    // A connection takes the listener's options when its handshake completes, which may be
    // before the model has set them up: so the one observed is made once a first was served.
    {
        Client first = Client::connect(server.address());
        ASSERT_TRUE(first.echo(1, 16));
    }
    ASSERT_TRUE(mux::test::wait_for_no_children(server.pid(), 10s).empty());
    Client client = Client::connect(server.address());
    ASSERT_TRUE(client.echo(2, 16));
    pid_t child = new_child(server.pid(), {});
    ASSERT_GT(child, 0);
    // The reply may arrive before the child is back asleep: wait for its count to settle.
    std::optional<uint64_t> before = status_field(child, "voluntary_ctxt_switches");
    for (int i = 0; i < 100; ++i) {
        std::this_thread::sleep_for(50ms);
        auto now = status_field(child, "voluntary_ctxt_switches");
        if (now == before) break;
        before = now;
    }
    ASSERT_TRUE(before);
    std::this_thread::sleep_for(1s);
    auto after = status_field(child, "voluntary_ctxt_switches");
    ASSERT_TRUE(after);
    EXPECT_EQ(*after, *before) << "an idle child woke " << (*after - *before)
                               << " times in a second";
    EXPECT_TRUE(client.echo(3, 16));  // and it still serves
}

class ForkChildrenEnd : public testing::TestWithParam<int> {};

// However the server ends, SIGTERM or SIGKILL, its children end too: every client sees its
// connection closed. (A child left behind would hold its connection open.)
TEST_P(ForkChildrenEnd, WithTheServer) {
    constexpr int kConnections = 5;
    ServerProcess server("fork", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    std::vector<Client> clients;
    for (int i = 0; i < kConnections; ++i) {
        clients.push_back(Client::connect(server.address()));
        ASSERT_TRUE(clients.back().echo(static_cast<uint64_t>(i), 8));
    }
    ASSERT_EQ(mux::test::child_pids(server.pid()).size(), size_t{kConnections});
    ASSERT_EQ(kill(server.pid(), GetParam()), 0);
    server.stop();
    for (auto& c : clients) EXPECT_TRUE(c.expect_closed(10s));
}

INSTANTIATE_TEST_SUITE_P(Signals, ForkChildrenEnd, testing::Values(SIGTERM, SIGKILL),
                         [](const auto& p) { return p.param == SIGTERM ? "sigterm" : "sigkill"; });

// With room for two children, a third connection's fork fails: that connection is closed and
// counted, the two children go on serving, and once one ends a new connection is served.
TEST(ForkModel, FailedForkShedsTheConnectionAndServingGoesOn) {
    mux::test::TestCgroup pids("pids", "muxtest-fork-pids");
    if (!pids.ok()) GTEST_SKIP() << pids.error();
    ServerProcess server("fork", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    ASSERT_TRUE(pids.add(server.pid())) << pids.error();
    ASSERT_TRUE(pids.write("pids.max", "3")) << pids.error();  // the server and two children
    Client first = Client::connect(server.address());
    Client second = Client::connect(server.address());
    ASSERT_TRUE(first.echo(1, 8));
    ASSERT_TRUE(second.echo(2, 8));
    Client refused = Client::connect(server.address());
    ASSERT_TRUE(refused.valid());
    EXPECT_TRUE(refused.expect_closed(10s));
    EXPECT_TRUE(first.echo(3, 8));
    EXPECT_TRUE(second.echo(4, 8));
    first.close();
    // The child is gone once its pid no longer counts against the limit.
    for (int i = 0; i < 200 && pids.read("pids.current").value_or(0) > 2; ++i)
        std::this_thread::sleep_for(50ms);
    Client fresh = Client::connect(server.address());
    EXPECT_TRUE(fresh.echo(5, 8));
    second.close();
    fresh.close();
    EXPECT_TRUE(mux::test::wait_for_no_children(server.pid(), 10s).empty());
    auto stats = server.stop();
    EXPECT_EQ(stats["rejected"].value("fork_failed", -1), 1) << stats.dump();
    EXPECT_EQ(stats.value("requests", -1), 5);
}

}  // namespace
