// Why a separate muxload: the point's own muxload opens its connections as fast as the server
// accepts them, so no instant of its ramp has exactly one open, and pausing it there would
// change the ramp every point measures. A short run of the same binary with the point's
// protocol, payload and work, and the same CPUs, costs about one process start per point.
// The server keeps nothing of that connection but what a closed connection leaves (a fork
// child exits, a thread ends and glibc keeps its stack for the next one), and the baseline
// was read while the connection was open: a reading after the window holds the same first
// connection's costs, so its growth over the baseline is what the others cost.
#include "memory_baseline.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "subprocess.hpp"

namespace mux::sweep {

namespace {

// One try: "" once `sample` ran with the connection open after a window with replies, else
// why not, with muxload's own reasons.
std::string one_try(const Point& one, const Plan& brief, const Binaries& bin,
                    const std::string& target, std::chrono::steady_clock::time_point deadline,
                    const std::function<void()>& sample) {
    auto left = [&] {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        return std::max(ms, std::chrono::milliseconds(1));
    };
    std::string json_path = fmt::format("{}/muxbench-baseline-{}.json",
                                        std::filesystem::temp_directory_path().string(), getpid());
    SpawnOptions options;
    options.cpus = brief.client_cpus;
    options.pipe_stdin = true;  // closed once the baseline is read
    Subprocess loadgen(loadgen_argv(one, brief, bin, target, json_path), options);
    bool sampled = false;
    while (auto line = loadgen.read_line(left())) {
        auto event = nlohmann::json::parse(*line, nullptr, false);
        if (sampled || !event.is_object() || event.value("event", "") != "measure_end") continue;
        // muxload writes its report as it exits: whether the window had replies is known
        // only after the reading, which stands only if it had.
        sample();
        sampled = true;
        loadgen.close_stdin();
    }
    auto status = loadgen.wait(left());
    if (!status) loadgen.stop(std::chrono::milliseconds(2000));
    std::ifstream in(json_path);
    auto parsed = nlohmann::json::parse(in, nullptr, false);
    std::filesystem::remove(json_path);
    int exit_code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    const auto summary = parsed.is_object() ? parsed.value("summary", nlohmann::json::object())
                                            : nlohmann::json::object();
    if (sampled && summary.value("completed", false) && summary.value("requests", uint64_t{0}) > 0)
        return "";
    std::string reasons;
    for (const auto& reason : summary.value("not_clean_reasons", std::vector<std::string>{}))
        reasons += (reasons.empty() ? ": " : "; ") + reason;
    return fmt::format("{} (muxload exit status {}{})",
                       sampled ? "no verified reply in its window" : "it ended without a window",
                       exit_code, reasons);
}

}  // namespace

std::string with_one_idle_connection(const Point& point, const Plan& plan, const Binaries& bin,
                                     const std::string& target, std::chrono::milliseconds time_left,
                                     const std::function<void()>& sample) {
    const auto deadline = std::chrono::steady_clock::now() + time_left;
    Point one = point;
    one.conns = one.active = 1;
    one.rate_per_s = 0;
    one.requests_per_conn = 0;
    one.slow_mix.clear();
    Plan brief = plan;
    brief.duration_s = kBaselineWindowS;
    brief.warmup_s = 0;
    // The window opens once the connection is made, which on loopback is before the server
    // has accepted it: on a loaded machine (or a server slow to take a connection) the first
    // reply can miss so short a window. Each further try has a window 5 times longer.
    std::vector<std::string> failures;
    for (int attempt = 0; attempt < kBaselineTries; ++attempt) {
        if (std::chrono::steady_clock::now() >= deadline) break;
        if (attempt > 0) brief.duration_s *= 5;
        std::string why = one_try(one, brief, bin, target, deadline, sample);
        if (why.empty()) return "";
        failures.push_back(why);
    }
    return fmt::format("the one-connection muxload run for the baseline failed {} times: {}",
                       failures.size(), fmt::join(failures, "; "));
}

}  // namespace mux::sweep
