#!/usr/bin/env python3
"""Send malformed frames from a namespace at a Tandem port.

usage: garbage.py IFACE DST_MAC SRC_MAC SRC_IP DST_IP [--repeat N] [--only KIND,...]

Each kind is sent N times (default 5), all addressed to DST_MAC:
  truncated     an IPv4 header cut after 10 bytes
  total_length  an IPv4 header that claims more bytes than the frame holds
  checksum      an ICMP echo request with a bad IPv4 header checksum
  ihl           an IPv4 header with IHL 3 (< 5)
  ethertype     an unknown ethertype (0x88b5)
"""
import argparse
import socket
import struct
import sys
from wire import csum  # noqa: E402  (tests/e2e/wire.py)


def ipv4(src: bytes, dst: bytes, payload: bytes, ihl=5, total=None, bad_csum=False) -> bytes:
    total = 20 + len(payload) if total is None else total
    hdr = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, total, 0x1234, 0, 64, 1, 0, src, dst)
    c = csum(hdr)
    if bad_csum:
        c ^= 0x5A5A
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def icmp_echo() -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, 0xBEEF, 1) + b"tandem-e2e-garbage"
    return body[:2] + struct.pack("!H", csum(body)) + body[4:]


def main() -> int:
    ap = argparse.ArgumentParser()
    for a in ("iface", "dst_mac", "src_mac", "src_ip", "dst_ip"):
        ap.add_argument(a)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    iface, dst_mac, src_mac, src_ip, dst_ip = args.iface, args.dst_mac, args.src_mac, args.src_ip, args.dst_ip
    repeat = args.repeat
    dmac = bytes.fromhex(dst_mac.replace(":", ""))
    smac = bytes.fromhex(src_mac.replace(":", ""))
    sip, dip = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)

    def eth(etype: int, payload: bytes) -> bytes:
        return dmac + smac + struct.pack("!H", etype) + payload

    good = ipv4(sip, dip, icmp_echo())
    frames = {
        "truncated": eth(0x0800, good[:10]),
        "total_length": eth(0x0800, ipv4(sip, dip, icmp_echo(), total=1400)),
        "checksum": eth(0x0800, ipv4(sip, dip, icmp_echo(), bad_csum=True)),
        "ihl": eth(0x0800, ipv4(sip, dip, icmp_echo(), ihl=3)),
        "ethertype": eth(0x88B5, b"\0" * 46),
    }
    if args.only:
        wanted = args.only.split(",")
        unknown = [k for k in wanted if k not in frames]
        if unknown:
            ap.error(f"unknown kind(s): {', '.join(unknown)}; known: {', '.join(frames)}")
        frames = {k: frames[k] for k in wanted}
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    for name, frame in frames.items():
        for _ in range(repeat):
            sock.send(frame)
        print(f"sent {repeat} x {name} ({len(frame)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
