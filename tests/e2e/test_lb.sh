#!/usr/bin/env bash
# shellcheck disable=SC2317  # check functions are invoked indirectly
# The load balancer in the lab, with real clients: curl and wrk from tdm-client to the front VIP
# 192.0.2.100:80, nginx on the two real servers. NAT from the lab config (round robin, HTTP
# health checks), failure and return of a real server, a bounded wrk run, long-lived connections
# that keep their real server, the seed's ipvsadm commands as written (lab addresses), DR through
# the same commands, TUN checked on the wire (this kernel has no IPIP module), routing for the
# real servers, reload, and the metrics.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/vrrp_lib.sh
source "$ROOT/tests/e2e/vrrp_lib.sh"
E2E_VERBOSE=${E2E_VERBOSE-1}

VIP=192.0.2.100
URL=http://$VIP/

e2e_begin

# get: one HTTP request from the client; prints the real server's name.
get() { timeout "$CMD_TIMEOUT" ip netns exec tdm-client curl -s -m 2 "$URL"; }
# names N: N requests, names space-separated.
names() {
    local out="" i
    for ((i = 0; i < $1; i++)); do out+="$(get || echo FAIL) "; done
    echo "$out"
}
ipvsadm() { ctl a ipvsadm "$@"; }

if out=$("$LAB" start a 2>&1); then ok "scripts/lab start a"; else not_ok "scripts/lab start a" "$out"; e2e_end; fi
check "node a is VRRP master of the front and back VIPs" wait_for vrrp_all a MASTER --timeout 5

# ------------------------------------------------------------ NAT, round robin
alternates() {
    # Health checks start UP; the first rounds are under way. Six requests must alternate.
    local seq
    seq=$(names 6)
    echo "answers: $seq"
    [[ $seq == "rs1 rs2 rs1 rs2 rs1 rs2 " || $seq == "rs2 rs1 rs2 rs1 rs2 rs1 " ]]
}
check "NAT, rr: curl to $VIP:80 alternates between rs1 and rs2" alternates

listing() {
    local out
    out=$(ipvsadm -L -n)
    echo "$out"
    grep -q "^TCP  $VIP:80 rr" <<<"$out" &&
        grep -Eq '^  -> 198\.51\.100\.11:80 +Masq +1 ' <<<"$out" &&
        grep -Eq '^  -> 198\.51\.100\.12:80 +Masq +1 ' <<<"$out"
}
check "tandemctl ipvsadm -L -n lists the configured service like ipvsadm" listing

# ------------------------------------------------------------ health checks
# interval 500 ms x fall 2: rs1 must be out within ~1 s (checked with 3 s of slack for a loaded
# machine); every request then goes to rs2.
"$LAB" rs stop 1 >/dev/null 2>&1
T0=$(date +%s%N)
only_rs2() {
    local seq
    seq=$(names 4)
    [[ $seq == "rs2 rs2 rs2 rs2 " ]]
}
failover_rs() {
    wait_for only_rs2 --timeout 4 || { echo "still: $(names 4)"; return 1; }
    echo "all requests on rs2 $(( ($(date +%s%N) - T0) / 1000000 )) ms after rs1 stopped"
    local seq
    seq=$(names 8)
    echo "then: $seq"
    [[ $seq == "rs2 rs2 rs2 rs2 rs2 rs2 rs2 rs2 " ]] &&
        grep -q "198.51.100.11:80 of TCP $VIP:80 failed its check" "$RUN_DIR/a.log"
}
check "rs1 stopped: within interval x fall every request goes to rs2 (and the log says why)" failover_rs
"$LAB" rs start 1 >/dev/null 2>&1
rs1_back() {
    wait_for alternates --timeout 5 && grep -q "198.51.100.11:80 of TCP $VIP:80 is up again" "$RUN_DIR/a.log"
}
check "rs1 restarted: it is back in the rotation" rs1_back

# VRRP tracks the service (node-a.conf: track_services web, min_healthy 1, weight -60): with
# both real servers failing their checks the front instance's priority drops 150 -> 90.
prio() { ctl a --json vrrp | jq -r '.[] | select(.name == "VI_FRONT") | .effective_priority'; }
prio_is() { [[ $(prio) == "$1" ]]; }
tracked() {
    prio_is 150 || { echo "priority $(prio) before"; return 1; }
    "$LAB" rs stop 1 >/dev/null 2>&1
    "$LAB" rs stop 2 >/dev/null 2>&1
    local rc=0
    wait_for prio_is 90 --timeout 5 || rc=1
    echo "both real servers down: priority $(prio)"
    "$LAB" rs start 1 >/dev/null 2>&1
    "$LAB" rs start 2 >/dev/null 2>&1
    wait_for prio_is 150 --timeout 5 || rc=1
    echo "back: priority $(prio)"
    wait_for alternates --timeout 5 || rc=1
    return "$rc"
}
check "VRRP tracks the service: no healthy real server costs VI_FRONT 60 priority, back at 150 after" tracked

