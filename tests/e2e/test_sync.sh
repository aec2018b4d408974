#!/usr/bin/env bash
# shellcheck disable=SC2317  # check functions are invoked indirectly
# Failover that loses nothing: the pair replicates leases and load-balancer connections over
# sync0 and couples it with VRRP. In the lab, with real clients:
#   1+2. long-lived HTTP connections through 192.0.2.100 (NAT) and DHCP clients behind the relay
#        while the master is killed with SIGKILL: every connection carries on with its real
#        server, every ACKed lease is in the new master's table, a RENEWING request to the
#        server id is ACKed with the same address, no address goes to two clients;
#   5.   fail-back: connections and leases made on b survive a → b → a;
#   4.   a restarted node stays demoted until its bulk resync is done; killing the master right
#        after loses nothing;
#   3.   1% and 30% loss on sync0 and a link flap: both nodes' tables converge;
#   and: tampered and replayed datagrams are refused and counted, tandemctl sync, metrics,
#   the split-brain witness (adverts dropped on the front bridge while the sync link lives).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/vrrp_lib.sh
source "$ROOT/tests/e2e/vrrp_lib.sh"
E2E_VERBOSE=${E2E_VERBOSE-1}

HERE=$ROOT/tests/e2e
NS=tdm-dhcp
LEASE_DIRS=(/var/lib/tandem/a /var/lib/tandem/b)

e2e_cleanup_sync() {
    local rc=$?
    set +e
    pkill -f "failover_client.py" 2>/dev/null
    pkill -f "dhcp_relay_client.py" 2>/dev/null
    pkill -f "dhclient.*$E2E_TMP" 2>/dev/null
    ip netns exec tdm-a nft delete table inet tdm_loss 2>/dev/null
    ip netns exec tdm-b nft delete table inet tdm_loss 2>/dev/null
    ip netns exec tdm-sw nft delete table bridge tdm_split 2>/dev/null
    ip -n "$NS" addr flush dev eth0 2>/dev/null
    (exit "$rc")
    e2e_cleanup
}

e2e_begin
trap e2e_cleanup_sync EXIT
rm -rf "${LEASE_DIRS[@]}"

start_node() {
    local out
    if out=$("$LAB" start "$@" 2>&1); then ok "scripts/lab start $*"; else not_ok "scripts/lab start $*" "$out"; return 1; fi
}
sync_field() { ctl "$1" --json sync 2>/dev/null | jq -r "$2"; }
sync_ready() { [[ $(sync_field "$1" '.state + " " + (.resynced|tostring)') == "up true" ]]; }
# leases_of NODE: "ip mac state" per lease, sorted (offers in flight left out).
leases_of() {
    ctl "$1" --json leases | jq -r '.[] | select(.state != "offered") | "\(.ip) \(.mac) \(.state)"' | sort
}
conns_of() {
    ctl "$1" --json lb list --conns | jq -r '.connections[] | "\(.client) \(.virtual) \(.real) \(.state)"' | sort
}

start_node a || e2e_end
start_node b || e2e_end
check "node a MASTER, node b BACKUP" wait_for vrrp_all a MASTER --timeout 5
check "node b BACKUP" wait_for vrrp_all b BACKUP --timeout 5
check "the sync session is up and each node holds the other's state (bulk resync done)" \
    wait_for sync_ready a --timeout 5
check "node b: session up, resynced" wait_for sync_ready b --timeout 5
sync_text() {
    local out
    out=$(ctl a sync) || return 1
    printf '%s\n' "$out"
    grep -q '^session     up' <<<"$out" && grep -q 'matches the peer' <<<"$out" &&
        grep -q 'dhcp        strict' <<<"$out"
}
check "tandemctl sync on node a: session up, strict DHCP, configuration digests match" sync_text
sync_bad_use() {
    local out rc=0
    out=$(ctl a sync now 2>&1) || rc=$?
    printf '%s\n' "$out" | head -n 1
    (( rc == 2 )) || return 1
    rc=0
    out=$(ctl a config push 2>&1) || rc=$?
    printf '%s\n' "$out"
    (( rc == 1 )) && grep -q 'nothing to push: set sync.config_include' <<<"$out"
}
check "tandemctl sync with an argument is a usage error (exit 2); config push without sync.config_include says what to set (exit 1)" sync_bad_use

