"""Drawing the charts. One function per chart kind; every chart is a list of panels, each
one scenario and one metric, drawn for one run or overlaid for two (compare mode).

The rules every chart follows (issue 5): a point a model could not run is marked where it
fell with its reason (a tail of refusals becomes a labelled wall); loadgen-bound points are
hollow; repeated points carry min–max error bars; a model has one colour and marker
everywhere; the title and footer carry the environment.
"""
from __future__ import annotations

import math
import os
import textwrap
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker, transforms  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .results import METRICS, rate_idle_conns  # noqa: E402
from .style import (X_LABELS, environment_facts, environment_line, fmt_x, model_style,  # noqa: E402
                    order_models, plan_line, scenario_about)

matplotlib.rcParams.update({
    "svg.fonttype": "none",  # text stays text: searchable, and the report's SVGs stay small
    "svg.hashsalt": "muxplot",  # stable ids, so redrawing the same data gives the same file
    "text.parse_math": False,  # names come from results files: "$\frac{$" is text, not TeX to fail on
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
})

PANEL_W_IN, LEGEND_W_IN = 5.0, 2.7
PNG_DPI = 110


@dataclass
class Panel:
    scenario: str
    metric: str
    title: str
    log_y: bool = False
    ylim: tuple | None = None
    stack: tuple = ()  # "stacked" charts: metrics drawn one on another, bottom first


# The point a "stacked" chart shows of a scenario that has several: the one the README's
# comparisons name. Elsewhere, the x where the most models have the figure.
PREFERRED_X = {"active": 100, "idle": 1000}


def panel_title(panel: Panel, x_names) -> str:
    """The panel's title, given the x_name of every point it draws. "corrected" holds only
    where they all ran open loop: slow ran closed loop before it had a rate (x = connections),
    and a run of then is drawn with its own, uncorrected, name."""
    closed = any(x != "rate_per_s" for x in x_names)
    if "corrected " in panel.title and closed:
        return panel.title.replace("corrected ", "") + " (closed loop, uncorrected)"
    return panel.title


