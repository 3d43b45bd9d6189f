//! Console store benchmark: a fleet's records ingested as sync would (100
//! agents, interleaved batches of 500 of one stream each), through the
//! block store with rollups versus a naive pipeline (one sled key per
//! record, its own cursor write per batch), then dashboard queries on both.
//!
//! `cargo bench -p smarttracker-console --bench store [-- --records N]`
//!
//! The same run times the console's ingest validation (`validate::check`
//! and the text caps) over every record of the workload and prints it as
//! a share of the store's ingest time: the checks must stay a small part
//! of what ingest costs.
//!
//! Each variant runs in its own child process (this binary re-executed with
//! `--child`) and fresh temporary directory, so its peak RSS (`VmHWM`) is
//! its own. Both flush after every batch (records must be durable before
//! the ack) and use the same sled cache size. Figures are printed, never
//! asserted.

use std::collections::HashMap;
use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use console_engine::model::{self, AgentId, DayClock, DayNumber, Stored, DAY_MS};
use console_engine::store::{ConsoleStore, SLED_CACHE_CAPACITY_BYTES};
use console_engine::validate;
use protocol::{
    ActivitySpan, DiskUsage, HealthLevel, HealthSample, Presence, ProcessUsage, Record,
    RecordBatch, SeqRecord, SessionEvent, SessionEventKind, StreamKind, UsageSpan,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const DEFAULT_RECORDS: u64 = 1_000_000;
const AGENTS: u64 = 100;
const BATCH_RECORDS: u64 = 500;
/// Streams of successive batch rounds: 70 % usage, 15 % sessions, 15 %
/// health.
const STREAM_PATTERN: [StreamKind; 20] = {
    let mut pattern = [StreamKind::Usage; 20];
    let mut i = 14;
    while i < 20 {
        pattern[i] = if i < 17 {
            StreamKind::Sessions
        } else {
            StreamKind::Health
        };
        i += 1;
    }
    pattern
};
const SEED: u64 = 0x5eed_c0de;
/// Europe/Paris, daylight saving included.
fn paris() -> &'static DayClock {
    static PARIS: std::sync::LazyLock<DayClock> = std::sync::LazyLock::new(|| {
        DayClock::from_name("Europe/Paris").expect("Europe/Paris is in the tz database")
    });
    &PARIS
}
/// 2026-03-02 00:00 in Paris.
const DAY0_START_MS: i64 = 1_772_406_000_000;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
/// Workday in local time.
const WORK_START_MS: i64 = 8 * HOUR_MS;
const WORK_END_MS: i64 = 18 * HOUR_MS;
const EPOCH: u64 = 0xBEEF;
const FLEET_DAYS: i32 = 30;
/// The console's clock while it ingests: after every generated record.
const INGEST_NOW_MS: i64 = DAY0_START_MS + (FLEET_DAYS as i64 + 30) * DAY_MS;
/// The day whose top apps are queried, counted from day 0.
const QUERY_DAY: i32 = 5;
const TOP_APPS_RUNS: usize = 100;
const FLEET_RUNS: usize = 5;
const APPS: [(&str, &str); 12] = [
    ("Firefox", "firefox-esr"),
    ("Visual Studio Code", "code"),
    ("Terminal", "gnome-terminal-server"),
    ("LibreOffice Calc", "soffice.bin"),
    ("LibreOffice Writer", "soffice.bin"),
    ("Thunderbird", "thunderbird"),
    ("Slack", "slack"),
    ("Files", "nautilus"),
    ("Zoom", "zoom"),
    ("GIMP", "gimp-2.10"),
    ("Evince", "evince"),
    ("Settings", "gnome-control-center"),
];
const PROCESSES: [&str; 5] = ["firefox", "code", "Xorg", "gnome-shell", "slack"];

fn agent_id(index: u64) -> AgentId {
    AgentId::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 | u128::from(index))
}

/// One stream of one simulated workstation, in time order.
struct StreamGen {
    rng: StdRng,
    seq: u64,
    now_ms: i64,
    active: bool,
}

