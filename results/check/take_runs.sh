#!/usr/bin/env bash
# Takes the runs results/check/study.py judges: honest runs of the check plan (the same code
# each time) and runs whose server burns more CPU per request (--work-us N), all in turns, one
# repeat each per round, so the machine's slow minutes land on every run alike; then merges
# each run's rounds.
#   results/check/take_runs.sh OUT_DIR [ROUNDS [NAME ...]]
# ROUNDS defaults to the check plan's repeats. NAMEs are honestN or workNus-M (default:
# honest1..honest6 and two runs each of --work-us 1, 2 and 3).
# SWEEP_ARGS adds options to every sweep, e.g. SWEEP_ARGS="--models epoll-lt,epoll-et" for a
# pilot. MERGE_ROUNDS="8 12" also merges the first 8 and the first 12 rounds of each run into
# OUT_DIR/first8 and OUT_DIR/first12, to judge the same runs at fewer repeats. Each round of one
# run of the whole check plan takes about 20 s on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: take_runs.sh OUT_DIR [ROUNDS [NAME ...]]}
plan_repeats=$(awk -F= '/^repeats/ {gsub(/ /, "", $2); print $2}' bench/plans/check.toml)
rounds=${2:-$plan_repeats}
runs=("${@:3}")
if ((${#runs[@]} == 0)); then
  runs=(honest1 honest2 honest3 honest4 honest5 honest6 work1us-1 work1us-2 work2us-1 work2us-2
        work3us-1 work3us-2)
fi
read -r -a sweep_args <<<"${SWEEP_ARGS:-}"
mkdir -p "$out/parts"
started=$SECONDS
for round in $(seq 1 "$rounds"); do
  for turn in "${!runs[@]}"; do
    # Each round starts one run later, so no run always follows the same one.
    name=${runs[$(((turn + round) % ${#runs[@]}))]}
    extra=()
    if [[ $name == work* ]]; then
      work=${name#work}
      extra=(--work-us "${work%%us*}")
    fi
    if ! build/bin/muxbench sweep --plan check --repeats 1 --out "$out/parts" \
      --run-name "$name-r$round" "${extra[@]}" "${sweep_args[@]}" >"$out/parts/$name-r$round.log" 2>&1; then
      tail -20 "$out/parts/$name-r$round.log" >&2
      exit 1
    fi
    done_runs=$(((round - 1) * ${#runs[@]} + turn + 1))
    total=$((rounds * ${#runs[@]}))
    elapsed=$((SECONDS - started))
    echo "$(date +%T) round $round of $rounds: $name ($done_runs of $total, ${elapsed}s so far," \
      "about $((elapsed * (total - done_runs) / done_runs))s to go)"
  done
done
merge() {  # merge FOLDER ROUNDS: each run's first ROUNDS rounds, as FOLDER/NAME
  for name in "${runs[@]}"; do
    parts=()
    for round in $(seq 1 "$2"); do parts+=("$out/parts/$name-r$round"); done
    build/bin/muxbench merge --out "$1/$name" "${parts[@]}"
  done
}
merge "$out" "$rounds"
for n in ${MERGE_ROUNDS:-}; do
  if ((n < rounds)); then merge "$out/first$n" "$n"; fi
done
echo "took $((SECONDS - started)) s for $rounds rounds of ${#runs[@]} runs"
