#!/usr/bin/env bash
# A/B of two ringcache builds as a 3-node cluster on loopback: redis-benchmark SET and GET at
# QUORUM through every node (the level is the server default), the two builds alternating round
# by round; prints each run's requests per second. Loopback only, free ports; every server it
# starts is stopped.
#
#   OLD=path/to/old/ringcache bench/ab-cluster.sh          NEW defaults to target/release
#   ROUNDS="1 2 3 4" REQUESTS=100000 OLD=... bench/ab-cluster.sh
#
# Build the old one apart, e.g. `git worktree add /tmp/old <rev>`, then in /tmp/old
# `CARGO_TARGET_DIR=/tmp/old-target cargo build --release -p ringcache`.
# Not a test: only the ratio within one run means anything on a noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly OLD=${OLD:?the old build: OLD=path/to/ringcache}
readonly NEW=${NEW:-${CARGO_TARGET_DIR:-target}/release/ringcache}
readonly NODES=3
readonly REQUESTS=${REQUESTS:-100000}
readonly CLI_TIMEOUT_S=5
readonly READY_TIMEOUT_S=30
readonly BENCH_TIMEOUT_S=300

tmp=$(mktemp -d)
servers=()
stop_servers() {
  ((${#servers[@]})) || return 0
  kill "${servers[@]}" 2>/dev/null || true
  wait "${servers[@]}" 2>/dev/null || true
  servers=()
}
cleanup() {
  stop_servers
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source bench/lib.sh

# One node's share of the load: redis-benchmark SET and GET against $1, in the background.
load() { # port output-file
  timeout "$BENCH_TIMEOUT_S" redis-benchmark -p "$1" -t set,get -n "$REQUESTS" -P 16 \
    -c 16 -r 100000 -q 2>/dev/null | tr '\r' '\n' |
    grep -E '^(SET|GET): [0-9.]+ requests' | awk '{print $1, $2}' >"$2"
}

run() { # binary: prints "SET: <sum of the nodes' rps> GET: <sum>"
  local node_ports peer_ports k dir seeds
  cluster_ports "$NODES"
  for ((k = 0; k < NODES; k++)); do
    dir=$(mktemp -d -p "$tmp")
    "$1" --bind 127.0.0.1 --port "${node_ports[k]}" --peer-port "${peer_ports[k]}" \
      --seeds "$seeds" --cluster-secret "ab-cluster-$$" --data-dir "$dir" --metrics-port 0 \
      --storage memory --threads 1 >"$tmp/node$k.log" 2>&1 &
    servers+=($!)
  done
  for port in "${node_ports[@]}"; do wait_ready "$port"; done
  for port in "${node_ports[@]}"; do wait_members_up "$port" "$NODES"; done
  local loads=()
  for ((k = 0; k < NODES; k++)); do
    load "${node_ports[k]}" "$tmp/load$k.out" &
    loads+=($!)
  done
  wait "${loads[@]}"
  stop_servers
  cat "$tmp"/load*.out | awk '{rps[$1] += $2} END {printf "SET: %.0f GET: %.0f", rps["SET:"], rps["GET:"]}'
  rm -f "$tmp"/load*.out
}

for round in ${ROUNDS:-1 2 3}; do
  echo "cluster round $round old: $(run "$OLD")"
  echo "cluster round $round new: $(run "$NEW")"
done
