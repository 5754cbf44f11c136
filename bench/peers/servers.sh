# Sourced by the peer scripts: start a pinned muxserver or nginx (1 worker) and stop it.
# Expects $work (a scratch folder), $server_cpu and $bin; sets $server_pid and $port.

start_muxserver() {  # MODEL PROTO
  taskset -c "$server_cpu" "$bin/muxserver" --model "$1" --proto "$2" --listen tcp:127.0.0.1:0 >"$work/ready" &
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
  taskset -c "$server_cpu" nginx -c "$work/nginx.conf" -p "$work" &
  server_pid=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.05; done
}

stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" >/dev/null 2>&1 || true
}
