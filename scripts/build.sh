#!/usr/bin/env bash
# Configures and builds one flavour: build.sh release|sanitize|tsan. Binaries land in build*/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
targets=()
case "$flavour" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  # -O1 -g1: what the sanitizers recommend, line tables for their reports, and a much
  # shorter compile than -O2 -g, which keeps CI inside its budget (tests' own sources: -O0,
  # tests/CMakeLists.txt).
  sanitize) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DMUXBENCH_SANITIZE=ON -DMUXBENCH_BUILD_MICROBENCH=OFF) ;;
  # ThreadSanitizer runs only the tests of the threaded models (see test.sh), so only what
  # they need is built.
  tsan) dir=build-tsan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DMUXBENCH_TSAN=ON -DMUXBENCH_BUILD_MICROBENCH=OFF)
        targets=(--target muxserver server_models_test server_limits_test server_bad_input_test deny_io_uring) ;;
  *) echo "build.sh: flavour must be release, sanitize or tsan, not '$flavour'" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
