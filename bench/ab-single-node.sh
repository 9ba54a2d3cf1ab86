#!/usr/bin/env bash
# A/B of two ringcache builds on one node: redis-benchmark SET and GET (300,000 requests, 50
# clients, pipeline 16, 100,000 random keys), the two builds alternating round by round, for
# each storage engine; prints each run's requests per second. Used for the request-path check
# of issue 8 (docs/benchmarks.md). Loopback only, free ports; every server it starts is stopped.
#
#   OLD=path/to/old/ringcache bench/ab-single-node.sh          NEW defaults to target/release
#   STORAGES=memory ROUNDS="1 2 3 4" OLD=... bench/ab-single-node.sh
#
# Build the old one apart, e.g. `git worktree add /tmp/old <rev>`, then in /tmp/old
# `CARGO_TARGET_DIR=/tmp/old-target cargo build --release -p ringcache`.
# Not a test: only the ratio within one run means anything on a noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly OLD=${OLD:?the old build: OLD=path/to/ringcache}
readonly NEW=${NEW:-${CARGO_TARGET_DIR:-target}/release/ringcache}
readonly CLI_TIMEOUT_S=5
readonly READY_TIMEOUT_S=30
readonly BENCH_TIMEOUT_S=300

tmp=$(mktemp -d)
server=""
cleanup() {
  [[ -z $server ]] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; } || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source bench/lib.sh

run() { # binary storage
  local port dir out
  port=$(free_port)
  dir=$(mktemp -d -p "$tmp")
  "$1" --bind 127.0.0.1 --port "$port" --metrics-port 0 --threads 1 --storage "$2" \
    --data-dir "$dir" >"$tmp/server.log" 2>&1 &
  server=$!
  wait_ready "$port"
  out=$(timeout "$BENCH_TIMEOUT_S" redis-benchmark -p "$port" -t set,get -n 300000 -P 16 \
    -c 50 -r 100000 -q 2>/dev/null | tr '\r' '\n' |
    grep -E '^(SET|GET): [0-9.]+ requests' | awk '{print $1, $2}' | tr '\n' ' ')
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
  echo "$out"
}

for storage in ${STORAGES:-memory log}; do
  for round in ${ROUNDS:-1 2 3}; do
    echo "$storage round $round old: $(run "$OLD" "$storage")"
    echo "$storage round $round new: $(run "$NEW" "$storage")"
  done
done
