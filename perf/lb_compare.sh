#!/usr/bin/env bash
# HTTP through three L4 load balancers side by side in the lab, same clients, same real servers:
#   tandemd   node a (examples/lab/node-a.conf): NAT, rr, over rs1/rs2, worker on CPU 1.
#   nftables  the kernel in tdm-a: front0 192.0.2.2/24 + 192.0.2.100/24, back0 198.51.100.2/24 +
#             198.51.100.1/24, ip_forward=1, `dnat to numgen inc mod 2 map { 0 : rs1, 1 : rs2 }`
#             on TCP to 192.0.2.100:80 (conntrack translates the replies; the real servers'
#             default route is 198.51.100.1, so it is NAT like tandemd's).
#   haproxy   the same kernel addresses, HAProxy in TCP mode (balance roundrobin) listening on
#             192.0.2.100:80, connecting to rs1/rs2 from 198.51.100.2 (a proxy: two TCP
#             connections per client connection).
# One at a time (front0/back0 have a single owner). Load: wrk in tdm-client, pinned to CPU 0,
# ROUNDS runs of DUR seconds per balancer, interleaved (tandemd, nftables, haproxy, tandemd...),
# so drift of this shared VM hits all three alike. Reported per balancer: median requests/s and
# median p99 latency over the rounds, and the ratios to tandemd.
#
# Usage: perf/lb_compare.sh [--dur S] [--conns N] [--rounds N] [--keepalive|--close]
#   --close sends "Connection: close" (one TCP connection per request: connection setup rate).
# Prints one JSON object. Leaves the lab as it found it (front0/back0 without kernel addresses,
# arp_ignore=8, ip_forward=0); takes the lab down only if it brought it up.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

DUR=10
CONNS=32
ROUNDS=3
CLOSE=0
while (($#)); do
    case $1 in
        --dur) DUR=$2; shift 2 ;;
        --conns) CONNS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --close) CLOSE=1; shift ;;
        --keepalive) CLOSE=0; shift ;;
        *) die "unknown option $1" ;;
    esac
done
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces)"
command -v wrk >/dev/null || die "wrk is not installed (scripts/lib.sh install_deps)"
command -v haproxy >/dev/null || die "haproxy is not installed (scripts/lib.sh install_deps)"
[[ -x $TANDEMD ]] || die "build first (meson setup build && ninja -C build)"

VIP=192.0.2.100
TMP=$(mktemp -d /tmp/tandem-lbcmp.XXXXXX)
LAB=$ROOT/scripts/lab
brought_up=0
if ! ip netns list | grep -q '^tdm-a'; then brought_up=1; fi
"$LAB" up >/dev/null

kernel_on() {
    ip -n tdm-a addr replace 192.0.2.2/24 dev front0
    ip -n tdm-a addr replace $VIP/24 dev front0
    ip -n tdm-a addr replace 198.51.100.2/24 dev back0
    ip -n tdm-a addr replace 198.51.100.1/24 dev back0
    ip netns exec tdm-a sysctl -qw net.ipv4.conf.front0.arp_ignore=0 \
        net.ipv4.conf.back0.arp_ignore=0
    # The client and the real servers may hold the MAC tandemd answered with: announce ours.
    ip netns exec tdm-a arping -q -c 2 -U -I front0 $VIP >/dev/null 2>&1 || true
    ip netns exec tdm-a arping -q -c 2 -U -I back0 198.51.100.1 >/dev/null 2>&1 || true
}
kernel_off() {
    ip netns exec tdm-a nft delete table ip lbcmp 2>/dev/null || true
    ip netns exec tdm-a sysctl -qw net.ipv4.ip_forward=0
    ip -n tdm-a addr flush dev front0
    ip -n tdm-a addr flush dev back0
    ip netns exec tdm-a sysctl -qw net.ipv4.conf.front0.arp_ignore=8 \
        net.ipv4.conf.back0.arp_ignore=8
    ip -n tdm-client neigh flush all 2>/dev/null || true
    for i in 1 2; do ip -n tdm-rs$i neigh flush all 2>/dev/null || true; done
}
cleanup() {
    set +e
    [[ -f $TMP/haproxy.pid ]] && kill "$(cat "$TMP/haproxy.pid")" 2>/dev/null
    "$LAB" stop a >/dev/null 2>&1
    kernel_off
    ((brought_up)) && "$LAB" down >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT

start_tandemd() {
    kernel_off
    "$LAB" start a >/dev/null
    wait_for --timeout 10 vrrp_master_a
    wait_for --timeout 10 curl_ok
}
vrrp_master_a() {
    [[ $(ctl a --json vrrp | jq -r '[.[] | .state] | unique | join(",")') == MASTER ]]
}
curl_ok() { ip netns exec tdm-client curl -sf -m 1 "http://$VIP/" >/dev/null; }
stop_tandemd() { "$LAB" stop a >/dev/null 2>&1 || true; }

start_nft() {
    kernel_on
    ip netns exec tdm-a sysctl -qw net.ipv4.ip_forward=1
    ip netns exec tdm-a nft -f - <<EOF
table ip lbcmp {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport 80 dnat to numgen inc mod 2 map { 0 : 198.51.100.11, 1 : 198.51.100.12 }
    }
}
EOF
    wait_for --timeout 10 curl_ok
}
stop_nft() { kernel_off; }

