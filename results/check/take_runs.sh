#!/usr/bin/env bash
# Takes the runs results/check/study.py judges: 6 honest runs of the check plan and runs
# whose server burns more CPU per request (--work-us N), all in turns, one repeat each per
# round, so the machine's slow minutes land on every run alike; then merges each run's rounds.
#   results/check/take_runs.sh OUT_DIR [ROUNDS [NAME ...]]
# ROUNDS defaults to 8, the check plan's repeats. NAMEs are honestN or workNus-M (default:
# honest1..honest6, work1us-1, work2us-1, work2us-2).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: take_runs.sh OUT_DIR [ROUNDS]}
rounds=${2:-8}
runs=("${@:3}")
if ((${#runs[@]} == 0)); then
  runs=(honest1 honest2 honest3 honest4 honest5 honest6 work1us-1 work2us-1 work2us-2)
fi
mkdir -p "$out/parts"
for round in $(seq 1 "$rounds"); do
  for turn in "${!runs[@]}"; do
    # Each round starts one run later, so no run always follows the same one.
    name=${runs[$(((turn + round) % ${#runs[@]}))]}
    extra=()
    if [[ $name == work* ]]; then extra=(--work-us "${name//[^0-9-]/}"); extra[1]=${extra[1]%%-*}; fi
    build/bin/muxbench sweep --plan check --repeats 1 --out "$out/parts" \
      --run-name "$name-r$round" "${extra[@]}" >/dev/null
    echo "$(date +%T) round $round of $rounds: $name"
  done
done
for name in "${runs[@]}"; do
  parts=()
  for round in $(seq 1 "$rounds"); do parts+=("$out/parts/$name-r$round"); done
  build/bin/muxbench merge --out "$out/$name" "${parts[@]}"
done
