#!/usr/bin/env bash
# deny.sh: cargo deny over the whole dependency graph, per deny.toml.
#
# licenses, bans and sources need nothing but the lock file and always run.
# advisories needs RustSec's advisory database, which `cargo deny fetch`
# clones from its git repository: where that cannot be reached (a machine
# that reaches only package registries), the check is NOT run and this
# script says so in a line starting "ADVISORIES NOT CHECKED"; with
# DENY_REQUIRE_ADVISORIES=1 that is a failure instead. Nothing is faked:
# there is no offline copy of the database in this repository.
#
# Usage: scripts/deny.sh   (after scripts/install-cargo-deny.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo deny --version >/dev/null 2>&1 || {
    echo "deny: cargo-deny is not installed: run scripts/install-cargo-deny.sh" >&2
    exit 1
}

echo "deny: licenses, bans, sources"
cargo deny --color never check --hide-inclusion-graph licenses bans sources

if cargo deny --color never fetch db >/tmp/deny-fetch.$$ 2>&1; then
    rm -f /tmp/deny-fetch.$$
    echo "deny: advisories (RustSec database fetched)"
    cargo deny --color never check --hide-inclusion-graph advisories
else
    reason=$(grep -m1 -iE "error|fail" /tmp/deny-fetch.$$ || tail -n1 /tmp/deny-fetch.$$)
    rm -f /tmp/deny-fetch.$$
    echo "ADVISORIES NOT CHECKED: the RustSec advisory database could not be fetched (${reason:-no detail}); licenses, bans and sources passed"
    if [ "${DENY_REQUIRE_ADVISORIES:-0}" = "1" ]; then
        exit 1
    fi
fi
