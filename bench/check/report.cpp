#include "report.hpp"

#include <fmt/format.h>

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
        {"memory_bytes_per_connection", "memory per connection (bytes)"},
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

std::string number(double v) {
    double a = std::fabs(v);
    if (a >= 1000) return fmt::format("{:.0f}", v);
    if (a >= 10) return fmt::format("{:.1f}", v);
    return fmt::format("{:.3g}", v);
}

std::string change_text(const Comparison& c) {
    if (c.base_median <= 0) return "–";
    return fmt::format("{:+.1f}%", 100 * (c.current_median - c.base_median) / c.base_median);
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

void table(std::string& out, const std::vector<const Comparison*>& rows) {
    out += "| point | model | metric | baseline | current | change | noise | p (Holm) |\n";
    out += "|---|---|---|---:|---:|---:|---:|---:|\n";
    for (const auto* c : rows) {
        if (c->metric == "status") {
            out += fmt::format("| {} | {} | status | | | {} | | |\n", point_label(*c), c->model,
                               c->detail);
            continue;
        }
        out += fmt::format("| {} | {} | {} | {} | {} | {} | ±{:.0f}% | {:.3g} |\n", point_label(*c),
                           c->model, metric_name(c->metric), number(c->base_median),
                           number(c->current_median), change_text(*c), 100 * c->scatter, c->p_holm);
    }
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
    size_t regressions = r.count("regression") + r.count("status");
    if (r.exit_code == 2)
        out += "## muxbench check: cannot compare\n\n";
    else if (regressions)
        out += fmt::format("## muxbench check: {} regression{}\n\n", regressions,
                           regressions == 1 ? "" : "s");
    else
        out += "## muxbench check: no regression\n\n";

    auto describe = [](const RunMeta& m) {
        return fmt::format("`{}` (plan {}, commit {}, host {}, kernel {}, started {})", m.folder,
                           m.plan, m.git_commit, m.hostname, m.kernel, m.started_at);
    };
    out += fmt::format("- baseline: {}\n- current: {}\n", describe(base), describe(current));
    if (r.exit_code == 2) {
        out += fmt::format("\n**Why:** {}\n", r.cannot_compare);
        return out;
    }
    size_t judged = r.judged();
    out += fmt::format(
        "- rule: a regression is a metric worse by more than {:g}%, and by more than the "
        "noise (3/4 of the wider range of the two runs' repeats), whose repeats differ by a "
        "two-sided Mann-Whitney U test at p < {:g} after Holm's adjustment over the {} "
        "comparisons judged ({} against {} repeats per point; {} untestable)\n",
        100 * r.options.threshold, r.options.alpha, judged, r.base_repeats, r.current_repeats,
        r.count("untestable"));
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

    std::vector<const Comparison*> bad, good;
    for (const auto& c : r.comparisons) {
        if (c.verdict == "regression" || c.verdict == "status") bad.push_back(&c);
        if (c.verdict == "improvement") good.push_back(&c);
    }
    if (!bad.empty()) {
        out += "\n### Regressions\n\n";
        table(out, bad);
    }
    if (!good.empty()) {
        out += "\n### Improvements\n\n";
        table(out, good);
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

std::string junit_xml(const CheckReport& r) {
    std::map<std::string, std::vector<const Comparison*>> suites;  // by scenario and model
    for (const auto& c : r.comparisons) suites[c.scenario + "." + c.model].push_back(&c);
    size_t failures = r.count("regression") + r.count("status") + (r.exit_code == 2 ? 1 : 0);
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += fmt::format(
        "<testsuites name=\"muxbench check\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
        r.comparisons.size() + (r.exit_code == 2 ? 1 : 0), failures, r.count("untestable"));
    if (r.exit_code == 2) {
        out +=
            "  <testsuite name=\"muxbench\" tests=\"1\" failures=\"1\">\n"
            "    <testcase classname=\"muxbench\" name=\"runs can be compared\">\n";
        out += fmt::format("      <failure message=\"{}\"/>\n", xml_escape(r.cannot_compare));
        out += "    </testcase>\n  </testsuite>\n";
    }
    for (const auto& [suite, cases] : suites) {
        size_t f = 0, s = 0;
        for (const auto* c : cases) {
            f += c->verdict == "regression" || c->verdict == "status";
            s += c->verdict == "untestable";
        }
        out +=
            fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
                        xml_escape(suite), cases.size(), f, s);
        for (const auto* c : cases) {
            out +=
                fmt::format("    <testcase classname=\"muxbench.{}\" name=\"{} at {}\">\n",
                            xml_escape(suite), xml_escape(c->metric), xml_escape(point_label(*c)));
            std::string values = fmt::format("baseline: {}\ncurrent: {}", values_text(c->base),
                                             values_text(c->current));
            if (c->verdict == "status") {
                out += fmt::format("      <failure type=\"status\" message=\"{}\"/>\n",
                                   xml_escape(c->detail));
            } else if (c->verdict == "regression") {
                out += fmt::format(
                    "      <failure type=\"regression\" message=\"worse by {:.1f}% (p = "
                    "{:.3g}, Holm {:.3g})\">{}</failure>\n",
                    100 * c->worse_by, c->p, c->p_holm, xml_escape(values));
            } else if (c->verdict == "untestable") {
                out += fmt::format("      <skipped message=\"{}\"/>\n", xml_escape(c->detail));
            } else {
                out +=
                    fmt::format("      <system-out>{}</system-out>\n",
                                xml_escape(fmt::format(
                                    "{}: median {} → {} ({}), p = {:.3g}, Holm {:.3g}\n{}",
                                    c->verdict, number(c->base_median), number(c->current_median),
                                    change_text(*c), c->p, c->p_holm, values)));
            }
            out += "    </testcase>\n";
        }
        out += "  </testsuite>\n";
    }
    out += "</testsuites>\n";
    return out;
}

nlohmann::json report_json(const CheckReport& r, const RunMeta& base, const RunMeta& current) {
    auto meta = [](const RunMeta& m) {
        return nlohmann::json{{"folder", m.folder},         {"git_commit", m.git_commit},
                              {"hostname", m.hostname},     {"kernel", m.kernel},
                              {"started_at", m.started_at}, {"plan", m.plan}};
    };
    nlohmann::json j = {{"schema", "muxbench-check/1"},
                        {"exit_code", r.exit_code},
                        {"base", meta(base)},
                        {"current", meta(current)},
                        {"threshold", r.options.threshold},
                        {"alpha", r.options.alpha},
                        {"reference_model", r.options.reference_model},
                        {"same_host", r.same_host},
                        {"stable_only", r.stable_only},
                        {"host_differences", r.host_differences},
                        {"notes", r.notes},
                        {"repeats", {{"base", r.base_repeats}, {"current", r.current_repeats}}}};
    if (r.exit_code == 2) j["cannot_compare"] = r.cannot_compare;
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
                                    {"base_median", c.base_median},
                                    {"current_median", c.current_median},
                                    {"worse_by", c.worse_by},
                                    {"scatter", c.scatter},
                                    {"p", c.p},
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
