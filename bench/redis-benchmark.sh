#!/usr/bin/env bash
# Runs redis-benchmark against redis-server and against ringcache, one after the other on this
# machine, with the same workload, and prints the ringcache / redis-server ratios as a
# markdown table (throughput, p50, p99). Loopback only; every process it starts is stopped.
#
#   bench/redis-benchmark.sh [requests] [clients]      (defaults: 200000 50)
#
# Not a test: these machines are noisy, so only ratios from one run mean anything.
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-200000}
clients=${2:-50}
tests=set,get,incr,mset,ping_inline,ping_mbulk
out=bench/results
mkdir -p "$out"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 100); do redis-cli -p "$1" PING >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "server on $1 did not start" >&2; return 1; }

cargo build --release -q -p ringcache --bin ringcache && cargo build --release -q -p ringcache-bench
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
tmp=$(mktemp -d)
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
  --daemonize no >"$tmp/redis.log" 2>&1 &
pids+=($!)
ring_port=$(free_port)
./target/release/ringcache --port "$ring_port" --metrics-port 0 --data-dir "$tmp/ring" \
  >"$tmp/ring.log" 2>&1 &
pids+=($!)
wait_ready "$redis_port"
wait_ready "$ring_port"

run() { # system port pipeline
  redis-benchmark -p "$2" -t "$tests" -n "$requests" -c "$clients" -P "$3" -r 100000 -d 100 --csv \
    2>/dev/null | awk -v s="$1" -v p="$3" 'NR>1 {print s","p","$0}'
}
: >"$out/redis-benchmark.csv"
for pipeline in 1 16; do
  run redis-server "$redis_port" "$pipeline" >>"$out/redis-benchmark.csv"
  run ringcache "$ring_port" "$pipeline" >>"$out/redis-benchmark.csv"
done

echo "redis-benchmark -t $tests -n $requests -c $clients -P <P> -r 100000 -d 100"
echo "(redis-server, then ringcache; $(nproc) cores; $(date -u +%Y-%m-%d))"
echo
cargo run --release -q -p ringcache-bench --bin ratio-table -- "$out/redis-benchmark.csv"
