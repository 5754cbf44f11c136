"""The muxplot command line: one results folder, or --compare BASE NEW."""
from __future__ import annotations

import argparse
import os
import sys

from .charts import Look, draw_chart
from .compare import compare_document, markdown, write_json
from .report import drawable_charts, write_compare_report, write_report
from .results import ResultsError, Run

USAGE_EPILOG = """examples:
  plot/muxplot results/reference                  charts and report.html inside the folder
  plot/muxplot results/reference --out /tmp/r     the same, written elsewhere
  plot/muxplot --compare results/reference results/NEW
                                                  overlay both runs; ratios in compare.html,
                                                  compare.md and compare.json (default out:
                                                  NEW/compare)"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="muxplot", epilog=USAGE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Charts and a self-contained HTML report from a muxbench results folder.")
    p.add_argument("results_dir", nargs="?", metavar="RESULTS_DIR", help="a folder holding results.json (or results.json.gz)")
    p.add_argument("--compare", nargs=2, metavar=("BASE_DIR", "NEW_DIR"), help="overlay two runs and tabulate new/base")
    p.add_argument("--out", metavar="DIR", help="where to write (default: RESULTS_DIR, or NEW_DIR/compare)")
    return p


def _draw_all(looks: list, out_dir: str) -> dict:
    drawn = {}
    for chart in drawable_charts([lk.run for lk in looks]):
        drawn[chart.name] = draw_chart(chart, looks, out_dir)
    return drawn


def run_single(folder: str, out_dir: str | None) -> str:
    run = Run(folder)
    out_dir = out_dir or folder
    os.makedirs(out_dir, exist_ok=True)
    drawn = _draw_all([Look(run)], out_dir)
    report = os.path.join(out_dir, "report.html")
    write_report(run, drawn, report)
    print(f"muxplot: {len(drawn)} charts (SVG and PNG) in {out_dir}: {', '.join(drawn)}")
    return report


def run_compare(base_dir: str, new_dir: str, out_dir: str | None) -> str:
    base, new = Run(base_dir), Run(new_dir)
    out_dir = out_dir or os.path.join(new_dir, "compare")
    os.makedirs(out_dir, exist_ok=True)
    looks = [Look(base, label=f"base: {base.name}", tag="base", linestyle="--", alpha=0.5, hatch="//"),
             Look(new, label=f"new: {new.name}", tag="new")]
    drawn = _draw_all(looks, out_dir)
    doc = compare_document(base, new)
    write_json(doc, os.path.join(out_dir, "compare.json"))
    with open(os.path.join(out_dir, "compare.md"), "w", encoding="utf-8") as f:
        f.write(markdown(doc))
    report = os.path.join(out_dir, "compare.html")
    write_compare_report(base, new, doc, drawn, report)
    print(f"muxplot: {len(drawn)} overlaid charts, compare.json and compare.md in {out_dir}")
    return report


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if bool(args.compare) == bool(args.results_dir):
        parser.error("give either RESULTS_DIR or --compare BASE_DIR NEW_DIR")
    try:
        if args.compare:
            report = run_compare(args.compare[0], args.compare[1], args.out)
        else:
            report = run_single(args.results_dir, args.out)
    except ResultsError as e:
        print(f"muxplot: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"muxplot: cannot write {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"report: {os.path.abspath(report)}")
    return 0
