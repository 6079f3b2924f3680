#!/usr/bin/env bash
# bench-middleware.sh: what metrics and per-tenant rate limiting cost on the
# hot read (issue 13: within 10%).
#
# Two release instances on one SQLite file: "off" (metrics.enabled = false,
# rate limits 0) and "on" (metrics on, the write limit at its default and a
# read limit so high it never refuses, so that every GET goes through the
# limiter). Both serve GET /v1/tenants/acme/billing for a linked tenant from
# their state cache. Rounds alternate off/on so that load from anything else
# on the machine falls on both alike; the report gives each round and the
# median requests/s and p99, and PASS when "on" keeps >= 90% of "off".
# Exit 1 only when a request failed or a server could not start.
#
# Usage: scripts/bench-middleware.sh
#   BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_THREADS=2 BENCH_CONNECTIONS=64
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

BENCH_SECONDS="${BENCH_SECONDS:-10}"
BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
SCRIPT_JWT_SECRET="bench-secret-0123456789abcdef0123456789"
WORK_DIR=""
OFF_PID=""
ON_PID=""

log() { echo "bench-middleware: $*" >&2; }
die() {
    echo "bench-middleware: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_both() {
    local pid
    for pid in "$OFF_PID" "$ON_PID"; do
        SERVER_PID="$pid"
        stop_server
    done
}
trap 'stop_both; cleanup' EXIT
trap 'exit 130' INT TERM

# start NAME VAR=VALUE...: a release instance on the shared database; prints its port.
start() {
    local name="$1" port status
    shift
    port="$(free_port)"
    env DATABASE_URL="$DB_URL" JWT_SECRET="$SCRIPT_JWT_SECRET" APP__TELEMETRY__LEVEL=warn \
        APP__JOBS__ENABLED=false BIND_ADDR="127.0.0.1:$port" "$@" \
        "$BIN" serve --no-migrate >"$WORK_DIR/$name.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || { cat "$WORK_DIR/$name.log" >&2; die "[$name] serve exited early"; }
        status="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)"
        [[ "$status" == 200 ]] && break
        sleep 0.2
    done
    [[ "$status" == 200 ]] || die "[$name] /readyz answered '${status:-nothing}'"
    echo "$port $pid"
}

# measure PORT: wrk on the hot read; prints "rps p99_ms errors".
measure() {
    local out rps p99 non2xx socket
    out="$(wrk -t "$BENCH_THREADS" -c "$BENCH_CONNECTIONS" -d "${BENCH_SECONDS}s" --latency --timeout 5s \
        -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/v1/tenants/acme/billing")"
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")"
    socket="$(awk -F'[ ,]+' '/Socket errors:/ {s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; print s}' <<<"$out")"
    [[ -n "$rps" && -n "$p99" ]] || die "could not read wrk's output: $out"
    p99="$(awk -v v="$p99" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }')"
    echo "$rps $p99 $((${non2xx:-0} + ${socket:-0}))"
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

main() {
    command -v curl >/dev/null 2>&1 || apt_install curl || die "curl is required"
    command -v wrk >/dev/null 2>&1 || apt_install wrk || die "wrk is required (apt-get install wrk)"
    log "building the release binary"
    cargo build --release --bin tenant-billing >&2 || die "cargo build --release failed"
    local target_dir
    target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    BIN="${target_dir:-$REPO_ROOT/target}/release/tenant-billing"
    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tenant-billing-bench-mw.XXXXXX")"
    DB_URL="sqlite://$WORK_DIR/bench.sqlite"
    app "$DB_URL" "$BIN" migrate >/dev/null || die "migrate failed"

    local off on
    off="$(start off APP__METRICS__ENABLED=false APP__RATE_LIMIT__TENANT_WRITES_PER_MINUTE=0 APP__RATE_LIMIT__TENANT_READS_PER_MINUTE=0)"
    OFF_PID="${off#* }"
    on="$(start on APP__METRICS__ENABLED=true APP__RATE_LIMIT__TENANT_WRITES_PER_MINUTE=60 APP__RATE_LIMIT__TENANT_READS_PER_MINUTE=1000000000)"
    ON_PID="${on#* }"
    local off_port="${off% *}" on_port="${on% *}"

    TOKEN="$(app "$DB_URL" "$BIN" token --tenant acme --role member)"
    local admin status
    admin="$(app "$DB_URL" "$BIN" token --tenant acme --role admin)"
    status="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $admin" \
        "http://127.0.0.1:$off_port/v1/tenants/acme/billing/customer")"
    [[ "$status" == 201 || "$status" == 200 ]] || die "linking the tenant answered $status"
    # Warm both (cache filled, connections and code paths hot).
    BENCH_SECONDS=2 measure "$off_port" >/dev/null
    BENCH_SECONDS=2 measure "$on_port" >/dev/null
    curl -sf "http://127.0.0.1:$on_port/metrics" | grep -q 'http_requests_total{method="GET",route="/v1/tenants/{tenant_id}/billing",status="200"}' ||
        die "the 'on' instance does not record metrics"

    local round result errors=0
    local -a off_rps=() off_p99=() on_rps=() on_p99=()
    echo
    echo "GET /v1/tenants/{t}/billing (linked tenant, cache hit): ${BENCH_SECONDS}s x $BENCH_ROUNDS rounds, wrk $BENCH_THREADS threads $BENCH_CONNECTIONS connections, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) before"
    printf '%-6s %-22s %12s %9s %7s\n' round middleware "requests/s" "p99 ms" errors
    for round in $(seq 1 "$BENCH_ROUNDS"); do
        read -r r p e <<<"$(measure "$off_port")"
        off_rps+=("$r"); off_p99+=("$p"); errors=$((errors + e))
        printf '%-6s %-22s %12.0f %9.2f %7s\n' "$round" "off" "$r" "$p" "$e"
        read -r r p e <<<"$(measure "$on_port")"
        on_rps+=("$r"); on_p99+=("$p"); errors=$((errors + e))
        printf '%-6s %-22s %12.0f %9.2f %7s\n' "$round" "metrics + rate limit" "$r" "$p" "$e"
    done
    local m_off m_on p_off p_on ratio verdict
    m_off="$(printf '%s\n' "${off_rps[@]}" | median)"
    m_on="$(printf '%s\n' "${on_rps[@]}" | median)"
    p_off="$(printf '%s\n' "${off_p99[@]}" | median)"
    p_on="$(printf '%s\n' "${on_p99[@]}" | median)"
    ratio="$(awk -v a="$m_on" -v b="$m_off" 'BEGIN { printf "%.3f", a / b }')"
    verdict="$(awk -v r="$ratio" 'BEGIN { print (r >= 0.9) ? "PASS (>= 0.90)" : "FAIL (< 0.90)" }')"
    printf '%-6s %-22s %12.0f %9.2f\n' median "off" "$m_off" "$p_off"
    printf '%-6s %-22s %12.0f %9.2f\n' median "metrics + rate limit" "$m_on" "$p_on"
    echo "on/off requests/s: $ratio  $verdict   (load after: $(cut -d' ' -f1-3 /proc/loadavg))"
    [[ "$errors" == 0 ]] || die "$errors requests failed"
}

main "$@"
