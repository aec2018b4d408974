#!/usr/bin/env bash
# shellcheck disable=SC2317  # check functions are invoked indirectly
# Foundation: config check, ARP/ICMP on the node's own addresses, gratuitous
# ARP, neighbour resolution, metrics, tandemctl, reload, garbage frames, clean
# shutdown and lab teardown.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONF_A=$ROOT/examples/lab/node-a.conf
CONF_B=$ROOT/examples/lab/node-b.conf

e2e_begin

# ------------------------------------------------------------ --check
check_ok() {
    local out rc=0
    out=$(timeout "$CMD_TIMEOUT" "$TANDEMD" --config "$1" --check 2>&1) || rc=$?
    printf '%s\n' "$out"
    (( rc == 0 )) && grep -qF "$1: configuration ok" <<<"$out"
}
check "tandemd --check accepts examples/lab/node-a.conf" check_ok "$CONF_A"
check "tandemd --check accepts examples/lab/node-b.conf" check_ok "$CONF_B"

# break_config SRC DST: DST is SRC with an unknown key on the line after
# `node = ...`; prints that line number.
break_config() {
    local src=$1 dst=$2 line
    line=$(grep -n '^[[:space:]]*node[[:space:]]*=' "$src" | head -n 1 | cut -d: -f1)
    [[ -n $line ]] || { echo "no 'node =' line in $src" >&2; return 1; }
    sed "${line}a e2e_unknown_key = 1;" "$src" >"$dst"
    echo $((line + 1))
}

BROKEN=$E2E_TMP/broken.conf
BROKEN_LINE=$(break_config "$CONF_A" "$BROKEN")
check_broken() {
    local out rc=0
    out=$(timeout "$CMD_TIMEOUT" "$TANDEMD" --config "$BROKEN" --check 2>&1) || rc=$?
    printf '%s\n' "$out"
    [[ $rc -eq 1 ]] || { echo "exit status $rc, expected 1"; return 1; }
    grep -qF "$BROKEN:$BROKEN_LINE:" <<<"$out" || { echo "no '$BROKEN:$BROKEN_LINE:' in the output"; return 1; }
}
check "tandemd --check rejects an unknown key with FILE:LINE and exit 1" check_broken

# ------------------------------------------------------------ start with a capture running
HUGE_BEFORE=$(ls -A /dev/hugepages 2>/dev/null || true)
CLIENT_MAC=$(mac_of tdm-client eth0)

GARP_OUT=$E2E_TMP/garp.txt GARP_ERR=$E2E_TMP/garp.err
# Any ARP whose sender protocol address is 192.0.2.2 (gratuitous request or reply).
ip netns exec tdm-client timeout 30 tcpdump -i eth0 -n -l -e -c 1 'arp and arp[14:4] = 0xc0000202' \
    >"$GARP_OUT" 2>"$GARP_ERR" &
TCPDUMP_PID=$!
tcpdump_listening() { grep -q 'listening on' "$GARP_ERR"; }
wait_for tcpdump_listening --timeout 10 || diag "tcpdump did not report listening: $(cat "$GARP_ERR")"

START_OUT=$("$LAB" start a 2>&1) && START_RC=0 || START_RC=$?
if (( START_RC == 0 )); then
    ok "scripts/lab start a (tandemd answers on /run/tandem/a.sock)"
else
    not_ok "scripts/lab start a (tandemd answers on /run/tandem/a.sock)" "$START_OUT"
    kill "$TCPDUMP_PID" 2>/dev/null || true
    e2e_end
fi

garp_seen() {
    wait_for pid_gone "$TCPDUMP_PID" --timeout 15 || true
    cat "$GARP_OUT" "$GARP_ERR"
    grep -q '192\.0\.2\.2' "$GARP_OUT"
}
check "gratuitous ARP for 192.0.2.2 reaches tdm-client at start" garp_seen
kill "$TCPDUMP_PID" 2>/dev/null || true

# ------------------------------------------------------------ ARP and ICMP
check "ping 192.0.2.2 from tdm-client" ping_from tdm-client 192.0.2.2 3
check "ping 198.51.100.2 from tdm-rs1" ping_from tdm-rs1 198.51.100.2 3

# Node b alongside node a: both nodes fit in the reserved hugepages.
if START_B=$("$LAB" start b 2>&1); then
    ok "scripts/lab start b (alongside node a)"
    check "ping 192.0.2.3 (node b) from tdm-client" ping_from tdm-client 192.0.2.3 3
    check "ping 198.51.100.3 (node b) from tdm-rs2" ping_from tdm-rs2 198.51.100.3 3
    check "scripts/lab stop b: tandemd b exits 0" "$LAB" stop b
else
    not_ok "scripts/lab start b (alongside node a)" "$START_B"
