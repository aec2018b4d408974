#!/usr/bin/env bash
# DHCPv4 servers side by side in the lab: tandemd (node a, strict journal) against Kea 2.2
# (memfile, persisted and not), each loaded by perfdhcp and by perf/dhcp_loadgen from tdm-client
# acting as the relay 192.0.2.10, on the same subnet (198.18.0.0/16, pool 198.18.0.10-255.250,
# selected by the relay address) over the same path (tdm-client eth0 -> bridge front -> tdm-a
# front0), with the same lease time (3600 s, T1 1800, T2 3150) and options (routers, DNS
# 192.0.2.53, domain lab.example), server id 192.0.2.100.
#
# Method (ISC's): for each (server, generator) the offered DORA rate is raised step by step
# (RATES) until more than DROP_LIMIT % of the exchanges are not completed (drop % = 1 - ACKs /
# DISCOVERs sent; exchanges still in flight at the end are waited for: perfdhcp -W 2 s, the
# loadgen's 1 s timeout); then REFINE bisection steps between the last clean and the first failing
# rate. A step is REPEAT runs, each against a freshly started server with an empty lease store,
# and its drop % is their median (this shared VM has CPU steal and other people's builds: one
# run can lose a few % to a hiccup). A ramp also stops when the generator sends less than 90% of
# the rate asked (generator-bound). The pool holds 65521 addresses and every DORA takes a new one,
# so a run offers at most POOL_BUDGET exchanges: it lasts STEP_S seconds or the whole seconds that
# POOL_BUDGET / rate allows (10 s up to 6000/s, 7 s at 8000/s, 3 s at 16000/s, 1 s from 32000/s,
# capped at POOL_BUDGET exchanges). A fresh server per run gives every run and both servers the
# same empty pool; renewals (which a long run at a high rate would need) are a different, cheaper
# exchange, and perfdhcp cannot start them at a set rate.
#
# Servers (one at a time; the other is stopped, so front0 in tdm-a has one owner):
#   tandemd        scripts/lab start a with examples/lab/node-a.conf, /var/lib/tandem/a removed
#                  first; ready once VRRP is MASTER. Worker on CPU 1 (worker_cores = [1]).
#   kea            kea-dhcp4 in tdm-a on the kernel interface front0 with 192.0.2.100/24 (added
#                  for the step, removed after; ARP answered by the kernel while it runs), raw
#                  sockets, single-threaded, memfile persist=true in a temp dir (written, not
#                  fsynced: weaker than tandemd's strict journal), lfc-interval 0, log level WARN,
#                  pinned to CPU 1 (the core tandemd's worker gets).
#   kea-nopersist  the same with persist=false (leases in memory only).
# Generators, in tdm-client, pinned to CPU 0:
#   perfdhcp       perfdhcp -4 -l eth0 -r RATE -p DUR -n MAX -R 1000000 -W 2000000 192.0.2.100
#   loadgen        build/perf/dhcp_loadgen --relay 192.0.2.10 --server 192.0.2.100 on
#                  net_af_packet0,iface=eth0 (--idle-us 50, 1 s timeout, 10^6 clients).
# tdm-client's kernel keeps 192.0.2.10 on eth0 during loadgen runs: it answers ARP for it with
# the same MAC the loadgen uses (eth0's), so the duplicate answer is identical and harmless, and it
# sees every relayed reply too (no socket on port 67: counted as Udp NoPorts, answered with an
# ICMP port unreachable that the kernel rate-limits); both are counted per run
# (client_udp_noports, client_icmp_unreach) so the cost shows in the results.
# Per run the script also tells where lost exchanges went: lost_before_server (requests the server
# never answered; lost_in_server_socket: frames front0's kernel took that the server's code never
# counted) and lost_after_server (answers the generator never got; client_udp_rcvbuf_errors).
# Each generator's own ceiling is measured first with nothing answering (static ARP entry for
# 192.0.2.100, offered 10^6/s for CEILING_S seconds).
#
# Output: progress on stderr; at the end one JSON object on stdout (generator ceilings; per
# (server, generator) the highest clean rate, the first failing one, CPU of server and generator,
# every step's medians and each run's drop %; the tandemd/Kea ratios) and Markdown tables on
# stderr. Everything runs at nice 19.
# Needs root; takes the lab down at the start and at the end: do not run it alongside
# scripts/test or another lab user.
#
# Environment: SERVERS ("tandemd kea kea-nopersist"), GENERATORS ("perfdhcp loadgen"), RATES
# ("1000 2000 4000 8000 16000 32000 64000 128000"), STEP_S (10), POOL_BUDGET (60000), REFINE (2),
# REPEAT (3), DROP_LIMIT (2.5), CEILING_S (5), BUDGET_S (3000: no new step starts after that many
# seconds), QUIET_CORES (0.3) and QUIET_WAIT_S (90): before each run, wait up to QUIET_WAIT_S for
# the rest of the machine to use less than QUIET_CORES cores (over 2 s; the run goes ahead after
# that and its record says how busy the machine was: others_before, others_cores), RECORDS (a
# file to keep every run's JSON line in), TANDEM_BUILD (build directory with tandemd, tandemctl
# and perf/dhcp_loadgen; default build).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
# shellcheck source=tests/e2e/vrrp_lib.sh
source "$ROOT/tests/e2e/vrrp_lib.sh"

