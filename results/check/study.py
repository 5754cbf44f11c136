#!/usr/bin/env python3
"""How often `muxbench check` raises a false alarm, and what it catches.

Given a folder of check-plan runs named honest* (the same code) and workNus-* (the same plan
with `--work-us N`, a server that burns N us more per request), taken in turns by
take_runs.sh, it
runs the real `muxbench check` on every ordered pair of honest runs (false alarms) and on
every honest run against every slowed one (catches), and prints both. The "true" slowdown of
a point is its median CPU per request over all slowed runs of that N against the median over
all honest runs.

    results/check/study.py build/bin/muxbench /tmp/chk
"""
import collections
import itertools
import json
import os
import subprocess
import sys
import tempfile


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def check(muxbench, runs, base, current, out):
    report = os.path.join(out, f"{base}--{current}")
    code = subprocess.run([muxbench, "check", "--baseline", os.path.join(runs, base), "--current",
                           os.path.join(runs, current), "--no-charts", "--report-dir", report],
                          capture_output=True).returncode
    with open(os.path.join(report, "check.json"), encoding="utf-8") as f:
        return code, json.load(f)


def cpu_values(runs, run):
    with open(os.path.join(runs, run, "results.json"), encoding="utf-8") as f:
        points = json.load(f)["points"]
    out = collections.defaultdict(list)
    for p in points:
        v = p.get("server_cost", {}).get("cpu_us_per_request")
        if p.get("status") == "ok" and v is not None:
            out[(p["scenario"], p["x_value"], p["model"])].append(v)
    return out


def main():
    muxbench, runs = sys.argv[1], sys.argv[2]
    names = sorted(os.listdir(runs))
    honest = [n for n in names if n.startswith("honest")]
    slowed = collections.defaultdict(list)
    for n in names:
        if n.startswith("work"):
            slowed[int(n[4:].split("us")[0])].append(n)
    out = tempfile.mkdtemp(prefix="check-study-")

    alarms, flags = [], collections.Counter()
    for a, b in itertools.permutations(honest, 2):
        code, j = check(muxbench, runs, a, b, out)
        bad = [c for c in j["comparisons"] if c["verdict"] in ("regression", "status")]
        if code != 0:
            alarms.append((a, b, code))
        for c in bad:
            flags[f'{c["metric"]} ({c["model"]} {c["scenario"]} x={c["x_value"]:g})'] += 1
    pairs = len(honest) * (len(honest) - 1)
    print(f"False alarms: {len(alarms)} of {pairs} ordered pairs of {len(honest)} honest runs "
          f"exit non-zero")
    for name, n in flags.most_common():
        print(f"  {n} x {name}")

    honest_cpu = collections.defaultdict(list)
    for h in honest:
        for key, v in cpu_values(runs, h).items():
            honest_cpu[key].extend(v)
    print("\nCatches of server CPU per request, by the point's true slowdown:")
    bins = [(-9, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.5), (0.5, 99)]
    for work in sorted(slowed):
        slowed_cpu = collections.defaultdict(list)
        for s in slowed[work]:
            for key, v in cpu_values(runs, s).items():
                slowed_cpu[key].extend(v)
        true = {k: median(v) / median(honest_cpu[k]) - 1 for k, v in slowed_cpu.items() if honest_cpu.get(k)}
        caught = collections.defaultdict(lambda: [0, 0])
        exits = collections.Counter()
        for s in slowed[work]:
            for h in honest:
                code, j = check(muxbench, runs, h, s, out)
                exits[code] += 1
                hit = {(c["scenario"], c["x_value"], c["model"]) for c in j["comparisons"]
                       if c["metric"] == "cpu_us_per_request" and c["verdict"] == "regression"}
                for key, t in true.items():
                    for lo, hi in bins:
                        if lo <= t < hi:
                            caught[(lo, hi)][1] += 1
                            caught[(lo, hi)][0] += key in hit
        cells = ", ".join(f"{'<10' if lo < 0 else f'{lo*100:.0f}–{hi*100:.0f}' if hi < 99 else f'>{lo*100:.0f}'}%: "
                          f"{c}/{n}" for (lo, hi), (c, n) in sorted(caught.items()))
        print(f"  --work-us {work} ({len(slowed[work])} runs x {len(honest)} baselines, exit codes "
              f"{dict(sorted(exits.items()))}): {cells}")
        for key, t in sorted(true.items(), key=lambda kv: kv[1]):
            pass
    print(f"\nreports: {out}")


if __name__ == "__main__":
    main()
