// muxmicro: every microbenchmark in one binary. Before Google Benchmark starts, the fd
// limit is raised (dispatch needs 16384 sockets at once) and SIGPIPE is ignored (a
// connection benchmark that loses its peer must fail with EPIPE, not kill the run).
#include <benchmark/benchmark.h>

#include <csignal>
#include <string>

#include "environment.hpp"
#include "net.hpp"

int main(int argc, char** argv) {
    const uint64_t fd_limit = mux::raise_fd_limit();
    std::signal(SIGPIPE, SIG_IGN);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    // Recorded in the JSON context so a figure can be traced to the code that made it.
    benchmark::AddCustomContext("muxbench_git_commit", mux::git_commit());
    benchmark::AddCustomContext("fd_limit", std::to_string(fd_limit));
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
