#!/usr/bin/env bash
# bench.sh: HTTP throughput and latency of the release build, per database backend
# (the script behind `just bench`).
#
# Why: the tenant-scoped read (GET /v1/tenants/{t}/billing: JWT check, the
# per-instance state cache, JSON) should reach at least half of the throughput
# of GET /healthz (no auth, no database) for a hot tenant ("billing"). A real
# fleet reads thousands of tenants, so misses are the common case: "billing-db"
# is the hot read with the cache off (one pooled connection and one primary-key
# SELECT per request), "many-20k" reads a random one of 20,000 linked tenants
# per request, each with its own token (a wrk Lua script,
# scripts/bench/many_tenants.lua), with the cache on. On PostgreSQL both are
# held to 0.30 x /healthz. Then the table grows to 1,000,000 rows (bulk SQL,
# scripts/bench/seed.py) and "many-1m" reads 20,000 tenants spread over it:
# its p99 should stay within 20% of many-20k's. Finally the peak RSS of
# `backfill-customers --dry-run` over the 980,000 unlinked rows shows that bulk
# commands stream (BENCH_MILLION=0 skips the 1M part).
# This measures them on
# SQLite (a temporary file) and PostgreSQL (a throwaway cluster from
# scripts/pg-throwaway.sh) and prints, per backend and endpoint, requests/s,
# p50, p99 and the ratio to /healthz, with PASS/FAIL for the target. It is a
# report: it exits 0 whatever the ratio, and 1 only if a request failed
# (non-2xx, socket error) or the service could not be started.
#
# It installs a load generator when none is present (idempotent): wrk from apt,
# else `cargo install oha --locked`. BENCH_TOOL=wrk|oha forces one.
#
# Usage: scripts/bench.sh
#   BENCH_SECONDS=10       measured seconds per endpoint (default 10)
#   BENCH_WARMUP_SECONDS=1 unmeasured warm-up per endpoint (default 1; 0 skips)
#   BENCH_THREADS=2 BENCH_CONNECTIONS=64
#   BENCH_BACKENDS="sqlite postgres"
#   BENCH_MILLION=0        skip the 1,000,000-row part
#   BENCH_BIN=PATH         measure this binary instead of building (e.g. an older build, to compare)
# The load generator and the server share the machine, so compare ratios
# between runs rather than absolute numbers between machines.
#
# Adding an endpoint: one more `bench_endpoint NAME METHOD PATH [HEADER]` line in
# bench_backend (NAME goes in the table; list it in TARGET_ENDPOINTS to hold it to
# the half-of-/healthz target).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

BENCH_SECONDS="${BENCH_SECONDS:-10}"
BENCH_WARMUP_SECONDS="${BENCH_WARMUP_SECONDS:-1}"
BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
BENCH_BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
BENCH_MILLION="${BENCH_MILLION:-1}"
BENCH_TENANTS=20000
BENCH_MILLION_ROWS=1000000
# "backend:endpoint:ratio": held to at least that ratio of /healthz's requests/s
# (backend * = any).
TARGETS="*:billing:0.5 postgres:billing-db:0.30 postgres:many-20k:0.30"
BASELINE_ENDPOINT="healthz"
SCRIPT_JWT_SECRET="bench-secret-0123456789abcdef0123456789"

WORK_DIR=""
PG_STARTED=0
TOOL=""
ERRORS=0
# Current backend, base URL and server log, read by bench_endpoint.
BACKEND=""
BASE_URL=""
SERVER_LOG=""
# One row per measurement: "backend|endpoint|rps|p50_ms|p99_ms|errors".
declare -a ROWS=()
# Free-form result lines printed after the table (p99 growth, peak RSS).
declare -a NOTES=()

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_curl() {
    command -v curl >/dev/null 2>&1 && return 0
    log "installing curl"
    apt_install curl || die "curl is required and could not be installed"
}

