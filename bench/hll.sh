#!/usr/bin/env bash
# HyperLogLog against redis-server: redis-benchmark PFADD of random elements to one key (the
# HLL turns dense early) and PFCOUNT of it, redis-server and one ringcache node alternating
# round by round; prints each run's requests per second. Loopback only, free ports; every
# server it starts is stopped.
#
#   bench/hll.sh                                   ringcache from target/release
#   ROUNDS="1 2 3 4 5" STORAGE=log bench/hll.sh
#
# Not a test: only the ratio within one run means anything on a noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly RING=${RING:-${CARGO_TARGET_DIR:-target}/release/ringcache}
readonly STORAGE=${STORAGE:-memory}
readonly REQUESTS=${REQUESTS:-300000}
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

# One redis-benchmark run of `$2...` against port $1: its requests per second.
rps() {
  local port=$1
  shift
  timeout "$BENCH_TIMEOUT_S" redis-benchmark -p "$port" -n "$REQUESTS" -P 16 -c 50 \
    -r 1000000 -q "$@" 2>/dev/null | tr '\r' '\n' |
    sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1
}

run() { # redis|ringcache: prints "PFADD: <rps> PFCOUNT: <rps>"
  local port dir
  port=$(free_port)
  dir=$(mktemp -d -p "$tmp")
  case $1 in
    redis) redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$dir" --daemonize no >"$tmp/server.log" 2>&1 & ;;
    ringcache) "$RING" --bind 127.0.0.1 --port "$port" --metrics-port 0 --threads 1 \
      --storage "$STORAGE" --data-dir "$dir" >"$tmp/server.log" 2>&1 & ;;
  esac
  server=$!
  wait_ready "$port"
  local add count
  add=$(rps "$port" PFADD hll __rand_int__)
  count=$(rps "$port" PFCOUNT hll)
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
  echo "PFADD: $add PFCOUNT: $count"
}

for round in ${ROUNDS:-1 2 3}; do
  echo "round $round redis-server: $(run redis)"
  echo "round $round ringcache ($STORAGE): $(run ringcache)"
done
