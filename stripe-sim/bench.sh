#!/usr/bin/env bash
# Load-tests the release stripe-sim binary on loopback and prints requests/s and
# p99 latency for `GET /v1/customers/{id}` and `POST /v1/customers`.
# Uses wrk (installed with apt-get if missing) or, failing that, oha (cargo install).
# Tunables: BENCH_DURATION (default 10s), BENCH_CONNECTIONS (64), BENCH_THREADS (1).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$workspace/target}"
case "$target" in /*) ;; *) target="$workspace/$target" ;; esac
duration="${BENCH_DURATION:-10s}"
connections="${BENCH_CONNECTIONS:-64}"
threads="${BENCH_THREADS:-1}"
key="sk_test_bench"

tool=""
if command -v wrk >/dev/null 2>&1; then
    tool=wrk
elif command -v apt-get >/dev/null 2>&1 && { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null 2>&1; then
    tool=wrk
else
    command -v oha >/dev/null 2>&1 || cargo install --quiet oha >&2
    tool=oha
fi

(cd "$workspace" && CARGO_TARGET_DIR="$target" cargo build --quiet --release -p stripe-sim --bin stripe-sim) >&2

log="$(mktemp)"
lua="$(mktemp --suffix=.lua)"
"$target/release/stripe-sim" --port 0 >"$log" 2>&1 &
sim_pid=$!
cleanup() {
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    rm -f "$log" "$lua"
}
trap cleanup EXIT

url=""
for _ in $(seq 1 100); do
    url="$(sed -n 's/^listening on \(http[^ ]*\)$/\1/p' "$log" | head -n1)"
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "stripe-sim did not start" >&2; cat "$log" >&2; exit 1; }

customer="$(curl -sf -u "$key:" -d email=bench@example.com -d 'metadata[tenant_id]=bench' "$url/v1/customers" |
    sed -n 's/.*"id":"\(cus_[A-Za-z0-9]*\)".*/\1/p' | head -n1)"
[ -n "$customer" ] || { echo "could not create the benchmark customer" >&2; exit 1; }

# Prints "<label>: <req/s> req/s, p99 <latency>" from one run.
run_wrk() {
    local label="$1"; shift
    local out
    out="$(wrk --latency -t"$threads" -c"$connections" -d"$duration" "$@")"
    local rps p99 errors
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    errors="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")"
    printf '%-28s %10s req/s   p99 %-8s %s\n' "$label" "$rps" "$p99" "${errors:+(non-2xx: $errors)}"
}

run_oha() {
    local label="$1"; shift
    local out rps p99
    out="$(oha --no-tui -z "$duration" -c "$connections" "$@")"
    rps="$(awk '/Requests\/sec:/ {print $2}' <<<"$out")"
    p99="$(awk '/99.00%/ {print $3 $4}' <<<"$out")"
    printf '%-28s %10s req/s   p99 %s\n' "$label" "$rps" "$p99"
}

echo "stripe-sim $url, $tool, $connections connections, $duration per endpoint, $(nproc) cores"
if [ "$tool" = wrk ]; then
    cat >"$lua" <<LUA
wrk.method = "POST"
wrk.body = "email=load%40example.com&metadata%5Btenant_id%5D=load"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Bearer $key"
LUA
    run_wrk "GET /v1/customers/{id}" -H "Authorization: Bearer $key" "$url/v1/customers/$customer"
    run_wrk "POST /v1/customers" -s "$lua" "$url/v1/customers"
else
    run_oha "GET /v1/customers/{id}" -H "Authorization: Bearer $key" "$url/v1/customers/$customer"
    run_oha "POST /v1/customers" -m POST -H "Authorization: Bearer $key" \
        -T application/x-www-form-urlencoded -d 'email=load%40example.com&metadata%5Btenant_id%5D=load' "$url/v1/customers"
fi
