#!/usr/bin/env python3
"""A server's CPU over muxload's measured window, for servers the sweep does not start
(nginx): runs the muxload command given after `--` (with --hold-after-window), wakes at
the window's edges that muxload announces in advance (its `window` line, CLOCK_MONOTONIC),
and at each edge reads the user and system ticks of PIDS from /proc and switches a `perf
stat --control fifo:CTL,ACK` counter on or off, as the sweep reads its counters. Prints
"user_us system_us" over the window. Exits 1, saying why, when an edge was read more than
MAX_LAG_S late, perf did not answer, or muxload reported errors or failed (exit status other
than 0 or 4, not clean, which is printed as a warning).

    window_cost.py --ctl CTL --ack ACK --pids PID... -- muxload ... --hold-after-window
"""
import argparse
import json
import os
import select
import subprocess
import sys
import time

MAX_LAG_S = 0.05  # an edge read later than this would cut the window short by over 1.5%
ACK_TIMEOUT_S = 2.0


def ticks(pids):
    user = system = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        user += int(fields[11])  # utime, field 14 of proc(5), counting from the state at 3
        system += int(fields[12])  # stime
    return user, system


def sleep_until(ns):
    while (left := ns - time.clock_gettime_ns(time.CLOCK_MONOTONIC)) > 0:
        time.sleep(left / 1e9)


def perf_say(ctl, ack, word):
    os.write(ctl, (word + "\n").encode())
    ready, _, _ = select.select([ack], [], [], ACK_TIMEOUT_S)
    if not ready:
        sys.exit(f"window_cost: perf did not acknowledge '{word}' within {ACK_TIMEOUT_S} s")
    os.read(ack, 64)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ctl", required=True, help="perf's control fifo")
    p.add_argument("--ack", required=True, help="perf's acknowledgement fifo")
    p.add_argument("--pids", nargs="+", type=int, required=True, help="the server's processes")
    p.add_argument("load", nargs=argparse.REMAINDER, help="-- and the muxload command")
    args = p.parse_args()
    load = args.load[1:] if args.load[:1] == ["--"] else args.load
    if not load:
        p.error("no muxload command after --")
    ctl = os.open(args.ctl, os.O_RDWR)
    ack = os.open(args.ack, os.O_RDWR)
    hz = os.sysconf("SC_CLK_TCK")

    muxload = subprocess.Popen(load, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    edges = {}
    for line in muxload.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "window":
            for name, key in (("start", "start_ns"), ("end", "end_ns")):
                sleep_until(event[key])
                edge = {"ticks": ticks(args.pids)}
                perf_say(ctl, ack, "enable" if name == "start" else "disable")
                edge["lag_s"] = (time.clock_gettime_ns(time.CLOCK_MONOTONIC) - event[key]) / 1e9
                edges[name] = edge
            break
    muxload.stdin.close()  # ends --hold-after-window
    muxload.stdout.read()
    status = muxload.wait()

    if len(edges) != 2:
        sys.exit(f"window_cost: muxload gave no window (exit status {status})")
    late = {name: e["lag_s"] for name, e in edges.items() if e["lag_s"] > MAX_LAG_S}
    if late:
        sys.exit(f"window_cost: edges read late: {late} (more than {MAX_LAG_S} s)")
    if status not in (0, 4):
        sys.exit(f"window_cost: muxload exited {status}: errors or failed verification")
    if status == 4:
        print("window_cost: warning: muxload judged the run not clean", file=sys.stderr)
    (u0, s0), (u1, s1) = edges["start"]["ticks"], edges["end"]["ticks"]
    print((u1 - u0) * 1e6 / hz, (s1 - s0) * 1e6 / hz)


if __name__ == "__main__":
    main()
