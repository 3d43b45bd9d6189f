//! Hostile agents against a real console process: a QUIC server written
//! here holds a real enrolled, inventoried agent's certificate and answers
//! the console's requests with each misbehaviour seen in the wild: a hello
//! that names another agent, endless `more`, epochs that keep changing,
//! absurd records, more records than asked, the same records again,
//! silence, garbage frames. For each: `smarttracker-console sync --once`
//! ends in bounded time with bounded memory and no panic, nothing of the
//! misbehaviour is stored, the fault is in the audit log and in `agents`,
//! and an honest demo agent synced in the same pass is fully served.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certs::AgentIdentity;
use console_engine::model::{AgentId, DayClock};
use console_engine::store::{ConsoleStore, FaultKind, INVALID_REASON};
use harness::fake_agent::{Answer, FakeAgent};
use harness::{run_ok, Agent, Site};
use protocol::{
    AckReply, ActivitySpan, Cursor, DiskUsage, ErrorCode, ErrorReply, HealthLevel, HealthSample,
    HelloReply, Presence, Record, RecordBatch, Request, Response, SeqRecord, SessionEvent,
    SessionEventKind, StreamKind, UsageSpan, MAX_VERSION,
};

/// What the hostile agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Its hello names the honest agent.
    Impersonate(AgentId),
    /// One valid record per pull, always saying more are ready.
    EndlessMore,
    /// An empty batch of a new epoch per pull, always saying more.
    EmptyNewEpochs,
    /// One record of a new epoch per pull, always saying more.
    FlippingEpochs,
    /// Records that cannot be true (and text far too long, its time zone
    /// too).
    Absurd,
    /// Twice as many records as asked for.
    MoreThanAsked,
    /// The same records again and again, saying more.
    Repeats,
    /// Never answers a pull.
    Silent,
    /// A frame that is not a response.
    Garbage,
}

/// Per-connection memory of the hostile agent.
#[derive(Debug, Default)]
struct State {
    epoch: u64,
}

fn now_ms() -> i64 {
    console_engine::clock::wall_now_ms()
}

fn usage(seq: u64, start_ms: i64, end_ms: i64, app: String) -> SeqRecord {
    SeqRecord {
        seq,
        record: Record::Usage(UsageSpan {
            start_ms,
            end_ms,
            raw_app: app.to_lowercase(),
            app,
            title: None,
        }),
    }
}

fn health(seq: u64, edit: impl FnOnce(&mut HealthSample)) -> SeqRecord {
    let mut sample = HealthSample {
        at_ms: now_ms() - 60_000,
        cpu_pct: 10.0,
        mem_used_bytes: 1 << 30,
        mem_total_bytes: 8 << 30,
        swap_used_bytes: 0,
        swap_total_bytes: 0,
        disks: vec![DiskUsage {
            mount: "/".into(),
            used_bytes: 1,
            total_bytes: 2,
        }],
        uptime_secs: 60,
        load_avg: [0.1; 3],
        top_processes: Vec::new(),
        score: 90,
        level: HealthLevel::Ok,
    };
    edit(&mut sample);
    SeqRecord {
        seq,
        record: Record::Health(sample),
    }
}

