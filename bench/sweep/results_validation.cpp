#include "results_validation.hpp"

#include <array>
#include <cctype>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "results.hpp"

namespace mux::sweep {

namespace {

using nlohmann::json;

// Results files are about eight levels deep; anything far deeper is not one, and a bound keeps
// the walks below from recursing without end.
constexpr size_t kMaxDepth = 64;

// One level of the document being built: an array, or an object and its latest key.
struct Step {
    bool in_array = false;
    bool has_key = false;
    std::string key;
};

bool plain_key(std::string_view key) {
    if (key.empty()) return false;
    for (char c : key)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
    return true;
}

// points[3].server_cost.cpu_us_per_request; a key that is not plain is quoted, so a hostile
// key cannot break the one-line message.
std::string append_key(const std::string& path, std::string_view key) {
    if (plain_key(key)) return path.empty() ? std::string(key) : path + "." + std::string(key);
    return path + "[" + json(std::string(key)).dump(-1, ' ', true, json::error_handler_t::replace) +
           "]";
}

std::string append_index(const std::string& path, size_t index) {
    return fmt::format("{}[{}]", path, index);
}

std::string shown(const std::string& path) {
    return path.empty() ? "(top level)" : path;
}

// A value as it reads in a message: one line, at most about 40 characters.
std::string brief(const json& value) {
    std::string text = value.dump(-1, ' ', true, json::error_handler_t::replace);
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return text;
}

// Builds the document like nlohmann's own DOM parser, but remembers where it is, so a parse
// error (a NaN, a truncated file) names the field it stopped in.
class PathTrackingBuilder : public nlohmann::json_sax<json> {
  public:
    bool null() override { return add(nullptr); }
    bool boolean(bool value) override { return add(value); }
    bool number_integer(number_integer_t value) override { return add(value); }
    bool number_unsigned(number_unsigned_t value) override { return add(value); }
    bool number_float(number_float_t value, const string_t&) override { return add(value); }
    bool string(string_t& value) override { return add(std::move(value)); }
    bool binary(binary_t&) override { return false; }  // JSON text has none
    bool start_object(std::size_t) override { return open(json::object()); }
    bool key(string_t& key) override {
        steps_.back().key = key;
        steps_.back().has_key = true;
        return true;
    }
    bool end_object() override { return close(); }
    bool start_array(std::size_t) override { return open(json::array()); }
    bool end_array() override { return close(); }
    bool parse_error(std::size_t, const std::string& last_token,
                     const nlohmann::detail::exception& ex) override {
        std::string what = ex.what();
        // "[json.exception.parse_error.101] parse error at line 1, column 9: ..." without the tag
        if (size_t tag_end = what.find("] "); tag_end != std::string::npos)
            what = what.substr(tag_end + 2);
        error_ = fmt::format("{}: not valid JSON: {}", shown(path()), what);
        if (looks_non_finite(last_token))
            error_ +=
                " (NaN and Infinity are not JSON numbers: the file holds a non-finite figure)";
        if (ex.id == 406) error_ += " (beyond what a double holds: not a figure)";
        return false;
    }

    json& root() { return root_; }
    const std::string& error() const { return error_; }

  private:
    // The lexer stops at the first letter it cannot use: the "N" of NaN, the "I" of
    // Infinity, the "na" of nan (read as a broken null).
    static bool looks_non_finite(std::string_view token) {
        size_t last_other =
            token.find_last_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
        std::string_view word =
            last_other == std::string_view::npos ? token : token.substr(last_other + 1);
        if (word.empty() ||
            (word.size() == 1 && !std::isupper(static_cast<unsigned char>(word[0]))))
            return false;
        for (std::string_view name : {"NaN", "Infinity", "nan", "inf"})
            if (name.substr(0, word.size()) == word) return true;
        return false;
    }

