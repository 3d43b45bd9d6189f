#!/usr/bin/env bash
# Takes a PNG of each main screen of the console window under Xvfb
# (1600x1000): installs what is missing, builds the release binaries,
# creates one demo site (three demo agents, 30 days of simulated history),
# then opens `smarttracker-console demo --keep SITE --screen NAME` once per
# screen and writes target/screenshots/NAME.png with ImageMagick's import.
# On the Live screen it also clicks the first thumbnail (live-single.png)
# and "Take screenshot", so the Screenshots screen has one to open
# (screenshots.png, after a click on its first row).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --locked --bins
bin="$PWD/target/release"
out="$PWD/target/screenshots"
mkdir -p "$out"
site="$(mktemp -d -t smarttracker-shots.XXXXXX)"
rmdir "$site"

# Xvfb picks a free display itself (a fixed or random one may be taken
# by another X server, whose windows would then be photographed).
displayfile="$(mktemp)"
Xvfb -displayfd 3 -screen 0 1600x1000x24 -nolisten tcp 3>"$displayfile" >/dev/null 2>&1 &
xvfb=$!
for _ in $(seq 1 100); do [ -s "$displayfile" ] && break; sleep 0.1; done
display=":$(head -n 1 "$displayfile")"
rm -f "$displayfile"
demo=""
cleanup() {
  # Never stop half-way: a failed wait must not leave Xvfb running.
  if [ -n "$demo" ]; then
    kill -TERM "$demo" 2>/dev/null || true
    wait "$demo" 2>/dev/null || true
  fi
  kill "$xvfb" 2>/dev/null || true
  rm -rf "$site"
}
trap cleanup EXIT
export DISPLAY="$display"
for _ in $(seq 1 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done
# Software GL under Xvfb.
export LIBGL_ALWAYS_SOFTWARE=1

# Clicks at window coordinates (the window sits at 0,0, 1600x1000).
click() {
  xdotool mousemove "$1" "$2" click 1
}

for screen in fleet employee organisation attendance health live screenshots settings audit; do
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
  case "$screen" in
    live)
      import -window root "$out/live.png"
      echo "wrote $out/live.png"
      # The first thumbnail, large; then a screenshot of it.
      click 175 240
      sleep 5
      import -window root "$out/live-single.png"
      echo "wrote $out/live-single.png"
      click 276 123
      sleep 5
      ;;
    screenshots)
      # The newest screenshot (the one just taken, or a periodic one).
      click 120 188
      sleep 3
      import -window root "$out/$screen.png"
      echo "wrote $out/$screen.png"
      ;;
    *)
      import -window root "$out/$screen.png"
      echo "wrote $out/$screen.png"
      ;;
  esac
  kill -TERM "$demo"
  wait "$demo" || true
  demo=""
done
