#!/bin/bash
# test.sh — the whole test suite, on a fresh Debian bookworm machine as root.
# Installs what it needs, builds every binary, runs every test. Tests that need
# root fail without it; WHARF_SKIP_PRIVILEGED=1 skips them (loudly).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
export CARGO_TERM_COLOR=never
cargo build --workspace --all-targets
cargo test --workspace --no-fail-fast -- --test-threads="${WHARF_TEST_THREADS:-2}"