SERVERS=${SERVERS:-tandemd kea kea-nopersist}
GENERATORS=${GENERATORS:-perfdhcp loadgen}
RATES=${RATES:-1000 2000 4000 8000 16000 32000 64000 128000}
STEP_S=${STEP_S:-10}
POOL_BUDGET=${POOL_BUDGET:-60000}
REFINE=${REFINE:-2}
REPEAT=${REPEAT:-3}
DROP_LIMIT=${DROP_LIMIT:-2.5}
CEILING_S=${CEILING_S:-5}
BUDGET_S=${BUDGET_S:-3000}
QUIET_CORES=${QUIET_CORES:-0.3}
QUIET_WAIT_S=${QUIET_WAIT_S:-90}
GEN_CPU=0 KEA_CPU=1
LOADGEN=$BUILD/perf/dhcp_loadgen
HELPER=$ROOT/perf/dhcp_compare.py
SERVER_IP=192.0.2.100 RELAY_IP=192.0.2.10
LEASE_DIR=/var/lib/tandem/a
KEA_DIR=$E2E_TMP/kea
STEPS=$E2E_TMP/steps.jsonl CEILINGS=$E2E_TMP/ceilings.jsonl
START_S=$(date +%s)
CLK_TCK=$(getconf CLK_TCK)
SERVER_PID='' TRUNCATED=0

say() { printf '[%4ds] %s\n' $(( $(date +%s) - START_S )) "$*" >&2; }
over_budget() { (( $(date +%s) - START_S >= BUDGET_S )); }

cmp_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    kea_stop
    ip netns exec tdm-client ip neigh del "$SERVER_IP" dev eth0 2>/dev/null
    {
        "$LAB" stop a --kill
        "$LAB" down
    } >/dev/null 2>&1
    rm -rf "$E2E_TMP"
    exit "$rc"
}
trap cmp_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

need_root
[[ -x $TANDEMD && -x $TANDEMCTL && -x $LOADGEN ]] \
    || die "build first: $TANDEMD, $TANDEMCTL or $LOADGEN missing"
command -v perfdhcp >/dev/null || die "perfdhcp is not installed (kea-admin)"
command -v kea-dhcp4 >/dev/null || [[ " $SERVERS " != *" kea"* ]] || die "kea-dhcp4 is not installed"
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet kea-dhcp4-server 2>/dev/null; then
    say "disabling the systemd-started kea-dhcp4-server"
    systemctl disable --now kea-dhcp4-server >/dev/null 2>&1 || true