# ------------------------------------------------------------ DHCP client behind the VIP
SCRIPT=$E2E_TMP/dhclient-script
dhclient_script "$SCRIPT"
C0_IP=
dhclient_c0() {
    local out
    out=$(timeout 30 ip netns exec "$NS" dhclient -v -1 -sf "$SCRIPT" -pf "$E2E_TMP/c0.pid" \
        -lf "$E2E_TMP/c0.leases" eth0 2>&1) || { printf '%s\n' "$out"; return 1; }
    grep -E 'DHCPACK|bound' <<<"$out"
    grep -q "DHCPACK of .* from 192.0.2.100" <<<"$out"
}
check "dhclient in $NS gets a lease from node a (server id 192.0.2.100)" dhclient_c0
C0_IP=$(ip -n "$NS" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | head -n1)
C0_MAC=$(mac_of "$NS" eth0)
c0_on_b() {
    local out
    out=$(ctl b --json leases --ip "$C0_IP") || return 1
    jq -c '.[]' <<<"$out"
    jq -e --arg m "$C0_MAC" '.[0].state == "bound" and .[0].mac == $m' <<<"$out" >/dev/null
}
check "the lease of $C0_IP is in node b's table already (strict sync: acknowledged before the ACK left)" c0_on_b

# ------------------------------------------------------------ 1 + 2: kill -9 under load
FO_OUT=$E2E_TMP/fo1.json DH_OUT=$E2E_TMP/dhcp1.json
ip netns exec tdm-client python3 "$HERE/failover_client.py" 192.0.2.100 80 8 8 \
    >"$FO_OUT" 2>"$E2E_TMP/fo1.err" &
FO_PID=$!
wait_for grep -q ready "$E2E_TMP/fo1.err" --timeout 5 || true
ip netns exec tdm-client python3 "$HERE/dhcp_relay_client.py" dora --relay 192.0.2.10 \
    --server 192.0.2.100 --count 4000 --prefix 0a01 --window 4 --seconds 20 \
    >"$DH_OUT" 2>"$E2E_TMP/dh1.err" &
DH_PID=$!
sleep 2
established_on_b() { [[ $(conns_of b | grep -c ESTABLISHED) -ge 8 ]]; }
check "the 8 long-lived connections are in node b's table before the kill" wait_for established_on_b --timeout 3
BOUND_BEFORE=$(ctl a --json dhcp pools | jq '[.[] | .bound] | add')
diag "node a had $BOUND_BEFORE bound leases at the kill"
KILL_T=$(now_ms)
"$LAB" stop a --kill >/dev/null 2>&1
check "after kill -9 of node a: node b MASTER for both instances" wait_for vrrp_all b MASTER --timeout 3
TAKEOVER_MS=$(( $(now_ms) - KILL_T ))
wait "$FO_PID" || true
wait "$DH_PID" || true
conns_survived() {
    cat "$FO_OUT"
    jq -e '.errors == [] and (.servers | length) == 8 and all(.servers[]; length == 1) and .requests > 400' "$FO_OUT" >/dev/null
}
check "kill -9 mid-stream: all 8 connections carried on with their real server, none reset (takeover seen after ${TAKEOVER_MS} ms; longest wait $(jq -r .max_gap_ms "$FO_OUT" 2>/dev/null) ms)" conns_survived
acked_on_b() {
    local acked missing
    acked=$(jq -r '.acked[] | "\(.[1]) \(.[0])"' "$DH_OUT" | sort)
    jq -c '{acked: (.acked | length), naks, failed, elapsed_s}' "$DH_OUT"
    [[ -n $acked ]] || return 1
    missing=$(comm -23 <(printf '%s\n' "$acked") <(leases_of b | awk '$3 == "bound" {print $1, $2}' | sort))
    echo "ACKed leases missing on node b: $(printf '%s' "$missing" | grep -c . || true)"
    [[ -z $missing ]] && jq -e '.naks == 0 and .failed == 0' "$DH_OUT" >/dev/null
}
check "every lease ACKed to the relay clients (before and after the kill) is bound in node b's table, no NAK, no client gave up" acked_on_b
no_double() {
    local dup
    dup=$(jq -r '.acked[] | .[1]' "$DH_OUT" | sort | uniq -d)
    [[ -z $dup ]] || { echo "addresses ACKed to two clients: $dup"; return 1; }
    dup=$(leases_of b | awk '{print $1}' | uniq -d)
    [[ -z $dup ]]
}
check "no address was ACKed to two clients" no_double
renew_c0() {
    local out
    out=$(ip netns exec "$NS" python3 "$HERE/dhcp_relay_client.py" renew --client-ip "$C0_IP" \
        --mac "$C0_MAC" --server 192.0.2.100) || return 1
    printf '%s\n' "$out"
    jq -e --arg ip "$C0_IP" '.acked == [[.acked[0][0], $ip]] and .naks == 0' <<<"$out" >/dev/null
}
check "a RENEWING request from $C0_IP to the server id 192.0.2.100 is ACKed by node b with the same address" renew_c0