    // The path of the value being read. An array's open child is its last element; in the
    // innermost array, the value being read would be the next one.
    std::string path() const {
        std::string out;
        for (size_t i = 0; i < steps_.size(); ++i) {
            bool innermost = i + 1 == steps_.size();
            if (steps_[i].in_array)
                out = append_index(out, containers_[i]->size() - (innermost ? 0 : 1));
            else if (steps_[i].has_key)
                out = append_key(out, steps_[i].key);
        }
        return out;
    }

    json* insert(json&& value) {
        if (containers_.empty()) {
            root_ = std::move(value);
            return &root_;
        }
        json& top = *containers_.back();
        if (top.is_object()) {
            json& slot = top[steps_.back().key];
            slot = std::move(value);
            return &slot;
        }
        top.push_back(std::move(value));
        return &top.back();
    }

    bool add(json&& value) {
        insert(std::move(value));
        return true;
    }

    bool open(json&& container) {
        if (containers_.size() >= kMaxDepth) {
            error_ = fmt::format(
                "(top level): nested deeper than {} levels, which no results file is", kMaxDepth);
            return false;
        }
        bool is_array = container.is_array();
        containers_.push_back(insert(std::move(container)));
        steps_.push_back({is_array, false, ""});
        return true;
    }

    bool close() {
        containers_.pop_back();
        steps_.pop_back();
        return true;
    }

