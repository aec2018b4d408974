# shellcheck shell=bash
# VRRP helpers shared by tests/e2e/test_vrrp.sh, tests/e2e/test_keepalived_interop.sh and
# perf/failover_bench.sh. Source it after tests/e2e/lib.sh (it needs ctl, wait_for, E2E_TMP).
# It defines functions and variables only.

PROBE_PY=$ROOT/tests/e2e/probe.py

# Master_Down and skew in ms for a VRRPv3 backup: 3 x interval + (256 - prio) x interval / 256.
master_down_ms() { awk -v i="$1" -v p="$2" 'BEGIN { printf "%.1f\n", 3 * i + (256 - p) * i / 256 }'; }
skew_ms() { awk -v i="$1" -v p="$2" 'BEGIN { printf "%.1f\n", (256 - p) * i / 256 }'; }

now_s() { date +%s.%N; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ------------------------------------------------------------ tandemd VRRP state
# vrrp_states NODE: "VI_FRONT=MASTER VI_BACK=MASTER" (or the error).
vrrp_states() {
    ctl "$1" --json vrrp 2>&1 | jq -r '[.[] | "\(.name)=\(.state)/\(.effective_priority)"] | join(" ")' 2>&1
}

# vrrp_all NODE STATE: every instance of the node is in STATE.
vrrp_all() {
    ctl "$1" --json vrrp 2>/dev/null \
        | jq -e --arg s "$2" 'length > 0 and all(.[]; .state == $s)' >/dev/null 2>&1
}

# vrrp_field NODE INSTANCE FIELD: one field of one instance (jq -r).
vrrp_field() {
    ctl "$1" --json vrrp 2>/dev/null | jq -r --arg n "$2" --arg f "$3" '.[] | select(.name == $n) | .[$f]'
}

# vrrp_all_prio NODE PRIO: every instance's effective priority is PRIO.
vrrp_all_prio() {
    ctl "$1" --json vrrp 2>/dev/null \
        | jq -e --argjson p "$2" 'length > 0 and all(.[]; .effective_priority == $p)' >/dev/null 2>&1
}

# stays_for MS CMD...: CMD keeps succeeding (polled every 0.1 s) for MS milliseconds.
stays_for() {
    local ms=$1 end
    shift
    end=$(( $(now_ms) + ms ))
    while (( $(now_ms) < end )); do
        "$@" || return 1
        sleep 0.1
    done
    "$@"
}

# ------------------------------------------------------------ the probe
# probe_start NS DST [MAX_SECONDS]: a 10 ms ICMP probe (tests/e2e/probe.py) in the background;
# reply times go to $PROBE_OUT. Returns once 20 replies arrived (1 if they do not within 5 s).
PROBE_PID='' PROBE_OUT='' PROBE_SUMMARY=''
probe_start() {
    local ns=$1 dst=$2 max=${3:-60}
    PROBE_OUT=$(mktemp "$E2E_TMP/probe.XXXXXX")
    PROBE_SUMMARY=$PROBE_OUT.json
    timeout --kill-after=5 $((max + 10)) ip netns exec "$ns" python3 "$PROBE_PY" "$dst" \
        --interval-ms "${PROBE_INTERVAL_MS:-10}" --max-seconds "$max" --out "$PROBE_OUT" \
        >"$PROBE_SUMMARY" 2>&1 &
    PROBE_PID=$!
    wait_for probe_replies_after 0 20 --timeout 5
}

# probe_replies_after T N: at least N replies arrived after time T (seconds since the epoch).
probe_replies_after() {
    [[ -s $PROBE_OUT ]] || return 1
    awk -v t="$1" -v n="$2" '$1 > t { c++ } END { exit !(c >= n) }' "$PROBE_OUT"
}

# probe_stop: stop the probe; its summary stays in $PROBE_SUMMARY.
probe_stop() {
    [[ -n $PROBE_PID ]] || return 0
    kill -TERM "$PROBE_PID" 2>/dev/null || true
    wait "$PROBE_PID" 2>/dev/null || true
    PROBE_PID=''
}

# probe_gap T: the largest gap (ms) between consecutive replies from the last reply before T
# on; prints the analysis JSON to stderr.
probe_gap() {
    local out
    out=$(python3 "$PROBE_PY" --analyze "$PROBE_OUT" --since "$1") || return 1
    printf '%s\n' "$out" >&2
    jq -r '.max_gap_ms' <<<"$out"
}

# measure_blackout NS DST RECOVERED-CMD -- ACTION...: starts the probe, runs ACTION, waits (10 s
# at most) until RECOVERED-CMD succeeds and then for 30 more replies, stops the probe and sets
# BLACKOUT_MS (empty on failure) and BLACKOUT_DIAG. Call it in the main shell, not in `check`.
# shellcheck disable=SC2034  # read by the scripts that source this file
BLACKOUT_MS='' BLACKOUT_DIAG=''
measure_blackout() {
    local ns=$1 dst=$2 recovered=$3 t t_rec
    shift 3
    [[ ${1:-} == -- ]] && shift
    BLACKOUT_MS='' BLACKOUT_DIAG=''
    if ! probe_start "$ns" "$dst" 60; then
        probe_stop
        BLACKOUT_DIAG="the probe got no 20 replies from $dst within 5 s before the action: $(cat "$PROBE_SUMMARY" 2>/dev/null)"
        return 1
    fi
    t=$(now_s)
    "$@" >/dev/null 2>&1 || BLACKOUT_DIAG="action '$*' failed; "
    # shellcheck disable=SC2086  # RECOVERED-CMD is a command line: split it
    if ! wait_for --timeout 10 $recovered; then
        probe_stop
        BLACKOUT_DIAG+="'$recovered' did not hold within 10 s of '$*'"
        return 1
    fi
    t_rec=$(now_s)
    if ! wait_for probe_replies_after "$t_rec" 30 --timeout 10; then
        probe_stop
        BLACKOUT_DIAG+="no 30 replies from $dst within 10 s after '$recovered' held: $(cat "$PROBE_SUMMARY")"
        return 1
    fi
    probe_stop
    BLACKOUT_MS=$(probe_gap "$t" 2>"$E2E_TMP/gap.json") || { BLACKOUT_DIAG+="probe analysis failed"; return 1; }
    BLACKOUT_DIAG+="probe: $(cat "$PROBE_SUMMARY"); gap: $(cat "$E2E_TMP/gap.json"); action at $t"
}

# ------------------------------------------------------------ config copies
# conf_vrrp_key SRC DST TEXT: DST is SRC with TEXT added inside `vrrp = {` (global VRRP keys).
conf_vrrp_key() { sed "/^vrrp = {/a\\  $3" "$1" >"$2"; }
# conf_instance_key SRC DST TEXT: DST is SRC with TEXT added to every VRRP instance.
conf_instance_key() { sed "/advert_interval_ms = /a\\      $3" "$1" >"$2"; }
# conf_one_instance_key SRC DST NAME TEXT: DST is SRC with TEXT added to the instance NAME.
conf_one_instance_key() { sed "/name = \"$3\";/a\\      $4" "$1" >"$2"; }
# conf_priority SRC DST PRIO: every VRRP instance with priority PRIO.
conf_priority() { sed -E "s/^([[:space:]]*)priority = [0-9]+;/\1priority = $3;/" "$1" >"$2"; }
# conf_interval SRC DST MS: every VRRP instance with advert_interval_ms = MS.
conf_interval() { sed -E "s/advert_interval_ms = [0-9]+;/advert_interval_ms = $3;/" "$1" >"$2"; }

# ------------------------------------------------------------ keepalived
# keepalived_conf FILE NODE PRIO ADVERT_INT_S [NOTIFY]: a keepalived.conf equivalent to the lab's
# VRRP (v3, VI_FRONT vrid 51 on front0, VI_BACK vrid 52 on back0, one sync group).
keepalived_conf() {
    local file=$1 node=$2 prio=$3 int=$4 notify=${5:-} n=''
    [[ -n $notify ]] && n="notify $notify"
    cat >"$file" <<EOF
# keepalived for the Tandem lab (written by tests/e2e/vrrp_lib.sh)
global_defs {
    router_id tdm-$node
    vrrp_version 3
    enable_script_security
    script_user root
    max_auto_priority -1
}
vrrp_sync_group G_TANDEM {
    group {
        VI_FRONT
        VI_BACK
    }
}
vrrp_instance VI_FRONT {
    state BACKUP
    interface front0
    virtual_router_id 51
    priority $prio
    advert_int $int
    virtual_ipaddress {
        192.0.2.100/24
    }
    $n
}
vrrp_instance VI_BACK {
    state BACKUP
    interface back0
    virtual_router_id 52
    priority $prio
    advert_int $int
    virtual_ipaddress {
        198.51.100.1/24
    }
    $n
}
EOF
}

# kernel_ifaces_up NODE: give tdm-NODE's front0/back0 their lab addresses as kernel addresses
# and let the kernel answer ARP on them (for keepalived); kernel_ifaces_down undoes it.
kernel_ifaces_up() {
    local ns=tdm-$1 last
    [[ $1 == a ]] && last=2 || last=3
    ip -n "$ns" addr replace "192.0.2.$last/24" dev front0
    ip -n "$ns" addr replace "198.51.100.$last/24" dev back0
    ip netns exec "$ns" sysctl -q -w net.ipv4.conf.front0.arp_ignore=0 net.ipv4.conf.back0.arp_ignore=0 >/dev/null
}
kernel_ifaces_down() {
    local ns=tdm-$1
    ns_exists "$ns" || return 0
    ip -n "$ns" addr flush dev front0 2>/dev/null || true
    ip -n "$ns" addr flush dev back0 2>/dev/null || true
    ip netns exec "$ns" sysctl -q -w net.ipv4.conf.front0.arp_ignore=8 net.ipv4.conf.back0.arp_ignore=8 >/dev/null 2>&1 || true
}

# keepalived_start NODE CONF DIR: keepalived (VRRP only, foreground, console log to
# DIR/keepalived-NODE.log, its own pid files) in tdm-NODE; returns once it is running.
keepalived_start() {
    local node=$1 conf=$2 dir=$3
    local pidf=$dir/keepalived-$node.pid logf=$dir/keepalived-$node.log n0=0
    KEEPALIVED_DIR=$dir
    rm -f "$pidf" "$dir/keepalived-$node.vrrp.pid"
    [[ -f $logf ]] && n0=$(wc -l <"$logf")
    ip netns exec "tdm-$node" keepalived -n -l -D -P -f "$conf" -p "$pidf" \
        -r "$dir/keepalived-$node.vrrp.pid" >>"$dir/keepalived-$node.log" 2>&1 </dev/null &
    eval "KEEPALIVED_PID_$node=$!"
    started() { tail -n +"$((n0 + 1))" "$logf" | grep -q 'Startup complete'; }
    wait_for started --timeout 10
}

# keepalived_stop NODE [--kill]: SIGTERM (keepalived sends priority 0) or SIGKILL to the main
# process and its VRRP child; waits until both are gone.
keepalived_stop() {
    local node=$1 mode=${2:-} var pid child sig=TERM
    var=KEEPALIVED_PID_$node
    pid=${!var:-}
    [[ -n $pid ]] || return 0
    [[ $mode == --kill ]] && sig=KILL
    child=$(cat "${KEEPALIVED_DIR:-$E2E_TMP}/keepalived-$node.vrrp.pid" 2>/dev/null || true)
    if [[ $sig == KILL ]]; then
        # Kill the VRRP child first: that is the process sending adverts.
        [[ -n $child ]] && kill -KILL "$child" 2>/dev/null
        kill -KILL "$pid" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    wait_for pid_gone "$pid" --timeout 10 || kill -KILL "$pid" 2>/dev/null || true
    [[ -n $child ]] && { wait_for pid_gone "$child" --timeout 5 || kill -KILL "$child" 2>/dev/null || true; }
    wait "$pid" 2>/dev/null || true
    eval "KEEPALIVED_PID_$node=''"
}
KEEPALIVED_DIR=''
keepalived_log() { printf '%s/keepalived-%s.log' "${KEEPALIVED_DIR:-$E2E_TMP}" "$1"; }

# keepalived_has_vips NODE: both VIPs are on tdm-NODE's interfaces.
keepalived_has_vips() {
    ip -n "tdm-$1" -br addr show dev front0 | grep -qw '192\.0\.2\.100/24' \
        && ip -n "tdm-$1" -br addr show dev back0 | grep -qw '198\.51\.100\.1/24'
}
# keepalived_no_vips NODE: neither VIP is on tdm-NODE's interfaces.
keepalived_no_vips() {
    ! ip -n "tdm-$1" -br addr show dev front0 | grep -qw '192\.0\.2\.100' \
        && ! ip -n "tdm-$1" -br addr show dev back0 | grep -qw '198\.51\.100\.1'
}
