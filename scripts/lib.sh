# shellcheck shell=bash
# Shared helpers for scripts/lab, scripts/test, scripts/demo and tests/e2e.
# Source it; it defines functions and variables only (no side effects).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${TANDEM_BUILD:-$ROOT/build}
RUN_DIR=/run/tandem
LAB_RUN=$RUN_DIR/lab
TANDEMD=$BUILD/control/tandemd
TANDEMCTL=$BUILD/control/tandemctl
export ROOT BUILD RUN_DIR LAB_RUN TANDEMD TANDEMCTL

DEPS=(build-essential pkg-config meson ninja-build libdpdk-dev dpdk libconfig++-dev
      prometheus-cpp-dev libtbb-dev libgtest-dev libgmock-dev nlohmann-json3-dev libssl-dev
      iproute2 ethtool nftables iputils-ping arping curl jq nginx-light
      isc-dhcp-client kea-admin tcpdump procps psmisc keepalived wrk haproxy)

# ---------------------------------------------------------------- logging
if [[ -t 1 ]]; then
    _C_BOLD=$'\e[1m' _C_RED=$'\e[31m' _C_YEL=$'\e[33m' _C_OFF=$'\e[0m'
else
    _C_BOLD='' _C_RED='' _C_YEL='' _C_OFF=''
fi
log()     { printf '%s\n' "$*"; }
info()    { printf '%s==>%s %s\n' "$_C_BOLD" "$_C_OFF" "$*"; }
warn()    { printf '%swarning:%s %s\n' "$_C_YEL" "$_C_OFF" "$*" >&2; }
err()     { printf '%serror:%s %s\n' "$_C_RED" "$_C_OFF" "$*" >&2; }
die()     { err "$*"; exit 1; }
heading() { printf '\n%s==== %s ====%s\n' "$_C_BOLD" "$*" "$_C_OFF"; }

need_root() {
    [[ $(id -u) -eq 0 ]] || die "this needs root (network namespaces, hugepages)"
}

