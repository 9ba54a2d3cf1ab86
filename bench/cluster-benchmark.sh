#!/usr/bin/env bash
# The cluster measurements: SET and GET at consistency ONE, QUORUM and ALL on a 3-node
# ringcache cluster on loopback, against one ringcache node and against redis-server, all
# running at the same time on this machine. Prints a markdown table: throughput, the ratios
# against redis-server and against the single node, p50 and p99, and the CPU seconds the
# servers (and the whole machine) spent per 100,000 requests. Loopback only; every process it
# starts is stopped.
#
#   bench/cluster-benchmark.sh [requests] [clients]     (defaults: 100000 50)
#   PERF=1 bench/cluster-benchmark.sh ...               then profiles node 1 (perf record -g)
#                                                       during one more cluster SET QUORUM run
#
# The client load has the same shape for every system: three redis-benchmark processes in
# parallel, each with a third of the clients and of the requests. On the cluster each process
# talks to its own node, as behind a load balancer (every node coordinates, and with N = 3 on
# 3 nodes every node is a replica of every key, so the load is even); on redis-server and the
# single node all three talk to the one server. Throughput is all requests over the wall time
# of the three; p50 and p99 are the highest of the three processes' figures.
#
# ringcache runs with --storage memory, like redis-server with --save '' --appendonly no.
# Not a test: these machines are noisy, so only ratios from one run mean anything.
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-100000}
clients=${2:-50}

readonly KEYS=100000           # the key space: redis-benchmark -r, and what is preloaded
readonly VALUE_BYTES=100
readonly NODES=3               # cluster nodes, and redis-benchmark processes per run
readonly READY_TIMEOUT_S=30    # for a server to answer PING, and for members_up:3
readonly RUN_TIMEOUT_S=300     # for one redis-benchmark process
readonly CLI_TIMEOUT_S=5
readonly PRELOAD_TIMEOUT_S=120
readonly PERF_HZ=999
readonly LOG_TAIL_LINES=20
readonly LEVELS="ONE QUORUM ALL"
((clients >= NODES)) || { echo "clients must be at least $NODES" >&2; exit 2; }
((requests >= NODES)) || { echo "requests must be at least $NODES" >&2; exit 2; }

out=bench/results
mkdir -p "$out"
bin=${CARGO_TARGET_DIR:-target}/release/ringcache
cargo build --release -q -p ringcache --bin ringcache

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

source bench/lib.sh
# CPU ticks (user + system) used so far by the given processes, summed.
cpu_ticks() {
  local sum=0 p stat f
  for p in "$@"; do
    stat=$(<"/proc/$p/stat") || { echo "server process $p has exited" >&2; show_logs; exit 1; }
    read -ra f <<<"${stat##*) }" # f[0] is field 3 (state): utime is field 14, stime 15
    sum=$((sum + f[11] + f[12]))
  done
  echo "$sum"
}
# CPU ticks the whole machine has been busy (user, nice, system, irq, softirq; all cores):
# the servers, the benchmark client, and anything else running.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
TICKS_PER_S=$(getconf CLK_TCK)
readonly TICKS_PER_S

# --- start the servers -----------------------------------------------------------------------
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
  --daemonize no >"$tmp/redis.log" 2>&1 &
pids+=($!); redis_pids=($!)

single_port=$(free_port)
"$bin" --bind 127.0.0.1 --port "$single_port" --metrics-port 0 --storage memory \
  --data-dir "$tmp/single" >"$tmp/single.log" 2>&1 &
pids+=($!); single_pids=($!)

secret="cluster-benchmark-$$-$RANDOM"
cluster_pids=()
cluster_ports "$NODES"
for ((k = 0; k < NODES; k++)); do
  "$bin" --bind 127.0.0.1 --port "${node_ports[k]}" --peer-port "${peer_ports[k]}" \
    --seeds "$seeds" --cluster-secret "$secret" --data-dir "$tmp/node$((k + 1))" \
    --metrics-port 0 --storage memory >"$tmp/node$((k + 1)).log" 2>&1 &
  pids+=($!); cluster_pids+=($!)
done

for port in "$redis_port" "$single_port" "${node_ports[@]}"; do
  wait_ready "$port" || { show_logs; exit 1; }
