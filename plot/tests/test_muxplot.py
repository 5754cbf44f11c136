"""plot/ tests: every chart drawn from fixture results folders, the report, compare mode's
ratios, and the one-line failures. The CLI runs as a subprocess through plot/muxplot, the
way a user runs it. unittest style, so both `python3 -m pytest plot/tests` and
`python3 -m unittest` run it."""
import dataclasses
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

TESTS = os.path.dirname(os.path.abspath(__file__))
PLOT = os.path.dirname(TESTS)
FIXTURES = os.path.join(TESTS, "fixtures")
MUXPLOT = os.path.join(PLOT, "muxplot")
sys.path.insert(0, PLOT)

from muxplotlib.charts import CHARTS  # noqa: E402
from muxplotlib.compare import compare_document  # noqa: E402
from muxplotlib.results import ResultsError, Run  # noqa: E402

ALL_MODELS = ["blocking", "nonblocking", "select", "poll", "epoll-lt", "epoll-et", "fork"]
RATE_CHART = "reply_rate_vs_request_rate"
# The charts of the plans that run the five fixed scenarios; the rate chart is the gammo plan's.
PLAN_CHARTS = [c for c in CHARTS if c.name != RATE_CHART]


def muxplot(*args, env=None):
    return subprocess.run([MUXPLOT, *args], capture_output=True, text=True, timeout=240,
                          env={**os.environ, **(env or {})})


class TempDirCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="muxplot-test-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def read(self, *parts):
        with open(os.path.join(*parts), encoding="utf-8") as f:
            return f.read()


