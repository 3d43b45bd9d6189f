#!/usr/bin/env bash
# Whole-process benchmark of `smarttracker-console report` against
# ActivityWatch's aw-server, in one run on one machine.
#
#  1. Builds a demo site: AGENTS demo agents (8) with DAYS (30) days of
#     simulated history each, synced once into a console data directory;
#     the agents are stopped after the sync.
#  2. Times `smarttracker-console --data DIR report --range 7d` and
#     `--range 30d` as whole processes (median of RUNS, default 30): first
#     with the CLI opening the store itself, then with
#     `smarttracker-console serve` running (the CLI attaches over its
#     socket).
#  3. Baseline: aw-server (PyPI, in a venv) on a temporary data directory,
#     loaded with the same usage spans as ONE of the workstations (from
#     `export usage --format jsonl`) as `currentwindow` events of one
#     bucket, then the per-app totals query over the same 7 (and 30) site
#     days, timed as whole HTTP requests with curl (median of RUNS).
#  4. Prints one table: the medians, SmartTracker / aw-server, and
#     SmartTracker / the figure before the category model was persisted.
#
# Usage: scripts/bench-report.sh        (env: RUNS=30 AGENTS=8 DAYS=30
#        OLD_MS=550 KEEP=DIR SKIP_BUILD=1 AW_VENV=DIR)
# Timing uses hyperfine when installed (installed with apt when missing
# and run as root), else a loop of `date +%s%N`. Everything started here
# (agents, serve, aw-server) is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-30}"
AGENTS="${AGENTS:-8}"
DAYS="${DAYS:-30}"
OLD_MS="${OLD_MS:-550}" # report --range 7d before the model was persisted
AW_VENV="${AW_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/smarttracker-bench/aw-venv}"

die() {
  echo "bench-report: $*" >&2
  exit 1
}
log() { echo "bench-report: $*" >&2; }

# --- prerequisites ---------------------------------------------------------

# Installs Debian packages when run as root; otherwise says what is missing.
apt_install() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    die "missing $*: install it (apt-get install $*) and run again"
  fi
  log "installing $* with apt-get"
  apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$@" >/dev/null; } ||
    die "could not install $*"
}
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || apt_install "$tool"
done
if ! command -v hyperfine >/dev/null && [ "$(id -u)" -eq 0 ]; then
  apt_install hyperfine || true
fi
command -v hyperfine >/dev/null && timer=hyperfine || timer="date +%s%N loop"

if [ -z "${SKIP_BUILD:-}" ]; then
  command -v cargo >/dev/null || die "cargo is missing (scripts/install-deps.sh installs it)"
  log "building the release binaries"
  cargo build --release --locked --bins >&2
fi
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
for b in smarttracker-certs smarttracker-agent smarttracker-console; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing: build with cargo build --release --bins"
done

# aw-server in a venv kept between runs (reinstalled when the pins
# change). aw-server 0.12.0 sets `app.json_encoder`, which Flask 2.3
# ignores (its query answers then fail with "timedelta is not JSON
# serializable"), so Flask stays on 2.2; it needs Werkzeug >= 2.3.3.
aw_pins=(aw-server==0.12.0 aw-core==0.5.13 'peewee<4' flask==2.2.5 werkzeug==2.3.8)
if [ ! -x "$AW_VENV/bin/aw-server" ] || [ "$(cat "$AW_VENV/bench-pins" 2>/dev/null)" != "${aw_pins[*]}" ]; then
  rm -rf "$AW_VENV"
  mkdir -p "$(dirname "$AW_VENV")"
  if ! python3 -m venv "$AW_VENV" >/dev/null 2>&1; then
    rm -rf "$AW_VENV"
    apt_install python3-venv
    python3 -m venv "$AW_VENV" || die "python3 -m venv fails even with python3-venv"
  fi
  log "installing ${aw_pins[*]} into $AW_VENV"
  "$AW_VENV/bin/pip" install -q "${aw_pins[@]}" >&2 ||
    { rm -rf "$AW_VENV"; die "pip could not install aw-server (${aw_pins[*]})"; }
  echo "${aw_pins[*]}" >"$AW_VENV/bench-pins"