done
for port in "${node_ports[@]}"; do wait_members_up "$port" "$NODES"; done

# --- preload every key of the key space, so that every GET finds its key ---------------------
value=$(head -c "$VALUE_BYTES" /dev/zero | tr '\0' x)
preload() { # port [suffix words...]
  local port=$1; shift
  awk -v v="$value" -v n="$KEYS" -v suffix="$*" 'BEGIN {
    ns = split(suffix, s, " ")
    for (i = 0; i < n; i++) {
      k = sprintf("key:%012d", i)  # redis-benchmark writes __rand_int__ as 12 digits
      printf "*%d\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", 3 + ns, length(k), k, length(v), v
      for (j = 1; j <= ns; j++) printf "$%d\r\n%s\r\n", length(s[j]), s[j]
    }
  }' | timeout "$PRELOAD_TIMEOUT_S" redis-cli -h 127.0.0.1 -p "$port" --pipe \
    >"$tmp/preload.out" 2>&1
  grep -q "errors: 0, replies: $KEYS" "$tmp/preload.out" || {
    echo "preload of $port failed:" >&2
    cat "$tmp/preload.out" >&2
    return 1
  }
}
preload "$redis_port"
preload "$single_port" CONSISTENCY ALL
preload "${node_ports[0]}" CONSISTENCY ALL # every node is a replica of every key
for port in "$redis_port" "$single_port" "${node_ports[@]}"; do
  n=$(cli -p "$port" DBSIZE)
  [[ $n == "$KEYS" ]] || echo "warning: DBSIZE on $port is $n after preloading $KEYS keys" >&2
done

# --- the runs --------------------------------------------------------------------------------
# run SYSTEM WORKLOAD "PORT PORT PORT" COMMAND...: one line of $out/cluster-benchmark.csv:
# system,workload,req/s,p50 ms,p99 ms,server CPU ticks,machine CPU ticks,requests
csv=$out/cluster-benchmark.csv
: >"$csv"
run() {
  local system=$1 workload=$2 ports
  read -ra ports <<<"$3"
  shift 3
  local server_pids
  case $system in
    redis-server) server_pids=("${redis_pids[@]}") ;;
    single) server_pids=("${single_pids[@]}") ;;
    cluster) server_pids=("${cluster_pids[@]}") ;;
  esac
  local i n c bench=() failed=0
  local cpu0 m0 t0 cpu1 m1 t1
  cpu0=$(cpu_ticks "${server_pids[@]}"); m0=$(machine_ticks); t0=$(date +%s%N)
  for ((i = 0; i < NODES; i++)); do
    n=$(((requests + i) / NODES)); c=$(((clients + i) / NODES)) # the thirds add up exactly
    timeout "$RUN_TIMEOUT_S" redis-benchmark -h 127.0.0.1 -p "${ports[i]}" -n "$n" -c "$c" \
      -r "$KEYS" --csv "$@" >"$tmp/bench.$i.csv" 2>"$tmp/bench.$i.err" &
    bench+=($!)
  done
  for ((i = 0; i < NODES; i++)); do
    wait "${bench[i]}" || {
      echo "$system $workload: redis-benchmark on port ${ports[i]} exited with $?" \
        "(124: timed out):" >&2
      cat "$tmp/bench.$i.err" >&2
      failed=1
    }
  done
  t1=$(date +%s%N); m1=$(machine_ticks); cpu1=$(cpu_ticks "${server_pids[@]}")
  if ((failed)); then
    echo "$system,$workload,failed,,,,,$requests" >>"$csv"
    return 0
  fi
  # CSV: "test","rps","avg","min","p50","p95","p99","max"; the test is the command line.
  cat "$tmp"/bench.*.csv | tr -d '"' | awk -F, -v s="$system" -v w="$workload" \
    -v ns=$((t1 - t0)) -v cpu=$((cpu1 - cpu0)) -v m=$((m1 - m0)) -v n="$requests" \
    -v procs="$NODES" '
    $1 != "test" { if ($(NF-3) > p50) p50 = $(NF-3); if ($(NF-1) > p99) p99 = $(NF-1); rows++ }
    END {
      if (rows != procs) { print s "," w ",failed,,,,," n; exit }
      printf "%s,%s,%.0f,%.3f,%.3f,%d,%d,%d\n", s, w, n / (ns / 1e9), p50, p99, cpu, m, n
    }' >>"$csv"
  tail -n 1 "$csv" >&2
}

