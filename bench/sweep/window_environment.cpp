#include "window_environment.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace mux::sweep {

namespace {

std::optional<uint64_t> read_number(const std::string& path) {
    std::ifstream in(path);
    uint64_t v = 0;
    if (!(in >> v)) return std::nullopt;
    return v;
}

nlohmann::json number_or_null(const std::string& path) {
    auto v = read_number(path);
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// "0-3,8,10-11" -> {0,1,2,3,8,10,11}
std::set<int> parse_cpu_list(const std::string& text) {
    std::set<int> cpus;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, ',')) {
        size_t dash = part.find('-');
        try {
            int first = std::stoi(part.substr(0, dash));
            int last = dash == std::string::npos ? first : std::stoi(part.substr(dash + 1));
            for (int c = first; c <= last && c - first < 4096; ++c) cpus.insert(c);
        } catch (const std::exception&) {
        }
    }
    return cpus;
}

nlohmann::json shares(const CpuTicks& start, const CpuTicks& end) {
    if (end.total <= start.total) return {{"steal_share", nullptr}, {"idle_share", nullptr}};
    double total = double(end.total - start.total);
    return {{"steal_share", double(end.steal - start.steal) / total},
            {"idle_share", double(end.idle - start.idle) / total}};
}

}  // namespace

TcpSockets read_tcp_sockets() {
    TcpSockets s;
    std::ifstream in("/proc/net/sockstat");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("TCP:", 0) != 0) continue;
        std::stringstream words(line.substr(4));
        std::string key;
        uint64_t value = 0;
        while (words >> key >> value) {
            if (key == "inuse") s.in_use = value;
            if (key == "orphan") s.orphans = value;
            if (key == "tw") s.time_wait = value;
        }
    }
    return s;
}

nlohmann::json settle_sockets(std::chrono::milliseconds bound) {
    using Clock = std::chrono::steady_clock;
    const auto started = Clock::now();
    TcpSockets s = read_tcp_sockets();
    while (s.orphans > 0 && Clock::now() - started < bound) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        s = read_tcp_sockets();
    }
    nlohmann::json range = nullptr;
    std::ifstream ports("/proc/sys/net/ipv4/ip_local_port_range");
    uint64_t low = 0, high = 0;
    if (ports >> low >> high) range = {low, high};
    return {{"settled", s.orphans == 0},
            {"settle_s", std::chrono::duration<double>(Clock::now() - started).count()},
            {"tcp_in_use", s.in_use},
            {"tcp_orphans", s.orphans},
            {"tcp_time_wait", s.time_wait},
            {"tcp_tw_reuse", number_or_null("/proc/sys/net/ipv4/tcp_tw_reuse")},
            {"tcp_max_tw_buckets", number_or_null("/proc/sys/net/ipv4/tcp_max_tw_buckets")},
            {"ip_local_port_range", range}};
}

CpuTicks read_cpu_ticks(const std::vector<int>& cpus, const char* proc_stat) {
    CpuTicks sum;
    std::ifstream in(proc_stat);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("cpu", 0) != 0 || line.size() < 4 || !isdigit(line[3])) continue;
        std::stringstream words(line.substr(3));
        int cpu = -1;
        words >> cpu;
        if (std::find(cpus.begin(), cpus.end(), cpu) == cpus.end()) continue;
        // user nice system idle iowait irq softirq steal (guest time is inside user already)
        uint64_t f[8] = {};
        for (uint64_t& v : f) words >> v;
        sum.idle += f[3] + f[4];
        sum.steal += f[7];
        for (uint64_t v : f) sum.total += v;
    }
    return sum;
}

bool share_a_core(const std::vector<int>& a, const std::vector<int>& b, const char* sysfs_cpu) {
    for (int cpu : a) {
        std::ifstream in(std::string(sysfs_cpu) + "/cpu" + std::to_string(cpu) +
                         "/topology/thread_siblings_list");
        std::string list;
        if (!std::getline(in, list)) continue;
        std::set<int> siblings = parse_cpu_list(list);
        for (int other : b)
            if (other != cpu && siblings.count(other)) return true;
    }
    return false;
}

WindowEnvironment::WindowEnvironment(std::vector<int> server_cpus, std::vector<int> client_cpus)
    : server_cpus_(std::move(server_cpus)), client_cpus_(std::move(client_cpus)) {}

void WindowEnvironment::mark_start() {
    server_start_ = read_cpu_ticks(server_cpus_);
    client_start_ = read_cpu_ticks(client_cpus_);
    started_ = true;
}

void WindowEnvironment::mark_end() {
    server_end_ = read_cpu_ticks(server_cpus_);
    client_end_ = read_cpu_ticks(client_cpus_);
    ended_ = started_;
}

nlohmann::json WindowEnvironment::to_json() const {
    nlohmann::json out;
    nlohmann::json none = {{"steal_share", nullptr}, {"idle_share", nullptr}};
    out["server_cpus"] = ended_ ? shares(server_start_, server_end_) : none;
    out["client_cpus"] = ended_ ? shares(client_start_, client_end_) : none;
    out["server_client_smt_siblings"] = share_a_core(server_cpus_, client_cpus_);
    // cpufreq shows the current clock where a driver manages it; a VM usually has none.
    nlohmann::json mhz = nlohmann::json::object();
    std::vector<int> cpus = server_cpus_;
    cpus.insert(cpus.end(), client_cpus_.begin(), client_cpus_.end());
    for (int cpu : cpus)
        if (auto khz = read_number("/sys/devices/system/cpu/cpu" + std::to_string(cpu) +
                                   "/cpufreq/scaling_cur_freq"))
            mhz[std::to_string(cpu)] = double(*khz) / 1e3;
    out["cpu_mhz"] = mhz.empty() ? nlohmann::json(nullptr) : mhz;
    out["cpu_mhz_source"] = mhz.empty() ? "not shown by the kernel (no cpufreq driver)"
                                        : "cpufreq scaling_cur_freq at the window's end";
    return out;
}

}  // namespace mux::sweep
