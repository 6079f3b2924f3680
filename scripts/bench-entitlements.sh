#!/usr/bin/env bash
# bench-entitlements.sh: GET …/billing/entitlements against GET …/billing, per
# database backend (part of `just bench`).
#
# Why: a host app calls entitlements on every one of its own requests, so it
# must cost what GET …/billing costs (SPEC §7): the target is at least 90% of
# its throughput. Both answer from the per-instance state cache; entitlements
# also applies the plan rule to the cached state on every call.
#
# The tenant measured pays for `team` (a Checkout completed at the in-process
# simulator), so the rule takes its longest path. The two endpoints run in
# alternating rounds against one server, and the medians are compared, so a
# neighbour's load on the shared machine hits both alike. Besides requests/s
# it reports the server's CPU time per request (from /proc; what throughput
# is made of on a saturated machine, and far less sensitive to other load).
# The verdict is on the throughput ratio; a report (exit 0 whatever the
# ratio), exit 1 only when requests fail or the service cannot start.
#
# Usage: scripts/bench-entitlements.sh
#   BENCH_SECONDS=4 BENCH_ROUNDS=5 BENCH_CONNECTIONS=64 BENCH_THREADS=2
#   BENCH_BACKENDS="sqlite postgres"
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

BENCH_SECONDS="${BENCH_SECONDS:-4}"
BENCH_ROUNDS="${BENCH_ROUNDS:-5}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
BENCH_BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
TARGET_RATIO="0.90"
SCRIPT_JWT_SECRET="bench-entitlements-secret-0123456789abcdef"

WORK_DIR=""
PG_STARTED=0
FAILED=0
declare -a REPORT=()

log() { echo "bench-entitlements: $*" >&2; }
die() {
    echo "bench-entitlements: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap cleanup EXIT
trap 'exit 130' INT TERM

# One wrk run of $1 seconds against URL $2 with header $3: "rps p99 failures".
measure() {
    local out
    out="$(wrk -t "$BENCH_THREADS" -c "$BENCH_CONNECTIONS" -d "${1}s" --latency --timeout 5s -H "$3" "$2")"
    awk '
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" { p99 = $2 }
        /Non-2xx or 3xx responses:/ { bad += $NF }
        /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) bad += $i + 0 }
        END { printf "%s %s %d\n", rps, p99, bad }
    ' <<<"$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# CPU time the server has used so far, in clock ticks (utime + stime).
server_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }

# The path measured as NAME (billing or entitlements).
path_of() {
    case "$1" in
        billing) echo /v1/tenants/acme/billing ;;
        entitlements) echo /v1/tenants/acme/billing/entitlements ;;
    esac
}

# Starts the release server on DATABASE_URL $1; sets SERVER_PID, BASE, SIM.
start() {
    local port log
    port="$(free_port)"
    log="$WORK_DIR/serve-$BACKEND.log"
    env DATABASE_URL="$1" JWT_SECRET="$SCRIPT_JWT_SECRET" BIND_ADDR="127.0.0.1:$port" \
        APP__TELEMETRY__FORMAT=json APP__TELEMETRY__LEVEL=info,actix_server=warn \
        "$BIN" serve >"$log" 2>&1 &
    SERVER_PID=$!
    BASE="http://127.0.0.1:$port"
    await_ready "$SERVER_PID" "$BASE" || case $? in
        1) die "[$BACKEND] serve exited early: $(tail -5 "$log")" ;;
        *) die "[$BACKEND] /readyz answered '$READY_STATUS' (log: $log)" ;;
    esac
    SIM="$(grep -o '"url":"http://127.0.0.1:[0-9]*' "$log" | head -n 1 | cut -d'"' -f4)"
    [[ -n "$SIM" ]] || die "[$BACKEND] the in-process simulator's address is not in the log"
}

# Makes tenant acme pay for team (Checkout, then paid at the simulator).
subscribe_team() {
    local admin session _
    admin="$(app "$1" "$BIN" token --tenant acme --role admin)"
    session="$(curl -sf -X POST -H "Authorization: Bearer $admin" -H 'content-type: application/json' \
        -d '{"plan":"team","quantity":5}' "$BASE/v1/tenants/acme/billing/checkout" |
        grep -o '"checkout_session_id":"[^"]*' | cut -d'"' -f4)" ||
        die "[$BACKEND] checkout failed"
    curl -sf -X POST "$SIM/_sim/checkout/$session/complete" >/dev/null ||
        die "[$BACKEND] paying the checkout failed"
    for _ in $(seq 1 100); do
        curl -s -H "Authorization: Bearer $MEMBER" "$BASE/v1/tenants/acme/billing/entitlements" |
            grep -q '"plan":"team"' && return 0
        sleep 0.1
    done
    die "[$BACKEND] the tenant never became team"
}

