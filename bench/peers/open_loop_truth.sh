#!/usr/bin/env bash
# Two figures of issue 12, for a muxload build given by BIN (default build/bin), against
# that build's `muxserver --model epoll-et` (server on SERVER_CPU, muxload on CLIENT_CPU):
#   1. what the open-loop schedule charges to the server: corrected - uncorrected p50 at
#      2000 requests/s over 20 connections, with no backlog (target: within max(20 us, 15%));
#   2. a stall near the window's end: the server is stopped (SIGSTOP) for the last second of
#      a 3 s window at 2000/s; muxload's corrected p99 and exit status.
# Uses only options every muxload has had (--rate, plain seconds), so it runs on the build
# before issue 12 too:  BIN=/work/main/build/bin bench/peers/open_loop_truth.sh
# Usage: bench/peers/open_loop_truth.sh [DURATION_S]   (DURATION_S for figure 1, default 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-5}
bin=${BIN:-build/bin}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
work=$(mktemp -d)
py=$(plot/find-python 2>/dev/null || command -v python3)
server_pid=
loadgen_pid=
cleanup() {
  [[ -n $loadgen_pid ]] && kill "$loadgen_pid" 2>/dev/null
  if [[ -n $server_pid ]]; then
    kill -CONT "$server_pid" 2>/dev/null
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  taskset -c "$server_cpu" "$bin/muxserver" --model epoll-et --proto mux1 \
    --listen tcp:127.0.0.1:0 >"$work/ready" &
  server_pid=$!
  for _ in $(seq 100); do [[ -s $work/ready ]] && break; sleep 0.05; done
  port=$(sed -n 's/.*"endpoint":"tcp:127.0.0.1:\([0-9]*\)".*/\1/p' "$work/ready")
  [[ -n $port ]] || { echo "muxserver did not start" >&2; exit 1; }
}

# Waits (up to 60 s) for an event line in muxload's stdout.
wait_for() {  # EVENT FILE
  for _ in $(seq 6000); do grep -q "\"$1\"" "$2" 2>/dev/null && return 0; sleep 0.01; done
  return 1
}

echo "== muxload from $bin ($($bin/muxload --help >/dev/null 2>&1 && echo ok)), server on cpu $server_cpu, client on cpu $client_cpu"
start_server
status=0
taskset -c "$client_cpu" "$bin/muxload" --target "tcp:127.0.0.1:$port" --proto mux1 --conns 20 \
  --rate 2000 --duration "$duration" --warmup 1 --quiet --json "$work/self.json" >/dev/null ||
  status=$?
"$py" - "$work/self.json" "$status" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
s = doc["summary"]
c, u = s["latency_us"]["p50"], s["latency_uncorrected_us"]["p50"]
ol = s.get("open_loop", {})
print(f"1. 2000/s, 20 connections: corrected p50 {c:.1f} us, uncorrected p50 {u:.1f} us, "
      f"difference {c - u:.1f} us ({100 * (c - u) / u:.0f}%); target max(20 us, 15%) = "
      f"{max(20, 0.15 * u):.1f} us")
print(f"   backlog at end {ol.get('backlog_at_end')}, late sends {ol.get('late_sends')} of "
      f"{ol.get('sends')}", end="")
if "self_delay_us" in ol:
    d = ol["self_delay_us"]
    print(f", self-delay p50 {d['p50']:.1f} us p99 {d['p99']:.1f} us", end="")
print(f"; loadgen_bound {s.get('loadgen_bound')}; exit {sys.argv[2]}")
PY

# 2. The stall: SIGSTOP 2 s into the 3 s window, SIGCONT at its end.
taskset -c "$client_cpu" "$bin/muxload" --target "tcp:127.0.0.1:$port" --proto mux1 --conns 20 \
  --rate 2000 --duration 3 --warmup 0.5 --quiet --json "$work/stall.json" >"$work/events" &
loadgen_pid=$!
wait_for measure_start "$work/events" || { echo "muxload never started its window" >&2; exit 1; }
sleep 2
kill -STOP "$server_pid"
wait_for measure_end "$work/events" || true
kill -CONT "$server_pid"
status=0
wait "$loadgen_pid" || status=$?
loadgen_pid=
"$py" - "$work/stall.json" "$status" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
p = s["latency_us"]
print(f"2. server stopped for the window's last second: corrected p50 {p['p50']:.1f} us, "
      f"p99 {p['p99']:.1f} us, max {p['max']:.1f} us; requests {s['requests']}; "
      f"completed {s['completed']}; clean {s.get('clean', '(not reported)')}; exit {sys.argv[2]}")
for reason in s.get("not_clean_reasons", []):
    print(f"   not clean: {reason}")
PY
