#!/usr/bin/env bash
# The agent's kill -9 loop: ROUNDS (default 1000) times, start a demo agent,
# let it record a random short time (a console pulls and acks it now and
# then), kill -9 it, and check that its store opens and is consistent (see
# tests/tests/agent_kill9.rs, which CI runs with 20 rounds). Prints the
# rounds, the time taken and what was checked; fails at the first
# inconsistency.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-1000}"

cargo build --locked --bins
SMARTTRACKER_KILL9_ITERATIONS="$rounds" \
  cargo test --locked -p smarttracker-tests --test agent_kill9 -- --nocapture
