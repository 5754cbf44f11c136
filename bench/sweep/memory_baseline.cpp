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

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "subprocess.hpp"

namespace mux::sweep {

std::string with_one_idle_connection(const Point& point, const Plan& plan, const Binaries& bin,
                                     const std::string& target, std::chrono::milliseconds time_left,
                                     const std::function<void()>& sample) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + time_left;
    auto left = [&] {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        return std::max(ms, std::chrono::milliseconds(1));
    };
    Point one = point;
    one.conns = one.active = 1;
    one.rate_per_s = 0;
    one.requests_per_conn = 0;
    one.slow_mix.clear();
    Plan brief = plan;
    brief.duration_s = kBaselineWindowS;
    brief.warmup_s = 0;
    std::string json_path = fmt::format("{}/muxbench-baseline-{}.json",
                                        std::filesystem::temp_directory_path().string(), getpid());
    SpawnOptions options;
    options.cpus = plan.client_cpus;
    options.pipe_stdin = true;  // closed once the baseline is read
    Subprocess loadgen(loadgen_argv(one, brief, bin, target, json_path), options);
    bool sampled = false;
    while (auto line = loadgen.read_line(left())) {
        auto event = nlohmann::json::parse(*line, nullptr, false);
        if (!sampled && event.is_object() && event.value("event", "") == "measure_end") {
            sample();
            sampled = true;
            loadgen.close_stdin();
        }
    }
    auto status = loadgen.wait(left());
    if (!status) loadgen.stop(std::chrono::milliseconds(2000));
    std::ifstream in(json_path);
    auto report = nlohmann::json::parse(in, nullptr, false);
    std::filesystem::remove(json_path);
    int exit_code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    if (!sampled)
        return fmt::format(
            "the one-connection muxload run for the baseline ended without a "
            "window (exit status {})",
            exit_code);
    const auto summary = report.is_object() ? report.value("summary", nlohmann::json::object())
                                            : nlohmann::json::object();
    if (!summary.value("completed", false) || summary.value("requests", uint64_t{0}) == 0)
        return fmt::format(
            "the one-connection muxload run for the baseline got no reply in "
            "its {:g} s window (exit status {})",
            kBaselineWindowS, exit_code);
    return "";
}

}  // namespace mux::sweep
