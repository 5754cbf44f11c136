"""The one-page HTML reports: report.html for one run, compare.html for two. Each is self-
contained: charts are embedded as base64 SVG, styles inline, nothing fetched."""
from __future__ import annotations

import base64
import html

from .charts import CHARTS, chart_has_data
from .compare import SHORT, TABLE_METRICS, ratio_text, status_change
from .narrative import chart_paragraph, compare_paragraph
from .results import METRICS, scenario_order
from .style import X_LABELS, environment_facts, fmt_num, fmt_x, order_models, scenario_about

CSS = """
body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
.sub{color:#555;margin-top:0} table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right;vertical-align:top}
th{background:#f4f4f4} td.l,th.l{text-align:left} .refused,.failed,.not_clean,.unsteady{color:#a00}
.better{background:#e3f4e3} .worse{background:#fbe3e3} .chart img{max-width:100%;border:1px solid #eee}
.finding{background:#f7f9fc;border-left:4px solid #1f77b4;padding:.5em .8em} .about{color:#444}
.note{color:#666;font-size:.9em} nav a{margin-right:1em}
"""


def _e(s) -> str:
    return html.escape(str(s))


def _page(title: str, body: list) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _svg_img(path: str, alt: str) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return f'<img src="data:image/svg+xml;base64,{data}" alt="{_e(alt)}">'


def _facts_table(runs: list) -> str:
    facts = [environment_facts(r.env, r.plan, r.started_at) for r in runs]
    head = "".join(f"<th class=l>{_e(label)}</th>" for label, _ in runs_labels(runs))
    rows = "".join(f"<tr><th class=l>{_e(k)}</th>" + "".join(f"<td class=l>{_e(f[k])}</td>" for f in facts) + "</tr>"
                   for k in facts[0])
    plan_keys = ["name", "models", "scenarios", "proto", "payload_bytes", "reply_bytes", "work_us", "conns",
                 "idle_conns", "idle_active", "latency_rate_per_s", "latency_conns", "churn_conns", "slow_mix",
                 "slow_conns", "slow_rate_per_s", "duration_s", "warmup_s", "repeats", "loadgen_threads", "point_timeout_s"]
    for k in plan_keys:
        if any(k in r.plan for r in runs):
            rows += f"<tr><th class=l>plan.{_e(k)}</th>" + "".join(
                f"<td class=l>{_e(_plain(r.plan.get(k, '–'), k))}</td>" for r in runs) + "</tr>"
    rows += "<tr><th class=l>run</th>" + "".join(
        f"<td class=l>{_e(r.started_at)} – {_e(r.finished_at)}, {r.points_count} points</td>" for r in runs) + "</tr>"
    return f"<table><tr><th></th>{head}</tr>{rows}</table>" if len(runs) > 1 else f"<table>{rows}</table>"


def runs_labels(runs):
    return [("base" if i == 0 else "new", r) for i, r in enumerate(runs)]


def _plain(v, key: str) -> str:
    if isinstance(v, list):  # an empty model or scenario list in a plan means every one
        return ", ".join(str(x) for x in v) if v else ("all" if key in ("models", "scenarios") else "none")
    return str(v)


LEGEND_HTML = """<ul class=note>
<li>Each model keeps one colour and marker on every chart.</li>
<li>A hollow marker (or white bar) is a loadgen-bound point: muxload was saturated while the server had
headroom, so muxload, not the server, was the limit. A half-filled marker (or dotted bar) had both sides
saturated: its figure is this pair's ceiling, not the server's alone.</li>
<li>× marks a point a model could not run, or whose load never settled (unsteady): a dashed wall at the first such x, labelled with the
reason code, with a dotted line from the last measured point. A point that ran but not cleanly (not_clean: an
open-loop run below its rate, or with requests left unfinished) keeps its bar, crossed and labelled. The reasons
are listed under "Points not run or not ok".</li>
<li>Error bars span the minimum and maximum over a point's repeats; the marker is the median.</li>
</ul>"""


def _chart_sections(charts_drawn: dict, paragraph) -> list:
    out = []
    for chart in CHARTS:
        out.append(f'<section class=chart id="{chart.name}"><h3>{_e(chart.title)}</h3>')
        out.append(f"<p class=about>{_e(chart.about)}</p>")
        if chart.name not in charts_drawn:
            out.append("<p class=note>Not drawn: this run has no data for it.</p></section>")
            continue
        text = paragraph(chart)
        if text:
            out.append(f"<p class=finding>{_e(text)}</p>")
        out.append(_svg_img(charts_drawn[chart.name]["svg"], chart.title) + "</section>")
    return out


