"""A results.json from anywhere, checked before anything is drawn (issue 16).

The same rules as the C++ reader that `muxbench check` and `merge` use
(bench/sweep/results_validation.cpp): the fields the tools read have their types, and every
number is finite and sane for the kind its key names (units are in key names: _us, _per_s,
_bytes ...), so a new metric is judged as soon as it is named. Every problem is one line,
"FIELD: what is wrong", FIELD being the JSON path (points[3].server_cost.cpu_us_per_request).

Python's json reads NaN, Infinity and 1e400 as floats where the C++ reader refuses to parse
them; both name the field either way.
"""
from __future__ import annotations

import json
import math

SCHEMAS = ("muxbench-results/1", "muxbench-results/2")
MAX_DEPTH = 64  # results files are about eight deep
CENTURY_S = 100 * 365.25 * 86400


class Problem(Exception):
    """str() is "FIELD: what is wrong"."""


class Kind:
    def __init__(self, what, lo, hi, whole=False):
        self.what, self.lo, self.hi, self.whole = what, lo, hi, whole


COUNT = Kind("count", 0, 1e15)  # see kCount in bench/sweep/results_validation.cpp
SUM = Kind("sum", 0, 1e300)  # sum_squares, sum_ns: statistics, never read into an integer
REPEAT = Kind("repeat index or count", 0, 1e6, whole=True)
CONNECTIONS = Kind("connection count", 0, 1e9, whole=True)
CORES = Kind("core count", 0, 1e6, whole=True)
SEED = Kind("64-bit seed", 0, 2**64 - 1, whole=True)  # muxload's seed: a name, not a count
# Longest suffix first; a key matching none takes its parent's kind.
SUFFIXES = (
    ("_per_s", Kind("rate per second", 0, 1e12)),
    ("_per_request", Kind("cost per request", 0, 1e12)),
    # a difference of two memory readings over the connections: noise can make it negative
    ("_per_connection", Kind("figure per connection", -1e15, 1e15)),
    ("_connections", Kind("connection count", 0, 1e9)),
    ("_index", Kind("fraction", 0, 1 + 1e-9)),  # rounding can put a ratio of at most 1 a hair above
    ("_utilisation", Kind("utilisation", 0, 1e4)),
    ("_bytes", Kind("byte count", 0, 1.15e18)),
    ("_ns", Kind("duration in ns", 0, CENTURY_S * 1e9)),
    ("_us", Kind("duration in us", 0, CENTURY_S * 1e6)),
    ("_ms", Kind("duration in ms", 0, CENTURY_S * 1e3)),
    ("_s", Kind("duration in s", 0, CENTURY_S)),
)
PERCENT = Kind("percentage", 0, 100)


def kind_of_key(key: str):
    if key in ("repeat", "repeats", "repeats_ok"):
        return REPEAT
    if key in ("conns", "active") or key.endswith("_conns"):
        return CONNECTIONS
    if key == "online_cores":
        return CORES
    if key == "seed":
        return SEED
    if key == "percent":
        return PERCENT
    if key.startswith("sum_"):
        return SUM
    for suffix, kind in SUFFIXES:
        if key.endswith(suffix):
            return kind
    return None


