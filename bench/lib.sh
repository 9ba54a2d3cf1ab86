# shellcheck shell=bash disable=SC2154
# Shell helpers shared by the bench scripts; sourced, not run. The caller sets CLI_TIMEOUT_S,
# READY_TIMEOUT_S and tmp (the directory holding the servers' *.log files).

used_ports=" "
# A free loopback port, never one this script handed out before.
free_port() {
  local p
  while :; do
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0))
print(s.getsockname()[1])')
    [[ $used_ports == *" $p "* ]] || break
  done
  used_ports+="$p "
  echo "$p"
}

cli() { timeout "$CLI_TIMEOUT_S" redis-cli -h 127.0.0.1 "$@"; }

show_logs() {
  for f in "$tmp"/*.log; do echo "--- $f ---" >&2; tail -n "${LOG_TAIL_LINES:-20}" "$f" >&2; done
}

# Waits until the server on port $1 answers PING; exits the script after READY_TIMEOUT_S.
wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until [[ $(cli -p "$1" PING 2>/dev/null) == PONG ]]; do
    ((SECONDS < deadline)) || {
      echo "server on $1 did not answer PING in ${READY_TIMEOUT_S}s" >&2
      show_logs
      exit 1
    }
    sleep 0.1
  done
}

# The members a cluster node on port $1 sees up (INFO cluster's members_up).
members_up() { cli -p "$1" INFO cluster 2>/dev/null | tr -d '\r' | sed -n 's/^members_up://p'; }

# Waits until the cluster node on port $1 sees $2 members up; exits the script (after showing
# the logs) after READY_TIMEOUT_S.
wait_members_up() {
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until [[ $(members_up "$1") == "$2" ]]; do
    ((SECONDS < deadline)) || {
      echo "node on $1 does not see members_up:$2 after ${READY_TIMEOUT_S}s" >&2
      show_logs
      exit 1
    }
    sleep 0.25
  done
}

# Takes a client port and a peer port for each of $1 cluster nodes (into the caller's arrays
# node_ports and peer_ports) and sets seeds to every peer address, for --seeds.
cluster_ports() {
  local k
  node_ports=() peer_ports=()
  for ((k = 0; k < $1; k++)); do
    node_ports+=("$(free_port)")
    peer_ports+=("$(free_port)")
  done
  seeds=$(printf '127.0.0.1:%s,' "${peer_ports[@]}")
  seeds=${seeds%,}
}

# One server for the side-by-side scripts: `start_one redis|ringcache` starts redis-server
# without persistence or one ringcache node (`--threads 1`, `--storage $STORAGE`, ringcache
# from $RING) in a fresh directory under $tmp, sets $server and $port, and waits until it
# answers; `stop_one` stops it; `stop_one_quietly` is for the EXIT trap.
start_one() {
  local dir
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
}

stop_one() {
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
}

stop_one_quietly() {
  [[ -z ${server:-} ]] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; } || true
}
