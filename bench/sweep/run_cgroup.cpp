// Notes about the run's cgroup
//
// Why: a cgroup's CPU figures cover every task that was ever in it, exited or not, as one
// total (cgroup v2 cpu.stat usage_usec/user_usec/system_usec, v1 cpuacct.usage and
// usage_user/usage_sys). The total is the scheduler's exact run time; the user/system split
// follows the scheduler ticks that landed in user or kernel mode (CONFIG_HZ, 4 ms at 250 Hz),
// so over a window the caller splits the exact total in the proportion of the ticks. That
// split is a sample of at most usage x HZ ticks, fewer for a server running in bursts shorter
// than a tick (v1's raw ticks covered 43-75% of the usage of 3 s points here under load, 28
// to 64 ticks): results/README.md says how far it can be trusted. v2 shows only the scaled
// split (cputime_adjust), v1 the ticks.
// Where: the group is made beside this process's own group in the hierarchy (read from
// /proc/self/cgroup and /proc/self/mountinfo), which is the hierarchy's root on a plain
// machine and the container's own group in a container: there this process may write, and
// whatever limits hold for the driver keep holding for the server. v2 is used when a new
// group there has a cpu.stat (it does without any controller enabled: the kernel keeps the
// basic CPU figures for every group); else v1's cpuacct.
// Lifetime: named muxbench-<pid of the creating process>-<n>, created for one server run,
// emptied (SIGKILL to everything in it: cgroup.kill on v2, each pid of cgroup.procs on v1) and
// removed when the run ends, whatever happened to it; on SIGINT/SIGTERM/SIGHUP by a signal
// handler; after SIGKILL of the sweep, by the next sweep, which removes groups whose
// creating process is gone: no process bears its pid, or a zombie does, or one that started
// after a process the group holds (the pid was reused). No other group is ever created,
// joined or removed.
// Memory: v1's memory controller is one more directory of the same name in the memory
// hierarchy, inside the driver's own memory group (so the driver's limit keeps applying),
// joined by attach() like the CPU one. Its memory.kmem.usage_in_bytes is the kernel memory
// charged to the tree (a socket accepted by a task of the group is charged to it at accept,
// its slab object included, since Linux 6.12's kmem_cache_charge; earlier kernels charge the
// slab object to no one, as it is allocated in softirq) and memory.kmem.tcp.usage_in_bytes
// its sockets' buffers. v1 charges socket buffers to a group only once its TCP limit has been
// written (the kernel's tcpmem_active), so the group's is set to the maximum when it is made:
// that adds a charge to every socket buffer allocation of the server, the same for every
// model. On v2 the memory controller must be enabled in the parent's cgroup.subtree_control,
// which the kernel refuses for a group that holds processes (the driver's own group, unless it
// is the root): the runs would need a parent group of their own, which is not done; there the
// memory figures are null with that reason.
#include "run_cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

#include <fmt/format.h>

