#!/usr/bin/env bash
# Measures a node's restart with a large history: sells N tickets on a fresh node
# (`tix bench-http`), then kills it (`-9` or `-TERM`), starts it again on the same data
# directory and times how long until a linearizable availability read answers, with the
# restarted server's peak RSS. Loopback only; ports 18180/18190.
#
#   scripts/restart-bench.sh [tix binary] [purchases] [signal]
#   scripts/restart-bench.sh target/release/tix 1000000 KILL
set -euo pipefail
bin=${1:-target/release/tix}
purchases=${2:-1000000}
signal=${3:-KILL}
dir=$(mktemp -d /tmp/tix-restart.XXXXXX)
http=127.0.0.1:18180
export TIX_ADMIN_PASSWORD=restart-bench-password
start() {
  "$bin" serve --data-dir "$dir/data" --http-addr "$http" --raft-addr 127.0.0.1:18190 --no-demo \
    >>"$dir/server.log" 2>&1 &
  pid=$!
}
now_ms() { date +%s%3N; }
start
until curl -sf "http://$http/healthz" >/dev/null; do sleep 0.05; done
"$bin" bench-http --url "http://$http" --purchases "$purchases"
echo "history on disk: $(du -sh "$dir/data" | cut -f1) ($(ls "$dir/data" | tr "\n" " "))"
kill "-$signal" "$pid"; wait "$pid" 2>/dev/null || true
t0=$(now_ms)
start
until curl -sf "http://$http/api/v1/events/1/availability" >/dev/null 2>&1; do sleep 0.02; done
t1=$(now_ms)
echo "restart after SIG$signal: $((t1 - t0)) ms until a linearizable availability read answered"
curl -s "http://$http/api/v1/events/1/availability"; echo
echo "restarted server peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MB"}')"
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
rm -rf "$dir"
