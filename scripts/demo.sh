#!/usr/bin/env bash
# The README's upgrade flow, end to end with curl, against `cargo run` on the
# embedded defaults (a throwaway SQLite file and the in-process simulator).
# Exits non-zero if any step does not answer as documented.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "demo: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

workdir=$(mktemp -d)
port=${DEMO_PORT:-$(free_port)}
# Where cargo put it (CARGO_TARGET_DIR and friends), not a guessed target/debug.
bin=$(build_binary -q)
# exec: $! must be the server itself, not a subshell, or it outlives the script.
(cd "$workdir" && exec env BIND_ADDR="127.0.0.1:$port" "$bin" >"$workdir/server.log" 2>&1) &
SERVER_PID=$!
trap 'stop_server; rm -rf "$workdir"' EXIT

api="http://127.0.0.1:$port"
for _ in $(seq 300); do curl -fs "$api/healthz" >/dev/null && break; sleep 0.1; done
curl -fs "$api/readyz" >/dev/null || { cat "$workdir/server.log" >&2; die "the server is not ready on $api"; }

step() { printf '\n== %s\n' "$*"; }

step "the billing settings page and the ready link in the log (open it in a browser)"
link=$(sed -n 's#.*\(http://[^ ]*/settings/billing\#token=[A-Za-z0-9._-]*\).*#\1#p' "$workdir/server.log" | head -n 1)
[[ "$link" == "http://127.0.0.1:$port/settings/billing#token="* ]] || { cat "$workdir/server.log" >&2; die "no ready link in the log"; }
echo "${link%%#*}#token=…"
curl -fs "$api/settings/billing" | grep -q 'data-testid="plan-name"' || die "GET /settings/billing is not the page"
curl -fs "$api/v1/me" -H "Authorization: Bearer ${link#*#token=}"; echo

TOKEN=$(cd "$workdir" && "$bin" token --tenant acme --role admin --email owner@acme.test)
auth=(-H "Authorization: Bearer $TOKEN")

step "billing state of a new tenant (free)"
curl -fs "$api/v1/tenants/acme/billing" "${auth[@]}"; echo

step "billing profile (the customer is provisioned in the background)"
curl -fs -X PUT "$api/v1/tenants/acme/billing/profile" "${auth[@]}" \
  -H 'content-type: application/json' \
  -d '{"billing_email":"billing@acme.test","billing_name":"Acme Inc"}'; echo

step "Upgrade: a Checkout session"
session=$(curl -fs -X POST "$api/v1/tenants/acme/billing/checkout" "${auth[@]}" \
  -H 'content-type: application/json' -d '{"plan":"pro"}')
echo "$session"
id=$(echo "$session" | sed -E 's/.*"checkout_session_id":"([^"]+)".*/\1/')
url=$(echo "$session" | sed -E 's/.*"url":"([^"]+)".*/\1/')
sim=$(echo "$url" | sed -E 's#^(https?://[^/]+).*#\1#')

step "pay (what the hosted page's Pay button does)"
curl -fs -X POST "$sim/_sim/checkout/$id/complete" >/dev/null && echo "paid $id"

step "the webhook makes the tenant pro"
for _ in $(seq 100); do
  state=$(curl -fs "$api/v1/tenants/acme/billing" "${auth[@]}")
  case "$state" in *'"plan":"pro"'*) break ;; esac
  sleep 0.1
done
echo "$state"
case "$state" in *'"plan":"pro"'*) ;; *) echo "the tenant did not become pro" >&2; exit 1 ;; esac

step "billing portal"
curl -fs -X POST "$api/v1/tenants/acme/billing/portal" "${auth[@]}"; echo
echo
echo "demo: 1 passed, 0 failed"
