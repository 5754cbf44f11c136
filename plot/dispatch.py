#!/usr/bin/env python3
"""Draws the dispatch-cost chart from muxmicro's Google Benchmark JSON.

Usage: "$(plot/find-python)" plot/dispatch.py [results/micro/dispatch.json] [--out PREFIX]

Writes PREFIX.svg and PREFIX.png (default: the JSON's path without .json): ns per round
against registered fds N, log-log, one line per primitive, K = 1 on the left and K = 100
on the right. Prints the cost per round at N = 64, 1024 and 16384 (K = 1), the least-squares
slope of ns_per_round on N (ns per fd) for select and poll, and epoll's max/min ratio over N.
A missing or malformed file ends the script with one line on stderr and exit status 1.
"""
import argparse
import json
import re
import statistics
import sys

NAME = re.compile(r"^BM_Dispatch(\w+)/fds:(\d+)/active:(\d+)(/|$)")
PRIMITIVES = [  # name in the benchmark, label, style
    ("Select", "select", dict(color="tab:red", marker="s")),
    ("Poll", "poll", dict(color="tab:orange", marker="o")),
    ("EpollLT", "epoll LT", dict(color="tab:blue", marker="^")),
    ("EpollET", "epoll ET", dict(color="tab:green", marker="v", linestyle="--")),
]
REPORT_N = (64, 1024, 16384)
FD_SETSIZE = 1024


class InputError(Exception):
    pass


def load(path):
    """Returns ({(primitive, active): {fds: ns_per_round}}, {(primitive, active, fds)}): the
    measured dispatch runs, and the ones the benchmark skipped (select over FD_SETSIZE)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid JSON: {e}")
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise InputError(f"{path} has no 'benchmarks' list: not Google Benchmark JSON output")
    samples, skipped = {}, set()
    for entry in doc["benchmarks"]:
        if not isinstance(entry, dict):
            raise InputError(f"{path}: a 'benchmarks' entry is not an object")
        match = NAME.match(str(entry.get("name", "")))
        if not match or entry.get("run_type", "iteration") != "iteration":
            continue
        if entry.get("error_occurred"):
            skipped.add((match.group(1), int(match.group(3)), int(match.group(2))))
            continue
        value = entry.get("ns_per_round")
        if not isinstance(value, (int, float)):
            raise InputError(f"{path}: {entry['name']} has no numeric ns_per_round counter")
        key = (match.group(1), int(match.group(3)))
        samples.setdefault(key, {}).setdefault(int(match.group(2)), []).append(float(value))
    if not samples:
        raise InputError(f"{path} holds no measured BM_Dispatch* run (was it run with --benchmark_filter=Dispatch?)")
    # With --benchmark_repetitions, each N has several runs: plot their median.
    medians = {key: {n: statistics.median(v) for n, v in runs.items()} for key, runs in samples.items()}
    return medians, skipped


def fit_slope(points):
    """Least squares ns_per_round = a + b * N; returns (b, a) in ns per fd and ns."""
    ns = sorted(points)
    if len(ns) < 2:
        return None
    mean_n = sum(ns) / len(ns)
    mean_t = sum(points[n] for n in ns) / len(ns)
    sxx = sum((n - mean_n) ** 2 for n in ns)
    sxy = sum((n - mean_n) * (points[n] - mean_t) for n in ns)
    slope = sxy / sxx
    return slope, mean_t - slope * mean_n


def summarize(data, skipped):
    lines = ["cost per round, K = 1 (ns):"]
    lines.append("  " + "primitive".ljust(10) + "".join(f"N={n}".rjust(14) for n in REPORT_N))
    for name, label, _ in PRIMITIVES:
        points = data.get((name, 1), {})
        cells = [f"{points[n]:.0f}" if n in points else "skipped" if (name, 1, n) in skipped
                 else "not run" for n in REPORT_N]
        lines.append("  " + label.ljust(10) + "".join(c.rjust(14) for c in cells))
    fits = {}
    for name, label, _ in PRIMITIVES[:2]:
        for active in (1, 100):
            points = data.get((name, active), {})
            fit = fit_slope(points)
            if fit:
                fits[(name, active)] = fit[0]
                lines.append(f"{label} K={active}: slope {fit[0]:.1f} ns per fd, intercept "
                             f"{fit[1]:.0f} ns (least squares over N = {min(points)}..{max(points)})")
    # select stops at FD_SETSIZE, so also fit poll over the N select covers, like for like.
    select_ns = data.get(("Select", 1), {})
    poll_small = {n: t for n, t in data.get(("Poll", 1), {}).items() if n in select_ns}
    fit = fit_slope(poll_small)
    if fit:
        lines.append(f"poll K=1 over select's N = {min(poll_small)}..{max(poll_small)}: slope "
                     f"{fit[0]:.1f} ns per fd, intercept {fit[1]:.0f} ns")
    for name, label, _ in PRIMITIVES[2:]:
        for active in (1, 100):
            points = data.get((name, active), {})
            if points:
                lo, hi = min(points.values()), max(points.values())
                lines.append(f"{label} K={active}: {lo:.0f}..{hi:.0f} ns per round over N = "
                             f"{min(points)}..{max(points)}, max/min {hi / lo:.2f}")
    return lines, fits


def draw(data, fits, prefix):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    for ax, active in zip(axes, (1, 100)):
        for name, label, style in PRIMITIVES:
            points = data.get((name, active), {})
            if not points:
                continue
            ns = sorted(points)
            if (name, active) in fits:
                label = f"{label} (fit: {fits[(name, active)]:.0f} ns/fd)"
            ax.plot(ns, [points[n] for n in ns], label=label, **style)
        ax.axvline(FD_SETSIZE, color="grey", linestyle=":", linewidth=1)
        ax.text(FD_SETSIZE * 1.07, 0.75, "select limit\n(FD_SETSIZE)", transform=ax.get_xaxis_transform(),
                ha="left", va="center", fontsize=8, color="grey")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"K = {active} ready fd{'s' if active > 1 else ''} per round")
        ax.set_xlabel("registered fds N")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=9)
    axes[0].set_ylabel("ns per round (wait + finding the ready fds)")
    fig.suptitle("Dispatch cost: one wait over N unix sockets, K of them readable")
    fig.tight_layout()
    for ext in ("svg", "png"):
        fig.savefig(f"{prefix}.{ext}", dpi=120)
    return [f"{prefix}.svg", f"{prefix}.png"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="?", default="results/micro/dispatch.json")
    parser.add_argument("--out", help="output path without extension (default: the JSON's)")
    args = parser.parse_args()
    try:
        data, skipped = load(args.json)
    except InputError as e:
        print(f"dispatch.py: {e}", file=sys.stderr)
        return 1
    lines, fits = summarize(data, skipped)
    prefix = args.out or re.sub(r"\.json$", "", args.json)
    try:
        written = draw(data, fits, prefix)
    except OSError as e:
        print(f"dispatch.py: cannot write the chart to {prefix}.*: {e.strerror}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    print("wrote " + " and ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