impl StreamGen {
    fn new(agent: u64, stream: StreamKind) -> Self {
        let stream_index = StreamKind::ALL
            .iter()
            .position(|kind| *kind == stream)
            .unwrap_or(0) as u64;
        let mut rng = StdRng::seed_from_u64(SEED ^ (agent << 8) ^ stream_index);
        let now_ms = DAY0_START_MS + WORK_START_MS + rng.gen_range(0..30 * MINUTE_MS);
        StreamGen {
            rng,
            seq: 0,
            now_ms,
            active: true,
        }
    }

    /// Moves to the next workday morning once the workday is over.
    fn within_workday(&mut self) {
        let time_of_day_ms = (self.now_ms - DAY0_START_MS).rem_euclid(DAY_MS);
        if time_of_day_ms >= WORK_END_MS {
            self.now_ms +=
                DAY_MS - time_of_day_ms + WORK_START_MS + self.rng.gen_range(0..30 * MINUTE_MS);
        }
    }

    fn next(&mut self, stream: StreamKind) -> SeqRecord {
        self.seq += 1;
        let record = match stream {
            StreamKind::Usage => self.usage(),
            StreamKind::Sessions => self.session(),
            StreamKind::Health | StreamKind::Frames => self.health(),
        };
        SeqRecord {
            seq: self.seq,
            record,
        }
    }

    fn usage(&mut self) -> Record {
        self.within_workday();
        // Skewed app choice: a few apps take most of the day.
        let pick = self.rng.gen_range(0..APPS.len() * APPS.len());
        let (app, raw_app) = APPS[pick.isqrt()];
        let start_ms = self.now_ms;
        let end_ms = start_ms + self.rng.gen_range(10_000..290_000);
        self.now_ms = end_ms + self.rng.gen_range(0..30_000);
        Record::Usage(UsageSpan {
            start_ms,
            end_ms,
            app: app.to_owned(),
            raw_app: raw_app.to_owned(),
            title: None,
        })
    }

    fn session(&mut self) -> Record {
        self.within_workday();
        if self.seq.is_multiple_of(10) {
            self.active = !self.active;
            return Record::Session(SessionEvent {
                at_ms: self.now_ms,
                kind: if self.active {
                    SessionEventKind::Unlock
                } else {
                    SessionEventKind::Lock
                },
                user: "marie.dupont".to_owned(),
            });
        }
        let start_ms = self.now_ms;
        // The agent cuts presence spans at 5 minutes.
        self.now_ms += self.rng.gen_range(MINUTE_MS..5 * MINUTE_MS);
        let presence = if !self.active {
            Presence::Locked
        } else if self.rng.gen_range(0..4) == 0 {
            Presence::Idle
        } else {
            Presence::Active
        };
        Record::Activity(ActivitySpan {
            start_ms,
            end_ms: self.now_ms,
            presence,
            user: "marie.dupont".to_owned(),
        })
    }

    fn health(&mut self) -> Record {
        self.now_ms += MINUTE_MS;
        let gib = 1_u64 << 30;
        let cpu_pct: f32 = self.rng.gen_range(0.0..100.0);
        let top_processes = PROCESSES
            .iter()
            .map(|name| ProcessUsage {
                name: (*name).to_owned(),
                cpu_pct: self.rng.gen_range(0.0..40.0),
                mem_bytes: self.rng.gen_range(50_000_000..2_000_000_000),
            })
            .collect();
        Record::Health(HealthSample {
            at_ms: self.now_ms,
            cpu_pct,
            mem_used_bytes: self.rng.gen_range(2 * gib..14 * gib),
            mem_total_bytes: 16 * gib,
            swap_used_bytes: self.rng.gen_range(0..gib),
            swap_total_bytes: 2 * gib,
            disks: vec![
                DiskUsage {
                    mount: "/".to_owned(),
                    used_bytes: self.rng.gen_range(50 * gib..400 * gib),
                    total_bytes: 500 * gib,
                },
                DiskUsage {
                    mount: "/home".to_owned(),
                    used_bytes: self.rng.gen_range(100 * gib..900 * gib),
                    total_bytes: 1_000 * gib,
                },
            ],
            uptime_secs: self.seq * 60,
            load_avg: [cpu_pct / 25.0, cpu_pct / 30.0, cpu_pct / 35.0],
            top_processes,
            score: self.rng.gen_range(40..=100),
            level: HealthLevel::Ok,
        })
    }
}

