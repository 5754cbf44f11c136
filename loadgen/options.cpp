#include "options.hpp"

#include <sys/random.h>

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "http.hpp"

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

bool parse_time(const std::string& text, double bare_unit_s, double out_unit_s, double* value,
                std::string* error) {
    static constexpr std::pair<const char*, double> kUnits[] = {
        {"us", 1e-6}, {"ms", 1e-3}, {"s", 1.0}, {"m", 60.0}, {"h", 3600.0}};
    double number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
    double unit_s = suffix.empty() ? bare_unit_s : 0;
    for (const auto& [name, seconds] : kUnits)
        if (suffix == name) unit_s = seconds;
    if (ec != std::errc() || unit_s == 0 || !std::isfinite(number) || number < 0) {
        *error = "'" + text + "' is not a time: write 3 (in the option's unit), 3s, 500ms, " +
                 "250us, 2m or 1h";
        return false;
    }
    *value = number * unit_s / out_unit_s;
    return true;
}

bool parse_http_url(const std::string& url, std::string* endpoint, std::string* host,
                    std::string* path, std::string* error) {
    constexpr std::string_view scheme = "http://";
    if (url.starts_with("https://")) {
        *error = "'" + url + "': muxload speaks plain HTTP/1.1, not TLS";
        return false;
    }
    if (!url.starts_with(scheme)) {
        *error = "'" + url + "' is not an http://HOST:PORT/PATH URL";
        return false;
    }
    std::string_view rest = std::string_view(url).substr(scheme.size());
    size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    *path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (authority.empty()) {
        *error = "'" + url + "' names no host";
        return false;
    }
    *host = std::string(authority);
    // An IPv6 literal keeps its brackets; a port follows the last colon outside them.
    size_t bracket = authority.rfind(']');
    size_t colon = authority.rfind(':');
    bool has_port =
        colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
    std::string_view name = has_port ? authority.substr(0, colon) : authority;
    std::string_view port = has_port ? authority.substr(colon + 1) : "80";
    *endpoint = "tcp:" + std::string(name) + ":" + std::string(port);
    return true;
}

namespace {

// A CLI11 transform that reads wrk's time forms and hands CLI11 a plain number in the
// option's own unit, so the option keeps its type and its range check.
CLI::Validator time_option(double bare_unit_s, double out_unit_s) {
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            double value = 0;
            std::string error;
            if (!parse_time(text, bare_unit_s, out_unit_s, &value, &error)) return error;
            char out[64];
            std::snprintf(out, sizeof out, "%.17g", value);
            text = out;
            return "";
        },
        "", "time");
}

// Help shows "mux1|http", not CLI11's rendering of the map behind it.
template <typename T>
CLI::Validator one_of(std::map<std::string, T> names) {
    return CLI::CheckedTransformer(std::move(names)).description("");
}

bool valid_header(const std::string& h) {
    size_t colon = h.find(':');
    if (colon == 0 || colon == std::string::npos) return false;
    for (char c : h)
        if (c == '\r' || c == '\n' || c == '\0') return false;
    for (size_t i = 0; i < colon; ++i)
        if (h[i] == ' ' || h[i] == '\t') return false;
    return true;
}

bool is_header(const std::string& h, std::string_view name) {
    if (h.size() <= name.size() || h[name.size()] != ':') return false;
    for (size_t i = 0; i < name.size(); ++i)
        if ((h[i] | 0x20) != (name[i] | 0x20)) return false;
    return true;
}

uint64_t draw_seed() {
    uint64_t seed = 0;
    while (seed == 0)
        if (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed))
            seed =
                static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return seed;
}

// The HTTP side of validate: path, verification and headers.
std::string validate_http(LoadOptions* o, bool from_url) {
    if (!from_url || o->path == "/") {
        if (from_url && o->gen()) o->path = "/bytes/" + std::to_string(o->reply_bytes);
        if (!from_url) o->path = o->gen() ? "/bytes/" + std::to_string(o->reply_bytes) : "/";
    } else if (o->gen() && o->path != "/bytes/" + std::to_string(o->reply_bytes)) {
        return "--reply asks for /bytes/N, but the URL already names the path " + o->path;
    }
    uint64_t n = 0;
    bool bytes_path = http::parse_bytes_target(o->path, &n);
    if (bytes_path && !o->gen()) o->reply_bytes = static_cast<int64_t>(n);
    bool muxserver_path = o->path == "/" || bytes_path;
    o->verify_note.clear();
    if (o->verify_text == "full") {
        if (!muxserver_path)
            return "--verify full needs one of muxserver's paths (/ or /bytes/N): muxload cannot "
                   "know what " +
                   o->path + " returns; use --verify framing";
        o->verify = Verify::Full;
    } else if (o->verify_text == "framing") {
        o->verify = Verify::Framing;
    } else {
        o->verify = muxserver_path ? Verify::Full : Verify::Framing;
        if (!muxserver_path)
            o->verify_note =
                "verifying framing only (2xx status, headers, body length): " + o->path +
                " is not one of muxserver's paths, so its bytes are not checked";
    }
    for (const auto& h : o->headers) {
        if (!valid_header(h)) return "-H '" + h + "' must look like 'Name: value' on one line";
        if (is_header(h, "host")) o->host_header.clear();  // theirs replaces ours, as in wrk
    }
    return "";
}

}  // namespace

