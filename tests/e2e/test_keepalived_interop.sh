#!/usr/bin/env bash
# shellcheck disable=SC2317  # check functions are invoked indirectly
# VRRP interoperability with keepalived (Debian's 2.2.7): tandemd as node a in tdm-a, keepalived
# in tdm-b on kernel interfaces (front0 192.0.2.3/24, back0 198.51.100.3/24 for this test only)
# with a keepalived.conf equivalent to node b's VRRP. Both roles, both directions of failover,
# preemption, a lower-priority tandemd, and no checksum/interval complaints on either side.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/vrrp_lib.sh
source "$ROOT/tests/e2e/vrrp_lib.sh"
E2E_VERBOSE=${E2E_VERBOSE-1}   # print the figures of passing checks too

CONF_A=$ROOT/examples/lab/node-a.conf
INTERVAL_MS=100
MD_MS=$(master_down_ms "$INTERVAL_MS" 100)      # keepalived (priority 100) as backup: 360.9 ms
SKEW_MS=$(skew_ms "$INTERVAL_MS" 100)           # 60.9 ms
MAX_KILL_MS=$(awk -v m="$MD_MS" 'BEGIN { printf "%.0f", m + 100 }')
MAX_STOP_MS=$(awk -v s="$SKEW_MS" 'BEGIN { printf "%.0f", s + 100 }')
LOW_SKEW_MS=$(skew_ms "$INTERVAL_MS" 50)        # tandemd at priority 50 as backup: 80.5 ms
MAX_LOW_STOP_MS=$(awk -v s="$LOW_SKEW_MS" 'BEGIN { printf "%.0f", s + 100 }')
KA_CONF=$E2E_TMP/keepalived-b.conf
KA_LOG=$E2E_TMP/keepalived-b.log

interop_cleanup() {
    local rc=$?
    set +e
    probe_stop
    keepalived_stop b --kill
    kernel_ifaces_down b
    (exit "$rc")
    e2e_cleanup
}

e2e_begin
trap interop_cleanup EXIT

keepalived_installed() {
    if ! command -v keepalived >/dev/null; then
        (install_deps) || return 1
    fi
    keepalived --version 2>&1 | head -n 1
    command -v keepalived >/dev/null
}
check "keepalived is installed (scripts/lib.sh DEPS)" keepalived_installed
command -v keepalived >/dev/null || e2e_end

# ------------------------------------------------------------ helpers
states() {
    local node=$1 want=$2
    if wait_for vrrp_all "$node" "$want" --timeout 5; then
        echo "tandemd $node: $(vrrp_states "$node")"
        return 0
    fi
    echo "tandemd $node: $(vrrp_states "$node") (want all $want)"
    return 1
}
ka_addrs() { ip -n tdm-b -br addr show dev front0; ip -n tdm-b -br addr show dev back0; }
ka_master() {
    if wait_for keepalived_has_vips b --timeout 5; then ka_addrs; return 0; fi
    ka_addrs
    echo "keepalived in tdm-b does not hold both VIPs; its log:"
    tail -n 15 "$KA_LOG"
    return 1
}
ka_backup() {
    if wait_for keepalived_no_vips b --timeout 5; then ka_addrs; grep -E 'Entering (BACKUP|MASTER)' "$KA_LOG" | tail -n 4; return 0; fi
    ka_addrs
    echo "keepalived in tdm-b still holds a VIP; its log:"
    tail -n 15 "$KA_LOG"
    return 1
}
# arp_from MAC: arping 192.0.2.100 from tdm-client, every reply from MAC.
arp_from() {
    local out macs
    out=$(timeout "$CMD_TIMEOUT" ip netns exec tdm-client arping -c 2 -I eth0 192.0.2.100 2>&1) || true
    printf '%s\n' "$out" | grep -i 'bytes from' || true
    macs=$(grep -oiE 'from ([0-9a-f]{2}:){5}[0-9a-f]{2}' <<<"$out" | awk '{print tolower($2)}')
    echo "want every reply from $1"
    [[ -n $macs ]] && ! grep -q -v -x "$1" <<<"$macs"
}
# keepalived's adverts must all be accepted: no refusal for a reason that means the two
# implementations disagree (checksum variant, version, interval, address list, TTL, length,
# type, auth). A stray advert for a VRID we do not run ("vrid", seen once in three CI runs, not
# yet explained) is reported but is no interop failure.
invalid_zero() {
    local t n reason total=0
    t=$(metrics a) || return 1
    grep '^tandem_vrrp_adverts_invalid_total' <<<"$t" | grep -v ' 0$' || true
    for reason in ttl version type length checksum address_list interval auth; do
        n=$(metric_sum tandem_vrrp_adverts_invalid_total "reason=\"$reason\"" <<<"$t")
        total=$(( total + ${n%.*} ))
    done
    echo "adverts refused for a disagreement on node a: $total"
    (( total == 0 ))
}
peer_checksum() {
    local out
    out=$(ctl a --json vrrp) || return 1
    jq -c '.[] | {name, state, master, adverts_received, peer_checksum}' <<<"$out"
    jq -e 'length == 2 and all(.[]; .peer_checksum == "keepalived" and .adverts_received > 0)' <<<"$out" >/dev/null
}
# start_a DESCRIPTION [CONFIG]: scripts/lab start a, or end the test.
start_a() {
    local desc=$1 out
    shift
    if out=$("$LAB" start a "$@" 2>&1); then ok "$desc"; else not_ok "$desc" "$out"; e2e_end; fi
}
report_blackout() { # MAX_MS WHAT
    echo "$2: blackout ${BLACKOUT_MS:-?} ms (limit $1 ms)"
    echo "$BLACKOUT_DIAG"
    [[ -n $BLACKOUT_MS ]] && ge "$1" "$BLACKOUT_MS"
}

