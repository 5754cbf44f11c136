#include "kernel_counts.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace mux::test {

namespace {
std::optional<uint64_t> read_number(const std::string& path) {
    std::ifstream in(path);
    uint64_t value = 0;
    if (!(in >> value)) return std::nullopt;
    return value;
}
}  // namespace

TestCgroup::TestCgroup(const std::string& controller, const std::string& name) {
    const std::string root = "/sys/fs/cgroup/" + controller;
    const std::string prefix = name + "-";
    // Groups of this name whose test process is gone were left by a killed run.
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
        std::string base = entry.path().filename().string();
        if (!base.starts_with(prefix)) continue;
        pid_t owner = static_cast<pid_t>(std::atoi(base.c_str() + prefix.size()));
        if (owner > 0 && kill(owner, 0) != 0 && errno == ESRCH) rmdir(entry.path().c_str());
    }
    static std::atomic<int> sequence{0};
    path_ = root + "/" + prefix + std::to_string(getpid()) + "-" + std::to_string(sequence++);
    if (mkdir(path_.c_str(), 0755) != 0) {
        error_ = "mkdir " + path_ + ": " + std::strerror(errno) +
                 " (needs root and the cgroup v1 " + controller + " hierarchy)";
        path_.clear();
    }
}

TestCgroup::~TestCgroup() {
    if (path_.empty()) return;
    // Tasks that are still exiting keep the group busy for a moment: retry a bounded time.
    for (int attempt = 0; attempt < 200 && rmdir(path_.c_str()) != 0 && errno == EBUSY; ++attempt)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

bool TestCgroup::write(const std::string& file, const std::string& value) {
    std::ofstream out(path_ + "/" + file);
    out << value << "\n";
    out.flush();
    if (!out) error_ = "could not write '" + value + "' to " + path_ + "/" + file;
    return static_cast<bool>(out);
}

std::optional<uint64_t> TestCgroup::read(const std::string& file) const {
    return read_number(path_ + "/" + file);
}

}  // namespace mux::test