void setup_load_options(CLI::App& app, LoadOptions* o) {
    app.add_option("--target", o->target_text,
                   "Server to load: tcp:HOST:PORT, unix:PATH, or http://HOST[:PORT]/PATH (wrk's "
                   "form; implies --proto http and requests PATH)");
    app.add_option("--proto", o->proto_text,
                   "Protocol: mux1 (binary; the default) or http (HTTP/1.1 GET)")
        ->check(CLI::IsMember({"mux1", "http"}).description(""))
        ->type_name("mux1|http");
    app.add_option("-c,--conns", o->conns, "Total connections N")
        ->check(CLI::Range(1u, 1u << 24))
        ->capture_default_str();
    app.add_option("--active", o->active,
                   "Connections K carrying load (default: all). The other N-K make one "
                   "verified request each, then stay idle for the whole run");
    app.add_option("-t,--threads", o->threads, "Worker threads, each with its own epoll loop")
        ->check(CLI::Range(1u, 1024u))
        ->capture_default_str();
    app.add_option("-d,--duration", o->duration_s, "Measured window (TIME; bare number: seconds)")
        ->transform(time_option(1, 1))
        ->check(CLI::Range(0.01, 1e6).description(""))
        ->type_name("TIME")
        ->capture_default_str();
    app.add_option("--warmup", o->warmup_s,
                   "Load before the window, not recorded (TIME; bare number: seconds)")
        ->transform(time_option(1, 1))
        ->check(CLI::Range(0.0, 1e6).description(""))
        ->type_name("TIME")
        ->capture_default_str();
    app.add_option("--steady-max-extend", o->steady_max_extend_s,
                   "Before the window, the last half of the warmup must show steady load "
                   "(every active connection served, throughput within 25% between its "
                   "halves); if not, the warmup is extended a quarter-warmup at a time, by "
                   "at most this much (TIME; bare number: seconds; 0: judge, never extend; "
                   "at most 100x --warmup). A run still not steady is reported so")
        ->transform(time_option(1, 1))
        ->check(CLI::Range(0.0, 1e6).description(""))
        ->type_name("TIME")
        ->capture_default_str();
    app.add_option("--connect-rate", o->connect_rate_per_s,
                   "Connections opened per second during the ramp, in total (0: unlimited)")
        ->check(CLI::Range(0.0, 1e9))
        ->capture_default_str();
    app.add_option("--pipeline", o->pipeline, "Requests in flight per active connection")
        ->check(CLI::Range(1u, 4096u))
        ->capture_default_str();
    app.add_option("-R,--rate", o->rate_per_s,
                   "Open loop: requests per second in total (0: closed loop). Latency is then "
                   "measured from each request's intended send time")
        ->check(CLI::Range(0.0, 1e9))
        ->capture_default_str();
    app.add_option("--arrival", o->arrival, "Open-loop arrivals: evenly spaced, or Poisson")
        ->transform(one_of(std::map<std::string, Arrival>{{"uniform", Arrival::Uniform},
                                                          {"poisson", Arrival::Poisson}}))
        ->type_name("uniform|poisson");
    app.add_option("--seed", o->seed,
                   "Seed of the Poisson gaps and the --slow mix (0: draw one; the JSON records "
                   "it, so a run can be repeated exactly)");
    app.add_option("--payload", o->payload_bytes, "mux1 request payload, in bytes")
        ->check(CLI::Range(0u, 1u << 30))
        ->capture_default_str();
    app.add_option("--reply", o->reply_bytes,
                   "Reply size in bytes: mux1 GEN with this reply_len, or HTTP GET /bytes/N "
                   "(default: mux1 ECHO of the payload, HTTP GET /)")
        ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
    app.add_option("-H,--header", o->headers,
                   "HTTP: add this header ('Name: value') to every request (repeatable; a Host "
                   "header replaces muxload's)");
    app.add_option("--verify", o->verify_text,
                   "HTTP: full checks every body byte against muxserver's (the default for / and "
                   "/bytes/N); framing checks a 2xx status, well-formed headers and the exact "
                   "body length, and works against any server (the default for other paths)")
        ->check(CLI::IsMember({"full", "framing"}).description(""))
        ->type_name("full|framing");
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
                   "Per request and per connect (TIME; bare number: milliseconds): a reply or "
                   "connect slower than this is a timeout error and the connection is reopened. "
                   "During the ramp a connection's first reply waits for --ramp-timeout instead")
        ->transform(time_option(1e-3, 1e-3))
        ->check(CLI::Range(1.0, 3'600'000.0).description(""))
        ->type_name("TIME")
        ->capture_default_str();
    app.add_option("--ramp-timeout", o->ramp_timeout_s,
                   "Longest the connection ramp may take (TIME; bare number: seconds); the run "
                   "goes on with what is ready and reports itself incomplete")
        ->transform(time_option(1, 1))
        ->check(CLI::Range(0.1, 1e5).description(""))
        ->type_name("TIME")
        ->capture_default_str();
    app.add_option("--json", o->json_path, "Write the result (schema muxload/1) to this file");
    app.add_flag("-q,--quiet", o->quiet,
                 "Print only the event lines (measure_start, measure_end, ...), not the table");
    app.add_flag("--hold-after-window", o->hold_after_window,
                 "After measure_end, once the window's last replies are in, print a holding "
                 "line and keep every connection open and idle (no new requests) until "
                 "standard input closes (at most 10 s), so a driver can read the server's "
                 "state before teardown");
}

