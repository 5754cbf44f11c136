#include "proc_info.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

namespace mux::test {

namespace {
// The fields of /proc/PID/stat after "(comm)", which may itself hold spaces and parens.
std::optional<std::vector<std::string>> stat_fields(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    size_t close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(line.substr(close + 1));
    std::vector<std::string> fields;
    for (std::string f; rest >> f;) fields.push_back(f);
    return fields;  // fields[0] is state (field 3), fields[1] ppid, fields[11] utime
}

uint64_t to_u64(const std::string& s) {
    uint64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}
}  // namespace

std::optional<uint64_t> cpu_ticks(pid_t pid) {
    auto fields = stat_fields(pid);
    if (!fields || fields->size() < 13) return std::nullopt;
    return to_u64((*fields)[11]) + to_u64((*fields)[12]);
}

std::optional<char> state(pid_t pid) {
    auto fields = stat_fields(pid);
    if (!fields || fields->empty() || (*fields)[0].empty()) return std::nullopt;
    return (*fields)[0][0];
}

bool wait_until_sleeping(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (state(pid) != 'S') {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::yield();
    }
    return true;
}

std::vector<pid_t> child_pids(pid_t pid) {
    std::vector<pid_t> children;
    DIR* dir = opendir("/proc");
    if (dir == nullptr) return children;
    while (dirent* entry = readdir(dir)) {
        int candidate = 0;
        std::string_view name = entry->d_name;
        auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), candidate);
        if (ec != std::errc() || end != name.data() + name.size()) continue;
        auto fields = stat_fields(candidate);
        if (fields && fields->size() > 1 && to_u64((*fields)[1]) == static_cast<uint64_t>(pid))
            children.push_back(candidate);
    }
    closedir(dir);
    return children;
}

std::vector<pid_t> wait_for_no_children(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto children = child_pids(pid);
        if (children.empty() || std::chrono::steady_clock::now() >= deadline) return children;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

namespace {
uint16_t port_of(const sockaddr_storage& address) {
    if (address.ss_family == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
    if (address.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
    return 0;
}

// "ADDRESS:PORT" as /proc/net/tcp prints it: the port is the four hex digits after the colon.
uint16_t proc_net_port(const std::string& field) {
    size_t colon = field.rfind(':');
    if (colon == std::string::npos) return 0;
    uint16_t port = 0;
    std::from_chars(field.data() + colon + 1, field.data() + field.size(), port, 16);
    return port;
}
}  // namespace

std::optional<uint64_t> peer_socket_inode(int client_fd) {
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    if (getsockname(client_fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        getpeername(client_fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0)
        return std::nullopt;
    const uint16_t client_port = port_of(local), server_port = port_of(peer);
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // the column names
        while (std::getline(in, line)) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            std::istringstream fields(line);
            std::string slot, local_field, remote_field, state, queues, timer, retransmits, uid,
                timeout, inode;
            fields >> slot >> local_field >> remote_field >> state >> queues >> timer >>
                retransmits >> uid >> timeout >> inode;
            if (proc_net_port(local_field) == server_port &&
                proc_net_port(remote_field) == client_port)
                return to_u64(inode);
        }
    }
    return std::nullopt;
}

std::optional<uint64_t> wait_for_accepted_inode(int client_fd, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto inode = peer_socket_inode(client_fd);
        if (inode && *inode != 0) return inode;
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

bool tree_holds_socket(pid_t pid, uint64_t inode) {
    const std::string wanted = "socket:[" + std::to_string(inode) + "]";
    std::vector<pid_t> tree = child_pids(pid);
    tree.push_back(pid);
    for (pid_t member : tree) {
        std::error_code ec;
        for (const auto& entry :
             std::filesystem::directory_iterator("/proc/" + std::to_string(member) + "/fd", ec)) {
            std::error_code link_ec;  // an fd closed while we look is simply not there
            if (std::filesystem::read_symlink(entry.path(), link_ec) == wanted) return true;
        }
    }
    return false;
}

bool wait_until_tree_holds_socket(pid_t pid, uint64_t inode, bool held,
                                  std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (tree_holds_socket(pid, inode) == held) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

namespace {
std::optional<uint64_t> status_kib(pid_t pid, std::string_view key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        if (!line.starts_with(key)) continue;
        std::istringstream value(line.substr(key.size()));
        uint64_t kib = 0;
        if (value >> kib) return kib;
    }
    return std::nullopt;
}
}  // namespace

std::optional<uint64_t> vm_peak_kib(pid_t pid) {
    return status_kib(pid, "VmPeak:");
}

std::optional<uint64_t> vm_hwm_kib(pid_t pid) {
    return status_kib(pid, "VmHWM:");
}

std::vector<pid_t> thread_ids(pid_t pid) {
    std::vector<pid_t> ids;
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error))
        ids.push_back(static_cast<pid_t>(std::stol(entry.path().filename().string())));
    return ids;
}

}  // namespace mux::test
