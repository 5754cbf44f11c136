// A request's work_us is CPU time, however the server is scheduled (issue 17). Both tests
// assert CPU accounting, which preemption cannot shrink, never a wall-clock duration.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "kernel_counts.hpp"
#include "proc_info.hpp"
#include "server.hpp"
#include "server_process.hpp"
#include "test_client.hpp"

namespace {

using mux::test::Client;
using mux::test::ServerProcess;
using namespace std::chrono_literals;

int64_t thread_cpu_ns() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1'000'000'000LL + t.tv_nsec;
}

// The first CPU this process may run on.
int first_allowed_cpu() {
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) return cpu;
    return 0;
}

// Two threads pinned to one CPU burn at the same time, so each is preempted by the other
// mid-burn; every burn must still have cost its thread at least work_us of CPU time. (A
// burn that watched the wall clock got about half.)
TEST(BurnCpu, EachBurnCostsItsWorkInCpuTimeWhenTwoShareOneCpu) {
    constexpr uint32_t kWorkUs = 20000;
    constexpr int kBurns = 5;
    const int cpu = first_allowed_cpu();
    std::vector<int64_t> cpu_ns[2];
    auto burner = [&](int id) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one);
        for (int i = 0; i < kBurns; ++i) {
            int64_t start = thread_cpu_ns();
            mux::burn_cpu_us(kWorkUs);
            cpu_ns[id].push_back(thread_cpu_ns() - start);
        }
    };
    std::thread a(burner, 0), b(burner, 1);
    a.join();
    b.join();
    for (const auto& burns : cpu_ns) {
        ASSERT_EQ(burns.size(), size_t{kBurns});
        for (int64_t ns : burns) EXPECT_GE(ns, int64_t{kWorkUs} * 1000);
    }
}

std::string work_request(uint64_t tag, uint32_t work_us) {
    mux::mux1::Header h;
    h.op_or_status = static_cast<uint8_t>(mux::mux1::Op::Gen);
    h.work_us = work_us;
    h.tag = tag;
    std::string out(mux::mux1::kHeaderSize, '\0');
    mux::mux1::encode_header(h, reinterpret_cast<uint8_t*>(out.data()));
    return out;
}

class CpuPerRequest : public testing::TestWithParam<std::string> {};

// The server, pinned to one CPU, answers concurrent clients whose requests each ask for
// kWorkUs; its whole process tree, fork's children included, must have used at least the
// work asked for. The tree's CPU comes from a cpuacct cgroup made for the test (a child keeps
// its time there after it exits), so nothing depends on how the model reaps.
TEST_P(CpuPerRequest, AtLeastTheWorkAskedFor) {
    constexpr int kClients = 3;
    constexpr int kRequestsPerClient = 5;
    constexpr uint32_t kWorkUs = 5000;
    mux::test::TestCgroup group("cpuacct", "muxtest-fair-work");
    if (!group.ok()) GTEST_SKIP() << group.error();
    mux::SpawnOptions pinned;
    pinned.cpus = {first_allowed_cpu()};
    ServerProcess server(GetParam(), "mux1", "tcp", {}, pinned);
    MUX_ASSERT_STARTED_OR_SKIP(server);
    ASSERT_TRUE(group.add(server.pid())) << group.error();  // before it has any child
    const mux::SocketAddress address = server.address();
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
        clients.emplace_back([&, c] {
            Client client = Client::connect(address);
            ASSERT_TRUE(client.valid());
            for (int i = 0; i < kRequestsPerClient; ++i) {
                const uint64_t tag = static_cast<uint64_t>(c) << 32 | static_cast<uint64_t>(i);
                ASSERT_TRUE(client.send_all(work_request(tag, kWorkUs)));
                auto reply = client.read_mux1();
                ASSERT_TRUE(reply) << client.last_error();
                EXPECT_TRUE(mux::test::check_mux1_reply(*reply, mux::mux1::Op::Gen, tag, 0, 0));
            }
        });
    }
    for (auto& t : clients) t.join();
    EXPECT_TRUE(mux::test::wait_for_no_children(server.pid(), 10s).empty());
    auto stats = server.stop();
    constexpr int kRequests = kClients * kRequestsPerClient;
    EXPECT_EQ(stats.value("requests", -1), kRequests);
    auto used_ns = group.read("cpuacct.usage");
    ASSERT_TRUE(used_ns);
    const uint64_t floor_ns = uint64_t{kRequests} * kWorkUs * 1000;
    EXPECT_GE(*used_ns, floor_ns) << GetParam() << " used " << *used_ns / 1000 << " us of CPU for "
                                  << kRequests << " requests of " << kWorkUs << " us each";
}

INSTANTIATE_TEST_SUITE_P(AllModels, CpuPerRequest, testing::ValuesIn(mux::test::test_models()),
                         [](const auto& p) { return mux::test::test_name(p.param); });

}  // namespace
