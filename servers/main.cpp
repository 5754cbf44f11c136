// muxserver: runs one server model, picked by name at run time, until SIGINT or SIGTERM.
#include <sys/mman.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstring>
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

nlohmann::json counters_json(const mux::ServerConfig& config, const mux::ModelInfo& model,
                             const mux::Server& server) {
    const mux::CounterTotals& totals = server.totals();
    auto get = [&](mux::Counter ServerCounters::*field) { return totals.get(field); };
    uint64_t protocol_errors = get(&ServerCounters::bad_magic) + get(&ServerCounters::too_large) +
                               get(&ServerCounters::bad_op) + get(&ServerCounters::http_malformed) +
                               get(&ServerCounters::http_head_too_large) +
                               get(&ServerCounters::http_unsupported);
    nlohmann::json stats = {
        {"event", "stats"},
        {"model", config.model},
        {"proto", config.proto == mux::Protocol::Mux1 ? "mux1" : "http"},
        {"accepted", get(&ServerCounters::accepted)},
        {"rejected",
         {{"fd_setsize", get(&ServerCounters::rejected_fd_setsize)},
          {"fd_limit", get(&ServerCounters::rejected_fd_limit)},
          {"fork_failed", get(&ServerCounters::rejected_fork_failed)},
          {"thread_failed", get(&ServerCounters::rejected_thread_failed)}}},
        {"closed", get(&ServerCounters::closed)},
        {"resets", get(&ServerCounters::resets)},
        {"requests", get(&ServerCounters::requests)},
        {"bytes_in", get(&ServerCounters::bytes_in)},
        {"bytes_out", get(&ServerCounters::bytes_out)},
        {"short_sends", get(&ServerCounters::short_sends)},
        {"recv_rearms", get(&ServerCounters::recv_rearms)},
        {"recv_no_buffers", get(&ServerCounters::recv_no_buffers)},
        {"protocol_errors", protocol_errors},
        {"protocol_errors_by_kind",
         {{"bad_magic", get(&ServerCounters::bad_magic)},
          {"too_large", get(&ServerCounters::too_large)},
          {"bad_op", get(&ServerCounters::bad_op)},
          {"http_malformed", get(&ServerCounters::http_malformed)},
          {"http_head_too_large", get(&ServerCounters::http_head_too_large)},
          {"http_unsupported", get(&ServerCounters::http_unsupported)}}},
    };
    if (model.has_workers()) stats["accepted_by_worker"] = server.accepted_by_worker;
    return stats;
}

// How the model was configured, in both the listening and the stats line.
void add_model_settings(nlohmann::json& line, const mux::ModelInfo& model,
                        const mux::ServerConfig& config) {
    if (model.has_workers()) line["workers"] = config.workers;
    if (model.concurrency == mux::Concurrency::ThreadPerConnection) {
        line["thread_stack_bytes"] = config.thread_stack_bytes;
        line["max_threads"] = config.max_threads;
    }
    if (model.et_drain)
        line["et_drain"] = config.et_drain == mux::EtDrain::UntilEagain ? "eagain" : "short";
    if (model.buffer_ring) {
        line["io_uring_buffers"] = config.io_uring_buffers;
        line["io_uring_buffer_bytes"] = mux::kIoUringBufferBytes;
    }
}