/// The fleet's batches in the order sync would take them: agents in turn,
/// each round on one stream.
struct Workload {
    gens: Vec<[StreamGen; 3]>,
    remaining: u64,
    batch_index: u64,
}

impl Workload {
    fn new(records: u64) -> Self {
        Workload {
            gens: (0..AGENTS)
                .map(|agent| {
                    [
                        StreamGen::new(agent, StreamKind::Usage),
                        StreamGen::new(agent, StreamKind::Sessions),
                        StreamGen::new(agent, StreamKind::Health),
                    ]
                })
                .collect(),
            remaining: records,
            batch_index: 0,
        }
    }
}

impl Iterator for Workload {
    type Item = (AgentId, RecordBatch);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let agent = self.batch_index % AGENTS;
        let stream = STREAM_PATTERN[((self.batch_index / AGENTS) % 20) as usize];
        self.batch_index += 1;
        let count = BATCH_RECORDS.min(self.remaining);
        self.remaining -= count;
        let slot = match stream {
            StreamKind::Usage => 0,
            StreamKind::Sessions => 1,
            StreamKind::Health | StreamKind::Frames => 2,
        };
        let generator = &mut self.gens[agent as usize][slot];
        let records = (0..count).map(|_| generator.next(stream)).collect();
        Some((
            agent_id(agent),
            RecordBatch {
                stream,
                epoch: EPOCH,
                records,
                more: true,
            },
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Naive,
    Store,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Naive => "naive",
            Variant::Store => "store",
        }
    }

    fn parse(name: &str) -> BenchResult<Self> {
        match name {
            "naive" => Ok(Variant::Naive),
            "store" => Ok(Variant::Store),
            other => Err(format!("unknown variant {other:?}").into()),
        }
    }
}

/// What one child process measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    ingest: Duration,
    peak_rss_bytes: u64,
    disk_bytes: u64,
    top_apps: Duration,
    fleet: Duration,
}

struct Args {
    records: u64,
    child: Option<(Variant, String)>,
}

fn parse_args() -> BenchResult<Args> {
    let mut args = Args {
        records: DEFAULT_RECORDS,
        child: None,
    };
    let mut variant = None;
    let mut dir = None;
    let mut rest = std::env::args().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--records" => {
                args.records = rest.next().ok_or("--records needs a number")?.parse()?;
            }
            "--child" => {
                variant = Some(Variant::parse(
                    &rest.next().ok_or("--child needs a variant")?,
                )?)
            }
            "--dir" => dir = Some(rest.next().ok_or("--dir needs a path")?),
            // `cargo bench` passes `--bench`; filters and other flags do not apply.
            _ => {}
        }
    }
    if let (Some(variant), Some(dir)) = (variant, dir) {
        args.child = Some((variant, dir));
    }
    Ok(args)
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn proc_status_bytes(field: &str) -> BenchResult<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .ok_or_else(|| format!("{field} missing from /proc/self/status"))?;
    let kib: u64 = line
        .trim_start_matches(field)
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// Allocated size of a directory tree, as `du` counts it.
fn du_bytes(path: &Path) -> BenchResult<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() {
            du_bytes(&entry.path())?
        } else {
            metadata.blocks() * 512
        };
    }
    Ok(total)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Runs `query` once to warm caches, then `runs` times; the median time.
fn time_query<T>(runs: usize, mut query: impl FnMut() -> BenchResult<T>) -> BenchResult<Duration> {
    std::hint::black_box(query()?);
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(query()?);
        samples.push(started.elapsed());
    }
    Ok(median(samples))
}

/// Apps sorted by time, largest first.
fn top_apps(totals: HashMap<String, i64>) -> Vec<(String, i64)> {
    let mut apps: Vec<(String, i64)> = totals.into_iter().collect();
    apps.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    apps
}

fn query_day() -> DayNumber {
    paris().day_of(DAY0_START_MS) + QUERY_DAY
}

/// Per-app fleet totals and per-agent active totals over the fleet days.
type FleetSummary = (Vec<(String, i64)>, HashMap<AgentId, i64>);

