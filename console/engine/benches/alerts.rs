//! Alert rules benchmark: one evaluation pass (every rule for every
//! workstation, then the alert book's update) for N workstations with two
//! hours of health each, some critical, some with a full disk, some not
//! seen; and the same pass with a naive book that looks each verdict's
//! open alert up by scanning every alert, the baseline. Then what a sync
//! pass really adds: `alerts::run` on a store holding those workstations
//! (reading their facts, the book, saving it).
//!
//! `cargo bench -p smarttracker-console-engine --bench alerts [-- --agents N --runs R]`
//!
//! Figures and ratios are printed, never asserted.

use std::error::Error;
use std::time::{Duration, Instant};

use console_engine::alerts::{evaluate, AgentFacts, AlertBook, AlertRules, Rule, Verdict};
use console_engine::model::{AgentId, DayClock, HealthLevel, HealthPoint};
use console_engine::store::{AgentRecord, ConsoleStore};
use protocol::{DiskUsage, HealthSample, Record, RecordBatch, SeqRecord, StreamKind};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Thursday 2026-12-17 10:00 UTC: working hours.
const NOW_MS: i64 = 1_797_501_600_000;
const MINUTE_MS: i64 = 60_000;
/// Health every 30 s over two hours.
const HEALTH_POINTS: i64 = 240;

fn parse_args() -> BenchResult<(usize, usize)> {
    let (mut agents, mut runs) = (1_000, 9);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--agents" => agents = args.next().ok_or("--agents needs a number")?.parse()?,
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok((agents.max(1), runs.max(1)))
}

/// Workstation `n`: every 20th critical, every 33rd with a full disk,
/// every 50th not seen for five hours.
fn facts(n: usize) -> AgentFacts {
    let agent = AgentId::from_u128(n as u128 + 1);
    let level = if n.is_multiple_of(20) {
        HealthLevel::Critical
    } else {
        HealthLevel::Ok
    };
    let disk_pct = if n.is_multiple_of(33) { 96.0 } else { 40.0 };
    let health = (0..HEALTH_POINTS)
        .map(|i| HealthPoint {
            agent,
            at_ms: NOW_MS - (HEALTH_POINTS - 1 - i) * 30_000,
            cpu_pct: 20.0,
            mem_pct: 30.0,
            disk_pct,
            uptime_secs: 3_600,
            score: 80,
            level,
        })
        .collect();
    AgentFacts {
        agent,
        last_seen_ms: Some(if n.is_multiple_of(50) {
            NOW_MS - 5 * 60 * MINUTE_MS
        } else {
            NOW_MS - MINUTE_MS
        }),
        added_ms: 0,
        health,
        last_invalid_ms: None,
    }
}

/// The naive book: each verdict's open alert found by a scan of them all.
#[derive(Default)]
struct NaiveBook {
    open: Vec<(Rule, AgentId)>,
}

impl NaiveBook {
    fn apply(&mut self, verdicts: &[(AgentId, Rule, Verdict)]) -> usize {
        let mut changes = 0;
        for (agent, rule, verdict) in verdicts {
            let found = self
                .open
                .iter()
                .position(|(open_rule, open_agent)| open_rule == rule && open_agent == agent);
            match (verdict, found) {
                (Verdict::Present { .. }, None) => {
                    self.open.push((*rule, *agent));
                    changes += 1;
                }
                (Verdict::Absent, Some(index)) => {
                    self.open.swap_remove(index);
                    changes += 1;
                }
                _ => {}
            }
        }
        changes
    }
}

