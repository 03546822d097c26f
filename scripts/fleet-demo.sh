#!/usr/bin/env bash
# A fleet of 100 workers through an outage, with local guards and then with
# the same guards shared through Redis (backstop-redis), on a private
# redis-server on a free loopback port. Installs redis-server from Debian's
# packages when missing. About 30 s (real time: two runs of 7 s, and the build).
#
#   scripts/fleet-demo.sh [--clients N] [--runs R] [--redis URL]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/redis-server.sh >/dev/null
export PATH="$PATH:/usr/bin:/usr/sbin"
exec cargo run --release -q -p backstop-cli -- simulate --scenario fleet "$@"
