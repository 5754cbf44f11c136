// Progress of a long sweep: a redrawn bar on a terminal, plain lines otherwise (CI logs).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace mux::sweep {

class Progress {
  public:
    explicit Progress(size_t total_points);
    // Called before each point starts.
    void start_point(size_t index, const std::string& label);
    // Called after each point, with a one-word outcome ("ok", "refused", "failed").
    void finish_point(const std::string& outcome, const std::string& detail);
    void done();

  private:
    std::string eta() const;

    size_t total_;
    size_t finished_ = 0;
    bool tty_;
    std::string label_;
    std::chrono::steady_clock::time_point started_;
    std::chrono::steady_clock::time_point point_started_;
};

}  // namespace mux::sweep
