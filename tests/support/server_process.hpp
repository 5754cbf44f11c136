// Runs a real muxserver for a test: starts it, waits for its "listening" line, and stops
// it with SIGTERM at the end of the test, returning its counters line.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "net.hpp"
#include "subprocess.hpp"

namespace mux::test {

// Path of a binary built by this project (build/bin/NAME).
std::string binary_path(const std::string& name);

// Every model muxserver lists, then the variants the test matrices also run, named
// MODEL/VARIANT (epoll-et/eagain: --et-drain eagain). ServerProcess takes either form.
std::vector<std::string> test_models();
// A test name made of a model name: "epoll-et/eagain" -> "epoll_et_eagain".
std::string test_name(std::string model);

class ServerProcess {
  public:
    // model: a name from test_models(). listen: "tcp" (port 0 on 127.0.0.1), "unix" (a fresh
    // path under the temp dir), or "unix:PATH" (that path). wrapper, if given, is a command
    // muxserver's argv is appended to.
    ServerProcess(const std::string& model, const std::string& proto, const std::string& listen,
                  std::vector<std::string> extra_args = {}, SpawnOptions options = {},
                  std::vector<std::string> wrapper = {});
    ~ServerProcess();

    bool started() const { return started_; }
    // The kernel refused the model here (io_uring blocked): muxserver printed a "refused"
    // line, which this returns; null otherwise.
    const nlohmann::json& refusal() const { return refusal_; }
    const std::string& error() const { return error_; }
    const Endpoint& endpoint() const { return endpoint_; }
    SocketAddress address() const;
    pid_t pid() const { return process_.pid(); }
    // Stops the server and returns its counters line (empty object on failure).
    nlohmann::json stop();
    // The wait status stop() collected (as waitpid's), -1 before stop().
    int exit_status() const { return exit_status_; }

  private:
    // Declared before process_: the constructor fills it while building process_'s argv.
    std::string unix_path_;
    Subprocess process_;
    Endpoint endpoint_;
    bool started_ = false;
    bool stopped_ = false;
    int exit_status_ = -1;
    std::string error_;
    nlohmann::json refusal_;
    nlohmann::json stats_;
};

}  // namespace mux::test

// In a test body: skips the test when the kernel refused the server's model (the
// reason is printed), and fails it when the server did not start for any other reason.
#define MUX_ASSERT_STARTED_OR_SKIP(server)                                       \
    do {                                                                         \
        if (!(server).refusal().is_null())                                       \
            GTEST_SKIP() << "model refused here: " << (server).refusal().dump(); \
        ASSERT_TRUE((server).started()) << (server).error();                     \
    } while (0)