def chosen_x(runs, scenario: str, metric: str):
    have = {}
    for r in runs:
        for e in r.scenario(scenario):
            if metric in e.metrics:
                have[e.x_value] = have.get(e.x_value, 0) + 1
    if not have:
        return None
    preferred = PREFERRED_X.get(scenario)
    if preferred in have:
        return preferred
    most = max(have.values())
    xs = sorted(x for x, n in have.items() if n == most)
    return xs[len(xs) // 2]


@dataclass
class Chart:
    name: str
    title: str
    kind: str  # "line", "bars", "stacked", or "rate" (reply rate against request rate)
    panels: list
    about: str  # what the chart shows, for the report
    ncols: int = 0  # 0: all panels in one row
    panels_from_runs: object = None  # runs -> panels, for a chart whose panels the run decides

    def panels_of(self, runs) -> list:
        return self.panels_from_runs(runs) if self.panels_from_runs else self.panels


def rate_panels(runs) -> list:
    """One panel per idle count the runs swept the rate at, fewest idle first."""
    idle = sorted({n for r in runs for e in r.entries if (n := rate_idle_conns(e.scenario)) is not None})
    return [Panel(f"rate-idle-{n}", "throughput_per_s", f"{fmt_x(n)} idle connections") for n in idle]


CHARTS = [
    Chart("throughput_vs_conns", "Throughput against connections", "line",
          [Panel("active", "throughput_per_s", "throughput", ylim=(0, None))],
          "Requests per second the server completed with every connection loaded (closed loop)."),
    Chart("latency_vs_conns", "Latency against connections", "line",
          [Panel("active", "latency_p50_us", "p50 latency", log_y=True),
           Panel("active", "latency_p99_us", "p99 latency", log_y=True)],
          "Median and 99th-percentile request latency with every connection loaded. Where a point "
          "ran open loop the percentiles are corrected for coordinated omission."),
    Chart("cpu_per_request", "Server CPU per request against connections", "line",
          [Panel("active", "cpu_us_per_request", "server CPU per request", log_y=True)],
          "User plus kernel CPU of the server and every child it had over the measured window, "
          "divided by requests completed. From the kernel's own totals for the whole tree (the "
          "run's cgroup, or perf's task clock), never from the model."),
    Chart("cpu_breakdown", "Where the CPU goes: user and kernel time per request", "stacked",
          [Panel(s, "cpu_user_us_per_request", s, stack=("cpu_user_us_per_request", "cpu_sys_us_per_request"))
           for s in ("active", "idle", "latency", "churn", "slow")],
          "The server's CPU per request at one point of each scenario (100 loaded connections in active, "
          "1,000 idle connections in idle, the one point of the others), split into user time (solid) and "
          "kernel time (hatched): how much of a model's cost is the kernel's work of waiting and moving "
          "bytes. From the run's cgroup: the tree's exact run time, split as the scheduler's ticks landed "
          "in user or kernel mode. On loopback part of the kernel time is the client's packets, received "
          "in the server's context, and the other way round.", ncols=3),
    Chart("calls_per_request", "Calls per request against connections", "line",
          [Panel("active", "wait_calls_per_request", "wait calls (epoll_wait, poll, select, ...)",
                 ylim=(0, None)),
           Panel("active", "io_calls_per_request", "I/O calls (read, write, send, recv, ...)", log_y=True),
           Panel("active", "syscalls_per_request", "all syscalls", log_y=True)],
          "Syscalls of the server tree per request, counted by the kernel (perf's raw_syscalls:sys_enter "
          "tracepoint): the calls that wait for readiness against the calls that move bytes, and every "
          "call. A model that waits once for many ready connections makes fewer wait calls per request "
          "than one that waits per request; one that never waits (busy-poll, blocking, fork) makes none, "
          "and pays in other calls."),
    Chart("idle_connections", "Throughput against idle connections", "line",
          [Panel("idle", "throughput_per_s", "throughput of the loaded connections", ylim=(0, None))],
          "A few loaded connections while more and more idle ones stay open: the cost of "
          "watching connections that have nothing to say (the Gammo/Brecht figure)."),
    Chart("memory_per_connection", "Memory per connection", "line",
          [Panel("active", "memory_bytes_per_connection", "loaded connections", log_y=True),
           Panel("idle", "memory_bytes_per_connection", "idle connections", log_y=True)],
          "Growth of the server's memory over the idle server, per connection held."),
    Chart("fairness", "Fairness across connections", "line",
          [Panel("active", "jain_index", "Jain's index", ylim=(0, 1.05)),
           Panel("active", "unserved_connections", "connections left unserved", ylim=(0, None))],
          "Jain's index over per-connection request counts (1 = every connection served "
          "equally) and how many connections got no reply in the window."),
    Chart("single_point_scenarios", "Single-point scenarios: latency, churn and slow requests", "bars",
          [Panel("latency", "latency_p50_us", "latency: p50", log_y=True),
           Panel("latency", "latency_p99_us", "latency: p99", log_y=True),
           Panel("churn", "throughput_per_s", "churn: connections/s (one request each)"),
           Panel("churn", "cpu_us_per_request", "churn: server CPU per request"),
           Panel("slow", "latency_p90_us", "slow: corrected p90 latency", log_y=True),
           Panel("slow", "latency_p99_us", "slow: corrected p99 latency", log_y=True)],
          "Scenarios run at one point per model, as bars per model. latency and slow run open "
          "loop, so their percentiles are corrected for coordinated omission: a request waits "
          "from when it was due, also while the server is too busy to take it. In slow, 1% of "
          "requests burn 10 ms at a rate that leaves one-thread models below about 60% busy; "
          "p90 shows the ordinary requests stuck behind a slow one, p99 the slow ones and "
          "those behind them. A point muxload judged not clean (below 99% of the rate, or "
          "requests left unfinished) is crossed and labelled: its percentiles are a lower "
          "bound.", ncols=3),
    Chart("reply_rate_vs_request_rate", "Reply rate against request rate, at each idle count", "rate", [],
          "Gammo et al.'s experiment as they ran it: a few loaded connections offered requests open loop at "
          "a rising rate, beside a fixed number of idle connections, one panel per idle count. A model "
          "keeps up while its line follows the diagonal (every request answered as it is asked); where "
          "it bends away the server is saturated, and the reply rate it levels off at is what it serves "
          "those connections. Idle connections cost a model that scans them on every wakeup (select, "
          "poll) a lower and earlier bend.", ncols=2, panels_from_runs=rate_panels),
]


@dataclass
class Look:
    """How one run is drawn: in compare mode the base run is dashed and faded."""
    run: object
    label: str = ""  # legend entry in compare mode
    tag: str = ""  # short prefix for wall labels and environment lines: "base", "new"
    linestyle: str = "-"
    alpha: float = 1.0
    hatch: str | None = None


@dataclass
class _Walls:
    """Labels already placed on one axes, so walls at the same x fan out instead of overlapping."""
    per_x: dict = field(default_factory=dict)
    drawn: set = field(default_factory=set)


def panel_has_data(run, panel: Panel) -> bool:
    return run.has_metric(panel.scenario, panel.metric)


def chart_has_data(chart: Chart, runs) -> bool:
    return any(panel_has_data(r, p) for r in runs for p in chart.panels_of(runs))


def _fmt_tick(v, _pos=None) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if a >= div:
            s = f"{v / div:.3g}"
            return s + suffix
    return f"{v:.3g}"


def _set_x_axis(ax, xs: list, x_name: str):
    xs = sorted(set(xs))
    positive = [x for x in xs if x > 0]
    if positive and len(xs) > 1:
        if len(positive) == len(xs):
            ax.set_xscale("log")
            ax.set_xlim(xs[0] / 1.6, xs[-1] * 1.6)
        else:  # a point at 0 (no idle connections) cannot sit on a log axis
            ax.set_xscale("symlog", linthresh=positive[0], linscale=0.6)
            ax.set_xlim(-positive[0] * 0.3, xs[-1] * 1.6)
    ax.set_xticks(xs)
    ax.set_xticklabels([fmt_x(x) for x in xs])
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    scale = {"log": " (log scale)", "symlog": " (log scale past the first)"}.get(ax.get_xscale(), "")
    ax.set_xlabel(X_LABELS.get(x_name, x_name) + scale)


def _set_y_axis(ax, panel: Panel, ys: list):
    metric = METRICS.get(panel.metric)
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_fmt_tick))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    if panel.log_y and ys and min(ys) > 0:
        ax.set_yscale("log")
        lo, hi = min(ys), max(ys)
        if hi / lo < 20:  # too few decades for log ticks to show: pad to a readable range
            ax.set_ylim(lo / 3, hi * 3)
        if hi / lo < 1000:  # few decades: label 2 and 5 too, so values between decades can be read
            ax.yaxis.set_minor_locator(ticker.LogLocator(subs=(2.0, 5.0)))
            ax.yaxis.set_minor_formatter(ticker.FuncFormatter(_fmt_tick))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(_fmt_tick))
    elif panel.ylim:
        ax.set_ylim(bottom=panel.ylim[0], top=panel.ylim[1])
    unit = metric.unit if metric else ""
    label = metric.label if metric else panel.metric
    ax.set_ylabel(f"{label} ({unit})" if unit else label)