namespace mux::sweep {

namespace {

namespace fs = std::filesystem;
constexpr std::string_view kPrefix = "muxbench-";

// MUXBENCH_DISABLE_CGROUP: "1" (or anything but "0" and "cgroup2") makes no group; "cgroup2"
// leaves out only v2, so that tests reach v1's cpuacct where both are mounted.
std::string_view switch_value(const char* name) {
    const char* value = std::getenv(name);
    return value && *value && std::string_view(value) != "0" ? value : "";
}

std::string_view cgroup_switch() {
    return switch_value("MUXBENCH_DISABLE_CGROUP");
}

bool disabled_by_environment() {
    return !cgroup_switch().empty() && cgroup_switch() != "cgroup2";
}

// mountinfo escapes spaces and the like as \ooo.
std::string unescape(const std::string& field) {
    std::string out;
    auto octal = [](char c) { return c >= '0' && c <= '7'; };
    for (size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size() && octal(field[i + 1]) &&
            octal(field[i + 2]) && octal(field[i + 3])) {
            out +=
                char((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
            i += 3;
        } else {
            out += field[i];
        }
    }
    return out;
}

bool has_token(const std::string& list, std::string_view token) {
    std::istringstream in(list);
    for (std::string item; std::getline(in, item, ',');)
        if (item == token) return true;
    return false;
}

struct Hierarchy {
    std::string name;    // "cgroup2" or "cgroup1"
    std::string parent;  // where the run's group is made
};

// Where this process's own group is in the hierarchy mounted with `fstype` (and, for v1,
// holding `controller`); nullopt when there is no such mount.
std::optional<Hierarchy> find_hierarchy(bool v2, std::string_view controller) {
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::string mount_point, mount_root;
    for (std::string line; std::getline(mountinfo, line);) {
        size_t dash = line.find(" - ");
        if (dash == std::string::npos) continue;
        std::istringstream left(line.substr(0, dash)), right(line.substr(dash + 3));
        std::string id, parent, device, root, point, fstype, source, options;
        left >> id >> parent >> device >> root >> point;
        right >> fstype >> source >> options;
        if (v2 ? fstype == "cgroup2" : (fstype == "cgroup" && has_token(options, controller))) {
            mount_point = unescape(point), mount_root = unescape(root);
            break;
        }
    }
    if (mount_point.empty()) return std::nullopt;
    std::ifstream self("/proc/self/cgroup");
    std::string own = "/";
    for (std::string line; std::getline(self, line);) {
        size_t first = line.find(':'), second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        std::string controllers = line.substr(first + 1, second - first - 1);
        bool match = v2 ? line.compare(0, first, "0") == 0 && controllers.empty()
                        : has_token(controllers, controller);
        if (match) own = line.substr(second + 1);
    }
    // The mount may show only part of the hierarchy (a container): the path below its root.
    std::string below = own.starts_with(mount_root) ? own.substr(mount_root.size()) : "";
    fs::path parent = fs::path(mount_point) / fs::path(below).relative_path();
    if (!fs::is_directory(parent)) parent = mount_point;
    return Hierarchy{v2 ? "cgroup2" : "cgroup1", parent.lexically_normal().string()};
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

bool write_file(const std::string& path, const std::string& text, std::string* error) {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text.data(), text.size()) != ssize_t(text.size())) {
        if (error) *error = fmt::format("writing '{}' to {}: {}", text, path, std::strerror(errno));
        if (fd >= 0) close(fd);
        return false;
    }
    close(fd);
    return true;
}

// "key value" lines (cpu.stat), the value of `key` or nullopt.
std::optional<uint64_t> keyed_value(const std::string& text, std::string_view key) {
    std::istringstream in(text);
    std::string name;
    uint64_t value = 0;
    while (in >> name >> value)
        if (name == key) return value;
    return std::nullopt;
}

std::optional<uint64_t> number_in(const std::string& path) {
    auto text = read_file(path);
    if (!text) return std::nullopt;
    std::istringstream in(*text);
    uint64_t value = 0;
    if (in >> value) return value;
    return std::nullopt;
}

// --- what the signal handler needs: fixed buffers, async-signal-safe calls only
struct LiveGroup {
    std::atomic<bool> used{false};
    char path[512] = {};
};
LiveGroup live_groups[8];

void register_group(const std::string& path) {
    if (path.size() >= sizeof LiveGroup::path) return;
    for (auto& g : live_groups) {
        bool expected = false;
        if (g.used.load()) continue;
        std::memcpy(g.path, path.c_str(), path.size() + 1);
        if (g.used.compare_exchange_strong(expected, true)) return;
    }
}

void unregister_group(const std::string& path) {
    for (auto& g : live_groups)
        if (g.used.load() && path == g.path) g.used.store(false);
}

// SIGKILLs every process listed in DIR/cgroup.procs, and asks the kernel to (DIR/cgroup.kill,
// v2 only). Async-signal-safe.
void kill_members(const char* dir) {
    char path[600];
    size_t n = std::strlen(dir);
    std::memcpy(path, dir, n);
    std::memcpy(path + n, "/cgroup.kill", 13);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        [[maybe_unused]] ssize_t ignored = write(fd, "1", 1);
        close(fd);
    }
    std::memcpy(path + n, "/cgroup.procs", 14);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buffer[4096];
    long pid = 0;
    bool digits = false;
    for (ssize_t got; (got = read(fd, buffer, sizeof buffer)) > 0;) {
        for (ssize_t i = 0; i < got; ++i) {
            if (buffer[i] >= '0' && buffer[i] <= '9') {
                pid = pid * 10 + (buffer[i] - '0'), digits = true;
            } else {
                if (digits && pid > 1) kill(pid_t(pid), SIGKILL);
                pid = 0, digits = false;
            }
        }
    }
    if (digits && pid > 1) kill(pid_t(pid), SIGKILL);
    close(fd);
}

// Empties and removes DIR, trying for about 5 s: a killed task leaves the group when it has
// finished exiting. Async-signal-safe. Returns errno of the last rmdir, 0 on success.
int empty_and_remove(const char* dir) {
    int last = 0;
    for (int attempt = 0; attempt < 500; ++attempt) {
        kill_members(dir);
        if (rmdir(dir) == 0 || errno == ENOENT) return 0;
        last = errno;
        if (last != EBUSY) return last;
        timespec pause{0, 10'000'000};
        nanosleep(&pause, nullptr);
    }
    return last;
}

void on_termination(int signo) {
    for (auto& g : live_groups)
        if (g.used.load()) empty_and_remove(g.path);
    signal(signo, SIG_DFL);
    raise(signo);
}

std::atomic<unsigned> groups_made{0};

struct ProcessStart {
    bool zombie = false;
    uint64_t ticks = 0;  // /proc/PID/stat's starttime: in ticks since boot
};

std::optional<ProcessStart> process_start(pid_t pid) {
    auto stat = read_file(fmt::format("/proc/{}/stat", pid));
    size_t paren = stat ? stat->rfind(')') : std::string::npos;
    if (paren == std::string::npos) return std::nullopt;
    std::istringstream fields(stat->substr(paren + 2));  // from field 3, the state
    std::string state, skipped;
    fields >> state;
    for (int i = 4; i < 22 && fields >> skipped; ++i) {
    }
    ProcessStart start{state == "Z", 0};
    if (fields >> start.ticks) return start;
    return std::nullopt;
}

// Whether the process now bearing `owner`, the pid in the group's name, is the one that made
// it. A dead pid did not; nor did a process that started after one the group holds: every
// process a run puts in its group was started by the group's maker, so it is younger than
// the maker. Such a pid was reused after the maker was killed (a fork point starts thousands
// of processes, pid_max is 32,768 by default).
bool made_by_a_living_process(const std::string& dir, pid_t owner) {
    if (kill(owner, 0) != 0 && errno == ESRCH) return false;
    auto owner_start = process_start(owner);
    if (!owner_start) return true;  // unreadable: keep the group, as for a living owner
    if (owner_start->zombie) return false;
    std::ifstream procs(dir + "/cgroup.procs");
    for (pid_t pid; procs >> pid;)
        if (auto start = process_start(pid); start && start->ticks < owner_start->ticks)
            return false;
    return true;
}

}  // namespace

