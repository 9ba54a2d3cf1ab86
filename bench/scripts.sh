#!/usr/bin/env bash
# Scripts and transactions against redis-server (issue 17): EVALSHA of a small script (a rate
# limiter: INCR, then EXPIRE on the first) with redis-benchmark, and MULTI + 5 SETs + EXEC
# with bench's tx-bench (redis-benchmark cannot send a transaction), -P 1, 50 clients;
# redis-server and one ringcache node (--threads 1) alternating round by round. Prints each
# run's requests (transactions) per second. Loopback only, free ports; every server it
# starts is stopped.
#
#   bench/scripts.sh                     ringcache from target/release, memory engine
#   ROUNDS="1 2 3" STORAGE=log bench/scripts.sh
#
# Not a test: only the ratio within one run means anything on a noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly RING=${RING:-${CARGO_TARGET_DIR:-target}/release/ringcache}
readonly TX_BENCH=${TX_BENCH:-${CARGO_TARGET_DIR:-target}/release/tx-bench}
readonly STORAGE=${STORAGE:-memory}
readonly REQUESTS=${REQUESTS:-100000}
readonly CLI_TIMEOUT_S=5
readonly READY_TIMEOUT_S=30
readonly BENCH_TIMEOUT_S=600
readonly LIMITER="local c = redis.call('incr', KEYS[1]) if c == 1 then redis.call('expire', KEYS[1], ARGV[1]) end return c"

tmp=$(mktemp -d)
server=""
cleanup() {
  stop_one_quietly
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source bench/lib.sh

evalsha() { # port
  local sha
  sha=$(cli -p "$1" SCRIPT LOAD "$LIMITER")
  timeout "$BENCH_TIMEOUT_S" redis-benchmark -p "$1" -n "$REQUESTS" -P 1 -c 50 -r 100000 -q \
    EVALSHA "$sha" 1 rate:__rand_int__ 60 2>/dev/null | tr '\r' '\n' |
    sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1
}

multi_exec() { # port
  timeout "$BENCH_TIMEOUT_S" "$TX_BENCH" --port "$1" --clients 50 --transactions "$REQUESTS"
}

for round in ${ROUNDS:-1 2 3}; do
  for side in redis ringcache; do
    start_one "$side"
    script=$(evalsha "$port")
    stop_one
    start_one "$side"
    tx=$(multi_exec "$port")
    stop_one
    echo "round $round $side ($STORAGE): EVALSHA=$script MULTI_5xSET_EXEC=$tx"
  done
done
