#!/usr/bin/env bash
# install-cargo-deny.sh: cargo-deny at the pinned version, built from
# crates.io with its own lock file (`cargo install --locked`). Idempotent:
# does nothing when that version is already installed. A fresh machine
# builds it once (a few minutes on 2 cores); CI runs this before
# `scripts/deny.sh`.
#
# Usage: scripts/install-cargo-deny.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.20.2

installed=$(cargo deny --version 2>/dev/null | awk '{print $2}' || true)
if [ "$installed" = "$VERSION" ]; then
    echo "install-cargo-deny: cargo-deny $VERSION"
    exit 0
fi
echo "install-cargo-deny: building cargo-deny $VERSION from crates.io (found: ${installed:-none})" >&2
# Its own target directory: the project's CARGO_TARGET_DIR stays the project's.
env -u CARGO_TARGET_DIR cargo install cargo-deny --locked --version "$VERSION" --quiet
echo "install-cargo-deny: cargo-deny $(cargo deny --version | awk '{print $2}')"