RunCgroup::RunCgroup() {
    if (disabled_by_environment()) {
        error_ = "cgroup disabled by MUXBENCH_DISABLE_CGROUP";
        return;
    }
    std::string name = fmt::format("{}{}-{}", kPrefix, getpid(), groups_made++);
    std::vector<std::string> tried;
    for (bool v2 : {true, false}) {
        if (v2 && cgroup_switch() == "cgroup2") {
            tried.push_back("cgroup2 left out by MUXBENCH_DISABLE_CGROUP=cgroup2");
            continue;
        }
        auto hierarchy = find_hierarchy(v2, "cpuacct");
        if (!hierarchy) {
            tried.push_back(v2 ? "no cgroup2 mount" : "no cgroup v1 cpuacct mount");
            continue;
        }
        std::string dir = (fs::path(hierarchy->parent) / name).string();
        if (mkdir(dir.c_str(), 0755) != 0) {
            tried.push_back(fmt::format("mkdir {}: {}", dir, std::strerror(errno)));
            continue;
        }
        register_group(dir);
        dirs_ = {dir};
        hierarchy_ = hierarchy->name;
        std::string why;
        if (read_cpu(&why)) {
            make_memory_group(name);
            return;
        }
        tried.push_back(why);
        std::string ignored;
        remove(&ignored);
    }
    error_ = "no cgroup gives the tree's CPU: " + fmt::format("{}", fmt::join(tried, "; "));
}

