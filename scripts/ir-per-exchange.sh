#!/usr/bin/env bash
# User-space instructions per exchange of a whole proxy process (BENCHMARKS.md's callgrind
# procedure): the e2e bench's Salesforce-like upstream, then the bridge or the bare passthrough
# under `valgrind --tool=callgrind --instr-atstart=no`; a warm-up, instrumentation on and
# counters zeroed, `wrk -t1 -c4` with Alexa's form, a dump; the dump's total over the
# exchanges wrk completed. Needs valgrind and wrk, and the binaries built:
#   cargo build --release -p account-link-bridge-server --bin bridge
#   cargo bench -p account-link-bridge-server --bench e2e --no-run
# Usage: scripts/ir-per-exchange.sh bridge|passthrough [RUST_LOG, default info] [seconds, default 4]
# BRIDGE_ARGS: options for the bridge, default --no-refresh-records (wrk repeats one code, so
# with records every exchange after the first would be a replay answered from the record);
# BRIDGE_ARGS= (empty) measures the replays.
# Leaves the callgrind output in ${OUT_DIR:-/tmp}/callgrind.<target>-<log>.out for callgrind_annotate.
set -euo pipefail
target="$1"; log="${2:-info}"; seconds="${3:-4}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bench="$(ls -t "$root"/target/release/deps/e2e-* | grep -v '\.d$' | head -1)"
bridge="$root/target/release/bridge"
out="${OUT_DIR:-/tmp}/callgrind.$target-$log.out"
up_port=18391; proxy_port=18392
script="$(mktemp --suffix=.lua)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f "$script"; }
trap cleanup EXIT
cat > "$script" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=authorization_code&code=ANBzsjhYZmNlBSYVPPiC&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM2AAAAAAAAAAAA&client_id=alexa-skill&client_secret=s3cr3t-0f-the-sk1ll"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
E2E_ROLE=upstream E2E_LISTEN="127.0.0.1:$up_port" "$bench" >/dev/null 2>&1 &
pids+=($!)
upstream="http://127.0.0.1:$up_port/services/oauth2/token"
if [ "$target" = bridge ]; then
    RUST_LOG="$log" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        "$bridge" --listen "127.0.0.1:$proxy_port" --upstream-token-url "$upstream" ${BRIDGE_ARGS---no-refresh-records} \
        >/dev/null 2>/tmp/ir-per-exchange.stderr &
else
    E2E_ROLE=passthrough E2E_LISTEN="127.0.0.1:$proxy_port" E2E_UPSTREAM="$upstream" \
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        "$bench" >/dev/null 2>/tmp/ir-per-exchange.stderr &
fi
pid=$!; pids+=($pid)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$proxy_port/" && break
    sleep 0.2
done
url="http://127.0.0.1:$proxy_port/token"
wrk -t1 -c4 -d2s -s "$script" "$url" >/dev/null
callgrind_control -i on "$pid" >/dev/null 2>&1
callgrind_control -z "$pid" >/dev/null 2>&1
result="$(wrk -t1 -c4 -d"${seconds}s" -s "$script" "$url")"
callgrind_control -d "$pid" >/dev/null 2>&1
callgrind_control -i off "$pid" >/dev/null 2>&1
requests="$(awk '/requests in/ {print $1}' <<<"$result")"
non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$result")"
dump="$(ls -t "$out"* | head -1)"
total="$(awk '/^summary:/ {print $2}' "$dump")"
awk -v t="$total" -v n="$requests" -v name="$target" -v level="$log" -v bad="${non2xx:-0}" \
    'BEGIN { printf "%s RUST_LOG=%s: %.0f Ir per exchange (%d exchanges, %s non-2xx)\n", name, level, t / n, n, bad }'
echo "dump: $dump"