def _mark_point(ax, x, y, colour, marker, entry, look, stat, scale):
    """y is stat.median in display units; scale turns stored values into them."""
    face = "white" if entry.loadgen_bound else colour
    # Both sides saturated: half filled, neither the server's figure nor a lower bound of it.
    fill = "left" if entry.limit == "both" else "full"
    ax.plot([x], [y], marker=marker, ms=7, mfc=face, mfcalt="white", fillstyle=fill, mec=colour, mew=1.5,
            ls="none", alpha=look.alpha, zorder=4)
    if stat.spread:
        ax.errorbar([x], [y], yerr=[[y - stat.min * scale], [stat.max * scale - y]], fmt="none",
                    ecolor=colour, elinewidth=1.1, capsize=3, alpha=look.alpha, zorder=3)
    if entry.status != "ok":  # it produced numbers, but not on every repeat
        ax.plot([x], [y], marker="x", ms=10, mew=2, color="black", ls="none", zorder=5)
        ax.annotate(f"{entry.status}: {entry.reason_code}", (x, y), textcoords="offset points",
                    xytext=(5, 5), fontsize=7.5, color=colour)


def _label_wall(ax, walls: _Walls, x, text, colour):
    n = walls.per_x.get(x, 0)
    walls.per_x[x] = n + 1
    base = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    side = -1 if n % 2 == 0 else 1
    dx = side * (3 + 11 * (n // 2))
    trans = transforms.offset_copy(base, fig=ax.figure, x=dx, y=0, units="points")
    ax.text(x, 0.97, text, transform=trans, rotation=90, va="top", ha="right" if side < 0 else "left",
            fontsize=8, color=colour, fontweight="bold", zorder=6,
            bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.75))


def _draw_refusals(ax, walls: _Walls, model, series, metric, look, scale, valued):
    """Refused and failed points without a value: a tail of them becomes a wall at the first
    one, reached by a dotted line from the last measured point; lone ones get a marker."""
    colour, _ = model_style(model)
    bottom = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    missing = [e for e in series if metric not in e.metrics and e.status != "ok"]
    if not missing:
        return
    last = valued[-1] if valued else None
    tail = [e for e in missing if last is None or e.x_value > last.x_value]
    for e in missing:
        ax.plot([e.x_value], [0.035], marker="x", ms=8, mew=2, color=colour, ls="none",
                transform=bottom, clip_on=False, zorder=5, alpha=look.alpha)
        if e not in tail:
            ax.text(e.x_value, 0.07, f"{model}: {e.reason_code or e.status}", transform=bottom,
                    rotation=90, fontsize=7, color=colour, ha="center", va="bottom")
    if not tail:
        return
    wall = tail[0]
    key = (model, wall.x_value, wall.status, wall.reason_code)
    ax.axvline(wall.x_value, color=colour, ls=(0, (5, 3)), lw=1.6, alpha=0.85 * look.alpha, zorder=2)
    if last is not None:
        y = last.metrics[metric].median * scale
        ax.plot([last.x_value, wall.x_value], [y, y], color=colour, ls=":", lw=1.4,
                alpha=look.alpha, zorder=2)
        ax.plot([wall.x_value], [y], marker="x", ms=12, mew=2.6, color=colour, ls="none", zorder=5,
                alpha=look.alpha)
    if key not in walls.drawn:
        walls.drawn.add(key)
        prefix = f"{look.tag}: " if look.tag else ""
        _label_wall(ax, walls, wall.x_value, f"{prefix}{model} {wall.status}: {wall.reason_code}", colour)


def _draw_line_panel(ax, panel: Panel, looks: list, models: list, linear_x: bool = False):
    metric = METRICS.get(panel.metric)
    scale = metric.scale if metric else 1.0
    walls, xs, ys, x_name = _Walls(), [], [], "conns"
    for look in looks:
        for model in models:
            series = look.run.series(panel.scenario, model)
            if not series:
                continue
            colour, marker = model_style(model)
            x_name = series[0].x_name
            xs += [e.x_value for e in series]
            valued = [e for e in series if panel.metric in e.metrics]
            px = [e.x_value for e in valued]
            py = [e.metrics[panel.metric].median * scale for e in valued]
            ys += py
            ax.plot(px, py, color=colour, ls=look.linestyle, lw=1.7, alpha=look.alpha, zorder=2)
            for e, x, y in zip(valued, px, py):
                _mark_point(ax, x, y, colour, marker, e, look, e.metrics[panel.metric], scale)
    if linear_x:
        ax.set_xlim(0, max(xs) * 1.06)
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(_fmt_tick))
        ax.set_xlabel(X_LABELS.get(x_name, x_name))
    else:
        _set_x_axis(ax, xs, x_name)
    _set_y_axis(ax, panel, ys)
    # Walls after the axes are scaled, so the dotted reach to the wall uses the final axes.
    for look in looks:
        for model in models:
            series = look.run.series(panel.scenario, model)
            valued = [e for e in series if panel.metric in e.metrics]
            _draw_refusals(ax, walls, model, series, panel.metric, look, scale, valued)
    ax.set_title(panel.title, fontsize=11)


