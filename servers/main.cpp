// muxserver: runs one server model, picked by name at run time, until SIGINT or SIGTERM.
#include <sys/mman.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "models.hpp"
#include "mux1.hpp"
#include "net.hpp"
#include "server.hpp"

namespace {

using mux::ServerCounters;

void on_stop_signal(int) {
    mux::Server::request_stop();
}

void install_signal_handlers() {
    // No SA_RESTART: a signal interrupts select/poll/epoll_wait so the loop sees the stop.
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    // A peer that vanished must cost an EPIPE, never the process.
    signal(SIGPIPE, SIG_IGN);
}

nlohmann::json counters_json(const mux::ServerConfig& config, const mux::CounterTotals& totals) {
    auto get = [&](mux::Counter ServerCounters::*field) { return totals.get(field); };
    uint64_t protocol_errors = get(&ServerCounters::bad_magic) + get(&ServerCounters::too_large) +
                               get(&ServerCounters::bad_op) + get(&ServerCounters::http_malformed) +
                               get(&ServerCounters::http_head_too_large) +
                               get(&ServerCounters::http_unsupported);
    return {
        {"event", "stats"},
        {"model", config.model},
        {"proto", config.proto == mux::Protocol::Mux1 ? "mux1" : "http"},
        {"accepted", get(&ServerCounters::accepted)},
        {"rejected",
         {{"fd_setsize", get(&ServerCounters::rejected_fd_setsize)},
          {"fd_limit", get(&ServerCounters::rejected_fd_limit)},
          {"fork_failed", get(&ServerCounters::rejected_fork_failed)}}},
        {"closed", get(&ServerCounters::closed)},
        {"resets", get(&ServerCounters::resets)},
        {"requests", get(&ServerCounters::requests)},
        {"bytes_in", get(&ServerCounters::bytes_in)},
        {"bytes_out", get(&ServerCounters::bytes_out)},
        {"short_sends", get(&ServerCounters::short_sends)},
        {"protocol_errors", protocol_errors},
        {"protocol_errors_by_kind",
         {{"bad_magic", get(&ServerCounters::bad_magic)},
          {"too_large", get(&ServerCounters::too_large)},
          {"bad_op", get(&ServerCounters::bad_op)},
          {"http_malformed", get(&ServerCounters::http_malformed)},
          {"http_head_too_large", get(&ServerCounters::http_head_too_large)},
          {"http_unsupported", get(&ServerCounters::http_unsupported)}}},
    };
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "muxserver: one server, seven ways to wait for I/O.\n"
        "Prints one JSON line when listening and one JSON line of counters on "
        "SIGINT/SIGTERM."};
    std::string model_name = "epoll-et";
    std::string proto_name = "mux1";
    std::string listen_text = "tcp:127.0.0.1:7700";
    std::string stats_path;
    uint32_t max_payload = mux::mux1::kDefaultMaxPayload;
    int backlog = 4096;
    std::string et_drain = "short";
    bool list_models = false;

    std::vector<std::string> model_names;
    std::string model_help = "Server model:";
    for (const auto& m : mux::all_models()) {
        model_names.emplace_back(m.name);
        model_help += "\n  " + std::string(m.name) + ": " + std::string(m.summary);
    }
    app.add_option("--model", model_name, model_help)
        ->check(CLI::IsMember(model_names))
        ->capture_default_str();
    app.add_option("--proto", proto_name, "Protocol: mux1 (binary) or http (HTTP/1.1 subset)")
        ->check(CLI::IsMember({"mux1", "http"}))
        ->capture_default_str();
    app.add_option("--listen", listen_text,
                   "tcp:HOST:PORT (numeric address; port 0 picks a free port) or unix:PATH")
        ->capture_default_str();
    app.add_option("--max-payload", max_payload,
                   "Largest payload_len/reply_len (mux1) or /bytes/N (http) accepted, in bytes")
        ->check(CLI::Range(uint32_t{0}, uint32_t{1u << 30}))
        ->capture_default_str();
    app.add_option("--backlog", backlog, "listen() backlog, in connections")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--et-drain", et_drain,
                   "epoll-et only: when a socket counts as read to the end. short: a read that "
                   "returns less than asked, with EPOLLRDHUP for the peer's FIN (as nginx "
                   "does); eagain: read until EAGAIN (the textbook rule, one more read per "
                   "wakeup)")
        ->check(CLI::IsMember({"short", "eagain"}))
        ->capture_default_str();
    app.add_option("--stats", stats_path, "Also write the exit counters line to this file");
    app.add_flag("--list-models", list_models, "List the models and exit");
    CLI11_PARSE(app, argc, argv);

    if (list_models) {
        for (const auto& m : mux::all_models())
            std::printf("%-12s %.*s\n", std::string(m.name).c_str(),
                        static_cast<int>(m.summary.size()), m.summary.data());
        return 0;
    }

    if (app.count("--et-drain") > 0 && model_name != "epoll-et") {
        std::fprintf(stderr, "muxserver: --et-drain applies to --model epoll-et, not %s\n",
                     model_name.c_str());
        return 2;
    }
    std::string error;
    auto endpoint = mux::parse_endpoint(listen_text, &error);
    if (!endpoint) {
        std::fprintf(stderr, "muxserver: --listen: %s\n", error.c_str());
        return 2;
    }
    const mux::ModelInfo* model = mux::find_model(model_name);
    mux::ServerConfig config{
        model_name, proto_name == "http" ? mux::Protocol::Http : mux::Protocol::Mux1,
        *endpoint,  max_payload,
        backlog,    et_drain == "eagain" ? mux::EtDrain::UntilEagain : mux::EtDrain::ShortRead};

    uint64_t fd_limit = mux::raise_fd_limit();
    install_signal_handlers();
    int listen_fd = mux::listen_on(config.listen, backlog, /*nonblocking=*/false, &error);
    if (listen_fd < 0) {
        std::fprintf(stderr, "muxserver: %s\n", error.c_str());
        return 1;
    }
    if (config.listen.kind == mux::Endpoint::Kind::Tcp)
        config.listen.port = mux::bound_port(listen_fd);

    // Shared with fork children, which add their counters to it as they exit.
    void* shared = mmap(nullptr, sizeof(mux::CounterTotals), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        std::perror("muxserver: mmap counters");
        return 1;
    }
    auto* totals = new (shared) mux::CounterTotals();

    int rc;
    {
        mux::Server server(config, listen_fd, totals);
        nlohmann::json ready = {{"event", "listening"},  {"endpoint", config.listen.to_string()},
                                {"model", config.model}, {"proto", proto_name},
                                {"pid", getpid()},       {"fd_limit", fd_limit}};
        if (config.model == "epoll-et") ready["et_drain"] = et_drain;
        std::printf("%s\n", ready.dump().c_str());
        std::fflush(stdout);
        rc = model->run(server);
        server.add_to_totals();  // the main thread's own counts; every other thread's are in
    }
    close(listen_fd);
    if (config.listen.kind == mux::Endpoint::Kind::Unix) unlink(config.listen.path.c_str());

    std::string line = counters_json(config, *totals).dump();
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    if (!stats_path.empty()) {
        std::ofstream out(stats_path);
        out << line << "\n";
        if (!out)
            std::fprintf(stderr, "muxserver: could not write --stats %s\n", stats_path.c_str());
    }
    return rc;
}