# ------------------------------------------------------------ 5 + 4: fail-back, restart, kill
# New connections and leases on b, then a comes back: it must stay demoted until it holds b's
# state, then preempt (fail-back) with b's connections and leases live.
FO2_OUT=$E2E_TMP/fo2.json
ip netns exec tdm-client python3 "$HERE/failover_client.py" 192.0.2.100 80 6 10 \
    >"$FO2_OUT" 2>"$E2E_TMP/fo2.err" &
FO2_PID=$!
wait_for grep -q ready "$E2E_TMP/fo2.err" --timeout 5 || true
DH2_OUT=$E2E_TMP/dhcp2.json
ip netns exec tdm-client python3 "$HERE/dhcp_relay_client.py" dora --relay 192.0.2.10 \
    --server 192.0.2.100 --count 200 --prefix 0a02 --window 8 --seconds 10 >"$DH2_OUT" 2>/dev/null
check "200 new leases on node b" jq -e '(.acked | length) == 200' "$DH2_OUT"
sleep 1
start_node a
preempted() { vrrp_all a MASTER && vrrp_all b BACKUP; }
check "restarted node a (priority 150) takes mastership back after its resync" wait_for preempted --timeout 5
demoted_first() {
    local log
    log=$(node_log a)
    grep -nE 'vrrp: demoted|bulk resync from the peer complete|vrrp: resync complete|-> MASTER' "$log" | tail -n 6
    awk '/vrrp: demoted/ && !d { d = NR } /bulk resync from the peer complete/ && !r { r = NR }
         /vrrp: resync complete/ && !u { u = NR } /BACKUP -> MASTER/ && !m { m = NR }
         END { exit !(d && r && u && m && d < r && r <= u && u < m) }' "$log"
}
check "node a was demoted until its bulk resync completed, and became MASTER only after (log order)" demoted_first
leases_b_on_a() {
    local missing
    missing=$(comm -23 <(jq -r '.acked[] | "\(.[1]) \(.[0])"' "$DH2_OUT" | sort) \
                       <(leases_of a | awk '$3 == "bound" {print $1, $2}' | sort))
    echo "leases made on b missing on a: $(printf '%s' "$missing" | grep -c . || true)"
    [[ -z $missing ]]
}
check "the 200 leases made on node b are in node a's table" leases_b_on_a
# Leases made on a right after the fail-back, then a dies at once.
DH3_OUT=$E2E_TMP/dhcp3.json
ip netns exec tdm-client python3 "$HERE/dhcp_relay_client.py" dora --relay 192.0.2.10 \
    --server 192.0.2.100 --count 100 --prefix 0a03 --window 8 --seconds 10 >"$DH3_OUT" 2>/dev/null
"$LAB" stop a --kill >/dev/null 2>&1
check "kill -9 of node a right after: node b MASTER again" wait_for vrrp_all b MASTER --timeout 3
wait "$FO2_PID" || true
conns_failback() {
    cat "$FO2_OUT"
    jq -e '.errors == [] and (.servers | length) == 6 and all(.servers[]; length == 1)' "$FO2_OUT" >/dev/null
}
check "6 connections opened on b carried on through b → a → b with their real server" conns_failback
leases_a_on_b() {
    local missing
    jq -c '{acked: (.acked | length), naks, failed}' "$DH3_OUT"
    missing=$(comm -23 <(jq -r '.acked[] | "\(.[1]) \(.[0])"' "$DH3_OUT" | sort) \
                       <(leases_of b | awk '$3 == "bound" {print $1, $2}' | sort))
    echo "leases ACKed by a missing on b: $(printf '%s' "$missing" | grep -c . || true)"
    [[ -z $missing ]] && jq -e '(.acked | length) == 100' "$DH3_OUT" >/dev/null
}
check "the 100 leases node a ACKed just before its kill are all in node b's table" leases_a_on_b