# Picks the load generator: wrk (apt) first, oha (cargo) as the fallback.
ensure_load_generator() {
    local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    case "${BENCH_TOOL:-}" in
        "" | wrk)
            if command -v wrk >/dev/null 2>&1; then
                TOOL=wrk
                return 0
            fi
            log "wrk not found; installing it with apt-get"
            if apt_install wrk && command -v wrk >/dev/null 2>&1; then
                TOOL=wrk
                return 0
            fi
            [[ -z "${BENCH_TOOL:-}" ]] || die "BENCH_TOOL=wrk but wrk could not be installed"
            log "wrk could not be installed; falling back to oha"
            ;;
        oha) ;;
        *) die "BENCH_TOOL must be wrk or oha" ;;
    esac
    if command -v oha >/dev/null 2>&1; then
        OHA="$(command -v oha)"
    elif [[ -x "$cargo_bin/oha" ]]; then
        OHA="$cargo_bin/oha"
    else
        log "installing oha (cargo install oha --locked; a few minutes)"
        cargo install oha --locked >&2 || die "could not install oha"
        OHA="$cargo_bin/oha"
    fi
    TOOL=oha
}

# wrk prints latencies as 812.00us, 1.23ms or 1.01s: normalise to milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n = n / 1000
        else if (v ~ /ms$/) n = n
        else if (v ~ /m$/) n = n * 60000
        else if (v ~ /s$/) n = n * 1000
        printf "%.3f", n
    }'
}

# Parses `wrk --latency` output on stdin; prints "rps p50_ms p99_ms errors".
parse_wrk() {
    local out rps p50 p99 non2xx socket
    out="$(cat)"
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")"
    # "Socket errors: connect 0, read 0, write 0, timeout 0"
    socket="$(awk -F'[ ,]+' '/Socket errors:/ {s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; print s}' <<<"$out")"
    [[ -n "$rps" && -n "$p50" && -n "$p99" ]] || return 1
    echo "$rps $(to_ms "$p50") $(to_ms "$p99") $((${non2xx:-0} + ${socket:-0}))"
}

# Parses oha's text summary on stdin (times in seconds, forced with -u s);
# prints "rps p50_ms p99_ms errors". Requests cut off by the deadline are not errors.
parse_oha() {
    local out rps p50 p99 non2xx errs
    out="$(cat)"
    rps="$(awk '/Requests\/sec:/ {print $2; exit}' <<<"$out")"
    p50="$(awk '$1 == "50.00%" && $2 == "in" {print $3 * 1000; exit}' <<<"$out")"
    p99="$(awk '$1 == "99.00%" && $2 == "in" {print $3 * 1000; exit}' <<<"$out")"
    non2xx="$(awk '/^Status code distribution:/ {f = 1; next} f && /^ *\[[0-9]+\]/ {c = $1; gsub(/[][]/, "", c); if (c !~ /^2/) s += $2} f && /^$/ {f = 0} END {print s + 0}' <<<"$out")"
    errs="$(awk '/^Error distribution:/ {f = 1; next} f && /^ *\[[0-9]+\]/ {if ($0 !~ /deadline/) {c = $1; gsub(/[][]/, "", c); s += c}} f && /^$/ {f = 0} END {print s + 0}' <<<"$out")"
    [[ -n "$rps" && -n "$p50" && -n "$p99" ]] || return 1
    printf '%s %.3f %.3f %d\n' "$rps" "$p50" "$p99" $((non2xx + errs))
}

# Runs the load generator for $1 seconds; prints its raw output.
drive() {
    local seconds="$1" method="$2" url="$3" header="${4:-}" script="${5:-}"
    local -a args=()
    if [[ "$TOOL" == wrk ]]; then
        args=(-t "$BENCH_THREADS" -c "$BENCH_CONNECTIONS" -d "${seconds}s" --latency --timeout 5s)
        # A script sets its own headers.
        [[ -z "$header" || -n "$script" ]] || args+=(-H "$header")
        if [[ -n "$script" ]]; then
            args+=(-s "$script")
        elif [[ "$method" != GET ]]; then
            printf 'wrk.method = "%s"\n' "$method" >"$WORK_DIR/method.lua"
            args+=(-s "$WORK_DIR/method.lua")
        fi
        wrk "${args[@]}" "$url"
    else
        args=(-z "${seconds}s" -c "$BENCH_CONNECTIONS" -m "$method" --no-tui -u s)
        [[ -z "$header" ]] || args+=(-H "$header")
        "$OHA" "${args[@]}" "$url"
    fi
}

