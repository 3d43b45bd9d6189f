//! The agent on a full disk, with real processes: the agent's data
//! directory sits on a small tmpfs that a filler file (or the agent's own
//! demo history) fills. The agent says once, in its log and in `status`,
//! what is wrong and what to do; it keeps serving; SIGTERM still ends it
//! within seconds; and once space returns nothing it reported stored is
//! lost, nothing is numbered twice, and what it could not write is named by
//! a gap marker.
//!
//! Needs root (to mount the tmpfs); CI runs as root, so a missing
//! prerequisite fails the tests instead of skipping them.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use agent::status::{StatusSnapshot, StoreProblem};
use agent::store::{AccessEntry, Quotas, Store, StoreError};
use console_engine::model::{AgentId, DayClock};
use console_engine::store::ConsoleStore;
use harness::{
    agent_store, assert_numbering, bin, exported_usage, fill_with, recorded_usage, run_ok, Agent,
    Site, Span, StoredStream, Tmpfs,
};
use protocol::{Record, StreamKind};

const MEBIBYTE: u64 = 1024 * 1024;
/// The agent's own shutdown deadline is 8 s; this leaves room for a slow
/// machine without accepting a hang.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// What the agent logs, once, when an outage begins.
const PROBLEM_LINE: &str = "recording continues in memory";

fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn store_problem(data: &Path) -> Option<StoreProblem> {
    StatusSnapshot::read(data).ok()?.store_problem
}

/// Waits for the agent to report that it cannot write, and checks that
/// the report names the store and what to do, in the status file and in
/// the `status` command.
fn wait_for_disk_full(data: &Path) -> StoreProblem {
    let problem = wait_until(
        "the agent to report its full disk",
        Duration::from_secs(120),
        || store_problem(data),
    );
    let store_dir = data.join(agent::STORE_DIR);
    for text in [&problem.message, &problem.line()] {
        assert!(text.contains("no space left on device"), "{text}");
        assert!(text.contains(&store_dir.display().to_string()), "{text}");
        assert!(text.contains("free space on that disk"), "{text}");
    }
    let status = run_ok(
        Command::new(bin("smarttracker-agent"))
            .args(["status", "--data"])
            .arg(data),
    );
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("STORE PROBLEM"), "{shown}");
    assert!(shown.contains("no space left on device"), "{shown}");
    assert!(shown.contains(PROBLEM_LINE), "{shown}");
    problem
}

fn log_lines(log: &Path, text: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(text))
        .count()
}

/// The numbers the stopped agent noted as handed out but never written,
/// per stream (`store/unwritten.json`).
fn unwritten_note(data: &Path) -> Vec<(String, u64, u64)> {
    let note = std::fs::read(data.join(agent::STORE_DIR).join("unwritten.json"))
        .expect("the agent notes what it could not write");
    let note: serde_json::Value = serde_json::from_slice(&note).expect("the note is JSON");
    note["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|range| {
            (
                range["stream"].as_str().expect("stream").to_owned(),
                range["first_seq"].as_u64().expect("first_seq"),
                range["last_seq"].as_u64().expect("last_seq"),
            )
        })
        .collect()
}

