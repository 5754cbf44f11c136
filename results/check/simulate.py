#!/usr/bin/python3
"""Monte-Carlo study of `muxbench check`'s rule: false alarms and power on simulated runs.

Real runs of the check plan cost 20 s a round, so a study of a few dozen checks is all a
machine can afford, and it cannot say whether 5% holds to within a percent. This draws
honest and slowed pairs of runs from a noise model shaped like the real ones and judges each
pair with the real `muxbench check` binary, so it measures the rule exactly as shipped.

The runs: the check plan's points (active at 1, 100 and 1,000 connections, 1,000 idle) for
each model, copied from a template run (default results/reference: which models are refused
where, which figures are missing, each point's typical values), 8 repeats a side taken in
turns (round k holds the baseline's and the current run's repeat k).

The noise, on the log scale, of every time figure of a model at a point in one repeat:
- round drift shared by both runs of a round: a slow AR(1) walk over rounds (rho 0.7), as a
  shared machine's busy minutes are;
- pass noise shared by every point of one run's repeat (one pass over the plan);
- point noise shared by the point's time figures (a slow window is slow in all of them:
  CPU and latency up, throughput down);
- the figure's own noise;
- now and then (5% of windows) a wild repeat, several sigmas slow;
with shares 0.35, 0.15, 0.35 and 0.15 of the variance. p50 and p99 are quantised as muxload's
histogram does (about 0.8% buckets, so repeats tie), syscalls per request tie at the model's
exact count in 40% of repeats, and memory per connection is 0 (below a page) in most repeats.
--sequential takes the runs one after the other instead (the drift no longer lands on both).

    results/check/simulate.py build/bin/muxbench [--sims 1000] [--sigma 0.1 0.25]
        [--shifts 1.05 1.1 1.2] [--shift-sims 200] [--sequential-sims 0] [--jobs 2]

For each noise level: the share of honest checks that exit 1 (with a 95% interval) and which
kinds of test raised them; then, for each slowdown (every time figure of every model at every
point worse by that factor), the share of checks that exit 1, and how many of those a pooled
judgement or a single point caught.
"""
import argparse
import collections
import concurrent.futures
import copy
import gzip
import json
import math
import os
import random
import shutil
import subprocess
import tempfile

CHECK_POINTS = [("active", 1.0), ("active", 100.0), ("active", 1000.0), ("idle", 1000.0)]
REPEATS = 8
SHARES = {"round": 0.35, "pass": 0.15, "point": 0.35, "own": 0.15}
RHO = 0.7
WILD_CHANCE, WILD_SIGMAS = 0.05, 4


def slim(p):
    """What the check reads of a point, and no more (a real point carries its histogram)."""
    keep = {k: p[k] for k in ("scenario", "model", "x_name", "x_value", "conns", "active",
                              "repeat", "status", "reason") if k in p}
    if "loadgen" in p:
        s = p["loadgen"]["summary"]
        keep["loadgen"] = {"summary": {"throughput_per_s": s["throughput_per_s"],
                                       "latency_us": dict(s["latency_us"])},
                           "errors": {}}
    if p.get("server_cost"):
        keep["server_cost"] = {k: p["server_cost"].get(k) for k in (
            "cpu_us_per_request", "syscalls_per_request", "memory_bytes_per_connection")}
    return keep


TEMPLATES = {}


def load_template(folder):
    if folder not in TEMPLATES:
        path = os.path.join(folder, "results.json")
        if not os.path.exists(path):
            path += ".gz"  # results/reference is stored gzip-compressed
        with (gzip.open if path.endswith(".gz") else open)(path, "rt", encoding="utf-8") as f:
            run = json.load(f)
        points = [slim(p) for p in run["points"]
                  if p["repeat"] == 0 and (p["scenario"], p["x_value"]) in CHECK_POINTS]
        run = {k: run[k] for k in ("environment", "plan")}
        # Written as today's sweep writes (a schema 1 template's syscalls_per_request stands for
        # the whole count, as its typical values do).
        run["schema"] = "muxbench-results/2"
        run["plan"]["repeats"] = REPEATS
        TEMPLATES[folder] = (run, points)
    return TEMPLATES[folder]


