// The check's three outputs: a Markdown summary for a pull request or CI job page, JUnit XML
// so CI lists each judged metric as a test case, and check.json for tools.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "check.hpp"

namespace mux::check {

// Where each run came from, for the summary's header line.
struct RunMeta {
    std::string folder, git_commit, hostname, kernel, started_at, plan;
};
RunMeta run_meta(const std::string& folder, const nlohmann::json& results);

struct ChartLink {
    std::string title;
    std::string href;  // relative to the Markdown file
};

std::string markdown(const CheckReport& report, const RunMeta& base, const RunMeta& current,
                     const std::vector<ChartLink>& charts, const std::string& charts_note);
std::string junit_xml(const CheckReport& report);
nlohmann::json report_json(const CheckReport& report, const RunMeta& base, const RunMeta& current);

}  // namespace mux::check
