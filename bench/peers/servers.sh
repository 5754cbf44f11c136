# Sourced by the peer scripts: start a pinned muxserver or nginx (1 worker) and stop it.
# Expects $work (a scratch folder), $server_cpu and $bin; sets $server_pid and $port.
# With $server_cgroup set (a cgroup v2 folder, made by make_server_cgroup), the server starts
# inside it, so every process and thread it ever has is counted in its cpu.stat.

# A cgroup v2 group of this script's own for the servers, removed at exit; prints its path.
# The kernel keeps cpu.stat in every v2 group, controllers or not.
make_server_cgroup() {
  local root
  root=$(findmnt -n -t cgroup2 -o TARGET | head -1)
  [[ -n $root && -w $root ]] || { echo "no writable cgroup v2 hierarchy (root needed)" >&2; return 1; }
  mkdir "$root/muxpeers-$$" && echo "$root/muxpeers-$$"
}

# The group's CPU time so far, in ns.
server_cgroup_cpu_ns() {
  awk '$1 == "usage_usec" { printf "%.0f\n", $2 * 1000 }' "$server_cgroup/cpu.stat"
}

# Runs COMMAND... in $server_cgroup when it is set.
in_server_cgroup() {
  [[ -n ${server_cgroup:-} ]] && echo "$BASHPID" >"$server_cgroup/cgroup.procs"
  exec "$@"
}

start_muxserver() {  # MODEL PROTO
  (in_server_cgroup taskset -c "$server_cpu" "$bin/muxserver" --model "$1" --proto "$2" \
    --listen tcp:127.0.0.1:0 >"$work/ready") &
  server_pid=$!
  for _ in $(seq 100); do [[ -s $work/ready ]] && break; sleep 0.05; done
  port=$(sed -n 's/.*"endpoint":"tcp:127.0.0.1:\([0-9]*\)".*/\1/p' "$work/ready")
}

# nginx with one worker, no access log, answering GET / and GET /bytes/64 with the same
# bodies as muxserver, and keeping a keep-alive connection for good (its default closes one
# after 1,000 requests, a reconnect the models never pay).
start_nginx() {  # PORT
  port=$1
  mkdir -p "$work/nginx"
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
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:$port;
    default_type text/plain;
    location / { return 200 "muxbench\n"; }
    location = /bytes/64 { return 200 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"; }
  }
}
CONF
  (in_server_cgroup taskset -c "$server_cpu" nginx -c "$work/nginx.conf" -p "$work") &
  server_pid=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.05; done
}

stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" >/dev/null 2>&1 || true
}
