#!/usr/bin/env bash
# VRRP failover blackout in the lab: tandemd <-> tandemd and keepalived <-> keepalived, at several
# advert intervals. Each run: node a (priority 150) is MASTER and node b (100) BACKUP and stable; a
# 10 ms ICMP probe (tests/e2e/probe.py) runs from tdm-client to 192.0.2.100; the master is killed
# with SIGKILL; the blackout is the largest gap between consecutive echo replies; node a is
# restarted and preempts again.
#
# keepalived runs on kernel interfaces in tdm-a and tdm-b (192.0.2.2|3/24, 198.51.100.2|3/24,
# given for the bench only). SIGKILL leaves keepalived's VIPs on the interface, where the kernel
# would go on answering for them, so the bench removes them right after the kill: together that is
# what a dead node looks like, as a killed tandemd is (its AF_PACKET sockets die with it).
#
# Prints one JSON line per (system, interval) on stdout:
#   {"system", "advert_interval_ms", "runs", "failed_runs", "p50_ms", "max_ms", "min_ms",
#    "master_down_ms", "samples_ms", "truncated"}
# Progress goes to stderr. Needs root; takes the lab down at the start and at the end, so do not
# run it alongside scripts/test or another lab user.
#
# Environment: RUNS (default 20), INTERVALS (ms, default "1000 100 50"), SYSTEMS (default
# "tandemd keepalived"), BUDGET_S (default 1500: no new run starts after that many seconds;
# the (system, interval) pairs cut short say "truncated": true).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
# shellcheck source=tests/e2e/vrrp_lib.sh
source "$ROOT/tests/e2e/vrrp_lib.sh"

RUNS=${RUNS:-20}
INTERVALS=${INTERVALS:-1000 100 50}
SYSTEMS=${SYSTEMS:-tandemd keepalived}
BUDGET_S=${BUDGET_S:-1500}
START_S=$(date +%s)
PRIO_A=150 PRIO_B=100

say() { printf '[%4ds] %s\n' $(( $(date +%s) - START_S )) "$*" >&2; }
over_budget() { (( $(date +%s) - START_S >= BUDGET_S )); }

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    probe_stop
    keepalived_stop a --kill
    keepalived_stop b --kill
    {
        "$LAB" stop a --kill
        "$LAB" stop b --kill
        "$LAB" down
    } >/dev/null 2>&1
    rm -rf "$E2E_TMP"
    exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

need_root
[[ -x $TANDEMD && -x $TANDEMCTL ]] || die "build first: $TANDEMD / $TANDEMCTL missing"
command -v keepalived >/dev/null || [[ " $SYSTEMS " != *" keepalived "* ]] \
    || die "keepalived is not installed (scripts/lib.sh install_deps installs it)"
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up >/dev/null || die "scripts/lab up failed"

# random_phase INTERVAL_MS: sleep a random 0..INTERVAL ms, so that the kill lands at a random
# point of the advert cycle (not a synchronisation wait: without it every run would kill the
# master at the same phase after its start, and the blackout would not spread over
# [Master_Down - interval, Master_Down] as it does in the field).
random_phase() { sleep "$(awk -v i="$1" -v r="$RANDOM" 'BEGIN { printf "%.3f", i * r / 32767 / 1000 }')"; }

# report SYSTEM INTERVAL FAILED TRUNCATED SAMPLES...: the JSON line.
report() {
    local system=$1 interval=$2 failed=$3 truncated=$4
    shift 4
    python3 - "$system" "$interval" "$failed" "$truncated" "$(master_down_ms "$interval" "$PRIO_B")" "$@" <<'EOF'
import json, statistics, sys
system, interval, failed, truncated, md = sys.argv[1:6]
xs = sorted(float(x) for x in sys.argv[6:])
print(json.dumps({
    "system": system, "advert_interval_ms": int(interval), "runs": len(xs),
    "failed_runs": int(failed),
    "p50_ms": round(statistics.median(xs), 1) if xs else None,
    "max_ms": max(xs) if xs else None, "min_ms": min(xs) if xs else None,
    "master_down_ms": float(md), "samples_ms": xs, "truncated": truncated == "1"}), flush=True)
EOF
}

