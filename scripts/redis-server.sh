#!/usr/bin/env bash
# Makes sure redis-server is installed (from Debian's packages, when it is
# missing) and prints its path. The system's own service is stopped and
# disabled: tests and demos start private servers on free loopback ports.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

export PATH="$PATH:/usr/bin:/usr/sbin"
if ! command -v redis-server >/dev/null 2>&1; then
    echo "installing redis-server (Debian packages)..." >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1 \
        || { as_root apt-get update -qq >/dev/null \
             && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
    as_root systemctl disable --now redis-server >/dev/null 2>&1 \
        || as_root service redis-server stop >/dev/null 2>&1 || true
fi
command -v redis-server
