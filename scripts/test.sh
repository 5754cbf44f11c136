#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and runs the whole
# suite twice, in the Release build and under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
for flavour in release sanitize; do
  bash scripts/build.sh "$flavour"
  dir=build; [[ $flavour == sanitize ]] && dir=build-asan
  echo "== ctest ($flavour)"
  ctest --test-dir "$dir" --output-on-failure --timeout 300 -j 2
done
