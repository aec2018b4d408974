#!/usr/bin/env python3
"""A fast ICMP echo probe for measuring failover blackouts.

usage: probe.py DST [--interval-ms 10] [--max-seconds 60] [--out FILE]
       probe.py --analyze FILE [--since T] [--until T]

Probe mode sends an ICMP echo request to DST every --interval-ms milliseconds from a
raw socket (run it inside the client's namespace as root) and appends the wall-clock
time (time.time(), seconds) of every echo reply to --out, one per line, flushed at once,
so that a shell script can watch progress while it runs. It stops on SIGTERM/SIGINT or
after --max-seconds and then prints one JSON summary line to stdout:
  {"sent": N, "received": N, "max_gap_ms": G, "first_reply": T, "last_reply": T}

Analyze mode reads such a file and prints one JSON line with the largest gap between
consecutive replies among those received in [--since, --until] (the gap that straddles
--since is included: its earlier reply may be before --since), and when that gap began:
  {"replies": N, "max_gap_ms": G, "gap_start": T, "gap_end": T}
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from wire import csum  # noqa: E402  (tests/e2e/wire.py)


def echo_request(ident: int, seq: int) -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq & 0xFFFF) + b"tandem-probe...."
    return body[:2] + struct.pack("!H", csum(body)) + body[4:]


def max_gap(times):
    best = (0.0, None, None)
    for a, b in zip(times, times[1:]):
        if b - a > best[0]:
            best = (b - a, a, b)
    return best


def analyze(path, since, until):
    with open(path) as f:
        times = [float(x) for x in f.read().split()]
    times.sort()
    if since is not None:
        before = [t for t in times if t < since]
        times = ([before[-1]] if before else []) + [t for t in times if t >= since]
    if until is not None:
        times = [t for t in times if t <= until]
    gap, a, b = max_gap(times)
    print(json.dumps({"replies": len(times), "max_gap_ms": round(gap * 1000, 1),
                      "gap_start": a, "gap_end": b}))
    return 0


def probe(dst, interval, max_seconds, out_path):
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setblocking(False)
    ident = os.getpid() & 0xFFFF
    out = open(out_path, "a", buffering=1) if out_path else None
    stop = False

    def on_signal(_signo, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sent = received = seq = 0
    times = []
    seen = set()
    start = time.monotonic()
    next_send = start
    while not stop and time.monotonic() - start < max_seconds:
        now = time.monotonic()
        if now >= next_send:
            try:
                sock.sendto(echo_request(ident, seq), (dst, 0))
                sent += 1
            except OSError:
                pass  # e.g. no ARP answer yet (EHOSTUNREACH): count as lost
            seq += 1
            next_send += interval
            if next_send < now:  # we fell behind (scheduling): do not burst
                next_send = now + interval
        timeout = max(0.0, next_send - time.monotonic())
        try:
            r, _, _ = select.select([sock], [], [], timeout)
        except InterruptedError:
            continue
        if not r:
            continue
        while True:
            try:
                pkt, addr = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                break
            t = time.time()
            ihl = (pkt[0] & 0x0F) * 4
            if len(pkt) < ihl + 8 or addr[0] != dst:
                continue
            typ, _code, _ck, rid, rseq = struct.unpack("!BBHHH", pkt[ihl:ihl + 8])
            if typ != 0 or rid != ident or rseq in seen:
                continue
            seen.add(rseq)
            received += 1
            times.append(t)
            if out:
                out.write(f"{t:.6f}\n")
    gap, _, _ = max_gap(times)
    print(json.dumps({"sent": sent, "received": received, "max_gap_ms": round(gap * 1000, 1),
                      "first_reply": times[0] if times else None,
                      "last_reply": times[-1] if times else None}), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dst", nargs="?")
    ap.add_argument("--interval-ms", type=float, default=10.0)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--out")
    ap.add_argument("--analyze")
    ap.add_argument("--since", type=float)
    ap.add_argument("--until", type=float)
    a = ap.parse_args()
    if a.analyze:
        return analyze(a.analyze, a.since, a.until)
    if not a.dst:
        ap.error("DST is required")
    return probe(a.dst, a.interval_ms / 1000.0, a.max_seconds, a.out)


if __name__ == "__main__":
    sys.exit(main())