# ------------------------------------------------------------ setup
kernel_ifaces_up b
keepalived_conf "$KA_CONF" b 100 0.1
check "keepalived -t accepts the generated keepalived.conf (v3, VRIDs 51/52, advert_int 0.1, sync group)" \
    timeout "$CMD_TIMEOUT" ip netns exec tdm-b keepalived -t -f "$KA_CONF"

start_a "scripts/lab start a (tandemd, priority 150)"
check "tandemd a becomes MASTER" states a MASTER
if keepalived_start b "$KA_CONF" "$E2E_TMP"; then
    ok "keepalived starts in tdm-b (front0 192.0.2.3/24, back0 198.51.100.3/24)"
else
    not_ok "keepalived starts in tdm-b (front0 192.0.2.3/24, back0 198.51.100.3/24)" "$(cat "$KA_LOG")"
    e2e_end
fi
A_MAC=$(node_port_mac a front0 || true)
B_MAC=$(mac_of tdm-b front0)

# ------------------------------------------------------------ tandemd master, keepalived backup
ka_backup_at_start() {
    wait_for grep -q '(VI_BACK) Entering BACKUP STATE' "$KA_LOG" --timeout 5 || { tail "$KA_LOG"; return 1; }
    if ! stays_for 1000 keepalived_no_vips b || ! vrrp_all a MASTER; then ka_addrs; vrrp_states a; return 1; fi
    grep -E 'Entering|VIPs' "$KA_LOG"
    echo "tandemd a: $(vrrp_states a)"
}
check "keepalived stays BACKUP (no VIP in tdm-b for 1 s) while tandemd is MASTER" ka_backup_at_start
check "arping 192.0.2.100: only tandemd's front0 MAC answers" arp_from "$A_MAC"
check "ping 192.0.2.100 (tandemd) from tdm-client" ping_from tdm-client 192.0.2.100 3

# ------------------------------------------------------------ tandemd stops: keepalived takes over
measure_blackout tdm-client 192.0.2.100 "keepalived_has_vips b" -- "$LAB" stop a || true
check "SIGTERM tandemd (priority 0): keepalived takes over within skew + 100 ms ($MAX_STOP_MS ms; measured ${BLACKOUT_MS:-?} ms)" \
    report_blackout "$MAX_STOP_MS" "tandemd SIGTERM -> keepalived"
check "keepalived MASTER: both VIPs on tdm-b's interfaces" ka_master
check "arping 192.0.2.100: keepalived's front0 (kernel) MAC answers" arp_from "$B_MAC"
check "ping 198.51.100.1 (keepalived) from tdm-rs1" ping_from tdm-rs1 198.51.100.1 3

