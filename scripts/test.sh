#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and runs the whole
# suite twice, in the Release build and under AddressSanitizer + UndefinedBehaviorSanitizer,
# then fuzzes every parser for a short bound (MUXBENCH_FUZZ_SECONDS per harness, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
for flavour in release sanitize; do
  bash scripts/build.sh "$flavour"
  dir=build; [[ $flavour == sanitize ]] && dir=build-asan
  echo "== ctest ($flavour)"
  ctest --test-dir "$dir" --output-on-failure --timeout 300 -j 2
done
echo "== fuzz"
bash scripts/fuzz.sh "${MUXBENCH_FUZZ_SECONDS:-20}"
