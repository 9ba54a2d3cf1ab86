#!/usr/bin/env bash
# A local ringcache cluster on loopback, to try things by hand (the tests start their own).
#
#   scripts/cluster.sh start [N]   build (release) if needed, start N nodes (default 3), wait
#                                  until node 1 sees all N up
#   scripts/cluster.sh add         start one more node that joins through node 1 and streams
#                                  its share of the data; wait until it is normal
#   scripts/cluster.sh status      each node's pid, and the ring as node 1 sees it (RING NODES)
#   scripts/cluster.sh stop        SIGTERM to every node, then wait for each to exit
#
# Node k (1..N) serves clients on RINGCACHE_BASE_PORT+k-1 (6379, 6380, ...), peers on
# RINGCACHE_BASE_PEER_PORT+k-1 (16379, 16380, ...) and metrics on
# RINGCACHE_BASE_METRICS_PORT+k-1 (9379, 9380, ...). Its data is in ./data/nodeK, its log in
# ./data/nodeK/ringcache.log, its pid in ./data/nodeK/pid (./ is the repository root). Every
# node started by `start` gets their full --seeds list (they found the cluster); a node started
# by `add` gets node 1 only (not itself), so it joins. The secret comes from
# RINGCACHE_CLUSTER_SECRET.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly NODES_MAX=64
readonly READY_TIMEOUT_S=30
# A join streams its share of the data: allow it longer.
readonly JOIN_TIMEOUT_S=300
readonly STOP_TIMEOUT_S=30
readonly POLL_S=0.25
# A node that accepts a connection and never answers (frozen, stuck) must not hang the script.
readonly CLI_TIMEOUT_S=5
readonly LOG_TAIL_LINES=20
readonly DEFAULT_SECRET="ringcache-local-cluster-secret"
readonly DATA_ROOT="data"
readonly BASE_PORT="${RINGCACHE_BASE_PORT:-6379}"
readonly BASE_PEER_PORT="${RINGCACHE_BASE_PEER_PORT:-16379}"
readonly BASE_METRICS_PORT="${RINGCACHE_BASE_METRICS_PORT:-9379}"
readonly BIN="${CARGO_TARGET_DIR:-target}/release/ringcache"

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '4,9s/^# //p' "$0" >&2
  exit 2
}

# is_port VALUE: whether VALUE is a TCP port number.
is_port() {
  [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 65535))
}