    json root_;
    std::vector<json*> containers_;  // pointers stay valid: a parent grows only after its child
    std::vector<Step> steps_;
    std::string error_;
};

// --- numbers, judged by the kind their key names ---------------------------------------

struct Kind {
    const char* what;
    double min, max;
    bool whole;  // read into an int by the tools
};

constexpr double kCenturyS = 100 * 365.25 * 86400;
// No count in a run nears a thousand trillion (requests at ten million a second for three
// years), and below it sums of a few counts still fit the 64-bit integers tools read them into.
constexpr Kind kCount{"count", 0, 1e15, false};
// A running sum (sum_squares of requests per connection, sum_ns of latencies): a statistic, never
// read into an integer, and free to be large.
constexpr Kind kSum{"sum", 0, 1e300, false};
constexpr Kind kRepeat{"repeat index or count", 0, 1e6, true};
constexpr Kind kConnections{"connection count", 0, 1e9, true};
// unserved_connections and the like: a median over repeats may fall between whole numbers.
constexpr Kind kConnectionFigure{"connection count", 0, 1e9, false};
constexpr Kind kCores{"core count", 0, 1e6, true};
// muxload's random seed: any 64-bit value, a name and not a quantity. Read back as a double it
// may round, which costs nothing (a run is reproduced from muxload's own JSON, not from here).
constexpr Kind kSeed{"64-bit seed", 0, 18446744073709551615.0, true};
constexpr Kind kRate{"rate per second", 0, 1e12, false};
constexpr Kind kPerRequest{"cost per request", 0, 1e12, false};
// A difference of two memory readings over the connections: noise can make it negative.
constexpr Kind kPerConnection{"figure per connection", -1e15, 1e15, false};
// Rounding can put a ratio that is at most 1 a hair above it.
constexpr Kind kFraction{"fraction", 0, 1 + 1e-9, false};
constexpr Kind kUtilisation{"utilisation", 0, 1e4, false};
constexpr Kind kPercent{"percentage", 0, 100, false};
constexpr Kind kBytes{"byte count", 0, 1.15e18, false};
constexpr Kind kSeconds{"duration in s", 0, kCenturyS, false};
constexpr Kind kMilliseconds{"duration in ms", 0, kCenturyS * 1e3, false};
constexpr Kind kMicroseconds{"duration in us", 0, kCenturyS * 1e6, false};
constexpr Kind kNanoseconds{"duration in ns", 0, kCenturyS * 1e9, false};

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The kind a key names, or null when it names none (its values then take their parent's).
// Exact names first: the few keys the tools read into an int. Then units, longest first.
const Kind* kind_of_key(std::string_view key) {
    if (key == "repeat" || key == "repeats" || key == "repeats_ok") return &kRepeat;
    if (key == "conns" || key == "active" || ends_with(key, "_conns")) return &kConnections;
    if (key == "online_cores") return &kCores;
    if (key == "seed") return &kSeed;
    if (key == "percent") return &kPercent;
    if (key.substr(0, 4) == "sum_") return &kSum;
    static constexpr std::array<std::pair<std::string_view, const Kind*>, 11> kSuffixes = {{
        {"_per_s", &kRate},
        {"_per_request", &kPerRequest},
        {"_per_connection", &kPerConnection},
        {"_connections", &kConnectionFigure},
        {"_index", &kFraction},
        {"_utilisation", &kUtilisation},
        {"_bytes", &kBytes},
        {"_ns", &kNanoseconds},
        {"_us", &kMicroseconds},
        {"_ms", &kMilliseconds},
        {"_s", &kSeconds},
    }};
    for (const auto& [suffix, kind] : kSuffixes)
        if (ends_with(key, suffix)) return kind;
    return nullptr;
}

std::optional<std::string> number_problem(const json& value, const Kind& kind) {
    double v = value.get<double>();
    if (!std::isfinite(v)) return fmt::format("{} is not a finite number", v);
    // Every bound is a double well inside 2^53 or far beyond 2^64, so comparing integers as
    // doubles decides them exactly.
    if (v < kind.min || v > kind.max)
        return fmt::format("{} is out of range for a {} ({:g} to {:g})", brief(value), kind.what,
                           kind.min, kind.max);
    if (kind.whole && std::floor(v) != v)
        return fmt::format("{} is not a whole number, as a {} must be", brief(value), kind.what);
    return std::nullopt;
}

// Walks the whole document. A key that names a kind holds numbers (or null, for a figure
// that could not be taken, or arrays and objects of them); other keys may hold anything, and
// their numbers are counts unless a key above them names a kind.
std::optional<std::string> numbers_problem(const json& value, const std::string& path,
                                           const Kind& kind, bool kind_named) {
    if (value.is_number()) {
        if (auto problem = number_problem(value, kind)) return shown(path) + ": " + *problem;
    } else if (value.is_object()) {
        for (const auto& [key, child] : value.items()) {
            // server_cost's `missing` and `sources` name a figure per key (cpu_sys_s, ...) and
            // hold why it is missing or where it came from: text, never a number of that kind.
            if ((key == "missing" || key == "sources") && child.is_object()) {
                for (const auto& [figure, text] : child.items())
                    if (!text.is_string() && !text.is_null())
                        return fmt::format("{}: expected text or null, got {}",
                                           shown(append_key(append_key(path, key), figure)),
                                           brief(text));
                continue;
            }
            const Kind* named = kind_of_key(key);
            if (auto p = numbers_problem(child, append_key(path, key), named ? *named : kind,
                                         named || kind_named))
                return p;
        }
    } else if (value.is_array()) {
        for (size_t i = 0; i < value.size(); ++i)
            if (auto p = numbers_problem(value[i], append_index(path, i), kind, kind_named))
                return p;
    } else if (kind_named && !value.is_null()) {
        return fmt::format("{}: expected a number ({}), got {}", shown(path), kind.what,
                           brief(value));
    }
    return std::nullopt;
}

// --- structure: the fields the tools read, with the types they read them as -----------

enum class Type { String, Number, Bool, Object, Array, ObjectOrString };

const char* type_name(Type t) {
    switch (t) {
        case Type::String:
            return "a string";
        case Type::Number:
            return "a number";
        case Type::Bool:
            return "true or false";
        case Type::Object:
            return "an object";
        case Type::Array:
            return "an array";
        case Type::ObjectOrString:
            return "an object or a string";
    }
    return "?";
}

bool has_type(const json& v, Type t) {
    switch (t) {
        case Type::String:
            return v.is_string();
        case Type::Number:
            return v.is_number();
        case Type::Bool:
            return v.is_boolean();
        case Type::Object:
            return v.is_object();
        case Type::Array:
            return v.is_array();
        case Type::ObjectOrString:
            return v.is_object() || v.is_string();
    }
    return false;
}

class Structure {
  public:
    std::optional<std::string> problem;

    // The field if present with the right type; null if absent (a problem if required) or
    // of another type (always a problem).
    const json* field(const json& obj, const std::string& path, const char* key, Type type,
                      bool required = false) {
        auto it = obj.find(key);
        if (it == obj.end()) {
            if (required) fail(path, fmt::format("missing '{}'", key));
            return nullptr;
        }
        if (!has_type(*it, type)) {
            fail(append_key(path, key),
                 fmt::format("expected {}, got {}", type_name(type), brief(*it)));
            return nullptr;
        }
        return &*it;
    }

    void strings(const json& obj, const std::string& path, std::initializer_list<const char*> keys,
                 bool required = false) {
        for (const char* key : keys) field(obj, path, key, Type::String, required);
    }

    void numbers(const json& obj, const std::string& path, std::initializer_list<const char*> keys,
                 bool required = false) {
        for (const char* key : keys) field(obj, path, key, Type::Number, required);
    }

    void status(const json& obj, const std::string& path) {
        const json* s = field(obj, path, "status", Type::String, true);
        if (s && *s != "ok" && *s != "not_clean" && *s != "unsteady" && *s != "refused" &&
            *s != "failed")
            fail(append_key(path, "status"),
                 fmt::format("{} is not ok, not_clean, unsteady, refused or failed", brief(*s)));
    }

    // Which side set the point's limit (limit.hpp); absent in files from before it was judged.
    void limit(const json& obj, const std::string& path) {
        const json* l = field(obj, path, "limit", Type::String);
        if (l && *l != "loadgen" && *l != "server" && *l != "both" && *l != "neither")
            fail(append_key(path, "limit"),
                 fmt::format("{} is not loadgen, server, both or neither", brief(*l)));
    }

    void reason(const json& obj, const std::string& path) {
        if (const json* r = field(obj, path, "reason", Type::Object))
            strings(*r, append_key(path, "reason"), {"code", "detail"});
    }

    void fail(const std::string& path, std::string what) {
        if (!problem) problem = shown(path) + ": " + what;
    }
};

void check_environment(Structure& s, const json& env) {
    const std::string path = "environment";
    s.strings(env, path,
              {"hostname", "cpu_model", "compiler", "compiler_flags", "build_type", "git_commit",
               "date_utc"});
    if (const json* kernel = s.field(env, path, "kernel", Type::ObjectOrString);
        kernel && kernel->is_object())
        s.strings(*kernel, path + ".kernel", {"sysname", "release", "version", "machine"});
    s.numbers(env, path, {"online_cores"});
}

void check_point(Structure& s, const json& p, const std::string& path) {
    if (!p.is_object()) return s.fail(path, fmt::format("expected an object, got {}", brief(p)));
    s.strings(p, path, {"scenario", "model", "x_name"}, true);
    s.numbers(p, path, {"x_value", "conns", "active", "repeat"}, true);
    s.status(p, path);
    s.reason(p, path);
    s.field(p, path, "loadgen_bound", Type::Bool);
    s.field(p, path, "loadgen_saturated", Type::Bool);
    s.limit(p, path);
    if (auto share = p.find("server_busy_share");
        share != p.end() && !share->is_null() && !share->is_number())
        s.fail(append_key(path, "server_busy_share"),
               fmt::format("expected a number or null, got {}", brief(*share)));
    s.field(p, path, "server_cost", Type::Object);
    if (const json* loadgen = s.field(p, path, "loadgen", Type::Object)) {
        std::string at = path + ".loadgen";
        s.field(*loadgen, at, "errors", Type::Object);
        if (const json* summary = s.field(*loadgen, at, "summary", Type::Object, true)) {
            s.field(*summary, at + ".summary", "latency_us", Type::Object);
            s.field(*summary, at + ".summary", "fairness", Type::Object);
            s.numbers(*summary, at + ".summary", {"requests"});
        }
    }
}

void check_summary_entry(Structure& s, const json& e, const std::string& path) {
    if (!e.is_object()) return s.fail(path, fmt::format("expected an object, got {}", brief(e)));
    s.strings(e, path, {"scenario", "model", "x_name"}, true);
    s.numbers(e, path, {"x_value"}, true);
    s.numbers(e, path, {"repeats", "repeats_ok"});
    s.status(e, path);
    s.reason(e, path);
    s.field(e, path, "loadgen_bound", Type::Bool);
    s.limit(e, path);
    const json* metrics = s.field(e, path, "metrics", Type::Object, true);
    if (!metrics) return;
    for (const auto& [key, stat] : metrics->items()) {
        std::string at = append_key(path + ".metrics", key);
        if (!stat.is_object()) {
            s.fail(at, fmt::format("expected an object {{median, min, max, values}}, got {}",
                                   brief(stat)));
            continue;
        }
        s.numbers(stat, at, {"median", "min", "max"}, true);
        if (const json* values = s.field(stat, at, "values", Type::Array))
            for (size_t i = 0; i < values->size(); ++i)
                if (!(*values)[i].is_number())
                    s.fail(append_index(at + ".values", i),
                           fmt::format("expected a number, got {}", brief((*values)[i])));
    }
}

}  // namespace

bool readable_schema(std::string_view schema) {
    return schema == kResultsSchema || schema == kResultsSchema1;
}

std::optional<std::string> results_problem(const json& results) {
    if (!results.is_object())
        return fmt::format("(top level): expected an object, got {}", brief(results));
    Structure s;
    const json* schema = s.field(results, "", "schema", Type::String, true);
    if (s.problem) return s.problem;
    if (!readable_schema(schema->get<std::string>()))
        return fmt::format(
            "schema: {} is not one this muxbench reads (muxbench-results/1 or /2); was the file "
            "written by a newer muxbench, or is it not a results file?",
            brief(*schema));
    const json* env = s.field(results, "", "environment", Type::Object, true);
    const json* plan = s.field(results, "", "plan", Type::Object, true);
    const json* points = s.field(results, "", "points", Type::Array, true);
    const json* summary = s.field(results, "", "summary", Type::Array, true);
    s.strings(results, "", {"started_at", "finished_at"});
    if (s.problem) return s.problem;
    check_environment(s, *env);
    s.strings(*plan, "plan", {"name", "proto"});
    s.numbers(*plan, "plan", {"repeats"});
    for (size_t i = 0; i < points->size() && !s.problem; ++i)
        check_point(s, (*points)[i], append_index("points", i));
    for (size_t i = 0; i < summary->size() && !s.problem; ++i)
        check_summary_entry(s, (*summary)[i], append_index("summary", i));
    if (const json* parts = s.field(results, "", "merged_from", Type::Array))
        for (size_t i = 0; i < parts->size() && !s.problem; ++i) {
            std::string at = append_index("merged_from", i);
            if (!(*parts)[i].is_object()) {
                s.fail(at, "expected an object");
                break;
            }
            s.strings((*parts)[i], at, {"run", "started_at", "finished_at"});
            s.numbers((*parts)[i], at, {"repeats"});
        }
    if (s.problem) return s.problem;
    return numbers_problem(results, "", kCount, false);
}

std::optional<json> parse_results(std::istream& in, const std::string& name, std::string* error) {
    PathTrackingBuilder builder;
    bool parsed = json::sax_parse(in, &builder);
    if (!parsed) {
        *error = fmt::format("{}: {}", name, builder.error());
        return std::nullopt;
    }
    if (auto problem = results_problem(builder.root())) {
        *error = fmt::format("{}: {}", name, *problem);
        return std::nullopt;
    }
    return std::move(builder.root());
}

}  // namespace mux::sweep
