#!/usr/bin/env python3
"""How often `muxbench check` raises a false alarm, and what it catches.

Given a folder of check-plan runs named honest* (the same code) and workNus-* (the same plan
with `--work-us N`, a server that burns N us more per request), taken in turns by
take_runs.sh, it runs the real `muxbench check` on every ordered pair of honest runs (false
alarms) and on every honest run against every slowed one (catches), and prints:
- false alarms: how many honest checks exit non-zero, and what they flagged;
- catches: for each N, how many checks exit 1, and what caught it: pooled judgements (a
  model's metric across its points) and single points, server CPU per request by how much
  the work really slowed that point (its median over all slowed runs of that N against the
  median over all honest runs);
- the smallest N caught in at least 9 of 10 checks, and whether the issue's target holds;
- with --sample FILE, the Markdown of one caught check with a pooled regression.

    results/check/study.py build/bin/muxbench /tmp/chk [--sample results/check/caught-pooled.md]
"""
import argparse
import collections
import itertools
import json
import os
import shutil
import subprocess
import tempfile


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def check(muxbench, runs, base, current, out):
    report = os.path.join(out, f"{base}--{current}")
    code = subprocess.run([muxbench, "check", "--baseline", os.path.join(runs, base), "--current",
                           os.path.join(runs, current), "--no-charts", "--report-dir", report],
                          capture_output=True, check=False).returncode
    with open(os.path.join(report, "check.json"), encoding="utf-8") as f:
        return code, json.load(f), os.path.join(report, "check.md")


def cpu_values(runs, run):
    with open(os.path.join(runs, run, "results.json"), encoding="utf-8") as f:
        points = json.load(f)["points"]
    out = collections.defaultdict(list)
    for p in points:
        v = p.get("server_cost", {}).get("cpu_us_per_request")
        if p.get("status") == "ok" and v is not None:
            out[(p["scenario"], p["x_value"], p["model"])].append(v)
    return out


def machine_minutes(runs, names):
    """Minutes the runs' rounds took, from each part's point timings."""
    seconds = 0.0
    for name in names:
        with open(os.path.join(runs, name, "results.json"), encoding="utf-8") as f:
            points = json.load(f)["points"]
        seconds += sum(p.get("timing_s", {}).get("total", 0) for p in points)
    return seconds / 60


def flags(j):
    """What a check flagged; nothing for a check that could not compare (exit 2), whose
    verdicts its exit code overrides."""
    out = []
    if j.get("exit_code") == 2:
        return out
    for c in j.get("pooled", []):
        if c["verdict"] == "regression":
            out.append(f'{c["model"]} {c["metric"]} across {len(c["points"])} points')
    for c in j["comparisons"]:
        if c["verdict"] in ("regression", "status"):
            out.append(f'{c["model"]} {c["metric"]} at {c["scenario"]} x={c["x_value"]:g}')
    return out


def false_alarms(muxbench, runs, honest, out):
    alarms, flagged, families, refused = [], collections.Counter(), set(), 0
    for a, b in itertools.permutations(honest, 2):
        code, j, _ = check(muxbench, runs, a, b, out)
        if code == 2:
            refused += 1
            print(f"  {a} -> {b}: cannot compare: {j.get('cannot_compare')}")
        elif code != 0:
            alarms.append((a, b, code))
        flagged.update(flags(j))
        fam = j.get("families", {})
        families.add((fam.get("points", {}).get("size"), fam.get("pooled", {}).get("size")))
    pairs = len(honest) * (len(honest) - 1) - refused
    print(f"False alarms: {len(alarms)} of {pairs} ordered pairs of {len(honest)} honest runs "
          f"exit 1 ({100 * len(alarms) / max(pairs, 1):.1f}%); family sizes "
          f"(single points, pooled): {sorted(families)}")
    for a, b, code in alarms:
        print(f"  {a} -> {b}: exit {code}")
    for name, n in flagged.most_common():
        print(f"  {n} x {name}")
    return len(alarms), pairs


