// The muxload/1 document: written, read back, merged exactly, and refused where runs do not
// add up.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "report.hpp"
#include "run.hpp"
#include "server_process.hpp"
#include "subprocess.hpp"

namespace {

using namespace mux::load;

RunOutput short_run(const mux::test::ServerProcess& server, double rate_per_s) {
    LoadOptions o;
    o.target_text = server.endpoint().to_string();
    o.conns = 4;
    o.threads = 2;
    o.duration_s = 1.2;  // two seconds in the time series
    o.warmup_s = 0.05;
    o.rate_per_s = rate_per_s;
    EXPECT_EQ(validate(&o), "");
    return run_load(o, nullptr);
}

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() /
            ("muxload-" + std::to_string(getpid()) + "-" + name))
        .string();
}

nlohmann::json read_file(const std::string& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

TEST(MuxloadJson, HasTheDocumentedShapeAndReadsBackLosslessly) {
    mux::test::ServerProcess server("epoll-et", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    for (double rate : {0.0, 1000.0}) {
        RunOutput out = short_run(server, rate);
        ASSERT_EQ(out.error, "");
        std::string path = temp_path("shape.json");
        ASSERT_EQ(write_json(path, out.doc), "");
        nlohmann::json doc = read_file(path);
        std::filesystem::remove(path);

        EXPECT_EQ(doc["schema"], "muxload/1");
        for (const char* key :
             {"config", "environment", "summary", "timeseries", "errors", "histogram"})
            EXPECT_TRUE(doc.contains(key)) << key;
        EXPECT_EQ(doc.contains("histogram_uncorrected"), rate > 0);
        EXPECT_EQ(doc.contains("histogram_self_delay"), rate > 0);
        for (const char* key : {"seed", "path", "headers", "verify", "verify_note"})
            EXPECT_TRUE(doc["config"].contains(key)) << key;
        const auto& s = doc["summary"];
        for (const char* key : {"requests",
                                "duration_s",
                                "window_start_unix_ns",
                                "window_end_unix_ns",
                                "throughput_per_s",
                                "latency_us",
                                "latency_overflows",
                                "latency_sum_ns",
                                "timeouts_recorded",
                                "unfinished_at_end",
                                "in_flight_at_end",
                                "answered_after_end",
                                "in_flight_capacity",
                                "littles_law_ratio",
                                "littles_law_judged",
                                "replies_verified",
                                "first_failure",
                                "fairness",
                                "loadgen_cpu_us_per_request",
                                "loadgen_cpu_utilisation",
                                "loadgen_threads",
                                "loadgen_process_cpu_us",
                                "loadgen_process_busy_cpus",
                                "loadgen_cpus",
                                "loadgen_saturated",
                                "loadgen_saturated_reasons",
                                "loadgen_bound",
                                "loadgen_bound_reason",
                                "connect_time_s",
                                "ramp_s",
                                "completed",
                                "clean",
                                "not_clean_reasons"})
            EXPECT_TRUE(s.contains(key)) << key;
        EXPECT_EQ(s["littles_law_ratio"].is_number(), rate == 0);
        EXPECT_GT(s["window_end_unix_ns"].get<uint64_t>(),
                  s["window_start_unix_ns"].get<uint64_t>());
        EXPECT_EQ(s["loadgen_threads"].size(), 2u);
        EXPECT_GE(s["loadgen_cpus"].get<uint32_t>(), 1u);
        if (rate > 0) {
            for (const char* key :
                 {"offered", "offered_per_s", "achieved_share", "self_delay_us", "backlog_at_end"})
                EXPECT_TRUE(s["open_loop"].contains(key)) << key;
        }
        for (const char* p : {"p50", "p90", "p99", "p999", "p9999", "max", "mean"})
            EXPECT_TRUE(s["latency_us"].contains(p)) << p;
        EXPECT_EQ(s.contains("latency_uncorrected_us"), rate > 0);
        EXPECT_TRUE(s["fairness"].contains("jain_index"));
        EXPECT_TRUE(s["fairness"].contains("unserved_connections"));
        for (const char* kind :
             {"connect", "reset", "timeout", "protocol", "mismatch", "abandoned"})
            EXPECT_TRUE(doc["errors"].contains(kind)) << kind;
        ASSERT_EQ(doc["timeseries"].size(), 2u);
        uint64_t series_requests = 0;
        for (const auto& second : doc["timeseries"])
            series_requests += second["requests"].get<uint64_t>();
        EXPECT_EQ(series_requests, s["requests"].get<uint64_t>());
        for (const char* key : {"kernel", "cpu_model", "online_cores", "fd_limit", "cpu_affinity",
                                "compiler", "build_type", "git_commit", "hostname", "date_utc"})
            EXPECT_TRUE(doc["environment"].contains(key)) << key;

        // Read back into Stats and write again: the same document.
        Stats back;
        ASSERT_EQ(stats_from_json(doc, &back), "");
        auto again = result_json(back, doc["config"], doc["environment"]);
        EXPECT_EQ(again, doc);
    }
}

TEST(MuxloadJson, RefusesOtherSchemas) {
    Stats s;
    EXPECT_NE(stats_from_json({{"schema", "muxload/0"}}, &s), "");
    EXPECT_NE(stats_from_json(nlohmann::json::array(), &s), "");
}

// Two runs side by side, as `muxbench sweep` would start parallel loadgen processes.
std::pair<RunOutput, RunOutput> parallel_runs(const mux::test::ServerProcess& server) {
    RunOutput a, b;
    std::thread other([&] { b = short_run(server, 0); });
    a = short_run(server, 0);
    other.join();
    return {std::move(a), std::move(b)};
}

TEST(MuxloadJson, MergeIsExact) {
    mux::test::ServerProcess server("epoll-et", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    auto [a, b] = parallel_runs(server);
    // What is checked here is the arithmetic; the windows are made to coincide, so that a
    // slow start of one thread on this busy machine cannot refuse the merge.
    b.doc["summary"]["window_start_unix_ns"] = a.doc["summary"]["window_start_unix_ns"];
    b.doc["summary"]["window_end_unix_ns"] = a.doc["summary"]["window_end_unix_ns"];
    std::string pa = temp_path("a.json"), pb = temp_path("b.json");
    ASSERT_EQ(write_json(pa, a.doc), "");
    ASSERT_EQ(write_json(pb, b.doc), "");
    nlohmann::json merged;
    MergeOutcome outcome = merge_files({pa, pb}, &merged);
    std::filesystem::remove(pa);
    std::filesystem::remove(pb);
    ASSERT_EQ(outcome.error, "");

    mux::Histogram expected = a.stats.latency;
    ASSERT_TRUE(expected.merge(b.stats.latency));
    EXPECT_EQ(merged["histogram"], expected.to_json());
    const auto& s = merged["summary"];
    EXPECT_EQ(s["requests"].get<uint64_t>(), a.stats.requests + b.stats.requests);
    EXPECT_DOUBLE_EQ(s["throughput_per_s"].get<double>(),
                     a.stats.throughput_per_s + b.stats.throughput_per_s);
    EXPECT_DOUBLE_EQ(s["latency_us"]["p99"].get<double>(),
                     double(expected.percentile_ns(0.99)) / 1000);
    EXPECT_EQ(s["fairness"]["connections"].get<uint64_t>(), 8u);
    EXPECT_EQ(s["connections"]["wanted"].get<uint64_t>(), 8u);
    EXPECT_EQ(s["in_flight_capacity"].get<uint64_t>(), 8u);
    EXPECT_EQ(s["loadgen_threads"].size(), 4u);
    EXPECT_EQ(merged["merged_from"].size(), 2u);
    // What adds is summed in the config, and counts stay counts.
    for (const char* key : {"conns", "active", "idle", "threads"})
        EXPECT_TRUE(merged["config"][key].is_number_unsigned()) << key << merged["config"][key];
    EXPECT_EQ(merged["config"]["threads"], 4);
    EXPECT_EQ(merged["config"]["conns"], 8);
    for (size_t i = 0; i < 2; ++i)
        EXPECT_EQ(merged["timeseries"][i]["requests"].get<uint64_t>(),
                  a.stats.second_latency[i].count() - a.stats.second_unfinished[i] +
                      b.stats.second_latency[i].count() - b.stats.second_unfinished[i]);
}

// A real run's document made to hold Little's law exactly with room for `capacity` requests
// (4 were in flight), and read as clean: the merge tests below then know every verdict.
nlohmann::json littles_law_input(const RunOutput& run, double in_flight, uint64_t capacity) {
    nlohmann::json doc = run.doc;
    auto& s = doc["summary"];
    s["in_flight_capacity"] = capacity;
    s["latency_sum_ns"] = uint64_t(in_flight * s["duration_s"].get<double>() * 1e9);
    s["not_clean_reasons"] = nlohmann::json::array();
    s["clean"] = true;
    return doc;
}

nlohmann::json merged_of(const std::vector<nlohmann::json>& docs) {
    std::vector<std::string> paths;
    for (size_t i = 0; i < docs.size(); ++i) {
        paths.push_back(temp_path("verdict-" + std::to_string(i) + ".json"));
        EXPECT_EQ(write_json(paths.back(), docs[i]), "");
    }
    nlohmann::json merged;
    MergeOutcome outcome = merge_files(paths, &merged);
    for (const auto& path : paths) std::filesystem::remove(path);
    EXPECT_EQ(outcome.error, "");
    return merged;
}

bool has_reason_starting(const nlohmann::json& merged, const std::string& start) {
    const auto& reasons = merged["summary"]["not_clean_reasons"];
    return std::any_of(reasons.begin(), reasons.end(), [&](const nlohmann::json& r) {
        return r.get<std::string>().starts_with(start);
    });
}

// One input's failure survives the merge where the sums pass: of three inputs, the third has
// room for 5 requests in flight where it kept 4, 20% off Little's law; the merged figures,
// 12 in flight against room for 13, are 8% off, within the 10% allowed. Merged again with a
// clean run, the merged file's own reasons are kept. Two clean inputs add no reason.
TEST(MuxloadJson, MergeKeepsEachInputsVerdict) {
    mux::test::ServerProcess server("epoll-et", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    RunOutput run = short_run(server, 0);
    ASSERT_EQ(run.doc["summary"]["in_flight_capacity"], 4);
    nlohmann::json clean = littles_law_input(run, 4, 4);
    nlohmann::json off = littles_law_input(run, 4, 5);

    nlohmann::json pair = merged_of({clean, clean});
    EXPECT_FALSE(has_reason_starting(pair, "input ")) << pair["summary"]["not_clean_reasons"];
    EXPECT_FALSE(has_reason_starting(pair, "Little's law")) << pair["summary"]["not_clean_reasons"];

    nlohmann::json three = merged_of({clean, clean, off});
    EXPECT_FALSE(has_reason_starting(three, "Little's law"))
        << three["summary"]["not_clean_reasons"];
    EXPECT_TRUE(has_reason_starting(three, "input 3: Little's law off by -20%"))
        << three["summary"]["not_clean_reasons"];
    EXPECT_FALSE(three["summary"]["clean"].get<bool>());

    // A merged file as an input: 12 + 4 in flight against room for 13 + 4 is 6% off by the
    // sums, but the file's own verdict stands.
    three["summary"]["window_start_unix_ns"] = clean["summary"]["window_start_unix_ns"];
    three["summary"]["window_end_unix_ns"] = clean["summary"]["window_end_unix_ns"];
    nlohmann::json again = merged_of({three, clean});
    EXPECT_TRUE(has_reason_starting(again, "input 1: input 3: Little's law off by -20%"))
        << again["summary"]["not_clean_reasons"];
}

TEST(MuxloadJson, MergeRefusesRunsThatDoNotAddUp) {
    mux::test::ServerProcess server("epoll-et", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    RunOutput run = short_run(server, 0);
    const nlohmann::json& a = run.doc;
    EXPECT_EQ(merge_refusal({a, a}), "");
    auto refusal_with = [&](const std::function<void(nlohmann::json&)>& change) {
        nlohmann::json b = a;
        change(b);
        return merge_refusal({a, b});
    };
    // Rates and connection counts add.
    EXPECT_EQ(refusal_with([](auto& b) { b["config"]["conns"] = 100; }), "");
    EXPECT_EQ(refusal_with([](auto& b) { b["config"]["rate_per_s"] = 5; }), "");
    for (auto [key, value] : {std::pair<const char*, nlohmann::json>{"proto", "http"},
                              {"mode", "open"},
                              {"request", "GEN"},
                              {"payload_bytes", 64},
                              {"duration_s", 2.5}}) {
        std::string refusal = refusal_with([&](auto& b) { b["config"][key] = value; });
        EXPECT_NE(refusal.find(std::string("has ") + key), std::string::npos)
            << key << ": " << refusal;
    }
    // Windows: a 1.2 s window shifted by 0.1 s still overlaps 92%; by 0.2 s, 83%.
    auto shifted = [&](uint64_t ns) {
        return refusal_with([&](auto& b) {
            for (const char* k : {"window_start_unix_ns", "window_end_unix_ns"})
                b["summary"][k] = b["summary"][k].template get<uint64_t>() + ns;
        });
    };
    EXPECT_EQ(shifted(100'000'000), "");
    EXPECT_NE(shifted(200'000'000).find("overlap for 83%"), std::string::npos)
        << shifted(200'000'000);
    EXPECT_NE(refusal_with([](auto& b) {
                  b["summary"].erase("window_start_unix_ns");
              }).find("no window timestamps"),
              std::string::npos);
}

TEST(MuxloadJson, MergeOfSequentialRunsExitsTwo) {
    mux::test::ServerProcess server("epoll-et", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    RunOutput a = short_run(server, 0), b = short_run(server, 0);  // one after the other
    std::string pa = temp_path("seq-a.json"), pb = temp_path("seq-b.json");
    ASSERT_EQ(write_json(pa, a.doc), "");
    ASSERT_EQ(write_json(pb, b.doc), "");
    mux::SpawnOptions quiet;
    quiet.quiet_stderr = true;
    mux::Subprocess merge({mux::test::binary_path("muxload"), "merge", pa, pb, "-q"}, quiet);
    auto status = merge.wait(std::chrono::seconds(20));
    std::filesystem::remove(pa);
    std::filesystem::remove(pb);
    ASSERT_TRUE(status && WIFEXITED(*status));
    EXPECT_EQ(WEXITSTATUS(*status), kExitRefused);
}

}  // namespace
