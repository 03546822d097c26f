#!/usr/bin/env bash
# The Python package's tests: a virtualenv in target/py-venv (made if
# missing); pytest, boto3, moto's S3 server, requests and httpx from the
# package registry; the package built from crates/backstop-py by pip
# (maturin comes through pip's build isolation); then its pytest suite,
# whose servers (moto, fault servers, redis-server, installed from Debian's
# packages when missing) run on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/py-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "pytest>=8" boto3 "moto[server]>=5" requests httpx mypy
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps ./crates/backstop-py
REDIS_SERVER="$(scripts/redis-server.sh)"
export REDIS_SERVER
cd crates/backstop-py
exec "../../$venv/bin/python" -m pytest -q tests