fi

# --- cleanup ---------------------------------------------------------------

work="${KEEP:-$(mktemp -d -t smarttracker-bench.XXXXXX)}"
mkdir -p "$work"
pids=()
cleanup() {
  # Every process started here, by its pid; never stop half-way.
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

certs="$bin/smarttracker-certs"
agent="$bin/smarttracker-agent"
console="$bin/smarttracker-console"
data="$work/console"
export SMARTTRACKER_LOG=warn

# --- 1. the demo site ------------------------------------------------------

if [ -f "$work/synced" ]; then
  log "reusing the synced site in $work"
else
  [ -z "$(ls -A "$work")" ] || die "$work is neither empty nor a site this script synced"
  log "site: $AGENTS demo agents x $DAYS days in $work"
  "$certs" init --name "Bench site" --site "$work/site" >/dev/null
  "$certs" console --role admin --name "Bench console" --site "$work/site" \
    --out "$data/identity" >/dev/null
  agent_pids=()
  for i in $(seq -f '%02g' 1 "$AGENTS"); do
    name="pc-$i"
    "$certs" agent --name "$name" --site "$work/site" --out "$work/$name.bundle" >/dev/null
    "$agent" enroll --bundle "$work/$name.bundle" --data "$work/$name" >/dev/null
    "$console" --data "$data" add-agent "$work/$name.bundle" >/dev/null
    # Each its own simulated workstation (seed = its number, as `console
    # demo` does).
    "$agent" run --sensors demo --demo-seed "$((10#$i))" --demo-history-days "$DAYS" --no-mdns \
      --listen 127.0.0.1:0 --data "$work/$name" >/dev/null 2>"$work/$name.log" &
    pids+=($!)
    agent_pids+=($!)
  done
  # Each agent writes its address in its status file once it has flushed;
  # wait until every one has recorded its history.
  peers=()
  for i in $(seq -f '%02g' 1 "$AGENTS"); do
    status="$work/pc-$i/status.json"
    for _ in $(seq 1 3000); do
      if [ -f "$status" ] && [ "$(jq -r '.backfilling' "$status" 2>/dev/null)" = false ]; then
        break
      fi
      kill -0 "${agent_pids[$((10#$i - 1))]}" 2>/dev/null ||
        { cat "$work/pc-$i.log" >&2; die "agent pc-$i exited"; }
      sleep 0.1
    done
    [ "$(jq -r '.backfilling' "$status")" = false ] || die "agent pc-$i never finished its history"
    peers+=(--peer "$(jq -r '.listen' "$status")")
  done
  log "syncing $AGENTS agents"
  # Two passes: the second one finds nothing new unless a stream was over
  # its per-pass budget.
  "$console" --data "$data" sync --once --no-mdns "${peers[@]}" >"$work/sync.log"
  "$console" --data "$data" sync --once --no-mdns "${peers[@]}" >>"$work/sync.log"
  # Stop the agents (SIGTERM, clean exit) before any timing.
  for pid in "${agent_pids[@]}"; do kill -TERM "$pid"; done
  for pid in "${agent_pids[@]}"; do wait "$pid" || true; done
  touch "$work/synced"
fi

# --- timing helpers --------------------------------------------------------

# median_ms NAME CMD...: runs CMD (stdout discarded) RUNS times after 3
# warm-up runs and prints the median wall time in milliseconds.
median_ms() {
  local name="$1"
  shift
  if [ "$timer" = hyperfine ]; then
    # -N: no shell in between, the process itself is timed.
    hyperfine -N --warmup 3 --runs "$RUNS" --style none \
      --export-json "$work/$name.json" -- "$(printf '%q ' "$@")" >/dev/null
    jq -r '.results[0].median * 1000 | . * 10 | round / 10' "$work/$name.json"
  else
    local i start end
    for i in 1 2 3; do "$@" >/dev/null; done
    for i in $(seq 1 "$RUNS"); do
      start=$(date +%s%N)
      "$@" >/dev/null
      end=$(date +%s%N)
      echo $(((end - start) / 1000))
    done | sort -n | awk '{ a[NR] = $1 } END {
      m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
      printf "%.1f\n", m / 1000 }'
  fi
}