# ------------------------------------------------------------ tandemd
td_conf() { # NODE INTERVAL -> path of a config copy
    local f=$E2E_TMP/node-$1-$2.conf
    conf_interval "$ROOT/examples/lab/node-$1.conf" "$f" "$2"
    printf '%s' "$f"
}
td_pair_ready() { vrrp_all a MASTER && vrrp_all b BACKUP; }
td_bench() {
    local interval=$1 ca cb i failed=0 truncated=0 samples=() settle
    ca=$(td_conf a "$interval") cb=$(td_conf b "$interval")
    settle=$(( interval * 2 ))
    "$LAB" stop a >/dev/null 2>&1 || true
    "$LAB" stop b >/dev/null 2>&1 || true
    "$LAB" start b "$cb" >/dev/null || die "tandemd b did not start"
    for (( i = 1; i <= RUNS; i++ )); do
        if over_budget; then truncated=1; say "budget of ${BUDGET_S}s spent: tandemd ${interval} ms stops after $((i - 1)) runs"; break; fi
        node_running a || "$LAB" start a "$ca" >/dev/null || { failed=$((failed + 1)); continue; }
        # Master up and stable: a MASTER and b BACKUP, still so two advert intervals later.
        if ! wait_for td_pair_ready --timeout $(( interval * 10 / 1000 + 10 )) \
            || ! stays_for "$settle" td_pair_ready; then
            say "tandemd ${interval} ms run $i: pair not ready (a: $(vrrp_states a); b: $(vrrp_states b))"
            failed=$((failed + 1)); continue
        fi
        random_phase "$interval"
        if measure_blackout tdm-client 192.0.2.100 "vrrp_all b MASTER" -- "$LAB" stop a --kill; then
            samples+=("$BLACKOUT_MS")
            say "tandemd ${interval} ms run $i: blackout $BLACKOUT_MS ms"
        else
            failed=$((failed + 1))
            say "tandemd ${interval} ms run $i failed: $BLACKOUT_DIAG"
        fi
        node_running a && "$LAB" stop a --kill >/dev/null 2>&1
    done
    "$LAB" stop a --kill >/dev/null 2>&1 || true
    "$LAB" stop b >/dev/null 2>&1 || true
    report tandemd "$interval" "$failed" "$truncated" "${samples[@]}"
}

# ------------------------------------------------------------ keepalived
ka_pair_ready() { keepalived_has_vips a && keepalived_no_vips b; }
ka_kill_a() {
    local child
    child=$(cat "$E2E_TMP/keepalived-a.vrrp.pid" 2>/dev/null || true)
    # SIGKILL the VRRP child (the process sending adverts) and the parent, and at once take away
    # the VIPs the killed keepalived leaves behind: a dead node answers nothing.
    # shellcheck disable=SC2086
    [[ -n ${KEEPALIVED_PID_a:-} ]] && kill -KILL $child "$KEEPALIVED_PID_a" 2>/dev/null
    ip -n tdm-a addr del 192.0.2.100/24 dev front0 2>/dev/null || true
    ip -n tdm-a addr del 198.51.100.1/24 dev back0 2>/dev/null || true
    keepalived_stop a --kill
}
ka_bench() {
    local interval=$1 int_s i failed=0 truncated=0 samples=() settle
    int_s=$(awk -v i="$interval" 'BEGIN { printf "%g", i / 1000 }')
    settle=$(( interval * 2 ))
    keepalived_conf "$E2E_TMP/ka-a-$interval.conf" a "$PRIO_A" "$int_s"
    keepalived_conf "$E2E_TMP/ka-b-$interval.conf" b "$PRIO_B" "$int_s"
    keepalived_start b "$E2E_TMP/ka-b-$interval.conf" "$E2E_TMP" || die "keepalived b did not start"
    for (( i = 1; i <= RUNS; i++ )); do
        if over_budget; then truncated=1; say "budget of ${BUDGET_S}s spent: keepalived ${interval} ms stops after $((i - 1)) runs"; break; fi
        if [[ -z ${KEEPALIVED_PID_a:-} ]]; then
            keepalived_start a "$E2E_TMP/ka-a-$interval.conf" "$E2E_TMP" || { failed=$((failed + 1)); continue; }
        fi
        if ! wait_for ka_pair_ready --timeout $(( interval * 10 / 1000 + 10 )) \
            || ! stays_for "$settle" ka_pair_ready; then
            say "keepalived ${interval} ms run $i: pair not ready"
            failed=$((failed + 1)); ka_kill_a; continue
        fi
        random_phase "$interval"
        if measure_blackout tdm-client 192.0.2.100 "keepalived_has_vips b" -- ka_kill_a; then
            samples+=("$BLACKOUT_MS")
            say "keepalived ${interval} ms run $i: blackout $BLACKOUT_MS ms"
        else
            failed=$((failed + 1))
            say "keepalived ${interval} ms run $i failed: $BLACKOUT_DIAG"
        fi
        ka_kill_a
    done
    ka_kill_a
    keepalived_stop b
    report keepalived "$interval" "$failed" "$truncated" "${samples[@]}"
}

for system in $SYSTEMS; do
    case $system in
        tandemd)
            for interval in $INTERVALS; do
                say "tandemd <-> tandemd, advert interval $interval ms, $RUNS runs"
                td_bench "$interval"
            done ;;
        keepalived)
            kernel_ifaces_up a
            kernel_ifaces_up b
            for interval in $INTERVALS; do
                say "keepalived <-> keepalived, advert interval $interval ms, $RUNS runs"
                ka_bench "$interval"
            done
            kernel_ifaces_down a
            kernel_ifaces_down b ;;
        *) die "unknown system '$system' (tandemd, keepalived)" ;;
    esac
done
say "done"
