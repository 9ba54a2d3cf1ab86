#!/usr/bin/env bash
# The anti-entropy figure of docs/benchmarks.md, in one command (the issue's case): a 3-node
# cluster on loopback with hints off (--hint-window-ms 0), KEYS keys written at ALL, node 3
# stopped, 1% of the keys overwritten and 1% deleted through node 1, node 3 restarted on its
# data, then `RING REPAIR ALL` on node 3, timed. Then nodes 1 and 2 are killed (-9) and node 3
# alone is read at ONE: every overwrite must be there, every deleted key absent, and a sample
# of the untouched keys present. Prints the repair's reply and the checks; exits non-zero if
# a check fails. Every process it starts is stopped on exit, also on failure or Ctrl-C.
#
#   bench/repair.sh                 1,000,000 keys of 100 bytes
#   KEYS=100000 bench/repair.sh     quicker
#
# Not a test (a benchmark is never a timed test); tests/repair.rs checks the same at a smaller
# size in CI. CARGO_TARGET_DIR is honoured (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly KEYS=${KEYS:-1000000}
readonly VALUE_BYTES=${VALUE_BYTES:-100}
readonly SAMPLE=${SAMPLE:-20000}       # untouched keys read back
readonly NODES=3
readonly READY_TIMEOUT_S=60            # a node to answer PING (recovery of KEYS keys included)
readonly PRELOAD_TIMEOUT_S=600
readonly REPAIR_TIMEOUT_S=600
readonly CLI_TIMEOUT_S=10
readonly BUILD_TIMEOUT_S=1800
target=${CARGO_TARGET_DIR:-target}

echo "building (release) ..." >&2
timeout --foreground "$BUILD_TIMEOUT_S" cargo build --release -q -p ringcache --bin ringcache
timeout --foreground "$BUILD_TIMEOUT_S" cargo build --release -q -p ringcache-bench --bin ringcache-bench
ring=$target/release/ringcache
gen=$target/release/ringcache-bench

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "interrupted: stopping every process started here" >&2; exit 130' INT TERM

source bench/lib.sh

secret="repair-$$-$RANDOM$RANDOM"
node_pids=()
cluster_ports "$NODES"
ports=("${node_ports[@]}")
start_node() { # index (0-based)
  local k=$1
  "$ring" --bind 127.0.0.1 --port "${ports[k]}" --peer-port "${peer_ports[k]}" \
    --seeds "$seeds" --cluster-secret "$secret" --data-dir "$tmp/node$((k + 1))" \
    --metrics-port 0 --threads 1 --hint-window-ms 0 >>"$tmp/node$((k + 1)).log" 2>&1 &
  node_pids[k]=$!
  pids+=($!)
}
for ((k = 0; k < NODES; k++)); do start_node "$k"; done
for port in "${ports[@]}"; do wait_ready "$port"; done
for port in "${ports[@]}"; do wait_members_up "$port" "$NODES"; done

servers=$(printf '127.0.0.1:%s,' "${ports[@]}")
echo "writing $KEYS keys of $VALUE_BYTES bytes at ALL ..." >&2
started=$SECONDS
timeout "$PRELOAD_TIMEOUT_S" "$gen" --servers "${servers%,}" --clients 24 --pipeline 16 \
  --key-space "$KEYS" --data-size "$VALUE_BYTES" --write-level ALL --ratio 0:1 --requests 1 \
  --preload --quiet >/dev/null
echo "written in $((SECONDS - started)) s" >&2

changed=$((KEYS / 100))
echo "stopping node 3; overwriting $changed keys and deleting $changed through node 1 ..." >&2
kill -TERM "${node_pids[2]}"
wait "${node_pids[2]}" 2>/dev/null || true
{
  for ((i = 0; i < changed; i++)); do echo "SET key:$i new-$i"; done
  for ((i = changed; i < 2 * changed; i++)); do echo "DEL key:$i"; done
} | timeout "$PRELOAD_TIMEOUT_S" redis-cli -h 127.0.0.1 -p "${ports[0]}" --pipe >"$tmp/pipe.out"
grep -q "errors: 0" "$tmp/pipe.out" || { cat "$tmp/pipe.out" >&2; exit 1; }

echo "restarting node 3 ..." >&2
started=$SECONDS
start_node 2
wait_ready "${ports[2]}"
wait_members_up "${ports[2]}" "$NODES"
wait_members_up "${ports[0]}" "$NODES"
echo "node 3 up again in $((SECONDS - started)) s (recovery of its data included)" >&2

echo "RING REPAIR ALL on node 3 ..." >&2
repair_started=$(date +%s%3N)
reply=$(timeout "$REPAIR_TIMEOUT_S" redis-cli -h 127.0.0.1 -p "${ports[2]}" RING REPAIR ALL)
repair_ended=$(date +%s%3N)
echo "reply: $reply"
echo "wall time of RING REPAIR ALL seen by the client: $((repair_ended - repair_started)) ms"
for k in 0 1 2; do
  echo "node $((k + 1)): $(cli -p "${ports[k]}" INFO cluster | tr -d '\r' |
    grep -E '^repair_(keys_pulled|keys_pushed|keys_received|bytes|rounds):' | tr '\n' ' ')"
done

echo "killing nodes 1 and 2 (-9); reading node 3 alone at ONE ..." >&2
kill -9 "${node_pids[0]}" "${node_pids[1]}"
wait "${node_pids[0]}" "${node_pids[1]}" 2>/dev/null || true
python3 - "${ports[2]}" "$KEYS" "$changed" "$SAMPLE" "$VALUE_BYTES" <<'EOF'
import random, socket, sys
port, keys, changed, sample, value_bytes = map(int, sys.argv[1:])
conn = socket.create_connection(("127.0.0.1", port))
reader = conn.makefile("rb")

def get_all(names):
    out = []
    for start in range(0, len(names), 1000):
        chunk = names[start:start + 1000]
        conn.sendall(b"".join(b"GET %s CONSISTENCY ONE\r\n" % n.encode() for n in chunk))
        for _ in chunk:
            line = reader.readline()
            if line.startswith(b"$-1") or line.startswith(b"_"):
                out.append(None)
            elif line.startswith(b"$"):
                out.append(reader.read(int(line[1:]) + 2)[:-2])
            else:
                raise SystemExit(f"unexpected reply {line!r}")
    return out

overwritten = get_all([f"key:{i}" for i in range(changed)])
bad_over = sum(v != f"new-{i}".encode() for i, v in enumerate(overwritten))
deleted = get_all([f"key:{i}" for i in range(changed, 2 * changed)])
bad_del = sum(v is not None for v in deleted)
rng = random.Random(1)
untouched_ids = [rng.randrange(2 * changed, keys) for _ in range(sample)]
untouched = get_all([f"key:{i}" for i in untouched_ids])
bad_untouched = sum(v is None or len(v) != value_bytes for v in untouched)
print(f"overwrites wrong: {bad_over} of {changed}; deleted keys present: {bad_del} of {changed}; "
      f"untouched keys missing or wrong: {bad_untouched} of {sample}")
sys.exit(1 if bad_over or bad_del or bad_untouched else 0)
EOF