std::string validate(LoadOptions* o) {
    if (o->target_text.empty())
        return "--target is required (tcp:HOST:PORT, unix:PATH or http://HOST:PORT/PATH)";
    std::string error, endpoint_text = o->target_text;
    bool from_url = o->target_text.starts_with("http://") || o->target_text.starts_with("https://");
    if (from_url) {
        if (!parse_http_url(o->target_text, &endpoint_text, &o->host_header, &o->path, &error))
            return "--target: " + error;
        if (o->proto_text == "mux1") return "--proto mux1 cannot load an http:// target";
        o->proto = Proto::Http;
    } else if (!o->proto_text.empty()) {
        o->proto = o->proto_text == "http" ? Proto::Http : Proto::Mux1;
    }
    auto endpoint = parse_endpoint(endpoint_text, &error);
    if (!endpoint) return "--target: " + error;
    o->target = *endpoint;
    if (o->active > o->conns)
        return "--active " + std::to_string(o->active) + " is more than --conns " +
               std::to_string(o->conns);
    // The check keeps 20 counts per warmup for the warmup and its longest extension.
    if (o->warmup_s > 0 && o->steady_max_extend_s > 100 * o->warmup_s)
        return fmt::format("--steady-max-extend {:g} s is more than 100x --warmup {:g} s",
                           o->steady_max_extend_s, o->warmup_s);
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
    if (o->proto == Proto::Http) {
        if (o->work_us != 0 || !o->slow.empty())
            return "--work-us and --slow need --proto mux1: the HTTP subset has no way to ask "
                   "for work";
        error = validate_http(o, from_url);
        if (!error.empty()) return error;
    } else {
        if (o->verify_text == "framing")
            return "--verify framing needs --proto http: a mux1 reply is always checked in full";
        if (!o->headers.empty()) return "-H/--header needs --proto http";
        o->verify = Verify::Full;
        o->path.clear();
    }
    if (o->seed == 0) o->seed = draw_seed();
    return "";
}

nlohmann::json to_json(const LoadOptions& o) {
    nlohmann::json slow = nlohmann::json::array();
    for (const auto& s : o.slow) slow.push_back({{"percent", s.percent}, {"work_us", s.work_us}});
    bool http = o.proto == Proto::Http;
    return {
        {"target", o.target.to_string()},
        {"proto", http ? "http" : "mux1"},
        {"path", o.path},
        {"headers", o.headers},
        {"verify", o.verify == Verify::Full ? "full" : "framing"},
        {"verify_note", o.verify_note},
        {"conns", o.conns},
        {"active", o.active_conns()},
        {"idle", o.conns - o.active_conns()},
        {"threads", o.threads},
        {"duration_s", o.duration_s},
        {"warmup_s", o.warmup_s},
        {"steady_max_extend_s", o.steady_max_extend_s},
        {"connect_rate_per_s", o.connect_rate_per_s},
        {"pipeline", o.pipeline},
        {"mode", o.open_loop() ? "open" : "closed"},
        {"rate_per_s", o.rate_per_s},
        {"arrival", o.arrival == Arrival::Uniform ? "uniform" : "poisson"},
        {"seed", o.seed},
        {"payload_bytes", o.payload_bytes},
        {"reply_bytes", o.reply_bytes},
        {"request", http ? "GET " + o.path : (o.gen() ? "GEN" : "ECHO")},
        {"work_us", o.work_us},
        {"slow", slow},
        {"requests_per_conn", o.requests_per_conn},
        {"timeout_ms", o.timeout_ms},
        {"ramp_timeout_s", o.ramp_timeout_s},
    };
}

}  // namespace mux::load