# bench_endpoint NAME METHOD PATH [HEADER [WRK_SCRIPT]]: warms up, measures,
# records one row for the current BACKEND. With a script (wrk only), PATH and
# HEADER are only the pre-flight check; the script makes the requests.
bench_endpoint() {
    local name="$1" method="$2" path="$3" header="${4:-}" script="${5:-}" raw parsed status
    if [[ -n "$script" && "$TOOL" != wrk ]]; then
        log "[$BACKEND] $name needs wrk's Lua scripting; skipped with $TOOL"
        return 0
    fi
    local -a curl_header=()
    [[ -z "$header" ]] || curl_header=(-H "$header")
    status="$(curl -s -o /dev/null -w '%{http_code}' -X "$method" "${curl_header[@]}" "$BASE_URL$path" || true)"
    if [[ "$status" != 2* ]]; then
        log "[$BACKEND] $name: $method $path answered ${status:-nothing} before the run; skipping it"
        ROWS+=("$BACKEND|$name|0|0|0|1")
        ERRORS=$((ERRORS + 1))
        return 0
    fi
    if [[ "$BENCH_WARMUP_SECONDS" != 0 ]]; then
        drive "$BENCH_WARMUP_SECONDS" "$method" "$BASE_URL$path" "$header" "$script" >/dev/null 2>&1 || true
    fi
    log "[$BACKEND] $name: $method $path for ${BENCH_SECONDS}s ($TOOL, $BENCH_THREADS threads, $BENCH_CONNECTIONS connections)"
    raw="$WORK_DIR/$BACKEND-$name.out"
    if ! drive "$BENCH_SECONDS" "$method" "$BASE_URL$path" "$header" "$script" >"$raw" 2>&1; then
        log "[$BACKEND] $name: the load generator failed:"
        sed 's/^/    /' "$raw" >&2
        ROWS+=("$BACKEND|$name|0|0|0|1")
        ERRORS=$((ERRORS + 1))
        return 0
    fi
    if ! parsed="$("parse_$TOOL" <"$raw")"; then
        log "[$BACKEND] $name: could not parse the load generator's output:"
        sed 's/^/    /' "$raw" >&2
        ROWS+=("$BACKEND|$name|0|0|0|1")
        ERRORS=$((ERRORS + 1))
        return 0
    fi
    local rps p50 p99 errors
    read -r rps p50 p99 errors <<<"$parsed"
    if [[ "$errors" != 0 ]]; then
        log "[$BACKEND] $name: $errors requests failed (non-2xx or socket errors); raw output:"
        sed 's/^/    /' "$raw" >&2
        ERRORS=$((ERRORS + 1))
    fi
    ROWS+=("$BACKEND|$name|$rps|$p50|$p99|$errors")
}

# start_server URL NAME [VAR=VALUE...]: starts the release server on DATABASE_URL
# URL with extra environment, waits for /readyz, sets SERVER_PID and BASE_URL.
start_server() {
    local url="$1" name="$2" port
    shift 2
    port="$(free_port)"
    SERVER_LOG="$WORK_DIR/serve-$BACKEND-$name.log"
    # Not through app(): a backgrounded function is a subshell whose PID is not the
    # server's. env execs the binary, so $! is the server itself.
    env DATABASE_URL="$url" JWT_SECRET="$SCRIPT_JWT_SECRET" APP__TELEMETRY__LEVEL=warn \
        BIND_ADDR="127.0.0.1:$port" "$@" "$BIN" serve >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    BASE_URL="http://127.0.0.1:$port"
    await_ready "$SERVER_PID" "$BASE_URL" || case $? in
        1)
            sed 's/^/    /' "$SERVER_LOG" >&2
            SERVER_PID=""
            die "[$BACKEND] tenant-billing serve exited early (log above)"
            ;;
        *) die "[$BACKEND] /readyz answered '${READY_STATUS:-nothing}' after 30 s (log: $SERVER_LOG)" ;;
    esac
}

# Stops the server and reports anything it logged at ERROR.
stop_and_check_server() {
    stop_server
    if grep -qiE '\b(ERROR|panicked)\b' "$SERVER_LOG"; then
        log "[$BACKEND] the server logged errors:"
        grep -iE '\b(ERROR|panicked)\b' "$SERVER_LOG" | head -n 20 | sed 's/^/    /' >&2
    fi
}

# seed URL FIRST COUNT linked|unlinked: bulk-inserts tenants mtFIRST… (SQL, not the API).
seed() {
    local url="$1" first="$2" count="$3" kind="$4"
    if [[ "$BACKEND" == postgres ]]; then
        python3 "$REPO_ROOT/scripts/bench/seed.py" sql "$first" "$count" "$kind" |
            psql -q -v ON_ERROR_STOP=1 "$url" >&2 || die "[$BACKEND] seeding failed"
    else
        python3 "$REPO_ROOT/scripts/bench/seed.py" sqlite "${url#sqlite://}" "$first" "$count" "$kind" ||
            die "[$BACKEND] seeding failed"
    fi
}