bench_backend() {
    local url="$1" round name rps p99 bad header ticks cpu_us
    app "$url" "$BIN" migrate >/dev/null || die "[$BACKEND] migrate failed"
    start "$url"
    MEMBER="$(app "$url" "$BIN" token --tenant acme --role member)"
    subscribe_team "$url"
    header="Authorization: Bearer $MEMBER"
    : >"$WORK_DIR/billing" && : >"$WORK_DIR/entitlements"
    : >"$WORK_DIR/billing.cpu" && : >"$WORK_DIR/entitlements.cpu"
    for name in billing entitlements; do # warm-up, unmeasured
        measure 1 "$BASE$(path_of "$name")" "$header" >/dev/null
    done
    for round in $(seq 1 "$BENCH_ROUNDS"); do
        for name in billing entitlements; do
            ticks="$(server_ticks)"
            read -r rps p99 bad < <(measure "$BENCH_SECONDS" "$BASE$(path_of "$name")" "$header")
            cpu_us="$(awk -v t="$(($(server_ticks) - ticks))" -v hz="$(getconf CLK_TCK)" -v r="$rps" -v s="$BENCH_SECONDS" \
                'BEGIN { printf "%.1f", t / hz * 1e6 / (r * s) }')"
            log "[$BACKEND] round $round $name: $rps requests/s, p99 $p99, server CPU ${cpu_us}us/request, failed $bad"
            [[ "$bad" == 0 ]] || FAILED=$((FAILED + 1))
            echo "$rps" >>"$WORK_DIR/$name"
            echo "$cpu_us" >>"$WORK_DIR/$name.cpu"
        done
    done
    stop_server
    local billing entitlements ratio verdict billing_cpu entitlements_cpu
    billing="$(median <"$WORK_DIR/billing")"
    entitlements="$(median <"$WORK_DIR/entitlements")"
    billing_cpu="$(median <"$WORK_DIR/billing.cpu")"
    entitlements_cpu="$(median <"$WORK_DIR/entitlements.cpu")"
    ratio="$(awk -v a="$entitlements" -v b="$billing" 'BEGIN { printf "%.3f", a / b }')"
    verdict="$(awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { print (r >= t) ? "PASS" : "FAIL" }')"
    REPORT+=("$(printf '%-9s %14.0f %18.0f %8s %12s %16s  %s (>= %s)' "$BACKEND" "$billing" "$entitlements" "$ratio" \
        "$billing_cpu" "$entitlements_cpu" "$verdict" "$TARGET_RATIO")")
}

main() {
    command -v curl >/dev/null 2>&1 || apt_install curl || die "curl is required"
    command -v wrk >/dev/null 2>&1 || apt_install wrk || die "wrk is required (apt-get install wrk)"
    log "building the release binary"
    BIN="$(build_binary --release)"
    local out
    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tenant-billing-bench-entitlements.XXXXXX")"
    for BACKEND in $BENCH_BACKENDS; do
        case "$BACKEND" in
            sqlite) bench_backend "sqlite://$WORK_DIR/bench.sqlite" ;;
            postgres)
                out="$(PG_STATE_FILE="$WORK_DIR/pg.state" "$REPO_ROOT/scripts/pg-throwaway.sh" start)" ||
                    die "could not start a throwaway PostgreSQL"
                PG_STARTED=1
                bench_backend "${out#DATABASE_URL=}"
                PG_STATE_FILE="$WORK_DIR/pg.state" "$REPO_ROOT/scripts/pg-throwaway.sh" stop 2>/dev/null || true
                PG_STARTED=0
                ;;
            *) die "unknown backend $BACKEND (sqlite, postgres)" ;;
        esac
    done
    echo
    echo "entitlements vs billing: median of $BENCH_ROUNDS alternating ${BENCH_SECONDS}s rounds, wrk $BENCH_THREADS threads, $BENCH_CONNECTIONS connections, $(nproc 2>/dev/null || echo '?') cores, release build"
    printf '%-9s %14s %18s %8s %12s %16s  %s\n' backend "billing req/s" "entitlements req/s" ratio \
        "billing us/req" "entitlements us/req" target
    printf '%s\n' "${REPORT[@]}"
    [[ $FAILED == 0 ]] || die "$FAILED measurement(s) had failed requests"
}

main "$@"
