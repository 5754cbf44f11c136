// The models as production servers write them (issue 17), shown by what the kernel counts:
// fork's idle children sleep. Counts only: nothing here is timed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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

}  // namespace