# tokens FILE FIRST COUNT STEP: "tenant token" lines for the Lua script.
tokens() {
    python3 "$REPO_ROOT/scripts/bench/seed.py" tokens "$SCRIPT_JWT_SECRET" "$2" "$3" "$4" >"$1" ||
        die "could not mint the tokens"
}

# p99_of BACKEND NAME: the recorded p99 in ms (empty if none).
p99_of() {
    local r b n p99
    for r in "${ROWS[@]}"; do
        IFS='|' read -r b n _ _ p99 _ <<<"$r"
        if [[ "$b" == "$1" && "$n" == "$2" ]]; then
            echo "$p99"
        fi
    done
}

# peak_rss NAME URL ARGS...: runs a tenant-billing command and records its peak
# resident set size (/usr/bin/time -v), and the peak of its anonymous part
# (sampled from /proc: heap and stacks, without the pages of a memory-mapped
# SQLite file, which the kernel can drop at will).
peak_rss() {
    local name="$1" url="$2" out kb pid anon=0 now
    shift 2
    out="$WORK_DIR/rss-$BACKEND.txt"
    if [[ ! -x /usr/bin/time ]]; then
        NOTES+=("$BACKEND: $name: peak RSS not measured (no /usr/bin/time; apt-get install time)")
        return 0
    fi
    env DATABASE_URL="$url" JWT_SECRET="$SCRIPT_JWT_SECRET" APP__TELEMETRY__LEVEL=warn \
        /usr/bin/time -v "$BIN" "$@" >/dev/null 2>"$out" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        now="$(awk '/^RssAnon:/ {print $2}' "/proc/$(pgrep -P "$pid" | head -n 1)/status" 2>/dev/null || true)"
        [[ -z "$now" || "$now" -le "$anon" ]] || anon="$now"
        sleep 0.05
    done
    wait "$pid" || die "[$BACKEND] $name failed"
    kb="$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out")"
    NOTES+=("$BACKEND: $name: peak RSS $((kb / 1024)) MiB, of it anonymous (heap) $((anon / 1024)) MiB")
}

# Migrates DATABASE_URL $1 and benchmarks every endpoint on it.
bench_backend() {
    local url="$1" status token admin many="$REPO_ROOT/scripts/bench/many_tenants.lua"
    log "[$BACKEND] migrate"
    app "$url" "$BIN" migrate >&2 || die "[$BACKEND] tenant-billing migrate failed"
    log "[$BACKEND] seeding $BENCH_TENANTS linked tenants"
    seed "$url" 0 "$BENCH_TENANTS" linked
    tokens "$WORK_DIR/tokens-20k.txt" 0 "$BENCH_TENANTS" 1

    start_server "$url" default
    token="$(app "$url" "$BIN" token --tenant acme --role member)" || die "[$BACKEND] tenant-billing token failed"
    # Link the tenant to a Stripe customer first (the in-process simulator), so
    # the read measured is the one a paying tenant makes.
    admin="$(app "$url" "$BIN" token --tenant acme --role admin)" || die "[$BACKEND] tenant-billing token failed"
    status="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $admin" \
        "$BASE_URL/v1/tenants/acme/billing/customer")"
    [[ "$status" == 201 || "$status" == 200 ]] || die "[$BACKEND] linking the tenant answered $status"

    # ---- endpoints: add more here ------------------------------------------
    bench_endpoint healthz GET /healthz
    bench_endpoint billing GET /v1/tenants/acme/billing "Authorization: Bearer $token"
    BENCH_TOKENS="$WORK_DIR/tokens-20k.txt" \
        bench_endpoint many-20k GET /v1/tenants/acme/billing "Authorization: Bearer $token" "$many"
    # -------------------------------------------------------------------------
    stop_and_check_server

    # The same reads with the per-instance state cache off: every request is a
    # database round trip (what a cache miss costs).
    start_server "$url" nocache APP__BILLING__STATE_CACHE_TTL_MS=0
    bench_endpoint billing-db GET /v1/tenants/acme/billing "Authorization: Bearer $token"
    BENCH_TOKENS="$WORK_DIR/tokens-20k.txt" \
        bench_endpoint many-20k-db GET /v1/tenants/acme/billing "Authorization: Bearer $token" "$many"
    stop_and_check_server

    [[ "$BENCH_MILLION" == 1 ]] || return 0
    log "[$BACKEND] growing tenant_config to $BENCH_MILLION_ROWS rows (unlinked)"
    seed "$url" "$BENCH_TENANTS" $((BENCH_MILLION_ROWS - BENCH_TENANTS)) unlinked
    # 20,000 tenants spread over the whole table.
    tokens "$WORK_DIR/tokens-1m.txt" 0 "$BENCH_TENANTS" $((BENCH_MILLION_ROWS / BENCH_TENANTS))
    start_server "$url" million
    BENCH_TOKENS="$WORK_DIR/tokens-1m.txt" \
        bench_endpoint many-1m GET /v1/tenants/acme/billing "Authorization: Bearer $token" "$many"
    stop_and_check_server
    local small large
    small="$(p99_of "$BACKEND" many-20k)"
    large="$(p99_of "$BACKEND" many-1m)"
    if [[ -n "$small" && -n "$large" ]]; then
        NOTES+=("$BACKEND: many-1m p99 $large ms vs many-20k $small ms: $(awk -v a="$large" -v b="$small" 'BEGIN {
            r = (b > 0) ? a / b : 0; printf "%.2fx %s", r, (r <= 1.2) ? "PASS (<= 1.20x)" : "FAIL (> 1.20x)" }')")
    fi
    peak_rss "backfill-customers --dry-run over $((BENCH_MILLION_ROWS - BENCH_TENANTS)) unlinked rows" \
        "$url" backfill-customers --dry-run
}

