#include "kernel_counts.hpp"

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
constexpr const char* kTracefs = "/sys/kernel/tracing";

bool tracefs_ready(std::string* error) {
    struct stat st {};
    if (stat((std::string(kTracefs) + "/events").c_str(), &st) == 0) return true;
    if (mount("tracefs", kTracefs, "tracefs", 0, nullptr) == 0) return true;
    *error = std::string("tracefs is not at ") + kTracefs +
             " and mounting it failed: " + std::strerror(errno);
    return false;
}

std::optional<uint64_t> read_number(const std::string& path) {
    std::ifstream in(path);
    uint64_t value = 0;
    if (!(in >> value)) return std::nullopt;
    return value;
}
}  // namespace

TracepointCounter::TracepointCounter(pid_t pid, const std::vector<Tracepoint>& tracepoints) {
    if (!tracefs_ready(&error_)) return;
    for (const Tracepoint& tp : tracepoints) {
        std::string id_path = std::string(kTracefs) + "/events/" + tp.name + "/id";
        auto id = read_number(id_path);
        if (!id) {
            error_ = "no tracepoint id in " + id_path;
            return;
        }
        perf_event_attr attr{};
        attr.size = sizeof attr;
        attr.type = PERF_TYPE_TRACEPOINT;
        attr.config = *id;
        attr.disabled = 1;  // enabled once its filter is in place
        long fd = syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
        if (fd < 0) {
            error_ = "perf_event_open(" + tp.name + ", pid " + std::to_string(pid) +
                     "): " + std::strerror(errno);
            return;
        }
        fds_.push_back(static_cast<int>(fd));
        if (!tp.filter.empty() &&
            ioctl(static_cast<int>(fd), PERF_EVENT_IOC_SET_FILTER, tp.filter.c_str()) != 0) {
            error_ = "filter '" + tp.filter + "' on " + tp.name + ": " + std::strerror(errno);
            return;
        }
    }
    for (int fd : fds_) ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
}

TracepointCounter::~TracepointCounter() {
    for (int fd : fds_) close(fd);
}

std::optional<uint64_t> TracepointCounter::count(size_t i) const {
    uint64_t value = 0;
    if (i >= fds_.size() || ::read(fds_[i], &value, sizeof value) != sizeof value)
        return std::nullopt;
    return value;
}

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
