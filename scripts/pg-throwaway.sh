#!/usr/bin/env bash
# pg-throwaway.sh: a private, disposable PostgreSQL cluster for scripts and benchmarks.
#
# Why: scripts/check-diesel-cli.sh and scripts/bench.sh (and a developer at a shell)
# need a PostgreSQL server without touching any system cluster, a password or a
# service manager. This starts one from the local server binaries on a temporary
# directory and a free port, tuned for speed over durability (fsync=off), and
# removes it again. It mirrors what tests/api/pg.rs does for the test suite.
#
# Usage:
#   scripts/pg-throwaway.sh start   # prints DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/pg-throwaway.sh url     # prints the URL of the running cluster
#   scripts/pg-throwaway.sh status  # exit 0 if the recorded cluster is running
#   scripts/pg-throwaway.sh stop    # stops it and removes its directory
#
#   export "$(scripts/pg-throwaway.sh start)"   # sets DATABASE_URL in this shell
#
# Environment:
#   PG_STATE_FILE  where the cluster is recorded (default ${TMPDIR:-/tmp}/tenant-billing-pg.state);
#                  give each concurrent user its own file.
#   PG_BIN_DIR     directory holding initdb and pg_ctl (else `pg_config --bindir`,
#                  else the newest /usr/lib/postgresql/*/bin).
#   PG_PORT        port to use (default: a free one).
#
# initdb refuses to run as root, so as root the cluster belongs to the `postgres`
# user and every server command runs through `runuser -u postgres --`.
# Only stdout carries the URL; progress and errors go to stderr.
set -euo pipefail

STATE_FILE="${PG_STATE_FILE:-${TMPDIR:-/tmp}/tenant-billing-pg.state}"

die() {
    echo "pg-throwaway: $*" >&2
    exit 1
}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 start|stop|url|status" >&2
    exit 2
}

# Prints the directory holding initdb and pg_ctl, or fails naming where it looked.
find_bin_dir() {
    local dir candidate
    local -a candidates=()
    if [[ -n "${PG_BIN_DIR:-}" ]]; then
        candidates+=("$PG_BIN_DIR")
    fi
    if command -v pg_config >/dev/null 2>&1; then
        candidates+=("$(pg_config --bindir 2>/dev/null || true)")
    fi
    # Newest version last in sort order; try newest first.
    while IFS= read -r dir; do
        candidates+=("$dir")
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -V -r || true)
    for candidate in "${candidates[@]}"; do
        if [[ -n "$candidate" && -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    die "no PostgreSQL server binaries (initdb, pg_ctl) found; looked in PG_BIN_DIR, \`pg_config --bindir\` and /usr/lib/postgresql/*/bin. Install them (e.g. \`apt-get install postgresql\`) or set PG_BIN_DIR."
}

# Runs a server program as the cluster's owner (postgres when we are root).
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}



# Reads the state file into ROOT, PORT and BIN_DIR; fails if there is none.
load_state() {
    [[ -f "$STATE_FILE" ]] || die "no throwaway cluster recorded in $STATE_FILE; run \`$0 start\` first"
    ROOT="" PORT="" BIN_DIR=""
    local key value
    while IFS='=' read -r key value; do
        case "$key" in
            root) ROOT="$value" ;;
            port) PORT="$value" ;;
            bin_dir) BIN_DIR="$value" ;;
            *) ;;
        esac
    done <"$STATE_FILE"
    [[ -n "$ROOT" && -n "$PORT" && -n "$BIN_DIR" ]] || die "state file $STATE_FILE is incomplete; remove it"
}

url_for() {
    echo "postgres://postgres@127.0.0.1:$1/postgres"
}

is_running() {
    (cd "$ROOT" 2>/dev/null && as_owner "$BIN_DIR/pg_ctl" -D "$ROOT/data" status >/dev/null 2>&1)
}

