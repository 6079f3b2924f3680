#!/usr/bin/env bash
# check-diesel-cli.sh: proves that the migration folders work with the diesel CLI.
#
# Why: SPEC §5 promises that `diesel migration run --migration-dir migrations/<backend>`
# and the migrations embedded in the binary are interchangeable. This checks it end
# to end, per backend (SQLite on a temporary file, PostgreSQL on a throwaway cluster
# from scripts/pg-throwaway.sh):
#   1. `diesel migration run`   applies the folder to an empty database;
#   2. `diesel migration redo`  runs every down.sql and up.sql again (down works);
#   3. `tenant-billing migrate` prints exactly `no pending migrations`
#      (the CLI recorded the same versions the binary embeds);
#   4. `tenant-billing serve`   answers GET /readyz 200 and
#      GET /v1/tenants/acme/billing 200 with "plan":"free" for a minted member token.
# It prints `N passed, M failed` last and exits non-zero when anything failed.
#
# It installs what it needs when missing (idempotent): curl, libpq-dev and
# libsqlite3-dev (apt), and the diesel CLI (`cargo install diesel_cli
# --no-default-features --features postgres,sqlite --locked`). The CLI runs with a
# temporary diesel.toml so that its schema regeneration never rewrites
# src/db/schema.rs; the regenerated schema is compared with the shared one and any
# difference is reported (not a failure: the two backends' column types differ).
#
# Usage: scripts/check-diesel-cli.sh            (both backends)
#        CHECK_BACKENDS=sqlite scripts/check-diesel-cli.sh
# Respects CARGO_TARGET_DIR.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

BACKENDS="${CHECK_BACKENDS:-sqlite postgres}"
SCRIPT_JWT_SECRET="check-diesel-cli-secret-0123456789abcdef"
WORK_DIR=""
PG_STARTED=0

log() { echo "check-diesel-cli: $*" >&2; }
die() {
    echo "check-diesel-cli: error: $*" >&2
    exit 1
}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_apt_packages() {
    local pkg
    local -a missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    log "installing ${missing[*]} with apt-get"
    apt_install "${missing[@]}" || die "apt-get could not install ${missing[*]}"
}

ensure_diesel() {
    local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    if command -v diesel >/dev/null 2>&1; then
        DIESEL="$(command -v diesel)"
    elif [[ -x "$cargo_bin/diesel" ]]; then
        DIESEL="$cargo_bin/diesel"
    else
        log "diesel CLI not found; installing it (a few minutes)"
        cargo install diesel_cli --no-default-features --features postgres,sqlite --locked
        DIESEL="$cargo_bin/diesel"
    fi
    "$DIESEL" --version >&2 || die "the diesel CLI at $DIESEL does not run"
}





# Runs the diesel CLI from the repository root with a private config (see header).
diesel_cli() {
    local backend="$1"
    shift
    "$DIESEL" --config-file "$WORK_DIR/diesel-$backend.toml" "$@"
}

# One backend, every step; prints why and returns 1 on the first failure.
check_backend() {
    local backend="$1" url diesel_url out port token status body log_file

    case "$backend" in
        sqlite)
            diesel_url="$WORK_DIR/check.sqlite"
            url="sqlite://$diesel_url"
            ;;
        postgres)
            if [[ "$PG_STARTED" == 0 ]]; then
                out="$(PG_STATE_FILE="$WORK_DIR/pg.state" "$REPO_ROOT/scripts/pg-throwaway.sh" start)" || {
                    log "[$backend] FAIL: could not start a throwaway PostgreSQL"
                    return 1
                }
                PG_STARTED=1
            else
                out="DATABASE_URL=$(PG_STATE_FILE="$WORK_DIR/pg.state" "$REPO_ROOT/scripts/pg-throwaway.sh" url)"
            fi
            url="${out#DATABASE_URL=}"
            diesel_url="$url"
            ;;
        *)
            log "unknown backend $backend"
            return 1
            ;;
    esac
    cat >"$WORK_DIR/diesel-$backend.toml" <<EOF
# Written by scripts/check-diesel-cli.sh: keeps the CLI from rewriting src/db/schema.rs.
[print_schema]
file = "$WORK_DIR/schema-$backend.rs"

