//! Ingest benchmark: mixed usage spans and health samples through the block
//! store versus a naive baseline (one sled key per record), in one run.
//!
//! `cargo bench -p smarttracker-agent --bench store_ingest [-- --records N]`
//!
//! Each variant runs in its own child process (this binary re-executed with
//! `--child`) and its own fresh temporary directory, so the process-wide
//! peak RSS (`VmHWM`) belongs to that variant alone. Both flush every
//! `FLUSH_EVERY` records and use the same sled cache size. Figures are
//! printed, never asserted.

use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use agent::store::{Quotas, Store, SLED_CACHE_CAPACITY_BYTES};
use protocol::{
    DiskUsage, HealthLevel, HealthSample, ProcessUsage, Record, SeqRecord, StreamKind, UsageSpan,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const DEFAULT_RECORDS: u64 = 1_000_000;
const FLUSH_EVERY: u64 = 1_000;
/// One health sample for every this many records; the rest are usage.
const HEALTH_EVERY: u64 = 5;
const SEED: u64 = 0x5eed_0001;
/// 2026-03-02 08:00:00 UTC.
const T0_MS: i64 = 1_772_438_400_000;
const APPS: [(&str, &str); 10] = [
    ("Firefox", "firefox-esr"),
    ("Visual Studio Code", "code"),
    ("Terminal", "gnome-terminal-server"),
    ("LibreOffice Calc", "soffice.bin"),
    ("Thunderbird", "thunderbird"),
    ("Slack", "slack"),
    ("Files", "nautilus"),
    ("Zoom", "zoom"),
    ("GIMP", "gimp-2.10"),
    ("Evince", "evince"),
];
const PROCESSES: [&str; 6] = ["firefox", "code", "Xorg", "gnome-shell", "slack", "zoom"];

/// Deterministic stream of realistic records with their timestamps.
struct Workload {
    rng: StdRng,
    produced: u64,
    now_ms: i64,
}

impl Workload {
    fn new() -> Self {
        Workload {
            rng: StdRng::seed_from_u64(SEED),
            produced: 0,
            now_ms: T0_MS,
        }
    }

    fn next_record(&mut self) -> (StreamKind, Record, i64) {
        self.produced += 1;
        if self.produced.is_multiple_of(HEALTH_EVERY) {
            return (StreamKind::Health, self.health(), self.now_ms);
        }
        let (app, raw_app) = APPS[self.rng.gen_range(0..APPS.len())];
        let start_ms = self.now_ms;
        self.now_ms += self.rng.gen_range(2_000..120_000);
        let record = Record::Usage(UsageSpan {
            start_ms,
            end_ms: self.now_ms,
            app: app.to_owned(),
            raw_app: raw_app.to_owned(),
            title: None,
        });
        (StreamKind::Usage, record, self.now_ms)
    }

    fn health(&mut self) -> Record {
        let gib = 1_u64 << 30;
        let top_processes = PROCESSES[..5]
            .iter()
            .map(|name| ProcessUsage {
                name: (*name).to_owned(),
                cpu_pct: self.rng.gen_range(0.0..40.0),
                mem_bytes: self.rng.gen_range(50_000_000..2_000_000_000),
            })
            .collect();
        let cpu_pct: f32 = self.rng.gen_range(0.0..100.0);
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
            uptime_secs: u64::try_from((self.now_ms - T0_MS) / 1_000).unwrap_or(0),
            load_avg: [cpu_pct / 25.0, cpu_pct / 30.0, cpu_pct / 35.0],
            top_processes,
            score: self.rng.gen_range(40..=100),
            level: HealthLevel::Ok,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Baseline,
    Store,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Baseline => "baseline",
            Variant::Store => "store",
        }
    }

    fn parse(name: &str) -> BenchResult<Self> {
        match name {
            "baseline" => Ok(Variant::Baseline),
            "store" => Ok(Variant::Store),
            other => Err(format!("unknown variant {other:?}").into()),
        }
    }
}

/// What one child process measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    wall: Duration,
    rss_growth_bytes: u64,
    disk_bytes: u64,
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

fn ingest_store(dir: &Path, records: u64) -> BenchResult<Duration> {
    let unlimited = Quotas {
        usage_bytes: u64::MAX,
        sessions_bytes: u64::MAX,
        health_bytes: u64::MAX,
        frames_bytes: u64::MAX,
        access_entries: u64::MAX,
        ..Quotas::default()
    };
    let store = Store::open(dir, unlimited)?;
    let mut workload = Workload::new();
    let started = Instant::now();
    for i in 1..=records {
        let (stream, record, at_ms) = workload.next_record();
        store.append(stream, record, at_ms);
        if i.is_multiple_of(FLUSH_EVERY) {
            store.flush()?;
        }
    }
    let heads = store.flush()?;
    let wall = started.elapsed();
    let stored = heads.seqs.iter().map(|(_, seq)| *seq).sum::<u64>();
    if stored != records {
        return Err(format!("store reports {stored} records, expected {records}").into());
    }
    Ok(wall)
}