# ------------------------------------------------------------ wrk, bounded
wrk_run() {
    local out
    out=$(timeout 20 ip netns exec tdm-client wrk -t1 -c16 -d3s --timeout 2s "$URL" 2>&1)
    echo "$out"
    local reqs
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    ! grep -Eq 'Socket errors|Non-2xx' <<<"$out" && (( reqs > 1000 ))
}
check "wrk -c16 -d3s through the VIP: no socket errors, no non-2xx, > 1000 requests" wrk_run

# ------------------------------------------------------------ long-lived connections
longlived() {
    local out
    out=$(timeout 30 ip netns exec tdm-client python3 "$ROOT/tests/e2e/lb_client.py" "$VIP" 80 4 10)
    echo "$out" | head -c 600
    echo
    # Every long connection stays on one real server; new connections are spread over both.
    jq -e '[.long[] | unique | length] | all(. == 1)' <<<"$out" >/dev/null &&
        jq -e '.new | unique | length == 2' <<<"$out" >/dev/null
}
check "4 keep-alive connections keep their real server for 10 requests while new ones alternate" longlived

# ------------------------------------------------------------ metrics
lb_metrics() {
    local m
    m=$(metrics a)
    grep -E '^tandem_lb_(connections_total|real_up)' <<<"$m" | head -8
    gt "$(metric_sum tandem_lb_connections_total <<<"$m")" 0 &&
        [[ $(metric_sum tandem_lb_real_up <<<"$m") == 2 ]]
}
check "metrics: new connections counted per real server, both real servers up" lb_metrics

# ------------------------------------------------------------ the seed's ipvsadm commands
seed_nat() {
    ipvsadm -C
    ipvsadm -A -t $VIP:80 -s rr
    ipvsadm -a -t $VIP:80 -r 198.51.100.11:80 -m
    ipvsadm -a -t $VIP:80 -r 198.51.100.12:80 -m
    ipvsadm -L -n
    alternates
}
check "ipvsadm -C / -A -t VIP:80 -s rr / -a ... -m (x2) / -L -n: NAT service answers alternately" seed_nat
stats() {
    local out
    out=$(ipvsadm -L -n --stats)
    echo "$out"
    # The service line's Conns column counts the six connections of the previous check.
    awk -v vip="$VIP:80" '$1 == "TCP" && $2 == vip { exit !($3 + 0 >= 6) }' <<<"$out"
}
check "ipvsadm -L -n --stats counts the connections" stats
save_restore() {
    local saved out
    saved=$(ipvsadm -S -n)
    echo "$saved"
    ipvsadm -C
    out=$(ipvsadm -L -n)
    grep -q "^TCP" <<<"$out" && { echo "not cleared"; return 1; }
    ctl a ipvsadm -R <<<"$saved"
    [[ $(ipvsadm -S -n) == "$saved" ]] && alternates
}
check "ipvsadm -S -n, -C, -R round trip restores the service" save_restore
deleted() {
    ipvsadm -D -t $VIP:80
    ! get
}
check "ipvsadm -D -t VIP:80: the VIP no longer answers on port 80" deleted

# ------------------------------------------------------------ DR
dr() {
    ipvsadm -A -t $VIP:80 -s rr
    ipvsadm -a -t $VIP:80 -r 198.51.100.11 -g
    ipvsadm -a -t $VIP:80 -r 198.51.100.12 -g
    ipvsadm -L -n | grep -E 'Route'
    alternates
}
check "DR (-g): real servers answer from the VIP on lo, replies routed by the director" dr
dr_wrk() {
    local out
    out=$(timeout 20 ip netns exec tdm-client wrk -t1 -c8 -d2s --timeout 2s "$URL" 2>&1)
    echo "$out" | tail -4
    ! grep -Eq 'Socket errors|Non-2xx' <<<"$out"
}
check "DR: a bounded wrk run has no errors" dr_wrk
check "DR: long-lived connections keep their real server" longlived

