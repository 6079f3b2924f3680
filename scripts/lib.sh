# Shared helpers for the scripts in this folder; `source` it after defining
# `die` (each script prefixes its own messages). Sets nothing else globally
# but SERVER_PID (the server started by the sourcing script, if any) and
# APT_UPDATED (apt_install's bookkeeping).

SERVER_PID=""

# True when something listens on 127.0.0.1:$1 (a successful connect).
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port nothing listens on now, in 20000-59999.
free_port() {
    local port _
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    die "no free TCP port found on 127.0.0.1"
}

# Builds tenant-billing with `cargo build --bin tenant-billing "$@"` (e.g.
# --release) and prints the path of the binary as cargo reports it, so that
# CARGO_TARGET_DIR, build.target-dir and --target are honoured; a script
# never guesses target/debug. Fails (through `die`) when cargo does.
build_binary() {
    local messages executable
    messages="$(cargo build --bin tenant-billing --message-format=json-render-diagnostics "$@")" ||
        die "cargo build failed"
    executable="$(printf '%s\n' "$messages" |
        grep '"reason":"compiler-artifact"' |
        grep '"name":"tenant-billing"' |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
    [[ -n "$executable" && -x "$executable" ]] ||
        die "cargo build did not report a tenant-billing binary"
    printf '%s\n' "$executable"
}

# Waits up to 30 s for GET $2/readyz to answer 200 while process $1 runs.
# Returns 0 once ready, 1 if the process exited, 2 after 30 s; READY_STATUS
# holds the last status seen (empty if nothing answered).
await_ready() {
    local pid="$1" base="$2"
    READY_STATUS=""
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || return 1
        READY_STATUS="$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz" || true)"
        [[ "$READY_STATUS" == 200 ]] && return 0
        sleep 0.2
    done
    return 2
}

# Runs a tenant-billing command against database URL $1 with the script's JWT
# secret ($SCRIPT_JWT_SECRET) and quiet logs.
app() {
    local url="$1"
    shift
    env DATABASE_URL="$url" JWT_SECRET="$SCRIPT_JWT_SECRET" APP__TELEMETRY__LEVEL=warn "$@"
}

# Stops $SERVER_PID gracefully (SIGTERM, up to 10 s), then for good.
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        local _
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

# Runs "$@" as root (directly, or through sudo).
as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

APT_UPDATED=0
# Installs Debian packages "$@" as root, running `apt-get update` once per
# script; fails (status 1) without apt-get or when either step fails.
apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    if [[ "$APT_UPDATED" == 0 ]]; then
        as_root apt-get update -qq || return 1
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# EXIT trap for scripts that start a server and maybe a throwaway PostgreSQL
# (PG_STARTED=1, state in $WORK_DIR/pg.state): stops both, removes $WORK_DIR,
# and keeps the script's exit status.
cleanup() {
    local status=$?
    stop_server
    if [[ "${PG_STARTED:-0}" == 1 ]]; then
        PG_STATE_FILE="$WORK_DIR/pg.state" "$REPO_ROOT/scripts/pg-throwaway.sh" stop 2>/dev/null || true
    fi
    if [[ -n "${WORK_DIR:-}" ]]; then
        rm -rf -- "$WORK_DIR"
    fi
    exit "$status"
}
