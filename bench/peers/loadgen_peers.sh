#!/usr/bin/env bash
# muxload against the peers the issue names, in one run (server on SERVER_CPU, clients on
# CLIENT_CPU):
#   1. http, CONNS connections (default 100), against muxserver epoll-et and nginx (1 worker):
#      muxload beside wrk;
#      client CPU per request is the client process's user+system time from /usr/bin/time.
#   2. mux1, 1 connection against epoll-et: muxload's p50 round trip beside
#      sockperf ping-pong's (sockperf prints half the round trip).
#   3. 16,000 idle + 100 active connections against epoll-et: muxload's ramp time.
# Usage: bench/peers/loadgen_peers.sh [DURATION_S]   (needs wrk, nginx-light, sockperf)
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-5}
conns=${CONNS:-100}  # http connections for both clients
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
bin=build/bin
work=$(mktemp -d)
py=$(plot/find-python 2>/dev/null || command -v python3)
cleanup() { jobs -p | xargs -r kill 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
source bench/peers/servers.sh

compare_http() {  # label
  local label=$1 out
  /usr/bin/time -f "%U %S" -o "$work/wrk.cpu" taskset -c "$client_cpu" \
    wrk -t1 -c"$conns" -d"${duration}s" --latency "http://127.0.0.1:$port/" >"$work/wrk.out"
  local wrk_rps wrk_req wrk_p50 wrk_cpu
  wrk_rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  wrk_req=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  wrk_p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.out")
  wrk_cpu=$(awk '{print ($1 + $2) * 1e6}' "$work/wrk.cpu")
  /usr/bin/time -f "%U %S" -o "$work/mux.cpu" taskset -c "$client_cpu" \
    $bin/muxload --target "tcp:127.0.0.1:$port" --proto http --conns "$conns" --threads 1 \
    --duration "$duration" --warmup 0 --quiet --json "$work/mux.json" >/dev/null || true
  "$py" - "$label" "$wrk_rps" "$wrk_req" "$wrk_p50" "$wrk_cpu" "$work/mux.json" "$work/mux.cpu" <<'PY'
import json, sys
label, wrk_rps, wrk_req, wrk_p50, wrk_cpu_us, mux_json, mux_cpu = sys.argv[1:]
def to_us(text):
    for unit, f in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if text.endswith(unit): return float(text[: -len(unit)]) * f
s = json.load(open(mux_json))["summary"]
u, k = map(float, open(mux_cpu).read().split())
mux_cpu_per_req = (u + k) * 1e6 / s["requests"]
wrk_cpu_per_req = float(wrk_cpu_us) / float(wrk_req)
print(f"{label:<10} wrk   {float(wrk_rps):>9.0f}/s  p50 {to_us(wrk_p50):>8.1f} us  cpu {wrk_cpu_per_req:5.2f} us/req")
print(f"{label:<10} muxload {s['throughput_per_s']:>7.0f}/s  p50 {s['latency_us']['p50']:>8.1f} us  cpu {mux_cpu_per_req:5.2f} us/req"
      f"  errors {s['errors_total']}  loadgen_bound {s['loadgen_bound']}")
print(f"{label:<10} muxload/wrk: throughput {s['throughput_per_s'] / float(wrk_rps):.3f}, "
      f"p50 {s['latency_us']['p50'] / to_us(wrk_p50):.3f}, cpu/req {mux_cpu_per_req / wrk_cpu_per_req:.3f}")
PY
}

echo "== 1. http, ${conns} connections, ${duration} s"
start_muxserver epoll-et http; compare_http "epoll-et"; stop_server
start_nginx 18081; compare_http "nginx"; stop_server

echo "== 2. round-trip floor, 1 connection, ${duration} s"
taskset -c "$server_cpu" sockperf server --tcp -i 127.0.0.1 -p 18082 >/dev/null 2>&1 &
sock_pid=$!
sleep 0.5
half_p50=$(taskset -c "$client_cpu" sockperf ping-pong --tcp -i 127.0.0.1 -p 18082 -t "$duration" -m 40 2>&1 |
  awk '/percentile 50.000/ {print $NF}')
kill "$sock_pid"; wait "$sock_pid" 2>/dev/null || true
start_muxserver epoll-et mux1
taskset -c "$client_cpu" $bin/muxload --target "tcp:127.0.0.1:$port" --proto mux1 --conns 1 \
  --payload 16 --duration "$duration" --warmup 0.5 --quiet --json "$work/rtt.json" >/dev/null || true
stop_server
"$py" - "$half_p50" "$work/rtt.json" <<'PY'
import json, sys
half, path = float(sys.argv[1]), sys.argv[2]
p50 = json.load(open(path))["summary"]["latency_us"]["p50"]
print(f"sockperf p50 half round trip {half:.1f} us -> round trip {2 * half:.1f} us; "
      f"muxload p50 {p50:.1f} us; ratio {p50 / (2 * half):.2f}")
PY

echo "== 3. 16,000 idle + 100 active connections"
start_muxserver epoll-et mux1
taskset -c "$client_cpu" $bin/muxload --target "tcp:127.0.0.1:$port" --proto mux1 --conns 16100 \
  --active 100 --duration 2 --warmup 0.5 --quiet --json "$work/scale.json" >/dev/null || true
stop_server
"$py" - "$work/scale.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
print(f"ramp {s['connect_time_s']:.2f} s for {s['connections']['at_start']} of "
      f"{s['connections']['wanted']} connections; {s['throughput_per_s']:.0f}/s; "
      f"errors {s['errors_total']}; completed {s['completed']}")
PY