# DR with health checks: the lab config with mode = "dr", applied by a reload (the checks reach
# the real servers' own addresses through the TAP, whatever the forwarding mode).
dr_checked() {
    sed 's/mode = "nat";/mode = "dr";/' "$ROOT/examples/lab/node-a.conf" >"$E2E_TMP/dr.conf"
    ipvsadm -C
    "$LAB" stop a >/dev/null 2>&1
    "$LAB" start a "$E2E_TMP/dr.conf" >/dev/null 2>&1 || { echo "start with dr.conf failed"; return 1; }
    wait_for vrrp_all a MASTER --timeout 5 || return 1
    ipvsadm -L -n | grep Route
    alternates || return 1
    "$LAB" rs stop 1 >/dev/null 2>&1
    T0=$(date +%s%N)
    local rc=0
    failover_rs || rc=1
    "$LAB" rs start 1 >/dev/null 2>&1
    wait_for alternates --timeout 5 || rc=1
    "$LAB" stop a >/dev/null 2>&1
    "$LAB" start a >/dev/null 2>&1 && wait_for vrrp_all a MASTER --timeout 5 || rc=1
    return "$rc"
}
check "DR from the config, HTTP checks: rs1 stopped leaves the rotation, restarted comes back" dr_checked

# ------------------------------------------------------------ TUN, on the wire
tun() {
    ipvsadm -C
    ipvsadm -A -t $VIP:80 -s rr
    ipvsadm -a -t $VIP:80 -r 198.51.100.11 -i
    local cap=$E2E_TMP/tun.txt
    timeout 8 ip netns exec tdm-rs1 tcpdump -nn -l -v -i eth0 -c 1 'ip proto 4' >"$cap" 2>/dev/null &
    local pid=$!
    sleep 1
    get >/dev/null || true  # no IPIP module here: the request itself cannot succeed
    wait "$pid" || true
    cat "$cap"
    # Outer 198.51.100.2 > 198.51.100.11 (proto IPIP), inner SYN to the VIP unchanged.
    grep -q '198.51.100.2 > 198.51.100.11' "$cap" &&
        grep -Eq 'proto IPIP \(4\)' "$cap" &&
        grep -Eq '192\.0\.2\.10\.[0-9]+ > 192\.0\.2\.100\.80: Flags \[S\]' "$cap"
}
check "TUN (-i): tdm-rs1 sees 198.51.100.2 > 198.51.100.11 proto 4 wrapping the client's SYN" tun

# ------------------------------------------------------------ routing, reload
routed() {
    # The real servers' default route is the back VIP: they reach the client through us. The
    # client gets a route back to the back network through the front VIP for this check (a real
    # client network has one through its own router).
    ip -n tdm-client route replace 198.51.100.0/24 via $VIP
    local rc=0
    # The first packet to an unresolved next hop is dropped while the director resolves it
    # (no_neighbor); the next ones all pass.
    timeout 5 ip netns exec tdm-rs1 ping -n -c 1 -W 1 192.0.2.10 >/dev/null 2>&1 || true
    ping_from tdm-rs1 192.0.2.10 3 || rc=1
    # ... and the TTL shows the hop: 64 from the client, 63 after the director.
    local out
    out=$(timeout "$CMD_TIMEOUT" ip netns exec tdm-rs1 ping -n -c 1 -W 1 192.0.2.10 2>&1) || rc=1
    echo "$out" | head -2
    grep -q 'ttl=63' <<<"$out" || rc=1
    ip -n tdm-client route del 198.51.100.0/24 via $VIP
    return "$rc"
}
check "routing: tdm-rs1 pings the client through the director (TTL 63: one routed hop)" routed
reload_keeps() {
    ipvsadm -C
    ctl a config reload >/dev/null
    ipvsadm -A -u $VIP:53 -s wrr
    ctl a config reload >/dev/null
    local out
    out=$(ipvsadm -L -n)
    echo "$out"
    # The file's service is back after the reload; the runtime UDP service stayed.
    grep -q "^TCP  $VIP:80 rr" <<<"$out" && grep -q "^UDP  $VIP:53 wrr" <<<"$out" && alternates
}
check "config reload: the file's services come back, runtime-added ones stay" reload_keeps
bad_cmd() {
    local out rc=0
    out=$(ipvsadm -a -t 192.0.2.99:80 -r 198.51.100.11:80 -m 2>&1) || rc=$?
    echo "$out (exit $rc)"
    (( rc == 1 )) && grep -qi "service" <<<"$out"
}
check "ipvsadm -a on an unknown service fails with ipvsadm's message (exit 1)" bad_cmd
not_ours() {
    local out rc=0
    out=$(ipvsadm -A -t 192.0.2.99:80 -s rr 2>&1) || rc=$?
    echo "$out (exit $rc)"
    (( rc == 1 )) && grep -q "not an address of this node" <<<"$out"
}
check "ipvsadm -A for a VIP this node does not hold is refused (exit 1)" not_ours

e2e_end
