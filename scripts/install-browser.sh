#!/usr/bin/env bash
# install-browser.sh: Debian's chromium and chromium-driver for the browser
# tests (tests/e2e). Idempotent: does nothing when both are on PATH, else
# installs them through apt (`apt-get update` once). npm/pip browser
# downloads do not work offline; Debian's packages do.
#
# Usage: scripts/install-browser.sh
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "install-browser: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "install-browser: $(chromium --version 2>/dev/null | head -n1), $(chromedriver --version | head -n1)"
    exit 0
fi
echo "install-browser: installing Debian's chromium and chromium-driver" >&2
apt_install chromium chromium-driver || die "apt-get could not install chromium and chromium-driver"
command -v chromium >/dev/null 2>&1 || die "chromium is still not on PATH after installing it"
command -v chromedriver >/dev/null 2>&1 || die "chromedriver is still not on PATH after installing it"
echo "install-browser: $(chromium --version 2>/dev/null | head -n1), $(chromedriver --version | head -n1)"
