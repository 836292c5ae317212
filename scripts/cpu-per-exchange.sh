#!/usr/bin/env bash
# CPU time one proxy process spends per exchange: utime + stime from /proc/PID/stat around a
# wrk run of Alexa's form against it. Needs wrk (apt-get install wrk).
# Usage: scripts/cpu-per-exchange.sh PID URL [connections, default 32] [seconds, default 3]
# e.g.   scripts/cpu-per-exchange.sh "$(pgrep -f 'target/release/bridge')" http://127.0.0.1:8080/token
set -euo pipefail
pid="$1"; url="$2"; connections="${3:-32}"; seconds="${4:-3}"
script="$(mktemp --suffix=.lua)"
trap 'rm -f "$script"' EXIT
cat > "$script" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=authorization_code&code=ANBzsjhYZmNlBSYVPPiC&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM2AAAAAAAAAAAA&client_id=alexa-skill&client_secret=s3cr3t-0f-the-sk1ll"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before="$(ticks)"
out="$(wrk -t1 -c"$connections" -d"${seconds}s" -s "$script" --latency "$url")"
after="$(ticks)"
requests="$(awk '/requests in/ {print $1}' <<<"$out")"
rate="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
awk -v b="$before" -v a="$after" -v n="$requests" -v hz="$(getconf CLK_TCK)" -v r="$rate" -v p="$p99" \
    'BEGIN { printf "req/s %s, p99 %s, CPU %.1f us per exchange (%d exchanges)\n", r, p, (a - b) * 1e6 / hz / n, n }'
