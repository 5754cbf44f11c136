// Hostile results files against the C++ tools (issue 16). Each case of
// tests/hostile_results/cases.json (a truncated file, wrong types, NaN and Infinity, absurd
// numbers, another schema...) is given to `muxbench check` as baseline and as current, and to
// `muxbench merge`: each must exit 2 with one line that names the file and the field, and
// leave no report or merged folder behind. plot/tests runs the same cases through muxplot.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "results.hpp"
#include "results_validation.hpp"
#include "server_process.hpp"
#include "subprocess.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const fs::path kCasesDir = fs::path(MUX_SOURCE_DIR) / "tests" / "hostile_results";

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_text(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

struct HostileCase {
    std::string name;
    std::string text;
    std::vector<std::string> expect;
};

// The case's file, made as cases.json says.
HostileCase make_case(const nlohmann::json& c) {
    HostileCase out{c.at("name"), "", c.at("expect").get<std::vector<std::string>>()};
    if (c.contains("text")) {
        out.text = c["text"];
    } else if (c.contains("text_repeated")) {
        for (int i = 0; i < c["text_repeated"][1].get<int>(); ++i)
            out.text += c["text_repeated"][0].get<std::string>();
    } else {
        out.text = read_text(kCasesDir / c.at("base").get<std::string>());
        if (c.contains("replace")) {
            std::string from = c["replace"][0], to = c["replace"][1];
            size_t at = out.text.find(from);
            if (at == std::string::npos)
                throw std::runtime_error(out.name + ": nothing to replace");
            out.text.replace(at, from.size(), to);
        } else {
            std::string after = c.at("truncate_after");
            size_t at = out.text.find(after);
            if (at == std::string::npos) throw std::runtime_error(out.name + ": nowhere to cut");
            out.text.resize(at + after.size());
        }
    }
    return out;
}

std::vector<HostileCase> cases() {
    auto doc = nlohmann::json::parse(read_text(kCasesDir / "cases.json"));
    std::vector<HostileCase> out;
    for (const auto& c : doc.at("cases")) out.push_back(make_case(c));
    return out;
}

void PrintTo(const HostileCase& c, std::ostream* os) {
    *os << c.name;
}

struct Outcome {
    int exit_code = -1;
    std::string stderr_text;
};

// Runs muxbench and keeps only its standard error, where a refusal is written.
Outcome muxbench_stderr(std::vector<std::string> args) {
    args.insert(args.begin(), {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1 >/dev/null",
                               mux::test::binary_path("muxbench")});
    mux::Subprocess process(args);
    Outcome outcome;
    if (!process.running()) {
        outcome.stderr_text = process.error();
        return outcome;
    }
    outcome.stderr_text = process.read_rest(60s);
    auto status = process.wait(10s);
    if (status && WIFEXITED(*status)) outcome.exit_code = WEXITSTATUS(*status);
    return outcome;
}

class HostileResults : public testing::TestWithParam<HostileCase> {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("muxbench-hostile-" + std::to_string(getpid()) + "-" + GetParam().name);
        fs::remove_all(dir_);
        good_ = dir_ / "good";
        hostile_ = dir_ / "hostile";
        write_text(good_ / "results.json", read_text(kCasesDir / "base.json"));
        write_text(hostile_ / "results.json", GetParam().text);
    }
    void TearDown() override { fs::remove_all(dir_); }

    // Exit 2 and one line naming the hostile file and every expected fragment.
    void expect_refusal(const Outcome& o, const std::string& tool) {
        SCOPED_TRACE(tool + " said: " + o.stderr_text);
        EXPECT_EQ(o.exit_code, 2);
        std::string text = o.stderr_text;
        if (!text.empty() && text.back() == '\n') text.pop_back();
        EXPECT_FALSE(text.empty());
        EXPECT_EQ(text.find('\n'), std::string::npos) << "more than one line";
        EXPECT_NE(text.find((hostile_ / "results.json").string()), std::string::npos)
            << "the file is not named";
        for (const auto& fragment : GetParam().expect)
            EXPECT_NE(text.find(fragment), std::string::npos) << "no '" << fragment << "'";
    }

    fs::path dir_, good_, hostile_;
};

TEST_P(HostileResults, CheckRefusesItAsCurrent) {
    fs::path report = dir_ / "report";
    expect_refusal(
        muxbench_stderr({"check", "--baseline", good_.string(), "--current", hostile_.string(),
                         "--report-dir", report.string(), "--no-charts"}),
        "check");
    EXPECT_FALSE(fs::exists(report));
    EXPECT_FALSE(fs::exists(hostile_ / "check"));
}

TEST_P(HostileResults, CheckRefusesItAsBaseline) {
    expect_refusal(muxbench_stderr({"check", "--baseline", hostile_.string(), "--current",
                                    good_.string(), "--no-charts"}),
                   "check");
    EXPECT_FALSE(fs::exists(good_ / "check"));
}