def _draw_rate_panel(ax, panel: Panel, looks: list, models: list):
    """Reply rate against request rate on linear axes that share a scale, so the diagonal, where
    every request offered is answered, is a straight line at 45 degrees."""
    _draw_line_panel(ax, panel, looks, models, linear_x=True)
    top = ax.get_xlim()[1]
    ax.plot([0, top], [0, top], color="#888888", ls=(0, (4, 3)), lw=1.1, zorder=1)
    ax.set_ylim(0, max(top, ax.get_ylim()[1]))  # a reply rate above the rate offered stays in view
    ax.set_ylabel("reply rate (replies/s)")


def _draw_bar_panel(ax, panel: Panel, looks: list, models: list):
    metric = METRICS.get(panel.metric)
    scale = metric.scale if metric else 1.0
    xs = sorted({e.x_value for lk in looks for e in lk.run.scenario(panel.scenario)})
    models = [m for m in models if any(lk.run.series(panel.scenario, m) for lk in looks)]
    slot = 0.84 / max(1, len(models))
    sub = slot / len(looks)
    bottom = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    ys, ticks, labels = [], [], []
    # Bar length should be proportional to the value; a log axis only where values span
    # so far that the small bars would vanish.
    values = [e.metrics[panel.metric].median for lk in looks for e in lk.run.scenario(panel.scenario)
              if panel.metric in e.metrics]
    log_y = panel.log_y and values and min(values) > 0 and max(values) / min(values) > 50
    if log_y:
        ax.set_yscale("log")
    for gi, x in enumerate(xs):
        for mi, model in enumerate(models):
            colour, _ = model_style(model)
            centre = gi + (mi - (len(models) - 1) / 2) * slot
            ticks.append(centre)
            labels.append(model)
            for li, look in enumerate(looks):
                pos = centre + (li - (len(looks) - 1) / 2) * sub
                e = look.run.entry(panel.scenario, model, x)
                if e is None:
                    continue
                stat = e.metrics.get(panel.metric)
                if stat is None:
                    if e.status != "ok":
                        ax.plot([pos], [0.03], marker="x", ms=9, mew=2, color=colour, transform=bottom,
                                clip_on=False, ls="none")
                        ax.text(pos, 0.07, f"{e.status}: {e.reason_code}", transform=bottom, rotation=90,
                                fontsize=7.5, color=colour, ha="center", va="bottom")
                    continue
                y = stat.median * scale
                ys.append(y)
                ax.bar(pos, y, width=sub * 0.9, color="white" if e.loadgen_bound else colour,
                       edgecolor=colour, linewidth=1.5, alpha=look.alpha,
                       hatch=".." if e.limit == "both" else look.hatch, zorder=2)
                if stat.spread:
                    ax.errorbar([pos], [y], yerr=[[y - stat.min * scale], [stat.max * scale - y]], fmt="none",
                                ecolor="black", elinewidth=1, capsize=3, zorder=3)
                if e.status != "ok":  # figures, but not ok ones: crossed and labelled
                    ax.plot([pos], [y], marker="x", ms=10, mew=2, color="black", ls="none", zorder=4)
                    ax.text(pos, 0.07, f"{e.status}: {e.reason_code}", transform=bottom, rotation=90,
                            fontsize=7.5, color="black", ha="center", va="bottom", zorder=5,
                            bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.75))
    if len(xs) == 1:
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8.5)
        x_name = looks[-1].run.scenario(panel.scenario)[0].x_name
        ax.set_xlabel(f"{X_LABELS.get(x_name, x_name)} = {fmt_x(xs[0])}", fontsize=8.5)
    else:
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels([fmt_x(x) for x in xs])
    ax.grid(axis="x", visible=False)
    if not log_y:
        ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_fmt_tick))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_ylabel((metric.unit or metric.label) + (" (log scale)" if log_y else "") if metric else panel.metric)
    x_names = [e.x_name for lk in looks for e in lk.run.scenario(panel.scenario)]
    ax.set_title(panel_title(panel, x_names), fontsize=10.5)


