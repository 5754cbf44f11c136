#!/usr/bin/env bash
# wrk -c100 against every muxserver model (http) and against nginx with one worker, in one
# run: server pinned to SERVER_CPU, wrk to CLIENT_CPU. Prints requests/s and server CPU
# microseconds per request: the CPU of a cgroup the server runs in, over wrk's run, so every
# process and thread it had is counted, fork's children and threads' threads that exited
# before the end included (never from the server itself). Needs root for the cgroup.
# Usage: bench/peers/http_peers.sh [DURATION_S]    (needs nginx-light and wrk)
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-5}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
bin=build/bin
work=$(mktemp -d)
source bench/peers/servers.sh
server_cgroup=$(make_server_cgroup)
trap 'rmdir "$server_cgroup" 2>/dev/null; rm -rf "$work"' EXIT

measure() {  # name port
  local name=$1 port=$2
  # Warm up, then measure one window.
  taskset -c "$client_cpu" wrk -t1 -c100 -d1s "http://127.0.0.1:$port/" >/dev/null
  local before after out rps requests
  before=$(server_cgroup_cpu_ns)
  out=$(taskset -c "$client_cpu" wrk -t1 -c100 -d"${duration}s" "http://127.0.0.1:$port/")
  after=$(server_cgroup_cpu_ns)
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
  measure "$model" "$port"
  stop_server
done

if command -v nginx >/dev/null; then
  start_nginx 18080
  measure "nginx(1w)" "$port"
  stop_server
fi