void RunCgroup::make_memory_group(const std::string& name) {
    if (!switch_value("MUXBENCH_DISABLE_MEMORY_CGROUP").empty()) {
        memory_error_ = "memory cgroup disabled by MUXBENCH_DISABLE_MEMORY_CGROUP";
        return;
    }
    auto hierarchy = find_hierarchy(false, "memory");
    if (!hierarchy) {
        memory_error_ =
            "no cgroup v1 memory hierarchy is mounted (v2's memory controller would need a "
            "parent group of the runs' own: run_cgroup.cpp)";
        return;
    }
    std::string dir = (fs::path(hierarchy->parent) / name).string();
    if (mkdir(dir.c_str(), 0755) != 0) {
        memory_error_ = fmt::format("mkdir {}: {}", dir, std::strerror(errno));
        return;
    }
    register_group(dir);
    std::string why;
    if (!write_file(dir + "/memory.kmem.tcp.limit_in_bytes", "-1", &why)) {
        memory_error_ = why + " (v1 charges no socket buffer to a group whose TCP limit is unset)";
        empty_and_remove(dir.c_str());
        unregister_group(dir);
        return;
    }
    memory_dir_ = dir;
    dirs_.push_back(dir);
    if (!read_memory(&why)) {
        memory_error_ = why;
        memory_dir_.clear();
        empty_and_remove(dir.c_str());
        unregister_group(dir);
        dirs_.pop_back();
    }
}

RunCgroup::~RunCgroup() {
    std::string ignored;
    remove(&ignored);
}

bool RunCgroup::attach(pid_t pid, std::string* error) {
    if (!ok() || !write_file(dirs_.front() + "/cgroup.procs", std::to_string(pid), error))
        return false;
    if (!memory_dir_.empty() &&
        !write_file(memory_dir_ + "/cgroup.procs", std::to_string(pid), &memory_error_))
        memory_dir_.clear();  // the group stays in dirs_, to be removed with the rest
    return true;
}

std::optional<CgroupMemory> RunCgroup::read_memory(std::string* error) const {
    if (memory_dir_.empty()) {
        *error = memory_error_.empty() ? error_ : memory_error_;
        return std::nullopt;
    }
    auto kernel = number_in(memory_dir_ + "/memory.kmem.usage_in_bytes");
    auto socket = number_in(memory_dir_ + "/memory.kmem.tcp.usage_in_bytes");
    if (!kernel || !socket) {
        *error = fmt::format(
            "cannot read {}/memory.kmem.usage_in_bytes and "
            "memory.kmem.tcp.usage_in_bytes",
            memory_dir_);
        return std::nullopt;
    }
    return CgroupMemory{*kernel, *socket};
}

std::optional<CgroupCpu> RunCgroup::read_cpu(std::string* error) const {
    if (!ok()) {
        *error = error_;
        return std::nullopt;
    }
    const std::string& dir = dirs_.front();
    CgroupCpu cpu;
    if (hierarchy_ == "cgroup2") {
        auto text = read_file(dir + "/cpu.stat");
        auto usage = text ? keyed_value(*text, "usage_usec") : std::nullopt;
        auto user = text ? keyed_value(*text, "user_usec") : std::nullopt;
        auto system = text ? keyed_value(*text, "system_usec") : std::nullopt;
        if (!usage || !user || !system) {
            *error = fmt::format("{}/cpu.stat has no usage_usec, user_usec and system_usec", dir);
            return std::nullopt;
        }
        cpu = {*usage, *user, *system};
    } else {
        auto usage = number_in(dir + "/cpuacct.usage");
        auto user = number_in(dir + "/cpuacct.usage_user");
        auto system = number_in(dir + "/cpuacct.usage_sys");
        if (!usage || !user || !system) {
            *error = fmt::format("cannot read {}/cpuacct.usage, usage_user and usage_sys", dir);
            return std::nullopt;
        }
        cpu = {*usage / 1000, *user / 1000, *system / 1000};  // ns there
    }
    return cpu;
}