fn ingest_baseline(dir: &Path, records: u64) -> BenchResult<Duration> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(SLED_CACHE_CAPACITY_BYTES)
        .open()?;
    let tree = db.open_tree("records")?;
    let config = bincode::config::standard();
    let mut workload = Workload::new();
    let mut seqs = [0_u64; 4];
    let started = Instant::now();
    for i in 1..=records {
        let (stream, record, _) = workload.next_record();
        let tag = StreamKind::ALL
            .iter()
            .position(|kind| *kind == stream)
            .ok_or("stream missing from StreamKind::ALL")?;
        seqs[tag] += 1;
        let seq = seqs[tag];
        let mut key = [0_u8; 9];
        key[0] = u8::try_from(tag)?;
        key[1..].copy_from_slice(&seq.to_be_bytes());
        let value = bincode::serde::encode_to_vec(SeqRecord { seq, record }, config)?;
        tree.insert(key, value)?;
        if i.is_multiple_of(FLUSH_EVERY) {
            db.flush()?;
        }
    }
    db.flush()?;
    Ok(started.elapsed())
}

fn run_child(variant: Variant, dir: &str, records: u64) -> BenchResult<()> {
    let dir = Path::new(dir);
    let rss_before_bytes = proc_status_bytes("VmRSS")?;
    let wall = match variant {
        Variant::Baseline => ingest_baseline(dir, records)?,
        Variant::Store => ingest_store(dir, records)?,
    };
    let peak_bytes = proc_status_bytes("VmHWM")?;
    // The database is closed here, so its files are complete.
    let disk_bytes = du_bytes(dir)?;
    println!(
        "result {} {} {}",
        wall.as_nanos(),
        peak_bytes.saturating_sub(rss_before_bytes),
        disk_bytes
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
    let [wall_ns, rss_growth_bytes, disk_bytes] = fields[..] else {
        return Err(format!("bad result line {line:?}").into());
    };
    Ok(Measured {
        wall: Duration::from_nanos(wall_ns),
        rss_growth_bytes,
        disk_bytes,
    })
}

/// Bytes of the records themselves, bincode-encoded one by one.
fn payload_bytes(records: u64) -> BenchResult<(u64, u64)> {
    let config = bincode::config::standard();
    let mut workload = Workload::new();
    let mut bytes = 0;
    let mut health = 0;
    for seq in 1..=records {
        let (stream, record, _) = workload.next_record();
        if stream == StreamKind::Health {
            health += 1;
        }
        bytes += bincode::serde::encode_to_vec(SeqRecord { seq, record }, config)?.len() as u64;
    }
    Ok((bytes, health))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
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
    let (payload, health) = payload_bytes(records)?;
    println!(
        "store_ingest: {records} records ({} usage spans, {health} health samples), \
         flush every {FLUSH_EVERY}, payload {:.1} MiB bincode, sled cache {} MiB",
        records - health,
        mib(payload),
        SLED_CACHE_CAPACITY_BYTES / (1024 * 1024),
    );
    let baseline = spawn_child(Variant::Baseline, records)?;
    let store = spawn_child(Variant::Store, records)?;
    println!(
        "{:<10} {:>9} {:>12} {:>14} {:>10} {:>13}",
        "variant", "wall s", "records/s", "RSS growth MiB", "disk MiB", "disk/payload"
    );
    for (variant, measured) in [(Variant::Baseline, baseline), (Variant::Store, store)] {
        let seconds = measured.wall.as_secs_f64();
        println!(
            "{:<10} {:>9.2} {:>12.0} {:>14.1} {:>10.1} {:>13.2}",
            variant.name(),
            seconds,
            records as f64 / seconds,
            mib(measured.rss_growth_bytes),
            mib(measured.disk_bytes),
            measured.disk_bytes as f64 / payload as f64,
        );
    }
    let ratio = |numerator: f64, denominator: f64| numerator / denominator.max(f64::MIN_POSITIVE);
    println!(
        "store vs baseline: speed {:.1}x faster, peak RSS growth {:.1}x smaller, disk {:.1}x smaller",
        ratio(baseline.wall.as_secs_f64(), store.wall.as_secs_f64()),
        ratio(baseline.rss_growth_bytes as f64, store.rss_growth_bytes as f64),
        ratio(baseline.disk_bytes as f64, store.disk_bytes as f64),
    );
    Ok(())
}
