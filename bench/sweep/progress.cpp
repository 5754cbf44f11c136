#include "progress.hpp"

#include <unistd.h>

#include <fmt/format.h>

namespace mux::sweep {

Progress::Progress(size_t total_points)
    : total_(total_points),
      tty_(isatty(STDERR_FILENO) != 0),
      started_(std::chrono::steady_clock::now()) {}

std::string Progress::eta() const {
    if (finished_ == 0) return "--:--";
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    auto left = static_cast<long>(elapsed / double(finished_) * double(total_ - finished_));
    return fmt::format("{}:{:02}", left / 60, left % 60);
}

void Progress::start_point(size_t index, const std::string& label) {
    label_ = label;
    point_started_ = std::chrono::steady_clock::now();
    if (!tty_) {
        fmt::print(stderr, "[{}/{}] {} ...\n", index + 1, total_, label);
        return;
    }
    constexpr size_t kWidth = 30;
    size_t filled = total_ ? finished_ * kWidth / total_ : 0;
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>';
    bar.resize(kWidth, ' ');
    fmt::print(stderr, "\r\033[K[{}] {}/{}  {}  left {}", bar, index + 1, total_, label, eta());
    std::fflush(stderr);
}

void Progress::finish_point(const std::string& outcome, const std::string& detail) {
    ++finished_;
    double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - point_started_).count();
    if (!tty_) {
        fmt::print(stderr, "    {} in {:.1f} s{}{}\n", outcome, took, detail.empty() ? "" : ": ",
                   detail);
        return;
    }
    if (outcome != "ok") fmt::print(stderr, "\r\033[K{}: {} {}\n", label_, outcome, detail);
}

void Progress::done() {
    double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    if (tty_) fmt::print(stderr, "\r\033[K");
    fmt::print(stderr, "{} points in {:.0f} s\n", total_, took);
}

}  // namespace mux::sweep
