// muxload's configuration: one struct, filled by CLI11 in setup_load_options and checked
// once in validate, before any socket is opened.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "net.hpp"

namespace mux::load {

enum class Proto { Mux1, Http };
enum class Arrival { Uniform, Poisson };
// full: every reply byte against what muxserver sends. framing: a 2xx status, well-formed
// headers and exactly the body length the reply announced, from any HTTP server.
enum class Verify { Full, Framing };

// "--slow 1%:10000": this share of requests asks for work_us of server work.
struct SlowSpec {
    double percent = 0;
    uint32_t work_us = 0;
};
bool parse_slow_spec(const std::string& text, SlowSpec* out, std::string* error);

// wrk's time forms: "3" (in the option's bare unit), "3s", "500ms", "250us", "2m", "1h".
// Sets *value in out_unit_s units. Returns false and says why in *error.
bool parse_time(const std::string& text, double bare_unit_s, double out_unit_s, double* value,
                std::string* error);

// "http://HOST[:PORT]/PATH" as wrk takes it. Sets the tcp:HOST:PORT endpoint text, the Host
// header (HOST[:PORT] as written) and the path ("/" when absent).
bool parse_http_url(const std::string& url, std::string* endpoint, std::string* host,
                    std::string* path, std::string* error);

struct LoadOptions {
    std::string target_text;  // tcp:HOST:PORT, unix:PATH or http://HOST:PORT/PATH
    Endpoint target;
    std::string proto_text;  // "" (the target decides; else mux1), "mux1" or "http"
    Proto proto = Proto::Mux1;
    std::string path;  // HTTP request target, set by validate
    std::string host_header = "muxbench";
    std::vector<std::string> headers;  // -H "Name: value", added to every HTTP request
    std::string verify_text;           // "" (by path), "full" or "framing"
    Verify verify = Verify::Full;
    std::string verify_note;  // why verify is what it is, when muxload chose it
    uint32_t conns = 1;
    uint32_t active = 0;  // 0: all of conns
    uint32_t threads = 1;
    double duration_s = 10;
    double warmup_s = 1;
    double steady_max_extend_s = 5;  // longest extension of the warmup (steady.hpp)
    double connect_rate_per_s = 0;   // 0: as fast as the connects complete
    uint32_t pipeline = 1;
    double rate_per_s = 0;  // 0: closed loop
    Arrival arrival = Arrival::Uniform;
    uint32_t payload_bytes = 16;
    int64_t reply_bytes = -1;  // -1: mux1 ECHO / HTTP GET /; else GEN / GET /bytes/N
    uint32_t work_us = 0;
    std::vector<std::string> slow_text;
    std::vector<SlowSpec> slow;
    uint64_t requests_per_conn = 0;  // 0: unlimited
    double timeout_ms = 2000;
    double ramp_timeout_s = 30;
    uint64_t seed = 0;  // 0: validate draws one
    std::string json_path;
    bool quiet = false;
    bool hold_after_window = false;

    bool open_loop() const { return rate_per_s > 0; }
    uint32_t active_conns() const { return active == 0 ? conns : active; }
    bool gen() const { return reply_bytes >= 0; }
};

void setup_load_options(CLI::App& app, LoadOptions* options);
// Resolves the target, protocol, path, verification, slow specs and seed, and checks
// combinations. Returns "" or what is wrong.
std::string validate(LoadOptions* options);
nlohmann::json to_json(const LoadOptions& options);

}  // namespace mux::load
