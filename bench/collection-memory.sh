#!/usr/bin/env bash
# Memory per element of one large collection, ringcache against redis-server: fills one hash
# with $ELEMENTS fields (`HSET big f<n> v<n>`), one set with $ELEMENTS members, one sorted set
# with $ELEMENTS members, each in a fresh server, and prints the resident memory the fill
# added (VmRSS after minus before) per element. Loopback only, free ports; every server it
# starts is stopped.
#
#   bench/collection-memory.sh                      ringcache from target/release, memory engine
#   ELEMENTS=100000 STORAGE=log bench/collection-memory.sh
#
# Not a test: RSS depends on the allocator and on the machine; only the ratio in one run means
# anything.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly RING=${RING:-${CARGO_TARGET_DIR:-target}/release/ringcache}
readonly STORAGE=${STORAGE:-memory}
readonly ELEMENTS=${ELEMENTS:-1000000}
readonly CLI_TIMEOUT_S=600
readonly READY_TIMEOUT_S=30

tmp=$(mktemp -d)
server=""
cleanup() {
  stop_one_quietly
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source bench/lib.sh

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }

# The commands that fill one collection of $ELEMENTS elements.
commands() { # hash|set|zset
  case $1 in
    hash) awk -v n="$ELEMENTS" 'BEGIN { for (i = 0; i < n; i++) printf "HSET big f%d v%d\n", i, i }' ;;
    set) awk -v n="$ELEMENTS" 'BEGIN { for (i = 0; i < n; i++) printf "SADD big m%d\n", i }' ;;
    zset) awk -v n="$ELEMENTS" 'BEGIN { for (i = 0; i < n; i++) printf "ZADD big %d m%d\n", i, i }' ;;
  esac
}

for family in hash set zset; do
  line="$family of $ELEMENTS:"
  for side in redis ringcache; do
    start_one "$side"
    before=$(rss_kb)
    commands "$family" | cli -p "$port" --pipe >/dev/null
    case $family in
      hash) held=$(cli -p "$port" HLEN big) ;;
      set) held=$(cli -p "$port" SCARD big) ;;
      zset) held=$(cli -p "$port" ZCARD big) ;;
    esac
    sleep 1
    after=$(rss_kb)
    stop_one
    line+=" $side $(((after - before) * 1024 / ELEMENTS)) B/element ($held held)"
  done
  echo "$line"
done