/// The absurd records of the issue, one stream each; everything else in
/// their batches is ordinary.
fn absurd(stream: StreamKind) -> Vec<SeqRecord> {
    let now = now_ms();
    match stream {
        StreamKind::Usage => vec![
            usage(1, now - 120_000, now - 60_000, "Firefox".into()),
            usage(2, now, now - 3_600_000, "Negative".into()),
            usage(3, -62_135_596_800_000, now, "Year one".into()),
            usage(4, i64::MIN, i64::MAX, "Forever".into()),
            usage(5, now - 60_000, now - 30_000, "x".repeat(4 << 20)),
            usage(6, now - 30_000, now - 20_000, "Terminal".into()),
        ],
        StreamKind::Sessions => vec![
            SeqRecord {
                seq: 1,
                record: Record::Activity(ActivitySpan {
                    start_ms: now - 400 * 86_400_000,
                    end_ms: now,
                    presence: Presence::Active,
                    user: "marie".into(),
                }),
            },
            SeqRecord {
                seq: 2,
                record: Record::Session(SessionEvent {
                    at_ms: now - 1_000,
                    kind: SessionEventKind::Login,
                    user: "u".repeat(1 << 20),
                }),
            },
            SeqRecord {
                seq: 3,
                record: Record::Session(SessionEvent {
                    at_ms: i64::MAX,
                    kind: SessionEventKind::Logout,
                    user: "marie".into(),
                }),
            },
        ],
        StreamKind::Health => vec![
            health(1, |_| {}),
            health(2, |sample| sample.score = 101),
            health(3, |sample| sample.score = 255),
            health(4, |sample| sample.cpu_pct = -5.0),
            health(5, |sample| sample.disks[0].used_bytes = u64::MAX),
            health(6, |sample| sample.cpu_pct = f32::NAN),
        ],
        StreamKind::Frames => Vec::new(),
    }
}

fn batch(stream: StreamKind, epoch: u64, records: Vec<SeqRecord>, more: bool) -> Response {
    Response::Records(RecordBatch {
        stream,
        epoch,
        records,
        more,
    })
}

fn answer(behaviour: Behaviour, own_id: AgentId, state: &mut State, request: Request) -> Answer {
    const EPOCH: u64 = 0x0BAD_5EED;
    let pull = match request {
        Request::Hello(_) => {
            let agent_id = match behaviour {
                Behaviour::Impersonate(claimed) => claimed,
                _ => own_id,
            };
            let (hostname, time_zone) = match behaviour {
                Behaviour::Absurd => ("h".repeat(1 << 20), "Europe/".repeat(1 << 16)),
                _ => ("mallory".to_owned(), "Mars/Olympus_Mons".to_owned()),
            };
            return Answer::Reply(Response::Hello(HelloReply {
                version: MAX_VERSION,
                agent_id,
                hostname,
                demo: false,
                heads: Vec::new(),
                time_zone,
            }));
        }
        Request::Ack(ack) => {
            return Answer::Reply(Response::Acked(AckReply {
                stream: ack.stream,
                acked: ack.upto,
            }))
        }
        Request::Pull(pull) => pull,
        _ => {
            return Answer::Reply(Response::Error(ErrorReply {
                code: ErrorCode::Forbidden,
                message: "no".into(),
            }))
        }
    };
    let now = now_ms();
    let one = |seq: u64| usage(seq, now - 60_000, now - 59_000, "Firefox".into());
    let stream = pull.stream;
    let response = match behaviour {
        Behaviour::Impersonate(_) => batch(stream, EPOCH, vec![one(1), one(2)], false),
        Behaviour::EndlessMore => {
            let seq = pull.after.seq + 1;
            let records = match stream {
                StreamKind::Usage => vec![one(seq)],
                _ => Vec::new(),
            };
            let more = !records.is_empty();
            batch(stream, EPOCH, records, more)
        }
        Behaviour::EmptyNewEpochs => {
            state.epoch += 1;
            batch(stream, EPOCH + state.epoch, Vec::new(), true)
        }
        Behaviour::FlippingEpochs => {
            state.epoch += 1;
            batch(stream, EPOCH + state.epoch, vec![one(1)], true)
        }
        Behaviour::Absurd => batch(stream, EPOCH, absurd(stream), false),
        Behaviour::MoreThanAsked => {
            let count = u64::from(pull.max_records) * 2;
            let records = (1..=count).map(one).collect();
            batch(stream, EPOCH, records, true)
        }
        Behaviour::Repeats => batch(stream, EPOCH, vec![one(1), one(2), one(3)], true),
        Behaviour::Silent => return Answer::Silence,
        Behaviour::Garbage => return Answer::Garbage,
    };
    Answer::Reply(response)
}

