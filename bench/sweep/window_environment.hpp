// What besides the server can move a point's figures, recorded with the point.
//
// - Sockets the previous point left: a churn pass leaves hundreds of thousands of TIME_WAIT
//   sockets (more than tcp_max_tw_buckets), and a killed server's connections linger as
//   orphans until their FIN is acknowledged. Before a point starts, the sweep waits (within a
//   bound) for the orphans to go, and records what TCP holds and the settings that decide
//   what reconnecting costs (tcp_tw_reuse, the local port range).
// - The CPUs: time the hypervisor stole from the server's and client's CPUs during the window,
//   and time they idled (/proc/stat), whether the two sets share a core (SMT siblings share
//   its execution units, so the load generator slows the server), and the clock frequency
//   where the kernel shows it.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace mux::sweep {

// /proc/net/sockstat's TCP line (IPv4 and IPv6 are counted together by the kernel here).
struct TcpSockets {
    uint64_t in_use = 0;
    uint64_t orphans = 0;
    uint64_t time_wait = 0;
};
TcpSockets read_tcp_sockets();

// The longest a point waits for the previous point's orphaned sockets to close.
inline constexpr std::chrono::milliseconds kSettleBound{2000};

// Waits until no orphaned TCP socket is left, or the bound passes, and says what it found:
// {"settled", "settle_s", "tcp_in_use", "tcp_orphans", "tcp_time_wait", "tcp_tw_reuse",
//  "tcp_max_tw_buckets", "ip_local_port_range"}.
nlohmann::json settle_sockets(std::chrono::milliseconds bound = kSettleBound);

// Per-CPU times from /proc/stat, in the kernel's USER_HZ ticks.
struct CpuTicks {
    uint64_t idle = 0;   // idle + iowait
    uint64_t steal = 0;  // taken by the hypervisor for other guests
    uint64_t total = 0;
};
// The sum over cpus of each CPU's ticks; CPUs /proc/stat does not list add nothing.
CpuTicks read_cpu_ticks(const std::vector<int>& cpus, const char* proc_stat = "/proc/stat");

// True when some CPU of a shares a core with some CPU of b (thread_siblings_list in sysfs).
bool share_a_core(const std::vector<int>& a, const std::vector<int>& b,
                  const char* sysfs_cpu = "/sys/devices/system/cpu");

class WindowEnvironment {
  public:
    WindowEnvironment(std::vector<int> server_cpus, std::vector<int> client_cpus);
    void mark_start();
    void mark_end();
    // {"server_cpus": {"steal_share", "idle_share"}, "client_cpus": {...},
    //  "server_client_smt_siblings", "cpu_mhz": {"CPU": MHz} or null, "cpu_mhz_source"}
    nlohmann::json to_json() const;

  private:
    std::vector<int> server_cpus_, client_cpus_;
    CpuTicks server_start_, client_start_, server_end_, client_end_;
    bool started_ = false, ended_ = false;
};

}  // namespace mux::sweep