# ------------------------------------------------------------ tandemd returns and preempts
start_a "scripts/lab start a again (priority 150)"
check "tandemd a preempts keepalived: MASTER for both" states a MASTER
check "keepalived returns to BACKUP (VIPs removed from tdm-b)" ka_backup
check "tandemd learned keepalived's checksum: peer_checksum \"keepalived\" on both instances" peer_checksum
check "arping 192.0.2.100 after preemption: tandemd's MAC answers" arp_from "$A_MAC"

# ------------------------------------------------------------ kill -9 tandemd
measure_blackout tdm-client 192.0.2.100 "keepalived_has_vips b" -- "$LAB" stop a --kill || true
check "kill -9 tandemd: keepalived answers within Master_Down + 100 ms ($MAX_KILL_MS ms; measured ${BLACKOUT_MS:-?} ms)" \
    report_blackout "$MAX_KILL_MS" "tandemd kill -9 -> keepalived"
check "keepalived MASTER after the kill" ka_master

# ------------------------------------------------------------ tandemd with the lower priority
LOW_A=$E2E_TMP/node-a-prio50.conf
conf_priority "$CONF_A" "$LOW_A" 50
start_a "scripts/lab start a with priority 50" "$LOW_A"
check "tandemd (priority 50) is BACKUP for both" states a BACKUP
low_backup_stable() {
    local ms
    ms=$(awk -v m="$(master_down_ms "$INTERVAL_MS" 50)" 'BEGIN { printf "%.0f", 5 * m }')
    if ! stays_for "$ms" vrrp_all a BACKUP || ! keepalived_has_vips b; then vrrp_states a; ka_addrs; return 1; fi
    echo "for $ms ms (5 x tandemd's Master_Down): tandemd $(vrrp_states a), keepalived holds the VIPs"
    ctl a --json vrrp | jq -c '.[] | {name, state, master, adverts_received, peer_checksum}'
    [[ $(vrrp_field a VI_FRONT master) == 192.0.2.3 && $(vrrp_field a VI_BACK master) == 198.51.100.3 ]]
}
check "keepalived (100) stays MASTER, tandemd (50) BACKUP with master 192.0.2.3 / 198.51.100.3" low_backup_stable
check "tandemd as backup: peer_checksum \"keepalived\", adverts received" peer_checksum
check "tandemd as backup: 0 invalid adverts from keepalived" invalid_zero
check "ping 192.0.2.100 (keepalived) with tandemd as backup" ping_from tdm-client 192.0.2.100 3

# keepalived stops cleanly (priority 0): tandemd (50) takes over after its skew.
measure_blackout tdm-client 192.0.2.100 "vrrp_all a MASTER" -- keepalived_stop b || true
check "SIGTERM keepalived: tandemd (50) takes over within its skew + 100 ms ($MAX_LOW_STOP_MS ms; measured ${BLACKOUT_MS:-?} ms)" \
    report_blackout "$MAX_LOW_STOP_MS" "keepalived SIGTERM -> tandemd"
check "tandemd (50) is MASTER for both" states a MASTER
check "keepalived removed its VIPs when it stopped" keepalived_no_vips b

# ------------------------------------------------------------ logs
ka_log_clean() {
    local bad
    echo "keepalived log: $(wc -l <"$KA_LOG") lines, $(grep -c 'Entering MASTER STATE' "$KA_LOG") x MASTER, $(grep -c 'Entering BACKUP STATE' "$KA_LOG") x BACKUP"
    bad=$(grep -iE 'checksum|invalid|interval|mismatch|bogus|wrong|malformed|error|discard' "$KA_LOG" || true)
    [[ -z $bad ]] && return 0
    echo "keepalived complained:"
    printf '%s\n' "$bad" | head -n 10
    return 1
}
check "keepalived's log has no checksum, interval, invalid or error messages" ka_log_clean
check "tandemd: still 0 invalid adverts" invalid_zero
check "scripts/lab stop a (exit 0)" "$LAB" stop a
check "tandemd log shows no crash (panic, segfault, abort)" bash -c "! grep -iE 'panic|segfault|abort' '$(node_log a)'"

ifaces_restored() {
    kernel_ifaces_down b
    ka_addrs
    [[ -z $(ip -n tdm-b -4 addr show dev front0) && -z $(ip -n tdm-b -4 addr show dev back0) ]] \
        && [[ $(ip netns exec tdm-b sysctl -n net.ipv4.conf.front0.arp_ignore) == 8 ]]
}
check "tdm-b's front0/back0 have no kernel address again (arp_ignore 8)" ifaces_restored

e2e_end