# --- 2. SmartTracker report ------------------------------------------------

"$console" --data "$data" report --range 7d >"$work/report-7d.txt"
grep -q . "$work/report-7d.txt" || die "report --range 7d printed nothing"
log "timing report ($timer, $RUNS runs each)"
st7=$(median_ms st7 "$console" --data "$data" report --range 7d)
st30=$(median_ms st30 "$console" --data "$data" report --range 30d)

# The same with `serve` running: the CLI attaches over DATA/console.sock.
# No mDNS, and a background sync only once a day (the agents are stopped).
"$console" --data "$data" serve --no-mdns --sync-interval-secs 86400 2>"$work/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
for _ in $(seq 1 300); do
  [ -S "$data/console.sock" ] && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; die "serve exited"; }
  sleep 0.1
done
[ -S "$data/console.sock" ] || die "serve never opened $data/console.sock"
# Let its first background sync pass (agents unreachable) finish.
sleep 5
"$console" --data "$data" report --range 7d >"$work/report-7d-serve.txt"
cmp -s "$work/report-7d.txt" "$work/report-7d-serve.txt" ||
  log "note: the report attached to serve differs from the direct one (the clock moved?)"
st7s=$(median_ms st7s "$console" --data "$data" report --range 7d)
st30s=$(median_ms st30s "$console" --data "$data" report --range 30d)
kill -TERM "$serve_pid"
wait "$serve_pid" || true

# --- 3. aw-server baseline -------------------------------------------------

# The usage spans of one workstation (the first agent in the export).
today=$(date -u +%F)
"$console" --data "$data" export usage --format jsonl \
  --from "$(date -u -d "$today - $((DAYS + 1)) days" +%F)" --to "$today" >"$work/usage.jsonl"
first_agent=$(head -n 1 "$work/usage.jsonl" | jq -r .agent)
[ -n "$first_agent" ] && [ "$first_agent" != null ] || die "export usage gave no spans"

aw_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
aw_url="http://127.0.0.1:$aw_port/api/0"
# Its database, config and logs under $work (appdirs follows XDG).
XDG_DATA_HOME="$work/aw/data" XDG_CONFIG_HOME="$work/aw/config" XDG_CACHE_HOME="$work/aw/cache" \
  "$AW_VENV/bin/aw-server" --host 127.0.0.1 --port "$aw_port" >"$work/aw-server.log" 2>&1 &
aw_pid=$!
pids+=("$aw_pid")
for _ in $(seq 1 300); do
  curl -sf "$aw_url/info" >/dev/null && break
  kill -0 "$aw_pid" 2>/dev/null || { tail -n 30 "$work/aw-server.log" >&2; die "aw-server exited"; }
  sleep 0.1
done
curl -sf "$aw_url/info" >/dev/null || die "aw-server never answered on $aw_url"

bucket="aw-watcher-window_pc-01"
curl -sf -X POST -H 'Content-Type: application/json' "$aw_url/buckets/$bucket" \
  -d '{"client": "aw-watcher-window", "type": "currentwindow", "hostname": "pc-01"}' >/dev/null ||
  die "aw-server refused to create bucket $bucket"
# Spans -> events (exact milliseconds), posted in batches of 5,000 (one
# batch insert each).
"$AW_VENV/bin/python" - "$work/usage.jsonl" "$first_agent" "$work/aw-batch" <<'PY'
import datetime, json, sys
src, agent, prefix = sys.argv[1:]
events = []
for line in open(src):
    row = json.loads(line)
    if row["agent"] != agent:
        continue
    start = datetime.datetime.fromtimestamp(row["start_ms"] / 1000, datetime.timezone.utc)
    events.append({
        "timestamp": start.isoformat(timespec="milliseconds"),
        "duration": (row["end_ms"] - row["start_ms"]) / 1000,
        "data": {"app": row["app"], "title": ""},
    })
