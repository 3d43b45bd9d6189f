#!/usr/bin/env bash
# Takes a PNG of each main screen of the console window under Xvfb
# (1600x1000): installs what is missing, builds the release binaries,
# creates one demo site (three demo agents, 30 days of simulated history),
# then opens `smarttracker-console demo --keep SITE --screen NAME` once per
# screen and writes target/screenshots/NAME.png with ImageMagick's import.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --locked --bins
bin="$PWD/target/release"
out="$PWD/target/screenshots"
mkdir -p "$out"
site="$(mktemp -d -t smarttracker-shots.XXXXXX)"
rmdir "$site"

display=":$((90 + RANDOM % 9))"
Xvfb "$display" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
demo=""
cleanup() {
  [ -n "$demo" ] && kill -TERM "$demo" 2>/dev/null && wait "$demo" 2>/dev/null
  kill "$xvfb" 2>/dev/null || true
  rm -rf "$site"
}
trap cleanup EXIT
export DISPLAY="$display"
for _ in $(seq 1 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done
# Software GL under Xvfb.
export LIBGL_ALWAYS_SOFTWARE=1

for screen in fleet employee organisation attendance health settings audit; do
  "$bin/smarttracker-console" demo --keep "$site" --screen "$screen" >"$out/$screen.log" 2>&1 &
  demo=$!
  # The window appears once the agents have recorded their history.
  for _ in $(seq 1 1200); do
    xdotool search --name '^SmartTracker$' >/dev/null 2>&1 && break
    kill -0 "$demo" 2>/dev/null || { cat "$out/$screen.log" >&2; exit 1; }
    sleep 0.25
  done
  window="$(xdotool search --name '^SmartTracker$' | head -n 1)"
  xdotool windowmove "$window" 0 0 windowsize "$window" 1600 1000 || true
  # First sync and the screen's data.
  sleep 8
  import -window root "$out/$screen.png"
  echo "wrote $out/$screen.png"
  kill -TERM "$demo"
  wait "$demo" || true
  demo=""
done
