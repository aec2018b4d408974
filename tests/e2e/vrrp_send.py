#!/usr/bin/env python3
"""Send crafted VRRP adverts to 224.0.0.18 from a namespace (raw AF_PACKET).

usage: vrrp_send.py IFACE SRC_MAC SRC_IP [--vrid 51] [--vip 192.0.2.100] [--priority 50]
                    [--repeat N] [--only KIND,...]

Every frame is a VRRPv3 advert (IP proto 112, TTL 255, keepalived's checksum with the IPv4
pseudo-header, 100 cs interval, the VIP as its address list) with exactly one defect:
  ttl           IP TTL 254
  checksum      a wrong VRRP checksum (neither variant verifies)
  version       VRRP version 1
  type          VRRP type 2 (not an advertisement)
  truncated     the IP length ends after the 8-byte VRRP header while count says 1 address
  vrid          VRID 99 (no such instance)
  address_list  a different virtual IP (and priority < 255)
  valid         no defect at all (a control: it must NOT be counted as invalid)
The priority is low (50 by default) so that even an accepted advert cannot take mastership.
Each kind is sent --repeat times (default 5). Prints one line per kind.
"""
import argparse
import socket
import struct
import sys
from wire import csum  # noqa: E402  (tests/e2e/wire.py)

GROUP = "224.0.0.18"
GROUP_MAC = bytes.fromhex("01005e000012")


def vrrp(version, typ, vrid, prio, addrs, sip, dip, bad_csum=False):
    hdr = struct.pack("!BBBBH", (version << 4) | typ, vrid, prio, len(addrs), 100 & 0x0FFF)
    body = hdr + b"\0\0" + b"".join(socket.inet_aton(a) for a in addrs)
    pseudo = sip + dip + struct.pack("!BBH", 0, 112, len(body))
    c = csum(pseudo + body)
    if bad_csum:
        c ^= 0x1234
    return body[:6] + struct.pack("!H", c) + body[8:]


def ipv4(sip, dip, payload, ttl=255, total=None):
    total = 20 + len(payload) if total is None else total
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, total, 0, 0, ttl, 112, 0, sip, dip)
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("iface")
    ap.add_argument("src_mac")
    ap.add_argument("src_ip")
    ap.add_argument("--vrid", type=int, default=51)
    ap.add_argument("--vip", default="192.0.2.100")
    ap.add_argument("--priority", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    sip, dip = socket.inet_aton(a.src_ip), socket.inet_aton(GROUP)
    smac = bytes.fromhex(a.src_mac.replace(":", ""))
    vid, p, vip = a.vrid, a.priority, [a.vip]

    def frame(ip):
        f = GROUP_MAC + smac + struct.pack("!H", 0x0800) + ip
        return f + b"\0" * max(0, 60 - len(f))

    good = vrrp(3, 1, vid, p, vip, sip, dip)
    # truncated: the VRRP header alone (count 1, checksum over those 8 bytes), IP length 28.
    trunc = vrrp(3, 1, vid, p, vip, sip, dip)[:8]
    frames = {
        "ttl": frame(ipv4(sip, dip, good, ttl=254)),
        "checksum": frame(ipv4(sip, dip, vrrp(3, 1, vid, p, vip, sip, dip, bad_csum=True))),
        "version": frame(ipv4(sip, dip, vrrp(1, 1, vid, p, vip, sip, dip))),
        "type": frame(ipv4(sip, dip, vrrp(3, 2, vid, p, vip, sip, dip))),
        "truncated": frame(ipv4(sip, dip, trunc)),
        "vrid": frame(ipv4(sip, dip, vrrp(3, 1, 99, p, vip, sip, dip))),
        "address_list": frame(ipv4(sip, dip, vrrp(3, 1, vid, p, ["192.0.2.199"], sip, dip))),
        "valid": frame(ipv4(sip, dip, good)),
    }
    if a.only:
        wanted = a.only.split(",")
        unknown = [k for k in wanted if k not in frames]
        if unknown:
            ap.error(f"unknown kind(s): {', '.join(unknown)}; known: {', '.join(frames)}")
        frames = {k: frames[k] for k in wanted}
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((a.iface, 0))
    for name, f in frames.items():
        for _ in range(a.repeat):
            sock.send(f)
        print(f"sent {a.repeat} x {name} ({len(f)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