def quantise_latency(us):
    width = 2 ** (math.floor(math.log2(max(us, 1))) - 7)  # 128 buckets an octave
    return math.ceil(us / width) * width - 0.001


def draw_runs(template, points, noise, shift, rng):
    """Two runs (base, current) of the template's points, 8 repeats each."""
    sigma, shares, sequential = noise["sigma"], noise["shares"], noise["sequential"]
    sd = {k: sigma * math.sqrt(v) for k, v in shares.items()}
    rounds = REPEATS * (2 if sequential else 1)
    drift, d = [], 0.0
    for _ in range(rounds):
        d = RHO * d + math.sqrt(1 - RHO * RHO) * rng.gauss(0, sd["round"])
        drift.append(d)
    runs = []
    for side in (0, 1):
        out = []
        for r in range(REPEATS):
            shared = drift[r + side * REPEATS if sequential else r] + rng.gauss(0, sd["pass"])
            for t in points:
                p = copy.deepcopy(t)
                p["repeat"] = r
                if p["status"] == "ok":
                    z = shared + rng.gauss(0, sd["point"])
                    if rng.random() < WILD_CHANCE:
                        z += abs(rng.gauss(0, WILD_SIGMAS * sigma))
                    if side == 1:
                        z += math.log(shift)
                    fill(p, z, sd["own"], rng)
                out.append(p)
        run = copy.deepcopy(template)
        run["points"] = out
        run["summary"] = []
        runs.append(run)
    return runs


def fill(p, z, own, rng):
    s = p["loadgen"]["summary"]
    g = lambda: rng.gauss(0, own)
    s["throughput_per_s"] = s["throughput_per_s"] * math.exp(-z + g())
    lat = s["latency_us"]
    lat["p50"] = quantise_latency(lat["p50"] * math.exp(z + g()))
    lat["p99"] = quantise_latency(lat["p99"] * math.exp(1.5 * z + 2 * g()))
    c = p.get("server_cost") or {}
    if c.get("cpu_us_per_request") is not None:
        c["cpu_us_per_request"] *= math.exp(z + g())
    if c.get("syscalls_per_request") is not None:
        exact = round(c["syscalls_per_request"])
        if rng.random() < 0.4 or exact == 0:
            c["syscalls_per_request"] = float(exact) if exact else c["syscalls_per_request"]
        else:
            c["syscalls_per_request"] = exact * (1 - abs(rng.gauss(0, 0.004)))
    if c.get("memory_bytes_per_connection") is not None:
        typical = c["memory_bytes_per_connection"] or 150.0
        grown = typical * math.exp(rng.gauss(0, 0.3))
        c["memory_bytes_per_connection"] = 0.0 if rng.random() < 0.6 else round(grown / 10.24) * 10.24


def judge(muxbench, check_args, runs, workdir):
    for name, run in zip(("base", "current"), runs):
        os.makedirs(os.path.join(workdir, name), exist_ok=True)
        with open(os.path.join(workdir, name, "results.json"), "w", encoding="utf-8") as f:
            json.dump(run, f, separators=(",", ":"))
    report = os.path.join(workdir, "report")
    code = subprocess.run([muxbench, "check", "--baseline", os.path.join(workdir, "base"),
                           "--current", os.path.join(workdir, "current"), "--no-charts",
                           "--report-dir", report, *check_args], capture_output=True,
                          check=False).returncode
    with open(os.path.join(report, "check.json"), encoding="utf-8") as f:
        j = json.load(f)
    pooled = [f'{c["model"]} {c["metric"]} across points' for c in j.get("pooled", [])
              if c["verdict"] == "regression"]
    single = [f'{c["model"]} {c["metric"]} at {c["scenario"]} {c["x_value"]:g}'
              for c in j["comparisons"] if c["verdict"] in ("regression", "status")]
    return code, pooled, single