def catches(muxbench, runs, honest, slowed, out, sample):
    honest_cpu = collections.defaultdict(list)
    for h in honest:
        for key, v in cpu_values(runs, h).items():
            honest_cpu[key].extend(v)
    rates = {}
    bins = [(-9, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.5), (0.5, 99)]
    print("\nCatches (checks of an honest baseline against a slowed run):")
    for work in sorted(slowed):
        slowed_cpu = collections.defaultdict(list)
        for s in slowed[work]:
            for key, v in cpu_values(runs, s).items():
                slowed_cpu[key].extend(v)
        true = {k: median(v) / median(honest_cpu[k]) - 1
                for k, v in slowed_cpu.items() if honest_cpu.get(k)}
        caught = collections.defaultdict(lambda: [0, 0])
        exits, pooled_cpu, flagged = collections.Counter(), collections.Counter(), []
        for s in slowed[work]:
            for h in honest:
                code, j, md = check(muxbench, runs, h, s, out)
                exits[code] += 1
                flagged.append(len(flags(j)))
                if code == 2:  # refused: it caught nothing, whatever its verdicts say
                    continue
                for c in j.get("pooled", []):
                    if c["metric"] == "cpu_us_per_request" and c["verdict"] == "regression":
                        pooled_cpu[c["model"]] += 1
                        if sample and not os.path.exists(sample):
                            shutil.copyfile(md, sample)
                            print(f"  sample: {h} -> {s} written to {sample}")
                hit = {(c["scenario"], c["x_value"], c["model"]) for c in j["comparisons"]
                       if c["metric"] == "cpu_us_per_request" and c["verdict"] == "regression"}
                for key, t in true.items():
                    for lo, hi in bins:
                        if lo <= t < hi:
                            caught[(lo, hi)][1] += 1
                            caught[(lo, hi)][0] += key in hit
        checks = sum(exits.values())
        rates[work] = exits[1] / checks
        cells = ", ".join(
            f"{'<10' if lo < 0 else f'{lo*100:.0f}-{hi*100:.0f}' if hi < 99 else f'>{lo*100:.0f}'}%"
            f": {c}/{n}" for (lo, hi), (c, n) in sorted(caught.items()))
        print(f"  --work-us {work}: {exits[1]} of {checks} checks exit 1 "
              f"({len(slowed[work])} runs x {len(honest)} baselines; exit codes "
              f"{dict(sorted(exits.items()))}); metrics flagged per check "
              f"{min(flagged)}-{max(flagged)}")
        print(f"    pooled server CPU per request caught, by model (of {checks}): "
              f"{dict(sorted(pooled_cpu.items()))}")
        print(f"    single points' server CPU per request caught, by true slowdown: {cells}")
        spans = collections.defaultdict(list)
        for (scenario, x, model), t in true.items():
            spans[f"{scenario} x={x:g}"].append(t)
        print("    true slowdown of CPU per request by point (over models): " + ", ".join(
            f"{k} {100 * min(v):+.0f}..{100 * max(v):+.0f}%" for k, v in sorted(spans.items())))
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("muxbench")
    parser.add_argument("runs")
    parser.add_argument("--sample", help="write one caught pooled regression's check.md here")
    args = parser.parse_args()
    names = sorted(os.listdir(args.runs))
    honest = [n for n in names if n.startswith("honest")]
    slowed = collections.defaultdict(list)
    for n in names:
        if n.startswith("work"):
            slowed[int(n[4:].split("us")[0])].append(n)
    out = tempfile.mkdtemp(prefix="check-study-")
    if args.sample and os.path.exists(args.sample):
        os.remove(args.sample)

    alarms, pairs = false_alarms(args.muxbench, args.runs, honest, out)
    rates = catches(args.muxbench, args.runs, honest, slowed, out, args.sample)
    reliable = [w for w, r in sorted(rates.items()) if r >= 0.9]
    print(f"\nSmallest --work-us caught in at least 9 of 10 checks: "
          f"{reliable[0] if reliable else 'none of ' + str(sorted(rates))}")
    target = alarms <= 0.05 * pairs and rates.get(2, 0) >= 0.9
    print(f"Target (--work-us 2 caught in >= 90% of checks, false alarms <= 5%): "
          f"{'met' if target else 'not met'}")
    minutes = machine_minutes(args.runs, honest + [s for v in slowed.values() for s in v])
    print(f"The runs took {minutes:.1f} machine minutes of points "
          f"({minutes / max(len(honest) + sum(len(v) for v in slowed.values()), 1):.1f} per run)")
    print(f"reports: {out}")


if __name__ == "__main__":
    main()
