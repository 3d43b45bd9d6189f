#!/usr/bin/env bash
# Steady-state cost of the agent on a real (virtual) desktop: an Xvfb
# display with openbox, the release agent with X11 sensors (1 s window
# polls, 5 s idle checks, 30 s health samples), measured for DURATION
# seconds (default 600). Prints CPU as % of one core and peak RSS, as
# ratios to the budget (0.3 % of a core, 30 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
duration_secs="${1:-600}"

cargo build --release --locked -p smarttracker-agent -p smarttracker-certs
bin="$PWD/target/release"
work="$(mktemp -d -t smarttracker-soak.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

display=":$((200 + RANDOM % 500))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
pids+=("$!")
for _ in $(seq 1 50); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done
DISPLAY="$display" openbox >/dev/null 2>&1 &
pids+=("$!")
DISPLAY="$display" xmessage -geometry +10+10 "SmartTracker soak" &
pids+=("$!")

"$bin/smarttracker-certs" init --site "$work/site" --name "Soak" >/dev/null
"$bin/smarttracker-certs" agent --site "$work/site" --out "$work/agent.bundle" --name soak >/dev/null
"$bin/smarttracker-agent" enroll --bundle "$work/agent.bundle" --data "$work/agent" >/dev/null
DISPLAY="$display" SMARTTRACKER_LOG=warn "$bin/smarttracker-agent" run --data "$work/agent" \
  --listen 127.0.0.1:0 --sensors x11 --no-mdns &
agent_pid="$!"
pids+=("$agent_pid")

sleep 5 # start-up is not steady state
ticks_per_sec="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$agent_pid/stat"; }
start_ticks="$(cpu_ticks)"
start_ns="$(date +%s%N)"
sleep "$duration_secs"
end_ticks="$(cpu_ticks)"
end_ns="$(date +%s%N)"
rss_kb="$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")"
hwm_kb="$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")"

python3 - "$start_ticks" "$end_ticks" "$start_ns" "$end_ns" "$ticks_per_sec" "$rss_kb" "$hwm_kb" <<'PY'
import sys
start, end, start_ns, end_ns, hz, rss_kb, hwm_kb = map(int, sys.argv[1:])
wall_s = (end_ns - start_ns) / 1e9
cpu_s = (end - start) / hz
cpu_pct = cpu_s / wall_s * 100
print(f"agent steady state over {wall_s:.0f} s: CPU {cpu_s:.2f} s = {cpu_pct:.3f} % of one core "
      f"({cpu_pct / 0.3:.2f}x the 0.3 % budget)")
print(f"RSS now {rss_kb / 1024:.1f} MiB, peak {hwm_kb / 1024:.1f} MiB ({hwm_kb / 1024 / 30:.2f}x the 30 MB budget)")
PY
