# shellcheck shell=bash
# TAP-style helpers for the end-to-end tests. Source it from tests/e2e/test_*.sh.
# Each check prints "ok - DESCRIPTION" or "not ok - DESCRIPTION" followed by
# a few "#   " diagnostic lines.

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

LAB=$ROOT/scripts/lab
E2E_PASSED=0
E2E_FAILED=0
E2E_NAME=$(basename "$0" .sh)
E2E_TMP=$(mktemp -d "/tmp/tandem-$E2E_NAME.XXXXXX")
export LAB E2E_TMP

# Put before every client command so nothing can hang a test.
CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-15}

ok() {
    E2E_PASSED=$((E2E_PASSED + 1))
    printf 'ok - %s\n' "$*"
}

# not_ok DESCRIPTION [DIAGNOSTIC-TEXT]
not_ok() {
    E2E_FAILED=$((E2E_FAILED + 1))
    printf 'not ok - %s\n' "$1"
    if [[ -n ${2:-} ]]; then
        printf '%s\n' "$2" | tail -n "${E2E_DIAG_LINES:-15}" | sed 's/^/#   /'
    fi
}

diag() { printf '#   %s\n' "$@"; }

# check DESCRIPTION CMD...: ok if CMD exits 0; otherwise not ok with the tail of
# its output. CMD runs in a subshell: it cannot set variables for later checks.
check() {
    local desc=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if (( rc == 0 )); then
        ok "$desc"
        if [[ -n ${E2E_VERBOSE:-} && -n $out ]]; then
            printf '%s\n' "$out" | sed 's/^/#   /'
        fi
    else
        not_ok "$desc" "$out"$'\n'"(exit status $rc)"
    fi
}

# skip_check DESCRIPTION REASON: counts as a failure (a check that could not run).
skip_check() { not_ok "$1" "not run: $2"; }

# e2e_cleanup: stop the nodes, take the lab down. Runs from the EXIT trap.
e2e_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    {
        "$LAB" stop a --kill
        "$LAB" stop b --kill
        "$LAB" down
    } >/dev/null 2>&1 || true
    [[ -n ${E2E_TMP:-} && -d $E2E_TMP ]] && rm -rf "$E2E_TMP"
    exit "$rc"
}

# e2e_begin: root, built binaries, clean lab, cleanup trap.
e2e_begin() {
    trap e2e_cleanup EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    printf '# %s\n' "$E2E_NAME"
    if [[ $(id -u) -ne 0 ]]; then
        not_ok "$E2E_NAME: runs as root" "the lab needs root"
        e2e_end
    fi
    if [[ ! -x $TANDEMD || ! -x $TANDEMCTL ]]; then
        not_ok "$E2E_NAME: tandemd and tandemctl are built" "missing $TANDEMD or $TANDEMCTL"
        e2e_end
    fi
    "$LAB" down >/dev/null 2>&1 || true
    local out
    if ! out=$("$LAB" up 2>&1); then
        not_ok "$E2E_NAME: scripts/lab up" "$out"
        e2e_end
    fi
}

# e2e_end: summary line, exit status 1 if anything failed.
e2e_end() {
    printf '# %s: %d passed, %d failed\n' "$E2E_NAME" "$E2E_PASSED" "$E2E_FAILED"
    (( E2E_FAILED == 0 )) || exit 1
    exit 0
}

# ------------------------------------------------------------ lab queries
# mac_of NS IF: the interface's MAC, lower case.
mac_of() {
    ip -n "$1" -j link show dev "$2" | jq -r '.[0].address' | tr 'A-F' 'a-f'
}

# node_port_mac NODE PORT: the MAC tandemctl reports for the port, lower case.
node_port_mac() {
    ctl "$1" --json ports | jq -r --arg p "$2" '.[] | select(.name == $p) | .mac' | tr 'A-F' 'a-f'
}

# metric NODE NAME [key="value"...]: the summed value (0 if absent); fails if
# the metrics endpoint does not answer.
metric() {
    local node=$1 text
    shift
    text=$(metrics "$node") || return 1
    metric_sum "$@" <<<"$text"
}

# ge A B: A >= B for (possibly floating point) numbers.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }

# ping_from NS IP [COUNT]: all pings answered.
ping_from() {
    local out rc=0
    out=$(timeout "$CMD_TIMEOUT" ip netns exec "$1" ping -n -c "${3:-3}" -W 1 -i 0.2 "$2" 2>&1) || rc=$?
    printf '%s\n' "$out"
    (( rc == 0 )) && grep -q ' 0% packet loss' <<<"$out"
}