[migrations_directory]
dir = "$REPO_ROOT/migrations/$backend"
EOF

    log "[$backend] diesel migration run --migration-dir migrations/$backend"
    if ! diesel_cli "$backend" migration run --migration-dir "migrations/$backend" --database-url "$diesel_url" >&2; then
        log "[$backend] FAIL: diesel migration run failed"
        return 1
    fi

    log "[$backend] diesel migration redo --all (every down.sql, then every up.sql)"
    if ! diesel_cli "$backend" migration redo --all --migration-dir "migrations/$backend" --database-url "$diesel_url" >&2; then
        log "[$backend] FAIL: diesel migration redo failed: a down.sql or up.sql does not work"
        return 1
    fi

    if ! out="$(diesel_cli "$backend" migration pending --migration-dir "migrations/$backend" --database-url "$diesel_url" 2>&1)" || [[ "$out" != "false" ]]; then
        log "[$backend] FAIL: diesel still reports pending migrations after run/redo: $out"
        return 1
    fi

    if [[ -f "$WORK_DIR/schema-$backend.rs" ]]; then
        if diff -u -I "^//" src/db/schema.rs "$WORK_DIR/schema-$backend.rs" >"$WORK_DIR/schema-$backend.diff"; then
            log "[$backend] note: diesel print-schema matches src/db/schema.rs"
        else
            log "[$backend] note: diesel print-schema differs from src/db/schema.rs (informational; comments ignored):"
            sed 's/^/    /' "$WORK_DIR/schema-$backend.diff" >&2
        fi
    fi

    log "[$backend] tenant-billing migrate (must find nothing to do)"
    if ! out="$(app "$url" "$BIN" migrate 2>"$WORK_DIR/migrate-$backend.err")"; then
        log "[$backend] FAIL: tenant-billing migrate failed: $(cat "$WORK_DIR/migrate-$backend.err")"
        return 1
    fi
    if [[ "$out" != "no pending migrations" ]]; then
        log "[$backend] FAIL: tenant-billing migrate after the diesel CLI printed:"
        printf '    %s\n' "$out" >&2
        log "[$backend]       expected exactly 'no pending migrations': the CLI and the binary disagree on versions"
        return 1
    fi

    port="$(free_port)"
    log_file="$WORK_DIR/serve-$backend.log"
    log "[$backend] tenant-billing serve on 127.0.0.1:$port"
    # Not through app(): a backgrounded function is a subshell whose PID is not the
    # server's. env execs the binary, so $! is the server itself.
    env DATABASE_URL="$url" JWT_SECRET="$SCRIPT_JWT_SECRET" APP__TELEMETRY__LEVEL=warn \
        BIND_ADDR="127.0.0.1:$port" "$BIN" serve >"$log_file" 2>&1 &
    SERVER_PID=$!

    local ready=0
    await_ready "$SERVER_PID" "http://127.0.0.1:$port" || ready=$?
    if [[ "$ready" == 1 ]]; then
        log "[$backend] FAIL: tenant-billing serve exited early; its log:"
        sed 's/^/    /' "$log_file" >&2
        SERVER_PID=""
        return 1
    elif [[ "$ready" != 0 ]]; then
        log "[$backend] FAIL: GET /readyz answered '${READY_STATUS:-nothing}' within 30 s (want 200); log:"
        sed 's/^/    /' "$log_file" >&2
        stop_server
        return 1
    fi

    if ! token="$(app "$url" "$BIN" token --tenant acme --role member 2>&1)"; then
        log "[$backend] FAIL: tenant-billing token failed: $token"
        stop_server
        return 1
    fi
    body="$WORK_DIR/billing-$backend.json"
    status="$(curl -s -o "$body" -w '%{http_code}' -H "Authorization: Bearer $token" \
        "http://127.0.0.1:$port/v1/tenants/acme/billing" || true)"
    if [[ "$status" != 200 ]] || ! grep -q '"plan":"free"' "$body"; then
        log "[$backend] FAIL: GET /v1/tenants/acme/billing answered ${status:-nothing}: $(cat "$body" 2>/dev/null)"
        log "[$backend]       want 200 with \"plan\":\"free\"; server log:"
        sed 's/^/    /' "$log_file" >&2
        stop_server
        return 1
    fi
    log "[$backend] GET /v1/tenants/acme/billing -> 200 $(cat "$body")"
    stop_server
    return 0
}

main() {
    command -v cargo >/dev/null 2>&1 || die "cargo is not installed (https://rustup.rs)"
    if command -v dpkg >/dev/null 2>&1; then
        ensure_apt_packages curl libpq-dev libsqlite3-dev
    fi
    command -v curl >/dev/null 2>&1 || die "curl is required"
    ensure_diesel

    log "building tenant-billing (cargo build)"
    BIN="$(build_binary)"

    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/check-diesel-cli.XXXXXX")"

    local backend passed=0 failed=0
    local -a failures=()
    for backend in $BACKENDS; do
        if check_backend "$backend"; then
            log "[$backend] PASS"
            passed=$((passed + 1))
        else
            stop_server
            failed=$((failed + 1))
            failures+=("$backend")
        fi
    done
    if [[ $failed -gt 0 ]]; then
        log "failed backends: ${failures[*]}"
    fi
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}

main "$@"
