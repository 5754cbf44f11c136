#!/usr/bin/env bash
# The figures behind the README's "io_uring against epoll on this machine", in one table:
# every model's server CPU per request, split user/kernel, and its system calls per request,
# at 1, 100 and 1,000 loaded connections and at 10 loaded + 1,000 idle (mux1 GEN: 64-byte
# requests, 64-byte generated replies), then every model and nginx (nginx-light, 1 worker)
# at HTTP with 100 connections, all asked GET /bytes/64 (nginx: a `return 200` location
# with muxserver's 64-byte body, so muxload verifies it in full, as it does the models').
# - The models' figures are the sweep's own: kernel counters on the server's whole tree
#   (results/README.md, server_cost), the median of REPEATS (1) repeats per point.
# - nginx runs outside the sweep, and so, beside it, do io-uring and epoll-et, each read the
#   same way (bench/peers/window_cost.py): at the edges of muxload's window, CPU from the
#   processes' user and system ticks in /proc, system calls from one perf raw_syscalls
#   count, each divided by the requests muxload completed in the window. These rows compare
#   nginx with the models under the same instrument; the sweep's own counters are heavier.
# - REPEATS (1) repeats of every point, in turns outside the sweep; medians are shown.
# Server on SERVER_CPU (0), client on CLIENT_CPU (1); each point DURATION (3) seconds after
# WARMUP (0.5). Figures taken on a busy machine are for development only.
# Usage: bench/peers/io_uring_vs_epoll.sh   (needs a Release build, nginx-light, linux-perf)
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${DURATION:-3}
warmup=${WARMUP:-0.5}
repeats=${REPEATS:-1}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
bin=build/bin
work=$(mktemp -d)
server_pid=
trap '[[ -n $server_pid ]] && stop_server; rm -rf "$work"' EXIT
source bench/peers/servers.sh

sweep() {  # RUN_NAME SWEEP_ARGS...
  local name=$1
  shift
  echo "io_uring_vs_epoll: sweep $name ($*)" >&2
  "$bin/muxbench" sweep --server-cpus "$server_cpu" --client-cpus "$client_cpu" \
    --duration "$duration" --warmup "$warmup" --repeats "$repeats" --out "$work" --run-name "$name" \
    "$@" >"$work/$name.log"
}

# A server the sweep does not start, at HTTP c=100, GET /bytes/64 as the sweep sends the
# models (the same 64-byte body, verified in full): nginx, and muxserver models measured the
# same way, so the counting itself weighs alike on both sides (the sweep's own counters are
# more: three tracepoint counts and a cgroup). Prints "user_us system_us syscalls requests
# throughput_per_s reconnects" over muxload's measured window. bench/peers/window_cost.py
# reads it as the sweep does: it wakes at the window's edges, which muxload announces in
# advance, reads the server's processes' ticks there and switches perf's syscall count on and
# off through its control fifo, and refuses a run read late or whose load had errors.
external_point() {  # nginx | MODEL; runs in a subshell, $(external_point ...), whose trap
  local perf_pid=     # stops what it started
  trap '[[ -n ${server_pid:-} ]] && stop_server; [[ -n ${perf_pid:-} ]] && kill -INT "$perf_pid" 2>/dev/null' EXIT
  if [[ $1 == nginx ]]; then start_nginx 18080; else start_muxserver "$1" http; fi
  local pids
  pids=("$server_pid" $(pgrep -P "$server_pid"))
  rm -f "$work/ctl" "$work/ack"
  mkfifo "$work/ctl" "$work/ack"
  perf stat -x, -e raw_syscalls:sys_enter -p "$(IFS=,; echo "${pids[*]}")" -D -1 \
    --control "fifo:$work/ctl,$work/ack" -o "$work/perf.csv" &
  perf_pid=$!
  local status=0 cpu
  cpu=$(taskset -c "$client_cpu" python3 bench/peers/window_cost.py --ctl "$work/ctl" \
    --ack "$work/ack" --pids "${pids[@]}" -- "$bin/muxload" \
    --target "http://127.0.0.1:$port/bytes/64" --conns 100 --duration "$duration" \
    --warmup "$warmup" --quiet --hold-after-window --json "$work/external.json") || status=$?
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" || true
  perf_pid=
  stop_server
  server_pid=
  ((status == 0)) || { echo "io_uring_vs_epoll: the $1 row is left out (above: why)" >&2; return 1; }
  python3 - "$work/external.json" "$work/perf.csv" "$cpu" <<'PY'
import json, sys
report, perf, cpu = sys.argv[1:]
summary = json.load(open(report))["summary"]
calls = next(int(float(l.split(",")[0])) for l in open(perf) if "raw_syscalls" in l)
user_us, system_us = map(float, cpu.split())
print(user_us, system_us, calls, summary["requests"], summary["throughput_per_s"],
      summary["connections"]["reconnects"])
PY
}