std::vector<pid_t> RunCgroup::processes() const {
    std::vector<pid_t> pids;
    if (!ok()) return pids;
    std::ifstream in(dirs_.front() + "/cgroup.procs");
    for (pid_t pid; in >> pid;) pids.push_back(pid);
    return pids;
}

bool RunCgroup::freeze(std::chrono::milliseconds timeout, std::string* error) {
    if (!ok() || hierarchy_ != "cgroup2") {
        *error = fmt::format(
            "the run's group is {}, which cannot be frozen: only cgroup v2 has "
            "cgroup.freeze",
            ok() ? "on cgroup v1" : "missing");
        return false;
    }
    const std::string& dir = dirs_.front();
    if (!write_file(dir + "/cgroup.freeze", "1", error)) return false;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto events = read_file(dir + "/cgroup.events");
        if (events && keyed_value(*events, "frozen") == 1) return true;
        if (std::chrono::steady_clock::now() >= deadline) {
            *error = fmt::format("{} was not frozen within {} ms", dir, timeout.count());
            return false;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

void RunCgroup::thaw() {
    if (ok() && hierarchy_ == "cgroup2") write_file(dirs_.front() + "/cgroup.freeze", "0", nullptr);
}

bool RunCgroup::remove(std::string* error) {
    thaw();  // a frozen task dies of SIGKILL too, but need not be left frozen meanwhile
    bool all = true;
    memory_dir_.clear();
    for (const auto& dir : dirs_) {
        if (int err = empty_and_remove(dir.c_str())) {
            *error = fmt::format("cannot remove {}: {}", dir, std::strerror(err));
            all = false;
        }
        unregister_group(dir);
    }
    dirs_.clear();
    return all;
}

std::vector<std::string> remove_stale_cgroups(std::vector<std::string>* errors) {
    std::vector<std::string> removed;
    if (disabled_by_environment()) return removed;
    for (auto hierarchy : {find_hierarchy(true, "cpuacct"), find_hierarchy(false, "cpuacct"),
                           find_hierarchy(false, "memory")}) {
        if (!hierarchy) continue;
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(hierarchy->parent, ec)) {
            std::string name = entry.path().filename().string();
            if (!name.starts_with(kPrefix) || !entry.is_directory()) continue;
            // muxbench-<pid>-<n>, nothing else
            std::string_view rest = std::string_view(name).substr(kPrefix.size());
            size_t dash = rest.find('-');
            if (dash == 0 || dash == std::string_view::npos || dash + 1 == rest.size() ||
                rest.find_first_not_of("0123456789-") != std::string_view::npos)
                continue;
            pid_t owner =
                pid_t(std::strtol(std::string(rest.substr(0, dash)).c_str(), nullptr, 10));
            if (owner <= 0 || made_by_a_living_process(entry.path().string(), owner)) continue;
            std::string path = entry.path().string();
            if (int err = empty_and_remove(path.c_str()))
                errors->push_back(
                    fmt::format("cannot remove the stale group {}: {}", path, std::strerror(err)));
            else
                removed.push_back(path);
        }
    }
    return removed;
}

void remove_cgroups_on_termination_signals() {
    struct sigaction action {};
    action.sa_handler = on_termination;
    sigemptyset(&action.sa_mask);
    for (int signo : {SIGINT, SIGTERM, SIGHUP}) sigaction(signo, &action, nullptr);
}

}  // namespace mux::sweep
