#include "options.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

namespace mux::load {

bool parse_slow_spec(const std::string& text, SlowSpec* out, std::string* error) {
    size_t colon = text.find(':');
    if (colon == std::string::npos || colon == 0 || text[colon - 1] != '%') {
        *error = "--slow '" + text + "' must look like 1%:10000 (percent of requests : work_us)";
        return false;
    }
    try {
        size_t used = 0;
        out->percent = std::stod(text.substr(0, colon - 1), &used);
        if (used != colon - 1) throw std::invalid_argument("percent");
        unsigned long us = std::stoul(text.substr(colon + 1), &used);
        if (used != text.size() - colon - 1 || us > UINT32_MAX) throw std::invalid_argument("us");
        out->work_us = static_cast<uint32_t>(us);
    } catch (const std::exception&) {
        *error = "--slow '" + text + "' must look like 1%:10000 (percent of requests : work_us)";
        return false;
    }
    if (!(out->percent > 0 && out->percent <= 100)) {
        *error = "--slow '" + text + "': the percent must be in (0, 100]";
        return false;
    }
    return true;
}

void setup_load_options(CLI::App& app, LoadOptions* o) {
    app.add_option("--target", o->target_text, "Server to load: tcp:HOST:PORT or unix:PATH");
    app.add_option("--proto", o->proto, "Protocol: mux1 (binary) or http (HTTP/1.1 GET)")
        ->transform(CLI::CheckedTransformer(
            std::map<std::string, Proto>{{"mux1", Proto::Mux1}, {"http", Proto::Http}}));
    app.add_option("-c,--conns", o->conns, "Total connections N")
        ->check(CLI::Range(1u, 1u << 24))
        ->capture_default_str();
    app.add_option("--active", o->active,
                   "Connections K carrying load (default: all). The other N-K make one "
                   "verified request each, then stay idle for the whole run");
    app.add_option("-t,--threads", o->threads, "Worker threads, each with its own epoll loop")
        ->check(CLI::Range(1u, 1024u))
        ->capture_default_str();
    app.add_option("-d,--duration", o->duration_s, "Measured window, in seconds")
        ->check(CLI::Range(0.01, 1e6))
        ->capture_default_str();
    app.add_option("--warmup", o->warmup_s, "Load before the window, not recorded, in seconds")
        ->check(CLI::Range(0.0, 1e6))
        ->capture_default_str();
    app.add_option("--connect-rate", o->connect_rate_per_s,
                   "Connections opened per second during the ramp, in total (0: unlimited)")
        ->check(CLI::Range(0.0, 1e9))
        ->capture_default_str();
    app.add_option("--pipeline", o->pipeline, "Requests in flight per active connection")
        ->check(CLI::Range(1u, 4096u))
        ->capture_default_str();
    app.add_option("--rate", o->rate_per_s,
                   "Open loop: requests per second in total (0: closed loop). Latency is then "
                   "measured from each request's intended send time")
        ->check(CLI::Range(0.0, 1e9))
        ->capture_default_str();
    app.add_option("--arrival", o->arrival, "Open-loop arrivals: uniform or poisson")
        ->transform(CLI::CheckedTransformer(std::map<std::string, Arrival>{
            {"uniform", Arrival::Uniform}, {"poisson", Arrival::Poisson}}));
    app.add_option("--payload", o->payload_bytes, "mux1 request payload, in bytes")
        ->check(CLI::Range(0u, 1u << 30))
        ->capture_default_str();
    app.add_option("--reply", o->reply_bytes,
                   "Reply size in bytes: mux1 GEN with this reply_len, or HTTP GET /bytes/N "
                   "(default: mux1 ECHO of the payload, HTTP GET /)")
        ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
    app.add_option("--work-us", o->work_us, "mux1: server CPU work per request, in microseconds")
        ->capture_default_str();
    app.add_option("--slow", o->slow_text,
                   "mux1 heavy tail, P%:US: P percent of requests ask for US microseconds of "
                   "work instead of --work-us (repeatable)");
    app.add_option("--requests-per-conn", o->requests_per_conn,
                   "Close and reopen a connection after this many replies (0: never; 1: a new "
                   "connection per request)")
        ->capture_default_str();
    app.add_option("--timeout", o->timeout_ms,
                   "Per request and per connect, in milliseconds: a reply or connect slower "
                   "than this is a timeout error and the connection is reopened")
        ->check(CLI::Range(1u, 3'600'000u))
        ->capture_default_str();
    app.add_option("--ramp-timeout", o->ramp_timeout_s,
                   "Longest the connection ramp may take, in seconds; the run goes on with "
                   "what connected and reports itself incomplete")
        ->check(CLI::Range(0.1, 1e5))
        ->capture_default_str();
    app.add_option("--json", o->json_path, "Write the result (schema muxload/1) to this file");
    app.add_flag("-q,--quiet", o->quiet, "Print only the measure_start/measure_end lines");
    app.add_flag("--hold-after-window", o->hold_after_window,
                 "After measure_end, keep every connection open until standard input closes "
                 "(at most 10 s), so a driver can read the server's state before teardown");
}

std::string validate(LoadOptions* o) {
    if (o->target_text.empty()) return "--target is required (tcp:HOST:PORT or unix:PATH)";
    std::string error;
    auto endpoint = parse_endpoint(o->target_text, &error);
    if (!endpoint) return "--target: " + error;
    o->target = *endpoint;
    if (o->active > o->conns)
        return "--active " + std::to_string(o->active) + " is more than --conns " +
               std::to_string(o->conns);
    if (o->threads > o->active_conns())
        o->threads = o->active_conns();  // a thread with no active connection measures nothing
    o->slow.clear();
    double slow_total = 0;
    for (const auto& text : o->slow_text) {
        SlowSpec spec;
        if (!parse_slow_spec(text, &spec, &error)) return error;
        o->slow.push_back(spec);
        slow_total += spec.percent;
    }
    if (slow_total > 100) return "--slow shares add up to " + std::to_string(slow_total) + "%";
    if (o->proto == Proto::Http && (o->work_us != 0 || !o->slow.empty()))
        return "--work-us and --slow need --proto mux1: the HTTP subset has no way to ask for work";
    return "";
}

nlohmann::json to_json(const LoadOptions& o) {
    nlohmann::json slow = nlohmann::json::array();
    for (const auto& s : o.slow) slow.push_back({{"percent", s.percent}, {"work_us", s.work_us}});
    return {
        {"target", o.target.to_string()},
        {"proto", o.proto == Proto::Mux1 ? "mux1" : "http"},
        {"conns", o.conns},
        {"active", o.active_conns()},
        {"idle", o.conns - o.active_conns()},
        {"threads", o.threads},
        {"duration_s", o.duration_s},
        {"warmup_s", o.warmup_s},
        {"connect_rate_per_s", o.connect_rate_per_s},
        {"pipeline", o.pipeline},
        {"mode", o.open_loop() ? "open" : "closed"},
        {"rate_per_s", o.rate_per_s},
        {"arrival", o.arrival == Arrival::Uniform ? "uniform" : "poisson"},
        {"payload_bytes", o.payload_bytes},
        {"reply_bytes", o.reply_bytes},
        {"request", o.proto == Proto::Mux1 ? (o.gen() ? "GEN" : "ECHO")
                                           : (o.gen() ? "GET /bytes/N" : "GET /")},
        {"work_us", o.work_us},
        {"slow", slow},
        {"requests_per_conn", o.requests_per_conn},
        {"timeout_ms", o.timeout_ms},
        {"ramp_timeout_s", o.ramp_timeout_s},
    };
}

}  // namespace mux::load