# ---------------------------------------------------------------- waiting
# wait_for CMD... --timeout S   (or: wait_for --timeout S CMD...)
# Polls CMD every 0.1 s until it succeeds; returns 1 once S seconds have passed.
wait_for() {
    local timeout=10
    if [[ ${1:-} == --timeout ]]; then
        timeout=$2
        shift 2
    elif (( $# >= 2 )) && [[ ${*: -2:1} == --timeout ]]; then
        timeout=${*: -1}
        set -- "${@:1:$#-2}"
    fi
    (( $# > 0 )) || { err "wait_for: no command"; return 2; }
    local deadline=$(( $(date +%s%N) / 1000000 + timeout * 1000 ))
    while true; do
        if "$@"; then return 0; fi
        (( $(date +%s%N) / 1000000 < deadline )) || return 1
        sleep 0.1
    done
}

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
    local pid=$1 state
    [[ -n $pid && -d /proc/$pid ]] || return 1
    state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}
pid_gone() { ! pid_alive "$1"; }

# ---------------------------------------------------------------- deps
pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]
}

install_deps() {
    local missing=() p
    for p in "${DEPS[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    (( ${#missing[@]} == 0 )) && return 0
    need_root
    info "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}"
}

# ---------------------------------------------------------------- build
# build: meson setup when needed, then ninja. TANDEM_SKIP_BUILD=1 uses $BUILD
# as it is (e.g. binaries built elsewhere).
build() {
    local fresh=0
    if [[ -n ${TANDEM_SKIP_BUILD:-} ]]; then
        info "TANDEM_SKIP_BUILD is set: using $BUILD as it is"
        return 0
    fi
    if [[ ! -f $BUILD/build.ninja || ! -f $BUILD/meson-private/coredata.dat ]]; then
        if [[ -d $BUILD/meson-private ]]; then
            info "meson setup --wipe $BUILD (incomplete build directory)"
            meson setup --wipe "$BUILD" "$ROOT" || return 1
        else
            info "meson setup $BUILD"
            meson setup "$BUILD" "$ROOT" || return 1
        fi
        fresh=1
    elif ! meson introspect "$BUILD" --projectinfo >/dev/null 2>&1; then
        info "meson setup --reconfigure $BUILD (stale build directory)"
        meson setup --reconfigure "$BUILD" "$ROOT" \
            || meson setup --wipe "$BUILD" "$ROOT" || return 1
        fresh=1
    fi
    info "ninja -C $BUILD"
    if ! ninja -C "$BUILD"; then
        (( fresh )) && return 1
        # A build directory left by another meson version or a broken
        # regeneration: reconfigure once and retry.
        if ninja -C "$BUILD" -n >/dev/null 2>&1; then return 1; fi
        warn "ninja could not regenerate; reconfiguring"
        meson setup --reconfigure "$BUILD" "$ROOT" || return 1
        ninja -C "$BUILD" || return 1
    fi
}

# ---------------------------------------------------------------- hugepages
HUGE_NR=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages

# reserve_hugepages N: at least N 2 MiB hugepages reserved, hugetlbfs mounted.
reserve_hugepages() {
    local want=$1 have
    [[ -w $HUGE_NR ]] || { err "cannot write $HUGE_NR (need root and a kernel with 2 MiB hugepages)"; return 1; }
    have=$(<"$HUGE_NR")
    if (( have < want )); then
        echo "$want" >"$HUGE_NR" 2>/dev/null || true
        have=$(<"$HUGE_NR")
        if (( have < want )); then
            # Fragmented memory: drop caches and compact, then try once more.
            sync
            echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
            echo 1 >/proc/sys/vm/compact_memory 2>/dev/null || true
            echo "$want" >"$HUGE_NR" 2>/dev/null || true
            have=$(<"$HUGE_NR")
        fi
        if (( have < want )); then
            err "the kernel reserved only $have of $want 2 MiB hugepages (not enough free contiguous memory?)"
            return 1
        fi
    fi
    if ! mountpoint -q /dev/hugepages; then
        mkdir -p /dev/hugepages
        mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages \
            || { err "cannot mount hugetlbfs on /dev/hugepages"; return 1; }
    fi
}

# ---------------------------------------------------------------- lab helpers
# shellcheck disable=SC2034  # used by scripts/lab and tests/e2e
LAB_NAMESPACES=(tdm-sw tdm-a tdm-b tdm-client tdm-dhcp tdm-rs1 tdm-rs2)

# dhclient_script FILE: writes a dhclient-script that only sets the leased address. The lab's
# namespaces share /etc with the host, so the stock script's resolv.conf handling must not run.
dhclient_script() {
    cat >"$1" <<'EOF'
#!/bin/sh
case "$reason" in
    BOUND|RENEW|REBIND|REBOOT)
        ip addr flush dev "$interface"
        ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
    EXPIRE|FAIL|RELEASE|STOP)
        ip addr flush dev "$interface" ;;
esac
exit 0
EOF
    chmod +x "$1"
}

ns_exists() { [[ -e /run/netns/$1 ]]; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

node_sock() { printf '%s/%s.sock' "$RUN_DIR" "$1"; }
node_pidfile() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
node_log() { printf '%s/%s.log' "$RUN_DIR" "$1"; }
node_rcfile() { printf '%s/%s.rc' "$RUN_DIR" "$1"; }
node_pid() {
    local f
    f=$(node_pidfile "$1")
    [[ -s $f ]] && cat "$f"
    return 0
}
node_running() {
    local pid
    pid=$(node_pid "$1")
    [[ -n $pid ]] && pid_alive "$pid"
}

# ctl NODE ARGS...: tandemctl against that node's socket.
ctl() { local node=$1; shift; timeout 15 "$TANDEMCTL" -s "$(node_sock "$node")" "$@"; }

# metrics NODE: the Prometheus text of that node (from inside its namespace).
metrics() {
    in_ns "tdm-$1" curl -sf --max-time 5 http://127.0.0.1:9469/metrics
}

# metric_sum NAME [key="value"...] < metrics-text: sum of the matching series
# (prints 0 if none match).
metric_sum() {
    local name=$1; shift
    awk -v name="$name" -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        /^#/ { next }
        {
            series = $1; base = series; sub(/\{.*/, "", base)
            if (base != name) next
            for (i = 1; i <= n; i++) if (index(series, w[i]) == 0) next
            sum += $2
        }
        END { printf "%.17g\n", sum + 0 }'
}
