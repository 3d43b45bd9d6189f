#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo: `smarttracker-console
# demo` creates a site in a temporary directory (site CA, admin console
# identity, three enrolled agents running the labelled demo sensor source
# with 30 days of simulated history on loopback) and opens the console
# window on it. Closing the window (or Ctrl-C) stops the agents cleanly and
# removes the site. `--keep DIR` keeps the site in DIR (and reuses it next
# time); `--agents N` starts N agents.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=""
agents=3
while (($#)); do
  case "$1" in
    --keep) keep="$2"; shift 2 ;;
    --agents) agents="$2"; shift 2 ;;
    *) echo "usage: $0 [--keep DIR] [--agents N]" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh
cargo build --release --locked --bins

args=(demo --agents "$agents")
[ -n "$keep" ] && args+=(--keep "$keep")
if [ -z "${DISPLAY:-}" ]; then
  echo "error: no X display (DISPLAY is not set); run this from a desktop session, or see scripts/screenshots.sh for Xvfb" >&2
  exit 1
fi
# Where cargo put the binaries (CARGO_TARGET_DIR if set).
exec "${CARGO_TARGET_DIR:-target}/release/smarttracker-console" "${args[@]}"
