#!/usr/bin/env bash
# CI's performance check: builds BASE_REF beside this checkout, runs the check plan with the
# base's servers and with this checkout's in turns, one repeat each per round (base, current,
# base, current ...), merges each side's repeats into one run, and judges this checkout's run
# against the base's with `muxbench check`. Taking them in turns puts a noisy minute of a
# shared runner on both sides; taken one after the other, it moves one side's every repeat.
#   bash scripts/perf_check.sh BASE_REF [OUT_DIR]     (OUT_DIR default results/ci)
# Exit status is the check's: 0 no regression, 1 regression, 2 cannot compare.
# Extra muxbench check options can be given in MUXBENCH_CHECK_ARGS, e.g. "--threshold 15".
set -euo pipefail
cd "$(dirname "$0")/.."
base_ref=${1:?usage: perf_check.sh BASE_REF [OUT_DIR]}
out=${2:-results/ci}
plan="$PWD/bench/plans/check.toml"  # this checkout's plan, so both runs measure the same points

bash scripts/deps.sh
bash scripts/build.sh release

work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/base" "$base_ref" >/dev/null
echo "== building base $(git -C "$work/base" rev-parse --short HEAD)"
cmake -S "$work/base" -B "$work/base/build" -DCMAKE_BUILD_TYPE=Release \
  -DMUXBENCH_BUILD_TESTS=OFF -DMUXBENCH_BUILD_MICROBENCH=OFF >/dev/null
cmake --build "$work/base/build" -j "$(nproc)" --target muxbench muxserver muxload

repeats=$(awk -F= '/^repeats/ {gsub(/ /, "", $2); print $2}' "$plan")
rm -rf "$out/base" "$out/current" "$out/parts" "$out/report"
base_parts=() current_parts=()
run_base() {
  "$work/base/build/bin/muxbench" sweep --plan "$plan" --repeats 1 --out "$out/parts" \
    --run-name "base-$1"
}
run_current() {
  build/bin/muxbench sweep --plan "$plan" --repeats 1 --out "$out/parts" --run-name "current-$1"
}
for round in $(seq 1 "$repeats"); do
  # The side that goes first alternates, so neither always follows the other.
  echo "== round $round of $repeats: the check plan with the base's servers and with this checkout's"
  if ((round % 2)); then run_base "$round" && run_current "$round"; else run_current "$round" && run_base "$round"; fi
  base_parts+=("$out/parts/base-$round") current_parts+=("$out/parts/current-$round")
done
build/bin/muxbench merge --out "$out/base" "${base_parts[@]}"
build/bin/muxbench merge --out "$out/current" "${current_parts[@]}"
echo "== this checkout's run judged against the base's"
status=0
# shellcheck disable=SC2086
build/bin/muxbench check --baseline "$out/base" --current "$out/current" \
  --report-dir "$out/report" ${MUXBENCH_CHECK_ARGS:-} || status=$?
if [[ -n "${GITHUB_STEP_SUMMARY:-}" && -f "$out/report/check.md" ]]; then
  cat "$out/report/check.md" >>"$GITHUB_STEP_SUMMARY"
fi
exit "$status"
