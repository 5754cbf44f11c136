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

// "--slow 1%:10000": this share of requests asks for work_us of server work.
struct SlowSpec {
    double percent = 0;
    uint32_t work_us = 0;
};
bool parse_slow_spec(const std::string& text, SlowSpec* out, std::string* error);

struct LoadOptions {
    std::string target_text;
    Endpoint target;
    Proto proto = Proto::Mux1;
    uint32_t conns = 1;
    uint32_t active = 0;  // 0: all of conns
    uint32_t threads = 1;
    double duration_s = 10;
    double warmup_s = 1;
    double connect_rate_per_s = 0;  // 0: as fast as the connects complete
    uint32_t pipeline = 1;
    double rate_per_s = 0;  // 0: closed loop
    Arrival arrival = Arrival::Uniform;
    uint32_t payload_bytes = 16;
    int64_t reply_bytes = -1;  // -1: mux1 ECHO / HTTP GET /; else GEN / GET /bytes/N
    uint32_t work_us = 0;
    std::vector<std::string> slow_text;
    std::vector<SlowSpec> slow;
    uint64_t requests_per_conn = 0;  // 0: unlimited
    uint32_t timeout_ms = 2000;
    double ramp_timeout_s = 30;
    std::string json_path;
    bool quiet = false;
    bool hold_after_window = false;

    bool open_loop() const { return rate_per_s > 0; }
    uint32_t active_conns() const { return active == 0 ? conns : active; }
    bool gen() const { return reply_bytes >= 0; }
};

void setup_load_options(CLI::App& app, LoadOptions* options);
// Resolves target and slow specs and checks combinations. Returns "" or what is wrong.
std::string validate(LoadOptions* options);
nlohmann::json to_json(const LoadOptions& options);

}  // namespace mux::load
