#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and runs the whole
# suite twice, in the Release build and under AddressSanitizer + UndefinedBehaviorSanitizer,
# then the threaded models' tests under ThreadSanitizer, then fuzzes every parser for a
# short bound (MUXBENCH_FUZZ_SECONDS per harness, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
for flavour in release sanitize; do
  bash scripts/build.sh "$flavour"
  dir=build; [[ $flavour == sanitize ]] && dir=build-asan
  echo "== ctest ($flavour)"
  ctest --test-dir "$dir" --output-on-failure --timeout 300 -j 2
done
# ThreadSanitizer: every server test of the models that run more than one thread (threads,
# epoll-oneshot, reuseport) and the check behind epoll-oneshot's promise. The rest of the
# suite is single-threaded or already runs under ASan+UBSan; running it all here too would
# cost CI minutes and find nothing new. halt_on_error: a race kills the server, which the
# test then sees, rather than a report on a stderr nobody reads.
bash scripts/build.sh tsan
echo "== ctest (tsan: threaded models)"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan --output-on-failure --timeout 300 -j 2 \
  -R 'threads|epoll_oneshot|reuseport|ThreadsModel|EpollOneshotModel|ReuseportModel|PoolModels|SoleHolder'
echo "== fuzz"
bash scripts/fuzz.sh "${MUXBENCH_FUZZ_SECONDS:-20}"
