#!/usr/bin/env bash
# Collections against redis-server: redis-benchmark's collection tests (lpush rpush lpop rpop
# sadd hset spop zadd zpopmin lrange_100 lrange_600) at -P 1 and -P 16, redis-server and one
# ringcache node alternating round by round; prints each run's requests per second per test.
# Then HSET into a hash of 10 fields and of $BIG_FIELDS fields (does a write cost the
# collection?). Loopback only, free ports; every server it starts is stopped.
#
#   bench/collections.sh                           ringcache from target/release, memory engine
#   ROUNDS="1 2 3" STORAGE=log PIPELINES="1 16" bench/collections.sh
#
# redis-benchmark's hset/sadd/zadd write up to -r distinct elements into ONE key (`myhash`,
# `myset`, `myzset`), so -r bounds the collection size; $RANDOM_KEYS sets it (default 1000).
# Not a test: only the ratio within one run means anything on a noisy machine.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly RING=${RING:-${CARGO_TARGET_DIR:-target}/release/ringcache}
readonly STORAGE=${STORAGE:-memory}
readonly REQUESTS=${REQUESTS:-100000}
readonly RANDOM_KEYS=${RANDOM_KEYS:-1000}
readonly BIG_FIELDS=${BIG_FIELDS:-10000}
readonly TESTS=${TESTS:-lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_600}
readonly CLI_TIMEOUT_S=5
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

# redis-benchmark's -q lines ("LPUSH: 12345.67 requests per second, p50=...") as "LPUSH=12345".
suite() { # port pipeline
  timeout "$BENCH_TIMEOUT_S" redis-benchmark -p "$1" -n "$REQUESTS" -P "$2" -c 50 \
    -r "$RANDOM_KEYS" -q -t "$TESTS" 2>/dev/null | tr '\r' '\n' |
    sed -n 's/^\([A-Za-z_0-9 ()]*\): \([0-9.]*\) requests per second.*/\1=\2/p' |
    sed 's/ (needed to benchmark LRANGE)/_prefill/; s/ (first \([0-9]*\) elements)/_\1/' |
    tr ' ' '_' | tr '\n' ' '
}

# HSET of existing fields (overwrites: the hash keeps its size) of one hash first filled with
# $2 fields: requests per second. redis-benchmark writes __rand_int__ as 12 digits.
hset_into() { # port fields
  local port=$1 fields=$2
  seq 0 $((fields - 1)) | awk '{printf "HSET big f%012d v\n", $1}' |
    redis-cli -p "$port" --pipe >/dev/null
  timeout "$BENCH_TIMEOUT_S" redis-benchmark -p "$port" -n 20000 -P 1 -c 10 -r "$fields" -q \
    HSET big f__rand_int__ v 2>/dev/null | tr '\r' '\n' |
    sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1
}

for round in ${ROUNDS:-1 2 3}; do
  for side in redis ringcache; do
    for pipeline in ${PIPELINES:-1 16}; do
      start_one "$side"
      echo "round $round $side ($STORAGE) -P $pipeline: $(suite "$port" "$pipeline")"
      stop_one
    done
    start_one "$side"
    small=$(hset_into "$port" 10)
    stop_one
    start_one "$side"
    big=$(hset_into "$port" "$BIG_FIELDS")
    stop_one
    echo "round $round $side ($STORAGE) HSET into 10 fields: $small, into $BIG_FIELDS: $big"
  done
done
