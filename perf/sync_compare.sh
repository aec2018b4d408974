#!/usr/bin/env bash
# What replication costs and what it saves, in the lab, side by side in one run:
#
#  1. DHCP rate: perf/dhcp_loadgen (closed loop, --window W, relay 192.0.2.10 → 198.18.0.0/16,
#     CLIENTS clients (20000) cycling, so the 65k pool never runs dry and every ACK is a change)
#     against node a of the pair, with the pair configured three ways, interleaved round by round
#     so machine noise hits each alike:
#       none    no sync group (node b runs, silent: it does not hold the server id)
#       async   sync, dhcp = "async" (ACK at once, the lease follows)
#       strict  sync, dhcp = "strict" (ACK once node b acknowledged the lease)
#     The journal is strict (fsync per batch) in all three. Printed per run: DORA/s, the ACK
#     latency, the CPU seconds each node's tandemd used (the lab runs both nodes on the same
#     cores, so node b's replication work competes with node a and the generator) and node a's
#     CPU per DORA; with sync also the replication lag p50/p99 (from tandem_sync_lag_seconds) and
#     the entries/s replicated.
#  2. Connections across a failover: ROUNDS times, C keep-alive HTTP connections through the VIP,
#     node a killed with SIGKILL mid-stream, count the connections that carried on with their
#     real server (tests/e2e/failover_client.py); node a restarted (it resyncs, then preempts).
#
#  3. Bulk resync: node a alone leases BULK_CLIENTS addresses, node b starts RESYNCS times; the
#     bulk's duration from b's log gives entries/s through the whole path.
#
# Prints JSON lines on stdout, progress on stderr. Needs root; takes the lab down at the start
# and the end (not alongside scripts/test). Environment: RUNS (3), DUR (5 s), WINDOW (64),
# ROUNDS (5), CONNS (16), BULK_CLIENTS (60000), RESYNCS (3), CLIENTS (20000); 0 skips a part.
# RATE: open loop at that many exchanges/s instead of the closed loop (capacity at a given rate,
# judged by drop_ratio as ISC's 2.5% method does).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
# shellcheck source=tests/e2e/vrrp_lib.sh
source "$ROOT/tests/e2e/vrrp_lib.sh"
RUNS=${RUNS:-3} DUR=${DUR:-5} WINDOW=${WINDOW:-64} ROUNDS=${ROUNDS:-5} CONNS=${CONNS:-16}
LOADGEN=$BUILD/perf/dhcp_loadgen
[[ -x $LOADGEN && -x $TANDEMD ]] || die "build first (ninja -C $BUILD)"
say() { printf '[sync_compare] %s\n' "$*" >&2; }

e2e_begin >/dev/null
CONF=$E2E_TMP/conf
mkdir -p "$CONF"
for n in a b; do
    src=$ROOT/examples/lab/node-$n.conf
    cp "$src" "$CONF/strict-$n.conf"
    sed 's/^  dhcp = "strict";/  dhcp = "async";/' "$src" >"$CONF/async-$n.conf"
    # Without the sync group (it is the file's last group).
    awk '/^sync = \{/ { skip = 1 } !skip { print } skip && /^\};/ { skip = 0 }' "$src" >"$CONF/none-$n.conf"
    grep -q '^  dhcp = "async";' "$CONF/async-$n.conf" || die "async config not made"
    ! grep -q '^sync = ' "$CONF/none-$n.conf" || die "none config not made"
done

