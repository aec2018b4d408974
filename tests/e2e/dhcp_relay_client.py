#!/usr/bin/env python3
"""DHCP clients behind a relay, and a RENEWING client, that record what the server ACKed.

    dhcp_relay_client.py dora --relay IP --server IP --count N --prefix HEX4 [--window W]
                              [--seconds S]
        N clients with MACs 02:PP:PP:00:HH:LL (PP:PP = --prefix) do DISCOVER/OFFER/REQUEST/ACK
        through the relay address (giaddr = --relay, replies to UDP port 67 of this host), at most
        W exchanges at a time, each retried (up to 4 sends, 1 s apart) until ACK or NAK. Stops at
        N clients or S seconds. Writes "ready" to stderr first.
    dhcp_relay_client.py renew --client-ip IP --mac MAC --server IP
        One REQUEST in RENEWING state (ciaddr = IP) unicast from IP:68 to the server id:67.

Prints JSON: {"acked": [[mac, ip], ...], "naks": n, "failed": n, "elapsed_s": s}
(renew: {"acked": [[mac, ip]] or [], "naks": 0|1, "failed": 0|1}).
"""
import argparse
import json
import random
import select
import socket
import struct
import sys
import time

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(":"))


def mac_text(b):
    return ":".join(f"{x:02x}" for x in b)


def message(kind, xid, mac, giaddr=b"\0" * 4, ciaddr=b"\0" * 4, requested=None, server=None,
            hops=0):
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, hops, xid, 0, 0, ciaddr,
                       b"\0" * 4, b"\0" * 4, giaddr, mac + b"\0" * 10, b"", b"")
    opts = bytes([53, 1, kind])
    opts += bytes([61, 7, 1]) + mac
    if requested:
        opts += bytes([50, 4]) + requested
    if server:
        opts += bytes([54, 4]) + server
    opts += bytes([55, 3, 1, 3, 6, 255])
    return head + MAGIC + opts


def parse(data):
    """(xid, chaddr, yiaddr, type, server id) of a BOOTREPLY, or None."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    xid = struct.unpack("!I", data[4:8])[0]
    yiaddr = data[16:20]
    chaddr = data[28:34]
    kind, sid = None, None
    i = 240
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        ln = data[i + 1]
        val = data[i + 2:i + 2 + ln]
        if code == 53 and ln == 1:
            kind = val[0]
        elif code == 54 and ln == 4:
            sid = val
        i += 2 + ln
    return xid, chaddr, yiaddr, kind, sid


def dora(a):
    relay = socket.inet_aton(a.relay)
    prefix = bytes.fromhex(a.prefix)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.relay, 67))
    s.setblocking(False)
    server = (a.server, 67)
    start = time.monotonic()
    deadline = start + a.seconds
    # client index -> state
    pending = {}  # xid -> [index, phase, sends, next_send, offered ip, server id]
    next_client = 0
    acked, naks, failed = [], 0, 0
    sys.stderr.write("ready\n")
    sys.stderr.flush()

    def mac_of(i):
        return b"\x02" + prefix + bytes([0, (i >> 8) & 255, i & 255])

    def send(entry, xid, now):
        i, phase, _, _, offered, sid = entry
        mac = mac_of(i)
        if phase == "discover":
            m = message(DISCOVER, xid, mac, giaddr=relay, hops=1)
        else:
            m = message(REQUEST, xid, mac, giaddr=relay, requested=offered, server=sid, hops=1)
        s.sendto(m, server)
        entry[2] += 1
        entry[3] = now + 1.0

    while time.monotonic() < deadline and (next_client < a.count or pending):
        now = time.monotonic()
        while len(pending) < a.window and next_client < a.count:
            xid = random.getrandbits(32)
            entry = [next_client, "discover", 0, 0.0, None, None]
            pending[xid] = entry
            send(entry, xid, now)
            next_client += 1
        r, _, _ = select.select([s], [], [], 0.02)
        if r:
            while True:
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    break
                p = parse(data)
                if not p or p[0] not in pending:
                    continue
                xid, chaddr, yiaddr, kind, sid = p
                entry = pending[xid]
                if kind == OFFER and entry[1] == "discover":
                    entry[1], entry[2], entry[4], entry[5] = "request", 0, yiaddr, sid
                    send(entry, xid, time.monotonic())
                elif kind == ACK and entry[1] == "request":
                    acked.append([mac_text(chaddr), socket.inet_ntoa(yiaddr)])
                    del pending[xid]
                elif kind == NAK:
                    naks += 1
                    del pending[xid]
        now = time.monotonic()
        for xid, entry in list(pending.items()):
            if entry[3] <= now:
                if entry[2] >= 4:
                    failed += 1
                    del pending[xid]
                else:
                    send(entry, xid, now)
    failed += len(pending)
    print(json.dumps({"acked": acked, "naks": naks, "failed": failed,
                      "elapsed_s": round(time.monotonic() - start, 3)}))


def renew(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.client_ip, 68))
    s.settimeout(1.0)
    mac = mac_bytes(a.mac)
    ip = socket.inet_aton(a.client_ip)
    xid = random.getrandbits(32)
    out = {"acked": [], "naks": 0, "failed": 0}
    for _ in range(4):
        s.sendto(message(REQUEST, xid, mac, ciaddr=ip), (a.server, 67))
        try:
            while True:
                p = parse(s.recv(2048))
                if p and p[0] == xid:
                    break
        except socket.timeout:
            continue
        if p[3] == ACK:
            out["acked"].append([mac_text(p[1]), socket.inet_ntoa(p[2])])
        elif p[3] == NAK:
            out["naks"] = 1
        break
    else:
        out["failed"] = 1
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dora")
    d.add_argument("--relay", required=True)
    d.add_argument("--server", required=True)
    d.add_argument("--count", type=int, required=True)
    d.add_argument("--prefix", default="0a0b")
    d.add_argument("--window", type=int, default=16)
    d.add_argument("--seconds", type=float, default=30.0)
    r = sub.add_parser("renew")
    r.add_argument("--client-ip", required=True)
    r.add_argument("--mac", required=True)
    r.add_argument("--server", required=True)
    a = ap.parse_args()
    dora(a) if a.cmd == "dora" else renew(a)


if __name__ == "__main__":
    main()
