"""muxplot: charts, a one-page report and run-to-run comparisons from muxbench results folders."""
