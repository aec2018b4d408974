#!/usr/bin/env bash
# shellcheck disable=SC2317  # check functions are invoked indirectly
# DHCP served by the workers, checked with real clients: dhclient in tdm-dhcp (DORA with the
# lab's options, renewal to the same address, release, a MAC reservation, 20 clients at once),
# perfdhcp in tdm-client acting as the relay 192.0.2.10 (subnet 198.18.0.0/16), tandemctl
# leases / dhcp pools / kea-csv / lease release, the backup staying silent, and leases that
# survive a restart and a kill -9 (strict journal).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/vrrp_lib.sh
source "$ROOT/tests/e2e/vrrp_lib.sh"
E2E_VERBOSE=${E2E_VERBOSE-1}

NS=tdm-dhcp
LEASE_DIRS=(/var/lib/tandem/a /var/lib/tandem/b)

e2e_cleanup_dhcp() {
    local rc=$?
    set +e
    pkill -f "dhclient.*$E2E_TMP" 2>/dev/null
    for l in $(ip -n "$NS" -o link show type macvlan 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
        ip -n "$NS" link del "$l" 2>/dev/null
    done
    ip -n "$NS" addr flush dev eth0 2>/dev/null
    (exit "$rc")
    e2e_cleanup
}

e2e_begin
trap e2e_cleanup_dhcp EXIT
rm -rf "${LEASE_DIRS[@]}"

SCRIPT=$E2E_TMP/dhclient-script
dhclient_script "$SCRIPT"

# dhcp_client IF NAME [ARGS...]: one dhclient run (-1: a single attempt), its own files.
dhcp_client() {
    local ifc=$1 name=$2
    shift 2
    timeout 30 ip netns exec "$NS" dhclient -v -1 -sf "$SCRIPT" -pf "$E2E_TMP/$name.pid" \
        -lf "$E2E_TMP/$name.leases" "$@" "$ifc" 2>&1
}
lease_ip() { ip -n "$NS" -4 -o addr show dev "$1" | awk '{print $4}' | cut -d/ -f1 | head -n1; }

start_node() {
    local out
    if out=$("$LAB" start "$@" 2>&1); then ok "scripts/lab start $*"; else not_ok "scripts/lab start $*" "$out"; return 1; fi
}

start_node a || e2e_end
check "node a is VRRP master (it holds the server identifier 192.0.2.100)" \
    wait_for vrrp_all a MASTER --timeout 5

# ------------------------------------------------------------ DORA with dhclient
FIRST_IP=
dora() {
    local out
    out=$(dhcp_client eth0 c0) || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out" | grep -E 'DHCP|bound'
    FIRST_IP=$(lease_ip eth0)
    echo "address on eth0: $FIRST_IP"
    [[ $FIRST_IP =~ ^192\.0\.2\.([0-9]+)$ ]] && (( BASH_REMATCH[1] >= 150 && BASH_REMATCH[1] <= 250 )) \
        && grep -q "DHCPACK of $FIRST_IP from 192.0.2.100" <<<"$out"
}
check "dhclient in $NS gets an address from 192.0.2.150-250 (server id 192.0.2.100)" dora
FIRST_IP=$(lease_ip eth0)  # check runs its function in a subshell

lease_options() {
    local f=$E2E_TMP/c0.leases
    grep -E 'option (subnet-mask|routers|domain-name-servers|domain-name|dhcp-lease-time)' "$f" | tail -n 5
    grep -q 'option subnet-mask 255.255.255.0;' "$f" && grep -q 'option routers 192.0.2.100;' "$f" &&
        grep -q 'option domain-name-servers 192.0.2.53;' "$f" &&
        grep -q 'option domain-name "lab.example";' "$f" && grep -q 'option dhcp-lease-time 3600;' "$f"
}
check "the lease carries the configured mask, routers, DNS, domain and lease time" lease_options

renew_same() {
    local out ip
    out=$(dhcp_client eth0 c0) || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out" | grep -E 'DHCP|bound'
    ip=$(lease_ip eth0)
    [[ -n $FIRST_IP && $ip == "$FIRST_IP" ]] && grep -q "DHCPREQUEST for $FIRST_IP" <<<"$out" \
        && grep -q "DHCPACK of $FIRST_IP" <<<"$out"
}
check "dhclient renews and keeps the same address" renew_same

C0_MAC=$(mac_of "$NS" eth0)
ctl_lease() {
    local out
    out=$(ctl a --json leases --ip "$FIRST_IP") || return 1
    jq -c '.[] | {ip, mac, state, remaining_s, subnet}' <<<"$out"
    jq -e --arg m "$C0_MAC" '.[0].state == "bound" and .[0].mac == $m and .[0].remaining_s > 3500' <<<"$out" >/dev/null
}
check "tandemctl leases --ip shows the bound lease with the client's MAC" ctl_lease

kea_csv() {
    local out
    out=$(ctl a leases --format kea-csv) || return 1
    printf '%s\n' "$out"
    head -n1 <<<"$out" | grep -qx 'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context' &&
        grep -qE "^$FIRST_IP,$C0_MAC,,3600,[0-9]+,1,0,0,,0,$" <<<"$out"
}
check "tandemctl leases --format kea-csv writes Kea's memfile CSV" kea_csv

release() {
    local out
    out=$(dhcp_client eth0 c0 -r) || true
    printf '%s\n' "$out" | grep -E 'DHCPRELEASE' || return 1
    sleep 0.3
    out=$(ctl a --json leases --ip "$FIRST_IP") || return 1
    echo "leases for $FIRST_IP after release: $out"
    [[ $(jq 'length' <<<"$out") == 0 ]]
}
check "dhclient -r releases the lease" release

# ------------------------------------------------------------ reservation
reservation() {
    local out ip
    ip -n "$NS" link add rsv0 link eth0 type macvlan mode bridge || return 1
    ip -n "$NS" link set rsv0 address 02:00:00:00:0d:50 up
    out=$(dhcp_client rsv0 rsv) || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out" | grep -E 'DHCPACK|bound'
    ip=$(lease_ip rsv0)
    echo "reserved client got $ip"
    [[ $ip == 192.0.2.50 ]]
}
check "the MAC reservation 02:00:00:00:0d:50 gets its fixed address 192.0.2.50" reservation

# ------------------------------------------------------------ 20 clients at once
many() {
    local i pids=() ips
    for i in $(seq 1 20); do
        ip -n "$NS" link add "mc$i" link eth0 type macvlan mode bridge || return 1
        ip -n "$NS" link set "mc$i" up
    done
    for i in $(seq 1 20); do
        dhcp_client "mc$i" "m$i" >"$E2E_TMP/m$i.out" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    ips=$(for i in $(seq 1 20); do lease_ip "mc$i"; done | sort)
    echo "addresses: $(tr '\n' ' ' <<<"$ips")"
    [[ $(grep -c . <<<"$ips") == 20 && $(sort -u <<<"$ips" | grep -c .) == 20 ]] &&
        ! grep -qvE '^192\.0\.2\.(1[5-9][0-9]|2[0-4][0-9]|250)$' <<<"$ips"
}
check "20 clients at once get 20 distinct addresses from the pool" many

pools() {
    local out
    out=$(ctl a dhcp pools) || return 1
    printf '%s\n' "$out"
    out=$(ctl a --json dhcp pools) || return 1
    jq -e '.[] | select(.subnet == "192.0.2.0/24") | .bound >= 20 and .size == 101 and .free == .size - .bound - .offered - .declined' <<<"$out" >/dev/null
}
check "tandemctl dhcp pools counts the bound leases" pools

# ------------------------------------------------------------ relay: perfdhcp
perfdhcp_relay() {
    local out rc=0
    out=$(timeout 60 ip netns exec tdm-client perfdhcp -4 -l eth0 -r 200 -n 2000 -R 100000 -W 2000000 \
        192.0.2.100 2>&1) || rc=$?
    grep -E 'Statistics|sent packets|received packets|drops:|non unique' <<<"$out"
    (( rc == 0 )) || { echo "perfdhcp exit status $rc"; return 1; }
    [[ $(grep -c '^drops: 0$' <<<"$out") == 2 && $(grep -c '^sent packets: 2000$' <<<"$out") == 2 ]] &&
        ! grep -qE 'non unique addresses: [1-9]' <<<"$out"
}
check "perfdhcp as relay 192.0.2.10: 2000 DORA exchanges at 200/s, no drops" perfdhcp_relay

relayed_leases() {
    local n
    n=$(ctl a --json leases | jq '[.[] | select(.subnet == "198.18.0.0/16" and .state == "bound")] | length') || return 1
    echo "bound leases in 198.18.0.0/16: $n"
    (( n >= 2000 ))
}
check "the relayed clients hold leases in 198.18.0.0/16" relayed_leases

dhcp_metrics() {
    local t rx tx
    t=$(metrics a) || return 1
    grep -E '^tandem_dhcp_(received|sent)_total' <<<"$t"
    rx=$(metric_sum tandem_dhcp_received_total 'type="discover"' <<<"$t")
    tx=$(metric_sum tandem_dhcp_sent_total 'type="ack"' <<<"$t")
    ge "$rx" 2021 && ge "$tx" 2022 && gt "$(metric_sum tandem_dhcp_journal_fsyncs_total <<<"$t")" 0
}
check "metrics count DHCP messages and journal fsyncs" dhcp_metrics

# ------------------------------------------------------------ the backup stays silent
start_node b || e2e_end
check "node b is BACKUP" wait_for vrrp_all b BACKUP --timeout 5
backup_silent() {
    local before after sent
    before=$(metric b tandem_dhcp_refusals_total 'reason="standby"') || return 1
    dhcp_client mc1 m1 >/dev/null || true
    after=$(metric b tandem_dhcp_refusals_total 'reason="standby"') || return 1
    sent=$(metric b tandem_dhcp_sent_total) || return 1
    echo "node b: standby refusals $before -> $after, replies sent $sent"
    gt "$after" "$before" && [[ $sent == 0 ]]
}
check "node b (backup) does not answer: requests counted as standby, nothing sent" backup_silent
"$LAB" stop b >/dev/null 2>&1 || true

# ------------------------------------------------------------ leases survive restarts
survives() {
    local how=$1 out n ip
    "$LAB" stop a $how >/dev/null 2>&1 || return 1
    start_node a >/dev/null || return 1
    wait_for vrrp_all a MASTER --timeout 5 || return 1
    n=$(ctl a --json leases | jq '[.[] | select(.state == "bound")] | length') || return 1
    echo "bound leases after restart: $n"
    (( n >= 2020 )) || return 1  # 20 + 2000 (the reservation is outside the pool: no record)
    ip=$(lease_ip mc5)
    out=$(dhcp_client mc5 m5) || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out" | grep -E 'DHCPREQUEST|DHCPACK|DHCPNAK'
    [[ -n $ip && $(lease_ip mc5) == "$ip" ]] && grep -q "DHCPACK of $ip" <<<"$out"
}
check "after a clean restart every lease is restored and a client renews its address" survives ""
check "after kill -9 every acknowledged lease is restored and a client renews its address" survives --kill

lease_release_cmd() {
    local ip out
    ip=$(lease_ip mc7)
    ctl a lease release "$ip" || return 1
    sleep 0.3
    out=$(ctl a --json leases --ip "$ip") || return 1
    echo "after tandemctl lease release $ip: $out"
    [[ $(jq 'length' <<<"$out") == 0 ]]
}
check "tandemctl lease release frees a lease" lease_release_cmd

bad_input() {
    local out rc=0
    out=$(ctl a lease release 192.0.2.249 2>&1) || rc=$?
    echo "lease release of a free address: exit $rc: $out"
    (( rc == 1 )) && grep -q '192.0.2.249 has no active lease' <<<"$out" || return 1
    rc=0
    out=$(ctl a leases --ip 192.0.2.999 2>&1) || rc=$?
    echo "leases --ip 192.0.2.999: exit $rc: $(head -n1 <<<"$out")"
    (( rc == 2 )) && grep -q "not an IPv4 address: '192.0.2.999'" <<<"$out" || return 1
    rc=0
    out=$(ctl a leases --format csv 2>&1) || rc=$?
    echo "leases --format csv: exit $rc: $(head -n1 <<<"$out")"
    (( rc == 2 )) && grep -q "unknown format 'csv'" <<<"$out"
}
check "tandemctl refuses bad DHCP commands with a clear message (exit 1 from the daemon, 2 for usage)" bad_input

e2e_end
