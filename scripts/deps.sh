#!/usr/bin/env bash
# Installs, from Debian's archive, whatever muxbench needs and this machine lacks.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  # build
  cmake g++ make git pkg-config
  # libraries
  libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev googletest libbenchmark-dev liburing-dev
  zlib1g-dev
  # charts and their tests (plot/ uses Debian's python3, not whatever python3 is on PATH)
  python3 python3-matplotlib python3-pytest
  # tools the tests and peer comparisons drive (Google Benchmark's compare.py reads our
  # gbench.json export in a test; it needs scipy)
  curl wrk procps util-linux libbenchmark-tools python3-scipy
  # scripts/fuzz.sh: clang's libFuzzer, and nodejs/http-parser as the HTTP second opinion
  clang libclang-rt-14-dev libhttp-parser-dev
)
if [[ "${MUXBENCH_PEERS:-0}" == 1 ]]; then
  packages+=(nginx-light sockperf nghttp2-client hyperfine time)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
