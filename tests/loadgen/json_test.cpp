// The muxload/1 document: written, read back, and merged exactly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "report.hpp"
#include "run.hpp"
#include "server_process.hpp"

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
        const auto& s = doc["summary"];
        for (const char* key :
             {"requests", "duration_s", "throughput_per_s", "latency_us", "fairness",
              "loadgen_cpu_us_per_request", "loadgen_cpu_utilisation", "loadgen_bound",
              "loadgen_bound_reason", "connect_time_s", "completed"})
            EXPECT_TRUE(s.contains(key)) << key;
        for (const char* p : {"p50", "p90", "p99", "p999", "p9999", "max", "mean"})
            EXPECT_TRUE(s["latency_us"].contains(p)) << p;
        EXPECT_EQ(s.contains("latency_uncorrected_us"), rate > 0);
        EXPECT_TRUE(s["fairness"].contains("jain_index"));
        EXPECT_TRUE(s["fairness"].contains("unserved_connections"));
        for (const char* kind : {"connect", "reset", "timeout", "protocol", "mismatch"})
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

TEST(MuxloadJson, MergeIsExact) {
    mux::test::ServerProcess server("epoll-et", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    RunOutput a = short_run(server, 0), b = short_run(server, 0);
    std::string pa = temp_path("a.json"), pb = temp_path("b.json");
    ASSERT_EQ(write_json(pa, a.doc), "");
    ASSERT_EQ(write_json(pb, b.doc), "");
    nlohmann::json merged;
    ASSERT_EQ(merge_files({pa, pb}, &merged), "");
    std::filesystem::remove(pa);
    std::filesystem::remove(pb);

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
    EXPECT_EQ(merged["merged_from"].size(), 2u);
    for (size_t i = 0; i < 2; ++i)
        EXPECT_EQ(merged["timeseries"][i]["requests"].get<uint64_t>(),
                  a.stats.second_latency[i].count() + b.stats.second_latency[i].count());
}

}  // namespace
