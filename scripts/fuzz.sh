#!/usr/bin/env bash
# Longer runs of the fuzz harnesses that scripts/test.sh runs briefly:
# mutated and random frames through the codec (protocol/tests/hostile.rs),
# any batch through ingest validation, and any response to any request a
# console sends (tests/tests/fuzz.rs). Deterministic seeds: a failure is
# reproduced by running the same command again.
#
#   scripts/fuzz.sh [CASES]     # default 20000 (about five minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."

cases="${1:-20000}"
scripts/install-deps.sh
export SMARTTRACKER_FUZZ_CASES="$cases"
echo "fuzzing with SMARTTRACKER_FUZZ_CASES=$cases"
# The workspace tests start the real binaries: build them first.
cargo build --locked --release --workspace --bins
cargo nextest run --locked --release -p smarttracker-protocol --test hostile --no-capture
cargo nextest run --locked --release -p smarttracker-tests --test fuzz --no-capture