# alive PID: whether process PID exists and has not exited (a zombie has: without an init that
# reaps orphans, as in some containers, it stays a zombie).
alive() {
  [[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# running PID: whether PID, read from a pid file, is a live ringcache process: a pid reused
# since is something else.
running() {
  alive "$1" || return 1
  if [[ -r /proc/$1/comm ]]; then
    [[ $(<"/proc/$1/comm") == ringcache* ]]
  fi
}

# pid_files: the pid file of every node ever started here, one per line, in node order.
pid_files() {
  local file
  for file in "$DATA_ROOT"/node*/pid; do
    if [[ -e $file ]]; then
      echo "$file"
    fi
  done | sort -V
}

# cluster_field FIELD: FIELD of node 1's INFO cluster, empty if it does not answer.
cluster_field() {
  timeout "$CLI_TIMEOUT_S" redis-cli -h 127.0.0.1 -p "$BASE_PORT" INFO cluster 2>/dev/null |
    tr -d '\r' | sed -n "s/^$1://p" || true
}

show_log_tails() {
  local file
  for file in "$DATA_ROOT"/node*/ringcache.log; do
    [[ -e $file ]] || continue
    echo "--- $file (last $LOG_TAIL_LINES lines) ---" >&2
    tail -n "$LOG_TAIL_LINES" "$file" >&2
  done
}

cmd_start() {
  local n=${1:-3}
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > NODES_MAX)); then
    die "N must be a number from 1 to $NODES_MAX, not '$n'"
  fi
  local base
  for base in "$BASE_PORT" "$BASE_PEER_PORT" "$BASE_METRICS_PORT"; do
    if ! is_port "$base" || ! is_port $((base + n - 1)); then
      die "base port '$base' plus $n nodes is not a range of TCP ports"
    fi
  done
  command -v redis-cli >/dev/null 2>&1 ||
    die "redis-cli not found (Debian: apt-get install redis-tools)"
  local file pid
  while read -r file; do
    pid=$(<"$file")
    if running "$pid"; then
      die "node ${file%/pid} is already running (pid $pid); scripts/cluster.sh stop first"
    fi
  done < <(pid_files)

  local secret
  secret=$(cluster_secret)
  cargo build --release -q
  [[ -x $BIN ]] || die "no binary at $BIN after cargo build --release"

  local seeds="" k
  for ((k = 1; k <= n; k++)); do
    seeds+="${seeds:+,}127.0.0.1:$((BASE_PEER_PORT + k - 1))"
  done
  # The nodes share this machine's cores: each gets its share as worker threads, so there
  # are not more runnable threads than cores (docs/benchmarks.md, "Worker threads").
  local threads=$(($(nproc) / n))
  ((threads >= 1)) || threads=1
  for ((k = 1; k <= n; k++)); do
    launch "$k" "$seeds" "$secret" "$threads"
  done

  local deadline=$((SECONDS + READY_TIMEOUT_S)) up=""
  while :; do
    while read -r file; do
      pid=$(<"$file")
      # Just started: for an instant it is still this script's fork or nohup, not ringcache.
      alive "$pid" || {
        show_log_tails
        die "node ${file%/pid} (pid $pid) exited; see its log above"
      }
    done < <(pid_files)
    up=$(cluster_field members_up)
    [[ $up == "$n" ]] && break
    if ((SECONDS >= deadline)); then
      show_log_tails
      die "node 1 reports members_up:${up:-<none>} after ${READY_TIMEOUT_S}s, want $n;" \
        "the nodes are still running: scripts/cluster.sh status, scripts/cluster.sh stop"
    fi
    sleep "$POLL_S"
  done

  echo
  echo "A cluster of $n nodes is up (node 1 sees members_up:$n). Connect to any node:"
  echo "  redis-cli -p $BASE_PORT SET k v CONSISTENCY QUORUM"
  echo "  redis-cli -p $((BASE_PORT + n - 1)) GET k CONSISTENCY QUORUM"
  echo "  redis-cli -p $BASE_PORT RING REPLICAS k"
  echo "Then: scripts/cluster.sh status | scripts/cluster.sh stop"
}

# cluster_secret: the secret every node gets (a warning when the default is used).
cluster_secret() {
  local secret=${RINGCACHE_CLUSTER_SECRET:-}
  if [[ -z $secret ]]; then
    secret=$DEFAULT_SECRET
    echo "warning: RINGCACHE_CLUSTER_SECRET is not set; using the default secret" \
      "'$DEFAULT_SECRET', which anyone can read here: fine on loopback only" >&2
  fi
  echo "$secret"
}

# launch K SEEDS SECRET THREADS: starts node K in the background, its pid in its data dir.
launch() {
  local k=$1 seeds=$2 secret=$3 threads=$4
  local dir="$DATA_ROOT/node$k" port=$((BASE_PORT + k - 1))
  mkdir -p "$dir"
  nohup "$BIN" \
    --bind 127.0.0.1 \
    --port "$port" \
    --peer-port $((BASE_PEER_PORT + k - 1)) \
    --metrics-port $((BASE_METRICS_PORT + k - 1)) \
    --data-dir "$dir" \
    --seeds "$seeds" \
    --cluster-secret "$secret" \
    --threads "$threads" \
    </dev/null >>"$dir/ringcache.log" 2>&1 &
  echo "$!" >"$dir/pid"
  echo "node $k: pid $!, clients 127.0.0.1:$port, peers 127.0.0.1:$((BASE_PEER_PORT + k - 1))," \
    "log $dir/ringcache.log"
}

# node_field K FIELD: FIELD of node K's INFO cluster, empty if it does not answer.
node_field() {
  timeout "$CLI_TIMEOUT_S" redis-cli -h 127.0.0.1 -p $((BASE_PORT + $1 - 1)) INFO cluster \
    2>/dev/null | tr -d '\r' | sed -n "s/^$2://p" || true
}

cmd_add() {
  local count
  count=$(pid_files | wc -l)
  ((count >= 1)) || die "no cluster here: scripts/cluster.sh start first"
  local k=$((count + 1))
  ((k <= NODES_MAX)) || die "at most $NODES_MAX nodes"
  if ! is_port $((BASE_PORT + k - 1)) || ! is_port $((BASE_PEER_PORT + k - 1)); then
    die "node $k's ports are out of range"
  fi
  local secret
  secret=$(cluster_secret)
  [[ -x $BIN ]] || cargo build --release -q
  launch "$k" "127.0.0.1:$BASE_PEER_PORT" "$secret" 1
  local pid status="" deadline=$((SECONDS + JOIN_TIMEOUT_S))
  pid=$(<"$DATA_ROOT/node$k/pid")
  while :; do
    alive "$pid" || die "node $k (pid $pid) exited; see $DATA_ROOT/node$k/ringcache.log"
    status=$(node_field "$k" status)
    [[ $status == normal ]] && break
    ((SECONDS < deadline)) ||
      die "node $k is '${status:-<no answer>}' after ${JOIN_TIMEOUT_S}s; see its log"
    sleep "$POLL_S"
  done
  echo "node $k joined: streamed $(node_field "$k" stream_records) records" \
    "($(node_field "$k" stream_bytes) bytes); scripts/cluster.sh status shows the ring"
}

cmd_stop() {
  local file pid waiting=()
  while read -r file; do
    pid=$(<"$file")
    if running "$pid"; then
      kill -TERM "$pid"
      echo "node ${file%/pid}: SIGTERM to pid $pid"
      waiting+=("$file")
    else
      rm -f "$file"
    fi
  done < <(pid_files)
  ((${#waiting[@]})) || {
    echo "no node is running"
    return 0
  }

  local deadline=$((SECONDS + STOP_TIMEOUT_S)) left=()
  while :; do
    left=()
    for file in "${waiting[@]}"; do
      if running "$(<"$file")"; then
        left+=("$file")
      else
        rm -f "$file"
      fi
    done
    ((${#left[@]})) || break
    if ((SECONDS >= deadline)); then
      for file in "${left[@]}"; do
        echo "node ${file%/pid} (pid $(<"$file")) still runs after ${STOP_TIMEOUT_S}s;" \
          "kill -9 $(<"$file") to force it" >&2
      done
      exit 1
    fi
    waiting=("${left[@]}")
    sleep "$POLL_S"
  done
  echo "every node has exited"
}

cmd_status() {
  local file pid
  [[ -n $(pid_files) ]] || echo "no node was started here (no $DATA_ROOT/node*/pid)"
  while read -r file; do
    pid=$(<"$file")
    if running "$pid"; then
      echo "${file%/pid}: running, pid $pid"
    else
      echo "${file%/pid}: not running (stale pid file: $pid)"
    fi
  done < <(pid_files)
  command -v redis-cli >/dev/null 2>&1 ||
    die "redis-cli not found (Debian: apt-get install redis-tools)"
  echo "RING NODES from node 1 (127.0.0.1:$BASE_PORT):"
  timeout "$CLI_TIMEOUT_S" redis-cli -h 127.0.0.1 -p "$BASE_PORT" --raw RING NODES ||
    die "no RING NODES from node 1 on 127.0.0.1:$BASE_PORT" \
      "(not running, or no reply in ${CLI_TIMEOUT_S}s)"
}

case "${1:-}" in
  start)
    (($# <= 2)) || usage
    cmd_start "${2:-3}"
    ;;
  stop)
    (($# == 1)) || usage
    cmd_stop
    ;;
  status)
    (($# == 1)) || usage
    cmd_status
    ;;
  add)
    (($# == 1)) || usage
    cmd_add
    ;;
  *) usage ;;
esac
