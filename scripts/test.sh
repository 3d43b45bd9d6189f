#!/usr/bin/env bash
# Installs what is missing, then runs every test of the workspace (unit,
# integration over real QUIC sockets, X11 under Xvfb, network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

profile=default
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --workspace --all-targets --locked --profile "$profile"
