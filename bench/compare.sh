#!/usr/bin/env bash
# The comparison in docs/benchmarks.md, in one command: redis-server, one ringcache node and a
# 3-node ringcache cluster, all on loopback on this machine, loaded one at a time by the same
# load generator (ringcache-bench). Three tables:
#   goals    the single node against redis-server: SET:GET 1:1 and 1:10, pipeline 1 and 16
#   tool     redis-benchmark against ringcache-bench, both on redis-server: SET and GET, P1 and
#            P16 (the generator is not the bottleneck)
#   cluster  the cluster against the single node: SET and GET at ONE, QUORUM and ALL, with the
#            servers' CPU per 100,000 requests
# Every run's result goes to bench/results/compare/; then bench-report writes the tables and
# plots into the section of docs/benchmarks.md between the `compare.sh` markers (inserted
# after the first paragraph if absent) and docs/benchmarks/*.svg. Every process it starts is
# stopped on exit, also on failure or Ctrl-C.
#
#   bench/compare.sh                         defaults: 10 s measured, 2 s warmup per run
#   DURATION=2 WARMUP=1 bench/compare.sh     quick mode
#   REPORT_ONLY=1 bench/compare.sh           rewrite the section from the last results
#
# Settings (environment): DURATION and WARMUP (whole seconds), CLIENTS (50), KEYS (100000),
# VALUE_BYTES (100), THREADS (generator worker threads, 1 like redis-benchmark),
# SINGLE_THREADS (the single node's --threads, 1 like redis-server).
# CARGO_TARGET_DIR is honoured (default target/).
# Not a test: these machines are noisy, so only ratios within one run mean anything.
set -euo pipefail
cd "$(dirname "$0")/.."

# How the script was called, for the report: the settings given, then the script.
invocation=""
for setting in DURATION WARMUP CLIENTS KEYS VALUE_BYTES THREADS SINGLE_THREADS; do
  [[ -z ${!setting:-} ]] || invocation+="$setting=${!setting} "
done
invocation+="bench/compare.sh"

readonly DURATION=${DURATION:-10}
readonly WARMUP=${WARMUP:-2}
readonly CLIENTS=${CLIENTS:-50}
readonly KEYS=${KEYS:-100000}
readonly VALUE_BYTES=${VALUE_BYTES:-100}
readonly THREADS=${THREADS:-1}
readonly REPORT_ONLY=${REPORT_ONLY:-0}
for setting in DURATION WARMUP CLIENTS KEYS VALUE_BYTES THREADS; do
  [[ ${!setting} =~ ^[0-9]+$ ]] || { echo "$setting must be a whole number" >&2; exit 2; }
done
((DURATION >= 1 && CLIENTS >= 3 && KEYS >= 1 && VALUE_BYTES >= 1 && THREADS >= 1)) || {
  echo "DURATION, KEYS, VALUE_BYTES and THREADS must be at least 1, CLIENTS at least 3" >&2
  exit 2
}

readonly NODES=3                 # cluster nodes
# Worker threads of each cluster node: the three share this machine's cores, as
# scripts/cluster.sh gives them (more runnable threads than cores cost a context switch per
# request).
NODE_THREADS=$(($(nproc) / NODES))
((NODE_THREADS >= 1)) || NODE_THREADS=1
readonly NODE_THREADS
# Worker threads of the single node: one, as redis-server executes commands on one thread,
# so that each server leaves the other cores to the load generator (docs/benchmarks.md,
# "Worker threads", has the single node with one thread per core as well).
readonly SINGLE_THREADS=${SINGLE_THREADS:-1}
readonly LEVELS="ONE QUORUM ALL"
readonly PIPELINES="1 16"
readonly READY_TIMEOUT_S=30      # for a server to answer PING, and for members_up:3
readonly CLI_TIMEOUT_S=5
readonly PRELOAD_TIMEOUT_S=180   # one preload of KEYS keys
readonly RUN_SLACK_S=60          # beyond warmup + duration: connecting, a stuck batch's timeout
readonly RUN_OVERHEAD_S=1        # expected per run beyond warmup + duration (start, connect)
readonly STOP_GRACE_S=5          # between SIGTERM and SIGKILL for a run that overstays
readonly BUILD_TIMEOUT_S=1800
readonly LOG_LINES_SHOWN=3       # WARN/ERROR lines quoted per server
readonly LOG_LINE_CHARS_MAX=200
# redis-benchmark's -n when the generator's rate for the same workload is unknown.
readonly RB_FALLBACK_RPS_P1=80000
readonly RB_FALLBACK_RPS_P16=400000

