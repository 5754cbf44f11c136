#!/usr/bin/env bash
# The README's main command: installs what is missing, builds Release, runs the quick sweep
# (every model, every scenario, about 3 minutes) and draws its charts and report.
# Extra arguments go to `muxbench sweep` and override the plan, e.g. `--models poll,epoll-et`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh release
run_name="$(date +%Y%m%d-%H%M%S)-main"
build/bin/muxbench sweep --plan quick --run-name "$run_name" "$@"
plot/muxplot "results/$run_name"