def brief(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def key_path(path: str, key: str) -> str:
    plain = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    if plain:
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def shown(path: str) -> str:
    return path or "(top level)"


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_number(v, kind: Kind, path: str):
    if isinstance(v, float) and not math.isfinite(v):
        raise Problem(f"{shown(path)}: {brief(v)} is not a finite number")
    if not kind.lo <= v <= kind.hi:
        raise Problem(f"{shown(path)}: {brief(v)} is out of range for a {kind.what} ({kind.lo:g} to {kind.hi:g})")
    if kind.whole and v != math.floor(v):
        raise Problem(f"{shown(path)}: {brief(v)} is not a whole number, as a {kind.what} must be")


def is_text(s: str) -> bool:
    # Python's json reads a lone surrogate ("\ud800") into a str that cannot be written out as
    # UTF-8; the C++ reader refuses it while parsing.
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def check_numbers(value, path="", kind=COUNT, kind_named=False, depth=0):
    """Every number sane for its kind; a key that names a kind holds numbers (or null); every
    string is text."""
    if depth > MAX_DEPTH:
        raise Problem(f"{shown(path)}: nested deeper than {MAX_DEPTH} levels, which no results file is")
    if isinstance(value, str) and not is_text(value):
        raise Problem(f"{shown(path)}: {brief(value)} holds a lone surrogate: not text")
    if is_number(value):
        check_number(value, kind, path)
    elif isinstance(value, dict):
        for key, child in value.items():
            if not is_text(key):
                raise Problem(f"{shown(path)}: the key {brief(key)} holds a lone surrogate: not text")
            if key in ("missing", "sources") and isinstance(child, dict):
                # server_cost names a figure per key (cpu_sys_s, ...): why it is missing, or
                # where it came from. Text, never a number of the kind the name gives.
                for figure, text in child.items():
                    if not (text is None or (isinstance(text, str) and is_text(text))) or not is_text(figure):
                        raise Problem(f"{shown(key_path(key_path(path, key), figure))}: "
                                      f"expected text or null, got {brief(text)}")
                continue
            named = kind_of_key(key)
            check_numbers(child, key_path(path, key), named or kind, bool(named) or kind_named, depth + 1)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            check_numbers(child, f"{path}[{i}]", kind, kind_named, depth + 1)
    elif kind_named and value is not None:
        raise Problem(f"{shown(path)}: expected a number ({kind.what}), got {brief(value)}")


_TYPES = {str: "a string", dict: "an object", list: "an array", bool: "true or false", "number": "a number"}


def field(obj: dict, path: str, key: str, kind, required=False):
    if key not in obj:
        if required:
            raise Problem(f"{shown(path)}: missing '{key}'")
        return None
    v = obj[key]
    ok = is_number(v) if kind == "number" else isinstance(v, kind)
    if not ok:
        want = " or ".join(_TYPES[k] for k in kind) if isinstance(kind, tuple) else _TYPES[kind]
        raise Problem(f"{key_path(path, key)}: expected {want}, got {brief(v)}")
    return v


def check_point(p, path: str):
    """The fields of a point that muxbench check and merge read."""
    if not isinstance(p, dict):
        raise Problem(f"{path}: expected an object, got {brief(p)}")
    for key in ("scenario", "model", "x_name"):
        field(p, path, key, str, required=True)
    for key in ("x_value", "conns", "active", "repeat"):
        field(p, path, key, "number", required=True)
    status = field(p, path, "status", str, required=True)
    if status not in ("ok", "not_clean", "unsteady", "refused", "failed"):
        raise Problem(f"{path}.status: {brief(status)} is not ok, not_clean, unsteady, refused or failed")
    reason = field(p, path, "reason", dict)
    for key in ("code", "detail"):
        if reason is not None:
            field(reason, path + ".reason", key, str)
    field(p, path, "loadgen_bound", bool)
    field(p, path, "loadgen_saturated", bool)
    limit = field(p, path, "limit", str)
    if limit is not None and limit not in ("loadgen", "server", "both", "neither"):
        raise Problem(f"{path}.limit: {brief(limit)} is not loadgen, server, both or neither")
    share = p.get("server_busy_share")
    if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float))):
        raise Problem(f"{path}.server_busy_share: expected a number or null, got {brief(share)}")
    field(p, path, "server_cost", dict)
    loadgen = field(p, path, "loadgen", dict)
    if loadgen is not None:
        field(loadgen, path + ".loadgen", "errors", dict)
        summary = field(loadgen, path + ".loadgen", "summary", dict, required=True)
        for key in ("latency_us", "fairness"):
            field(summary, path + ".loadgen.summary", key, dict)
        field(summary, path + ".loadgen.summary", "requests", "number")


def check_document(data: dict):
    """Types of what the tools read besides the summary (Run reads that itself), then numbers."""
    env = field(data, "", "environment", dict)
    if env is not None:
        for key in ("hostname", "cpu_model", "compiler", "compiler_flags", "build_type", "git_commit", "date_utc"):
            field(env, "environment", key, str)
        kernel = field(env, "environment", "kernel", (dict, str))
        if isinstance(kernel, dict):
            for key in ("sysname", "release", "version", "machine"):
                field(kernel, "environment.kernel", key, str)
        field(env, "environment", "online_cores", "number")
    plan = field(data, "", "plan", dict)
    if plan is not None:
        field(plan, "plan", "name", str)
        field(plan, "plan", "proto", str)
        field(plan, "plan", "repeats", "number")
    for key in ("started_at", "finished_at"):
        field(data, "", key, str)
    for i, p in enumerate(field(data, "", "points", list) or []):
        check_point(p, f"points[{i}]")
    check_numbers(data)


def path_at(text: str, pos: int) -> str:
    """The JSON path of the value being read at character pos: where a parse stopped."""
    frames = []  # [is_array, index, key]
    i, expect_key = 0, False
    while i < min(pos, len(text)):
        c = text[i]
        if c == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if frames and not frames[-1][0] and expect_key:
                try:
                    frames[-1][2] = json.loads(text[i:end + 1])
                except ValueError:
                    frames[-1][2] = text[i + 1:end]
                expect_key = False
            i = end + 1
            continue
        if c in "{[":
            frames.append([c == "[", 0, None])
            expect_key = c == "{"
        elif c in "}]" and frames:
            frames.pop()
        elif c == "," and frames:
            if frames[-1][0]:
                frames[-1][1] += 1
            else:
                expect_key = True
        i += 1
    path = ""
    for is_array, index, key in frames:
        if is_array:
            path += f"[{index}]"
        elif key is not None:
            path = key_path(path, key)
    return path


def parse_int(digits: str):
    # Python refuses int literals past 4300 digits with a ValueError; such a number is no
    # figure, so let it become inf and be refused with its field like any other.
    return int(digits) if len(digits) < 400 else float(digits)


def loads(text: str):
    """json.loads with errors that name the field; raises Problem."""
    try:
        return json.loads(text, parse_int=parse_int)
    except json.JSONDecodeError as e:
        where = shown(path_at(text, e.pos))
        raise Problem(f"{where}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise Problem(f"{shown('')}: nested deeper than {MAX_DEPTH} levels, which no results file is") from None