# hist_quantile Q FILE-BEFORE FILE-AFTER: quantile of the histogram delta (bucket upper bound).
hist_quantile() {
    python3 - "$1" "$2" "$3" <<'PY'
import re, sys
q = float(sys.argv[1])
def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(r'tandem_sync_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out
b0, b1 = buckets(sys.argv[2]), buckets(sys.argv[3])
les = sorted(b1, key=lambda x: float("inf") if x == "+Inf" else float(x))
total = b1.get("+Inf", 0) - b0.get("+Inf", 0)
if total <= 0:
    print("null"); sys.exit()
for le in les:
    if b1[le] - b0.get(le, 0) >= q * total:
        print("null" if le == "+Inf" else float(le) * 1000); break
PY
}

# cpu_ticks NODE: user + system clock ticks of that node's tandemd (all its threads).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$(node_pid "$1")/stat"; }

run_dhcp() {  # run_dhcp MODE RUN
    local mode=$1 run=$2 out=$E2E_TMP/lg-$1-$2.json m0=$E2E_TMP/m0 m1=$E2E_TMP/m1 e0 e1
    "$LAB" stop a --kill >/dev/null 2>&1 || true
    "$LAB" stop b --kill >/dev/null 2>&1 || true
    rm -rf /var/lib/tandem/a /var/lib/tandem/b
    "$LAB" start a "$CONF/$mode-a.conf" >/dev/null
    "$LAB" start b "$CONF/$mode-b.conf" >/dev/null
    wait_for vrrp_all a MASTER --timeout 10 || die "node a not master ($mode)"
    [[ $mode == none ]] || wait_for bash -c "$TANDEMCTL -s $(node_sock a) --json sync | jq -e '.state == \"up\" and .resynced' >/dev/null" --timeout 10 \
        || die "sync not up ($mode)"
    metrics a >"$m0"
    local ca0 cb0 ca1 cb1 hz load=(--window "$WINDOW")
    [[ -n ${RATE:-} ]] && load=(--rate "$RATE")
    hz=$(getconf CLK_TCK)
    ca0=$(cpu_ticks a) cb0=$(cpu_ticks b)
    timeout --kill-after=5 $((DUR + 30)) ip netns exec tdm-client "$LOADGEN" \
        --relay 192.0.2.10 --server 192.0.2.100 "${load[@]}" --duration "$DUR" \
        --clients "${CLIENTS:-20000}" --timeout-ms 1000 --idle-us 50 --quiet \
        -- --no-huge --no-shconf -m 256 --log-level=warning \
        --vdev net_af_packet0,iface=eth0,framecnt=4096 >"$out" 2>"$out.err" || true
    ca1=$(cpu_ticks a) cb1=$(cpu_ticks b)
    sleep 0.5
    metrics a >"$m1"
    e0=$(metric_sum tandem_sync_entries_total 'kind="lease"' 'direction="out"' <"$m0")
    e1=$(metric_sum tandem_sync_entries_total 'kind="lease"' 'direction="out"' <"$m1")
    jq -c --arg mode "$mode" --argjson run "$run" \
        --argjson p50 "$(hist_quantile 0.5 "$m0" "$m1")" --argjson p99 "$(hist_quantile 0.99 "$m0" "$m1")" \
        --argjson entries "$(( ${e1%.*} - ${e0%.*} ))" \
        --argjson cpu_a "$(awk -v t=$((ca1 - ca0)) -v h="$hz" 'BEGIN { print t / h }')" \
        --argjson cpu_b "$(awk -v t=$((cb1 - cb0)) -v h="$hz" 'BEGIN { print t / h }')" \
        '{bench: "sync_dhcp", mode: $mode, run: $run, dora_per_s: .achieved_exchanges_per_s,
          offered_rate: .offered_rate, drop_ratio: .drop_ratio,
          completed: .exchanges.completed, dropped: .exchanges.dropped, naks: .naks,
          ack_latency_us: .latency_us.dora, lag_p50_ms_le: $p50, lag_p99_ms_le: $p99,
          lease_entries_replicated: $entries,
          lease_entries_per_s: ($entries / .elapsed_s),
          cpu_s_node_a: $cpu_a, cpu_s_node_b: $cpu_b,
          cpu_us_per_dora_node_a: (if .exchanges.completed > 0 then $cpu_a * 1e6 / .exchanges.completed else null end)}' "$out" \
        || { say "loadgen output unreadable ($mode run $run): $(tail -n 3 "$out.err")"; return 0; }
}

for run in $(seq 1 "$RUNS"); do
    for mode in none async strict; do
        say "dhcp: $mode, run $run"
        run_dhcp "$mode" "$run"
    done
done

