#!/usr/bin/env bash
# CI's performance check: builds BASE_REF beside this checkout, runs the check plan with the
# base's servers and then with this checkout's, on the same machine one after the other, and
# judges this checkout's run against the base's with `muxbench check`.
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

rm -rf "$out/base" "$out/current"
echo "== check plan with the base's servers"
"$work/base/build/bin/muxbench" sweep --plan "$plan" --out "$out" --run-name base
echo "== check plan with this checkout's servers, judged against the base"
status=0
# shellcheck disable=SC2086
build/bin/muxbench check --baseline "$out/base" --plan "$plan" --out "$out" --run-name current \
  --report-dir "$out/report" ${MUXBENCH_CHECK_ARGS:-} || status=$?
if [[ -n "${GITHUB_STEP_SUMMARY:-}" && -f "$out/report/check.md" ]]; then
  cat "$out/report/check.md" >>"$GITHUB_STEP_SUMMARY"
fi
exit "$status"