/// A site with an honest demo agent and an inventoried agent identity
/// for the hostile server.
struct Scene {
    site: Site,
    honest: Agent,
    honest_id: AgentId,
    honest_addr: SocketAddr,
    hostile_identity: std::path::PathBuf,
}

fn scene() -> Scene {
    let site = Site::create();
    let honest_data = site.add_agent("honest");
    let hostile_data = site.add_agent("mallory");
    let mut honest = Agent::start(
        &honest_data,
        "127.0.0.1:0",
        &["--no-mdns", "--demo-history-days", "1", "--demo-seed", "5"],
    );
    let status = honest.wait_live();
    let honest_addr = status.listen.parse().expect("listen address");
    Scene {
        honest_id: status.agent_id.parse().expect("agent id"),
        honest_addr,
        honest,
        hostile_identity: hostile_data.join(agent::IDENTITY_FILE),
        site,
    }
}

impl Scene {
    fn hostile(&self, behaviour: Behaviour) -> FakeAgent {
        let identity = AgentIdentity::read_bundle(&self.hostile_identity).expect("bundle");
        let id = identity.agent_id;
        FakeAgent::start(identity, move || {
            let mut state = State::default();
            Box::new(move |request| answer(behaviour, id, &mut state, request))
        })
    }

    /// `sync --once` against the hostile and the honest agent; returns
    /// the output, the time it took and the console's peak memory.
    fn sync(&self, hostile: &FakeAgent, extra: &[&str]) -> (Output, Duration, u64) {
        let mut command = self.site.console(&["sync", "--once", "--no-mdns"]);
        command
            .arg("--peer")
            .arg(hostile.addr.to_string())
            .arg("--peer")
            .arg(self.honest_addr.to_string())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_measured(command)
    }

    fn store(&self) -> ConsoleStore {
        ConsoleStore::open(
            &self.site.console_data().join(console_engine::STORE_DIR),
            DayClock::utc(),
        )
        .expect("console store")
    }
}