def _summary_table(run, scenario: str) -> str:
    entries = run.scenario(scenario)
    metrics = [k for k in METRICS if any(k in e.metrics for e in entries)]
    x_name = entries[0].x_name
    head = (f"<tr><th class=l>model</th><th>{_e(X_LABELS.get(x_name, x_name))}</th><th class=l>status</th>"
            + "".join(f"<th>{_e(METRICS[k].label)}<br><small>{_e(METRICS[k].unit or '0–1')}</small></th>"
                      for k in metrics) + "</tr>")
    rows = []
    for model in order_models({e.model for e in entries}):
        for e in run.series(scenario, model):
            status = "ok" if e.status == "ok" else f"{e.status}: {e.reason_code}"
            if e.loadgen_bound:
                status += " (loadgen-bound)"
            elif e.limit == "both":
                status += " (both saturated)"
            cells = []
            for k in metrics:
                st = e.metrics.get(k)
                if st is None:
                    cells.append("<td>–</td>")
                    continue
                s = METRICS[k].scale
                tip = f"min {fmt_num(st.min * s)}, max {fmt_num(st.max * s)} over {len(st.values)} repeats"
                cells.append(f'<td title="{_e(tip)}">{_e(fmt_num(st.median * s))}</td>')
            cls = "" if e.status == "ok" else f' class="{e.status}"'
            rows.append(f"<tr{cls}><td class=l>{_e(model)}</td><td>{_e(fmt_x(e.x_value))}</td>"
                        f"<td class=l>{_e(status)}</td>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _not_run_table(run) -> str:
    bad = [e for e in run.entries if e.status != "ok"]
    if not bad:
        return "<p>Every point ran.</p>"
    rows = "".join(f'<tr class="{e.status}"><td class=l>{_e(e.scenario)}</td><td class=l>{_e(e.model)}</td>'
                   f"<td>{_e(fmt_x(e.x_value))}</td><td class=l>{_e(e.status)}</td><td class=l>{_e(e.reason_code)}</td>"
                   f"<td class=l>{_e(e.reason_detail)}</td><td>{e.repeats_ok}/{e.repeats}</td></tr>" for e in bad)
    return ("<table><tr><th class=l>scenario</th><th class=l>model</th><th>x</th><th class=l>status</th>"
            f"<th class=l>code</th><th class=l>detail</th><th>repeats ok</th></tr>{rows}</table>")


def write_report(run, charts_drawn: dict, path: str):
    scenarios = sorted({e.scenario for e in run.entries}, key=scenario_order)
    body = [f"<h1>muxbench results: {_e(run.name)}</h1>",
            f"<p class=sub>plan <b>{_e(run.plan.get('name', '?'))}</b>, {_e(run.started_at)} – {_e(run.finished_at)}, "
            f"{run.points_count} points, from <code>{_e(run.path)}</code></p>",
            '<nav><a href="#environment">environment</a><a href="#charts">charts</a>'
            '<a href="#summary">summary tables</a><a href="#not-run">points not run or not ok</a></nav>',
            '<h2 id="environment">Environment</h2>', _facts_table([run]),
            '<h2 id="charts">Charts</h2>', LEGEND_HTML]
    body += _chart_sections(charts_drawn, lambda chart: chart_paragraph(chart, run))
    body.append('<h2 id="summary">Summary tables</h2><p class=note>Medians over repeats; hover a cell for '
                'its min and max. Latency percentiles are corrected for coordinated omission where the point '
                'ran open loop.</p>')
    for s in scenarios:
        body.append(f"<h3>{_e(s)}: {_e(scenario_about(s, run.plan))}</h3>{_summary_table(run, s)}")
    body += ['<h2 id="not-run">Points not run or not ok</h2>', _not_run_table(run)]
    with open(path, "w", encoding="utf-8") as f:
        f.write(_page(f"muxbench results: {run.name}", body))


def _ratio_table(rows: list) -> str:
    out = []
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        sr = [r for r in rows if r["scenario"] == scenario]
        head = (f"<tr><th class=l>model</th><th>{_e(X_LABELS.get(sr[0]['x_name'], sr[0]['x_name']))}</th>"
                "<th class=l>status (base → new)</th>" + "".join(f"<th>{_e(SHORT[m])}</th>" for m in TABLE_METRICS) + "</tr>")
        body = []
        for r in sr:
            cells = []
            for m in TABLE_METRICS:
                c = r["metrics"][m]
                cls = f' class="{c["verdict"]}"' if c["verdict"] in ("better", "worse") and c["better_by"] is not None \
                    and abs(c["better_by"] - 1) > 0.05 else ""
                tip = f"base {fmt_num(c['base'])}, new {fmt_num(c['new'])} {METRICS[m].unit}" if c["base"] is not None \
                    or c["new"] is not None else ""
                cells.append(f'<td{cls} title="{_e(tip)}">{_e(ratio_text(c))}</td>')
            body.append(f"<tr><td class=l>{_e(r['model'])}</td><td>{_e(fmt_x(r['x_value']))}</td>"
                        f"<td class=l>{_e(status_change(r))}</td>{''.join(cells)}</tr>")
        out.append(f"<h3>{_e(scenario)}</h3><table>{head}{''.join(body)}</table>")
    return "\n".join(out)


def write_compare_report(base, new, doc: dict, charts_drawn: dict, path: str):
    body = [f"<h1>muxbench compare: {_e(new.name)} against {_e(base.name)}</h1>",
            f"<p class=sub>base <code>{_e(base.path)}</code>, new <code>{_e(new.path)}</code>. "
            "Dashed, faded lines are the base run; solid lines the new run.</p>",
            '<nav><a href="#environment">environment</a><a href="#ratios">ratios</a><a href="#charts">charts</a></nav>',
            '<h2 id="environment">Environment</h2>', _facts_table([base, new]),
            '<h2 id="ratios">Ratios, new / base</h2>',
            "<p class=note>Each cell is the new median over the base median. ↑ the new run is better on that "
            "metric, ↓ worse; green or red where it moved by more than 5%. Hover a cell for both values. The "
            "same table is in compare.md and, with every metric, in compare.json.</p>",
            _ratio_table(doc["rows"]), '<h2 id="charts">Charts</h2>', LEGEND_HTML]
    body += _chart_sections(charts_drawn,
                            lambda chart: compare_paragraph(chart, doc["rows"], chart.panels_of([base, new])))
    with open(path, "w", encoding="utf-8") as f:
        f.write(_page(f"muxbench compare: {new.name} against {base.name}", body))


def drawable_charts(runs) -> list:
    return [c for c in CHARTS if chart_has_data(c, runs)]

