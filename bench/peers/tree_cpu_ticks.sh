#!/usr/bin/env bash
# Prints the CPU ticks (utime+stime) of process ROOT and all its descendants, living and
# reaped: living ones from their own /proc/PID/stat, reaped ones through cutime+cstime of
# whoever reaped them. Usage: tree_cpu_ticks.sh ROOT_PID
set -euo pipefail
root=$1
# Fields after the ")" of /proc/PID/stat: 2=ppid ... 12=utime 13=stime 14=cutime 15=cstime.
for stat in /proc/[0-9]*/stat; do
  line=$(cat "$stat" 2>/dev/null) || continue
  pid=${line%% *}
  rest=${line##*) }
  echo "$pid $rest"
done | awk -v root="$root" '
  { ppid[$1] = $3; ticks[$1] = $13 + $14 + $15 + $16 }
  END {
    total = 0
    for (p in ticks) {
      q = p
      while (q != "" && q != 0 && q != root) q = ppid[q]
      if (q == root) total += ticks[p]
    }
    print total
  }'