/// Checks the stopped agent's store: every stream numbered once with each
/// hole named by a gap marker (or acked by the console, then pruned),
/// everything `reported` stored still there (unless acked and pruned), and
/// each number of the `unwritten` ranges accounted for: written (saved for
/// the restart) or named by a gap marker, never given out again.
fn check_agent_store(data: &Path, reported: &StatusSnapshot, unwritten: &[(String, u64, u64)]) {
    let stored = agent_store(data);
    for stream in StreamKind::ALL {
        let StoredStream {
            records, acked_seq, ..
        } = stored.stream(stream);
        let acked_seq = *acked_seq;
        assert_numbering(stream.name(), records, acked_seq);
        let reported_seq = reported
            .streams
            .iter()
            .find(|status| status.stream == stream.name())
            .map_or(0, |status| status.durable_seq);
        let present: std::collections::BTreeSet<u64> =
            records.iter().map(|record| record.seq).collect();
        for seq in acked_seq + 1..=reported_seq {
            assert!(
                present.contains(&seq),
                "{}: seq {seq} was reported stored and is gone",
                stream.name()
            );
        }
        let last_seq = records.last().map_or(0, |record| record.seq);
        for (_, first_seq, unwritten_last_seq) in unwritten
            .iter()
            .filter(|(name, _, _)| name.eq_ignore_ascii_case(stream.name()))
        {
            // Each of them is stored (saved for the restart) or named by a
            // gap marker (`assert_numbering`): none is past the store's end.
            assert!(
                last_seq >= *unwritten_last_seq,
                "{}: {first_seq}..={unwritten_last_seq} were handed out before the stop, the store ends at {last_seq}",
                stream.name()
            );
        }
    }
}

/// The seq the console's cursor of each stream of `agent` is at.
fn console_cursors(site: &Site, agent: &str) -> Vec<(StreamKind, u64)> {
    let store = ConsoleStore::open(
        &site.console_data().join(console_engine::STORE_DIR),
        DayClock::utc(),
    )
    .expect("console store");
    let agent: AgentId = agent.parse().expect("agent id");
    StreamKind::ALL
        .into_iter()
        .map(|stream| {
            let cursor = store.cursor(agent, stream).expect("cursor");
            (stream, cursor.map_or(0, |cursor| cursor.seq))
        })
        .collect()
}

/// The console's usage spans of its only agent (none yet: empty).
fn console_usage(site: &Site) -> Vec<Span> {
    exported_usage(&mut site.console(&[]))
        .into_values()
        .next()
        .unwrap_or_default()
}

/// The console holds each span once, all of `earlier` still, and only
/// spans the agent recorded.
fn check_console(site: &Site, data: &Path, earlier: &[Span]) {
    let held = console_usage(site);
    let mut unique = held.clone();
    unique.dedup();
    assert_eq!(unique.len(), held.len(), "the console holds a span twice");
    for span in earlier {
        assert!(held.contains(span), "the console lost {span:?}");
    }
    let recorded = recorded_usage(data);
    for span in &held {
        assert!(recorded.contains(span), "the agent never recorded {span:?}");
    }
}

#[test]
fn disk_full_while_recording_then_sigterm_then_space_returns() {
    let site = Site::create();
    let tmpfs = Tmpfs::mount(32 * MEBIBYTE);
    let data = tmpfs.path("agent");
    site.add_agent_in("pc-full", &data);
    let log = site.path("agent.log");
    let args = ["--no-mdns", "--demo-history-days", "2"];
    let mut agent = Agent::start_logged(&data, "127.0.0.1:0", &args, &log);
    agent.wait_live();
    let addr = agent.addr();
    site.sync_once(&[addr]);
    let synced = console_usage(&site);
    assert!(!synced.is_empty(), "two days of history were synced");

    let filler = tmpfs.fill();
    wait_for_disk_full(&data);
    // The agent keeps answering consoles, and keeps running.
    let report = site.sync_once(&[addr]);
    let agent_id = StatusSnapshot::read(&data).expect("status").agent_id;
    assert!(report.contains(&agent_id), "no answer while full: {report}");
    // Retries go on; the problem is told once.
    std::thread::sleep(Duration::from_secs(5));
    assert!(agent.is_running(), "the agent exited on a full disk");
    assert_eq!(log_lines(&log, PROBLEM_LINE), 1, "told once per outage");
    let reported = StatusSnapshot::read(&data).expect("status");

    agent.terminate_within(STOP_DEADLINE);
    assert_eq!(
        log_lines(&log, "records held that could not be written"),
        1,
        "it says what it could not write"
    );
    let lost = unwritten_note(&data);
    assert!(!lost.is_empty(), "its last records could not be written");
    assert!(
        !data.join(agent::STORE_DIR).join("held.bin").exists(),
        "no room to save them either"
    );

    tmpfs.free(&filler);
    let mut agent = Agent::start_logged(&data, "127.0.0.1:0", &args, &log);
    agent.wait_live();
    site.sync_once(&[agent.addr()]);
    agent.stop();
    check_agent_store(&data, &reported, &lost);
    check_console(&site, &data, &synced);
}

