#include "environment.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "git_commit.h"  // MUXBENCH_GIT_COMMIT, written at build time by cmake/git_commit.cmake
#ifndef MUXBENCH_CXX_FLAGS
#define MUXBENCH_CXX_FLAGS "unknown"
#endif
#ifndef MUXBENCH_BUILD_TYPE
#define MUXBENCH_BUILD_TYPE "unknown"
#endif

namespace mux {

namespace {

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) != 0) continue;
        size_t colon = line.find(':');
        if (colon == std::string::npos) break;
        size_t start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? "" : line.substr(start);
    }
    return "unknown";
}

nlohmann::json cpu_affinity() {
    nlohmann::json cpus = nlohmann::json::array();
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    return cpus;
}

std::string date_utc() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

const char* git_commit() {
    return MUXBENCH_GIT_COMMIT;
}

nlohmann::json describe_environment() {
    nlohmann::json env;
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    env["hostname"] = host;
    utsname u{};
    if (uname(&u) == 0)
        env["kernel"] = {{"sysname", u.sysname},
                         {"release", u.release},
                         {"version", u.version},
                         {"machine", u.machine}};
    env["cpu_model"] = cpu_model();
    env["online_cores"] = sysconf(_SC_NPROCESSORS_ONLN);
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    env["fd_limit"] = {{"soft", static_cast<uint64_t>(lim.rlim_cur)},
                       {"hard", static_cast<uint64_t>(lim.rlim_max)}};
    env["cpu_affinity"] = cpu_affinity();
    env["compiler"] = __VERSION__;
    env["build_type"] = MUXBENCH_BUILD_TYPE;
    env["compiler_flags"] = MUXBENCH_CXX_FLAGS;
    env["git_commit"] = git_commit();
    env["date_utc"] = date_utc();
    return env;
}

}  // namespace mux