/// Runs a command to completion, sampling its peak RSS (VmHWM) from
/// /proc while it runs.
fn run_measured(mut command: Command) -> (Output, Duration, u64) {
    let started = Instant::now();
    let child = command.spawn().expect("spawn");
    let status_path = format!("/proc/{}/status", child.id());
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        std::thread::spawn(move || {
            while let Ok(status) = std::fs::read_to_string(&status_path) {
                let hwm_kib = status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmHWM:"))
                    .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0u64);
                peak.fetch_max(hwm_kib * 1024, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let output = child.wait_with_output().expect("wait");
    let took = started.elapsed();
    let _ = sampler.join();
    (output, took, peak.load(Ordering::SeqCst))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Checks every outcome every scenario shares: no panic, the honest
/// agent synced in the same pass, bounded time and memory.
fn check_common(scene: &Scene, output: &Output, took: Duration, peak_bytes: u64, bound: Duration) {
    let text = text(output);
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains(&format!("synced {}", scene.honest_id)),
        "the honest agent is served: {text}"
    );
    assert!(output.status.success(), "an agent was synced: {text}");
    assert!(took < bound, "took {took:?} (bound {bound:?}): {text}");
    assert!(
        peak_bytes < 512 << 20,
        "console peak memory {} MiB: {text}",
        peak_bytes >> 20
    );
}

/// The honest agent's records are all there and only its own.
fn check_honest(scene: &Scene, store: &ConsoleStore) {
    let record = store
        .agent(scene.honest_id)
        .expect("inventory")
        .expect("honest agent");
    assert_eq!(record.hostname.as_deref(), Some("honest"));
    assert_eq!(record.addresses, [scene.honest_addr.to_string()]);
    let spans = store
        .usage_spans(scene.honest_id, i64::MIN, i64::MAX)
        .expect("usage");
    assert!(!spans.is_empty(), "a day of history");
    assert!(spans.iter().all(|span| span.app != "x"));
}

fn audit_actions(store: &ConsoleStore) -> BTreeMap<String, Vec<String>> {
    let mut actions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in store.audit_log(0, 10_000).expect("audit") {
        actions
            .entry(record.entry.action)
            .or_default()
            .push(format!("{} {}", record.entry.target, record.entry.detail));
    }
    actions
}

fn fault_kinds(store: &ConsoleStore, agent: AgentId) -> Vec<FaultKind> {
    store
        .faults(Some(agent))
        .expect("faults")
        .into_iter()
        .map(|fault| fault.kind)
        .collect()
}

/// Raw keys of the console's data tree under a one-byte prefix and an
/// agent (the store's own layout: see `console/src/store/mod.rs`).
fn raw_keys(data: &Path, prefix: u8, agent: AgentId) -> usize {
    let db = sled::open(data.join(console_engine::STORE_DIR)).expect("raw store");
    let tree = db.open_tree("data").expect("data tree");
    let mut key = vec![prefix];
    key.extend_from_slice(agent.as_bytes());
    tree.scan_prefix(key).count()
}

#[test]
fn a_hello_naming_another_agent_is_refused_audited_and_changes_nothing() {
    let scene = scene();
    let hostile = scene.hostile(Behaviour::Impersonate(scene.honest_id));
    let (output, took, peak) = scene.sync(&hostile, &[]);
    check_common(&scene, &output, took, peak, Duration::from_secs(60));
    let report = text(&output);
    assert!(report.contains("FAULT"), "{report}");
    assert!(
        report.contains("claimed to be another workstation"),
        "{report}"
    );
    {
        let store = scene.store();
        check_honest(&scene, &store);
        // Nothing under either id came from the impostor.
        assert!(store
            .usage_spans(hostile.id, i64::MIN, i64::MAX)
            .expect("usage")
            .is_empty());
        let mallory = store
            .agent(hostile.id)
            .expect("inventory")
            .expect("mallory");
        assert_eq!(mallory.last_seen_ms, None, "the impostor is not 'seen'");
        assert_eq!(fault_kinds(&store, hostile.id), [FaultKind::Impersonation]);
        assert!(fault_kinds(&store, scene.honest_id).is_empty());
        let actions = audit_actions(&store);
        let noted = actions.get("impersonation").expect("audited");
        assert!(noted[0].starts_with(&hostile.id.to_string()), "{noted:?}");
        assert!(noted[0].contains(&scene.honest_id.to_string()), "{noted:?}");
    }
    // The honest agent is still served afterwards: its epoch was not
    // retired by the impostor.
    let (output, _, _) = scene.sync(&hostile, &[]);
    assert!(
        text(&output).contains(&format!("synced {}", scene.honest_id)),
        "{}",
        text(&output)
    );
    assert!(!text(&output).contains("epoch"), "{}", text(&output));
    // `agents` shows the fault.
    let listing = run_ok(&mut scene.site.console(&["agents"]));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("FAULT: claimed to be another workstation"),
        "{listing}"
    );
    drop(scene.honest);
}

#[test]
fn endless_more_stops_at_the_deadline_and_at_the_record_budget() {
    let scene = scene();
    let hostile = scene.hostile(Behaviour::EndlessMore);
    // The record budget stops it.
    let (output, took, peak) = scene.sync(&hostile, &["--budget-records", "200"]);
    check_common(&scene, &output, took, peak, Duration::from_secs(60));
    let report = text(&output);
    assert!(report.contains("record budget used"), "{report}");
    let first_requests = hostile.requests();
    assert!(first_requests < 2 * 200 + 20, "{first_requests} requests");
    {
        let store = scene.store();
        check_honest(&scene, &store);
        let record = store.agent(hostile.id).expect("agent").expect("known");
        assert_eq!(record.time_zone, None, "a zone the tz database lacks");
        let stored = store
            .usage_spans(hostile.id, i64::MIN, i64::MAX)
            .expect("usage")
            .len();
        assert_eq!(stored, 200, "exactly the budget");
        assert_eq!(
            store.cursor(hostile.id, StreamKind::Usage).expect("cursor"),
            Some(Cursor {
                epoch: 0x0BAD_5EED,
                seq: 200
            })
        );
    }
    // The deadline stops it; the next pass resumed from the cursor.
    let (output, took, peak) = scene.sync(
        &hostile,
        &[
            "--agent-deadline-secs",
            "3",
            "--budget-records",
            "100000000",
        ],
    );
    check_common(&scene, &output, took, peak, Duration::from_secs(30));
    let report = text(&output);
    assert!(report.contains("time is up"), "{report}");
    let store = scene.store();
    let stored = store
        .usage_spans(hostile.id, i64::MIN, i64::MAX)
        .expect("usage");
    let cursor = store
        .cursor(hostile.id, StreamKind::Usage)
        .expect("cursor")
        .expect("some");
    assert_eq!(
        stored.len() as u64,
        cursor.seq,
        "nothing lost, nothing twice"
    );
    assert!(cursor.seq > 200);
}

#[test]
fn changing_epochs_are_followed_once_and_never_without_records() {
    let scene = scene();
    // Empty batches of a new epoch, saying more: nothing is followed.
    let hostile = scene.hostile(Behaviour::EmptyNewEpochs);
    let (output, took, peak) = scene.sync(&hostile, &[]);
    check_common(&scene, &output, took, peak, Duration::from_secs(60));
    assert!(hostile.requests() < 20, "{} requests", hostile.requests());
    {
        let store = scene.store();
        for stream in StreamKind::ALL {
            assert_eq!(store.cursor(hostile.id, stream).expect("cursor"), None);
        }
        drop(store);
        // No retired epochs pile up either.
        assert_eq!(raw_keys(&scene.site.console_data(), b'E', hostile.id), 0);
    }
    drop(hostile);
    // A new epoch with every batch: the first is followed, then a fault.
    let hostile = scene.hostile(Behaviour::FlippingEpochs);
    let (output, took, peak) = scene.sync(&hostile, &[]);
    check_common(&scene, &output, took, peak, Duration::from_secs(60));
    let report = text(&output);
    assert!(report.contains("its store keeps resetting"), "{report}");
    assert!(hostile.requests() < 20, "{} requests", hostile.requests());
    let store = scene.store();
    assert_eq!(fault_kinds(&store, hostile.id), [FaultKind::EpochFlapping]);
    assert_eq!(
        store
            .usage_spans(hostile.id, i64::MIN, i64::MAX)
            .expect("usage")
            .len(),
        1
    );
    assert!(audit_actions(&store).contains_key("epoch-flapping"));
}

#[test]
fn absurd_records_are_refused_and_consumers_stay_bounded() {
    let scene = scene();
    let hostile = scene.hostile(Behaviour::Absurd);
    let (output, took, peak) = scene.sync(&hostile, &[]);
    eprintln!(
        "sync with absurd records: {took:?}, peak RSS {} MiB",
        peak >> 20
    );
    check_common(&scene, &output, took, peak, Duration::from_secs(60));
    let report = text(&output);
    assert!(report.contains("refused as invalid"), "{report}");
    {
        let store = scene.store();
        check_honest(&scene, &store);
        let record = store.agent(hostile.id).expect("agent").expect("known");
        assert_eq!(
            record.time_zone, None,
            "an absurd zone is stored as unknown"
        );
        let spans = store
            .usage_spans(hostile.id, i64::MIN, i64::MAX)
            .expect("usage");
        let apps: Vec<(&str, usize)> = spans
            .iter()
            .map(|span| (&span.app[..span.app.len().min(8)], span.app.len()))
            .collect();
        assert_eq!(
            apps,
            [
                ("Firefox", 7),
                ("xxxxxxxx", console_engine::validate::MAX_APP_BYTES),
                ("Terminal", 8)
            ]
        );
        let activity = store
            .activity_spans(hostile.id, i64::MIN, i64::MAX)
            .expect("activity");
        assert!(activity.is_empty(), "{activity:?}");
        let events = store
            .session_events(hostile.id, i64::MIN, i64::MAX)
            .expect("events");
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].user.len(),
            console_engine::validate::MAX_USER_BYTES
        );
        let points = store
            .health_points(hostile.id, i64::MIN, i64::MAX)
            .expect("health");
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].score, 90);
        let invalid: Vec<(String, u64, u64)> = store
            .gaps(hostile.id)
            .expect("gaps")
            .into_iter()
            .filter(|gap| gap.reason == INVALID_REASON)
            .map(|gap| (gap.stream, gap.first_seq, gap.last_seq))
            .collect();
        assert_eq!(
            invalid,
            [
                ("usage".to_owned(), 2, 4),
                ("sessions".to_owned(), 1, 1),
                ("sessions".to_owned(), 3, 3),
                ("health".to_owned(), 2, 6)
            ]
        );
        let mallory = store
            .agent(hostile.id)
            .expect("inventory")
            .expect("mallory");
        assert_eq!(
            mallory.hostname.expect("hostname").len(),
            console_engine::validate::MAX_HOSTNAME_BYTES
        );
        assert_eq!(fault_kinds(&store, hostile.id), [FaultKind::InvalidData]);
        assert!(audit_actions(&store).contains_key("invalid-data"));
    }
    // Consumers of the store: every export with its default range, and
    // the widest one a person can ask for, ends quickly in bounded memory.
    for args in [
        vec!["export", "attendance"],
        vec!["export", "usage", "--format", "jsonl"],
        vec!["export", "sessions"],
        vec!["export", "health"],
        vec![
            "export",
            "attendance",
            "--from",
            "0001-01-01",
            "--to",
            "9999-12-31",
        ],
        vec!["report", "--range", "30d"],
    ] {
        let mut command = scene.site.console(&args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let (output, took, peak) = run_measured(command);
        eprintln!("{args:?}: {took:?}, peak RSS {} MiB", peak >> 20);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        assert!(took < Duration::from_secs(60), "{args:?} took {took:?}");
        assert!(peak < 512 << 20, "{args:?}: {} MiB", peak >> 20);
    }
    let listing = run_ok(&mut scene.site.console(&["agents"]));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("FAULT: sending invalid data"), "{listing}");
}