#[test]
fn disk_full_during_history_backfill_then_sigterm_then_space_returns() {
    let site = Site::create();
    let tmpfs = Tmpfs::mount(20 * MEBIBYTE);
    let ballast = tmpfs.ballast(8 * MEBIBYTE as usize);
    let data = tmpfs.path("agent");
    site.add_agent_in("pc-backfill", &data);
    let log = site.path("agent.log");
    // Far more history than 12 MiB hold, and within the console's retention.
    let args = ["--no-mdns", "--demo-history-days", "28"];
    let mut agent = Agent::start_logged(&data, "127.0.0.1:0", &args, &log);
    let problem = wait_for_disk_full(&data);
    assert!(problem.held_records > 0);
    let addr = agent.addr();
    let agent_id = StatusSnapshot::read(&data).expect("status").agent_id;
    // What is stored is served while the disk is full; acks are refused,
    // so the console stops after its first batch.
    let report = site.sync_once(&[addr]);
    let taken = console_cursors(&site, &agent_id);
    assert!(
        taken.iter().any(|(_, seq)| *seq > 0),
        "stored history was served while full: {report}"
    );
    assert!(agent.is_running(), "the agent exited on a full disk");
    assert_eq!(log_lines(&log, PROBLEM_LINE), 1, "told once per outage");
    let reported = StatusSnapshot::read(&data).expect("status");

    agent.terminate_within(STOP_DEADLINE);
    // What it held is saved for the next start (in the reserve the store
    // kept free), or else noted as unwritten.
    let unwritten = unwritten_note(&data);
    assert!(!unwritten.is_empty(), "held history could not be written");

    tmpfs.free(&ballast);
    let mut agent = Agent::start_logged(&data, "127.0.0.1:0", &args, &log);
    agent.wait_live();
    let synced = console_usage(&site);
    site.sync_once(&[agent.addr()]);
    agent.stop();
    check_agent_store(&data, &reported, &unwritten);
    check_console(&site, &data, &synced);
    for ((stream, before), (_, after)) in taken.iter().zip(console_cursors(&site, &agent_id)) {
        assert!(
            after >= *before,
            "{stream:?}: the console's cursor went back"
        );
    }
}

#[test]
fn space_returning_while_the_agent_runs_is_noticed_and_everything_held_written() {
    let site = Site::create();
    let tmpfs = Tmpfs::mount(32 * MEBIBYTE);
    let data = tmpfs.path("agent");
    site.add_agent_in("pc-recovers", &data);
    let log = site.path("agent.log");
    let args = ["--no-mdns", "--demo-history-days", "1"];
    let mut agent = Agent::start_logged(&data, "127.0.0.1:0", &args, &log);
    agent.wait_live();
    let filler = tmpfs.fill();
    let problem = wait_for_disk_full(&data);
    let reported = StatusSnapshot::read(&data).expect("status");

    tmpfs.free(&filler);
    // Retries back off to 15 s at most.
    wait_until("the agent to write again", Duration::from_secs(90), || {
        store_problem(&data).is_none().then_some(())
    });
    assert_eq!(log_lines(&log, "the store writes again"), 1);
    let after = StatusSnapshot::read(&data).expect("status");
    let durable = |snapshot: &StatusSnapshot| -> u64 {
        snapshot
            .streams
            .iter()
            .map(|stream| stream.durable_seq)
            .sum()
    };
    assert!(
        durable(&after) >= durable(&reported) + problem.held_records,
        "what was held ({}) is stored now",
        problem.held_records
    );
    site.sync_once(&[agent.addr()]);
    agent.stop();
    check_agent_store(&data, &reported, &[]);
    check_console(&site, &data, &[]);
}

