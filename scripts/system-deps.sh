#!/usr/bin/env bash
# Install the Debian packages the test-suite uses, when we can (root + apt).
# Nothing here is required to *run* codeclab: without bubblewrap the sandbox
# falls back to a weaker, recorded isolation level; PostgreSQL is only for the
# records test-suite's second backend (SQLite is the default).
set -euo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
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
