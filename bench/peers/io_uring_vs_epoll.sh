#!/usr/bin/env bash
# The figures behind the README's "io_uring against epoll on this machine", in one table:
# every model's server CPU per request, split user/kernel, and its system calls per request,
# at 1, 100 and 1,000 loaded connections and at 10 loaded + 1,000 idle (mux1, 64-byte echo),
# then every model and nginx (nginx-light, 1 worker, a `return 200` location) at HTTP with
# 100 connections.
# - The models' figures are the sweep's own: kernel counters on the server's whole tree
#   (results/README.md, server_cost), one repeat per point.
# - nginx runs outside the sweep, driven by muxload --verify framing: its CPU is the user and
#   system ticks of its processes in /proc over muxload's measured window (the sweep splits
#   the cgroup's CPU by the same ticks), its system calls perf's count of raw_syscalls over
#   the same window, each divided by the requests muxload completed in it.
# Server on SERVER_CPU (0), client on CLIENT_CPU (1); each point DURATION (3) seconds after
# WARMUP (0.5). Figures taken on a busy machine are for development only.
# Usage: bench/peers/io_uring_vs_epoll.sh   (needs a Release build, nginx-light, linux-perf)
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${DURATION:-3}
warmup=${WARMUP:-0.5}
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
    --duration "$duration" --warmup "$warmup" --repeats 1 --out "$work" --run-name "$name" \
    "$@" >"$work/$name.log"
}

# The user and system ticks of processes PIDS..., summed: "utime stime".
ticks() {
  local pid user=0 system=0 fields
  for pid in "$@"; do
    fields=$(cut -d')' -f2- "/proc/$pid/stat")
    read -r _ _ _ _ _ _ _ _ _ _ _ u s _ <<<"$fields"
    user=$((user + u))
    system=$((system + s))
  done
  echo "$user $system"
}

# nginx at HTTP c=100: prints "user_us system_us syscalls requests throughput_per_s", each
# over muxload's measured window. perf counts from the window's start to its end: it is
# attached before the load starts, disabled, and enabled and disabled through its control
# fifo when muxload says the window starts and ends.
nginx_point() {
  start_nginx 18080
  local pids
  pids=("$server_pid" $(pgrep -P "$server_pid"))
  mkfifo "$work/ctl" "$work/ack"
  perf stat -x, -e raw_syscalls:sys_enter -p "$(IFS=,; echo "${pids[*]}")" -D -1 \
    --control "fifo:$work/ctl,$work/ack" -o "$work/perf.csv" &
  local perf_pid=$! ctl ack before= after=
  exec {ctl}<>"$work/ctl" {ack}<>"$work/ack"
  perf_say() { echo "$1" >&"$ctl"; read -r -t 5 _ <&"$ack" || true; }
  coproc load {
    exec taskset -c "$client_cpu" "$bin/muxload" --target "tcp:127.0.0.1:$port" --proto http \
      --conns 100 --duration "$duration" --warmup "$warmup" --verify framing --quiet \
      --hold-after-window --json "$work/nginx.json"
  }
  local load_pid=$load_PID
  while read -r line <&"${load[0]}"; do
    case $line in
      *'"measure_start"'*)
        perf_say enable
        before=$(ticks "${pids[@]}")
        ;;
      *'"measure_end"'*)
        after=$(ticks "${pids[@]}")
        perf_say disable
        break
        ;;
    esac
  done
  eval "exec ${load[1]}>&-"  # muxload held its connections until now
  wait "$load_pid" || true
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" || true
  stop_server
  server_pid=
  [[ -n $before && -n $after ]] || { echo "io_uring_vs_epoll: muxload gave no window" >&2; return 1; }
  python3 - "$work/nginx.json" "$work/perf.csv" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
report, perf, before, after, hz = sys.argv[1:]
summary = json.load(open(report))["summary"]
calls = next(int(float(l.split(",")[0])) for l in open(perf) if "raw_syscalls" in l)
(u0, s0), (u1, s1) = (map(int, x.split()) for x in (before, after))
us = lambda t: t * 1e6 / int(hz)
print(us(u1 - u0), us(s1 - s0), calls, summary["requests"], summary["throughput_per_s"])
PY
}

sweep mux1 --proto mux1 --scenarios active,idle --conns 1,100,1000 --idle-conns 1000 --idle-active 10
sweep http --proto http --scenarios active --conns 100
nginx=""
if command -v nginx >/dev/null && command -v perf >/dev/null; then
  nginx=$(nginx_point) || nginx=""
else
  echo "io_uring_vs_epoll: no nginx or perf here; nginx's row is left out" >&2
fi

python3 - "$work/mux1/results.json" "$work/http/results.json" "$nginx" <<'PY'
import json, sys
mux1, http, nginx = sys.argv[1:]
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
if nginx:
    user_us, sys_us, calls, requests, rate = map(float, nginx.split())
    text = f"{user_us / requests:5.1f}+{sys_us / requests:5.1f} us {calls / requests:5.2f} sc"
    print(f"{'nginx (1w)':<14}" + "".join(f"{'':>26}" for _ in points[:-1]) + f"{text:>26}")
    print(f"nginx: {rate:.0f} requests/s, {requests:.0f} requests in the window; CPU from its "
          "processes' /proc ticks, syscalls from perf, both over muxload's window")
for line in sorted(not_ok):
    print(line)
PY