cmd_start() {
    if [[ -f "$STATE_FILE" ]]; then
        load_state
        if is_running; then
            echo "pg-throwaway: already running (state $STATE_FILE); reusing it" >&2
            echo "DATABASE_URL=$(url_for "$PORT")"
            return 0
        fi
        echo "pg-throwaway: removing stale state $STATE_FILE" >&2
        rm -rf -- "$ROOT"
        rm -f -- "$STATE_FILE"
    fi

    local bin_dir root port attempt options
    bin_dir="$(find_bin_dir)"
    if [[ "$(id -u)" == 0 ]]; then
        command -v runuser >/dev/null 2>&1 || die "running as root needs runuser (util-linux) to start PostgreSQL as the postgres user"
        id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user (initdb refuses root); create one or run as a normal user"
    fi
    root="$(mktemp -d "${TMPDIR:-/tmp}/tenant-billing-pg.XXXXXX")"
    if [[ "$(id -u)" == 0 ]]; then
        chown -R postgres:postgres "$root"
        runuser -u postgres -- test -w "$root" ||
            die "the postgres user cannot write $root (is TMPDIR=${TMPDIR:-/tmp} private to root?); set TMPDIR to a world-traversable directory"
    fi

    echo "pg-throwaway: initdb in $root (binaries: $bin_dir)" >&2
    if ! (cd "$root" && as_owner "$bin_dir/initdb" -D "$root/data" -A trust -U postgres -E UTF8 --no-sync >"$root/initdb.log" 2>&1); then
        cat "$root/initdb.log" >&2 || true
        rm -rf -- "$root"
        die "initdb failed (log above)"
    fi
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres:postgres "$root/initdb.log"
    fi

    # A port can be taken between choosing and binding: retry a few times.
    for attempt in 1 2 3 4 5; do
        port="${PG_PORT:-$(free_port)}"
        options="-p $port -k $root -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB"
        if (cd "$root" && as_owner "$bin_dir/pg_ctl" -D "$root/data" -o "$options" -l "$root/server.log" -w -t 60 start >/dev/null 2>&1); then
            {
                echo "root=$root"
                echo "port=$port"
                echo "bin_dir=$bin_dir"
            } >"$STATE_FILE"
            echo "pg-throwaway: started on port $port (state $STATE_FILE, log $root/server.log)" >&2
            echo "DATABASE_URL=$(url_for "$port")"
            return 0
        fi
        echo "pg-throwaway: start attempt $attempt on port $port failed" >&2
        [[ -z "${PG_PORT:-}" ]] || break
    done
    tail -n 20 "$root/server.log" >&2 2>/dev/null || true
    rm -rf -- "$root"
    die "pg_ctl start failed (server log above)"
}

cmd_stop() {
    if [[ ! -f "$STATE_FILE" ]]; then
        echo "pg-throwaway: nothing to stop (no $STATE_FILE)" >&2
        return 0
    fi
    load_state
    if is_running; then
        (cd "$ROOT" && as_owner "$BIN_DIR/pg_ctl" -D "$ROOT/data" -m immediate -w stop >/dev/null 2>&1) ||
            echo "pg-throwaway: pg_ctl stop failed; removing the directory anyway" >&2
    fi
    rm -rf -- "$ROOT"
    rm -f -- "$STATE_FILE"
    echo "pg-throwaway: stopped and removed $ROOT" >&2
}

cmd_url() {
    load_state
    is_running || die "the cluster recorded in $STATE_FILE is not running; run \`$0 stop\` then \`$0 start\`"
    url_for "$PORT"
}

cmd_status() {
    load_state
    if is_running; then
        echo "running: $(url_for "$PORT") (dir $ROOT)"
    else
        echo "not running (dir $ROOT)"
        return 1
    fi
}

[[ $# -eq 1 ]] || usage
case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    url) cmd_url ;;
    status) cmd_status ;;
    -h | --help) usage ;;
    *) usage ;;
esac