fi

client_neigh_matches() {
    local port_mac neigh
    port_mac=$(node_port_mac a front0)
    neigh=$(ip -n tdm-client neigh show 192.0.2.2)
    echo "tandemctl ports front0 mac: '$port_mac'"
    echo "client neighbour entry: $neigh"
    [[ -n $port_mac && $port_mac != null ]] || return 1
    grep -qi "lladdr $port_mac" <<<"$neigh"
}
check "tdm-client resolved 192.0.2.2 to front0's MAC (tandemctl --json ports)" client_neigh_matches

arping_node() {
    local out rc=0
    out=$(timeout "$CMD_TIMEOUT" ip netns exec tdm-client arping -c 2 -I eth0 192.0.2.2 2>&1) || rc=$?
    printf '%s\n' "$out"
    (( rc == 0 ))
}
check "arping -c 2 -I eth0 192.0.2.2 from tdm-client gets replies" arping_node

# ------------------------------------------------------------ neighbour resolution by the daemon
resolve_client() {
    local out rc=0
    out=$(timeout "$CMD_TIMEOUT" "$TANDEMCTL" -s "$(node_sock a)" neighbors resolve 192.0.2.10 2>&1) || rc=$?
    printf '%s\n' "$out"
    (( rc == 0 )) || return 1
    client_reachable() {
        ctl a --json neighbors | jq -e --arg mac "$CLIENT_MAC" \
            '.[] | select(.ip == "192.0.2.10" and .port == "front0" and (.mac | ascii_downcase) == $mac and .state == "reachable")' >/dev/null
    }
    wait_for client_reachable --timeout 10 && return 0
    echo "tandemctl --json neighbors (want 192.0.2.10 $CLIENT_MAC reachable on front0):"
    ctl a --json neighbors 2>&1
    return 1
}
check "tandemctl neighbors resolve 192.0.2.10 -> reachable with tdm-client's MAC" resolve_client

# ------------------------------------------------------------ metrics
metrics_basic() {
    local text req rx
    text=$(metrics a) || { echo "curl http://127.0.0.1:9469/metrics in tdm-a failed"; return 1; }
    grep -q '^tandem_build_info' <<<"$text" || { echo "no tandem_build_info"; return 1; }
    req=$(metric_sum tandem_icmp_echo_requests_total <<<"$text")
    rx=$(metric_sum tandem_port_rx_packets_total 'port="front0"' <<<"$text")
    echo "tandem_icmp_echo_requests_total=$req tandem_port_rx_packets_total{front0}=$rx"
    ge "$req" 3 && gt "$rx" 0
}
check "metrics: tandem_build_info, echo requests >= 3, front0 rx > 0" metrics_basic