start_haproxy() {
    kernel_on
    cat >"$TMP/haproxy.cfg" <<EOF
global
    maxconn 4000
    nbthread 1
    cpu-map 1/1 1
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend web
    bind $VIP:80
    default_backend rs
backend rs
    balance roundrobin
    server rs1 198.51.100.11:80
    server rs2 198.51.100.12:80
EOF
    ip netns exec tdm-a haproxy -D -f "$TMP/haproxy.cfg" -p "$TMP/haproxy.pid"
    wait_for --timeout 10 curl_ok
}
stop_haproxy() {
    [[ -f $TMP/haproxy.pid ]] && kill "$(cat "$TMP/haproxy.pid")" 2>/dev/null || true
    rm -f "$TMP/haproxy.pid"
    sleep 0.5
    kernel_off
}

# wrk_run NAME ROUND: one bounded wrk run; appends "NAME rps p99_ms errors" to $TMP/results.
wrk_run() {
    local hdr=()
    ((CLOSE)) && hdr=(-H "Connection: close")
    local out
    out=$(timeout $((DUR + 20)) ip netns exec tdm-client taskset -c 0 \
        wrk -t1 -c"$CONNS" -d"${DUR}s" --timeout 2s --latency "${hdr[@]}" "http://$VIP/" 2>&1) || true
    printf '%s\n' "$out" >"$TMP/$1.$2.txt"
    local rps p99 errs
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000}
                            else if (v ~ /ms$/) {sub(/ms$/, "", v)}
                            else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; print v}' <<<"$out")
    errs=$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10; f = 1}
                /Non-2xx/ {n += $5} END {if (!f) print n + 0}' <<<"$out")
    echo "$1 ${rps:-0} ${p99:-0} ${errs:-0}" >>"$TMP/results"
}

: >"$TMP/results"
for ((r = 1; r <= ROUNDS; r++)); do
    start_tandemd; wrk_run tandemd "$r"; stop_tandemd
    start_nft; wrk_run nftables "$r"; stop_nft
    start_haproxy; wrk_run haproxy "$r"; stop_haproxy
done

python3 - "$TMP/results" "$DUR" "$CONNS" "$ROUNDS" "$CLOSE" <<'EOF'
import json, statistics, subprocess, sys
path, dur, conns, rounds, close = sys.argv[1], *map(int, sys.argv[2:6])
runs = {}
for line in open(path):
    name, rps, p99, errs = line.split()
    runs.setdefault(name, []).append({"rps": float(rps), "p99_ms": float(p99), "errors": int(errs)})
res = {}
for name, rs in runs.items():
    res[name] = {"rps_median": round(statistics.median(r["rps"] for r in rs), 1),
                 "p99_ms_median": round(statistics.median(r["p99_ms"] for r in rs), 3),
                 "errors": sum(r["errors"] for r in rs), "runs": rs}
t = res.get("tandemd", {}).get("rps_median", 0)
ratios = {f"tandemd_over_{n}": round(t / v["rps_median"], 2)
          for n, v in res.items() if n != "tandemd" and v["rps_median"]}
load = open("/proc/loadavg").read().split()[:3]
print(json.dumps({"bench": "lb_compare", "duration_s": dur, "connections": conns,
                  "rounds": rounds, "mode": "close" if close else "keepalive",
                  "nproc": int(subprocess.check_output(["nproc"]).decode()),
                  "loadavg_end": load, "results": res, "ratios": ratios}, indent=1))
EOF
