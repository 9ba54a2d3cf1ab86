#!/usr/bin/env bash
# Issue 4's storage measurements, ringcache against redis-server on this machine, one after
# the other (loopback only; every process it starts is stopped):
#  1. redis-benchmark SET/GET throughput with durability on both sides: redis-server with
#     appendonly yes and ringcache's log engine, appendfsync everysec and always.
#  2. Restart time after kill -9 with KEYS keys of 100 bytes: ringcache (keydir snapshot plus
#     the segments after it) against redis-server loading the same data from its AOF and
#     from an RDB.
#  3. RSS per key for MEM_KEYS keys of 100 bytes.
#
#   bench/storage-benchmark.sh [KEYS] [MEM_KEYS]        (defaults: 10000000 1000000)
#
# Not a test: these machines are noisy, so only ratios from one run mean anything.
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-10000000}
mem_keys=${2:-1000000}
out=bench/results
mkdir -p "$out"

cargo build --release -q -p ringcache --bin ringcache && cargo build --release -q -p ringcache-bench
ring=./target/release/ringcache
load=./target/release/load
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits until PING answers PONG (not LOADING); prints the seconds it took since $2 (ns).
wait_pong() {
  for _ in $(seq 6000); do
    [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ] && { echo "scale=2; ($(date +%s%N) - $2) / 1000000000" | bc; return 0; }
    sleep 0.05
  done
  echo "server on $1 did not answer" >&2; return 1
}
start_redis() { # port dir args...
  local port=$1 dir=$2; shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no "$@" >>"$dir/log" 2>&1 &
  pids+=($!); last_pid=$!
}
start_ring() { # port dir args...
  local port=$1 dir=$2; shift 2
  mkdir -p "$dir"
  "$ring" --port "$port" --metrics-port 0 --data-dir "$dir" "$@" >>"$dir.log" 2>&1 &
  pids+=($!); last_pid=$!
}
rss_bytes() { echo $(( $(awk '/VmRSS/ {print $2}' "/proc/$1/status") * 1024 )); }
# Anonymous memory only: the log engine's mapped segments show up in RSS as page cache
# (RssFile), which the kernel reclaims under pressure; RssAnon is the process's own memory.
anon_bytes() { echo $(( $(awk '/RssAnon/ {print $2}' "/proc/$1/status") * 1024 )); }

echo "## 1. Throughput with durability (redis-benchmark -c 50 -r 100000 -d 100)"
: >"$out/storage-benchmark.csv"
for policy in everysec always; do
  n=200000; [ "$policy" = always ] && n=50000
  for pipeline in 1 16; do
    port=$(free_port); start_redis "$port" "$tmp/r-$policy-$pipeline" --save '' --appendonly yes --appendfsync "$policy"
    pid=$last_pid; wait_pong "$port" "$(date +%s%N)" >/dev/null
    redis-benchmark -p "$port" -t set,get -n "$n" -c 50 -P "$pipeline" -r 100000 -d 100 --csv 2>/dev/null \
      | tail -n +2 | sed "s/^\"\([A-Z]*\)\"/\"$policy \1\"/; s/^/redis-server,$pipeline,/" >>"$out/storage-benchmark.csv"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    port=$(free_port); start_ring "$port" "$tmp/g-$policy-$pipeline" --storage log --appendfsync "$policy"
    pid=$last_pid; wait_pong "$port" "$(date +%s%N)" >/dev/null
    redis-benchmark -p "$port" -t set,get -n "$n" -c 50 -P "$pipeline" -r 100000 -d 100 --csv 2>/dev/null \
      | tail -n +2 | sed "s/^\"\([A-Z]*\)\"/\"$policy \1\"/; s/^/ringcache,$pipeline,/" >>"$out/storage-benchmark.csv"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
cargo run --release -q -p ringcache-bench --bin ratio-table -- "$out/storage-benchmark.csv"

echo
echo "## 2. Restart after kill -9 with $keys keys of 100 bytes"
data_mb=$(( keys * 100 / 1000000 ))
port=$(free_port); start_ring "$port" "$tmp/recover" --storage log --appendfsync everysec
pid=$last_pid; wait_pong "$port" "$(date +%s%N)" >/dev/null
echo "ringcache load: $($load "$port" "$keys" 100)"
sleep 2 # one everysec fsync
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
t0=$(date +%s%N); start_ring "$port" "$tmp/recover" --storage log --appendfsync everysec; pid=$last_pid
s=$(wait_pong "$port" "$t0")
echo "| ringcache log engine (snapshot + tail) | $s s | $(echo "$keys / $s" | bc) keys/s | $(echo "$data_mb / $s" | bc) MB/s of values | $(redis-cli -p "$port" DBSIZE) keys |"
grep -h "recover" "$tmp/recover.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' || true
kill "$pid"; wait "$pid" 2>/dev/null || true

port=$(free_port); start_redis "$port" "$tmp/redis-aof" --save '' --appendonly yes --appendfsync everysec
pid=$last_pid; wait_pong "$port" "$(date +%s%N)" >/dev/null
echo "redis-server (AOF) load: $($load "$port" "$keys" 100)"
sleep 2
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
t0=$(date +%s%N); start_redis "$port" "$tmp/redis-aof" --save '' --appendonly yes --appendfsync everysec; pid=$last_pid
s=$(wait_pong "$port" "$t0")
echo "| redis-server AOF | $s s | $(echo "$keys / $s" | bc) keys/s | $(echo "$data_mb / $s" | bc) MB/s of values | $(redis-cli -p "$port" DBSIZE) keys |"
redis-cli -p "$port" SAVE >/dev/null
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
t0=$(date +%s%N); start_redis "$port" "$tmp/redis-aof" --save '' --appendonly no; pid=$last_pid
s=$(wait_pong "$port" "$t0")
echo "| redis-server RDB | $s s | $(echo "$keys / $s" | bc) keys/s | $(echo "$data_mb / $s" | bc) MB/s of values | $(redis-cli -p "$port" DBSIZE) keys |"
kill "$pid"; wait "$pid" 2>/dev/null || true

echo
echo "## 3. RSS per key with $mem_keys keys of 100 bytes"
for system in redis-server ringcache-memory ringcache-log; do
  port=$(free_port)
  case $system in
    redis-server) start_redis "$port" "$tmp/m-redis" --save '' --appendonly no ;;
    ringcache-memory) start_ring "$port" "$tmp/m-mem" --storage memory ;;
    ringcache-log) start_ring "$port" "$tmp/m-log" --storage log ;;
  esac
  pid=$last_pid; wait_pong "$port" "$(date +%s%N)" >/dev/null
  before=$(rss_bytes "$pid"); anon_before=$(anon_bytes "$pid")
  $load "$port" "$mem_keys" 100 >/dev/null; sleep 1
  after=$(rss_bytes "$pid"); anon_after=$(anon_bytes "$pid")
  echo "| $system | $(( (after - before) / mem_keys )) B/key RSS | $(( (anon_after - anon_before) / mem_keys )) B/key anonymous | RSS $(( after / 1048576 )) MiB |"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
