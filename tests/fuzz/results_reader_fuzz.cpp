// libFuzzer harness: the results reader that `muxbench check` and `muxbench merge` use,
// sweep::parse_results (bench/sweep/results_validation.hpp).
//
// A document it accepts must keep the promise validation makes: every number finite, and
// everything check and merge then do with it (metrics, summary, merge, the Google Benchmark
// export, the check's judgement) runs without a JSON type error, a failed assertion or an
// out-of-range conversion. What merge writes from accepted runs must itself be accepted.
// A refusal is one line naming the file. And the file read in pieces (a pipe, a slow disk)
// must give the same answer as the file read whole.
#include <sstream>
#include <streambuf>

#include "check.hpp"
#include "fuzz_input.hpp"
#include "gbench_export.hpp"
#include "results.hpp"
#include "results_validation.hpp"

namespace {

using nlohmann::json;

// Hands out the message one segment at a time, ending at each cut.
class SegmentedBuf : public std::streambuf {
  public:
    SegmentedBuf(std::string_view message, std::vector<size_t> cuts)
        : message_(message), ends_(std::move(cuts)) {
        ends_.push_back(message.size());
    }

  protected:
    int_type underflow() override {
        if (next_ == ends_.size()) return traits_type::eof();
        char* base = const_cast<char*>(message_.data());
        size_t begin = next_ == 0 ? 0 : ends_[next_ - 1];
        setg(base + begin, base + begin, base + ends_[next_]);
        ++next_;
        return gptr() == egptr() ? underflow() : traits_type::to_int_type(*gptr());
    }

  private:
    std::string_view message_;
    std::vector<size_t> ends_;
    size_t next_ = 0;
};

struct Outcome {
    std::optional<json> results;
    std::string error;
    bool operator==(const Outcome&) const = default;
};

Outcome read_whole(std::string_view message) {
    std::istringstream in{std::string(message)};
    Outcome o;
    o.results = mux::sweep::parse_results(in, "fuzz.json", &o.error);
    return o;
}

Outcome read_split(std::string_view message, const std::vector<size_t>& cuts) {
    SegmentedBuf buf(message, cuts);
    std::istream in(&buf);
    Outcome o;
    o.results = mux::sweep::parse_results(in, "fuzz.json", &o.error);
    return o;
}

void require_finite(const json& j) {
    if (j.is_number_float()) FUZZ_REQUIRE(std::isfinite(j.get<double>()), "non-finite accepted");
    if (j.is_structured())
        for (const auto& child : j) require_finite(child);
}

// Everything check and merge do with a run they have read.
void use_like_the_tools(const json& results) {
    try {
        for (const auto& point : results["points"]) (void)mux::sweep::metrics_of(point);
        (void)mux::sweep::summarize(results["points"]);
        (void)mux::sweep::summary_table(results);
        (void)mux::sweep::gbench_json(results).dump();
        std::string error;
        auto merged = mux::sweep::merge_runs({results, results}, {"a", "b"}, &error);
        FUZZ_REQUIRE(merged, "a run does not merge with itself: %s", error.c_str());
        // Merging sums repeats and recomputes the summary, which can carry a figure at the edge
        // of its sane range past it; merge then refuses to write the run (it reads it back).
        // Anything else wrong with what merge makes is a bug.
        if (auto problem = mux::sweep::results_problem(*merged))
            FUZZ_REQUIRE(problem->find("is out of range") != std::string::npos,
                         "merge made what check refuses: %s", problem->c_str());
        mux::check::CheckOptions options;
        (void)mux::check::check_runs(results, results, options);
        options.stable_only = true;
        (void)mux::check::check_runs(results, *merged, options);
    } catch (const json::exception& e) {
        FUZZ_REQUIRE(false, "an accepted run made a tool throw: %s", e.what());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    mux::fuzz::Input in = mux::fuzz::read_input(data, size);
    Outcome whole = read_whole(in.message);
    Outcome split = read_split(in.message, in.cuts);
    FUZZ_REQUIRE(whole == split, "whole: %s; in %zu pieces: %s",
                 whole.results ? "accepted" : whole.error.c_str(), in.cuts.size() + 1,
                 split.results ? "accepted" : split.error.c_str());
    if (!whole.results) {
        FUZZ_REQUIRE(whole.error.rfind("fuzz.json: ", 0) == 0, "error names no file: %s",
                     whole.error.c_str());
        FUZZ_REQUIRE(whole.error.find('\n') == std::string::npos, "error of many lines: %s",
                     whole.error.c_str());
        return 0;
    }
    const json& results = *whole.results;
    auto again = mux::sweep::results_problem(results);
    FUZZ_REQUIRE(!again, "accepted, then refused: %s", again->c_str());
    FUZZ_REQUIRE(mux::sweep::readable_schema(results["schema"].get<std::string>()),
                 "accepted an unknown schema");
    require_finite(results);
    use_like_the_tools(results);
    return 0;
}
