#!/usr/bin/env bash
# The test command: everything CI runs, in order, on a machine with only a
# Rust toolchain (the tests install redis-server and nginx from Debian's
# packages when they are missing, and start their own on loopback ports).
#
#   scripts/test.sh
#
# 0. every library crate checked on its own (features it uses but gets only
#    from its neighbours' in the workspace would hide there);
# 1. every crate's unit, integration and doc tests (README.md included, as
#    the doc tests of backstop-aws), default features;
# 2. the core with all its features, and the HTTP crate's fault injection
#    (feature `chaos`);
# 3. one run of each benchmark (a smoke test, not a measurement);
# 4. the loom models of the breaker, the budget and a shared guard;
# 5. the Python package: built with maturin into a virtualenv, its pytest suite.
#
# Prints how long each step took, and the total. A run from a fresh clone
# (nothing built, the crates already downloaded) took 11 min 29 s on 2
# cores: each library 77 s, workspace tests 385 s, all features 38 s,
# HTTP fault injection 12 s, benchmarks 31 s, loom 70 s, Python 76 s; its
# target directory peaked at 4.8 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
# One build, never edited and rebuilt: incremental caches would only take disk.
export CARGO_INCREMENTAL=0

started=$SECONDS
step() {
    local name=$1
    shift
    local t0=$SECONDS
    echo "==> $name" >&2
    "$@"
    echo "==> $name: $((SECONDS - t0)) s" >&2
}

cargo --version
step "each library on its own" bash -c 'for p in backstop backstop-macros backstop-http backstop-aws backstop-redis backstop-py; do cargo check -q -p "$p" || exit 1; done'
step "workspace tests" cargo test --workspace --no-fail-fast
step "core, all features" cargo test -p backstop --all-features --no-fail-fast
step "HTTP with fault injection" cargo test -p backstop-http --features chaos --test chaos
step "benchmarks, one run each" cargo test -p backstop-bench --benches
step "loom models" env RUSTFLAGS="--cfg backstop_loom" CARGO_TARGET_DIR=target/loom \
    cargo test -p backstop --no-default-features --release --test loom_breaker --test loom_budget --test loom_shared
step "python package" scripts/test-python.sh
total=$((SECONDS - started))
echo "==> all tests passed in $((total / 60)) min $((total % 60)) s" >&2
