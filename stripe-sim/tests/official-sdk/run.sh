#!/usr/bin/env bash
# Runs Stripe's official Python SDK against the stripe-sim binary.
# Creates a venv under ${CARGO_TARGET_DIR:-target}/sdk-venv, installs `stripe` from
# PyPI, builds and starts stripe-sim on a free port, runs sdk_test.py, stops the
# simulator. Exits non-zero on any failure; the last line is "N passed, M failed".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$workspace/target}"
case "$target" in /*) ;; *) target="$workspace/$target" ;; esac
venv="$target/sdk-venv"
stripe_version="${STRIPE_PYTHON_VERSION:-16.1.0}"
price="price_sdk_monthly"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# pypdf reads the simulator's invoice PDFs the way a PDF reader would.
"$venv/bin/pip" install --quiet --disable-pip-version-check "stripe==$stripe_version" "pypdf>=4,<7" >&2

(cd "$workspace" && CARGO_TARGET_DIR="$target" cargo build --quiet -p stripe-sim --bin stripe-sim) >&2

log="$(mktemp)"
"$target/debug/stripe-sim" --port 0 --price "$price:2500:usd:month" --price-currency "$price:eur:2300" \
    --webhook-retry-base-ms 50 >"$log" 2>&1 &
sim_pid=$!
cleanup() {
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

url=""
for _ in $(seq 1 300); do
    url="$(sed -n 's/^listening on \(http[^ ]*\)$/\1/p' "$log" | head -n1)"
    [ -n "$url" ] && break
    if ! kill -0 "$sim_pid" 2>/dev/null; then
        echo "stripe-sim exited early:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "stripe-sim did not print its 'listening on' line" >&2
    exit 1
fi

status=0
"$venv/bin/python" "$here/sdk_test.py" "$url" "$price" || status=$?
exit "$status"
