#!/usr/bin/env bash
# A large sorted set against redis-server: one zset of $MEMBERS members (scores scattered),
# then redis-benchmark of the commands a leaderboard runs (top ten with and without scores,
# a page in the middle, a score window, a count, a rank, an update, a pop), redis-server and
# one ringcache node alternating round by round; prints requests per second per command.
# Loopback only, free ports; every server it starts is stopped.
#
#   bench/zset-large.sh                     ringcache from target/release, memory engine
#   ROUNDS="1 2 3" MEMBERS=1000000 STORAGE=log bench/zset-large.sh
#
# Not a test: only the ratio within one run means anything on a noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly RING=${RING:-${CARGO_TARGET_DIR:-target}/release/ringcache}
readonly STORAGE=${STORAGE:-memory}
readonly MEMBERS=${MEMBERS:-100000}
readonly REQUESTS=${REQUESTS:-20000}
readonly CLI_TIMEOUT_S=600
readonly READY_TIMEOUT_S=30
readonly BENCH_TIMEOUT_S=600

tmp=$(mktemp -d)
server=""
cleanup() {
  stop_one_quietly
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source bench/lib.sh

readonly COMMANDS=(
  "ZRANGE z 0 9"
  "ZRANGE z 0 9 WITHSCORES"
  "ZREVRANGE z 0 9"
  "ZRANGE z 50000 50009"
  "ZRANGEBYSCORE z 500000 +inf LIMIT 0 10"
  "ZCOUNT z 0 100000"
  "ZRANK z m000050000"
  "ZADD z __rand_int__ m__rand_int__"
  "ZPOPMIN z"
)

for round in ${ROUNDS:-1 2}; do
  for side in redis ringcache; do
    start_one "$side"
    seq 0 $((MEMBERS - 1)) | awk '{printf "ZADD z %d m%09d\n", ($1 * 7919) % 1000003, $1}' |
      cli -p "$port" --pipe >/dev/null
    line="round $round $side ($STORAGE):"
    for command in "${COMMANDS[@]}"; do
      # shellcheck disable=SC2086 # the command's words are separate arguments
      rps=$(timeout "$BENCH_TIMEOUT_S" redis-benchmark -p "$port" -n "$REQUESTS" -c 10 \
        -r "$MEMBERS" -q $command 2>/dev/null | tr '\r' '\n' |
        sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1)
      line+=" [$command]=$rps"
    done
    stop_one
    echo "$line"
  done
done
