#!/usr/bin/env bash
# Install the Debian packages the test-suite uses, when we can (root + apt).
# bubblewrap and libseccomp give the sandbox its strongest level (without them it
# falls back to Landlock + seccomp where the kernel has them, and refuses to run
# codec code with no file isolation at all); PostgreSQL is only for the
# records test-suite's second backend (SQLite is the default); Chromium is for the
# dashboard's browser tests (driven by Playwright, which never downloads a browser);
# wrk is the load generator of bench/dashboard.py (without it the bench falls back to a
# heavier Python client sharing the server's cores).
set -euo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
compgen -G "/usr/lib/*/libseccomp.so.2" >/dev/null || need+=(libseccomp2)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing ${need[*]} (not root or no apt-get); tests needing them will be skipped" >&2
    exit 0
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