TEST_P(HostileResults, MergeRefusesItAndWritesNothing) {
    fs::path out = dir_ / "merged";
    expect_refusal(
        muxbench_stderr({"merge", good_.string(), hostile_.string(), "--out", out.string()}),
        "merge");
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(dir_ / "merged.partial"));
}

INSTANTIATE_TEST_SUITE_P(Cases, HostileResults, testing::ValuesIn(cases()),
                         [](const auto& p) { return p.param.name; });

// The other side of the same rules: real and hand-made files of both schemas are read.
TEST(ResultsValidation, AcceptsWhatMuxbenchAndTheFixturesHold) {
    for (fs::path folder : {kCasesDir / "base.json", kCasesDir / "base_v2.json",
                            fs::path(MUX_SOURCE_DIR) / "results" / "reference",
                            fs::path(MUX_SOURCE_DIR) / "plot" / "tests" / "fixtures" / "minimal",
                            fs::path(MUX_SOURCE_DIR) / "plot" / "tests" / "fixtures" / "full"}) {
        std::string error;
        EXPECT_TRUE(mux::sweep::read_results(folder, &error)) << error;
    }
}

TEST(ResultsValidation, JudgesNumbersByTheKindTheirKeyNames) {
    auto base = nlohmann::json::parse(read_text(kCasesDir / "base_v2.json"));
    auto problem_with = [&](const nlohmann::json::json_pointer& at, nlohmann::json value) {
        nlohmann::json doc = base;
        doc[at] = std::move(value);
        return mux::sweep::results_problem(doc).value_or("");
    };
    using ptr = nlohmann::json::json_pointer;
    EXPECT_EQ(problem_with(ptr("/points/0/server_cost/memory_bytes_per_connection"), -40), "");
    EXPECT_EQ(problem_with(ptr("/points/0/server_cost/cpu_us_per_request"), nullptr), "");
    // A metric no list names is judged by its unit: a new _per_request figure below zero.
    EXPECT_NE(problem_with(ptr("/points/0/server_cost/tlb_misses_per_request"), -1)
                  .find("points[0].server_cost.tlb_misses_per_request: -1 is out of range"),
              std::string::npos);
    EXPECT_NE(problem_with(ptr("/points/0/timing_s/ramp_s"), 1e12).find("duration in s"),
              std::string::npos);
    EXPECT_NE(problem_with(ptr("/points/0/repeat"), 2.5).find("not a whole number"),
              std::string::npos);
    EXPECT_NE(problem_with(ptr("/plan/repeats"), 1e30).find("plan.repeats"), std::string::npos);
    EXPECT_NE(problem_with(ptr("/summary/0/metrics/jain_index/max"), 1.5).find("fraction"),
              std::string::npos);
    EXPECT_NE(problem_with(ptr("/points/0/status"), "skipped").find("points[0].status"),
              std::string::npos);
    std::string odd = problem_with(ptr("/points/0/server_cost/odd\nkey_us"), -1);
    EXPECT_NE(odd.find(R"(points[0].server_cost["odd\nkey_us"])"), std::string::npos) << odd;
    EXPECT_EQ(odd.find('\n'), std::string::npos) << "a key broke the one-line message";
    EXPECT_NE(problem_with(ptr("/points/0/loadgen/summary/latency_us/p99"), "slow")
                  .find("points[0].loadgen.summary.latency_us.p99: expected a number"),
              std::string::npos);
    EXPECT_NE(problem_with(ptr("/schema"), "muxbench-results/3").find("muxbench-results/3"),
              std::string::npos);
}

TEST(ResultsValidation, MergeWritesARunThatReadsBack) {
    fs::path dir = fs::temp_directory_path() / ("muxbench-merge-v2-" + std::to_string(getpid()));
    fs::remove_all(dir);
    write_text(dir / "a" / "results.json", read_text(kCasesDir / "base_v2.json"));
    write_text(dir / "b" / "results.json", read_text(kCasesDir / "base_v2.json"));
    fs::create_directories(dir / "merged");  // an empty OUT is taken over
    Outcome o = muxbench_stderr(
        {"merge", (dir / "a").string(), (dir / "b").string(), "--out", (dir / "merged").string()});
    EXPECT_EQ(o.exit_code, 0) << o.stderr_text;
    std::string error;
    auto merged = mux::sweep::read_results(dir / "merged", &error);
    ASSERT_TRUE(merged) << error;
    EXPECT_EQ((*merged)["schema"], "muxbench-results/2");
    EXPECT_EQ((*merged)["points"].size(), 4u);
    EXPECT_FALSE(fs::exists(dir / "merged.partial"));
    fs::remove_all(dir);
}

}  // namespace