def _draw_stacked_panel(ax, panel: Panel, looks: list, models: list):
    """One bar per model at the panel's chosen x, its metrics stacked: the first solid, the
    next hatched and lighter. In compare mode the base run's bar stands beside the new one."""
    x = chosen_x([lk.run for lk in looks], panel.scenario, panel.stack[0])
    models = [m for m in models if any(lk.run.series(panel.scenario, m) for lk in looks)]
    slot = 0.84
    sub = slot / len(looks)
    bottom_axis = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    for mi, model in enumerate(models):
        colour, _ = model_style(model)
        for li, look in enumerate(looks):
            pos = mi + (li - (len(looks) - 1) / 2) * sub
            e = look.run.entry(panel.scenario, model, x) if x is not None else None
            if e is None:
                continue
            stats = [e.metrics.get(k) for k in panel.stack]
            if any(st is None for st in stats):
                why = f"{e.status}: {e.reason_code}" if e.status != "ok" else "not measured"
                ax.plot([pos], [0.03], marker="x", ms=9, mew=2, color=colour, transform=bottom_axis,
                        clip_on=False, ls="none")
                ax.text(pos, 0.07, why, transform=bottom_axis, rotation=90, fontsize=7.5, color=colour,
                        ha="center", va="bottom")
                continue
            height = 0.0
            for si, st in enumerate(stats):
                face = "white" if e.loadgen_bound and si == 0 else colour
                ax.bar(pos, st.median, bottom=height, width=sub * 0.9, color=face, edgecolor=colour,
                       linewidth=1.5, alpha=look.alpha * (1.0 if si == 0 else 0.45),
                       hatch=None if si == 0 else "///", zorder=2)
                height += st.median
            if e.status != "ok":
                ax.plot([pos], [height], marker="x", ms=10, mew=2, color="black", ls="none", zorder=4)
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(models, rotation=35, ha="right", fontsize=8.5)
    entries = [e for lk in looks for e in lk.run.scenario(panel.scenario)]
    if x is not None and entries:
        x_name = entries[0].x_name
        ax.set_xlabel(f"{X_LABELS.get(x_name, x_name)} = {fmt_x(x)}", fontsize=8.5)
    ax.grid(axis="x", visible=False)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_fmt_tick))
    metric = METRICS.get(panel.stack[0])
    ax.set_ylabel(metric.unit if metric else "")
    ax.set_title(f"{panel.title}: CPU per request", fontsize=10.5)


