#!/usr/bin/env bash
# Installs what is missing, then runs every test of the workspace (unit,
# integration over real QUIC sockets, X11 under Xvfb, crash tests), and a
# short run of each benchmark so they cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

profile=default
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --workspace --all-targets --locked --profile "$profile"

echo "short benchmark runs (full runs: see README)"
# Every bench is built once, with the workspace's unified features; each
# run below reuses that build (per-crate `cargo bench -p` would rebuild the
# shared dependencies once per feature set).
cargo bench --locked --workspace --benches --no-run
bench() { cargo bench --locked --workspace --bench "$@"; }
bench transport -- --runs 20
bench store_ingest -- --records 20000
bench capture -- --frames 10
bench live_cpu -- --secs 3
bench gui_frames -- --frames 20
bench store -- --records 20000
bench sync_pull -- --records 20000
bench enrolment -- --agents 10
bench alerts -- --agents 1000 --runs 5
