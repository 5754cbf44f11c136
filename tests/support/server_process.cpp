#include "server_process.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>

#include "models.hpp"

namespace mux::test {

std::string binary_path(const std::string& name) {
    return std::string(MUX_BIN_DIR) + "/" + name;
}

namespace {
struct Variant {
    const char* name;
    const char* model;
    std::vector<std::string> args;
};
const std::vector<Variant>& variants() {
    static const std::vector<Variant> kVariants = {
        {"epoll-et/eagain", "epoll-et", {"--et-drain", "eagain"}},
    };
    return kVariants;
}
}  // namespace

std::vector<std::string> test_models() {
    std::vector<std::string> names;
    for (const auto& m : all_models()) names.emplace_back(m.name);
    for (const auto& v : variants()) names.emplace_back(v.name);
    return names;
}

std::string test_name(std::string model) {
    for (char& c : model)
        if (c == '-' || c == '/') c = '_';
    return model;
}

namespace {
std::string listen_argument(const std::string& listen, std::string* unix_path) {
    if (listen == "tcp") return "tcp:127.0.0.1:0";
    if (listen.starts_with("unix:")) {
        *unix_path = listen.substr(5);
        return listen;
    }
    static std::atomic<int> sequence{0};
    *unix_path =
        (std::filesystem::temp_directory_path() /
         ("muxtest-" + std::to_string(getpid()) + "-" + std::to_string(sequence++) + ".sock"))
            .string();
    return "unix:" + *unix_path;
}

std::vector<std::string> server_argv(const std::string& model, const std::string& proto,
                                     const std::string& listen, std::vector<std::string> extra,
                                     std::vector<std::string> wrapper) {
    std::vector<std::string> argv = std::move(wrapper);
    const size_t model_at = argv.size() + 2;
    for (std::string arg : {binary_path("muxserver"), std::string("--model"), model,
                            std::string("--proto"), proto, std::string("--listen"), listen})
        argv.push_back(std::move(arg));
    for (const auto& v : variants()) {
        if (model != v.name) continue;
        argv[model_at] = v.model;
        argv.insert(argv.end(), v.args.begin(), v.args.end());
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

// A test that crashes or times out must not leave its server running.
SpawnOptions killed_with_test(SpawnOptions options) {
    options.kill_with_parent = true;
    return options;
}
}  // namespace

ServerProcess::ServerProcess(const std::string& model, const std::string& proto,
                             const std::string& listen, std::vector<std::string> extra_args,
                             SpawnOptions options, std::vector<std::string> wrapper)
    : process_(server_argv(model, proto, listen_argument(listen, &unix_path_),
                           std::move(extra_args), std::move(wrapper)),
               killed_with_test(std::move(options))) {
    if (!process_.running()) {
        error_ = "could not start muxserver: " + process_.error();
        return;
    }
    auto line = process_.read_line(std::chrono::seconds(10));
    if (!line) {
        error_ = "muxserver printed no listening line within 10 s";
        return;
    }
    auto ready = nlohmann::json::parse(*line, nullptr, false);
    if (!ready.is_discarded() && ready.value("event", "") == "refused") {
        refusal_ = ready;
        error_ = "muxserver refused the model: " + *line;
        return;
    }
    if (ready.is_discarded() || ready.value("event", "") != "listening") {
        error_ = "unexpected first line from muxserver: " + *line;
        return;
    }
    auto endpoint = parse_endpoint(ready["endpoint"].get<std::string>(), &error_);
    if (!endpoint) return;
    endpoint_ = *endpoint;
    started_ = true;
}

ServerProcess::~ServerProcess() {
    stop();
}

SocketAddress ServerProcess::address() const {
    std::string ignored;
    return *resolve(endpoint_, &ignored);
}

nlohmann::json ServerProcess::stop() {
    if (stopped_) return stats_;
    stopped_ = true;
    // A server that refused its model exits by itself; a SIGTERM could beat its exit.
    if (!refusal_.is_null()) exit_status_ = process_.wait(std::chrono::seconds(10)).value_or(-1);
    if (exit_status_ == -1) exit_status_ = process_.stop(std::chrono::seconds(10));
    std::string rest = process_.read_rest(std::chrono::seconds(2));
    // The counters are the last line the server prints.
    while (!rest.empty() && rest.back() == '\n') rest.pop_back();
    size_t start = rest.rfind('\n');
    stats_ = nlohmann::json::parse(rest.substr(start == std::string::npos ? 0 : start + 1), nullptr,
                                   false);
    if (stats_.is_discarded() || !stats_.is_object()) stats_ = nlohmann::json::object();
    return stats_;
}

}  // namespace mux::test