def _legend_handles(models: list, looks: list, kind: str) -> list:
    handles = [Line2D([], [], color=model_style(m)[0], marker=model_style(m)[1], ms=7, lw=1.7, label=m)
               for m in models]
    if kind == "rate":
        handles.append(Line2D([], [], color="#888888", ls=(0, (4, 3)), lw=1.1,
                              label="reply rate = request rate"))
    if kind == "stacked":
        handles += [Patch(facecolor="#777777", edgecolor="#777777", label="user time"),
                    Patch(facecolor="#777777", edgecolor="#777777", alpha=0.45, hatch="///", label="kernel time")]
    if len(looks) > 1:
        for look in looks:
            if kind in ("bars", "stacked"):
                handles.append(Patch(facecolor="#777777", edgecolor="#777777", alpha=look.alpha,
                                     hatch=look.hatch, label=look.label))
            else:
                handles.append(Line2D([], [], color="black", ls=look.linestyle, alpha=look.alpha, lw=1.7,
                                      label=look.label))
    handles += [
        Line2D([], [], marker="o", ms=7, mfc="white", mec="black", ls="none", label="hollow: loadgen-bound"),
        Line2D([], [], marker="o", ms=7, mfc="black", mfcalt="white", fillstyle="left", mec="black", ls="none",
               label="half (dotted bar):\nboth saturated"),
        Line2D([], [], marker="x", ms=8, mew=2, color="black", ls="none", label="refused / failed\n(reason beside)"),
    ]
    if kind != "stacked":  # stacked bars show medians only
        handles.append(Line2D([], [], marker="|", ms=11, mew=1.2, color="black", ls="none",
                              label="min–max over repeats"))
    return handles