/// A usage record with a title of `title_bytes`, so records fill blocks
/// (and sled's nodes) quickly.
fn big_usage(i: u64, title_bytes: usize) -> Record {
    Record::Usage(protocol::UsageSpan {
        start_ms: 1_772_442_000_000 + i as i64 * 1_000,
        end_ms: 1_772_442_000_000 + i as i64 * 1_000 + 500,
        app: "Editor".into(),
        raw_app: "editor".into(),
        title: Some(format!("{i:08} {}", "x".repeat(title_bytes))),
    })
}

fn all_records(store: &Store, stream: StreamKind) -> Vec<protocol::SeqRecord> {
    let mut cursor = protocol::Cursor {
        epoch: store.epoch(),
        seq: 0,
    };
    let mut records = Vec::new();
    loop {
        let batch = store.pull(stream, cursor, 4096).expect("pull");
        if let Some(last) = batch.records.last() {
            cursor.seq = last.seq;
        }
        records.extend(batch.records);
        if !batch.more {
            return records;
        }
    }
}

fn access(detail: &str) -> AccessEntry {
    AccessEntry {
        at_ms: 1_772_442_000_000,
        console_id: "c".into(),
        console_name: "console".into(),
        role: "admin".into(),
        request: "pull".into(),
        detail: detail.into(),
        allowed: true,
    }
}

#[test]
fn store_refuses_writes_near_a_full_disk_holds_them_and_writes_them_later() {
    let tmpfs = Tmpfs::mount(16 * MEBIBYTE);
    let dir = tmpfs.path("store");
    let quotas = Quotas {
        held_records: 100,
        ..Quotas::default()
    };
    let store = Store::open(&dir, quotas).expect("store");
    for i in 0..50 {
        store.append(StreamKind::Usage, big_usage(i, 100), 0);
    }
    let heads = store.flush().expect("flush");
    let durable_seq = *heads.seqs.get(StreamKind::Usage);
    assert_eq!(durable_seq, 50);

    let filler = tmpfs.fill();
    for i in 50..300 {
        store.append(StreamKind::Usage, big_usage(i, 100), 0);
    }
    assert!(matches!(store.flush(), Err(StoreError::DiskFull { .. })));
    // Bounded: the marker and the newest 99 records are held.
    assert_eq!(store.counts().get(StreamKind::Usage).buffered_records, 100);
    assert_eq!(store.counts().get(StreamKind::Usage).dropped_records, 151);
    // Stored records are still served; an ack cannot be kept, so it is
    // refused; a console's access is held and shown.
    assert_eq!(all_records(&store, StreamKind::Usage).len(), 50);
    let upto = protocol::Cursor {
        epoch: store.epoch(),
        seq: 10,
    };
    assert!(matches!(
        store.ack(StreamKind::Usage, upto, "c"),
        Err(StoreError::DiskFull { .. })
    ));
    store.log_access(&access("while full")).expect("held");
    assert_eq!(store.access_log(10).expect("access log").len(), 1);

    tmpfs.free(&filler);
    store.flush().expect("space is back");
    store.ack(StreamKind::Usage, upto, "c").expect("ack");
    drop(store);
    let store = Store::open(&dir, quotas).expect("reopen");
    let records = all_records(&store, StreamKind::Usage);
    assert_numbering("usage", &records, 0);
    // A pull ends before the hole: a console only ever sees one at the
    // start of a batch, where it records it as missed.
    let first = store
        .pull(
            StreamKind::Usage,
            protocol::Cursor {
                epoch: store.epoch(),
                seq: 0,
            },
            4096,
        )
        .expect("pull");
    assert_eq!(first.records.len(), 50);
    assert!(first.more);
    // 51..=200 gave way to the marker at 201; 202..=300 are stored.
    let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, (1..=50).chain(201..=300).collect::<Vec<_>>());
    assert!(
        matches!(&records[50].record, Record::Gap(gap) if (gap.first_seq, gap.last_seq) == (51, 200))
    );
    let log = store.access_log(10).expect("access log");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].detail, "while full");
    assert_eq!(store.counts().get(StreamKind::Usage).acked_seq, 10);
}

