// What the sweep records about the machine around a window: CPU steal and idle from /proc/stat,
// SMT siblings from sysfs, and TCP sockets from /proc/net/sockstat.
#include "window_environment.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using mux::sweep::read_cpu_ticks;
using mux::sweep::settle_sockets;
using mux::sweep::share_a_core;

namespace {

fs::path scratch(const char* name) {
    fs::path dir = fs::temp_directory_path() / (std::string(name) + "-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

void write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
}

}  // namespace

TEST(WindowEnvironment, SumsIdleAndStealOfTheNamedCpusOnly) {
    fs::path dir = scratch("muxbench-procstat");
    // user nice system idle iowait irq softirq steal guest guest_nice
    write(dir / "stat",
          "cpu  100 0 50 1000 10 0 5 40 0 0\n"
          "cpu0 10 0 5 100 1 0 0 4 0 0\n"
          "cpu1 20 0 10 200 2 0 1 8 0 0\n"
          "cpu12 30 0 15 300 3 0 2 16 0 0\n"
          "intr 123\n");
    auto one = read_cpu_ticks({1}, (dir / "stat").c_str());
    EXPECT_EQ(one.idle, 202u);
    EXPECT_EQ(one.steal, 8u);
    EXPECT_EQ(one.total, 20u + 10 + 200 + 2 + 1 + 8);
    auto two = read_cpu_ticks({0, 12}, (dir / "stat").c_str());
    EXPECT_EQ(two.idle, 101u + 303);
    EXPECT_EQ(two.steal, 4u + 16);
    auto absent = read_cpu_ticks({7}, (dir / "stat").c_str());
    EXPECT_EQ(absent.total, 0u);
    fs::remove_all(dir);
}

TEST(WindowEnvironment, SeesSmtSiblingsAcrossTheTwoSets) {
    fs::path dir = scratch("muxbench-sysfs");
    write(dir / "cpu0/topology/thread_siblings_list", "0,2\n");
    write(dir / "cpu1/topology/thread_siblings_list", "1,3\n");
    write(dir / "cpu2/topology/thread_siblings_list", "0,2\n");
    write(dir / "cpu4/topology/thread_siblings_list", "4-5\n");
    EXPECT_TRUE(share_a_core({0}, {2}, dir.c_str()));
    EXPECT_FALSE(share_a_core({0}, {1}, dir.c_str()));
    EXPECT_TRUE(share_a_core({4}, {1, 5}, dir.c_str()));
    EXPECT_FALSE(share_a_core({0}, {0}, dir.c_str()));  // one CPU is not its own sibling
    EXPECT_FALSE(share_a_core({9}, {1}, dir.c_str()));  // no topology: nothing known shared
    fs::remove_all(dir);
}

TEST(WindowEnvironment, SettlingRecordsTheTcpStateAndItsSettings) {
    auto j = settle_sockets(std::chrono::milliseconds(100));
    for (const char* key : {"settled", "settle_s", "tcp_in_use", "tcp_orphans", "tcp_time_wait",
                            "tcp_tw_reuse", "tcp_max_tw_buckets", "ip_local_port_range"})
        EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_LE(j["settle_s"].get<double>(), 5.0);
    EXPECT_EQ(j["settled"].get<bool>(), j["tcp_orphans"].get<uint64_t>() == 0);
    ASSERT_TRUE(j["ip_local_port_range"].is_array());
    EXPECT_LT(j["ip_local_port_range"][0].get<int>(), j["ip_local_port_range"][1].get<int>());
}