def one(args):
    muxbench, check_args, template_dir, noise, shift, seed = args
    template, points = load_template(template_dir)
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp(prefix="check-sim-")
    try:
        return judge(muxbench, check_args, draw_runs(template, points, noise, shift, rng),
                     workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def interval(k, n):
    """Wilson's 95% interval for k of n."""
    if n == 0:
        return 0.0, 1.0
    z, p = 1.96, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def batch(pool, a, noise, shift, sims, seed):
    jobs = [(a.muxbench, a.check_args.split(), a.template, noise, shift, seed + i)
            for i in range(sims)]
    results = list(pool.map(one, jobs))
    alarms = sum(r[0] == 1 for r in results)
    refused = sum(r[0] == 2 for r in results)
    by_pooled = sum(r[0] == 1 and bool(r[1]) for r in results)
    by_single = sum(r[0] == 1 and bool(r[2]) for r in results)
    lo, hi = interval(alarms, sims)
    line = (f"{alarms} of {sims} exit 1 ({100 * alarms / sims:.1f}%, 95% interval "
            f"{100 * lo:.1f}-{100 * hi:.1f}%); a pooled judgement in {by_pooled}, a single "
            f"point in {by_single}; {refused} refused")
    if shift == 1.0 and alarms:
        flagged = collections.Counter(f for r in results for f in r[1] + r[2])
        line += "\n    flagged: " + "; ".join(f"{k} ({n})" for k, n in flagged.most_common(8))
    return line


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("muxbench")
    ap.add_argument("--template", default=os.path.join(os.path.dirname(__file__), "..", "reference"))
    ap.add_argument("--sims", type=int, default=1000, help="honest pairs per noise level")
    ap.add_argument("--sigma", type=float, nargs="+", default=[0.1, 0.25],
                    help="log-scale sd of a time figure's repeats (0.1: about 30%% from the "
                         "lowest of 8 repeats to the highest; 0.25: about 70%%)")
    ap.add_argument("--shares", type=float, nargs=4, default=list(SHARES.values()),
                    metavar=("ROUND", "PASS", "POINT", "OWN"),
                    help="shares of the variance (default %(default)s)")
    ap.add_argument("--shifts", type=float, nargs="*", default=[1.05, 1.1, 1.2])
    ap.add_argument("--shift-sims", type=int, default=200)
    ap.add_argument("--sequential-sims", type=int, default=0,
                    help="honest pairs taken one run after the other, per noise level")
    ap.add_argument("--check-args", default="",
                    help="more options for muxbench check, e.g. '--threshold 0.001' to count "
                         "every significant change, however small")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=14)
    a = ap.parse_args()
    shares = dict(zip(SHARES, a.shares))
    print(f"shares of the variance: {shares}; wild repeats {WILD_CHANCE:.0%} at up to "
          f"{WILD_SIGMAS} sigma; round drift AR(1) rho {RHO}; {REPEATS} repeats a side")
    with concurrent.futures.ProcessPoolExecutor(a.jobs) as pool:
        for k, sigma in enumerate(a.sigma):
            seed = a.seed * 1000003 + k * 100000
            noise = {"sigma": sigma, "shares": shares, "sequential": False}
            print(f"sigma {sigma}: honest pairs in turns: "
                  f"{batch(pool, a, noise, 1.0, a.sims, seed)}", flush=True)
            if a.sequential_sims:
                after = dict(noise, sequential=True)
                print(f"sigma {sigma}: honest pairs one after the other: "
                      f"{batch(pool, a, after, 1.0, a.sequential_sims, seed + 50000)}",
                      flush=True)
            for j, shift in enumerate(a.shifts):
                print(f"sigma {sigma}: every time figure x{shift:g} (rates /{shift:g}): "
                      f"{batch(pool, a, noise, shift, a.shift_sims, seed + 60000 + j * 5000)}",
                      flush=True)


if __name__ == "__main__":
    main()