#[test]
fn answers_outside_the_protocol_stop_that_agent_only() {
    let scene = scene();
    for (behaviour, kind, expected) in [
        (
            Behaviour::MoreThanAsked,
            Some(FaultKind::ProtocolViolation),
            "answered outside the protocol",
        ),
        (
            Behaviour::Repeats,
            Some(FaultKind::ProtocolViolation),
            "answered outside the protocol",
        ),
        (Behaviour::Garbage, None, "unreachable"),
        (Behaviour::Silent, None, "unreachable"),
    ] {
        let hostile = scene.hostile(behaviour);
        let (output, took, peak) = scene.sync(&hostile, &[]);
        // A silent agent costs at most one request timeout (20 s).
        check_common(&scene, &output, took, peak, Duration::from_secs(60));
        let report = text(&output);
        assert!(report.contains(expected), "{behaviour:?}: {report}");
        let store = scene.store();
        check_honest(&scene, &store);
        // Only the first batch of the repeating agent was new, and stored;
        // nothing else of any of them.
        let stored = store
            .usage_spans(hostile.id, i64::MIN, i64::MAX)
            .expect("usage")
            .len();
        if behaviour == Behaviour::MoreThanAsked {
            assert_eq!(stored, 0);
        } else {
            assert_eq!(stored, 3, "{behaviour:?}");
        }
        if let Some(kind) = kind {
            assert!(
                fault_kinds(&store, hostile.id).contains(&kind),
                "{behaviour:?}"
            );
        }
    }
}
