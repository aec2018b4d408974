#!/usr/bin/env python3
"""Long-lived HTTP/1.1 connections through a virtual service across a failover.

    failover_client.py VIP PORT CONNS SECONDS [INTERVAL_S]

Opens CONNS keep-alive connections, then on each (one thread per connection) sends a request
every INTERVAL_S (default 0.05) for SECONDS, waiting for each answer (a request caught by the
failover is retransmitted by TCP until the new master forwards it). Writes "ready" on stderr once
every connection is open. Prints JSON on stdout:
  {"conns": N, "requests": total answered, "errors": ["conn 3: ConnectionResetError ..."],
   "servers": [[distinct bodies seen on connection 0], ...], "max_gap_ms": the longest wait for
   an answer on any connection}
Every socket operation has a timeout (15 s), so the script cannot hang.
"""
import json
import socket
import sys
import threading
import time

from lb_client import request


def main():
    vip, port, conns, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05
    socks = [socket.create_connection((vip, port), timeout=15) for _ in range(conns)]
    servers = [[] for _ in range(conns)]
    errors = []
    counts = [0] * conns
    gaps = [0.0] * conns
    sys.stderr.write("ready\n")
    sys.stderr.flush()
    end = time.monotonic() + seconds

    def run(i):
        s = socks[i]
        try:
            while time.monotonic() < end:
                t0 = time.monotonic()
                body = request(s)
                gaps[i] = max(gaps[i], time.monotonic() - t0)
                counts[i] += 1
                if body not in servers[i]:
                    servers[i].append(body)
                time.sleep(interval)
        except Exception as e:  # noqa: BLE001 - every failure is a result to report
            errors.append(f"conn {i}: {type(e).__name__} {e}")
        finally:
            s.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"conns": conns, "requests": sum(counts), "errors": errors,
                      "servers": servers, "max_gap_ms": round(max(gaps) * 1000, 1)}))


if __name__ == "__main__":
    main()