/// A store holding `facts`: inventory records and their health points.
fn store_of(dir: &std::path::Path, facts: &[AgentFacts]) -> BenchResult<ConsoleStore> {
    let store = ConsoleStore::open(&dir.join("store"), DayClock::utc())?;
    for (n, fact) in facts.iter().enumerate() {
        store.upsert_agent(&AgentRecord {
            agent: fact.agent,
            name: format!("pc-{n}"),
            spki_sha256: [0; 32],
            added_ms: 0,
            addresses: Vec::new(),
            last_seen_ms: fact.last_seen_ms,
            last_error: None,
            hostname: None,
            demo: true,
            time_zone: None,
        })?;
        let records = fact
            .health
            .iter()
            .enumerate()
            .map(|(i, point)| SeqRecord {
                seq: i as u64 + 1,
                record: Record::Health(HealthSample {
                    at_ms: point.at_ms,
                    cpu_pct: point.cpu_pct,
                    mem_used_bytes: 3,
                    mem_total_bytes: 10,
                    swap_used_bytes: 0,
                    swap_total_bytes: 0,
                    disks: vec![DiskUsage {
                        mount: "/".to_owned(),
                        used_bytes: point.disk_pct as u64,
                        total_bytes: 100,
                    }],
                    uptime_secs: point.uptime_secs,
                    load_avg: [0.0; 3],
                    top_processes: Vec::new(),
                    score: point.score,
                    level: match point.level {
                        HealthLevel::Ok => protocol::HealthLevel::Ok,
                        HealthLevel::Warn => protocol::HealthLevel::Warn,
                        HealthLevel::Critical => protocol::HealthLevel::Critical,
                    },
                }),
            })
            .collect();
        let batch = RecordBatch {
            stream: StreamKind::Health,
            epoch: 1,
            records,
            more: false,
        };
        store.ingest(fact.agent, &batch, NOW_MS)?;
    }
    Ok(store)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> BenchResult<()> {
    // `cargo nextest --all-targets` lists every target with `--list`: a
    // bench binary holds no tests, so it lists none.
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let (agents, runs) = parse_args()?;
    let facts: Vec<AgentFacts> = (0..agents).map(facts).collect();
    let ids: Vec<AgentId> = facts.iter().map(|fact| fact.agent).collect();
    let rules = AlertRules::default();
    let clock = DayClock::utc();

    // Books that already hold the alerts of a first pass, as in steady state.
    let mut book = AlertBook::default();
    let first = evaluate(&rules, &facts, NOW_MS, &clock, &|_, _| false);
    book.apply(&first, &ids, NOW_MS);
    let mut naive = NaiveBook::default();
    naive.apply(&first);
    let open = book.alerts().iter().filter(|alert| alert.is_open()).count();

    let (mut evaluations, mut updates, mut naive_updates) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let now_ms = NOW_MS + (run as i64 + 1) * MINUTE_MS;
        let started = Instant::now();
        let open = book.open_keys();
        let verdicts = evaluate(&rules, &facts, now_ms, &clock, &|rule, agent| {
            open.contains(&(rule, agent))
        });
        evaluations.push(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(book.apply(&verdicts, &ids, now_ms));
        updates.push(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(naive.apply(&verdicts));
        naive_updates.push(started.elapsed());
    }
    let (evaluation, update, naive_update) =
        (median(evaluations), median(updates), median(naive_updates));
    let pass = evaluation + update;
    println!(
        "alert rules: {agents} workstations × {} rules, {HEALTH_POINTS} health points each, {open} alerts open, median of {runs} passes",
        Rule::ALL.len()
    );
    println!(
        "  evaluate:               {:>8.2} ms ({:.2} µs per workstation)",
        evaluation.as_secs_f64() * 1e3,
        evaluation.as_secs_f64() * 1e6 / agents as f64
    );
    println!(
        "  book update (indexed):  {:>8.2} ms",
        update.as_secs_f64() * 1e3
    );
    println!(
        "  book update (naive scan, baseline): {:>8.2} ms",
        naive_update.as_secs_f64() * 1e3
    );
    println!(
        "  whole pass:             {:>8.2} ms (aim: well under 10 ms for 1,000)",
        pass.as_secs_f64() * 1e3
    );
    println!(
        "  ratio naive / indexed update: {:.1}x",
        naive_update.as_secs_f64() / update.as_secs_f64().max(1e-9)
    );

    let dir = tempfile::tempdir()?;
    let store = store_of(dir.path(), &facts)?;
    let mut passes = Vec::new();
    for run in 0..runs {
        let now_ms = NOW_MS + (run as i64 + 1) * MINUTE_MS;
        let started = Instant::now();
        console_engine::alerts::run(&store, &rules, now_ms, "bench")?;
        passes.push(started.elapsed());
    }
    let with_store = median(passes);
    println!(
        "  alerts::run on the store (reads {agents} workstations' facts, the book, saves): {:>8.2} ms",
        with_store.as_secs_f64() * 1e3
    );
    println!(
        "  ratio store pass / pure pass: {:.0}x",
        with_store.as_secs_f64() / pass.as_secs_f64().max(1e-9)
    );
    Ok(())
}
