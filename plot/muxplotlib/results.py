"""Reading a results folder: results.json in schema muxbench-results/2 or /1 (results/README.md).

Everything a chart needs comes from the summary entries; points are only counted. The
reader refuses a wrong schema, a malformed entry or a number that cannot be a figure
(validation.py) with one line naming the file and the key, and tolerates every metric being
absent, since a refused point has none and an older run may lack the newer ones. Schema 1's
syscalls_per_request counted only the read and write families: it is read as
io_calls_per_request, as muxbench reads it.
"""
from __future__ import annotations

import gzip
import json
import math
import os
import re
import zlib
from dataclasses import dataclass, field

from . import validation

SCHEMAS = validation.SCHEMAS
SCHEMA_1 = "muxbench-results/1"
# What a schema 1 metric is called in schema 2.
SCHEMA_1_RENAMED = {"syscalls_per_request": "io_calls_per_request"}
SCENARIOS = ("active", "idle", "latency", "churn", "slow")
# The rate scenario records one scenario per idle count: "rate-idle-1000".
RATE_SCENARIO = re.compile(r"rate-idle-(\d+)")


def rate_idle_conns(scenario: str):
    """The idle count of a rate scenario's name, or None for any other scenario."""
    m = RATE_SCENARIO.fullmatch(scenario)
    return int(m.group(1)) if m else None


def scenario_order(scenario: str) -> tuple:
    """Sort key: the fixed scenarios in their order, then rate by idle count, then the rest."""
    if scenario in SCENARIOS:
        return (SCENARIOS.index(scenario), 0, scenario)
    idle = rate_idle_conns(scenario)
    return (len(SCENARIOS), idle, scenario) if idle is not None else (len(SCENARIOS) + 1, 0, scenario)
# not_clean: an open-loop point muxload judged not clean; it has figures, but not ok ones.
# unsteady: a point whose load never settled before its window; never summarised or drawn as ok.
STATUSES = ("ok", "not_clean", "unsteady", "refused", "failed")
# Which side set a point's limit (bench/sweep/limit.hpp); "" in files that predate the judgement.
LIMITS = ("", "loadgen", "server", "both", "neither")


@dataclass(frozen=True)
class Metric:
    key: str
    label: str  # as it reads in a sentence: "throughput"
    unit: str  # display unit, after scale
    higher_is_better: bool
    scale: float = 1.0  # display value = stored value * scale


METRICS = {
    m.key: m
    for m in (
        Metric("throughput_per_s", "throughput", "requests/s", True),
        Metric("latency_p50_us", "p50 latency", "µs", False),
        Metric("latency_p90_us", "p90 latency", "µs", False),
        Metric("latency_p99_us", "p99 latency", "µs", False),
        Metric("latency_p999_us", "p99.9 latency", "µs", False),
        Metric("cpu_us_per_request", "server CPU per request", "µs/request", False),
        Metric("cpu_user_us_per_request", "server user CPU per request", "µs/request", False),
        Metric("cpu_sys_us_per_request", "server kernel CPU per request", "µs/request", False),
        Metric("syscalls_per_request", "syscalls per request", "syscalls/request", False),
        Metric("wait_calls_per_request", "wait calls per request", "calls/request", False),
        Metric("io_calls_per_request", "I/O calls per request", "calls/request", False),
        Metric("context_switches_per_request", "context switches per request", "switches/request", False),
        Metric("page_faults_per_request", "page faults per request", "faults/request", False),
        Metric("memory_bytes_per_connection", "memory per connection", "KiB/connection", False, 1 / 1024),
        Metric("jain_index", "Jain's index", "", True),
        Metric("unserved_connections", "unserved connections", "connections", False),
        Metric("errors", "errors", "count", False),
        Metric("ramp_s", "connection ramp", "s", False),
    )
}


class ResultsError(Exception):
    """A results folder that cannot be read; str() is the one line to show the user."""


@dataclass
class Stat:
    median: float
    min: float
    max: float
    values: list

    @property
    def spread(self) -> bool:
        return len(self.values) > 1 and self.max > self.min


