// Linked into every test binary: the shared I/O writes with write(), which raises SIGPIPE on
// a closed peer; like muxserver and muxload, tests take EPIPE instead.
#include <csignal>

namespace {
const bool kSigpipeIgnored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();
}  // namespace