/// Where the child half of the next test keeps its store.
const BROKEN_STORE_ENV: &str = "SMARTTRACKER_BROKEN_STORE_DIR";

/// The child half: drives sled itself into the full disk (no reserve),
/// checks that the broken database is left alone while records and access
/// log entries stay held, and once there is room again saves them for the
/// next process. It prints the numbers it handed out.
fn break_the_database(dir: &Path, tmpfs_filler: &Path) {
    let quotas = Quotas {
        disk_reserve_bytes: 0,
        ..Quotas::default()
    };
    let store = Store::open(dir, quotas).expect("store");
    fill_with(tmpfs_filler);
    let mut next = 0;
    let shrink = || {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(tmpfs_filler)
            .expect("filler");
        let len = file.metadata().expect("filler").len();
        file.set_len(len.saturating_sub(256 * 1024))
            .expect("shrink");
    };
    let broke = loop {
        store.append(StreamKind::Usage, big_usage(next, 8 * 1024), 0);
        next += 1;
        match store.flush() {
            Ok(_) => {}
            // Room for the write itself, not for all of sled's: give some.
            Err(StoreError::DiskFull { .. }) => shrink(),
            Err(broken @ StoreError::WriteFailed { .. }) => break broken,
            Err(other) => panic!("unexpected store error: {other}"),
        }
        assert!(next < 2_000, "sled never ran into the full disk");
    };
    assert!(
        broke.to_string().contains("no space left on device"),
        "{broke}"
    );
    let durable_seq = *store.heads().seqs.get(StreamKind::Usage);
    for _ in 0..5 {
        store.append(StreamKind::Usage, big_usage(next, 8 * 1024), 0);
        next += 1;
    }
    // No room yet: refused before sled is touched.
    assert!(store.flush().is_err());
    store.log_access(&access("while broken")).expect("held");
    std::fs::remove_file(tmpfs_filler).expect("free the filler");
    match store.flush() {
        Err(StoreError::NeedsRestart { records, .. }) => {
            assert_eq!(records, next - durable_seq, "everything unwritten is saved");
        }
        other => panic!("a broken database needs a restart, got {other:?}"),
    }
    println!("handed-out={next}");
    // Like the agent, the process ends (or execs) without closing it.
    std::process::exit(0);
}

#[test]
fn a_database_broken_by_the_full_disk_is_left_alone_and_its_records_written_by_the_next_process() {
    if let Ok(dir) = std::env::var(BROKEN_STORE_ENV) {
        let dir = Path::new(&dir);
        let filler = dir.with_file_name("filler");
        break_the_database(dir, &filler);
    }
    let tmpfs = Tmpfs::mount(16 * MEBIBYTE);
    let dir = tmpfs.path("store");
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "a_database_broken_by_the_full_disk_is_left_alone_and_its_records_written_by_the_next_process",
            "--exact",
            "--nocapture",
        ])
        .env(BROKEN_STORE_ENV, &dir)
        .output()
        .expect("child");
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "child: {stdout}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let handed_out: u64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("handed-out="))
        .expect("the child says what it handed out")
        .parse()
        .expect("a number");

    let store = Store::open(&dir, Quotas::default()).expect("the next process opens it");
    store.flush().expect("and writes what was saved");
    assert!(
        !dir.join("held.bin").exists(),
        "written, the saved copy goes"
    );
    let records = all_records(&store, StreamKind::Usage);
    assert_numbering("usage", &records, 0);
    let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
    assert_eq!(
        seqs,
        (1..=handed_out).collect::<Vec<_>>(),
        "each written once"
    );
    let log = store.access_log(10).expect("access log");
    assert_eq!(
        log.last().map(|entry| entry.detail.as_str()),
        Some("while broken")
    );
}