@dataclass
class Entry:
    scenario: str
    model: str
    x_name: str
    x_value: float
    repeats: int
    repeats_ok: int
    status: str
    reason_code: str
    reason_detail: str
    loadgen_bound: bool
    metrics: dict = field(default_factory=dict)  # key -> Stat; only metrics that have a median
    # Which side set the limit: "loadgen", "server", "both" or "neither"; "" when the file
    # predates the judgement and says only whether muxload was the limit.
    limit: str = ""

    def value(self, metric: str):
        stat = self.metrics.get(metric)
        return None if stat is None else stat.median


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class _Checker:
    """Type checks that fail with the file and the JSON path of the offending key."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, problem: str):
        raise ResultsError(f"{self.path}: {where}: {problem}")

    def get(self, obj: dict, key: str, kind, where: str, required=True, default=None):
        if key not in obj or obj[key] is None:
            if required:
                self.fail(where, f"missing '{key}'")
            return default
        v = obj[key]
        if kind == "number":
            ok = _is_number(v)
        elif kind is bool:
            ok = isinstance(v, bool)
        else:
            ok = isinstance(v, kind)
        if not ok:
            want = {"number": "a number", str: "a string", dict: "an object", list: "an array", bool: "true or false"}
            self.fail(f"{where}.{key}", f"expected {want.get(kind, kind)}, got {json.dumps(v)[:40]}")
        return v


def _read_stat(c: _Checker, raw, where: str):
    if raw is None:
        return None
    if not isinstance(raw, dict):
        c.fail(where, f"expected an object {{median, min, max, values}}, got {json.dumps(raw)[:40]}")
    median = c.get(raw, "median", "number", where, required=False)
    if median is None:
        return None
    lo = c.get(raw, "min", "number", where, required=False, default=median)
    hi = c.get(raw, "max", "number", where, required=False, default=median)
    values = c.get(raw, "values", list, where, required=False, default=[median])
    for i, v in enumerate(values):
        if not _is_number(v):
            c.fail(f"{where}.values[{i}]", f"expected a number, got {json.dumps(v)[:40]}")
    return Stat(float(median), float(lo), float(hi), [float(v) for v in values])


def _read_entry(c: _Checker, raw, i: int, renamed: dict) -> Entry:
    where = f"summary[{i}]"
    if not isinstance(raw, dict):
        c.fail(where, "expected an object")
    reason = c.get(raw, "reason", dict, where, required=False, default={})
    metrics_raw = c.get(raw, "metrics", dict, where, required=False, default={})
    metrics = {}
    for key, stat_raw in metrics_raw.items():
        stat = _read_stat(c, stat_raw, f"{where}.metrics.{key}")
        if stat is not None:
            metrics[renamed.get(key, key)] = stat
    status = c.get(raw, "status", str, where)
    if status not in STATUSES:
        c.fail(f"{where}.status", f"'{status}' is not {', '.join(STATUSES[:-1])} or {STATUSES[-1]}")
    loadgen_bound = bool(c.get(raw, "loadgen_bound", bool, where, required=False, default=False))
    limit = c.get(raw, "limit", str, where, required=False, default="loadgen" if loadgen_bound else "")
    if limit not in LIMITS:
        c.fail(f"{where}.limit", f"'{limit}' is not {', '.join(LIMITS[1:-1])} or {LIMITS[-1]}")
    return Entry(
        scenario=c.get(raw, "scenario", str, where),
        model=c.get(raw, "model", str, where),
        x_name=c.get(raw, "x_name", str, where),
        x_value=float(c.get(raw, "x_value", "number", where)),
        repeats=int(c.get(raw, "repeats", "number", where, required=False, default=1)),
        repeats_ok=int(c.get(raw, "repeats_ok", "number", where, required=False, default=0)),
        status=status,
        reason_code=str(reason.get("code", "")) if status != "ok" else "",
        reason_detail=str(reason.get("detail", "")) if status != "ok" else "",
        loadgen_bound=loadgen_bound,
        limit=limit,
        metrics=metrics,
    )


class Run:
    """One results folder, checked and indexed by scenario, model and x value."""

    def __init__(self, folder: str):
        self.folder = folder
        self.path = results_file(folder)
        data = load_json(self.path)
        c = _Checker(self.path)
        schema = data.get("schema")
        if schema not in SCHEMAS:
            shown = "missing" if schema is None else f"'{schema}'" if isinstance(schema, str) else validation.brief(schema)
            readable = " or ".join(f"'{s}'" for s in SCHEMAS)
            raise ResultsError(f"{self.path}: schema is {shown}; this muxplot reads only {readable}")
        self.schema = schema
        self.env = c.get(data, "environment", dict, "top level", required=False, default={})
        self.plan = c.get(data, "plan", dict, "top level", required=False, default={})
        self.started_at = str(data.get("started_at", ""))
        self.finished_at = str(data.get("finished_at", ""))
        self.points_count = len(c.get(data, "points", list, "top level", required=False, default=[]))
        summary = c.get(data, "summary", list, "top level")
        renamed = SCHEMA_1_RENAMED if schema == SCHEMA_1 else {}
        self.entries = [_read_entry(c, raw, i, renamed) for i, raw in enumerate(summary)]
        try:
            validation.check_document(data)
        except validation.Problem as e:
            raise ResultsError(f"{self.path}: {e}") from None
        self.name = os.path.basename(os.path.normpath(folder))

    def scenario(self, scenario: str) -> list:
        return [e for e in self.entries if e.scenario == scenario]

    def series(self, scenario: str, model: str) -> list:
        return sorted((e for e in self.entries if e.scenario == scenario and e.model == model),
                      key=lambda e: e.x_value)

    def models(self, scenario: str | None = None) -> list:
        from .style import order_models  # style owns the canonical model order
        return order_models({e.model for e in self.entries if scenario in (None, e.scenario)})

    def has_metric(self, scenario: str, metric: str) -> bool:
        return any(metric in e.metrics for e in self.scenario(scenario))

    def x_values(self, scenario: str) -> list:
        return sorted({e.x_value for e in self.scenario(scenario)})

    def entry(self, scenario: str, model: str, x: float):
        for e in self.entries:
            if e.scenario == scenario and e.model == model and e.x_value == x:
                return e
        return None


# A results file decompresses to at most this (the full plan's run is about 12 MB): a file
# that claims more is refused before it fills the memory.
MAX_RESULTS_BYTES = 1 << 30


def results_file(folder: str) -> str:
    """The folder's results.json, or its results.json.gz where only that is there (results/reference is stored compressed)."""
    plain = os.path.join(folder, "results.json")
    packed = plain + ".gz"
    return packed if not os.path.exists(plain) and os.path.exists(packed) else plain


def load_json(path: str) -> dict:
    if not os.path.exists(path):
        folder = os.path.dirname(path) or "."
        raise ResultsError(f"{path}: no such file ({folder} is not a muxbench results folder)")
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read(MAX_RESULTS_BYTES + 1)
        if len(raw) > MAX_RESULTS_BYTES:
            raise ResultsError(f"{path}: more than {MAX_RESULTS_BYTES >> 20} MiB of JSON; no results file is that big")
        data = validation.loads(raw.decode("utf-8"))
    except validation.Problem as e:
        raise ResultsError(f"{path}: {e}") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: cannot read: {e}") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    return data
