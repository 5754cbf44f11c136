#include "report.hpp"

#include "mann_whitney.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace mux::check {

namespace {

const std::map<std::string, std::string>& short_names() {
    static const std::map<std::string, std::string> names = {
        {"throughput_per_s", "throughput (requests/s)"},
        {"latency_p50_us", "p50 latency (us)"},
        {"latency_p99_us", "p99 latency (us)"},
        {"cpu_us_per_request", "server CPU per request (us)"},
        {"syscalls_per_request", "syscalls per request"},
        {"io_calls_per_request", "read/write calls per request"},
        {"wait_calls_per_request", "wait calls per request"},
        {"page_faults_per_request", "page faults per request"},
        {"ramp_s", "ramp (s)"},
        {"memory_bytes_per_connection", "memory per connection (bytes)"},
        {kFailedRepeats, "failed repeats"},
        {"status", "status"}};
    return names;
}

std::string metric_name(const std::string& metric) {
    auto slash = metric.find('/');
    if (slash != std::string::npos)
        return fmt::format("{} / {}", metric_name(metric.substr(0, slash)),
                           metric.substr(slash + 1));
    auto it = short_names().find(metric);
    return it == short_names().end() ? metric : it->second;
}

// The name without its unit, for a sentence: "server CPU per request".
std::string metric_title(const std::string& metric) {
    auto slash = metric.find('/');
    if (slash != std::string::npos)
        return fmt::format("{} / {}", metric_title(metric.substr(0, slash)),
                           metric.substr(slash + 1));
    std::string name = metric_name(metric);
    auto paren = name.find(" (");
    return paren == std::string::npos ? name : name.substr(0, paren);
}

std::string number(double v) {
    double a = std::fabs(v);
    if (a >= 1000) return fmt::format("{:.0f}", v);
    if (a >= 10) return fmt::format("{:.1f}", v);
    return fmt::format("{:.3g}", v);
}

std::string percent(double fraction) {
    double a = std::fabs(100 * fraction);
    return a >= 10 ? fmt::format("{:+.0f}%", 100 * fraction)
                   : fmt::format("{:+.1f}%", 100 * fraction);
}

std::string change_text(const Comparison& c) {
    if (c.metric == kFailedRepeats) return fmt::format("{:+.0f} points", 100 * c.change);
    return percent(c.change);
}

std::string interval_text(const Comparison& c) {
    if (!c.change_low) return "–";
    return fmt::format("{} to {}", percent(*c.change_low), percent(*c.change_high));
}

std::string failed_text(const std::vector<double>& repeats) {
    size_t failed = size_t(std::count(repeats.begin(), repeats.end(), 1.0));
    return fmt::format("{} of {}", failed, repeats.size());
}

std::string xml_escape(const std::string& s) {
    std::string out;
    for (char ch : s) {
        switch (ch) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                // XML 1.0 allows no control characters but tab, newline and return.
                if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r')
                    out += '?';
                else
                    out += ch;
        }
    }
    return out;
}

std::string values_text(const std::vector<double>& v) {
    std::string out;
    for (double x : v) out += (out.empty() ? "" : ", ") + number(x);
    return out;
}

void table(std::string& out, const std::vector<const Comparison*>& rows, double alpha) {
    out += fmt::format(
        "| point | model | metric | baseline | current | change | {:g}% interval | p (Holm) |\n",
        100 * (1 - alpha));
    out += "|---|---|---|---:|---:|---:|---:|---:|\n";
    for (const auto* c : rows) {
        if (c->metric == "status") {
            out += fmt::format("| {} | {} | status | | | {} | | |\n", point_label(*c), c->model,
                               c->detail);
            continue;
        }
        bool failures = c->metric == kFailedRepeats;
        out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {:.3g} |\n", point_label(*c),
                           c->model, metric_name(c->metric),
                           failures ? failed_text(c->base) : number(c->base_median),
                           failures ? failed_text(c->current) : number(c->current_median),
                           change_text(*c), interval_text(*c), c->p_holm);
    }
}

// "epoll-et: server CPU per request +18% across 6 of 6 points"
std::string pooled_headline(const PooledComparison& c) {
    return fmt::format(
        "{}: {} {} across {} of {} points", c.model, metric_title(c.metric), percent(c.change),
        c.worse_by > 0 ? c.worse_points : c.points.size() - c.worse_points, c.points.size());
}

std::string pooled_line(const PooledComparison& c) {
    std::string points;
    for (size_t i = 0; i < c.points.size(); ++i)
        points += fmt::format("{}{} {}", i ? ", " : "", c.points[i], percent(c.point_changes[i]));
    return fmt::format("- **{}** (p = {:.3g}, Holm {:.3g}; {})\n", pooled_headline(c), c.p,
                       c.p_holm, points);
}