target=${CARGO_TARGET_DIR:-target}
out=bench/results/compare
doc=docs/benchmarks.md
plots=docs/benchmarks

report() {
  "$target/release/bench-report" --results "$out" --doc "$doc" --plots "$plots"
}

echo "building (release) ..." >&2
# --foreground: cargo stays in this process group, so a Ctrl-C reaches it too.
timeout --foreground "$BUILD_TIMEOUT_S" cargo build --release -q -p ringcache --bin ringcache
timeout --foreground "$BUILD_TIMEOUT_S" cargo build --release -q -p ringcache-bench --bins
if [[ $REPORT_ONLY == 1 ]]; then
  report
  exit 0
fi
ring=$target/release/ringcache
gen=$target/release/ringcache-bench

# --- the plan: every run, before any starts ---------------------------------------------------
# table system op pipeline level (level "-": no CONSISTENCY sent)
plan=()
for p in $PIPELINES; do
  for ratio in 1:1 1:10; do
    for system in redis-server single; do plan+=("goals $system $ratio $p -"); done
  done
done
for p in $PIPELINES; do
  for op in SET GET; do
    for system in ringcache-bench redis-benchmark; do plan+=("tool $system $op $p -"); done
  done
done
for op in SET GET; do
  for level in $LEVELS; do
    for system in single cluster; do plan+=("cluster $system $op 1 $level"); done
  done
done
file_of() { # table system op pipeline level
  local f="$1-$2-${3/:/_}-p$4"
  [[ $5 == - ]] || f+="-$5"
  echo "$f"
}