# ------------------------------------------------------------ 3: loss and a link flap
start_node a
check "node a back: MASTER after resync" wait_for preempted --timeout 5
loss() {  # loss NODE PERCENT: drop that share of the sync link's datagrams, both ways
    ip netns exec "tdm-$1" nft delete table inet tdm_loss 2>/dev/null || true
    ip netns exec "tdm-$1" nft -f - <<EOF
table inet tdm_loss {
    chain in { type filter hook input priority 0; iifname "sync0" udp dport 9470 numgen random mod 100 < $2 drop; }
    chain out { type filter hook output priority 0; oifname "sync0" udp dport 9470 numgen random mod 100 < $2 drop; }
}
EOF
}
converged() {
    local la lb ca cb
    la=$(leases_of a) lb=$(leases_of b) ca=$(conns_of a | awk '{print $1, $2, $3}') cb=$(conns_of b | awk '{print $1, $2, $3}')
    [[ $la == "$lb" && $ca == "$cb" && -n $la ]]
}
converged_report() {
    if wait_for converged --timeout 10; then
        echo "leases: $(leases_of a | wc -l) on each node; connections: $(conns_of a | wc -l) on each node"
        echo "retransmitted by a: $(sync_field a .retransmitted)"
        return 0
    fi
    diff <(leases_of a) <(leases_of b) | head -n 5
    diff <(conns_of a | awk '{print $1, $2, $3}') <(conns_of b | awk '{print $1, $2, $3}') | head -n 5
    return 1
}
for pct in 1 30; do
    loss a "$pct"
    ip netns exec tdm-client python3 "$HERE/dhcp_relay_client.py" dora --relay 192.0.2.10 \
        --server 192.0.2.100 --count 300 --prefix "$(printf "0b%02d" "$pct")" --window 8 --seconds 20 \
        >"$E2E_TMP/loss$pct.json" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do ip netns exec tdm-client curl -s -m 2 -o /dev/null http://192.0.2.100/ || true; done
    ip netns exec tdm-a nft delete table inet tdm_loss
    check "$pct% loss on sync0 during 300 DORAs and 10 connections: $(jq '.acked | length' "$E2E_TMP/loss$pct.json") ACKed; the tables converge" converged_report
done
ip -n tdm-a link set sync0 down
sleep 1
ip netns exec tdm-client python3 "$HERE/dhcp_relay_client.py" dora --relay 192.0.2.10 \
    --server 192.0.2.100 --count 100 --prefix 0c01 --window 8 --seconds 10 >/dev/null 2>&1
ip -n tdm-a link set sync0 up
check "sync0 flapped (1 s down, 100 leases made meanwhile): the session comes back" wait_for sync_ready b --timeout 5
check "after the flap the bulk resync makes both tables equal" converged_report
resyncs() { [[ $(sync_field b .resyncs.received) -ge 2 ]]; }
check "node b counted the second bulk resync" resyncs

# ------------------------------------------------------------ authentication and replays
capture_and_replay() {
    local pcap=$E2E_TMP/sync.pcap
    timeout 5 ip netns exec tdm-b tcpdump -i sync0 -c 20 -w "$pcap" udp port 9470 and src 203.0.113.1 >/dev/null 2>&1 || true
    local before_replay before_auth
    before_replay=$(metric b tandem_sync_rejected_total 'reason="replay"')
    before_auth=$(metric b tandem_sync_rejected_total 'reason="auth"')
    ip netns exec tdm-a python3 - "$pcap" <<'EOF'
import socket, struct, sys
data = open(sys.argv[1], "rb").read()
off, frames = 24, []
while off + 16 <= len(data):
    incl = struct.unpack("<I", data[off + 8:off + 12])[0]
    frames.append(data[off + 16:off + 16 + incl])
    off += 16 + incl
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("203.0.113.1", 9470))
sent = 0
for f in frames:
    payload = f[14 + 20 + 8:]
    s.sendto(payload, ("203.0.113.2", 9470))                           # replayed as it was
    bad = bytearray(payload); bad[len(bad) // 2] ^= 0x40
    s.sendto(bytes(bad), ("203.0.113.2", 9470))                        # tampered
    sent += 1
print(f"replayed and tampered {sent} captured datagrams")
EOF
    sleep 0.5
    local after_replay after_auth
    after_replay=$(metric b tandem_sync_rejected_total 'reason="replay"')
    after_auth=$(metric b tandem_sync_rejected_total 'reason="auth"')
    echo "node b rejected: replay $before_replay -> $after_replay, auth $before_auth -> $after_auth"
    gt "$after_replay" "$before_replay" && gt "$after_auth" "$before_auth" && sync_ready b
}
check "captured datagrams replayed and tampered on sync0 are refused (counted replay and auth) and the session stays up" capture_and_replay

