#!/usr/bin/env bash
# Prints the CPU time, in ns, of process ROOT and all its descendants, living and reaped.
# Living tasks: their exact run time from /proc/PID/task/TID/schedstat (utime and stime are
# whole ticks per process, which loses most of the CPU of many small fork children).
# Reaped ones: cutime + cstime of whoever reaped them, summed exactly in the kernel.
# Usage: tree_cpu_ns.sh ROOT_PID
set -euo pipefail
root=$1
hz=$(getconf CLK_TCK)
for stat in /proc/[0-9]*/stat; do
  dir=${stat%/stat}
  line=$(cat "$stat" 2>/dev/null) || continue
  runtime=0
  for s in "$dir"/task/*/schedstat; do
    read -r ns _ <"$s" 2>/dev/null || continue
    runtime=$((runtime + ns))
  done
  rest=${line##*) }
  echo "${line%% *} $runtime $rest"
done | awk -v root="$root" -v hz="$hz" '
  # $1 pid, $2 runtime ns, then stat fields from state: $4 ppid, $16 cutime, $17 cstime.
  { ppid[$1] = $4; ns[$1] = $2 + ($16 + $17) * (1e9 / hz) }
  END {
    total = 0
    for (p in ns) {
      q = p
      while (q != "" && q != 0 && q != root) q = ppid[q]
      if (q == root) total += ns[p]
    }
    printf "%.0f\n", total
  }'