class FullRunTest(TempDirCase):
    """The full fixture: seven models, all five scenarios, three repeats, refusals and a failure."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.out = os.path.join(cls.tmp, "full")
        cls.result = muxplot(os.path.join(FIXTURES, "full"), "--out", cls.out)

    def test_exits_zero_and_prints_the_report_path(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        last = self.result.stdout.strip().splitlines()[-1]
        self.assertEqual(last, "report: " + os.path.join(os.path.abspath(self.out), "report.html"))

    def test_every_chart_is_written_and_its_svg_names_every_model(self):
        for chart in PLAN_CHARTS:
            with self.subTest(chart=chart.name):
                png = os.path.join(self.out, chart.name + ".png")
                with open(png, "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
                svg = self.read(self.out, chart.name + ".svg")
                self.assertTrue(svg.lstrip().startswith("<?xml"))
                for model in ALL_MODELS:
                    self.assertIn(f">{model}<", svg, f"{chart.name}.svg does not name {model}")

    def test_the_rate_chart_is_skipped_quietly_without_rate_points(self):
        self.assertFalse(os.path.exists(os.path.join(self.out, RATE_CHART + ".svg")))
        self.assertEqual(self.result.stderr, "")
        html = self.read(self.out, "report.html")
        section = html[html.index(f'id="{RATE_CHART}"'):]
        self.assertIn("Not drawn: this run has no data for it.", section[:section.index("</section>")])

    def test_select_wall_is_labelled_with_its_reason(self):
        for name in ("throughput_vs_conns", "latency_vs_conns", "idle_connections"):
            with self.subTest(chart=name):
                self.assertIn("select refused: fd_setsize", self.read(self.out, name + ".svg"))

    def test_fork_failure_and_blocking_refusal_are_labelled(self):
        svg = self.read(self.out, "throughput_vs_conns.svg")
        self.assertIn("fork failed: timeout", svg)
        self.assertIn("blocking refused: one_connection_at_a_time", svg)

    def test_charts_carry_the_environment(self):
        svg = self.read(self.out, "throughput_vs_conns.svg")
        for fact in ("Linux 6.1.0-fixture x86_64", "2 CPUs", "server cpus 0, client cpus 1", "2025-01-02T03:04:05Z"):
            self.assertIn(fact, svg)

    def test_report_is_self_contained(self):
        html = self.read(self.out, "report.html")
        self.assertEqual(html.count("data:image/svg+xml;base64,"), len(PLAN_CHARTS))
        without_images = re.sub(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=]+", "", html)
        for fetch in ("http://", "https://", "<script", "<link", "@import", "url("):
            self.assertNotIn(fetch, without_images)

    def test_report_has_environment_tables_and_units(self):
        html = self.read(self.out, "report.html")
        for scenario in ("active", "idle", "latency", "churn", "slow"):
            self.assertIn(f"<h3>{scenario}: ", html)
        for unit in ("requests/s", "µs/request", "KiB/connection", "syscalls/request"):
            self.assertIn(unit, html)
        self.assertIn("Fixture CPU @ 2.0GHz", html)
        self.assertIn("select watches fds below FD_SETSIZE=1024", html)  # the points-not-run table

    def test_report_paragraph_names_the_leader_and_margin(self):
        html = self.read(self.out, "report.html")
        # At 10 000 connections the fixture has epoll-et 52 000, epoll-lt 50 000, nonblocking 1 200
        # requests/s, each repeat x0.97 to x1.04: the two epolls' repeats overlap, so they tie; the
        # last is separated from the leader (5 against 5, p = 0.008).
        self.assertIn("At 10k connections, epoll-et and epoll-lt tie for the highest throughput (52 000 "
                      "requests/s and 50 000 requests/s): their repeats do not separate them; the last was "
                      "nonblocking (1 200 requests/s).", html)
        self.assertNotIn("1.04× the next best", html)
        # Idle: epoll-et keeps 59 000 / 61 000 = 97%; nonblocking 1 800 / 40 000 = 4%.
        self.assertIn("epoll-et kept 97% of its throughput", html.lower())
        self.assertIn("nonblocking kept 4% of its throughput", html)
        self.assertIn("In the active scenario, select was refused from 2k connections on (fd_setsize).", html)


    def test_slow_is_judged_on_corrected_p90_and_p99(self):
        svg = self.read(self.out, "single_point_scenarios.svg")
        for text in ("slow: corrected p90 latency", "slow: corrected p99 latency", "offered rate (requests/s) = 4k"):
            self.assertIn(text, svg)
        self.assertNotIn("slow: throughput", svg)
        html = self.read(self.out, "report.html")
        self.assertIn("work mix 1%:10000, open loop at 4 000 requests/s over 20 connections", html)
        self.assertIn("Slow: corrected p99 latency: at 4k requests/s offered, fork had the lowest p99 latency, "
                      "12 500 µs", html)

    def test_a_slow_point_that_was_not_clean_is_marked_and_never_ranked(self):
        # nonblocking's corrected p90 (19 000 µs) is a lower bound from a run that fell behind
        # the rate: crossed and labelled on the chart, named in the text, and left out of the
        # ranking, whose last is select (9 300 µs).
        self.assertIn("not_clean: loadgen_not_clean", self.read(self.out, "single_point_scenarios.svg"))
        html = self.read(self.out, "report.html")
        self.assertIn("Slow: corrected p90 latency: at 4k requests/s offered, fork had the lowest p90 latency, 380 µs; "
                      "the next best, epoll-et, was 23× higher (8 600 µs), and the last, select, 24× higher "
                      "(9 300 µs).", html)
        self.assertIn("In the slow scenario, nonblocking was not clean at 4k requests/s offered (loadgen_not_clean).",
                      html)
        self.assertIn("achieved 3620/s, below 99% of the 4000/s offered in the window", html)  # points not run or not ok

    def test_cpu_breakdown_stacks_user_and_kernel_at_one_point_per_scenario(self):
        svg = self.read(self.out, "cpu_breakdown.svg")
        for text in ("active: CPU per request", "connections = 100", "idle: CPU per request",
                     "idle connections = 1k", "churn: CPU per request", "user time", "kernel time",
                     "refused: one_connection_at_a_time"):
            self.assertIn(text, svg)

    def test_cpu_breakdown_narrative_names_least_most_and_kernel_share(self):
        html = self.read(self.out, "report.html")
        # At 100 connections: epoll-et 1e6 / 64 000 * 0.9 = 14.06 µs, 95% kernel (fixture USER_SHARE 0.05);
        # nonblocking 3 * 1e6 / 35 000 * 0.9 = 77.1 µs, 70% kernel.
        self.assertIn("In the active scenario at 100 connections, the least CPU per request was epoll-et, "
                      "14.1 µs/request (95% in the kernel), the most nonblocking, 77.1 µs/request (70% in the "
                      "kernel); the kernel&#x27;s share ran from 70% (nonblocking) to 95% (epoll-et).", html)

    def test_calls_chart_has_wait_io_and_all_calls(self):
        svg = self.read(self.out, "calls_per_request.svg")
        for text in ("wait calls (epoll_wait, poll, select, ...)", "I/O calls (read, write, send, recv, ...)",
                     "all syscalls", "select refused: fd_setsize"):
            self.assertIn(text, svg)
        html = self.read(self.out, "report.html")
        self.assertIn("Wait calls (epoll_wait, poll, select, ...): at 1 connection,", html)

    def test_report_tables_carry_the_new_metrics(self):
        html = self.read(self.out, "report.html")
        for label in ("server user CPU per request", "server kernel CPU per request", "wait calls per request",
                      "I/O calls per request", "page faults per request", "connection ramp"):
            self.assertIn(label, html)


class RateRunTest(TempDirCase):
    """The gammo fixture: the rate scenario at 0, 1,000 and 5,000 idle connections, select
    refused at 5,000 and failed at 1,000 and 80k/s, poll not clean at 5,000 and 80k/s,
    epoll-et loadgen-bound at 0 idle and 80k/s."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fixture = os.path.join(FIXTURES, "gammo")
        cls.out = os.path.join(cls.tmp, "gammo")
        cls.result = muxplot(cls.fixture, "--out", cls.out)

    def test_draws_the_reply_rate_chart_and_no_other(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        drawn = sorted(f[:-4] for f in os.listdir(self.out) if f.endswith(".svg"))
        self.assertEqual(drawn, [RATE_CHART])

    def test_one_panel_per_idle_count_with_every_model_the_diagonal_and_the_reasons(self):
        svg = self.read(self.out, RATE_CHART + ".svg")
        for text in ("0 idle connections", "1k idle connections", "5k idle connections", ">select<", ">poll<",
                     ">epoll-et<", "reply rate = request rate", "offered rate (requests/s)",
                     "reply rate (replies/s)", "select refused: fd_setsize", "select failed: timeout",
                     "not_clean: loadgen_not_clean", "beside 0, 1k, 5k idle connections"):
            self.assertIn(text, svg)

    def test_report_has_the_chart_and_its_tables_in_idle_order(self):
        html = self.read(self.out, "report.html")
        section = html[html.index(f'id="{RATE_CHART}"'):]
        self.assertIn("data:image/svg+xml;base64,", section[:section.index("</section>")])
        where = [html.index(f"<h3>rate-idle-{n}: ") for n in (0, 1000, 5000)]
        self.assertEqual(where, sorted(where))
        self.assertIn("5k idle connections: at 40k requests/s offered, epoll-et measured the highest throughput",
                      html)

    def test_compare_mode_says_what_moved_in_each_idle_panel(self):
        # The rate chart's panels come from the runs, so compare mode must ask the runs for them.
        with open(os.path.join(self.fixture, "results.json"), encoding="utf-8") as f:
            doc = json.load(f)
        for e in doc["summary"]:
            if (e["scenario"], e["model"], e["x_value"]) == ("rate-idle-1000", "poll", 20000.0):
                m = e["metrics"]["throughput_per_s"]
                for k in ("median", "min", "max"):
                    m[k] *= 0.5
                m["values"] = [v * 0.5 for v in m["values"]]
        new = os.path.join(self.tmp, "gammo-new")
        os.makedirs(new)
        with open(os.path.join(new, "results.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f)
        out = os.path.join(self.tmp, "gammo-compare")
        r = muxplot("--compare", self.fixture, new, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        html = self.read(out, "compare.html")
        section = html[html.index(f'id="{RATE_CHART}"'):]
        section = section[:section.index("</section>")]
        self.assertIn("1k idle connections: the largest loss was poll at 20k requests/s offered, "
                      "16 000 requests/s → 8 000 requests/s (0.50×).", section)
        self.assertIn("0 idle connections: no model moved by more than 2% between the runs.", section)

    def _panel(self, idle):
        """One rate panel drawn on real axes: (axes, figure)."""
        import matplotlib.pyplot as plt
        from muxplotlib import charts
        run = Run(self.fixture)
        panel = next(p for p in charts.rate_panels([run]) if p.scenario == f"rate-idle-{idle}")
        fig, ax = plt.subplots()
        charts._draw_rate_panel(ax, panel, [charts.Look(run)], run.models())
        self.addCleanup(plt.close, fig)
        return ax

    def _markers_at(self, ax, x, marker):
        return [ln for ln in ax.lines if ln.get_marker() == marker and list(ln.get_xdata()) == [x]]

    def test_panels_follow_the_idle_counts_of_the_run(self):
        from muxplotlib import charts
        panels = charts.rate_panels([Run(self.fixture)])
        self.assertEqual([p.scenario for p in panels], ["rate-idle-0", "rate-idle-1000", "rate-idle-5000"])
        self.assertEqual(charts.rate_panels([Run(os.path.join(FIXTURES, "full"))]), [])

    def test_the_diagonal_is_y_equals_x_across_the_offered_rates(self):
        ax = self._panel(0)
        diagonal = [ln for ln in ax.lines if ln.get_marker() in ("None", None, "")
                    and len(ln.get_xdata()) == 2 and list(ln.get_xdata()) == list(ln.get_ydata())]
        self.assertEqual(len(diagonal), 1)
        self.assertEqual(diagonal[0].get_xdata()[0], 0)
        self.assertGreaterEqual(diagonal[0].get_xdata()[1], 80000)
        self.assertEqual(ax.get_ylim()[0], 0)
        self.assertGreaterEqual(ax.get_ylim()[1], 80000)

    def test_loadgen_bound_points_are_hollow_and_the_rest_filled(self):
        ax = self._panel(0)
        from muxplotlib.style import model_style
        colour, marker = model_style("epoll-et")
        bound, = self._markers_at(ax, 80000.0, marker)
        self.assertEqual(bound.get_markerfacecolor(), "white")
        self.assertEqual(list(bound.get_ydata()), [50000.0])
        filled, = self._markers_at(ax, 40000.0, marker)
        self.assertEqual(filled.get_markerfacecolor(), colour)

    def test_not_ok_points_are_crossed_and_failed_ones_have_no_value(self):
        # poll at 5,000 idle and 80k/s ran but not cleanly: its figure is crossed in black.
        ax = self._panel(5000)
        crosses = [ln for ln in self._markers_at(ax, 80000.0, "x") if ln.get_color() == "black"]
        self.assertEqual(len(crosses), 1)
        self.assertEqual(list(crosses[0].get_ydata()), [4000.0])
        # select failed at 1,000 idle and 80k/s without numbers: no select marker sits there,
        # only the wall's cross.
        ax = self._panel(1000)
        self.assertEqual(self._markers_at(ax, 80000.0, "D"), [])
        self.assertTrue(self._markers_at(ax, 80000.0, "x"))


class SchemaOneTest(TempDirCase):
    """A run written before the kernel counters: still drawn, its syscalls read as I/O calls."""

    def test_reads_syscalls_as_io_calls(self):
        run = Run(os.path.join(FIXTURES, "schema1"))
        e = run.entry("active", "poll", 100)
        self.assertIn("io_calls_per_request", e.metrics)
        self.assertNotIn("syscalls_per_request", e.metrics)
        self.assertNotIn("cpu_user_us_per_request", e.metrics)

    def test_plots_what_it_has(self):
        out = os.path.join(self.tmp, "one")
        r = muxplot(os.path.join(FIXTURES, "schema1"), "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "cpu_breakdown.svg")))
        svg = self.read(out, "calls_per_request.svg")
        self.assertIn("I/O calls (read, write", svg)
        self.assertNotIn("all syscalls", svg)
        self.assertNotIn(">wait calls", svg)

    def test_compares_with_a_schema_two_run(self):
        doc = compare_document(Run(os.path.join(FIXTURES, "schema1")), Run(os.path.join(FIXTURES, "full")))
        row = next(x for x in doc["rows"] if (x["scenario"], x["model"], x["x_value"]) == ("active", "poll", 100))
        self.assertAlmostEqual(row["metrics"]["io_calls_per_request"]["ratio"], 1.0)
        self.assertIsNone(row["metrics"]["syscalls_per_request"]["base"])


class MinimalRunTest(TempDirCase):
    """A partial run: active only, three metrics, the nested environment of common/environment.cpp."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.result = muxplot(os.path.join(FIXTURES, "minimal"), "--out", cls.tmp)

    def test_draws_what_it_has_and_says_what_it_skipped(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "throughput_vs_conns.svg")))
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "latency_vs_conns.svg")))
        for absent in ("cpu_per_request", "idle_connections", "memory_per_connection", "single_point_scenarios"):
            self.assertFalse(os.path.exists(os.path.join(self.tmp, absent + ".svg")), absent)
        html = self.read(self.tmp, "report.html")
        self.assertEqual(html.count("Not drawn: this run has no data for it."), len(CHARTS) - 2)

    def test_nested_environment_shape_is_read(self):
        svg = self.read(self.tmp, "throughput_vs_conns.svg")
        self.assertIn("Linux 6.1.0-fixture x86_64 · 2 CPUs", svg)
        self.assertIn("2025-01-03T00:00:00Z", svg)
        for model in ("select", "poll", "epoll-et"):
            self.assertIn(f">{model}<", svg)


class CompareTest(TempDirCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.result = muxplot("--compare", os.path.join(FIXTURES, "compare_base"), os.path.join(FIXTURES, "compare_new"),
                             "--out", cls.tmp)
        with open(os.path.join(cls.tmp, "compare.json"), encoding="utf-8") as f:
            cls.doc = json.load(f)

    def row(self, model, x):
        rows = [r for r in self.doc["rows"] if r["model"] == model and r["x_value"] == x]
        self.assertEqual(len(rows), 1)
        return rows[0]

    def test_exits_zero_and_writes_everything(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        self.assertTrue(self.result.stdout.strip().endswith(os.path.join(os.path.abspath(self.tmp), "compare.html")))
        for name in ("compare.html", "compare.md", "compare.json", "throughput_vs_conns.svg", "throughput_vs_conns.png"):
            self.assertTrue(os.path.exists(os.path.join(self.tmp, name)), name)
        self.assertEqual(self.doc["schema"], "muxbench-compare/1")

    def test_ratios_match_the_hand_computed_case(self):
        et = self.row("epoll-et", 1000)["metrics"]
        self.assertAlmostEqual(et["throughput_per_s"]["ratio"], 60000 / 40000)
        self.assertEqual(et["throughput_per_s"]["verdict"], "better")
        self.assertAlmostEqual(et["latency_p99_us"]["ratio"], 600 / 800)
        self.assertAlmostEqual(et["latency_p99_us"]["better_by"], 800 / 600)
        self.assertEqual(et["latency_p99_us"]["verdict"], "better")
        poll = self.row("poll", 10)["metrics"]
        self.assertAlmostEqual(poll["cpu_us_per_request"]["ratio"], 12 / 10)
        self.assertEqual(poll["cpu_us_per_request"]["verdict"], "worse")
        self.assertEqual(poll["throughput_per_s"]["verdict"], "unchanged")

    def test_a_point_that_stopped_running_has_no_ratio_but_a_status_change(self):
        sel = self.row("select", 1000)
        self.assertEqual((sel["base"]["status"], sel["new"]["status"]), ("ok", "failed"))
        self.assertEqual(sel["new"]["reason"]["code"], "timeout")
        self.assertIsNone(sel["metrics"]["throughput_per_s"]["ratio"])
        self.assertEqual(sel["metrics"]["throughput_per_s"]["base"], 15000)

    def test_markdown_and_html_tables(self):
        md = self.read(self.tmp, "compare.md")
        self.assertIn("| epoll-et | 1k | ok | 1.50× ↑ |", md)
        self.assertIn("| select | 1k | ok → failed (timeout) |", md)
        self.assertIn("1.20× ↓", md)
        html = self.read(self.tmp, "compare.html")
        self.assertIn("the largest gain was epoll-et at 1k connections, 40 000 requests/s → 60 000 requests/s (1.50×)", html)

    def test_overlay_names_both_runs_and_every_model(self):
        svg = self.read(self.tmp, "throughput_vs_conns.svg")
        for text in ("base: compare_base", "new: compare_new", ">select<", ">poll<", ">epoll-et<",
                     "new: select failed: timeout"):
            self.assertIn(text, svg)


class FailureTest(TempDirCase):
    """Bad input fails with one line naming the file and the problem, exit code 2."""

    def write(self, name, content):
        folder = os.path.join(self.tmp, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        return folder

    def assert_fails(self, folder, *fragments):
        r = muxplot(folder, "--out", os.path.join(self.tmp, "out"))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(os.path.join(folder, "results.json"), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])

    def test_gzipped_results_read_as_plain_and_damaged_ones_fail(self):
        # results/reference is stored as results.json.gz
        folder = os.path.join(self.tmp, "packed")
        os.makedirs(folder)
        with open(os.path.join(FIXTURES, "full", "results.json"), "rb") as f:
            text = f.read()
        packed = os.path.join(folder, "results.json.gz")
        with gzip.open(packed, "wb") as f:
            f.write(text)
        run, plain = Run(folder), Run(os.path.join(FIXTURES, "full"))
        self.assertEqual(run.path, packed)
        self.assertEqual(run.entries, plain.entries)
        with open(packed, "r+b") as f:
            f.truncate(os.path.getsize(packed) // 2)
        r = muxplot(folder, "--out", os.path.join(self.tmp, "out"))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn(packed + ": cannot read", r.stderr)

    def test_missing_results_json(self):
        folder = os.path.join(self.tmp, "empty")
        os.makedirs(folder, exist_ok=True)
        self.assert_fails(folder, "no such file", "not a muxbench results folder")

    def test_malformed_json(self):
        self.assert_fails(self.write("broken", '{"schema": "muxbench-results/1", "summary": [}'),
                          "not valid JSON", "line 1")

    def test_wrong_schema_version(self):
        self.assert_fails(self.write("v3", {"schema": "muxbench-results/3", "summary": []}),
                          "schema is 'muxbench-results/3'",
                          "reads only 'muxbench-results/1' or 'muxbench-results/2'")

    def test_missing_schema(self):
        self.assert_fails(self.write("noschema", {"summary": []}), "schema is missing")

    def test_summary_entry_without_model(self):
        entry = {"scenario": "active", "x_name": "conns", "x_value": 10, "status": "ok", "metrics": {}}
        self.assert_fails(self.write("nomodel", {"schema": "muxbench-results/1", "summary": [entry]}),
                          "summary[0]: missing 'model'")

    def test_metric_of_the_wrong_type(self):
        entry = {"scenario": "active", "model": "poll", "x_name": "conns", "x_value": 10, "status": "ok",
                 "metrics": {"throughput_per_s": {"median": "fast"}}}
        self.assert_fails(self.write("badmetric", {"schema": "muxbench-results/1", "summary": [entry]}),
                          "summary[0].metrics.throughput_per_s.median: expected a number")

    def test_usage_error_is_not_a_results_error(self):
        r = muxplot()
        self.assertEqual(r.returncode, 2)
        self.assertIn("give either RESULTS_DIR or --compare BASE_DIR NEW_DIR", r.stderr)


class HostileFilesTest(TempDirCase):
    """tests/hostile_results/cases.json, the cases muxbench check and merge are tested with
    (tests/hostile_results_test.cpp): each exits 2 with one line naming the file and the field,
    and nothing is written."""

    CASES = os.path.join(os.path.dirname(PLOT), "tests", "hostile_results")

    @classmethod
    def make(cls, case):
        if "text" in case:
            return case["text"]
        if "text_repeated" in case:
            return case["text_repeated"][0] * case["text_repeated"][1]
        with open(os.path.join(cls.CASES, case["base"]), encoding="utf-8") as f:
            text = f.read()
        if "replace" in case:
            old, new = case["replace"]
            assert old in text, case["name"]
            return text.replace(old, new, 1)
        return text[:text.index(case["truncate_after"]) + len(case["truncate_after"])]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(os.path.join(cls.CASES, "cases.json"), encoding="utf-8") as f:
            cls.cases = json.load(f)["cases"]
        cls.good = os.path.join(cls.tmp, "good")
        os.makedirs(cls.good)
        shutil.copy(os.path.join(cls.CASES, "base.json"), os.path.join(cls.good, "results.json"))

    def folder(self, case):
        folder = os.path.join(self.tmp, case["name"])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as f:
            f.write(self.make(case))
        return folder

    def assert_refused(self, code, stderr, folder, case):
        self.assertEqual(code, 2, stderr)
        self.assertNotIn("Traceback", stderr)
        lines = stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, stderr)
        self.assertIn(os.path.join(folder, "results.json"), lines[0])
        for fragment in case["expect"]:
            self.assertIn(fragment, lines[0])

    def run_in_process(self, *args):
        import contextlib
        import io
        from muxplotlib.cli import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(list(args))
        return code, err.getvalue()

    def test_each_case_is_refused_in_single_and_compare_mode(self):
        for case in self.cases:
            folder = self.folder(case)
            out = os.path.join(self.tmp, case["name"] + "-out")
            for mode, args in (("single", [folder]), ("compare as base", ["--compare", folder, self.good]),
                               ("compare as new", ["--compare", self.good, folder])):
                with self.subTest(case=case["name"], mode=mode):
                    self.assert_refused(*self.run_in_process(*args, "--out", out), folder, case)
                    self.assertFalse(os.path.exists(out))
                    self.assertEqual(os.listdir(folder), ["results.json"])

    def test_the_command_refuses_them_too(self):
        # The same through plot/muxplot, for a few cases (each start costs a matplotlib import).
        for case in self.cases:
            if case["name"] not in ("truncated", "nan", "repeat_1e30", "nested_too_deep"):
                continue
            with self.subTest(case=case["name"]):
                folder, out = self.folder(case), os.path.join(self.tmp, case["name"] + "-cli")
                r = muxplot(folder, "--out", out)
                self.assert_refused(r.returncode, r.stderr, folder, case)
                self.assertFalse(os.path.exists(out))

    def test_names_that_look_like_tex_are_drawn_as_text(self):
        # matplotlib parses "$...$" as TeX and died half-way through a chart on "$\\frac{$".
        folder = os.path.join(self.tmp, "tex")
        os.makedirs(folder)
        with open(os.path.join(self.CASES, "base.json"), encoding="utf-8") as f:
            text = f.read().replace('"model": "poll"', '"model": "p$\\\\frac{$ll"')
        with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as f:
            f.write(text.replace('"cpu_model": "Fixture CPU"', '"cpu_model": "a$^$b"'))
        r = muxplot(folder)
        self.assertEqual(r.returncode, 0, r.stderr)
        svg = self.read(folder, "throughput_vs_conns.svg")
        self.assertIn("p$\\frac{$ll", svg)
        self.assertIn("(a$^$b)", svg)

    def test_both_schemas_are_drawn(self):
        for name in ("base.json", "base_v2.json"):
            with self.subTest(schema=name):
                folder = os.path.join(self.tmp, "ok-" + name)
                os.makedirs(folder)
                shutil.copy(os.path.join(self.CASES, name), os.path.join(folder, "results.json"))
                r = muxplot(folder)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(os.path.exists(os.path.join(folder, "report.html")))


class SeparationTest(unittest.TestCase):
    """A lead is stated only where the repeats separate, by an exact U test given ties."""

    def test_exact_p_values(self):
        from muxplotlib.narrative import u_test_p
        self.assertAlmostEqual(u_test_p([1, 2, 3], [4, 5, 6]), 0.1)  # 2 of C(6, 3) splits
        self.assertAlmostEqual(u_test_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]), 2 / 252)
        # Ties: the exact conditional p is 0.057 (issue 14's case; scipy's exact method agrees).
        self.assertAlmostEqual(u_test_p([1, 2, 2, 3], [3, 4, 5, 5]), 0.0571428, places=6)
        self.assertEqual(u_test_p([5, 5, 5], [5, 5, 5]), 1.0)
        self.assertEqual(u_test_p([], [1, 2]), 1.0)
        # Beyond the exact range, the normal approximation: 12 against 12 fully separated.
        self.assertLess(u_test_p(list(range(12)), list(range(12, 24))), 1e-4)

    def test_a_lead_needs_separated_repeats_and_a_bound_is_only_a_rate(self):
        from muxplotlib.narrative import leader_sentence
        from muxplotlib.results import Entry, Stat

        def entry(model, values, bound=False):
            stat = Stat(median=sorted(values)[len(values) // 2], min=min(values), max=max(values), values=values)
            return Entry("active", model, "conns", 100, len(values), len(values), "ok", "", "", bound,
                         {"throughput_per_s": stat, "latency_p99_us": stat})

        class FakeRun:
            def __init__(self, entries):
                self.entries = entries

            def scenario(self, _):
                return self.entries

        apart = FakeRun([entry("a", [100, 101, 102, 103, 104], bound=True), entry("b", [90, 91, 92, 93, 94])])
        text = leader_sentence(apart, "active", "throughput_per_s", 100)
        self.assertIn("a had the highest throughput", text)
        self.assertIn("so its figure is a lower bound", text)
        latency = leader_sentence(apart, "active", "latency_p99_us", 100)
        self.assertIn("b had the lowest p99 latency", latency)
        self.assertNotIn("lower bound", leader_sentence(FakeRun([entry("a", [1, 2, 3, 4, 5], bound=True),
                                                                  entry("b", [10, 11, 12, 13, 14])]),
                                                         "active", "latency_p99_us", 100))
        overlap = FakeRun([entry("a", [100, 96, 104, 99, 101]), entry("b", [98, 95, 103, 97, 100])])
        self.assertIn("a and b tie for the highest throughput", leader_sentence(overlap, "active", "throughput_per_s", 100))
        both = dataclasses.replace(entry("a", [100, 101, 102, 103, 104]), limit="both")
        saturated = leader_sentence(FakeRun([both, entry("b", [90, 91, 92, 93, 94])]), "active",
                                    "throughput_per_s", 100)
        self.assertIn("both the load generator and the server saturated", saturated)
        self.assertNotIn("lower bound", saturated)
        three = FakeRun([entry("a", [104, 103, 102]), entry("b", [90, 91, 92])])
        self.assertIn("3 repeats per point cannot tell whether that order holds",
                      leader_sentence(three, "active", "throughput_per_s", 100))


class ErrorBarUnitTest(unittest.TestCase):
    """An error bar is drawn in the axis's unit, also where the median is 0: 0 to 7,370 bytes
    of memory per connection reads 0 to 7.2 KiB, not 0 to 7,370 KiB."""

    def test_zero_median_bar_is_scaled_like_its_point(self):
        from muxplotlib import charts
        from muxplotlib.results import METRICS, Entry, Stat

        class RecordingAxes:
            def __init__(self):
                self.bars = []

            def plot(self, *args, **kwargs):
                pass

            def annotate(self, *args, **kwargs):
                pass

            def errorbar(self, xs, ys, yerr, **kwargs):
                self.bars.append((ys[0] - yerr[0][0], ys[0] + yerr[1][0]))

        scale = METRICS["memory_bytes_per_connection"].scale
        stat = Stat(median=0.0, min=0.0, max=7370.0, values=[0.0, 0.0, 7370.0])
        entry = Entry("active", "epoll-et", "conns", 100, 3, 3, "ok", "", "", False,
                      {"memory_bytes_per_connection": stat})
        ax = RecordingAxes()
        charts._mark_point(ax, 100, stat.median * scale, "black", "o", entry,
                           charts.Look(run=None), stat, scale)
        self.assertEqual(len(ax.bars), 1)
        low, high = ax.bars[0]
        self.assertAlmostEqual(low, 0.0)
        self.assertAlmostEqual(high, 7370 / 1024)


class UnusualShapesTest(TempDirCase):
    """Shapes a real run can have that the fixtures do not: a model outside the fixed style
    table, a point that failed on one repeat but kept numbers from the others, a model the
    kernel refused (io_uring blocked), one x value,
    an idle scenario with only 0 idle connections, and negative memory growth (noise)."""

    def test_draws_without_error(self):
        def entry(scenario, model, x_name, x, status="ok", metrics=None, **extra):
            m = {k: {"median": v, "min": v, "max": v, "values": [v]} for k, v in (metrics or {}).items()}
            return {"scenario": scenario, "model": model, "x_name": x_name, "x_value": x, "repeats": 3,
                    "repeats_ok": 3 if status == "ok" else 2, "status": status, "loadgen_bound": False,
                    "metrics": m, **extra}
        summary = [
            entry("active", "kqueue", "conns", 100, metrics={"throughput_per_s": 9e4, "memory_bytes_per_connection": -40}),
            entry("active", "io-uring", "conns", 100, "refused",
                  reason={"code": "io_uring_unavailable", "detail": "io_uring_setup failed (errno 1, Operation not permitted)",
                          "errno": 1}),
            entry("active", "poll", "conns", 100, "failed", {"throughput_per_s": 4e4, "memory_bytes_per_connection": 900},
                  reason={"code": "timeout", "detail": "repeat 2 timed out"}),
            entry("idle", "poll", "idle_conns", 0, metrics={"throughput_per_s": 5e4}),
            entry("latency", "poll", "rate_per_s", 1000, metrics={"latency_p50_us": 0.0, "latency_p99_us": 0.0}),
        ]
        folder = os.path.join(self.tmp, "odd")
        os.makedirs(folder)
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump({"schema": "muxbench-results/1", "environment": {}, "plan": {}, "summary": summary}, f)
        r = muxplot(folder)
        self.assertEqual(r.returncode, 0, r.stderr)
        svg = self.read(folder, "throughput_vs_conns.svg")
        self.assertIn(">kqueue<", svg)
        self.assertIn("failed: timeout", svg)
        self.assertIn("io-uring refused: io_uring_unavailable", svg)
        self.assertIn("unknown", svg)  # an environment with nothing in it says so
        self.assertTrue(os.path.exists(os.path.join(folder, "idle_connections.png")))
        self.assertIn("At 100 connections, kqueue measured the highest throughput, 90 000 requests/s, and poll "
                      "40 000 requests/s; 1 repeat per point cannot tell whether that order holds.",
                      self.read(folder, "report.html"))


class StyleTest(unittest.TestCase):
    """Every model muxserver runs keeps one colour and one marker of its own on every chart,
    and none uses the x that marks a refused or failed point."""

    def test_every_registered_model_has_a_look_of_its_own(self):
        from muxplotlib.style import MODEL_STYLE
        with open(os.path.join(os.path.dirname(PLOT), "servers", "models.cpp"), encoding="utf-8") as f:
            names = re.findall(r'ModelInfo\{(?:\.name = )?"([^"]+)"', f.read())
        self.assertEqual(len(names), 11, names)
        self.assertEqual(sorted(names), sorted(MODEL_STYLE))
        looks = [MODEL_STYLE[n] for n in names]
        self.assertEqual(len({colour for colour, _ in looks}), len(names))
        self.assertEqual(len({marker for _, marker in looks}), len(names))
        self.assertNotIn("x", {marker for _, marker in looks})

    def test_the_footer_says_how_many_workers_the_pools_ran(self):
        from muxplotlib.style import plan_line
        plan = {"name": "slow-pools", "proto": "mux1", "repeats": 3}
        self.assertNotIn("workers", plan_line({**plan, "workers": 0}, "r"))
        self.assertIn("pool models with 4 workers", plan_line({**plan, "workers": 4}, "r"))


class ReaderTest(unittest.TestCase):
    def test_absent_optional_fields_are_tolerated(self):
        with tempfile.TemporaryDirectory() as tmp:
            entries = [{"scenario": "active", "model": "select", "x_name": "conns", "x_value": 2000, "status": "refused"},
                       {"scenario": "active", "model": "poll", "x_name": "conns", "x_value": 2000, "status": "ok",
                        "metrics": {"throughput_per_s": {"median": 5.0}, "jain_index": None,
                                    "latency_p99_us": {"median": None}}}]
            with open(os.path.join(tmp, "results.json"), "w") as f:
                json.dump({"schema": "muxbench-results/1", "summary": entries}, f)
            run = Run(tmp)
            refused, ok = run.entry("active", "select", 2000), run.entry("active", "poll", 2000)
            self.assertEqual((refused.status, refused.reason_code, refused.metrics), ("refused", "", {}))
            self.assertEqual(list(ok.metrics), ["throughput_per_s"])
            self.assertEqual(ok.metrics["throughput_per_s"].values, [5.0])
            self.assertEqual(run.models(), ["select", "poll"])

    def test_a_closed_loop_slow_run_is_not_called_corrected(self):
        # Runs from before slow had a rate ran it closed loop, at x = connections: their p90
        # is drawn and described under its own name, not as a corrected figure.
        from muxplotlib.charts import panel_title
        from muxplotlib.narrative import chart_paragraph
        chart = next(c for c in CHARTS if c.name == "single_point_scenarios")
        p90 = next(p for p in chart.panels if p.scenario == "slow" and p.metric == "latency_p90_us")
        self.assertEqual(panel_title(p90, ["rate_per_s"]), "slow: corrected p90 latency")
        self.assertEqual(panel_title(p90, ["conns"]), "slow: p90 latency (closed loop, uncorrected)")
        with tempfile.TemporaryDirectory() as tmp:
            entries = [{"scenario": "slow", "model": m, "x_name": "conns", "x_value": 20, "status": "ok",
                        "metrics": {"latency_p90_us": {"median": v}}} for m, v in (("poll", 1900.0), ("fork", 400.0))]
            with open(os.path.join(tmp, "results.json"), "w") as f:
                json.dump({"schema": "muxbench-results/2", "summary": entries}, f)
            text = chart_paragraph(chart, Run(tmp))
        self.assertIn("Slow: p90 latency (closed loop, uncorrected): at 20 connections, fork measured the lowest",
                      text)
        self.assertNotIn("corrected p90", text)

    def test_an_unsteady_point_is_read_named_and_never_ranked(self):
        # fork never settled at 1k connections: its status is kept, it is named with its reason,
        # and the ranking at that x is epoll-et's alone.
        from muxplotlib.narrative import chart_paragraph, refusal_sentences
        chart = next(c for c in CHARTS if c.name == "throughput_vs_conns")
        with tempfile.TemporaryDirectory() as tmp:
            entries = [{"scenario": "active", "model": "epoll-et", "x_name": "conns", "x_value": 1000,
                        "status": "ok", "metrics": {"throughput_per_s": {"median": 40000.0}}},
                       {"scenario": "active", "model": "fork", "x_name": "conns", "x_value": 1000,
                        "status": "unsteady",
                        "reason": {"code": "loadgen_unsteady", "detail": "served 164 of 1000"}}]
            with open(os.path.join(tmp, "results.json"), "w") as f:
                json.dump({"schema": "muxbench-results/2", "summary": entries}, f)
            run = Run(tmp)
            fork = next(e for e in run.entries if e.model == "fork")
            self.assertEqual((fork.status, fork.reason_code, fork.metrics), ("unsteady", "loadgen_unsteady", {}))
            self.assertEqual(refusal_sentences(run, ["active"]),
                             ["In the active scenario, fork never settled before its window at 1k connections "
                              "(loadgen_unsteady)."])
            self.assertNotIn("fork had", chart_paragraph(chart, run))

    def test_unknown_status_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            entry = {"scenario": "active", "model": "poll", "x_name": "conns", "x_value": 1, "status": "skipped"}
            with open(os.path.join(tmp, "results.json"), "w") as f:
                json.dump({"schema": "muxbench-results/1", "summary": [entry]}, f)
            with self.assertRaisesRegex(ResultsError, r"summary\[0\]\.status: 'skipped' is not ok, not_clean, unsteady, refused or failed"):
                Run(tmp)


class FindPythonTest(unittest.TestCase):
    FIND = os.path.join(PLOT, "find-python")

    def test_finds_an_interpreter_with_matplotlib(self):
        r = subprocess.run([self.FIND], capture_output=True, text=True, env={**os.environ, "MUXBENCH_PYTHON": "/nonexistent"})
        self.assertEqual(r.returncode, 0, r.stderr)
        path = r.stdout.strip()
        check = subprocess.run([path, "-c", "import matplotlib"], capture_output=True)
        self.assertEqual(check.returncode, 0)

    def test_none_found_is_one_line_with_the_install_command(self):
        env = {**os.environ, "MUXBENCH_PYTHON": "/nonexistent", "MUXBENCH_PYTHON_CANDIDATES": "/bin/false"}
        for command in ([self.FIND], [MUXPLOT, os.path.join(FIXTURES, "full")]):
            r = subprocess.run(command, capture_output=True, text=True, env=env)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout, "")
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("apt-get install python3-matplotlib", r.stderr)

    def test_muxplot_py_under_a_python_without_matplotlib_fails_in_one_line(self):
        others = [p for p in (shutil.which("python3"), "/usr/local/bin/python3") if p and os.path.exists(p)]
        bare = [p for p in others if subprocess.run([p, "-c", "import matplotlib"], capture_output=True).returncode]
        if not bare:
            self.skipTest("every python3 here has matplotlib")
        r = subprocess.run([bare[0], os.path.join(PLOT, "muxplot.py"), FIXTURES], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertNotIn("Traceback", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("apt-get install python3-matplotlib", r.stderr)


if __name__ == "__main__":
    unittest.main()