run_s=$((WARMUP + DURATION + RUN_OVERHEAD_S))
expected_s=$((${#plan[@]} * run_s + 3 * 10 + 20)) # runs, three preloads, starting up
budget_s=$((expected_s * 3 / 2 + 60))
echo "${#plan[@]} runs of ${WARMUP}s warmup + ${DURATION}s measured: expect about" \
  "$(((expected_s + 59) / 60)) min after the build (no run starts after $((budget_s / 60)) min)" >&2

rm -rf "$out"
mkdir -p "$out"
for spec in "${plan[@]}"; do
  read -r table system op p level <<<"$spec"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$table" "$system" "$op" "$p" "$level" \
    "$(file_of "$table" "$system" "$op" "$p" "$level")" >>"$out/plan.tsv"
done
: >"$out/runs.tsv"
: >"$out/servers.txt"

# --- processes: every one started here is stopped here -----------------------------------------
tmp=$(mktemp -d)
pids=()    # servers
current="" # the run in progress (a timeout process), so that Ctrl-C stops it at once
cleanup() {
  [[ -z $current ]] || { kill "$current" 2>/dev/null; wait "$current" 2>/dev/null; } || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
exec 3>&2 # the script's own stderr: a trap may run while a run's stderr goes to a file
trap 'echo "interrupted: stopping every process started here" >&3; exit 130' INT TERM

# bounded SECONDS COMMAND...: runs COMMAND under timeout in the background and waits for it, so
# that a signal to this script is handled at once; returns its exit status (124: timed out).
bounded() {
  local seconds=$1 status=0
  shift
  timeout -k "$STOP_GRACE_S" "$seconds" "$@" &
  current=$!
  wait "$current" || status=$?
  current=""
  return "$status"
}

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
TICKS_PER_S=$(getconf CLK_TCK)
readonly TICKS_PER_S
# The CPU seconds (user + system) of this shell's waited-for children (and theirs), from the
# `times` builtin; it must run in this shell, not in a subshell, hence the file.
children_cpu_s() {
  awk 'NR == 2 {
    n = split($0, t, " ")
    for (i = 1; i <= n; i++) { split(t[i], ms, "m"); s += ms[1] * 60 + ms[2] }
    printf "%.3f\n", s
  }' "$1"
}
json_number() { # file key: a top-level number of a JSON file, empty if absent
  python3 -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print("" if v is None else v)' "$1" "$2" 2>/dev/null || true
}

# --- the machine ---------------------------------------------------------------------------
git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || git_rev+=" with uncommitted changes"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cores: $(nproc)"
  echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "kernel: $(uname -r)"
  echo "redis: $(redis-server --version | sed -E 's/.* v=([^ ]+).* malloc=([^ ]+).*/redis-server \1 (\2)/')"
  echo "rustc: $(rustc --version)"
  echo "git: $git_rev"
  echo "invocation: $invocation"
  echo "duration_s: $DURATION"
  echo "warmup_s: $WARMUP"
  echo "clients: $CLIENTS"
  echo "threads: $THREADS"
  echo "node_threads: $NODE_THREADS"
  echo "single_threads: $SINGLE_THREADS"
  echo "keys: $KEYS"
  echo "value_bytes: $VALUE_BYTES"
} >"$out/machine.txt"

# --- start the servers -----------------------------------------------------------------------
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
  --daemonize no >"$tmp/redis.log" 2>&1 &
pids+=($!)
redis_pid=$!

single_port=$(free_port)
"$ring" --bind 127.0.0.1 --port "$single_port" --metrics-port 0 --storage memory \
  --threads "$SINGLE_THREADS" --data-dir "$tmp/single" >"$tmp/single.log" 2>&1 &
pids+=($!)
single_pid=$!

secret="compare-$$-$RANDOM$RANDOM"
cluster_pids=()
cluster_ports "$NODES"
for ((k = 0; k < NODES; k++)); do
  "$ring" --bind 127.0.0.1 --port "${node_ports[k]}" --peer-port "${peer_ports[k]}" \
    --seeds "$seeds" --cluster-secret "$secret" --data-dir "$tmp/node$((k + 1))" \
    --metrics-port 0 --storage memory --threads "$NODE_THREADS" \
    >"$tmp/node$((k + 1)).log" 2>&1 &
  pids+=($!)
  cluster_pids+=($!)
done

for port in "$redis_port" "$single_port" "${node_ports[@]}"; do wait_ready "$port"; done
for port in "${node_ports[@]}"; do wait_members_up "$port" "$NODES"; done

redis_addr=127.0.0.1:$redis_port
single_addr=127.0.0.1:$single_port
cluster_addrs=$(printf '127.0.0.1:%s,' "${node_ports[@]}")
cluster_addrs=${cluster_addrs%,}
cluster_pid_list=$(
  IFS=,
  echo "${cluster_pids[*]}"
)

# --- preload every key of the key space, so that every GET hits -------------------------------
# The generator's keys (key:N) on every system, through the generator itself; redis-benchmark's
# keys (key:%012d) on redis-server only.
preload_generator() { # name servers [generator options...]
  local name=$1 servers=$2 status=0
  shift 2
  bounded "$PRELOAD_TIMEOUT_S" "$gen" --servers "$servers" --clients "$CLIENTS" \
    --threads "$THREADS" --pipeline 16 --key-space "$KEYS" --data-size "$VALUE_BYTES" \
    --ratio 0:1 --requests 1 --preload --quiet --json "$out/preload-$name.json" "$@" \
    2>"$out/preload-$name.err" || status=$?
  ((status == 0)) || {
    echo "preload of $name failed (exit status $status):" >&2
    tail -n 5 "$out/preload-$name.err" >&2
    exit 1
  }
}
preload_redis_benchmark_keys() {
  local value
  value=$(head -c "$VALUE_BYTES" /dev/zero | tr '\0' x)
  awk -v v="$value" -v n="$KEYS" 'BEGIN {
    for (i = 0; i < n; i++) {
      k = sprintf("key:%012d", i)
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
    }
  }' | timeout "$PRELOAD_TIMEOUT_S" redis-cli -h 127.0.0.1 -p "$redis_port" --pipe \
    >"$tmp/preload.out" 2>&1
  grep -q "errors: 0, replies: $KEYS" "$tmp/preload.out" || {
    echo "preload of redis-benchmark's keys failed:" >&2
    cat "$tmp/preload.out" >&2
    exit 1
  }
}
echo "preloading $KEYS keys of $VALUE_BYTES bytes into every server ..." >&2
preload_generator redis-server "$redis_addr"
preload_redis_benchmark_keys
preload_generator single "$single_addr"
preload_generator cluster "$cluster_addrs" --write-level ALL
check_dbsize() { # name port expected
  local n
  n=$(cli -p "$2" DBSIZE 2>/dev/null || echo "no answer")
  [[ $n == "$3" ]] ||
    echo "$1: DBSIZE $n after preloading, expected $3" | tee -a "$out/servers.txt" >&2
}
check_dbsize redis-server "$redis_port" $((2 * KEYS))
check_dbsize "single node" "$single_port" "$KEYS"
for ((k = 0; k < NODES; k++)); do
  check_dbsize "cluster node $((k + 1))" "${node_ports[k]}" "$KEYS"
done

# --- the runs --------------------------------------------------------------------------------
# Each appends `file exit-status seconds command` to runs.tsv; the command as shown in the
# report names the programs without their build directory.
record() { # file status seconds command...
  local file=$1 status=$2 seconds=$3
  shift 3
  local shown="" arg
  for arg in "$@"; do
    arg=${arg#"$target/release/"}
    if [[ -z $arg || $arg == *[!A-Za-z0-9_,:./=@%+-]* ]]; then
      shown+="$(printf '%q' "$arg") "
    else
      shown+="$arg "
    fi
  done
  printf '%s\t%s\t%s\t%s\n' "$file" "$status" "$seconds" "${shown% }" >>"$out/runs.tsv"
}

run_generator() { # file servers pids [options...]
  local file=$1 servers=$2 measure=$3 status=0 t0=$SECONDS
  shift 3
  local cmd=("$gen" --servers "$servers" --clients "$CLIENTS" --threads "$THREADS"
    --data-size "$VALUE_BYTES" --key-space "$KEYS" --key-pattern uniform
    --warmup "${WARMUP}s" --duration "${DURATION}s" "$@"
    --measure-pids "$measure" --label "$file" --quiet --json "$out/$file.json")
  rm -f "$out/$file.json"
  bounded $((WARMUP + DURATION + RUN_SLACK_S)) "${cmd[@]}" >"$out/$file.out" \
    2>"$out/$file.err" || status=$?
  record "$file" "$status" $((SECONDS - t0)) "${cmd[@]}"
  if ((status == 0)); then
    printf '  %.0f req/s\n' "$(json_number "$out/$file.json" throughput)" >&2
  else
    echo "  failed (exit status $status): $(tail -n 1 "$out/$file.err")" >&2
  fi
}

run_redis_benchmark() { # file op pipeline
  local file=$1 op=$2 p=$3 status=0 t0=$SECONDS rate n
  # As many requests as the generator made in DURATION on the same workload just before.
  rate=$(json_number "$out/$(file_of tool ringcache-bench "$op" "$p" -).json" throughput)
  rate=${rate%.*}
  [[ -n $rate && $rate -gt 0 ]] || {
    rate=$RB_FALLBACK_RPS_P1
    ((p == 1)) || rate=$RB_FALLBACK_RPS_P16
  }
  n=$((rate * DURATION))
  local cmd=(redis-benchmark -h 127.0.0.1 -p "$redis_port" -c "$CLIENTS" -n "$n" -r "$KEYS"
    -d "$VALUE_BYTES" -P "$p" -t "${op,,}" --csv)
  local cpu0 cpu1 server0 server1
  times >"$tmp/times0"
  server0=$(cpu_ticks "$redis_pid")
  bounded $((3 * DURATION + RUN_SLACK_S)) "${cmd[@]}" >"$out/$file.csv" 2>"$out/$file.err" ||
    status=$?
  server1=$(cpu_ticks "$redis_pid")
  times >"$tmp/times1"
  cpu0=$(children_cpu_s "$tmp/times0")
  cpu1=$(children_cpu_s "$tmp/times1")
  {
    echo "requests $n"
    awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "client_cpu_s %.3f\n", b - a }'
    awk -v t=$((server1 - server0)) -v hz="$TICKS_PER_S" \
      'BEGIN { printf "server_cpu_s %.3f\n", t / hz }'
  } >"$out/$file.cpu"
  record "$file" "$status" $((SECONDS - t0)) "${cmd[@]}"
  if ((status == 0)); then
    printf '  %.0f req/s\n' "$(tr -d '"' <"$out/$file.csv" | awk -F, 'NR == 2 { print $2 }')" >&2
  else
    echo "  failed (exit status $status): $(tail -n 1 "$out/$file.err")" >&2
  fi
}

started=$SECONDS
i=0
for spec in "${plan[@]}"; do
  read -r table system op p level <<<"$spec"
  file=$(file_of "$table" "$system" "$op" "$p" "$level")
  i=$((i + 1))
  if ((SECONDS - started > budget_s)); then
    echo "[$i/${#plan[@]}] $file: not started, over the ${budget_s}s budget" >&2
    continue
  fi
  echo "[$i/${#plan[@]}] $file" >&2
  ratio=$op
  [[ $op == SET ]] && ratio=1:0
  [[ $op == GET ]] && ratio=0:1
  levels=()
  [[ $level == - ]] || levels=(--read-level "$level" --write-level "$level")
  case $system in
    redis-server | ringcache-bench)
      run_generator "$file" "$redis_addr" "$redis_pid" --pipeline "$p" --ratio "$ratio" ;;
    single)
      run_generator "$file" "$single_addr" "$single_pid" --pipeline "$p" --ratio "$ratio" \
        "${levels[@]}" ;;
    cluster)
      run_generator "$file" "$cluster_addrs" "$cluster_pid_list" --pipeline "$p" \
        --ratio "$ratio" "${levels[@]}" ;;
    redis-benchmark) run_redis_benchmark "$file" "$op" "$p" ;;
  esac
