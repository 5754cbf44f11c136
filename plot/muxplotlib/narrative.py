"""Sentences generated from the data: which model led each chart, by how much, and which
models could not run where. Nothing here is written by hand about particular models."""
from __future__ import annotations

import itertools
import math

from .results import METRICS
from .style import X_LABELS, fmt_num, fmt_ratio, fmt_x, order_models

# A lead is stated only where the two models' repeats separate: a two-sided Mann-Whitney U
# test below this p. The text is not a gate (muxbench check is), so no multiplicity rule.
SEPARATION_ALPHA = 0.05
_MAX_EXACT_SPLITS = 20000  # beyond, the normal approximation (about 9 repeats a side)


def _midranks(values: list) -> list:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def u_test_p(a: list, b: list) -> float:
    """Two-sided p of the Mann-Whitney U test of a against b: exact given ties (every split
    of the pooled values into groups of their sizes) while the splits are few enough, the
    normal approximation with the tie correction beyond. 1.0 when a side is empty."""
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        return 1.0
    pooled = list(a) + list(b)
    n = na + nb
    ranks = _midranks(pooled)
    expected = na * (n + 1) / 2
    observed = abs(sum(ranks[:na]) - expected)
    if math.comb(n, na) <= _MAX_EXACT_SPLITS:
        extreme = sum(1 for split in itertools.combinations(ranks, na)
                      if abs(sum(split) - expected) >= observed - 1e-9)
        return extreme / math.comb(n, na)
    ties = {}
    for v in pooled:
        ties[v] = ties.get(v, 0) + 1
    variance = na * nb / 12 * ((n + 1) - sum(t ** 3 - t for t in ties.values()) / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    return math.erfc(observed / math.sqrt(variance) / math.sqrt(2))


def _values(entry, metric_key: str) -> list:
    return entry.metrics[metric_key].values


def _testable(entry_a, entry_b, metric_key: str) -> bool:
    """Whether the repeats could separate the two at all: the exact test's smallest p, for
    complete separation, is 2 / C(n, a) (0.1 at 3 against 3, 0.029 at 4, 0.008 at 5)."""
    na, nb = len(_values(entry_a, metric_key)), len(_values(entry_b, metric_key))
    return na > 0 and nb > 0 and 2 / math.comb(na + nb, na) < SEPARATION_ALPHA


def _separated(entry_a, entry_b, metric_key: str) -> bool:
    return u_test_p(_values(entry_a, metric_key), _values(entry_b, metric_key)) < SEPARATION_ALPHA


def _x_phrase(x: float, x_name: str) -> str:
    label = X_LABELS.get(x_name, x_name)
    if x_name == "rate_per_s":
        return f"{fmt_x(x)} requests/s offered"
    return f"{fmt_x(x)} {label if x != 1 else label.rstrip('s')}"


def _value(v: float, metric) -> str:
    return f"{fmt_num(v * metric.scale)} {metric.unit}".rstrip()


def _join(names: list) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _ranked(run, scenario: str, metric_key: str, x: float) -> list:
    """(model, median, entry) best first, over the models that produced this metric at x."""
    metric = METRICS[metric_key]
    # A not-clean point's figures are a lower bound taken below the plan's load: never a lead.
    have = [(e.model, e.metrics[metric_key].median, e) for e in run.scenario(scenario)
            if e.x_value == x and metric_key in e.metrics and e.status != "not_clean"]
    return sorted(have, key=lambda t: -t[1] if metric.higher_is_better else t[1])


def _times(a: float, b: float) -> float | None:
    """How many times better a is than b, for a metric where both are > 0."""
    if a <= 0 or b <= 0:
        return None
    return max(a, b) / min(a, b)


def leader_sentence(run, scenario: str, metric_key: str, x: float) -> str:
    metric = METRICS[metric_key]
    ranked = _ranked(run, scenario, metric_key, x)
    if len(ranked) < 2:
        return ""
    where = _x_phrase(x, ranked[0][2].x_name)
    best_word = "highest" if metric.higher_is_better else "lowest"
    (m1, v1, e1), (m2, v2, e2), (mw, vw, ew) = ranked[0], ranked[1], ranked[-1]
    if v1 == vw:
        return f"At {where} all {len(ranked)} models measured the same {metric.label}, {_value(v1, metric)}."
    if not _testable(e1, e2, metric_key):
        n = min(len(_values(e1, metric_key)), len(_values(e2, metric_key)))
        last = f", {mw} {_value(vw, metric)}" if mw not in (m1, m2) else ""
        return (f"At {where}, {m1} measured the {best_word} {metric.label}, {_value(v1, metric)}, and {m2} "
                f"{_value(v2, metric)}{last}; {n} repeat{'s' if n != 1 else ''} per point cannot tell "
                f"whether that order holds.")
    higher = metric.higher_is_better
    # Who the leader's repeats do not separate from shares the lead.
    tied = [(m, v) for m, v, e in ranked[1:] if v == v1 or not _separated(e1, e, metric_key)]
    if tied:
        figures = _join([_value(v, metric) for v in [v1] + [v for _, v in tied]])
        lead = (f"{_join([m1] + [m for m, _ in tied])} tie for the {best_word} {metric.label} "
                f"({figures}): their repeats do not separate them")
    else:
        r = _times(v1, v2)
        lead = f"{m1} had the {best_word} {metric.label}, {_value(v1, metric)}"
        if r is None:
            lead += f"; next was {m2} ({_value(v2, metric)})"
        elif higher:
            lead += f": {fmt_ratio(r)} the next best, {m2} ({_value(v2, metric)})"
        else:
            lead += f"; the next best, {m2}, was {fmt_ratio(r)} higher ({_value(v2, metric)})"
    worst = ""
    rw = _times(v1, vw)
    if mw not in {m1, m2} | {m for m, _ in tied} and _separated(e1, ew, metric_key):
        if rw is None or tied:
            worst = f"; the last was {mw} ({_value(vw, metric)})"
        elif higher:
            worst = f", and {fmt_ratio(rw)} the last, {mw} ({_value(vw, metric)})"
        else:
            worst = f", and the last, {mw}, {fmt_ratio(rw)} higher ({_value(vw, metric)})"
    bound = ""
    if e1.loadgen_bound:
        # Only a rate is bounded by the load generator: a latency or a cost it limited is
        # no bound of anything.
        bound = (f" {m1}'s point there was loadgen-bound (drawn hollow): the load generator, not the "
                 f"server, set the limit" + (", so its figure is a lower bound." if metric_key == "throughput_per_s"
                                             else "."))
    elif e1.limit == "both":
        bound = (f" {m1}'s point there had both the load generator and the server saturated (drawn half "
                 f"filled): the figure is this pair's ceiling, not the server's alone.")
    return f"At {where}, {lead}{worst}.{bound}"


def panel_sentences(run, scenario: str, metric_key: str) -> list:
    """The leader at the largest x where two models compare, and at the smallest if it differs."""
    xs = [x for x in run.x_values(scenario) if len(_ranked(run, scenario, metric_key, x)) >= 2]
    if not xs:
        return []
    out = [leader_sentence(run, scenario, metric_key, xs[-1])]
    if len(xs) > 1:
        lo, hi = _ranked(run, scenario, metric_key, xs[0]), _ranked(run, scenario, metric_key, xs[-1])
        if lo[0][0] != hi[0][0]:
            out.insert(0, leader_sentence(run, scenario, metric_key, xs[0]))
    return [s for s in out if s]


def refusal_sentences(run, scenarios) -> list:
    """Per model, where it stopped: the first x of a run of refusals or failures, with the reason."""
    out = []
    for scenario in scenarios:
        for model in order_models({e.model for e in run.scenario(scenario)}):
            series = run.series(scenario, model)
            bad = [e for e in series if e.status != "ok"]
            if not bad:
                continue
            first = bad[0]
            where = _x_phrase(first.x_value, first.x_name)
            if len(bad) == len(series):
                span = "at every point" if len(series) > 1 else f"at {where}"
            elif len(bad) > 1 and all(e.status != "ok" for e in series if e.x_value >= first.x_value):
                span = f"from {where} on"
            else:
                span = "at " + ", ".join(_x_phrase(e.x_value, e.x_name) for e in bad)
            verb = {"refused": "was refused", "not_clean": "was not clean",
                    "unsteady": "never settled before its window"}.get(first.status, first.status)
            out.append(f"In the {scenario} scenario, {model} {verb} {span} ({first.reason_code}).")
    return out


def retention_sentence(run, scenario: str, metric_key: str) -> str:
    """For the idle chart: how much of its first value each model kept at its last point."""
    metric = METRICS[metric_key]
    kept = []
    for model in order_models({e.model for e in run.scenario(scenario)}):
        valued = [e for e in run.series(scenario, model) if metric_key in e.metrics]
        if len(valued) >= 2 and valued[0].metrics[metric_key].median > 0:
            first, last = valued[0], valued[-1]
            kept.append((last.metrics[metric_key].median / first.metrics[metric_key].median, model, first, last))
    if len(kept) < 2:
        return ""
    kept.sort(reverse=True)
    best, worst = kept[0], kept[-1]

    def say(k):
        frac, model, first, last = k
        return (f"{model} kept {frac:.0%} of its {metric.label} from {_x_phrase(first.x_value, first.x_name)} "
                f"to {_x_phrase(last.x_value, last.x_name)}")
    return f"{say(best)}; {say(worst)}."


def breakdown_sentence(run, panel) -> str:
    """For a stacked panel (user over kernel CPU): who used the least and the most at the
    chosen point, and how much of it was the kernel's."""
    from .charts import chosen_x  # charts never imports this module
    user_key, kernel_key = panel.stack
    x = chosen_x([run], panel.scenario, user_key)
    rows = [(e.model, e.metrics[user_key].median, e.metrics[kernel_key].median, e)
            for e in run.scenario(panel.scenario)
            if e.x_value == x and user_key in e.metrics and kernel_key in e.metrics]
    rows = [r for r in rows if r[1] + r[2] > 0]
    if len(rows) < 2:
        return ""
    rows.sort(key=lambda r: r[1] + r[2])
    unit = METRICS[user_key].unit

    def say(row):
        model, user, kernel, _ = row
        return f"{model}, {fmt_num(user + kernel)} {unit} ({kernel / (user + kernel):.0%} in the kernel)"
    where = _x_phrase(x, rows[0][3].x_name)
    shares = sorted(rows, key=lambda r: r[2] / (r[1] + r[2]))
    lo, hi = shares[0], shares[-1]
    return (f"In the {panel.scenario} scenario at {where}, the least CPU per request was {say(rows[0])}, "
            f"the most {say(rows[-1])}; the kernel's share ran from {lo[2] / (lo[1] + lo[2]):.0%} "
            f"({lo[0]}) to {hi[2] / (hi[1] + hi[2]):.0%} ({hi[0]}).")


def chart_paragraph(chart, run) -> str:
    from .charts import panel_title  # charts never imports this module
    sentences = []
    panels = chart.panels_of([run])
    for panel in panels:
        if panel.stack:
            s = breakdown_sentence(run, panel)
            if s:
                sentences.append(s)
            continue
        if panel.metric in METRICS and run.has_metric(panel.scenario, panel.metric):
            if len(panels) > 1:
                got = panel_sentences(run, panel.scenario, panel.metric)
                title = panel_title(panel, (e.x_name for e in run.scenario(panel.scenario)))
                sentences += [f"{title[0].upper()}{title[1:]}: {s[0].lower()}{s[1:]}" for s in got]
            else:
                sentences += panel_sentences(run, panel.scenario, panel.metric)
    if chart.name == "idle_connections":
        s = retention_sentence(run, "idle", "throughput_per_s")
        if s:
            sentences.append(s[0].upper() + s[1:])
    scenarios = list(dict.fromkeys(p.scenario for p in panels))
    sentences += refusal_sentences(run, scenarios)
    return " ".join(sentences)


def compare_paragraph(chart, rows: list, panels: list) -> str:
    """Compare mode: per panel, the largest gain and loss between the runs, and status changes.
    `panels`: the chart's panels for the two runs (chart.panels_of), which the runs decide for
    the rate chart (its idle counts)."""
    from .charts import panel_title  # charts never imports this module
    sentences = []
    for panel in panels:
        metric = METRICS.get(panel.metric)
        if metric is None or panel.stack:  # a stack's total is the CPU chart's figure
            continue
        cells = [(r, r["metrics"][panel.metric]) for r in rows
                 if r["scenario"] == panel.scenario and r["metrics"][panel.metric]["better_by"] is not None]
        if not cells:
            continue
        title = panel_title(panel, (r["x_name"] for r, _ in cells))
        label = title[0].upper() + title[1:]
        best = max(cells, key=lambda t: t[1]["better_by"])
        worst = min(cells, key=lambda t: t[1]["better_by"])

        def say(t):
            r, c = t
            return (f"{r['model']} at {_x_phrase(r['x_value'], r['x_name'])}, {_value(c['base'], metric)} → "
                    f"{_value(c['new'], metric)} ({fmt_ratio(c['ratio'])})")
        if best[1]["better_by"] <= 1.02 and worst[1]["better_by"] >= 1 / 1.02:
            sentences.append(f"{label}: no model moved by more than 2% between the runs.")
            continue
        parts = []
        if best[1]["better_by"] > 1.02:
            parts.append(f"the largest gain was {say(best)}")
        if worst[1]["better_by"] < 1 / 1.02:
            parts.append(f"the largest loss was {say(worst)}")
        sentences.append(f"{label}: " + "; ".join(parts) + ".")
    for scenario in dict.fromkeys(p.scenario for p in panels):
        for r in rows:
            if r["scenario"] == scenario and r["base"]["status"] != r["new"]["status"]:
                code = r["new"].get("reason", r["base"].get("reason", {})).get("code", "")
                sentences.append(f"{r['model']} at {_x_phrase(r['x_value'], r['x_name'])} was "
                                 f"{r['base']['status']} in the base run and {r['new']['status']} in the new"
                                 + (f" ({code})." if code else "."))
    return " ".join(sentences)
