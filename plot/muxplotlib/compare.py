"""Compare mode's numbers: per scenario, model and x value, new median / base median for
every metric, written as compare.json (for the regression check) and compare.md."""
from __future__ import annotations

import json

from .results import METRICS, scenario_order
from .style import environment_facts, fmt_num, fmt_ratio, fmt_x, order_models

COMPARE_SCHEMA = "muxbench-compare/1"
# The columns of the Markdown and HTML tables; compare.json carries every metric.
TABLE_METRICS = ["throughput_per_s", "latency_p50_us", "latency_p99_us", "cpu_us_per_request",
                 "syscalls_per_request", "memory_bytes_per_connection", "jain_index"]
SHORT = {"throughput_per_s": "throughput", "latency_p50_us": "p50", "latency_p99_us": "p99",
         "cpu_us_per_request": "CPU/request", "syscalls_per_request": "syscalls/request",
         "memory_bytes_per_connection": "memory/conn", "jain_index": "Jain"}


def _metric_cell(metric_key: str, b, n) -> dict:
    metric = METRICS[metric_key]
    bv = b.value(metric_key) if b else None
    nv = n.value(metric_key) if n else None
    cell = {"base": bv, "new": nv, "ratio": None, "better_by": None, "verdict": None,
            "higher_is_better": metric.higher_is_better}
    if bv is None or nv is None:
        return cell
    if bv != 0:
        cell["ratio"] = nv / bv
    if bv == nv:
        cell["better_by"], cell["verdict"] = 1.0, "unchanged"
    elif bv > 0 and nv > 0:
        # better_by > 1: new is better whichever way the metric points
        cell["better_by"] = nv / bv if metric.higher_is_better else bv / nv
        cell["verdict"] = "better" if cell["better_by"] > 1 else "worse"
    else:
        cell["verdict"] = "better" if (nv > bv) == metric.higher_is_better else "worse"
    return cell


def _side(e) -> dict:
    if e is None:
        return {"status": "absent"}
    out = {"status": e.status, "loadgen_bound": e.loadgen_bound, "limit": e.limit, "repeats": e.repeats}
    if e.status != "ok":
        out["reason"] = {"code": e.reason_code, "detail": e.reason_detail}
    return out


def compare_rows(base, new) -> list:
    keys = {(e.scenario, e.model, e.x_value): e.x_name for run in (base, new) for e in run.entries}
    model_rank = {m: i for i, m in enumerate(order_models({k[1] for k in keys}))}
    rows = []
    for (scenario, model, x) in sorted(keys, key=lambda k: (scenario_order(k[0]), model_rank[k[1]], k[2])):
        b, n = base.entry(scenario, model, x), new.entry(scenario, model, x)
        rows.append({"scenario": scenario, "model": model, "x_name": keys[(scenario, model, x)], "x_value": x,
                     "base": _side(b), "new": _side(n),
                     "metrics": {k: _metric_cell(k, b, n) for k in METRICS}})
    return rows


def _run_meta(run) -> dict:
    facts = environment_facts(run.env, run.plan, run.started_at)
    return {"folder": run.folder, "plan": run.plan.get("name"), "started_at": run.started_at,
            "git_commit": facts["git commit"], "kernel": facts["kernel"], "cpu": facts["CPU"],
            "pinning": facts["pinning"]}


def compare_document(base, new) -> dict:
    return {"schema": COMPARE_SCHEMA,
            "ratio": "new median / base median; better_by > 1 means new is better for that metric",
            "base": _run_meta(base), "new": _run_meta(new), "rows": compare_rows(base, new)}


def write_json(doc: dict, path: str):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))  # compact; `jq .` indents it for a reader
        f.write("\n")


def status_change(row) -> str:
    b, n = row["base"], row["new"]
    if b["status"] == n["status"]:
        return b["status"] if b["status"] == "ok" else f"{b['status']} ({n.get('reason', {}).get('code', '')})"
    def one(side):
        code = side.get("reason", {}).get("code")
        return f"{side['status']} ({code})" if code else side["status"]
    return f"{one(b)} → {one(n)}"


def ratio_text(cell) -> str:
    if cell["ratio"] is None:
        if cell["base"] is None and cell["new"] is None:
            return "–"
        return f"{fmt_num(cell['base'])} → {fmt_num(cell['new'])}"
    mark = {"better": " ↑", "worse": " ↓"}.get(cell["verdict"], "")
    return fmt_ratio(cell["ratio"]) + mark


def markdown(doc: dict) -> str:
    lines = [f"# muxbench compare: {doc['new']['folder']} against {doc['base']['folder']}", "",
             f"- base: `{doc['base']['folder']}`, plan {doc['base']['plan']}, started {doc['base']['started_at']}, "
             f"commit {doc['base']['git_commit']}, {doc['base']['kernel']}, {doc['base']['pinning']}",
             f"- new: `{doc['new']['folder']}`, plan {doc['new']['plan']}, started {doc['new']['started_at']}, "
             f"commit {doc['new']['git_commit']}, {doc['new']['kernel']}, {doc['new']['pinning']}",
             "", "Each cell is new median / base median. ↑ the new run is better on that metric, ↓ worse "
             "(lower is better for latency, CPU, syscalls and memory). Where the base is missing or 0 the "
             "cell shows both values.", ""]
    for scenario in dict.fromkeys(r["scenario"] for r in doc["rows"]):
        rows = [r for r in doc["rows"] if r["scenario"] == scenario]
        lines += [f"## {scenario}", "",
                  "| model | " + rows[0]["x_name"] + " | status | " + " | ".join(SHORT[m] for m in TABLE_METRICS) + " |",
                  "|---|---:|---|" + "---:|" * len(TABLE_METRICS)]
        for r in rows:
            cells = [ratio_text(r["metrics"][m]) for m in TABLE_METRICS]
            lines.append(f"| {r['model']} | {fmt_x(r['x_value'])} | {status_change(r)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