fi
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up >/dev/null || die "scripts/lab up failed"
: >"$STEPS"
: >"$CEILINGS"

# ------------------------------------------------------------ measuring
# proc_cpu_s PID [TID]: utime + stime in seconds (fields 14 and 15 of stat; comm may hold spaces).
proc_cpu_s() {
    local f=/proc/$1/stat
    [[ -n ${2:-} ]] && f=/proc/$1/task/$2/stat
    awk -v hz="$CLK_TCK" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "$f" 2>/dev/null || echo null
}
# worker_tid PID: the thread of tandemd's first worker lcore (EAL names it ...worker-1).
worker_tid() {
    local t
    for t in /proc/"$1"/task/*; do
        [[ $(cat "$t/comm" 2>/dev/null) == *worker* ]] && { basename "$t"; return 0; }
    done
    return 0
}
# sys_cpu: "busy total" jiffies of all CPUs.
sys_cpu() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# snmp NS PROTO FIELD: one counter of /proc/net/snmp in that namespace.
# shellcheck disable=SC2016  # awk script
snmp() {
    ip netns exec "$1" awk -v p="$2:" -v f="$3" '$1 == p { if (!c) { for (i = 2; i <= NF; i++) if ($i == f) c = i } else { print $c; exit } }' /proc/net/snmp
}
now_ns() { date +%s%N; }
# softirq_steal: "softirq steal ticks_per_second" of all CPUs (jiffies).
softirq_steal() { awk -v hz="$CLK_TCK" '/^cpu / { print $8, $9, hz }' /proc/stat; }
# busy_cores S: cores the whole machine used over the next S seconds.
busy_cores() {
    local a b
    a=$(sys_cpu); sleep "$1"; b=$(sys_cpu)
    awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.3f\n", (y[1] - x[1]) / (y[2] - x[2]) * n }'
}
# wait_quiet: up to QUIET_WAIT_S for the machine (other people's work: nothing of ours runs
# between steps) to use less than QUIET_CORES cores; prints the last measurement.
wait_quiet() {
    local deadline=$(( $(date +%s) + QUIET_WAIT_S )) c
    while true; do
        c=$(busy_cores 2)
        if awk -v c="$c" -v q="$QUIET_CORES" 'BEGIN { exit !(c < q) }' || (( $(date +%s) >= deadline )); then
            printf '%s\n' "$c"; return 0
        fi
    done
}
# if_rx NS IF: packets the kernel interface received.
if_rx() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }

# ------------------------------------------------------------ servers
td_start() {
    "$LAB" stop a >/dev/null 2>&1 || true
    rm -rf "$LEASE_DIR"
    if ! nice -n 19 "$LAB" start a >"$E2E_TMP/lab-start.out" 2>&1; then
        cat "$E2E_TMP/lab-start.out" >&2
        return 1
    fi
    wait_for vrrp_all a MASTER --timeout 10 || { say "tandemd a not MASTER: $(vrrp_states a)"; return 1; }
    SERVER_PID=$(node_pid a)
}
# td_stats: what tandemd counted in this step (it starts fresh each step), as JSON.
td_stats() {
    local t
    t=$(metrics a) || { echo '{"error": "no metrics"}'; return 0; }
    printf '{"rx_missed": %s, "rx_nombuf": %s, "dhcp_received": %s, "acks_sent": %s, "offers_sent": %s, "naks_sent": %s, "drops": %s, "refusals": %s, "journal_lost": %s, "held_replies": %s, "journal_fsyncs": %s}\n' \
        "$(metric_sum tandem_port_rx_missed_total 'port="front0"' <<<"$t")" \
        "$(metric_sum tandem_port_rx_nombuf_total 'port="front0"' <<<"$t")" \
        "$(metric_sum tandem_dhcp_received_total <<<"$t")" \
        "$(metric_sum tandem_dhcp_sent_total 'type="ack"' <<<"$t")" \
        "$(metric_sum tandem_dhcp_sent_total 'type="offer"' <<<"$t")" \
        "$(metric_sum tandem_dhcp_sent_total 'type="nak"' <<<"$t")" \
        "$(metric_sum tandem_dhcp_drops_total <<<"$t")" \
        "$(metric_sum tandem_dhcp_refusals_total <<<"$t")" \
        "$(metric_sum tandem_dhcp_journal_lost_total <<<"$t")" \
        "$(metric_sum tandem_dhcp_held_replies_total <<<"$t")" \
        "$(metric_sum tandem_dhcp_journal_fsyncs_total <<<"$t")"
}
# server_app_rx SERVER: frames (tandemd: every frame its front0 port took from the kernel) or
# DHCP packets (Kea: pkt4-received) the server's own code received.
server_app_rx() {
    case $1 in
        tandemd) ctl a --json ports 2>/dev/null | jq '.[] | select(.name == "front0") | .rx_packets' ;;
        kea*) python3 "$HELPER" kea-stats "$KEA_DIR/kea4.sock" | jq '."pkt4-received" // 0' ;;
    esac
}
td_stop() {
    "$LAB" stop a >"$E2E_TMP/lab-stop.out" 2>&1 && return 0
    say "tandemd a did not stop cleanly:"; cat "$E2E_TMP/lab-stop.out" >&2
    "$LAB" stop a --kill >/dev/null 2>&1 || true
    return 1
}

kea_conf() { # PERSIST(true|false)
    cat >"$KEA_DIR/kea-dhcp4.json" <<EOF
{"Dhcp4": {
  "interfaces-config": {"interfaces": ["front0"], "dhcp-socket-type": "raw"},
  "control-socket": {"socket-type": "unix", "socket-name": "$KEA_DIR/kea4.sock"},
  "lease-database": {"type": "memfile", "persist": $1, "name": "$KEA_DIR/leases4.csv",
                     "lfc-interval": 0},
  "multi-threading": {"enable-multi-threading": false},
  "valid-lifetime": 3600, "renew-timer": 1800, "rebind-timer": 3150,
  "option-data": [{"name": "domain-name-servers", "data": "192.0.2.53"},
                  {"name": "domain-name", "data": "lab.example"}],
  "subnet4": [
    {"id": 1, "subnet": "192.0.2.0/24", "pools": [{"pool": "192.0.2.150 - 192.0.2.250"}],
     "option-data": [{"name": "routers", "data": "192.0.2.100"}]},
    {"id": 2, "subnet": "198.18.0.0/16", "pools": [{"pool": "198.18.0.10 - 198.18.255.250"}],
     "relay": {"ip-addresses": ["$RELAY_IP"]},
     "option-data": [{"name": "routers", "data": "198.18.0.1"}]}],
  "loggers": [{"name": "kea-dhcp4", "severity": "WARN",
               "output_options": [{"output": "$KEA_DIR/kea.log"}]}]
}}
EOF
}
kea_ready() {
    [[ -S $KEA_DIR/kea4.sock ]] && pid_alive "$SERVER_PID" \
        && ip netns exec tdm-a ss -Hlun 'sport = :67' | grep -q "$SERVER_IP"
}
kea_start() { # PERSIST
    kea_stop
    rm -rf "$KEA_DIR"
    mkdir -p "$KEA_DIR"
    kea_conf "$1"
    ip -n tdm-a addr replace "$SERVER_IP/24" dev front0
    ip netns exec tdm-a sysctl -q -w net.ipv4.conf.front0.arp_ignore=0 >/dev/null
    KEA_PIDFILE_DIR=$KEA_DIR KEA_LOCKFILE_DIR=$KEA_DIR nice -n 19 ip netns exec tdm-a \
        taskset -c "$KEA_CPU" kea-dhcp4 -c "$KEA_DIR/kea-dhcp4.json" </dev/null >"$KEA_DIR/kea.out" 2>&1 &
    SERVER_PID=$!
    if ! wait_for kea_ready --timeout 15; then
        say "kea-dhcp4 did not come up:"; tail -n 20 "$KEA_DIR/kea.out" "$KEA_DIR/kea.log" >&2 2>/dev/null
        return 1
    fi
}
kea_stop() {
    if [[ -n $SERVER_PID ]] && [[ $(cat "/proc/$SERVER_PID/comm" 2>/dev/null) == kea-dhcp4 ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait_for pid_gone "$SERVER_PID" --timeout 10 || kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=''
    if ns_exists tdm-a; then
        ip -n tdm-a addr del "$SERVER_IP/24" dev front0 2>/dev/null || true
        ip netns exec tdm-a sysctl -q -w net.ipv4.conf.front0.arp_ignore=8 >/dev/null 2>&1 || true
    fi
}

server_start() {
    case $1 in
        tandemd) td_start ;;
        kea) kea_start true ;;
        kea-nopersist) kea_start false ;;
    esac
}
server_stats() {
    case $1 in
        tandemd) td_stats ;;
        kea*) python3 "$HELPER" kea-stats "$KEA_DIR/kea4.sock" ;;
    esac
}
server_stop() {
    case $1 in
        tandemd) td_stop ;;
        kea*) kea_stop ;;
    esac
}

# ------------------------------------------------------------ generators
# gen_run GEN RATE DUR MAX OUT TIMES [SERVER_MAC]: one bounded run (DUR whole seconds, at most
# MAX exchanges); bash's `times` of the subshell gives the generator's CPU (its children's user and
# system time).
gen_run() {
    local gen=$1 rate=$2 dur=$3 max=$4 out=$5 times=$6 mac=${7:-} limit
    limit=$(( dur + 30 ))
    case $gen in
        perfdhcp)
            ( set +e
              timeout --kill-after=5 "$limit" nice -n 19 ip netns exec tdm-client taskset -c "$GEN_CPU" \
                  perfdhcp -4 -l eth0 -r "$rate" -p "$dur" -n "$max" -R 1000000 -W 2000000 "$SERVER_IP" >"$out" 2>&1
              times >"$times" ) ;;
        loadgen)
            local macopt=()
            [[ -n $mac ]] && macopt=(--server-mac "$mac")
            ( set +e
              timeout --kill-after=5 "$limit" nice -n 19 ip netns exec tdm-client "$LOADGEN" \
                  --relay "$RELAY_IP" --server "$SERVER_IP" "${macopt[@]}" --rate "$rate" --duration "$dur" \
                  --max-exchanges "$max" --clients 1000000 --timeout-ms 1000 --idle-us 50 --subnet 198.18.0.0/16 --quiet \
                  -- --no-huge --no-shconf -m 256 -l "$GEN_CPU" --log-level=warning \
                  --vdev net_af_packet0,iface=eth0,framecnt=4096 >"$out" 2>"$out.err"
              times >"$times" ) ;;
    esac
}

# step_duration RATE: STEP_S, or fewer whole seconds so that the step offers at most POOL_BUDGET
# exchanges (perfdhcp takes whole seconds only); at least 1 s, capped by POOL_BUDGET exchanges.
step_duration() {
    awk -v r="$1" -v s="$STEP_S" -v b="$POOL_BUDGET" \
        'BEGIN { d = int(b / r); if (d > s) d = s; if (d < 1) d = 1; print d }'
}
step_max() { awk -v r="$1" -v d="$2" -v b="$POOL_BUDGET" 'BEGIN { m = r * d; if (m > b) m = b; printf "%d\n", m }'; }

# run_once SERVER GEN RATE RUN: a fresh server, one generator run, one JSON line in $STEPS;
# sets RUN_DROP (empty when the generator failed) and RUN_BOUND (1 if generator-bound).
RUN_DROP='' RUN_BOUND=0
run_once() {
    local server=$1 gen=$2 rate=$3 run=$4 dur max out times tid='' c0 c1 w0=null w1=null s0 s1 t0 t1
    local nop0 nop1 icmp0 icmp1 rcv0 rcv1 stats rec load samples sampler quiet
    local krx0 krx1 arx0 arx1
    local q0 q1
    RUN_DROP='' RUN_BOUND=0
    dur=$(step_duration "$rate") max=$(step_max "$rate" "$(step_duration "$rate")")
    out=$E2E_TMP/$server-$gen-$rate-$run.out times=$E2E_TMP/$server-$gen-$rate-$run.times
    samples=$E2E_TMP/$server-$gen-$rate-$run.samples
    quiet=$(wait_quiet)
    if ! server_start "$server"; then
        say "$server did not start for the $rate/s step"
        server_stop "$server" || true
        return 1
    fi
    [[ $server == tandemd ]] && tid=$(worker_tid "$SERVER_PID")
    nop0=$(snmp tdm-client Udp NoPorts) icmp0=$(snmp tdm-client Icmp OutDestUnreachs)
    rcv0=$(snmp tdm-client Udp RcvbufErrors)
    krx0=$(if_rx tdm-a front0) arx0=$(server_app_rx "$server")
    c0=$(proc_cpu_s "$SERVER_PID")
    [[ -n $tid ]] && w0=$(proc_cpu_s "$SERVER_PID" "$tid")
    # CPU of the server and of the generator's namespace every 0.2 s, for the peak over 1 s.
    python3 "$HELPER" sample "$SERVER_PID" tdm-client "$samples" "$(awk -v d="$dur" 'BEGIN { printf "%d", d + 40 }')" &
    sampler=$!
    s0=$(sys_cpu) q0=$(softirq_steal) t0=$(now_ns)
    gen_run "$gen" "$rate" "$dur" "$max" "$out" "$times"
    t1=$(now_ns) s1=$(sys_cpu) q1=$(softirq_steal)
    kill -TERM "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    c1=$(proc_cpu_s "$SERVER_PID")
    [[ -n $tid ]] && w1=$(proc_cpu_s "$SERVER_PID" "$tid")
    nop1=$(snmp tdm-client Udp NoPorts) icmp1=$(snmp tdm-client Icmp OutDestUnreachs)
    rcv1=$(snmp tdm-client Udp RcvbufErrors)
    krx1=$(if_rx tdm-a front0) arx1=$(server_app_rx "$server")
    load=$(cut -d' ' -f1 /proc/loadavg)
    stats=$(server_stats "$server")
    server_stop "$server" || stats=$(jq -c '. + {"unclean_stop": true}' <<<"$stats")
    rec=$(python3 "$HELPER" step "$server" "$gen" "$rate" "$dur" "$out" "$times" "run=$run" \
        "max_exchanges=$max" \
        "softirq_cores=$(awk -v a="$q0" -v b="$q1" -v t0="$t0" -v t1="$t1" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.3f", (y[1] - x[1]) / x[3] / ((t1 - t0) / 1e9) }')" \
        "steal_cores=$(awk -v a="$q0" -v b="$q1" -v t0="$t0" -v t1="$t1" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.3f", (y[2] - x[2]) / x[3] / ((t1 - t0) / 1e9) }')" \
        "wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" \
        "server_cpu_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')" \
        "worker_cpu_s=$(awk -v a="$w0" -v b="$w1" 'BEGIN { if (a == "null") print "null"; else printf "%.2f", b - a }')" \
        "sys_busy_cores=$(awk -v a="$s0" -v b="$s1" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.3f", (y[1] - x[1]) / (y[2] - x[2]) * n }')" \
        "client_udp_noports=$((nop1 - nop0))" "client_icmp_unreach=$((icmp1 - icmp0))" \
        "client_udp_rcvbuf_errors=$((rcv1 - rcv0))" \
        "server_kernel_rx=$((krx1 - krx0))" "server_app_rx=$((${arx1:-0} - ${arx0:-0}))" \
        "others_before=$quiet" \
        "loadavg=$load" "server_stats=$stats" "samples=$samples")
    # Cores the rest of the machine used meanwhile (builds, the kernel's softirqs, ...).
    rec=$(jq -c '.others_cores = (if .sys_busy_cores and .server_cores and .generator_cores
                 then ((.sys_busy_cores - .server_cores - .generator_cores) * 1000 | round / 1000)
                 else null end)' <<<"$rec")
    printf '%s\n' "$rec" >>"$STEPS"
    RUN_DROP=$(jq -r '.drop_pct // empty' <<<"$rec")
    [[ $(jq -r '.generator_bound' <<<"$rec") == true ]] && RUN_BOUND=1
    say "$server × $gen $rate/s for ${dur}s (run $run): drop $(jq -r '.drop_pct' <<<"$rec")%, sent $(jq -r '.sent_rate' <<<"$rec")/s, server $(jq -r '.server_cores' <<<"$rec") cores, generator $(jq -r '.generator_cores' <<<"$rec"), others $(jq -r '.others_before' <<<"$rec") before / $(jq -r '.others_cores' <<<"$rec") during, load $load, lost before/after server $(jq -r '"\(.lost_before_server)/\(.lost_after_server)"' <<<"$rec") (in its socket $(jq -r '.lost_in_server_socket' <<<"$rec"))"
    return 0
}

# run_step SERVER GEN RATE: REPEAT runs; sets STEP_DROP to the median drop % of the runs whose
# generator reported (empty if none did) and STEP_BOUND to 1 if most runs were generator-bound.
# Returns 1 if the server did not start.
STEP_DROP='' STEP_BOUND=0
run_step() {
    local i drops=() bound=0
    for (( i = 1; i <= REPEAT; i++ )); do
        run_once "$@" "$i" || return 1
        [[ -n $RUN_DROP ]] && drops+=("$RUN_DROP")
        bound=$(( bound + RUN_BOUND ))
    done
    STEP_DROP='' STEP_BOUND=0
    (( ${#drops[@]} > 0 )) && STEP_DROP=$(printf '%s\n' "${drops[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    (( bound * 2 > REPEAT )) && STEP_BOUND=1
    say "$1 × $2 $3/s: median drop ${STEP_DROP:-?}% over $REPEAT runs$( (( STEP_BOUND )) && echo ', generator-bound')"
    return 0
}

over_limit() { awk -v d="$1" -v l="$DROP_LIMIT" 'BEGIN { exit !(d + 0 > l + 0) }'; }

# ramp SERVER GEN: raise the rate until drops pass DROP_LIMIT or the generator falls short,
# then bisect REFINE times between the last clean and the first failing rate.
ramp() {
    local server=$1 gen=$2 rate clean=0 failing=0 i mid
    for rate in $RATES; do
        if over_budget; then TRUNCATED=1; say "budget spent: $server × $gen stops before $rate/s"; return 0; fi
        run_step "$server" "$gen" "$rate" || { say "$server × $gen: ramp ends (server did not start)"; return 0; }
        [[ -n $STEP_DROP ]] || { say "$server × $gen: ramp ends (the generator failed at $rate/s)"; return 0; }
        if over_limit "$STEP_DROP"; then failing=$rate; break; fi
        clean=$rate
        if (( STEP_BOUND )); then say "$server × $gen: the generator did not send the $rate/s asked; ramp ends"; return 0; fi
    done
    (( failing > 0 && clean > 0 )) || return 0
    for (( i = 0; i < REFINE; i++ )); do
        mid=$(( (clean + failing) / 2 / 100 * 100 ))
        (( mid > clean && mid < failing )) || break
        over_budget && { TRUNCATED=1; return 0; }
        run_step "$server" "$gen" "$mid" || return 0
        [[ -n $STEP_DROP ]] || return 0
        if over_limit "$STEP_DROP"; then failing=$mid; else clean=$mid; fi
    done
}

# ------------------------------------------------------------ generator ceilings
# Nothing answers: tandemd and Kea are stopped, and a static ARP entry sends the frames to
# tdm-a's front0, whose kernel has no address there and drops them.
ceiling() {
    local gen=$1 mac out times t0 t1 rec
    mac=$(mac_of tdm-a front0)
    ip netns exec tdm-client ip neigh replace "$SERVER_IP" lladdr "$mac" dev eth0 nud permanent
    out=$E2E_TMP/ceiling-$gen.out times=$E2E_TMP/ceiling-$gen.times
    t0=$(now_ns)
    gen_run "$gen" 1000000 "$CEILING_S" 100000000 "$out" "$times" "$mac"
    t1=$(now_ns)
    ip netns exec tdm-client ip neigh del "$SERVER_IP" dev eth0 2>/dev/null || true
    rec=$(python3 "$HELPER" step none "$gen" 1000000 "$CEILING_S" "$out" "$times" \
        "wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" \
        "loadavg=$(cut -d' ' -f1 /proc/loadavg)")
    printf '%s\n' "$rec" >>"$CEILINGS"
    say "$gen ceiling (nothing answers, 10^6/s asked): $(jq -r '.sent_rate' <<<"$rec") DISCOVER/s sent, $(jq -r '.generator_cores' <<<"$rec") cores"
}

"$LAB" stop a >/dev/null 2>&1 || true
for gen in $GENERATORS; do ceiling "$gen"; done
for server in $SERVERS; do
    case $server in tandemd|kea|kea-nopersist) ;; *) die "unknown server '$server'" ;; esac
    for gen in $GENERATORS; do
        case $gen in perfdhcp|loadgen) ;; *) die "unknown generator '$gen'" ;; esac
        say "$server × $gen"
        ramp "$server" "$gen"
    done
done

META=$E2E_TMP/meta.json
jq -n --arg date "$(date -u +%FT%TZ)" --arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    --argjson nproc "$(nproc)" --arg kernel "$(uname -r)" \
    --arg kea "$(kea-dhcp4 -v 2>/dev/null || echo none)" --arg perfdhcp "$(perfdhcp -v 2>&1 | head -n1)" \
    --arg build "$BUILD" --arg commit "$("$TANDEMD" --version 2>&1 | head -n1)" \
    --arg rates "$RATES" --argjson step_s "$STEP_S" --argjson pool_budget "$POOL_BUDGET" \
    --argjson refine "$REFINE" --argjson repeat "$REPEAT" --argjson limit "$DROP_LIMIT" --argjson ceiling_s "$CEILING_S" \
    --argjson truncated "$TRUNCATED" --argjson elapsed "$(( $(date +%s) - START_S ))" \
    '{date: $date, machine: {nproc: $nproc, cpu: $cpu, kernel: $kernel}, kea: $kea,
      perfdhcp: $perfdhcp, build: $build, tandemd: $commit,
      params: {rates: ($rates | split(" ") | map(tonumber)), step_s: $step_s,
               pool_budget: $pool_budget, refine: $refine, repeat: $repeat, drop_limit_pct: $limit,
               target_drop_pct: 0.1, ceiling_s: $ceiling_s},
      truncated: ($truncated == 1), elapsed_s: $elapsed}' >"$META"
[[ -n ${RECORDS:-} ]] && cp "$STEPS" "$RECORDS"
python3 "$HELPER" summary "$STEPS" "$CEILINGS" "$META"
say "done"
