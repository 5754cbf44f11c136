#!/usr/bin/env bash
# The README's main command: installs what is missing, builds Release, runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh release
# Until the sweep driver lands: start one server per model and drive it over HTTP.
for model in $(build/bin/muxserver --list-models | awk '{print $1}'); do
  ready=$(mktemp)
  build/bin/muxserver --model "$model" --proto http --listen tcp:127.0.0.1:0 >"$ready" &
  pid=$!
  for _ in $(seq 50); do [[ -s $ready ]] && break; sleep 0.1; done
  port=$(sed -n 's/.*"endpoint":"tcp:127.0.0.1:\([0-9]*\)".*/\1/p' "$ready")
  echo "== $model"
  wrk -t1 -c10 -d2s "http://127.0.0.1:$port/" | grep -E "Requests/sec|Latency"
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$ready"
done
