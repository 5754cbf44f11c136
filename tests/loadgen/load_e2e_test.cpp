// muxload against a real muxserver: every reply verified, both protocols, both transports,
// closed and open loop, idle connections and churn. Counts only; no timing is asserted.
#include <gtest/gtest.h>

#include "options.hpp"
#include "run.hpp"
#include "server_process.hpp"

namespace {

using namespace mux::load;
using mux::test::ServerProcess;

LoadOptions short_run(const ServerProcess& server, Proto proto) {
    LoadOptions o;
    o.target_text = server.endpoint().to_string();
    o.proto = proto;
    o.conns = 8;
    o.threads = 2;
    o.duration_s = 0.5;
    o.warmup_s = 0.1;
    o.timeout_ms = 5000;
    return o;
}

RunOutput run_checked(LoadOptions o) {
    std::string error = validate(&o);
    EXPECT_EQ(error, "");
    return run_load(o, nullptr);
}

void expect_clean(const RunOutput& out, uint64_t conns) {
    ASSERT_EQ(out.error, "");
    EXPECT_EQ(out.stats.total_errors(), 0u) << out.doc["errors"].dump();
    EXPECT_GT(out.stats.requests, 0u);
    EXPECT_EQ(out.stats.latency.count(), out.stats.requests);
    EXPECT_EQ(out.stats.connections_at_start, conns);
    EXPECT_TRUE(out.stats.completed);
    EXPECT_EQ(out.exit_code, kExitOk);
}

struct Case {
    const char* proto;
    const char* listen;
};
class LoadE2E : public ::testing::TestWithParam<Case> {};

TEST_P(LoadE2E, ClosedLoopEveryReplyVerified) {
    ServerProcess server("epoll-et", GetParam().proto, GetParam().listen);
    ASSERT_TRUE(server.started()) << server.error();
    Proto proto = std::string(GetParam().proto) == "http" ? Proto::Http : Proto::Mux1;
    LoadOptions o = short_run(server, proto);
    o.pipeline = 4;
    RunOutput out = run_checked(o);
    expect_clean(out, o.conns);
    auto counters = server.stop();
    // The server answered at least every request the loadgen counted, and saw no bad bytes.
    EXPECT_GE(counters.value("requests", uint64_t{0}), out.stats.requests);
    EXPECT_EQ(counters.value("protocol_errors", uint64_t{1}), 0u);
    EXPECT_EQ(out.stats.unserved_connections, 0u);
}

TEST_P(LoadE2E, GeneratedRepliesAreVerified) {
    ServerProcess server("epoll-et", GetParam().proto, GetParam().listen);
    ASSERT_TRUE(server.started()) << server.error();
    Proto proto = std::string(GetParam().proto) == "http" ? Proto::Http : Proto::Mux1;
    LoadOptions o = short_run(server, proto);
    o.reply_bytes = 20'000;  // spans several reads
    RunOutput out = run_checked(o);
    expect_clean(out, o.conns);
    EXPECT_GE(out.stats.bytes_received, out.stats.requests * 20'000);
}

INSTANTIATE_TEST_SUITE_P(Protos, LoadE2E,
                         ::testing::Values(Case{"mux1", "tcp"}, Case{"http", "tcp"},
                                           Case{"mux1", "unix"}, Case{"http", "unix"}),
                         [](const auto& param_info) {
                             return std::string(param_info.param.proto) + "_" +
                                    param_info.param.listen;
                         });

TEST(LoadE2E, IdleConnectionsAreProbedOnceAndStayOpen) {
    ServerProcess server("epoll-et", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    LoadOptions o = short_run(server, Proto::Mux1);
    o.conns = 200;
    o.active = 4;
    o.connect_rate_per_s = 5000;
    RunOutput out = run_checked(o);
    expect_clean(out, 200);
    EXPECT_EQ(out.stats.idle_probes_ok, 196u);
    EXPECT_EQ(out.stats.fair_connections, 4u);
    EXPECT_EQ(out.stats.reconnects, 0u);
    EXPECT_EQ(server.stop().value("accepted", uint64_t{0}), 200u);
}

TEST(LoadE2E, OpenLoopReportsBothLatenciesAndTheSchedule) {
    ServerProcess server("epoll-et", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    LoadOptions o = short_run(server, Proto::Mux1);
    o.rate_per_s = 2000;
    o.arrival = Arrival::Poisson;
    o.slow_text = {"5%:200"};
    RunOutput out = run_checked(o);
    expect_clean(out, o.conns);
    EXPECT_EQ(out.stats.uncorrected.count(), out.stats.requests);
    EXPECT_GT(out.stats.sends, 0u);
    // A request's corrected latency is never below its uncorrected one.
    EXPECT_GE(out.stats.latency.sum_ns(), out.stats.uncorrected.sum_ns());
    EXPECT_TRUE(out.doc.contains("histogram_uncorrected"));
    EXPECT_TRUE(out.doc["summary"].contains("latency_uncorrected_us"));
}

TEST(LoadE2E, RequestsPerConnOneOpensAConnectionPerRequest) {
    ServerProcess server("epoll-et", "http", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    LoadOptions o = short_run(server, Proto::Http);
    o.conns = 2;
    o.requests_per_conn = 1;
    RunOutput out = run_checked(o);
    expect_clean(out, 2);
    auto counters = server.stop();
    // Every reply closed its connection and opened the next one.
    EXPECT_GE(out.stats.reconnects, out.stats.requests);
    EXPECT_GE(counters.value("accepted", uint64_t{0}), out.stats.requests);
}

TEST(LoadE2E, TooManyConnectionsForTheFdLimitFailsWithTheNumbers) {
    LoadOptions o;
    o.target_text = "tcp:127.0.0.1:9";
    o.conns = 1u << 24;
    ASSERT_EQ(validate(&o), "");
    RunOutput out = run_load(o, nullptr);
    EXPECT_NE(out.error.find("need 16777"), std::string::npos) << out.error;
    EXPECT_NE(out.error.find("fd limit is"), std::string::npos) << out.error;
    EXPECT_EQ(out.exit_code, kExitSetupFailed);
}

}  // namespace