done
echo "runs took $((SECONDS - started))s" >&2

# --- what the servers saw: failed requests, warnings -----------------------------------------
for ((k = 0; k < NODES; k++)); do
  counters=$(cli -p "${node_ports[k]}" INFO cluster 2>/dev/null | tr -d '\r' |
    grep -E '^(members_up|requests_[a-z_]+|hints_stored|read_repairs):' | tr '\n' ' ' || true)
  echo "cluster node $((k + 1)), INFO cluster: \`${counters% }\`" >>"$out/servers.txt"
done
# ringcache's WARN and ERROR lines; redis-server's warnings but its start-up advice about
# memory overcommit, which concerns background saves (off here).
warnings() { grep -E ' (WARN|ERROR) |# WARNING' "$1" | grep -v 'overcommit' || true; }
for log in "$tmp"/*.log; do
  name=$(basename "$log" .log)
  n=$(warnings "$log" | wc -l)
  ((n == 0)) && continue
  lines=$(warnings "$log" | sed 's/\x1b\[[0-9;]*m//g' | head -n "$LOG_LINES_SHOWN" |
    cut -c "1-$LOG_LINE_CHARS_MAX" | tr '\n' ' ' | tr -d '`')
  echo "$name log: $n WARN or ERROR lines, first: \`${lines% }\`" >>"$out/servers.txt"
done

report
