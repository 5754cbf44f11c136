#!/usr/bin/env bash
# wrk -c100 against every muxserver model (http) and against nginx with one worker, in one
# run: server pinned to SERVER_CPU, wrk to CLIENT_CPU. Prints requests/s and server CPU
# microseconds per request, read from /proc (never from the server itself).
# Usage: bench/peers/http_peers.sh [DURATION_S]    (needs nginx-light and wrk)
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-5}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
bin=build/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source bench/peers/servers.sh

measure() {  # name pid port
  local name=$1 pid=$2 port=$3
  # Warm up, then measure one window.
  taskset -c "$client_cpu" wrk -t1 -c100 -d1s "http://127.0.0.1:$port/" >/dev/null
  local before after out rps requests
  before=$(bash bench/peers/tree_cpu_ns.sh "$pid")
  out=$(taskset -c "$client_cpu" wrk -t1 -c100 -d"${duration}s" "http://127.0.0.1:$port/")
  after=$(bash bench/peers/tree_cpu_ns.sh "$pid")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  local errors
  errors=$(grep -E "Socket errors|Non-2xx" <<<"$out" | tr '\n' ' ' || true)
  awk -v n="$name" -v rps="$rps" -v req="$requests" -v ns=$((after - before)) -v e="$errors" \
    'BEGIN { printf "%-12s %12.0f %16.2f  %s\n", n, rps, ns / 1000 / req, e }'
}

printf "%-12s %12s %16s\n" server "requests/s" "cpu_us/request"
for model in $($bin/muxserver --list-models | awk '{print $1}'); do
  # blocking serves one of wrk's 100 connections until wrk closes it; wrk's figure is that
  # one connection's rate, and the other 99 wait unserved.
  start_muxserver "$model" http
  measure "$model" "$server_pid" "$port"
  stop_server
done

if command -v nginx >/dev/null; then
  start_nginx 18080
  measure "nginx(1w)" "$server_pid" "$port"
  stop_server
fi