print_report() {
    local row backend name rps p50 p99 errors base ratio verdict
    echo
    echo "tenant-billing bench: ${BENCH_SECONDS}s per endpoint, $TOOL, $BENCH_THREADS threads, $BENCH_CONNECTIONS connections, $(nproc 2>/dev/null || echo '?') cores, release build"
    printf '%-9s %-12s %12s %10s %10s %7s %9s  %s\n' backend endpoint "requests/s" "p50 ms" "p99 ms" errors "/healthz" "target"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r backend name rps p50 p99 errors <<<"$row"
        base=""
        local r
        for r in "${ROWS[@]}"; do
            IFS='|' read -r b n x _ <<<"$r"
            if [[ "$b" == "$backend" && "$n" == "$BASELINE_ENDPOINT" ]]; then
                base="$x"
            fi
        done
        ratio="$(awk -v a="$rps" -v b="${base:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
        verdict=""
        local target="" t tb tn tr
        for t in $TARGETS; do
            IFS=':' read -r tb tn tr <<<"$t"
            if [[ "$tn" == "$name" && ("$tb" == "*" || "$tb" == "$backend") ]]; then
                target="$tr"
            fi
        done
        if [[ -n "$target" ]]; then
            if [[ "$errors" != 0 ]]; then
                verdict="FAIL (errors)"
            elif awk -v r="$ratio" -v t="$target" 'BEGIN { exit !(r != "-" && r + 0 >= t + 0) }'; then
                verdict="PASS (>= $target)"
            else
                verdict="FAIL (< $target)"
            fi
        fi
        printf '%-9s %-12s %12.0f %10.2f %10.2f %7s %9s  %s\n' "$backend" "$name" "$rps" "$p50" "$p99" "$errors" "$ratio" "$verdict"
    done
    local note
    for note in "${NOTES[@]}"; do
        echo "$note"
    done
    echo "load average when done: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
}

main() {
    command -v cargo >/dev/null 2>&1 || die "cargo is not installed (https://rustup.rs)"
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to seed tenants and mint tokens"
    ensure_curl
    log "load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
    ensure_load_generator

    if [[ -n "${BENCH_BIN:-}" ]]; then
        BIN="$BENCH_BIN"
    else
        log "building the release binary (cargo build --release)"
        BIN="$(build_binary --release)"
    fi
    [[ -x "$BIN" ]] || die "built binary not found at $BIN"

    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tenant-billing-bench.XXXXXX")"

    local out
    for BACKEND in $BENCH_BACKENDS; do
        case "$BACKEND" in
            sqlite)
                bench_backend "sqlite://$WORK_DIR/bench.sqlite"
                ;;
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

    print_report
    if [[ $ERRORS -gt 0 ]]; then
        echo "bench: $ERRORS measurement(s) had failed requests; see above" >&2
        exit 1
    fi
}

main "$@"