# ------------------------------------------------------------ split-brain witness
# VRRP adverts dropped on the front bridge while the sync link carries heartbeats: node b must
# not take the front VIP (the peer is alive and master), and raise the alarm.
split() {
    ip netns exec tdm-sw nft -f - <<'EOF'
table bridge tdm_split {
    chain adverts { type filter hook forward priority 0; ip protocol 112 drop; }
}
EOF
}
split
witness() {
    stays_for 1500 vrrp_all b BACKUP || return 1
    local alarm
    alarm=$(metric b tandem_vrrp_split_brain_alarm)
    echo "split-brain alarm gauges summed on b: $alarm; held takeovers: $(metric b tandem_vrrp_takeovers_held_total)"
    ge "$alarm" 1
}
check "adverts dropped between the nodes, sync link alive: node b stays BACKUP and raises the split-brain alarm" witness
ip netns exec tdm-sw nft delete table bridge tdm_split
alarm_clear() { [[ $(metric b tandem_vrrp_split_brain_alarm) == 0 ]]; }
check "adverts back: the alarm clears" wait_for alarm_clear --timeout 3
metrics_sync() {
    local t
    t=$(metrics a) || return 1
    grep -E '^tandem_sync_(peer_up|resynced|entries_total|lag_seconds_count|resyncs_total)' <<<"$t" | head -n 12
    [[ $(metric_sum tandem_sync_peer_up <<<"$t") == 1 ]] && gt "$(metric_sum tandem_sync_lag_seconds_count <<<"$t")" 0
}
check "metrics: tandem_sync_* on node a (peer up, lag histogram filled)" metrics_sync

check "scripts/lab stop b (exit 0)" "$LAB" stop b
check "scripts/lab stop a (exit 0)" "$LAB" stop a

# ------------------------------------------------------------ config push (seed 003's XMLRPC sync)
# Each node's lb group moves into shared.conf (in the node's own directory), @included by its
# configuration and named by sync.config_include.
split_conf() {  # split_conf NODE: $E2E_TMP/NODE/{node.conf,shared.conf}
    mkdir -p "$E2E_TMP/$1"
    python3 - "$ROOT/examples/lab/node-$1.conf" "$E2E_TMP/$1" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index("\nlb = {") + 1
depth, i = 0, start
while True:
    c = text[i]
    depth += c == "{"
    depth -= c == "}"
    i += 1
    if depth == 0 and c == "}":
        break
end = text.index(";", i) + 1
open(sys.argv[2] + "/shared.conf", "w").write(text[start:end] + "\n")
text = text[:start] + '@include "shared.conf"' + text[end:]
text = text.replace("sync = {", 'sync = {\n  config_include = "shared.conf";', 1)
open(sys.argv[2] + "/node.conf", "w").write(text)
PY
}
split_conf a && split_conf b
start_node a "$E2E_TMP/a/node.conf"
start_node b "$E2E_TMP/b/node.conf"
check "pair with shared.conf: sessions up" wait_for sync_ready b --timeout 5
sed -i 's/scheduler = "rr";/scheduler = "wrr";/' "$E2E_TMP/a/shared.conf"
digest_differs() { [[ $(sync_field b .config_match) == false ]]; }
push_ok() {
    ctl a config reload >/dev/null || return 1
    wait_for digest_differs --timeout 3 || { echo "node b did not see the digests differ"; return 1; }
    ctl a config push || return 1
    ctl b --json lb list | jq -e '.services[0].scheduler == "wrr"' >/dev/null || { ctl b lb list; return 1; }
    cmp "$E2E_TMP/a/shared.conf" "$E2E_TMP/b/shared.conf"
}
check "shared.conf edited on a (rr -> wrr), reloaded: b sees the digests differ; tandemctl config push applies it on b" push_ok
digest_matches() { [[ $(sync_field b .config_match) == true ]]; }
check "the configuration digests match again" wait_for digest_matches --timeout 3
push_bad() {
    local out rc=0
    cp "$E2E_TMP/b/shared.conf" "$E2E_TMP/b.before"
    printf 'lb = { services = ( { vip = "192.0.2.100"; port = 80; scheduler = "fastest"; } ); };\n' \
        >"$E2E_TMP/a/shared.conf"
    out=$(ctl a config push 2>&1) || rc=$?
    printf '%s\n' "$out"
    (( rc == 1 )) && grep -q 'shared.conf:1: .*scheduler' <<<"$out" &&
        cmp "$E2E_TMP/b.before" "$E2E_TMP/b/shared.conf" &&
        ctl b --json lb list | jq -e '.services[0].scheduler == "wrr"' >/dev/null
}
check "a broken shared.conf pushed: b refuses it with FILE:LINE, keeps its file and its running services" push_bad
check "scripts/lab stop b (exit 0)" "$LAB" stop b
check "scripts/lab stop a (exit 0)" "$LAB" stop a
check "tandemd logs show no crash (panic, segfault, abort)" \
    bash -c "! grep -iE 'panic|segfault|abort' $(node_log a) $(node_log b)"
e2e_end
