#!/usr/bin/env bash
# muxload beside wrk, in one run, against nginx (one worker) serving:
#   return200  a `return 200 "muxbench\n"` location          GET /
#   static     a 4,096-byte static file (muxserver's /bytes/N pattern, so muxload verifies
#              every byte of nginx's reply)                    GET /bytes/4096
# Server on SERVER_CPU, each client in turn on CLIENT_CPU, both clients with one thread and
# CONNS connections for DURATION_S. Prints each client's throughput and its CPU per request:
# the client process's user+system time (/usr/bin/time) over the requests it completed, so
# both are charged for their whole run, setup included; muxload's own window-only figure
# (loadgen_process_cpu_us) is printed beside it.
# Usage: bench/peers/loadgen_vs_wrk.sh [DURATION_S]   (BIN=build/bin; needs wrk, nginx-light)
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-5}
conns=${CONNS:-100}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
bin=${BIN:-build/bin}
port=${PORT:-18090}
work=$(mktemp -d)
py=$(plot/find-python 2>/dev/null || command -v python3)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The static file: muxserver's GET /bytes/N body, a-z repeated.
mkdir -p "$work/www/bytes" "$work/nginx"
"$py" -c "import sys; sys.stdout.write(''.join(chr(97 + i % 26) for i in range(4096)))" \
  >"$work/www/bytes/4096"
chmod a+x "$work" && chmod -R a+rX "$work/www"  # nginx's worker does not run as root
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$port;
    location = / { default_type text/plain; return 200 "muxbench\n"; }
    location /bytes/ { root $work/www; default_type application/octet-stream; }
  }
}
CONF
taskset -c "$server_cpu" nginx -c "$work/nginx.conf" -p "$work" &
server_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$port/bytes/4096" | cmp -s - "$work/www/bytes/4096" ||
  { echo "nginx does not serve the static file" >&2; exit 1; }

compare() {  # label path
  local label=$1 path=$2 url="http://127.0.0.1:$port$2"
  /usr/bin/time -f "%U %S" -o "$work/wrk.cpu" taskset -c "$client_cpu" \
    wrk -t1 -c"$conns" -d"${duration}s" "$url" >"$work/wrk.out"
  local status=0
  /usr/bin/time -f "%U %S" -o "$work/mux.cpu" taskset -c "$client_cpu" \
    "$bin/muxload" --target "$url" --conns "$conns" --threads 1 --duration "$duration" \
    --warmup 0 --quiet --json "$work/mux.json" >/dev/null || status=$?
  "$py" - "$label" "$work/wrk.out" "$work/wrk.cpu" "$work/mux.json" "$work/mux.cpu" "$status" <<'PY'
import json, re, sys
label, wrk_out, wrk_cpu, mux_json, mux_cpu, status = sys.argv[1:]
out = open(wrk_out).read()
wrk_rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
wrk_req = int(re.search(r"(\d+) requests in", out).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errors = re.search(r"Socket errors: (.*)", out)
u, k = map(float, open(wrk_cpu).read().split()[-2:])
wrk_cpu_req = (u + k) * 1e6 / max(wrk_req, 1)
doc = json.load(open(mux_json))
s = doc["summary"]
u, k = map(float, open(mux_cpu).read().split()[-2:])
mux_cpu_req = (u + k) * 1e6 / max(s["requests"], 1)
window_cpu = s.get("loadgen_process_cpu_us")
window_note = f", {window_cpu / max(s['requests'], 1):.2f} in its window" if window_cpu else ""
print(f"{label:<10} wrk      {wrk_rps:>9.0f}/s  client cpu {wrk_cpu_req:5.2f} us/request"
      + (f"  non-2xx {bad.group(1)}" if bad else "") + (f"  socket errors: {errors.group(1)}" if errors else ""))
print(f"{label:<10} muxload  {s['throughput_per_s']:>9.0f}/s  client cpu {mux_cpu_req:5.2f} us/request{window_note}"
      f"  verify {doc['config'].get('verify', 'full')}  errors {s['errors_total']}  exit {status}")
print(f"{label:<10} muxload/wrk: throughput {s['throughput_per_s'] / wrk_rps:.3f}, "
      f"cpu/request {mux_cpu_req / wrk_cpu_req:.3f}")
PY
}

echo "== nginx (1 worker, cpu $server_cpu); clients on cpu $client_cpu, 1 thread, $conns connections, $duration s"
compare return200 /
compare static /bytes/4096