// The kernel refuses the model here: say so on stderr and as a JSON line, and exit with a
// status of its own, so a driver records the point as refused rather than failed.
int refuse(const mux::ModelInfo& model, const mux::Unavailable& why) {
    std::fprintf(stderr, "muxserver: model %s is unavailable here: %s (errno %d, %s)\n",
                 std::string(model.name).c_str(), why.detail.c_str(), why.error,
                 std::strerror(why.error));
    nlohmann::json line = {{"event", "refused"},
                           {"model", model.name},
                           {"reason", why.reason},
                           {"errno", why.error},
                           {"error", std::strerror(why.error)},
                           {"detail", why.detail}};
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
    return mux::kExitModelUnavailable;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "muxserver: one server, eleven ways to wait for I/O.\n"
        "Prints one JSON line when listening and one JSON line of counters on "
        "SIGINT/SIGTERM. Where the kernel refuses the model (io_uring blocked), prints a "
        "{\"event\":\"refused\"} line instead and exits with status 69."};
    std::string model_name = "epoll-et";
    std::string proto_name = "mux1";
    std::string listen_text = "tcp:127.0.0.1:7700";
    std::string stats_path;
    uint32_t max_payload = mux::mux1::kDefaultMaxPayload;
    int backlog = 4096;
    std::string et_drain = "short";
    bool list_models = false;
    int workers = mux::cpus_in_affinity_mask();
    uint32_t thread_stack_kib = 256;
    uint32_t max_threads = 0;
    uint32_t io_uring_buffers = 1024;

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
    auto* et_drain_option =
        app.add_option("--et-drain", et_drain,
                       "epoll-et and reuseport: when a socket counts as read to the end. "
                       "short: a read that returns less than asked, with EPOLLRDHUP for the "
                       "peer's FIN (as nginx does); eagain: read until EAGAIN (the textbook "
                       "rule, one more read per wakeup)")
            ->check(CLI::IsMember({"short", "eagain"}))
            ->capture_default_str();
    auto* workers_option =
        app.add_option("--workers", workers,
                       "Threads of the pool models (epoll-oneshot, reuseport); default: the "
                       "CPUs in this process's affinity mask")
            ->check(CLI::Range(1, 1024))
            ->capture_default_str();
    auto* stack_option =
        app.add_option("--thread-stack-kib", thread_stack_kib,
                       "threads: stack of each connection thread, in KiB (glibc carves the "
                       "thread's static TLS, 64 KiB of it the read buffer, out of this)")
            ->check(CLI::Range(uint32_t{128}, uint32_t{1u << 20}))
            ->capture_default_str();
    auto* max_threads_option =
        app.add_option("--max-threads", max_threads,
                       "threads: connection threads at most; one more is rejected and counted as "
                       "rejected.thread_failed, like a failed pthread_create (0: the kernel's "
                       "limit)")
            ->capture_default_str();
    auto* buffers_option =
        app.add_option("--io-uring-buffers", io_uring_buffers,
                       "io-uring: provided receive buffers of 4 KiB, a power of two; when all "
                       "are in use a receive ends with ENOBUFS and is armed again")
            ->check(CLI::Range(uint32_t{8}, uint32_t{32768}))
            ->check(CLI::Validator(
                [](std::string& text) {
                    unsigned long n = std::stoul(text);
                    return (n & (n - 1)) == 0 ? std::string() : "must be a power of two";
                },
                "POWER OF TWO"))
            ->capture_default_str();
    app.add_option("--stats", stats_path, "Also write the exit counters line to this file");
    app.add_flag("--list-models", list_models, "List the models and exit");
    CLI11_PARSE(app, argc, argv);

    if (list_models) {
        for (const auto& m : mux::all_models())
            std::printf("%-14s %.*s\n", std::string(m.name).c_str(),
                        static_cast<int>(m.summary.size()), m.summary.data());
        return 0;
    }

    std::string error;
    auto endpoint = mux::parse_endpoint(listen_text, &error);
    if (!endpoint) {
        std::fprintf(stderr, "muxserver: --listen: %s\n", error.c_str());
        return 2;
    }
    const mux::ModelInfo* model = mux::find_model(model_name);
    // An option the model has no use for is a mistake in the command, not something to ignore.
    auto misplaced = [&](CLI::Option* option, bool applies, const char* models) {
        if (option->count() == 0 || applies) return false;
        std::fprintf(stderr, "muxserver: %s applies only to %s, not to %s\n",
                     option->get_name().c_str(), models, model_name.c_str());
        return true;
    };
    bool per_thread = model->concurrency == mux::Concurrency::ThreadPerConnection;
    if (misplaced(et_drain_option, model->et_drain, "epoll-et and reuseport") ||
        misplaced(workers_option, model->has_workers(), "epoll-oneshot and reuseport") ||
        misplaced(stack_option, per_thread, "threads") ||
        misplaced(max_threads_option, per_thread, "threads") ||
        misplaced(buffers_option, model->buffer_ring, "io-uring"))
        return 2;
    mux::ServerConfig config{
        .model = model_name,
        .proto = proto_name == "http" ? mux::Protocol::Http : mux::Protocol::Mux1,
        .listen = *endpoint,
        .max_payload = max_payload,
        .backlog = backlog,
        .et_drain = et_drain == "eagain" ? mux::EtDrain::UntilEagain : mux::EtDrain::ShortRead,
        .workers = workers,
        .thread_stack_bytes = size_t{thread_stack_kib} * 1024,
        .max_threads = max_threads,
        .io_uring_buffers = io_uring_buffers};
    if (model->available != nullptr) {
        mux::Unavailable why;
        if (!model->available(&why)) return refuse(*model, why);
    }

    uint64_t fd_limit = mux::raise_fd_limit();
    install_signal_handlers();
    bool reuse_port = model->reuse_port && config.listen.kind == mux::Endpoint::Kind::Tcp;
    int listen_fd =
        mux::listen_on(config.listen, backlog, /*nonblocking=*/false, &error, reuse_port);
    if (listen_fd < 0) {
        std::fprintf(stderr, "muxserver: %s\n", error.c_str());
        return 1;
    }
    if (config.listen.kind == mux::Endpoint::Kind::Tcp)
        config.listen.port = mux::bound_port(listen_fd);
    std::vector<int> worker_listeners;
    if (reuse_port) {
        worker_listeners.push_back(listen_fd);
        for (int i = 1; i < config.workers; ++i) {
            int fd = mux::listen_on(config.listen, backlog, /*nonblocking=*/false, &error, true);
            if (fd < 0) {
                std::fprintf(stderr, "muxserver: listener %d of %d: %s\n", i + 1, config.workers,
                             error.c_str());
                return 1;
            }
            worker_listeners.push_back(fd);
        }
    }

    // Shared with fork children, which add their counters to it as they exit.
    void* shared = mmap(nullptr, sizeof(mux::CounterTotals), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        std::perror("muxserver: mmap counters");
        return 1;
    }
    auto* totals = new (shared) mux::CounterTotals();

    int rc;
    std::string line;
    {
        mux::Server server(config, listen_fd, totals);
        server.worker_listeners = worker_listeners;
        nlohmann::json ready = {{"event", "listening"},  {"endpoint", config.listen.to_string()},
                                {"model", config.model}, {"proto", proto_name},
                                {"pid", getpid()},       {"fd_limit", fd_limit}};
        add_model_settings(ready, *model, config);
        std::printf("%s\n", ready.dump().c_str());
        std::fflush(stdout);
        rc = model->run(server);
        server.add_to_totals();  // the main thread's own counts; every other thread's are in
        nlohmann::json stats = counters_json(config, *model, server);
        add_model_settings(stats, *model, config);
        line = stats.dump();
    }
    close(listen_fd);
    for (size_t i = 1; i < worker_listeners.size(); ++i) close(worker_listeners[i]);
    if (config.listen.kind == mux::Endpoint::Kind::Unix) unlink(config.listen.path.c_str());

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
