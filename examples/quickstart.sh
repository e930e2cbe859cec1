#!/usr/bin/env bash
# Weir quick start: everything from a fresh machine with only the Rust toolchain.
#
#   1. installs the wasm32-wasip2 target (filters are WebAssembly components),
#   2. builds the example and built-in filters to .wasm,
#   3. builds the proxy and a tiny echo upstream,
#   4. starts two upstreams ("stable" on :3001, "canary" on :3002),
#   5. runs weir on examples/quickstart.yaml (proxy on :8080, admin on :9901).
#
# Ctrl-C stops the proxy (gracefully) and the upstreams.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Installing the wasm32-wasip2 target"
rustup target add wasm32-wasip2

step "Building the filters (wasm32-wasip2 components)"
filter_pkgs=(-p hello-filter)
for dir in filters/*/; do
    [ -f "$dir/Cargo.toml" ] || continue
    filter_pkgs+=(-p "$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)")
done
cargo build --profile filter --target wasm32-wasip2 "${filter_pkgs[@]}"

step "Building weir and the example upstream"
cargo build --release -p weir-proxy -p echo-upstream

step "Starting the example upstreams"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
target/release/echo-upstream --listen 127.0.0.1:3001 --name stable & pids+=($!)
target/release/echo-upstream --listen 127.0.0.1:3002 --name canary & pids+=($!)

cat <<'TRY'

Try, in another terminal (demo credentials: see the top of examples/quickstart.yaml):
  KEY=weir-demo-key
  ALICE=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ3ZWlyLXF1aWNrc3RhcnQiLCJhdWQiOiJ3ZWlyLWRlbW8iLCJzdWIiOiJhbGljZSIsInJvbGVzIjpbImFkbWluIl0sImV4cCI6NDEwMjQ0NDgwMH0.ah21Z1MfFFIXAJb4p53KgQEGT0RyvLl77kNWHDIZV7Q
  # (or mint one: ALICE=$(python3 examples/make-demo-jwt.py alice admin))
  curl -i http://127.0.0.1:8080/hello                          # direct response from the route, no filters, no upstream
  curl -i http://127.0.0.1:8080/public/info                    # authz: /public is open; x-hello added by the hello filter
  curl -i http://127.0.0.1:8080/echo                           # authz: 401 + www-authenticate, no credentials
  curl -i -H "x-api-key: $KEY" http://127.0.0.1:8080/echo      # authz: 200; upstream sees x-weir-principal: demo-client
  curl -i -H "x-api-key: $KEY" http://127.0.0.1:8080/admin     # authz: 403, demo-client has no admin role
  curl -i -H "authorization: Bearer $ALICE" http://127.0.0.1:8080/admin    # authz: 200, JWT with roles [admin]
  curl -i -H "x-api-key: $KEY" -H 'x-weir-fault-abort: 503' http://127.0.0.1:8080/echo        # fault: forced 503
  time curl -s -o /dev/null -H "x-api-key: $KEY" -H 'x-weir-fault-delay: 1500' http://127.0.0.1:8080/echo   # fault: 1.5 s delay
  curl -i -H "x-api-key: $KEY" -H 'x-user: chaos' http://127.0.0.1:8080/echo                  # fault: the user "chaos" always gets 503
  curl -i -H "x-api-key: $KEY" -H 'x-canary: always' http://127.0.0.1:8080/echo               # canary: served by "canary"
  curl -s -H "x-api-key: $KEY" -H 'x-user-id: user-7' http://127.0.0.1:8080/echo | grep upstream   # canary: same user, same upstream, every time
  for i in $(seq 100); do curl -s -o /dev/null -w '%header{x-canary-variant}\n' -H "x-api-key: $KEY" http://127.0.0.1:8080/echo; done | sort | uniq -c   # ~90/10
  curl -s http://127.0.0.1:9901/ready                          # admin: readiness
  curl -s http://127.0.0.1:9901/config                         # admin: the effective config
  curl -s http://127.0.0.1:9901/metrics                        # admin: filter metrics, Prometheus text format

TRY

step "Running weir (Ctrl-C to stop)"
target/release/weir run --config examples/quickstart.yaml &
weir_pid=$!
pids+=("$weir_pid")
trap 'kill -TERM "$weir_pid" 2>/dev/null || true' INT TERM
wait "$weir_pid" || true