sweep mux1 --proto mux1 --scenarios active,idle --conns 1,100,1000 --idle-conns 1000 --idle-active 10
sweep http --proto http --scenarios active --conns 100
external=""  # "NAME row" per repeat, in turns
if command -v nginx >/dev/null && command -v perf >/dev/null; then
  for ((i = 0; i < repeats; i++)); do
    for name in nginx io-uring epoll-et; do
      echo "io_uring_vs_epoll: $name at http c=100 outside the sweep, repeat $((i + 1)) of $repeats" >&2
      row=$(external_point "$name") && external+="$name $row"$'\n'
    done
  done
else
  echo "io_uring_vs_epoll: no nginx or perf here; the rows measured outside the sweep are left out" >&2
fi

python3 - "$work/mux1/results.json" "$work/http/results.json" "$external" <<'PY'
import json, sys
mux1, http, external = sys.argv[1:]
points = [("mux1", "active", 1, "1 loaded"), ("mux1", "active", 100, "100 loaded"),
          ("mux1", "active", 1000, "1000 loaded"), ("mux1", "idle", 1000, "10 + 1000 idle"),
          ("http", "active", 100, "http c=100")]
runs = {name: json.load(open(path)) for name, path in (("mux1", mux1), ("http", http))}
models = list(dict.fromkeys(e["model"] for e in runs["mux1"]["summary"]))
not_ok = set()

def cell(entry):
    if entry is None:
        return "–"
    if entry["status"] != "ok":
        not_ok.add(f"{entry['model']}: {entry['status']} ({entry.get('reason', {}).get('code', '?')})")
        return entry["status"]
    m = entry["metrics"]
    v = lambda k: m[k]["median"] if m.get(k) and m[k].get("median") is not None else float("nan")
    return (f"{v('cpu_user_us_per_request'):5.1f}+{v('cpu_sys_us_per_request'):5.1f} us "
            f"{v('syscalls_per_request'):5.2f} sc")

print("server CPU per request, user+kernel (us), and syscalls per request (sc); "
      "from the kernel's counters")
header = f"{'model':<14}" + "".join(f"{label:>26}" for *_, label in points)
print(header)
for model in models:
    row = f"{model:<14}"
    for run, scenario, x, _ in points:
        entry = next((e for e in runs[run]["summary"] if e["model"] == model and
                      e["scenario"] == scenario and e["x_value"] == x), None)
        row += f"{cell(entry):>26}"
    print(row)
measured = {}
for line in external.splitlines():
    if line.strip():
        name, *row = line.split()
        measured.setdefault(name, []).append(list(map(float, row)))
if measured:
    print("measured outside the sweep, the same way for each: CPU from the processes' /proc ticks, "
          "syscalls from one perf raw_syscalls count, both read at the edges of muxload's window")
for name, rows in measured.items():
    # The median repeat by CPU per request.
    rows.sort(key=lambda r: (r[0] + r[1]) / r[3])
    user_us, sys_us, calls, requests, rate, reconnects = rows[len(rows) // 2]
    text = f"{user_us / requests:5.1f}+{sys_us / requests:5.1f} us {calls / requests:5.2f} sc"
    label = "nginx (1w)" if name == "nginx" else f"{name} (ext)"
    print(f"{label:<14}" + "".join(f"{'':>26}" for _ in points[:-1]) + f"{text:>26}")
    spread = ", ".join(f"{(r[0] + r[1]) / r[3]:.1f}" for r in rows)
    print(f"  {name}: {len(rows)} repeats, CPU per request {spread} us; the median one {rate:.0f} "
          f"requests/s, {requests:.0f} requests in the window, {reconnects:.0f} reconnects")
for line in sorted(not_ok):
    print(line)
PY
