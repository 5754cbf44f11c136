// The models as production servers write them (issue 17), shown by what the kernel counts:
// fork's idle children sleep, its children end with it and a failed fork sheds one
// connection; epoll-et's short-read rule (and the reuseport reactors', the same code) reads
// once per request where the textbook rule reads twice. Counts only: nothing here is timed.
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

using mux::mux1::Op;
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

struct Calls {
    uint64_t reads = 0;
    uint64_t failed_reads = 0;  // EAGAIN: the socket was already empty
    uint64_t writes = 0;
    uint64_t waits = 0;  // epoll_wait
};

constexpr int kEchoes = 200;

// kEchoes sequential 64-byte echoes on one connection, with the server's calls counted by the
// kernel over exactly those requests. Each request is sent only once the server sleeps again
// (low load): a request that arrives while the server is still draining the socket is found
// by the textbook rule's extra read instead of by epoll_wait, which makes that rule's count
// depend on scheduling.
Calls count_calls(const std::string& model, const std::string& transport,
                  std::vector<std::string> extra = {}) {
    ServerProcess server(model, "mux1", transport, std::move(extra));
    EXPECT_TRUE(server.started()) << server.error();
    Client client = Client::connect(server.address());
    EXPECT_TRUE(client.echo(0, 64));  // accepted and registered before counting starts
    mux::test::TracepointCounter calls(server.pid(), {{"syscalls/sys_enter_read", ""},
                                                      {"syscalls/sys_exit_read", "ret < 0"},
                                                      {"syscalls/sys_enter_write", ""},
                                                      {"syscalls/sys_enter_epoll_wait", ""}});
    if (!calls.ok()) {
        ADD_FAILURE() << calls.error();
        return {};
    }
    for (int i = 1; i <= kEchoes; ++i) {
        EXPECT_TRUE(client.echo(static_cast<uint64_t>(i), 64));
        // The next request arrives once the server is back in epoll_wait, its only sleep.
        EXPECT_TRUE(mux::test::wait_until_sleeping(server.pid(), 10s));
    }
    Calls result{calls.count(0).value_or(0), calls.count(1).value_or(0), calls.count(2).value_or(0),
                 calls.count(3).value_or(0)};
    client.close();
    EXPECT_EQ(server.stop().value("requests", -1), kEchoes + 1);
    return result;
}

class EpollEtDrain : public testing::TestWithParam<std::string> {};

// The short-read rule reads once per request and never fails a read, as level-triggered epoll
// does; the textbook rule reads until EAGAIN, one failed read more per request. Over unix
// sockets each reply the client reads also sends the server a writable-only event, on which
// neither rule reads.
TEST_P(EpollEtDrain, ShortReadRuleReadsOncePerRequest) {
    {
        mux::test::TracepointCounter probe(getpid(), {{"syscalls/sys_enter_read", ""}});
        if (!probe.ok()) GTEST_SKIP() << probe.error();
    }
    Calls short_read = count_calls("epoll-et", GetParam());
    Calls eagain = count_calls("epoll-et/eagain", GetParam());
    Calls level = count_calls("epoll-lt", GetParam());
    // The reuseport reactors read by the same rule, shared code; one worker, so the counted
    // process's one thread is the reactor.
    Calls reuseport_short = count_calls("reuseport", GetParam(), {"--workers", "1"});
    Calls reuseport_eagain =
        count_calls("reuseport", GetParam(), {"--workers", "1", "--et-drain", "eagain"});
    EXPECT_EQ(short_read.reads, uint64_t{kEchoes});
    EXPECT_EQ(short_read.failed_reads, 0u);
    EXPECT_EQ(eagain.reads, uint64_t{2 * kEchoes});
    EXPECT_EQ(eagain.failed_reads, uint64_t{kEchoes});
    EXPECT_EQ(level.reads, uint64_t{kEchoes});
    EXPECT_EQ(level.failed_reads, 0u);
    EXPECT_EQ(reuseport_short.reads, uint64_t{kEchoes});
    EXPECT_EQ(reuseport_short.failed_reads, 0u);
    EXPECT_EQ(reuseport_eagain.reads, uint64_t{2 * kEchoes});
    EXPECT_EQ(reuseport_eagain.failed_reads, uint64_t{kEchoes});
    for (const Calls* c : {&short_read, &eagain, &level, &reuseport_short, &reuseport_eagain}) {
        EXPECT_EQ(c->writes, uint64_t{kEchoes});
        EXPECT_GE(c->waits, uint64_t{kEchoes});  // one wakeup per request, and timeouts
    }
    auto per_request = [](uint64_t n) { return static_cast<double>(n) / kEchoes; };
    std::printf(
        "%s, per request (reads, of which failed, writes, epoll_waits): et short "
        "%.3f %.3f %.3f %.3f; et eagain %.3f %.3f %.3f %.3f; lt %.3f %.3f %.3f %.3f\n",
        GetParam().c_str(), per_request(short_read.reads), per_request(short_read.failed_reads),
        per_request(short_read.writes), per_request(short_read.waits), per_request(eagain.reads),
        per_request(eagain.failed_reads), per_request(eagain.writes), per_request(eagain.waits),
        per_request(level.reads), per_request(level.failed_reads), per_request(level.writes),
        per_request(level.waits));
}

INSTANTIATE_TEST_SUITE_P(Transports, EpollEtDrain, testing::Values("tcp", "unix"));

}  // namespace