# ------------------------------------------------------------ connections across failovers
"$LAB" stop a --kill >/dev/null 2>&1 || true
"$LAB" stop b --kill >/dev/null 2>&1 || true
rm -rf /var/lib/tandem/a /var/lib/tandem/b
"$LAB" start a >/dev/null
"$LAB" start b >/dev/null
survived=0 total=0
for round in $(seq 1 "$ROUNDS"); do
    wait_for vrrp_all a MASTER --timeout 10 || die "round $round: node a not master"
    wait_for bash -c "$TANDEMCTL -s $(node_sock b) --json sync | jq -e '.state == \"up\" and .resynced' >/dev/null" --timeout 10
    out=$E2E_TMP/fo-$round.json
    ip netns exec tdm-client python3 "$ROOT/tests/e2e/failover_client.py" 192.0.2.100 80 "$CONNS" 5 \
        >"$out" 2>"$out.err" &
    pid=$!
    wait_for grep -q ready "$out.err" --timeout 5 || true
    sleep 1.5
    "$LAB" stop a --kill >/dev/null 2>&1
    wait "$pid" || true
    ok_conns=$(jq '[.servers[] | select(length == 1)] | length - 0' "$out")
    errs=$(jq '.errors | length' "$out")
    ok_conns=$(( ok_conns - errs < 0 ? 0 : ok_conns - errs ))
    survived=$((survived + ok_conns)) total=$((total + CONNS))
    jq -c --argjson round "$round" '{bench: "sync_failover", round: $round, conns, errors: (.errors | length), requests, max_gap_ms}' "$out"
    say "failover round $round: $ok_conns/$CONNS connections carried on"
    "$LAB" start a >/dev/null
done
(( total == 0 )) || printf '{"bench": "sync_failover_total", "connections": %d, "survived": %d, "ratio": %s}\n' \
    "$total" "$survived" "$(awk -v s="$survived" -v t="$total" 'BEGIN { printf "%.3f", s / t }')"

# ------------------------------------------------------------ bulk resync throughput
# Node a alone leases the relayed pool (65k addresses) to BULK_CLIENTS clients; then node b
# starts (RESYNCS times) and its log says how long the bulk from a took, through the whole path
# (a's view → channel → b's keeper journal + the worker's store).
BULK_CLIENTS=${BULK_CLIENTS:-60000} RESYNCS=${RESYNCS:-3}
if (( RESYNCS > 0 )); then
    "$LAB" stop a --kill >/dev/null 2>&1 || true
    "$LAB" stop b --kill >/dev/null 2>&1 || true
    rm -rf /var/lib/tandem/a /var/lib/tandem/b
    "$LAB" start a >/dev/null
    wait_for vrrp_all a MASTER --timeout 10 || die "bulk: node a not master"
    say "bulk: leasing $BULK_CLIENTS addresses on node a alone"
    timeout --kill-after=5 120 ip netns exec tdm-client "$LOADGEN" \
        --relay 192.0.2.10 --server 192.0.2.100 --window 64 --duration 60 \
        --max-exchanges "$BULK_CLIENTS" --clients "$BULK_CLIENTS" --timeout-ms 1000 --idle-us 50 --quiet \
        -- --no-huge --no-shconf -m 256 --log-level=warning \
        --vdev net_af_packet0,iface=eth0,framecnt=4096 >"$E2E_TMP/bulk-lg.json" 2>&1 || true
    for i in $(seq 1 "$RESYNCS"); do
        "$LAB" stop b --kill >/dev/null 2>&1 || true
        rm -rf /var/lib/tandem/b
        "$LAB" start b >/dev/null
        wait_for bash -c "$TANDEMCTL -s $(node_sock b) --json sync | jq -e '.resynced' >/dev/null" --timeout 60 \
            || die "bulk: node b did not resync"
        line=$(grep 'bulk resync from the peer complete' "$(node_log b)" | tail -n 1)
        leases=$(sed -E 's/.*complete: ([0-9]+) leases.*/\1/' <<<"$line")
        ms=$(sed -E 's/.* in ([0-9]+) ms.*/\1/' <<<"$line")
        printf '{"bench": "sync_bulk_resync", "run": %d, "leases": %s, "ms": %s, "entries_per_s": %s}\n' \
            "$i" "$leases" "$ms" "$(awk -v n="$leases" -v m="$ms" 'BEGIN { printf "%.0f", (m > 0 ? n * 1000 / m : 0) }')"
    done
fi
