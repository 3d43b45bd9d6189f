#!/usr/bin/env bash
# Installs what is missing, builds, and runs a demo site on this machine: a
# site CA, an admin console identity and three agents with the labelled demo
# sensor source (simulated history), serving over QUIC on loopback.
# Ctrl-C stops everything cleanly. `--keep DIR` keeps the site in DIR.
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
bin="$PWD/target/release"

if [ -n "$keep" ]; then
  site_root="$keep"
  mkdir -p "$site_root"
else
  site_root="$(mktemp -d -t smarttracker-demo.XXXXXX)"
fi
echo "demo site in $site_root"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -z "$keep" ] && rm -rf "$site_root"
  echo "demo stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -f "$site_root/site/ca.cert.pem" ]; then
  "$bin/smarttracker-certs" init --site "$site_root/site" --name "Demo SmartTracker"
  "$bin/smarttracker-certs" console --site "$site_root/site" --role admin \
    --name "Demo console" --out "$site_root/console/identity"
fi

for n in $(seq 1 "$agents"); do
  data="$site_root/agent-$n"
  if [ ! -f "$data/identity.pem" ]; then
    "$bin/smarttracker-certs" agent --site "$site_root/site" --out "$site_root/agent-$n.bundle" --name "demo-pc-$n"
    "$bin/smarttracker-agent" enroll --bundle "$site_root/agent-$n.bundle" --data "$data"
    rm "$site_root/agent-$n.bundle"
  fi
  port=$((47100 + n))
  "$bin/smarttracker-agent" run --data "$data" --listen "127.0.0.1:$port" --sensors demo \
    --demo-seed "$n" --demo-history-days 30 >"$site_root/agent-$n.log" 2>&1 &
  pids+=("$!")
  echo "agent $n: demo-pc-$n on 127.0.0.1:$port (log $site_root/agent-$n.log)"
done

# Wait until every agent has written its first status (history recorded).
for n in $(seq 1 "$agents"); do
  for _ in $(seq 1 120); do
    [ -f "$site_root/agent-$n/status.json" ] && break
    kill -0 "${pids[$((n - 1))]}" 2>/dev/null || { cat "$site_root/agent-$n.log" >&2; exit 1; }
    sleep 0.5
  done
done
for n in $(seq 1 "$agents"); do
  echo
  "$bin/smarttracker-agent" status --data "$site_root/agent-$n"
done
echo
echo "agents are running; console identity: $site_root/console/identity; Ctrl-C to stop"
wait
