#include <gtest/gtest.h>

#include "server_process.hpp"

// The support library itself: a server starts, is reachable, and stops with counters.
TEST(Support, ServerStartsAndReportsCounters) {
    mux::test::ServerProcess server("epoll-et", "mux1", "tcp");
    ASSERT_TRUE(server.started()) << server.error();
    EXPECT_NE(server.endpoint().port, 0);
    auto stats = server.stop();
    EXPECT_EQ(stats.value("event", ""), "stats");
    EXPECT_EQ(stats.value("accepted", 99), 0);
}