fn run_store(dir: &Path, records: u64) -> BenchResult<Measured> {
    let store = ConsoleStore::open(dir, paris().clone())?;
    let started = Instant::now();
    for (agent, batch) in Workload::new(records) {
        let report = store.ingest(agent, &batch, INGEST_NOW_MS)?;
        if report.stored_records != batch.records.len() as u64 {
            return Err(format!("stored {report:?} of {}", batch.records.len()).into());
        }
    }
    let ingest = started.elapsed();
    let peak_rss_bytes = proc_status_bytes("VmHWM")?;

    let day = query_day();
    let first = agent_id(0);
    let top_apps_time = time_query(TOP_APPS_RUNS, || {
        let mut totals = HashMap::new();
        for total in store.app_day_totals(Some(first), day, day)? {
            *totals.entry(total.app).or_default() += total.active_ms;
        }
        Ok(top_apps(totals))
    })?;
    let day0 = paris().day_of(DAY0_START_MS);
    let fleet = time_query(FLEET_RUNS, || -> BenchResult<FleetSummary> {
        let mut apps = HashMap::new();
        let mut agents = HashMap::new();
        for total in store.app_day_totals(None, day0, day0 + FLEET_DAYS - 1)? {
            *agents.entry(total.agent).or_default() += total.active_ms;
            *apps.entry(total.app).or_default() += total.active_ms;
        }
        Ok((top_apps(apps), agents))
    })?;
    drop(store);
    Ok(Measured {
        ingest,
        peak_rss_bytes,
        disk_bytes: du_bytes(dir)?,
        top_apps: top_apps_time,
        fleet,
    })
}

