// Why a separate muxload: the point's own muxload opens its connections as fast as the server
// accepts them, so no instant of its ramp has exactly one open, and pausing it there would
// change the ramp every point measures. A short run of the same binary with the point's
// protocol and payload, and the same CPUs, costs about one process start and 50 ms per point
// (0.15 s for io-uring).
// The server keeps nothing of that connection but what a closed connection leaves (a fork
// child exits, a thread ends and glibc keeps its stack for the next one), and the baseline
// was read while the connection was open: a reading after the window holds the same first
// connection's costs, so its growth over the baseline is what the others cost.
#include "memory_baseline.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "subprocess.hpp"

namespace mux::sweep {

namespace {

// One try: "" once `sample` ran with the connection open after a window with enough
// replies, else why not, with muxload's own reasons.
std::string one_try(const Point& one, const Plan& brief, const Binaries& bin,
                    const std::string& target, uint64_t replies_needed,
                    std::chrono::steady_clock::time_point deadline,
                    const std::function<void()>& sample, uint64_t* replies) {
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
    bool sampled = false, window_ended = false;
    while (auto line = loadgen.read_line(left())) {
        auto event = nlohmann::json::parse(*line, nullptr, false);
        if (!event.is_object()) continue;
        if (event.value("event", "") == "measure_end") window_ended = true;
        if (sampled || event.value("event", "") != "holding") continue;
        // muxload writes its report as it exits: how many replies the window had is known
        // only after the reading, which stands only if they were enough.
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
    *replies = summary.value("requests", uint64_t{0});
    if (sampled && summary.value("completed", false) && *replies >= replies_needed) return "";
    std::string reasons;
    for (const auto& reason : summary.value("not_clean_reasons", std::vector<std::string>{}))
        reasons += (reasons.empty() ? ": " : "; ") + reason;
    std::string what = !sampled ? (window_ended ? "it printed no holding line after its window"
                                                : "it ended without a window")
                                : fmt::format("{} replies in its {:g} s window, of the {} needed",
                                              *replies, brief.duration_s, replies_needed);
    return fmt::format("{} (muxload exit status {}{})", what, exit_code, reasons);
}

}  // namespace

uint64_t baseline_replies_needed(const nlohmann::json& listening) {
    uint64_t pool = listening.is_object() ? listening.value("io_uring_buffers", uint64_t{0}) : 0;
    return std::max(kBaselineMinReplies, 2 * pool);
}

std::string with_one_idle_connection(const Point& point, const Plan& plan, const Binaries& bin,
                                     const std::string& target, uint64_t replies_needed,
                                     std::chrono::milliseconds time_left,
                                     const std::function<void()>& sample, uint64_t* replies) {
    const auto deadline = std::chrono::steady_clock::now() + time_left;
    Point one = point;
    one.conns = one.active = 1;
    one.rate_per_s = 0;
    one.requests_per_conn = 0;
    one.slow_mix.clear();
    Plan brief = plan;
    brief.duration_s = std::max(kBaselineWindowS, double(replies_needed) * kBaselineRoundTripS);
    brief.warmup_s = 0;
    brief.work_us = 0;  // work changes no server's memory, and would slow the warming replies
    // A slower loopback than kBaselineWindowS assumes, or a server slow to take its first
    // connection (the window opens once the connection is made, which on loopback is before
    // the server has accepted it), leaves the window short of replies. The next try's window
    // is long enough for half as many again at the rate the last one had, at least twice as
    // long and at most 10 times (a late accept leaves a few replies that say little of the
    // rate; 5 times after none), and never longer than what is left of the time, less
    // kBaselineReadingS for the process and the reading; no try follows one that could not
    // be longer.
    std::vector<std::string> failures;
    *replies = 0;
    for (int attempt = 0; attempt < kBaselineTries; ++attempt) {
        if (std::chrono::steady_clock::now() >= deadline) break;
        std::string why =
            one_try(one, brief, bin, target, replies_needed, deadline, sample, replies);
        if (why.empty()) return "";
        failures.push_back(why);
        const double enough =
            1.5 * double(replies_needed) / double(std::max(*replies, uint64_t{1}));
        const double left_s =
            std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
        const double last_s = brief.duration_s;
        brief.duration_s *= *replies == 0 ? 5 : std::clamp(enough, 2.0, 10.0);
        brief.duration_s = std::min(brief.duration_s, left_s - kBaselineReadingS);
        if (brief.duration_s <= last_s) break;
    }
    return fmt::format("the one-connection muxload run for the baseline failed {} times: {}",
                       failures.size(), fmt::join(failures, "; "));
}

}  // namespace mux::sweep
