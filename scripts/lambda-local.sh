#!/usr/bin/env bash
# Runs the `bridge-lambda` binary under `cargo lambda watch` on loopback and performs one Alexa-style
# code exchange through the emulated Function URL: POST /lambda-url/<function>/token.
#
#   scripts/lambda-local.sh            # needs cargo-lambda: pip install cargo-lambda
#
# What it starts, all on 127.0.0.1, all stopped when it exits (success, failure or Ctrl-C):
#   1. the `bridge` binary with no upstream: its embedded Salesforce-like demo upstream is the
#      function's upstream (the bridge's own port is unused);
#   2. `cargo lambda watch --only-lambda-apis`: the Lambda runtime API and the Function URL
#      emulator, on port $LAMBDA_LOCAL_PORT (default 9123);
#   3. the `bridge-lambda` binary, with the variables `cargo lambda watch` prints plus BRIDGE_*.
# Every wait is bounded; the whole run is capped by $LAMBDA_LOCAL_TIMEOUT seconds (default 900,
# most of it the first build). Not part of `cargo test`.
set -euo pipefail

crate=$(cd "$(dirname "$0")/.." && pwd)
port=${LAMBDA_LOCAL_PORT:-9123}
deadline=$((SECONDS + ${LAMBDA_LOCAL_TIMEOUT:-900}))
work=$(mktemp -d)
pids=()

cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "lambda-local: $*" >&2
    for log in "$work"/*.log; do
        [ -f "$log" ] && { echo "--- $(basename "$log")" >&2; tail -n 20 "$log" >&2; }
    done
    exit 1
}

left() { echo $((deadline - SECONDS)); }

# Waits (at most $2 seconds) until file $1 matches the extended regex $3.
wait_for() {
    local until=$((SECONDS + $2))
    while ! grep -Eq "$3" "$1" 2>/dev/null; do
        [ "$SECONDS" -lt "$until" ] || fail "timed out waiting for /$3/ in $(basename "$1")"
        sleep 0.2
    done
}

command -v cargo-lambda >/dev/null || fail "cargo-lambda not found: pip install cargo-lambda"

cd "$crate"
echo "lambda-local: building bridge and bridge-lambda"
timeout "$(left)" cargo build --quiet -p account-link-bridge-server --features lambda \
    --bin bridge --bin bridge-lambda \
    || fail "the binaries do not build"
bin="${CARGO_TARGET_DIR:-$crate/target}/debug"

# 1. The demo upstream, inside the bridge binary.
BRIDGE_LISTEN=127.0.0.1:0 "$bin/bridge" >"$work/demo.log" 2>&1 &
pids+=($!)
wait_for "$work/demo.log" 30 'demo upstream at http://127\.0\.0\.1:[0-9]+'
token_url=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+/services/oauth2/token' "$work/demo.log" | head -n 1)
echo "lambda-local: demo upstream at $token_url"

# 2. The Lambda APIs. `cargo lambda watch` insists on a package with a binary target of its own
# to watch: a one-line host package gives it one; with --only-lambda-apis it never builds nor
# runs it (the function is the bridge-lambda built above).
mkdir -p "$work/host/src"
printf '[package]\nname = "lambda-local-host"\nversion = "0.0.0"\nedition = "2021"\n\n[workspace]\n' \
    >"$work/host/Cargo.toml"
echo 'fn main() {}' >"$work/host/src/main.rs"
(cd "$work/host" && exec cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port") \
    >"$work/watch.log" 2>&1 &
pids+=($!)
wait_for "$work/watch.log" 60 'AWS_LAMBDA_FUNCTION_NAME='
wait_for "$work/watch.log" 30 'starting Runtime server'
mapfile -t lambda_env < <(grep -Eo 'AWS_LAMBDA_[A-Z_]+=[^[:space:]]+' "$work/watch.log" | sort -u)
function_name=$(printf '%s\n' "${lambda_env[@]}" | sed -n 's/^AWS_LAMBDA_FUNCTION_NAME=//p')
echo "lambda-local: cargo lambda watch says: ${lambda_env[*]}"

# 3. The function, configured like on AWS: environment only.
env "${lambda_env[@]}" \
    BRIDGE_UPSTREAM_TOKEN_URL="$token_url" \
    BRIDGE_UPSTREAM_TIMEOUT=4 \
    RUST_LOG=info \
    "$bin/bridge-lambda" >"$work/function.log" 2>&1 &
pids+=($!)
sleep 1
kill -0 "${pids[-1]}" 2>/dev/null || fail "the function stopped at start"

# 4. One exchange as Alexa sends it: JSON without Content-Type, credentials in the body.
url="http://127.0.0.1:$port/lambda-url/$function_name/token"
echo "lambda-local: POST $url"
answer=$(curl -sS --max-time 15 -X POST "$url" -H 'Content-Type:' \
    -d '{"grant_type":"authorization_code","code":"demo-code","client_id":"alexa","client_secret":"demo-secret"}' \
    -w '\n%{http_code}') || fail "curl failed"
status=${answer##*$'\n'}
body=${answer%$'\n'*}
echo "lambda-local: $status $body"
[ "$status" = 200 ] || fail "expected 200, got $status"
echo "$body" | grep -q '"expires_in":5400' || fail "no expires_in in the answer"
echo "$body" | grep -q '"access_token":"' || fail "no access_token in the answer"
echo "$body" | grep -q '"refresh_token":"' || fail "no refresh_token in the answer"
grep -q 'token exchange' "$work/function.log" || fail "the function logged no exchange"
echo "lambda-local: ok: the function answered Alexa's exchange through cargo lambda watch"