# Adaptive idle: with no traffic the worker sleeps instead of spinning. The bound is loose (a
# spinning worker uses ~100% of a core; measured idle cost is under 10%) so a noisy machine
# cannot make it flaky, and the sleeps counter must move.
idle_worker_backs_off() {
    local pid task t0 t1 s0 s1 pct
    pid=$(cat /run/tandem/a.pid) || return 1
    task=$(grep -l '^rte-worker' /proc/"$pid"/task/*/comm | head -n 1) || return 1
    task=${task%/comm}
    s0=$(metrics a | metric_sum tandem_worker_sleeps_total)
    t0=$(awk '{print $14 + $15}' "$task/stat")
    sleep 3
    t1=$(awk '{print $14 + $15}' "$task/stat")
    s1=$(metrics a | metric_sum tandem_worker_sleeps_total)
    pct=$(( (t1 - t0) * 100 / (3 * $(getconf CLK_TCK)) ))
    echo "idle worker CPU over 3 s: ${pct}% of a core; sleeps $s0 -> $s1"
    (( pct < 50 )) && gt "$s1" "$s0"
}
check "adaptive idle: an idle worker uses < 50% of a core and sleeps" idle_worker_backs_off

# ------------------------------------------------------------ tandemctl
status_json() {
    local out
    out=$(ctl a --json status) || return 1
    printf '%s\n' "$out"
    jq -e '.node == "a" and (.pid | type == "number") and (.version | type == "string")' <<<"$out" >/dev/null
}
check "tandemctl --json status parses and says node \"a\"" status_json

status_text() {
    local out
    out=$(ctl a status) || return 1
    printf '%s\n' "$out"
    [[ -n $out ]] && ! jq -e . <<<"$out" >/dev/null 2>&1
}
check "tandemctl status prints human text" status_text

ports_json() {
    local out
    out=$(ctl a --json ports) || return 1
    printf '%s\n' "$out"
    jq -e '[.[] | select(.name == "front0" and .link == "up" and (.addresses | index("192.0.2.2/24")))] | length == 1' <<<"$out" >/dev/null \
        && jq -e '[.[] | select(.name == "back0" and (.addresses | index("198.51.100.2/24")))] | length == 1' <<<"$out" >/dev/null
}
check "tandemctl --json ports lists front0 (up, 192.0.2.2/24) and back0" ports_json

missing_socket() {
    local sock=$RUN_DIR/e2e-missing.sock out rc=0 lines
    rm -f "$sock"
    out=$(timeout "$CMD_TIMEOUT" "$TANDEMCTL" -s "$sock" status 2>&1) || rc=$?
    printf '%s\n' "$out"
    lines=$(printf '%s\n' "$out" | wc -l)
    [[ $rc -eq 1 ]] || { echo "exit status $rc, expected 1"; return 1; }
    [[ $lines -eq 1 ]] || { echo "$lines lines, expected 1"; return 1; }
    grep -qE "^tandemctl: cannot connect to $sock: .+ \(is tandemd running\?\)$" <<<"$out"
}
check "tandemctl against a missing socket: one line, exit 1" missing_socket

# usage_error ARGS...: tandemctl exits 2 (usage error) before talking to the daemon.
usage_error() {
    local out rc=0
    out=$(timeout "$CMD_TIMEOUT" "$TANDEMCTL" -s "$(node_sock a)" "$@" 2>&1) || rc=$?
    printf '%s\n' "$out" | head -n 3
    [[ $rc -eq 2 ]] || { echo "tandemctl $*: exit status $rc, expected 2"; return 1; }
}
check "tandemctl with an unknown option exits 2" usage_error --frobnicate status
check "tandemctl with an unknown command exits 2" usage_error frobnicate
check "tandemctl neighbors resolve with a malformed IP exits 2" usage_error neighbors resolve not-an-ip

# ------------------------------------------------------------ garbage frames
FRONT0_MAC=$(node_port_mac a front0 2>/dev/null || true)
garbage() {
    [[ -n $FRONT0_MAC && $FRONT0_MAC != null ]] || { echo "no front0 MAC from tandemctl"; return 1; }
    local before after text
    text=$(metrics a) || return 1
    before=$(metric_sum tandem_drops_total <<<"$text")
    grep '^tandem_drops_total' <<<"$text" | grep -v ' 0$' | sed 's/^/before: /' || true
    timeout "$CMD_TIMEOUT" ip netns exec tdm-client python3 "$ROOT/tests/e2e/garbage.py" \
        eth0 "$FRONT0_MAC" "$CLIENT_MAC" 192.0.2.10 192.0.2.2 || return 1
    # 5 kinds x 5 frames: every one of them must be counted under some reason.
    drops_grew() {
        after=$(metric a tandem_drops_total) && ge "$after" "$(( ${before%.*} + 25 ))"
    }
    if ! wait_for drops_grew --timeout 10; then
        metrics a | grep '^tandem_drops_total' | grep -v ' 0$' | sed 's/^/after: /'
        echo "tandem_drops_total grew by less than the 25 frames sent (before $before, after ${after:-?})"
        return 1
    fi
    metrics a | grep '^tandem_drops_total' | grep -v ' 0$' | sed 's/^/after: /'
}
check "25 malformed frames are all counted in tandem_drops_total{reason=...}" garbage
check "node a still answers ping after the garbage" ping_from tdm-client 192.0.2.2 3

# ------------------------------------------------------------ reload
check "scripts/lab stop a (before the reload test)" "$LAB" stop a

CFG=$E2E_TMP/node-a.conf
cp "$CONF_A" "$CFG"
if START_OUT=$("$LAB" start a "$CFG" 2>&1); then
    ok "scripts/lab start a with a copy of the config"
    RELOAD_PID=$(node_pid a)
    BAD_LINE=$(break_config "$CONF_A" "$CFG.new") && mv "$CFG.new" "$CFG"
    kill -HUP "$RELOAD_PID"

    reload_failed_status() {
        local out
        out=$(ctl a --json status) || return 1
        jq -e '.config.reloads_failed >= 1' <<<"$out" >/dev/null
    }
    sighup_rejected() {
        if ! wait_for reload_failed_status --timeout 10; then
            ctl a --json status
            echo "reloads_failed did not reach 1"
            return 1
        fi
        local last
        last=$(ctl a --json status | jq -r '.config.last_error')
        echo "last_error: $last"
        [[ $last == *"$CFG:$BAD_LINE"* ]]
    }
    check "SIGHUP with a broken config: reloads_failed >= 1, last_error has FILE:LINE" sighup_rejected
    check "node a still answers ping after the failed reload" ping_from tdm-client 192.0.2.2 3
    check "tandemd is still the same process after the failed reload" pid_alive "$RELOAD_PID"

    reload_cli_fails() {
        local out err rc=0 last
        err=$E2E_TMP/reload.err
        out=$(timeout "$CMD_TIMEOUT" "$TANDEMCTL" -s "$(node_sock a)" config reload 2>"$err") || rc=$?
        printf 'stdout: %s\nstderr: %s\n' "$out" "$(cat "$err")"
        [[ $rc -eq 1 ]] || { echo "exit status $rc, expected 1"; return 1; }
        grep -qF "$CFG:$BAD_LINE:" "$err" || { echo "stderr lacks '$CFG:$BAD_LINE:'"; return 1; }
        last=$(ctl a --json status | jq -r '.config.last_error')
        grep -qF -- "$last" "$err" || { echo "stderr is not the daemon's error verbatim ($last)"; return 1; }
    }
    check "tandemctl config reload with the broken file: exit 1, FILE:LINE: error verbatim" reload_cli_fails

    cp "$CONF_A" "$CFG"
    reload_cli_ok() {
        local out rc=0
        out=$(timeout "$CMD_TIMEOUT" "$TANDEMCTL" -s "$(node_sock a)" config reload 2>&1) || rc=$?
        printf '%s\n' "$out"
        (( rc == 0 )) || return 1
        ctl a --json status | jq -e '.config.reloads_ok >= 1' >/dev/null
    }
    check "tandemctl config reload with the fixed file: exit 0, reloads_ok >= 1" reload_cli_ok

    reload_metrics() {
        local failed ok_count
        failed=$(metric a tandem_config_reloads_total 'result="failed"') || return 1
        ok_count=$(metric a tandem_config_reloads_total 'result="ok"') || return 1
        echo "tandem_config_reloads_total: failed=$failed ok=$ok_count"
        ge "$failed" 1 && ge "$ok_count" 1
    }
    check "metrics: tandem_config_reloads_total{result=\"failed\"} >= 1 (and ok >= 1)" reload_metrics
    check "ping 192.0.2.2 after the good reload" ping_from tdm-client 192.0.2.2 3
else
    not_ok "scripts/lab start a with a copy of the config" "$START_OUT"
fi

# ------------------------------------------------------------ clean shutdown
STOP_PID=$(node_pid a)
clean_stop() {
    local out rc=0
    out=$("$LAB" stop a 2>&1) || rc=$?
    printf '%s\n' "$out"
    (( rc == 0 )) || { echo "scripts/lab stop a failed (tandemd did not exit 0 within the deadline)"; return 1; }
    [[ -n $STOP_PID ]] && pid_alive "$STOP_PID" && { echo "pid $STOP_PID still alive"; return 1; }
    local ns p
    for ns in tdm-a tdm-b; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do
            [[ $(cat "/proc/$p/comm" 2>/dev/null) == tandemd ]] && { echo "tandemd pid $p left in $ns"; return 1; }
        done
    done
    return 0
}
check "scripts/lab stop a: tandemd exits 0 within the deadline, no tandemd left" clean_stop

socket_removed() { [[ ! -e $(node_sock a) ]] || { ls -l "$(node_sock a)"; return 1; }; }
check "the control socket /run/tandem/a.sock is removed" socket_removed

# Only files that appeared since before the start count: other DPDK programs
# on the machine may come and go meanwhile.
hugepages_clean() {
    local now new
    now=$(ls -A /dev/hugepages 2>/dev/null || true)
    new=$(comm -13 <(sort <<<"$HUGE_BEFORE") <(sort <<<"$now") | sed '/^$/d')
    [[ -z $new ]] && return 0
    echo "new files under /dev/hugepages since before tandemd started:"
    printf '%s\n' "$new" | head -n 10
    return 1
}
check "no new files left under /dev/hugepages" hugepages_clean
check "tandemd log shows no crash (panic, segfault, abort)" bash -c "! grep -iE 'panic|segfault|abort' '$(node_log a)'"

# ------------------------------------------------------------ teardown
lab_gone() {
    local out rc=0
    out=$("$LAB" down 2>&1) || rc=$?
    printf '%s\n' "$out"
    (( rc == 0 )) || return 1
    local left
    left=$(ip netns list | grep -E '^tdm-' || true)
    [[ -z $left ]] || { echo "namespaces left: $left"; return 1; }
    left=$(ip -br link show | awk '{sub(/@.*/, "", $1); print $1}' \
        | grep -xE 'front|back|front0|back0|sync0|a-front|b-front|a-back|b-back|client|dhcp|rs1|rs2' || true)
    [[ -z $left ]] || { echo "links left in the root namespace: $left"; return 1; }
}
check "scripts/lab down leaves no tdm-* namespace and no lab link" lab_gone

e2e_end
