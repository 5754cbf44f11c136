#include "proc_info.hpp"

#include <dirent.h>

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