/// The naive key: `[kind][agent][start_ms sign-flipped][seq]`, time-ordered
/// like the store's blocks, one record per value.
fn naive_key(tag: u8, agent: AgentId, start_ms: i64, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(tag);
    key.extend_from_slice(agent.as_bytes());
    key.extend_from_slice(&((start_ms as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

const NAIVE_USAGE_TAG: u8 = 1;

/// Usage seconds per app of `agent` from raw per-record values of days
/// `[from_ms, to_ms)`.
fn naive_usage(
    tree: &sled::Tree,
    agent: AgentId,
    from_ms: i64,
    to_ms: i64,
    totals: &mut HashMap<String, i64>,
) -> BenchResult<i64> {
    let config = bincode::config::standard();
    let mut agent_ms = 0;
    let range =
        naive_key(NAIVE_USAGE_TAG, agent, from_ms, 0)..naive_key(NAIVE_USAGE_TAG, agent, to_ms, 0);
    for item in tree.range(range) {
        let (_, value) = item?;
        let (stored, _): (Stored, usize) = bincode::serde::decode_from_slice(&value, config)?;
        if let Stored::Usage(span) = stored {
            let ms = span.end_ms.min(to_ms) - span.start_ms.max(from_ms);
            agent_ms += ms;
            *totals.entry(span.app).or_default() += ms;
        }
    }
    Ok(agent_ms)
}

fn run_naive(dir: &Path, records: u64) -> BenchResult<Measured> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(SLED_CACHE_CAPACITY_BYTES)
        .open()?;
    let tree = db.open_tree("records")?;
    let config = bincode::config::standard();
    let started = Instant::now();
    for (agent, batch) in Workload::new(records) {
        let mut last_seq = 0;
        for record in &batch.records {
            let Some(stored) = model::from_wire(agent, &record.record) else {
                continue;
            };
            let (tag, start_ms) = match &stored {
                Stored::Usage(span) => (NAIVE_USAGE_TAG, span.start_ms),
                Stored::Activity(span) => (2, span.start_ms),
                Stored::Session(event) => (3, event.at_ms),
                Stored::Health(point) => (4, point.at_ms),
                Stored::Gap(_) => (5, DAY0_START_MS),
            };
            let value = bincode::serde::encode_to_vec(&stored, config)?;
            tree.insert(naive_key(tag, agent, start_ms, record.seq), value)?;
            last_seq = record.seq;
        }
        let mut cursor_key = vec![b'C'];
        cursor_key.extend_from_slice(agent.as_bytes());
        cursor_key.push(batch.stream as u8);
        let mut cursor = batch.epoch.to_be_bytes().to_vec();
        cursor.extend_from_slice(&last_seq.to_be_bytes());
        tree.insert(cursor_key, cursor)?;
        db.flush()?;
    }
    let ingest = started.elapsed();
    let peak_rss_bytes = proc_status_bytes("VmHWM")?;

    let day_start_ms = paris().day_start_ms(query_day());
    let first = agent_id(0);
    let top_apps_time = time_query(TOP_APPS_RUNS, || {
        let mut totals = HashMap::new();
        naive_usage(
            &tree,
            first,
            day_start_ms,
            day_start_ms + DAY_MS,
            &mut totals,
        )?;
        Ok(top_apps(totals))
    })?;
    let fleet_from_ms = DAY0_START_MS;
    let fleet_to_ms = DAY0_START_MS + i64::from(FLEET_DAYS) * DAY_MS;
    let fleet = time_query(FLEET_RUNS, || -> BenchResult<FleetSummary> {
        let mut apps = HashMap::new();
        let mut agents = HashMap::new();
        for index in 0..AGENTS {
            let agent = agent_id(index);
            let agent_ms = naive_usage(&tree, agent, fleet_from_ms, fleet_to_ms, &mut apps)?;
            agents.insert(agent, agent_ms);
        }
        Ok((top_apps(apps), agents))
    })?;
    drop(tree);
    drop(db);
    Ok(Measured {
        ingest,
        peak_rss_bytes,
        disk_bytes: du_bytes(dir)?,
        top_apps: top_apps_time,
        fleet,
    })
}

fn run_child(variant: Variant, dir: &str, records: u64) -> BenchResult<()> {
    let dir = Path::new(dir);
    let measured = match variant {
        Variant::Naive => run_naive(dir, records)?,
        Variant::Store => run_store(dir, records)?,
    };
    println!(
        "result {} {} {} {} {}",
        measured.ingest.as_nanos(),
        measured.peak_rss_bytes,
        measured.disk_bytes,
        measured.top_apps.as_nanos(),
        measured.fleet.as_nanos(),
    );
    Ok(())
}

fn spawn_child(variant: Variant, records: u64) -> BenchResult<Measured> {
    let dir = tempfile::tempdir()?;
    let output = Command::new(std::env::current_exe()?)
        .arg("--child")
        .arg(variant.name())
        .arg("--dir")
        .arg(dir.path())
        .arg("--records")
        .arg(records.to_string())
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "{} child failed ({}): {}",
            variant.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("result "))
        .ok_or_else(|| format!("{} child printed no result", variant.name()))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [ingest_ns, peak_rss_bytes, disk_bytes, top_apps_ns, fleet_ns] = fields[..] else {
        return Err(format!("bad result line {line:?}").into());
    };
    Ok(Measured {
        ingest: Duration::from_nanos(ingest_ns),
        peak_rss_bytes,
        disk_bytes,
        top_apps: Duration::from_nanos(top_apps_ns),
        fleet: Duration::from_nanos(fleet_ns),
    })
}

/// Bytes of the wire records themselves, bincode-encoded one by one, and
/// the number of records per stream.
fn payload(records: u64) -> BenchResult<(u64, [u64; 3])> {
    let config = bincode::config::standard();
    let mut bytes = 0;
    let mut per_stream = [0; 3];
    for (_, batch) in Workload::new(records) {
        let slot = match batch.stream {
            StreamKind::Usage => 0,
            StreamKind::Sessions => 1,
            StreamKind::Health | StreamKind::Frames => 2,
        };
        per_stream[slot] += batch.records.len() as u64;
        for record in &batch.records {
            bytes += bincode::serde::encode_to_vec(record, config)?.len() as u64;
        }
    }
    Ok((bytes, per_stream))
}

/// Time spent checking every record of the workload as ingest does
/// (`validate::check`, then the text caps of `model::from_wire`), batch
/// generation excluded, and the number of records refused (0 expected).
fn validation_time(records: u64) -> (Duration, u64) {
    let mut spent = Duration::ZERO;
    let mut refused = 0;
    for (_, batch) in Workload::new(records) {
        let started = Instant::now();
        for record in &batch.records {
            if validate::check(batch.stream, record, INGEST_NOW_MS).is_err() {
                refused += 1;
                continue;
            }
            let capped = match &record.record {
                Record::Usage(span) => {
                    let app = validate::cap_text(&span.app, validate::MAX_APP_BYTES);
                    let title = span
                        .title
                        .as_deref()
                        .map(|title| validate::cap_text(title, validate::MAX_TITLE_BYTES));
                    app.len() + title.map_or(0, |title| title.len())
                }
                Record::Activity(span) => {
                    validate::cap_text(&span.user, validate::MAX_USER_BYTES).len()
                }
                Record::Session(event) => {
                    validate::cap_text(&event.user, validate::MAX_USER_BYTES).len()
                }
                _ => 0,
            };
            std::hint::black_box(capped);
        }
        spent += started.elapsed();
    }
    (spent, refused)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    numerator / denominator.max(f64::MIN_POSITIVE)
}

fn main() -> BenchResult<()> {
    // `cargo nextest --all-targets` lists every target with `--list`: a
    // bench binary holds no tests, so it lists none.
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let args = parse_args()?;
    if let Some((variant, dir)) = &args.child {
        return run_child(*variant, dir, args.records);
    }
    let records = args.records;
    let (payload_bytes, [usage, sessions, health]) = payload(records)?;
    println!(
        "console store: {records} records from {AGENTS} agents in interleaved batches of \
         {BATCH_RECORDS} ({usage} usage, {sessions} sessions, {health} health), flush per \
         batch, payload {:.1} MiB bincode, sled cache {} MiB",
        mib(payload_bytes),
        SLED_CACHE_CAPACITY_BYTES / (1024 * 1024),
    );
    let naive = spawn_child(Variant::Naive, records)?;
    let store = spawn_child(Variant::Store, records)?;
    let (validation, refused) = validation_time(records);
    println!(
        "{:<8} {:>8} {:>11} {:>13} {:>9} {:>13} {:>17} {:>14}",
        "variant",
        "wall s",
        "records/s",
        "peak RSS MiB",
        "disk MiB",
        "disk/payload",
        "top apps med µs",
        "fleet 30d ms"
    );
    for (variant, measured) in [(Variant::Naive, naive), (Variant::Store, store)] {
        let seconds = measured.ingest.as_secs_f64();
        println!(
            "{:<8} {:>8.2} {:>11.0} {:>13.1} {:>9.1} {:>13.2} {:>17.1} {:>14.2}",
            variant.name(),
            seconds,
            records as f64 / seconds,
            mib(measured.peak_rss_bytes),
            mib(measured.disk_bytes),
            ratio(measured.disk_bytes as f64, payload_bytes as f64),
            measured.top_apps.as_secs_f64() * 1e6,
            measured.fleet.as_secs_f64() * 1e3,
        );
    }
    println!(
        "store vs naive: ingest {:.1}x faster, peak RSS {:.1}x smaller, disk {:.1}x smaller, \
         top apps {:.1}x faster, fleet summary {:.1}x faster",
        ratio(naive.ingest.as_secs_f64(), store.ingest.as_secs_f64()),
        ratio(naive.peak_rss_bytes as f64, store.peak_rss_bytes as f64),
        ratio(naive.disk_bytes as f64, store.disk_bytes as f64),
        ratio(naive.top_apps.as_secs_f64(), store.top_apps.as_secs_f64()),
        ratio(naive.fleet.as_secs_f64(), store.fleet.as_secs_f64()),
    );
    let store_rate = records as f64 / store.ingest.as_secs_f64();
    let validation_rate = records as f64 / validation.as_secs_f64().max(f64::MIN_POSITIVE);
    println!(
        "ingest validation (check + text caps): {:.0} ns/record, {validation_rate:.0} records/s \
         vs the store's ingest {store_rate:.0} records/s (validation included): {:.2} % of \
         ingest time ({refused} of {records} refused)",
        validation.as_nanos() as f64 / records as f64,
        100.0 * ratio(validation.as_secs_f64(), store.ingest.as_secs_f64()),
    );
    Ok(())
}