def _heading_lines(chart: Chart, looks: list, width_in: float) -> tuple:
    """(header lines, footer lines), wrapped to the figure's width. Runs that share an
    environment (the usual compare case) show it once."""
    chars = int((width_in - 0.5) * 72 / 4.4)
    envs = [environment_line(environment_facts(lk.run.env, lk.run.plan, lk.run.started_at)) for lk in looks]
    if len(set(envs)) == 1:
        header = [("both runs: " if len(looks) > 1 else "") + envs[0]]
    else:
        header = [f"{lk.tag}: {env}" for lk, env in zip(looks, envs)]
    scenarios = list(dict.fromkeys(p.scenario for p in chart.panels_of([lk.run for lk in looks])))
    idle = [n for s in scenarios if (n := rate_idle_conns(s)) is not None]
    if idle and len(idle) == len(scenarios):  # one sentence for the rate panels, not one each
        active = looks[-1].run.plan.get("rate_active", "?")
        header.append(f"rate: {active} loaded connections offered each rate open loop, beside "
                      f"{', '.join(fmt_x(n) for n in idle)} idle connections")
    else:
        header.append("; ".join(f"{s}: {scenario_about(s, looks[-1].run.plan)}" for s in scenarios))
    footer = [(f"{lk.tag}: " if lk.tag else "") + plan_line(lk.run.plan, lk.run.name) for lk in looks]
    wrap = lambda lines: [w for line in lines for w in textwrap.wrap(line, chars, subsequent_indent="    ")]
    return wrap(header), wrap(footer)


def _heading(fig, chart: Chart, header: list, footer: list, width_in: float, height_in: float):
    fig.suptitle(chart.title, x=0.3 / width_in, y=1 - 0.12 / height_in, ha="left", va="top",
                 fontsize=14, fontweight="bold")
    fig.text(0.3 / width_in, 1 - 0.48 / height_in, "\n".join(header), ha="left", va="top", fontsize=8.5,
             color="#333333", linespacing=1.4)
    fig.text(0.3 / width_in, 0.08 / height_in, "\n".join(footer), ha="left", va="bottom", fontsize=7.5,
             color="#555555", linespacing=1.3)


def draw_chart(chart: Chart, looks: list, out_dir: str) -> dict:
    """Draws one chart as SVG and PNG into out_dir; returns {"svg": path, "png": path}."""
    runs = [lk.run for lk in looks]
    panels = [p for p in chart.panels_of(runs) if any(panel_has_data(r, p) for r in runs)]
    models = order_models({e.model for r in runs for p in panels for e in r.scenario(p.scenario)})
    ncols = min(chart.ncols or len(panels), len(panels))
    nrows = math.ceil(len(panels) / ncols)
    lines = chart.kind in ("line", "rate")
    panel_w = PANEL_W_IN if lines else 4.0
    panel_h = 4.3 if lines else 3.6
    width = ncols * panel_w + LEGEND_W_IN
    header, footer = _heading_lines(chart, looks, width)
    head_in = 0.85 + 0.19 * len(header)
    foot_in = (0.75 if lines else 1.05) + 0.16 * len(footer)
    height = nrows * panel_h + head_in + foot_in
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        if chart.kind == "line":
            _draw_line_panel(ax, panel, looks, models)
        elif chart.kind == "rate":
            _draw_rate_panel(ax, panel, looks, models)
        elif chart.kind == "stacked":
            _draw_stacked_panel(ax, panel, looks, models)
        else:
            _draw_bar_panel(ax, panel, looks, models)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    _heading(fig, chart, header, footer, width, height)
    fig.subplots_adjust(left=0.85 / width, right=1 - LEGEND_W_IN / width, top=1 - head_in / height,
                        bottom=foot_in / height, wspace=0.32, hspace=0.62)
    fig.legend(handles=_legend_handles(models, looks, chart.kind), loc="center left", fontsize=8.5, frameon=False,
               bbox_to_anchor=(1 - (LEGEND_W_IN - 0.2) / width, 0.5))
    paths = {}
    for ext in ("svg", "png"):
        paths[ext] = os.path.join(out_dir, f"{chart.name}.{ext}")
        fig.savefig(paths[ext], dpi=PNG_DPI, metadata={"Date": None} if ext == "svg" else None)
    plt.close(fig)
    return paths
