#!/usr/bin/env bash
# Fuzzes the JSON API with schemathesis (pinned) against a fresh `tix serve` node, all phases and
# all checks, and exits non-zero on any failure.
#
# The node runs from the debug build on free loopback ports with a temporary data directory and
# a known admin password. The script logs the admin in twice, before fuzzing: one session for
# every operation but logout, one for a second, logout-only run (a fuzzed logout would end the
# first session). Logging in again mid-run would not do: the fuzzer's failed logins for `admin`
# may have locked the account out for a while by then.
#
# Knobs (environment): SCHEMATHESIS_MAX_EXAMPLES (cases per operation and phase, default 40),
# SCHEMATHESIS_SEED (default 1: reproducible), SCHEMATHESIS_TIMEOUT_S (default 900 per run: a
# run is stopped, and fails, past it), SCHEMATHESIS_VENV (default target/schemathesis-venv,
# reused when it already has the pinned version).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly version=4.32.5
venv="${SCHEMATHESIS_VENV:-target/schemathesis-venv}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-40}"
seed="${SCHEMATHESIS_SEED:-1}"

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
  echo "== installing schemathesis $version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

echo "== building tix (debug)"
cargo build --quiet -p tix --bin tix

# Two free loopback ports, chosen by the kernel.
read -r http_port raft_port < <(python3 - <<'EOF'
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
for s in sockets:
    s.close()
EOF
)
data_dir="$(mktemp -d -t tix-schemathesis.XXXXXX)"
export TIX_ADMIN_PASSWORD="schemathesis-admin-$RANDOM-$RANDOM"
log="$data_dir/tix.log"

target/debug/tix serve --http-addr "127.0.0.1:$http_port" --raft-addr "127.0.0.1:$raft_port" \
  --data-dir "$data_dir/node" >"$log" 2>&1 &
tix_pid=$!
cleanup() {
  kill "$tix_pid" 2>/dev/null || true
  wait "$tix_pid" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

base="http://127.0.0.1:$http_port"
deadline=$((SECONDS + 60))
until curl -fsS "$base/healthz" >/dev/null 2>&1; do
  if ! kill -0 "$tix_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "tix did not come up on $base; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.2
done
# Two sessions of the admin (see the top of this file).
login() {
  curl -fsS -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$TIX_ADMIN_PASSWORD\"}" \
    "$base/api/v1/auth/login" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
token_main="$(login)"
token_logout="$(login)"

# Run from a directory under target/, where schemathesis and hypothesis keep their caches; each
# run is bounded by `timeout` as well as by the example count.
work_dir="$PWD/target/schemathesis-work"
mkdir -p "$work_dir"
config="$PWD/scripts/schemathesis.toml"
schemathesis="$venv/bin/schemathesis"
fuzz() {
  local token="$1"
  shift
  (cd "$work_dir" && timeout --foreground "${SCHEMATHESIS_TIMEOUT_S:-900}" \
    "$schemathesis" --config-file "$config" run "$base/api/v1/openapi.json" \
    --checks all \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --generation-database none \
    --request-timeout 15 \
    --max-failures 100 \
    --workers 2 \
    --no-color \
    -H "Authorization: Bearer $token" \
    "$@")
}

echo "== schemathesis $version against $base (max examples $max_examples, seed $seed)"
started=$SECONDS
status=0
fuzz "$token_main" --phases examples,coverage,fuzzing,stateful \
  --exclude-operation-id logout || status=$?
# Logout alone links to nothing: no stateful phase.
echo "== schemathesis: logout, with a session of its own"
fuzz "$token_logout" --phases examples,coverage,fuzzing \
  --include-operation-id logout || status=$?
echo "== schemathesis finished in $((SECONDS - started)) s with status $status"
if [ "$status" -ne 0 ] || ! kill -0 "$tix_pid" 2>/dev/null; then
  echo "== the last lines of the node's log:"
  tail -n 40 "$log"
fi
exit "$status"