// The rule, exactly as check_runs applies it (check.hpp and family.hpp say the same).
std::string rule_line(const CheckReport& r) {
    const auto& o = r.options;
    auto family_of = [](const FamilyShare& f, const char* what) {
        return fmt::format("K = {} for its {} {}, {} of them testable", f.size, f.candidates, what,
                           f.testable);
    };
    std::string points = fmt::format(
        "the single points (a two-sided Mann-Whitney U test over each point's repeats, exact "
        "given ties up to {} values a side and a normal approximation past that; Fisher's exact "
        "test for a change in failed repeats; {})",
        kExactLimit, family_of(r.points_family, "single points"));
    std::string pooled = fmt::format(
        "the pooled judgements (each model's metric across its points: a permutation test of "
        "whole repeats, each scored by the sum of its midranks at the points, its change the "
        "median of the points' changes; {})",
        family_of(r.pooled_family, "pooled judgements"));
    std::string family;
    if (r.points_family.candidates && r.pooled_family.candidates)
        family = fmt::format("{:g} over {} and {:g} over {}", r.points_family.alpha, points,
                             r.pooled_family.alpha, pooled);
    else
        family = fmt::format("{:g} over {}", o.alpha, r.points_family.candidates ? points : pooled);
    size_t untestable = r.count("untestable") + r.count_pooled("untestable");
    return fmt::format(
        "- rule: a change is the Hodges-Lehmann shift of the repeats' log ratio, so {:g}% worse "
        "is x{:g} for a cost and /{:g} for a rate. A regression is a significant change worse "
        "than {:g}% (for failed repeats, any significant rise in the share that failed; for "
        "memory per connection, also medians more than {:g} KiB apart, across points the median of "
        "the points' differences). Significant: its p "
        "passes a weighted Holm step-down at a false-alarm rate of {:g} for the whole check, "
        "{}. Each share's family is Tarone's: K is the smallest count with at most K tests "
        "whose smallest possible p is below the share over K, and the others are untestable. "
        "{} against {} repeats; {} comparison{} untestable and left out (each one's detail "
        "says why)\n",
        100 * o.threshold, 1 + o.threshold, 1 + o.threshold, 100 * o.threshold,
        kMemoryResolutionBytes / 1024, o.alpha, family, r.base_repeats, r.current_repeats,
        untestable, untestable == 1 ? "" : "s");
}

}  // namespace

RunMeta run_meta(const std::string& folder, const nlohmann::json& results) {
    const auto& env = results["environment"];
    RunMeta m;
    m.folder = folder;
    m.git_commit = env.value("git_commit", "?");
    m.hostname = env.value("hostname", "?");
    m.kernel = env.contains("kernel") && env["kernel"].is_object()
                   ? env["kernel"].value("release", "?")
                   : "?";
    m.started_at = results.value("started_at", "?");
    m.plan = results["plan"].value("name", "?");
    return m;
}

