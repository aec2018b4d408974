#!/usr/bin/env python3
"""Long-lived and new HTTP/1.1 connections through a virtual service, for test_lb.sh.

    lb_client.py VIP PORT LONG ROUNDS

Opens LONG keep-alive connections, then for ROUNDS rounds sends one request on every long
connection and opens one new short connection. Prints JSON:
  {"long": [[bodies of connection 0], ...], "new": [bodies of the short connections]}
Every socket operation has a timeout, so the script cannot hang.
"""
import json
import socket
import sys


def request(sock):
    sock.sendall(b"GET / HTTP/1.1\r\nHost: lb\r\nConnection: keep-alive\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the headers")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return body[:length].decode().strip()


def connect(vip, port):
    return socket.create_connection((vip, port), timeout=3)


def main():
    vip, port, n_long, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    longs = [connect(vip, port) for _ in range(n_long)]
    out = {"long": [[] for _ in longs], "new": []}
    for _ in range(rounds):
        for i, s in enumerate(longs):
            out["long"][i].append(request(s))
        with connect(vip, port) as s:
            out["new"].append(request(s))
    for s in longs:
        s.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
