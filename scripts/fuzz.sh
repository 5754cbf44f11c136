#!/usr/bin/env bash
# Fuzzes every parser: bash scripts/fuzz.sh [SECONDS] (default 60 per harness).
#
# Builds the libFuzzer harnesses of tests/fuzz/ once, with clang under ASan and UBSan, into
# build-fuzz/, then runs each for SECONDS from its seeds (tests/fuzz/corpus/NAME/, never
# written) and what earlier runs here found (build-fuzz/corpus/NAME/). Prints libFuzzer's
# figures per harness and exits 1 if any harness found a crash, a leak, a timeout or a broken
# invariant; the input that did it is saved under build-fuzz/findings/ with the command that
# replays it. Extra arguments after SECONDS go to every harness (e.g. -jobs=2).
# MUXBENCH_FUZZ_ONLY="NAME ..." runs only the harnesses named.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "fuzz.sh: SECONDS must be a positive whole number, not '$seconds'" >&2
  exit 2
fi
build=build-fuzz
for tool in clang++ cmake; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (bash scripts/deps.sh installs it)" >&2; exit 2; }
done

echo "== fuzz: building the harnesses (clang, ASan+UBSan, $build/)"
cmake -S tests/fuzz -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE= >/dev/null
cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1 || { cat "$build/build.log" >&2; exit 2; }

harnesses=()
for source in tests/fuzz/*_fuzz.cpp; do
  name=$(basename "$source" _fuzz.cpp)
  # MUXBENCH_FUZZ_ONLY="a b" runs only those harnesses (to re-run one after a fix).
  [[ -n ${MUXBENCH_FUZZ_ONLY:-} && " $MUXBENCH_FUZZ_ONLY " != *" $name "* ]] && continue
  harnesses+=("$name")
done
if ((${#harnesses[@]} == 0)); then
  echo "fuzz.sh: no harness named '${MUXBENCH_FUZZ_ONLY:-}' in tests/fuzz/" >&2
  exit 2
fi

mkdir -p "$build/findings" "$build/logs"
failed=()
declare -A found  # harness -> the input it saved this run
printf '%-16s %10s %8s %8s %8s  %s\n' harness runs exec/s cov corpus result
for name in "${harnesses[@]}"; do
  # New inputs go to the first folder only: the seeds in the repository are never written.
  corpora=("$build/corpus/$name")
  mkdir -p "${corpora[0]}"
  [[ -d tests/fuzz/corpus/$name ]] && corpora+=("tests/fuzz/corpus/$name")
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384
        -print_final_stats=1 -artifact_prefix="$build/findings/$name-")
  [[ -f tests/fuzz/$name.dict ]] && args+=(-dict="tests/fuzz/$name.dict")
  log="$build/logs/$name.log"
  status=0
  "$build/$name" "${args[@]}" "$@" "${corpora[@]}" >"$log" 2>&1 || status=$?
  # libFuzzer's last status line: "#123456 DONE cov: 412 ft: 1290 corp: 301/21Kb ... exec/s: 4115"
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -1)
  if ((status == 0)); then
    result=ok
  else
    artifact=$(sed -nE 's/.*Test unit written to (.*)/\1/p' "$log" | tail -1)
    result="FINDING (exit $status): ${artifact:-see $log}"
    failed+=("$name")
    found[$name]=$artifact
  fi
  printf '%-16s %10s %8s %8s %8s  %s\n' "$name" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${corp:-?}" "$result"
done

if ((${#failed[@]})); then
  for name in "${failed[@]}"; do
    echo
    echo "== $name: what it found ($build/logs/$name.log)"
    grep -E 'ERROR|fuzz invariant|SUMMARY|runtime error|^  ' "$build/logs/$name.log" | head -20 || true
    # The input itself, so a finding on a CI machine can be replayed from its log alone:
    # base64 -d >input, then the replay command.
    artifact=${found[$name]}
    if [[ -f $artifact ]]; then
      echo "input: $(stat -c %s "$artifact") bytes; base64 of the first 4096:"
      head -c 4096 "$artifact" | base64 -w 100
      echo "replay: $build/$name $artifact"
    else
      echo "replay: $build/$name $build/findings/$name-*"
    fi
  done
  exit 1
fi