std::string markdown(const CheckReport& r, const RunMeta& base, const RunMeta& current,
                     const std::vector<ChartLink>& charts, const std::string& charts_note) {
    std::string out;
    size_t regressions = r.regressions();
    size_t pooled = r.count_pooled("regression");
    if (r.exit_code == 2)
        out += "## muxbench check: cannot compare\n\n";
    else if (regressions)
        out += fmt::format(
            "## muxbench check: {} regression{} ({} across points, {} at single "
            "points)\n\n",
            regressions, regressions == 1 ? "" : "s", pooled, regressions - pooled);
    else
        out += "## muxbench check: no regression\n\n";
    // A slowdown that shows everywhere comes first: it is what a change to shared code does.
    for (const auto& c : r.pooled)
        if (c.verdict == "regression") out += pooled_line(c);
    if (pooled) out += "\n";

    auto describe = [](const RunMeta& m) {
        return fmt::format("`{}` (plan {}, commit {}, host {}, kernel {}, started {})", m.folder,
                           m.plan, m.git_commit, m.hostname, m.kernel, m.started_at);
    };
    out += fmt::format("- baseline: {}\n- current: {}\n", describe(base), describe(current));
    if (r.exit_code == 2) {
        out += fmt::format("\n**Why:** {}\n", r.cannot_compare);
        return out;
    }
    out += rule_line(r);
    if (r.stable_only) {
        if (!r.same_host) {
            out += "- **different host**: ";
            for (size_t i = 0; i < r.host_differences.size(); ++i)
                out += (i ? "; " : "") + r.host_differences[i];
            out += ".";
        } else {
            out += "- asked for stable metrics only.";
        }
        out += fmt::format(
            " Judged only what holds across hosts: syscalls per request where steady, and each "
            "model's throughput, p50 and CPU per request as a ratio to {} in the same run.\n",
            r.options.reference_model);
    }
    for (const auto& note : r.notes) out += fmt::format("- note: {}\n", note);
    for (const auto& warning : r.warnings) out += fmt::format("- warning: {}\n", warning);

    std::vector<const Comparison*> bad, good;
    for (const auto& c : r.comparisons) {
        if (c.verdict == "regression" || c.verdict == "status") bad.push_back(&c);
        if (c.verdict == "improvement") good.push_back(&c);
    }
    if (!bad.empty()) {
        out += "\n### Regressions at single points\n\n";
        table(out, bad, r.options.alpha);
    }
    bool better_pooled = r.count_pooled("improvement") > 0;
    if (!good.empty() || better_pooled) {
        out += "\n### Improvements\n\n";
        for (const auto& c : r.pooled)
            if (c.verdict == "improvement") out += pooled_line(c);
        if (better_pooled && !good.empty()) out += "\n";
        if (!good.empty()) table(out, good, r.options.alpha);
    }

    out += "\n### Metrics, and how steady each is\n\n";
    out += "Spread is the median over points of (max − min) / median across one run's repeats.\n\n";
    out +=
        "| metric | judged | regressions | improvements | spread baseline | spread current | "
        "holds across hosts |\n";
    out += "|---|---:|---:|---:|---:|---:|---|\n";
    for (const auto& n : r.noise) {
        size_t judged_n = 0, worse = 0, better = 0;
        for (const auto& c : r.comparisons) {
            if (c.metric != n.metric || c.verdict == "untestable") continue;
            ++judged_n;
            worse += c.verdict == "regression";
            better += c.verdict == "improvement";
        }
        out +=
            fmt::format("| {} | {} | {} | {} | {:.1f}% | {:.1f}% | {} |\n", metric_name(n.metric),
                        judged_n, worse, better, 100 * n.base_spread, 100 * n.current_spread,
                        (n.holds_across_hosts ? "yes: " : "no: ") + n.why);
    }

    out += "\n### Charts\n\n";
    if (charts.empty()) out += fmt::format("Not drawn: {}\n", charts_note);
    for (const auto& link : charts) out += fmt::format("- [{}]({})\n", link.title, link.href);
    return out;
}

namespace {

void junit_case(std::string& out, const std::string& suite, const std::string& name,
                const std::string& verdict, const std::string& failure, const std::string& skipped,
                const std::string& said) {
    out += fmt::format("    <testcase classname=\"muxbench.{}\" name=\"{}\">\n", xml_escape(suite),
                       xml_escape(name));
    if (verdict == "regression" || verdict == "status")
        out += fmt::format("      <failure type=\"{}\" message=\"{}\">{}</failure>\n", verdict,
                           xml_escape(failure), xml_escape(said));
    else if (verdict == "untestable")
        out += fmt::format("      <skipped message=\"{}\"/>\n", xml_escape(skipped));
    else
        out += fmt::format("      <system-out>{}</system-out>\n", xml_escape(said));
    out += "    </testcase>\n";
}

void junit_point(std::string& out, const std::string& suite, const Comparison& c) {
    std::string values =
        fmt::format("baseline: {}\ncurrent: {}", values_text(c.base), values_text(c.current));
    std::string failure =
        c.verdict == "status"
            ? c.detail
            : fmt::format("{} {} (p = {:.3g}, Holm {:.3g})",
                          c.metric == kFailedRepeats ? "failed repeats" : "worse by",
                          c.metric == kFailedRepeats ? c.detail : percent(c.worse_by), c.p,
                          c.p_holm);
    std::string said =
        fmt::format("{}: median {} → {}, change {} ({}), p = {:.3g}, Holm {:.3g}\n{}", c.verdict,
                    number(c.base_median), number(c.current_median), change_text(c),
                    interval_text(c), c.p, c.p_holm, values);
    junit_case(out, suite, fmt::format("{} at {}", c.metric, point_label(c)), c.verdict, failure,
               c.detail, said);
}

void junit_pooled(std::string& out, const std::string& suite, const PooledComparison& c) {
    std::string said = fmt::format("{}: {} (p = {:.3g}, Holm {:.3g})", c.verdict,
                                   pooled_headline(c), c.p, c.p_holm);
    junit_case(out, suite, fmt::format("{} across points", c.metric), c.verdict, said, c.detail,
               said);
}

}  // namespace

