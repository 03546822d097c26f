#!/usr/bin/env bash
# A fleet of 100 workers through an outage, with local guards and then with
# the same guards shared through Redis (backstop-redis), on a private
# redis-server on a free loopback port. Installs redis-server from Debian's
# packages when missing. About 30 s (real time: two runs of 7 s, and the build).
#
#   scripts/fleet-demo.sh [--clients N] [--runs R] [--redis URL]
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    echo "installing redis-server (Debian packages)..." >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null 2>&1 \
        || { as_root apt-get update -qq >/dev/null \
             && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
    # The demo starts its own server; the system's need not run.
    as_root systemctl disable --now redis-server >/dev/null 2>&1 \
        || as_root service redis-server stop >/dev/null 2>&1 || true
fi
export PATH="$PATH:/usr/bin:/usr/sbin"
exec cargo run --release -q -p backstop-cli -- simulate --scenario fleet "$@"