for n in range(0, len(events), 5000):
    with open(f"{prefix}-{n // 5000:04}.json", "w") as out:
        json.dump(events[n:n + 5000], out)
print(len(events), file=sys.stderr)
PY
for batch in "$work"/aw-batch-*.json; do
  curl -sf -X POST -H 'Content-Type: application/json' --data-binary "@$batch" \
    "$aw_url/buckets/$bucket/events" >/dev/null || die "aw-server refused $batch"
done
spans=$(jq -c "select(.agent == \"$first_agent\")" "$work/usage.jsonl" | wc -l)
stored=$(curl -sf "$aw_url/buckets/$bucket/events/count")
[ "$stored" -eq "$spans" ] || die "aw-server holds $stored events, $spans were sent"

# The same site days as `report --range Nd`: N days up to today, UTC.
query_file() { # query_file DAYS FILE
  local from to
  from=$(date -u -d "$today - $(($1 - 1)) days" +%FT00:00:00+00:00)
  to=$(date -u -d "$today + 1 day" +%FT00:00:00+00:00)
  jq -n --arg period "$from/$to" --arg bucket "$bucket" '{
    timeperiods: [$period],
    query: [
      "events = query_bucket(\"" + $bucket + "\");",
      "events = merge_events_by_keys(events, [\"app\"]);",
      "RETURN = sort_by_duration(events);"
    ]}' >"$2"
}
query_file 7 "$work/q7.json"
query_file 30 "$work/q30.json"
curl -sf -X POST -H 'Content-Type: application/json' --data-binary "@$work/q7.json" \
  "$aw_url/query/" >"$work/aw-7d.json" || die "aw-server refused the query"
aw_apps=$(jq '.[0] | length' "$work/aw-7d.json")
aw_hours=$(jq '[.[0][].duration] | add / 3600 | . * 10 | round / 10' "$work/aw-7d.json")
log "aw-server: $stored events of $first_agent; 7 days: $aw_apps apps, $aw_hours h"
# The whole HTTP request, as a client would make it.
post=(curl -sf -o /dev/null -X POST -H 'Content-Type: application/json')
aw7=$(median_ms aw7 "${post[@]}" --data-binary "@$work/q7.json" "$aw_url/query/")
aw30=$(median_ms aw30 "${post[@]}" --data-binary "@$work/q30.json" "$aw_url/query/")

# --- 4. the table ----------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
echo
echo "report benchmark: $AGENTS agents x $DAYS days, median of $RUNS runs ($timer), $(nproc) cores"
echo "aw-server 0.12.0: one workstation's $stored usage spans as currentwindow events"
printf '%-46s %10s %14s %12s\n' "what" "median ms" "/ aw-server" "/ ${OLD_MS} ms"
printf '%-46s %10s %14s %12s\n' "report --range 7d (own process)" "$st7" "$(ratio "$st7" "$aw7")" "$(ratio "$st7" "$OLD_MS")"
printf '%-46s %10s %14s %12s\n' "report --range 7d (attached to serve)" "$st7s" "$(ratio "$st7s" "$aw7")" "$(ratio "$st7s" "$OLD_MS")"
printf '%-46s %10s %14s %12s\n' "report --range 30d (own process)" "$st30" "$(ratio "$st30" "$aw30")" "-"
printf '%-46s %10s %14s %12s\n' "report --range 30d (attached to serve)" "$st30s" "$(ratio "$st30s" "$aw30")" "-"
printf '%-46s %10s %14s %12s\n' "aw-server per-app query 7d (1 workstation)" "$aw7" "1.00x" "-"
printf '%-46s %10s %14s %12s\n' "aw-server per-app query 30d (1 workstation)" "$aw30" "1.00x" "-"
echo "(SmartTracker's report covers all $AGENTS workstations; aw-server's query one. Old figure: report 7d before the category model was persisted.)"
