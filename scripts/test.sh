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
cargo bench --locked -p smarttracker-certs --bench transport -- --runs 20
cargo bench --locked -p smarttracker-agent --bench store_ingest -- --records 20000
cargo bench --locked -p smarttracker-agent --bench capture -- --frames 10
cargo bench --locked -p smarttracker-agent --bench live_cpu -- --secs 3
cargo bench --locked -p smarttracker-console --bench gui_frames -- --frames 20