std::string junit_xml(const CheckReport& r) {
    // Suites by scenario and model, and pooled.model for the judgements across points.
    std::map<std::string,
             std::pair<std::vector<const Comparison*>, std::vector<const PooledComparison*>>>
        suites;
    for (const auto& c : r.comparisons) suites[c.scenario + "." + c.model].first.push_back(&c);
    for (const auto& c : r.pooled) suites["pooled." + c.model].second.push_back(&c);
    size_t tests = r.comparisons.size() + r.pooled.size() + (r.exit_code == 2 ? 1 : 0);
    size_t failures = r.regressions() + (r.exit_code == 2 ? 1 : 0);
    size_t skipped = r.count("untestable") + r.count_pooled("untestable");
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += fmt::format(
        "<testsuites name=\"muxbench check\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n", tests,
        failures, skipped);
    if (r.exit_code == 2) {
        out +=
            "  <testsuite name=\"muxbench\" tests=\"1\" failures=\"1\">\n"
            "    <testcase classname=\"muxbench\" name=\"runs can be compared\">\n";
        out += fmt::format("      <failure message=\"{}\"/>\n", xml_escape(r.cannot_compare));
        out += "    </testcase>\n  </testsuite>\n";
    }
    for (const auto& [suite, cases] : suites) {
        size_t f = 0, s = 0;
        for (const auto* c : cases.first) {
            f += c->verdict == "regression" || c->verdict == "status";
            s += c->verdict == "untestable";
        }
        for (const auto* c : cases.second) {
            f += c->verdict == "regression";
            s += c->verdict == "untestable";
        }
        out +=
            fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
                        xml_escape(suite), cases.first.size() + cases.second.size(), f, s);
        for (const auto* c : cases.second) junit_pooled(out, suite, *c);
        for (const auto* c : cases.first) junit_point(out, suite, *c);
        out += "  </testsuite>\n";
    }
    out += "</testsuites>\n";
    return out;
}

namespace {

nlohmann::json optional_json(const std::optional<double>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json();
}

nlohmann::json family_json(const FamilyShare& f) {
    return {{"alpha", f.alpha},
            {"candidates", f.candidates},
            {"size", f.size},
            {"testable", f.testable}};
}

}  // namespace

nlohmann::json report_json(const CheckReport& r, const RunMeta& base, const RunMeta& current) {
    auto meta = [](const RunMeta& m) {
        return nlohmann::json{{"folder", m.folder},         {"git_commit", m.git_commit},
                              {"hostname", m.hostname},     {"kernel", m.kernel},
                              {"started_at", m.started_at}, {"plan", m.plan}};
    };
    nlohmann::json j = {
        {"schema", "muxbench-check/2"},
        {"exit_code", r.exit_code},
        {"base", meta(base)},
        {"current", meta(current)},
        {"threshold", r.options.threshold},
        {"alpha", r.options.alpha},
        {"families",
         {{"points", family_json(r.points_family)}, {"pooled", family_json(r.pooled_family)}}},
        {"reference_model", r.options.reference_model},
        {"same_host", r.same_host},
        {"stable_only", r.stable_only},
        {"host_differences", r.host_differences},
        {"notes", r.notes},
        {"warnings", r.warnings},
        {"repeats", {{"base", r.base_repeats}, {"current", r.current_repeats}}}};
    if (r.exit_code == 2) j["cannot_compare"] = r.cannot_compare;
    j["pooled"] = nlohmann::json::array();
    for (const auto& c : r.pooled)
        j["pooled"].push_back(
            {{"model", c.model},
             {"metric", c.metric},
             {"verdict", c.verdict},
             {"detail", c.detail},
             {"points", c.points},
             {"point_changes", c.point_changes},
             {"worse_points", c.worse_points},
             {"change", c.change},
             {"worse_by", c.worse_by},
             {"repeats", {{"base", c.base_repeats}, {"current", c.current_repeats}}},
             {"p", c.p},
             {"min_p", c.min_p},
             {"p_holm", c.p_holm}});
    j["comparisons"] = nlohmann::json::array();
    for (const auto& c : r.comparisons)
        j["comparisons"].push_back({{"scenario", c.scenario},
                                    {"model", c.model},
                                    {"x_name", c.x_name},
                                    {"x_value", c.x_value},
                                    {"metric", c.metric},
                                    {"verdict", c.verdict},
                                    {"detail", c.detail},
                                    {"base", c.base},
                                    {"current", c.current},
                                    {"base_repeats", c.base_repeats},
                                    {"current_repeats", c.current_repeats},
                                    {"base_median", c.base_median},
                                    {"current_median", c.current_median},
                                    {"change", c.change},
                                    {"change_low", optional_json(c.change_low)},
                                    {"change_high", optional_json(c.change_high)},
                                    {"worse_by", c.worse_by},
                                    {"p", c.p},
                                    {"min_p", c.min_p},
                                    {"p_holm", c.p_holm}});
    j["noise"] = nlohmann::json::array();
    for (const auto& n : r.noise)
        j["noise"].push_back({{"metric", n.metric},
                              {"base_spread", n.base_spread},
                              {"current_spread", n.current_spread},
                              {"points", n.points},
                              {"holds_across_hosts", n.holds_across_hosts},
                              {"why", n.why}});
    return j;
}

}  // namespace mux::check
