#!/usr/bin/env bash
# Measures a wiped follower rejoining a 3-node cluster with a large history: sells N tickets
# through the leader, measures a reference load, then kills node 3, removes it, and adds an
# empty node 4 (never reuse a wiped node's id) while a second load runs; `add-node` returns when
# node 4 has caught up (by snapshot: the log was compacted long before). Prints the catch-up
# time and both loads' latency. Loopback only; ports 1850x/1860x.
#
#   scripts/catchup-bench.sh [tix binary] [history purchases] [load purchases]
set -euo pipefail
bin=${1:-target/release/tix}
history=${2:-1000000}
load=${3:-100000}
dir=$(mktemp -d /tmp/tix-catchup.XXXXXX)
export TIX_ADMIN_PASSWORD=catchup-bench-password
# One cluster secret for the nodes and this script's `tix cluster` calls.
"$bin" cluster secret --out "$dir/cluster.secret"
export TIX_CLUSTER_SECRET_FILE="$dir/cluster.secret"
pids=()
start() { # id
  "$bin" serve --node-id "$1" --data-dir "$dir/n$1" --http-addr "127.0.0.1:1850$1" \
    --raft-addr "127.0.0.1:1860$1" --no-bootstrap --no-demo >>"$dir/n$1.log" 2>&1 &
  pids[$1]=$!
}
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for i in 1 2 3; do start $i; done
for i in 1 2 3; do until curl -sf "http://127.0.0.1:1850$i/healthz" >/dev/null; do sleep 0.05; done; done
"$bin" cluster init --member 1=127.0.0.1:18501,127.0.0.1:18601 \
  --member 2=127.0.0.1:18502,127.0.0.1:18602 --member 3=127.0.0.1:18503,127.0.0.1:18603 >/dev/null
sleep 2
leader=$("$bin" cluster status --via 127.0.0.1:18601 | sed -n 's/^leader: Some(\([0-9]*\)).*/\1/p')
leader=${leader:-1}
echo "== history: $history purchases through node $leader"
"$bin" bench-http --url "http://127.0.0.1:1850$leader" --purchases "$history" | grep -E "per_s|latency"
echo "== reference load: $load purchases, nothing else happening"
"$bin" bench-http --url "http://127.0.0.1:1850$leader" --purchases "$load" | grep -E "per_s|latency"
victim=3; [ "$leader" = 3 ] && victim=2
echo "== wipe node $victim, add node 4 while a load of $load purchases runs"
"$bin" bench-http --url "http://127.0.0.1:1850$leader" --purchases "$load" >"$dir/load.txt" &
load_pid=$!
sleep 2
kill -9 "${pids[$victim]}"
"$bin" cluster remove-node --via "127.0.0.1:1860$leader" --node-id "$victim" >/dev/null
rm -rf "$dir/n$victim"
start 4
until curl -sf http://127.0.0.1:18504/healthz >/dev/null; do sleep 0.05; done
t0=$(date +%s%3N)
"$bin" cluster add-node --via "127.0.0.1:1860$leader" --node-id 4 \
  --api-addr 127.0.0.1:18504 --raft-addr 127.0.0.1:18604 >/dev/null
t1=$(date +%s%3N)
echo "node 4 caught up (by snapshot) and became a voter in $((t1 - t0)) ms"
wait "$load_pid"
grep -E "per_s|latency" "$dir/load.txt"
token=$(curl -s http://127.0.0.1:18504/api/v1/auth/login -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$TIX_ADMIN_PASSWORD\"}" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:18504/metrics" | grep -E "^tix_snapshot_install_seconds_(sum|count)" || true
du -sh "$dir/n4" | sed 's/^/node 4 data: /'
