#!/usr/bin/env bash
# schemathesis.sh: fuzzes the running service against its own OpenAPI document
# (SPEC §9): no server errors, no status code the document does not list, no
# answer that violates its schema, no undocumented content type.
#
# It installs schemathesis from PyPI into a venv (idempotent; reused while its
# version fits), builds the binary (debug, or release with
# SCHEMATHESIS_PROFILE=release), starts it on a free port with a fresh SQLite
# database and the in-process Stripe simulator, mints an admin token for the
# tenant `acme` (`tenant-billing token`) and pins every `{tenant_id}` to it, so
# the tenant routes are exercised past the token check. The summary goes to
# stdout (the CI log); the exit status is schemathesis's.
#
# Usage: scripts/schemathesis.sh
#   SCHEMATHESIS_MAX_EXAMPLES=50   examples per operation and phase (bounds the run time)
#   SCHEMATHESIS_VENV=target/schemathesis-venv
#   SCHEMATHESIS_PROFILE=debug|release
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
VENV="${SCHEMATHESIS_VENV:-$REPO_ROOT/target/schemathesis-venv}"
PROFILE="${SCHEMATHESIS_PROFILE:-debug}"
SCHEMATHESIS_SPEC='schemathesis>=4.32,<5'
SCRIPT_JWT_SECRET="schemathesis-secret-0123456789abcdef0123"
TENANT="acme"
WORK_DIR=""

log() { echo "schemathesis.sh: $*" >&2; }
die() {
    echo "schemathesis.sh: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_tools() {
    command -v curl >/dev/null 2>&1 || apt_install curl || die "curl is required"
    command -v python3 >/dev/null 2>&1 || apt_install python3 || die "python3 is required"
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv || die "python3-venv is required"
    fi
}

# The venv's schemathesis, installed or upgraded only when missing or out of range.
ensure_schemathesis() {
    if [[ -x "$VENV/bin/schemathesis" ]] &&
        "$VENV/bin/python" -c "
import sys
from importlib.metadata import version
major, minor = (int(x) for x in version('schemathesis').split('.')[:2])
sys.exit(0 if major == 4 and minor >= 32 else 1)" 2>/dev/null; then
        return 0
    fi
    log "installing $SCHEMATHESIS_SPEC into $VENV"
    python3 -m venv "$VENV" || die "cannot create a venv at $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$SCHEMATHESIS_SPEC" ||
        die "pip could not install $SCHEMATHESIS_SPEC"
}

# Starts the service on a fresh SQLite file with the in-process simulator.
start_service() {
    local url="sqlite://$WORK_DIR/schemathesis.sqlite" port
    app "$url" "$BIN" migrate >/dev/null || die "tenant-billing migrate failed"
    port="$(free_port)"
    # Rate limits off: the fuzzer should reach the handlers, not the 429
    # (documented, and tested in tests/api/rate_limit.rs).
    env DATABASE_URL="$url" JWT_SECRET="$SCRIPT_JWT_SECRET" APP__TELEMETRY__LEVEL=warn \
        APP__RATE_LIMIT__TENANT_WRITES_PER_MINUTE=0 BIND_ADDR="127.0.0.1:$port" \
        "$BIN" serve --no-migrate >"$WORK_DIR/serve.log" 2>&1 &
    SERVER_PID=$!
    BASE_URL="http://127.0.0.1:$port"
    await_ready "$SERVER_PID" "$BASE_URL" || case $? in
        1) cat "$WORK_DIR/serve.log" >&2; die "the service exited early" ;;
        *) die "/readyz answered '${READY_STATUS:-nothing}' after 30 s" ;;
    esac
    TOKEN="$(app "$url" "$BIN" token --tenant "$TENANT" --role admin)" || die "tenant-billing token failed"
}

main() {
    command -v cargo >/dev/null 2>&1 || die "cargo is not installed"
    ensure_tools
    ensure_schemathesis
    local profile=()
    [[ "$PROFILE" == release ]] && profile=(--release)
    log "building tenant-billing ($PROFILE)"
    BIN="$(build_binary "${profile[@]}")"
    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tenant-billing-schemathesis.XXXXXX")"
    start_service

    # Every {tenant_id} is the token's tenant, so requests pass the token
    # check and reach the handlers (random tenants would all be 403).
    cat >"$WORK_DIR/schemathesis.toml" <<TOML
[parameters]
"path.tenant_id" = "$TENANT"
TOML
    log "fuzzing $BASE_URL ($MAX_EXAMPLES examples per operation and phase)"
    local status=0
    "$VENV/bin/schemathesis" --config-file "$WORK_DIR/schemathesis.toml" run "$BASE_URL/openapi.json" \
        --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
        --header "Authorization: Bearer $TOKEN" \
        --phases examples,coverage,fuzzing \
        --max-examples "$MAX_EXAMPLES" \
        --workers 2 \
        --request-timeout 30 \
        --seed "${SCHEMATHESIS_SEED:-1}" \
        --no-color || status=$?
    if grep -qE '\b(ERROR|panicked)\b' "$WORK_DIR/serve.log"; then
        log "the service logged errors:"
        grep -E '\b(ERROR|panicked)\b' "$WORK_DIR/serve.log" | head -n 20 >&2
    fi
    exit "$status"
}

main "$@"