three() { printf '%s %s %s' "$1" "$1" "$1"; }
echo "load: $(uptime)" >&2
for op in SET GET; do
  cmd=(GET key:__rand_int__)
  [[ $op == SET ]] && cmd=(SET key:__rand_int__ "$value")
  run redis-server "$op" "$(three "$redis_port")" "${cmd[@]}"
  for level in $LEVELS; do
    run single "$op $level" "$(three "$single_port")" "${cmd[@]}" CONSISTENCY "$level"
    run cluster "$op $level" "${node_ports[*]}" "${cmd[@]}" CONSISTENCY "$level"
  done
done
echo "load: $(uptime)" >&2

# Anything that went wrong inside the cluster: failed requests and warnings in the logs.
for ((k = 0; k < NODES; k++)); do
  echo "node $((k + 1)): $(cli -p "${node_ports[k]}" INFO cluster | tr -d '\r' |
    grep -E '^(members_up|requests_[a-z]+|hints_stored|read_repairs):' | tr '\n' ' ')" >&2
  log=$tmp/node$((k + 1)).log
  echo "node $((k + 1)): $(grep -cE ' (WARN|ERROR) ' "$log" || true) WARN or ERROR log lines" >&2
  grep -E ' (WARN|ERROR) ' "$log" | sed 's/\x1b\[[0-9;]*m//g' | head -5 >&2 || true
done

# --- the table -------------------------------------------------------------------------------
echo
echo "3 × redis-benchmark -n $requests/3 -c $clients/3 -r $KEYS, value $VALUE_BYTES bytes," \
  "in parallel"
echo "($(nproc) cores for every server and the client; $(date -u +%Y-%m-%d))"
echo
echo "| system | workload | req/s | vs redis-server | vs single node | p50 ms | p99 ms" \
  "| server CPU s / 100k req | machine CPU s / 100k req |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F, -v hz="$TICKS_PER_S" '
  { sys[NR] = $1; wl[NR] = $2; rps[NR] = $3; p50[NR] = $4; p99[NR] = $5
    cpu[NR] = $6; m[NR] = $7; n[NR] = $8; key[$1 "," $2] = $3 }
  END {
    for (i = 1; i <= NR; i++) {
      split(wl[i], w, " ")
      r = key["redis-server," w[1]]; s = key["single," wl[i]]
      name = sys[i] == "single" ? "single node" : sys[i] == "cluster" ? "3-node cluster" : sys[i]
      if (rps[i] == "failed") { printf "| %s | %s | failed | | | | | | |\n", name, wl[i]; continue }
      vr = vs = "—"
      if (sys[i] != "redis-server" && r != "" && r != "failed") vr = sprintf("%.2f", rps[i] / r)
      if (sys[i] == "cluster" && s != "" && s != "failed") vs = sprintf("%.2f", rps[i] / s)
      printf "| %s | %s | %d | %s | %s | %.3f | %.3f | %.2f | %.2f |\n", name, wl[i], rps[i],
        vr, vs, p50[i], p99[i], cpu[i] / hz * 100000 / n[i], m[i] / hz * 100000 / n[i]
    }
  }' "$csv"

# --- optional: where node 1 spends its time during a cluster SET QUORUM ----------------------
if [[ ${PERF:-0} == 1 ]]; then
  perf_data=$tmp/perf.data
  perf record -q -F "$PERF_HZ" -g -p "${cluster_pids[0]}" -o "$perf_data" 2>"$tmp/perf.err" &
  perf_pid=$! # not in pids: it ends by itself when node 1 does
  sleep 1 # perf attaches
  run cluster "SET QUORUM (under perf)" "${node_ports[*]}" \
    SET key:__rand_int__ "$value" CONSISTENCY QUORUM
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" || true
  echo
  echo "perf record -F $PERF_HZ -g -p <node 1> during the run above, self time by symbol:"
  perf report -i "$perf_data" --no-children --percent-limit 1 --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -60
  echo "by shared object:"
  perf report -i "$perf_data" --no-children --sort dso --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -10
  cp "$perf_data" "$out/cluster-perf.data"
fi
