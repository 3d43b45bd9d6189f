//! Bounded fuzz harnesses (deterministic seeds; `SMARTTRACKER_FUZZ_CASES`
//! raises the number of cases, see `scripts/fuzz.sh`):
//!
//! - ingest validation: any batch of any records, raw or with times near
//!   the console's clock, goes through a real console store; what is
//!   stored always holds the store's invariants, refused records are
//!   exactly those `validate::check` refuses, and gap markers say so;
//! - the console's handling of every response kind: a fake agent with a
//!   real inventoried certificate answers each request (hello, pull, ack,
//!   fetch-frame, policy, screenshot, live view) with any response at
//!   all, a plausible one, garbage or silence; sync passes, sessions and
//!   a live view run against it with no panic, in bounded time and
//!   request count, and nothing is ever stored under another agent id.
//!
//! The codec has its own harness in `protocol/tests/hostile.rs`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certs::AgentIdentity;
use console_engine::live::{LiveBoard, LiveClient, LiveMode};
use console_engine::model::{AgentId, DayClock, DAY_MS};
use console_engine::store::{ConsoleStore, FetchedFrame, INVALID_REASON};
use console_engine::sync::{inventory_record, Outcome, SyncConfig, Syncer};
use console_engine::validate::{
    check, EARLIEST_MS, MAX_AHEAD_MS, MAX_APP_BYTES, MAX_HOSTNAME_BYTES, MAX_SPAN_MS,
    MAX_TITLE_BYTES, MAX_USER_BYTES,
};
use harness::fake_agent::{Answer, FakeAgent, Responder};
use harness::Site;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use protocol::{
    AckReply, CapturedImage, Cursor, ErrorCode, ErrorReply, HelloReply, LiveFrameReply, LiveLease,
    Record, RecordBatch, Request, Response, SeqRecord, StreamKind, MAX_VERSION,
};

/// Cases per harness: the default keeps CI short; scripts/fuzz.sh asks
/// for more.
fn cases(default: u32) -> u32 {
    std::env::var("SMARTTRACKER_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> i64 {
    console_engine::clock::wall_now_ms()
}

/// Moves a record's times near `now_ms` (within two days either way,
/// spans of up to 15 minutes), so that it can pass the checks and the
/// rest of it is what is tested.
fn ground(record: &mut Record, now_ms: i64, bits: u64) {
    let near = |at_ms: i64| now_ms - 2 * DAY_MS + at_ms.rem_euclid(4 * DAY_MS);
    let length = |bits: u64| (bits % 900_000) as i64;
    match record {
        Record::Usage(span) => {
            span.start_ms = near(span.start_ms);
            span.end_ms = span.start_ms + length(bits);
        }
        Record::Activity(span) => {
            span.start_ms = near(span.start_ms);
            span.end_ms = span.start_ms + length(bits);
        }
        Record::Session(event) => event.at_ms = near(event.at_ms),
        Record::Health(sample) => {
            sample.at_ms = near(sample.at_ms);
            if bits & 1 == 0 {
                sample.cpu_pct = (bits % 101) as f32;
                sample.score = (bits % 101) as u8;
                sample.mem_total_bytes = sample.mem_total_bytes.max(sample.mem_used_bytes);
                sample.swap_total_bytes = sample.swap_total_bytes.max(sample.swap_used_bytes);
                for disk in &mut sample.disks {
                    disk.total_bytes = disk.total_bytes.max(disk.used_bytes);
                }
                sample.uptime_secs %= 86_400 * 365;
            }
        }
        Record::Frame(meta) => {
            meta.at_ms = near(meta.at_ms);
            if bits & 1 == 0 {
                meta.width = 1 + meta.width % 4_000;
                meta.height = 1 + meta.height % 4_000;
                meta.size_bytes %= 1 << 20;
                meta.format = protocol::ImageFormat::Jpeg;
            }
        }
        Record::Gap(_) => {}
    }
}

fn stream_of(record: &Record) -> StreamKind {
    match record {
        Record::Usage(_) => StreamKind::Usage,
        Record::Activity(_) | Record::Session(_) => StreamKind::Sessions,
        Record::Health(_) => StreamKind::Health,
        Record::Frame(_) => StreamKind::Frames,
        Record::Gap(gap) => gap.stream,
    }
}

/// Records, each raw or grounded near the console's clock.
fn records(max: usize) -> impl Strategy<Value = Vec<Record>> {
    let now = now_ms();
    proptest::collection::vec((any::<Record>(), any::<bool>(), any::<u64>()), 0..max).prop_map(
        move |drawn| {
            drawn
                .into_iter()
                .map(|(mut record, grounded, bits)| {
                    if grounded {
                        ground(&mut record, now, bits);
                    }
                    record
                })
                .collect()
        },
    )
}

fn text_ok(text: &str, max_bytes: usize) -> bool {
    text.len() <= max_bytes && !text.chars().any(char::is_control)
}

fn in_window(at_ms: i64, now_ms: i64) -> bool {
    (EARLIEST_MS..=now_ms + MAX_AHEAD_MS).contains(&at_ms)
}

/// Everything stored for `agent` holds the invariants validation
/// promises; returns the number of records refused according to the
/// gap markers.
fn check_stored(store: &ConsoleStore, agent: AgentId, now_ms: i64) -> u64 {
    for span in store.usage_spans(agent, i64::MIN, i64::MAX).expect("usage") {
        assert!(in_window(span.start_ms, now_ms) && in_window(span.end_ms, now_ms));
        assert!(span.start_ms <= span.end_ms && span.end_ms - span.start_ms <= MAX_SPAN_MS);
        assert!(text_ok(&span.app, MAX_APP_BYTES), "{:?}", span.app);
        if let Some(title) = &span.title {
            assert!(text_ok(title, MAX_TITLE_BYTES), "{title:?}");
        }
    }
    for span in store
        .activity_spans(agent, i64::MIN, i64::MAX)
        .expect("activity")
    {
        assert!(in_window(span.start_ms, now_ms) && in_window(span.end_ms, now_ms));
        assert!(span.start_ms <= span.end_ms && span.end_ms - span.start_ms <= MAX_SPAN_MS);
        assert!(text_ok(&span.user, MAX_USER_BYTES), "{:?}", span.user);
    }
    for event in store
        .session_events(agent, i64::MIN, i64::MAX)
        .expect("events")
    {
        assert!(in_window(event.at_ms, now_ms));
        assert!(text_ok(&event.user, MAX_USER_BYTES), "{:?}", event.user);
    }
    for point in store
        .health_points(agent, i64::MIN, i64::MAX)
        .expect("health")
    {
        assert!(in_window(point.at_ms, now_ms));
        for pct in [point.cpu_pct, point.mem_pct, point.disk_pct] {
            assert!((0.0..=100.0).contains(&pct), "{point:?}");
        }
        assert!(point.score <= 100, "{point:?}");
    }
    for shot in store.screenshots(agent, i64::MIN, i64::MAX).expect("shots") {
        assert!(in_window(shot.key.at_ms, now_ms));
        assert!(shot.width >= 1 && shot.height >= 1);
    }
    store
        .gaps(agent)
        .expect("gaps")
        .iter()
        .filter(|gap| gap.reason == INVALID_REASON)
        .map(|gap| gap.last_seq - gap.first_seq + 1)
        .sum()
}

#[test]
fn ingest_validation_holds_for_any_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ConsoleStore::open(dir.path(), DayClock::utc()).expect("store");
    let agents = AtomicU64::new(1);
    let mut runner = TestRunner::new(Config {
        cases: cases(256),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&records(24), |records| {
            let now = now_ms();
            let agent = AgentId::from_u128(u128::from(agents.fetch_add(1, Ordering::SeqCst)));
            let stream = records.first().map_or(StreamKind::Usage, stream_of);
            let batch = RecordBatch {
                stream,
                epoch: 7,
                records: records
                    .into_iter()
                    .zip(1..)
                    .map(|(record, seq)| SeqRecord { seq, record })
                    .collect(),
                more: false,
            };
            let frames: HashMap<u64, FetchedFrame> = batch
                .records
                .iter()
                .filter(|record| matches!(record.record, Record::Frame(_)))
                .map(|record| (record.seq, FetchedFrame::Dropped))
                .collect();
            let valid = batch
                .records
                .iter()
                .filter(|record| check(stream, record, now).is_ok())
                .count() as u64;
            let report = store
                .ingest_with_frames(agent, &batch, &frames, now)
                .expect("a contiguous batch is stored");
            let total = batch.records.len() as u64;
            prop_assert_eq!(report.stored_records, valid);
            prop_assert_eq!(report.refused_records, total - valid);
            prop_assert_eq!(report.new_cursor.seq, total);
            prop_assert_eq!(check_stored(&store, agent, now), total - valid);
            Ok(())
        })
        .expect("validation holds");
}

/// A deterministic source of values for the fake agent, and how often
/// (percent of answers) this connection answers out of turn.
struct Draw {
    runner: TestRunner,
    chaos_pct: u64,
}

impl Draw {
    fn new(seed: u64) -> Draw {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let mut draw = Draw {
            runner: TestRunner::new_with_rng(
                Config::default(),
                TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
            ),
            chaos_pct: 0,
        };
        // Some connections stay plausible long enough to get deep.
        draw.chaos_pct = [0, 2, 10, 40][draw.below(4) as usize];
        draw
    }

    fn value<S: Strategy>(&mut self, strategy: S) -> S::Value {
        strategy
            .new_tree(&mut self.runner)
            .expect("a value")
            .current()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.value(0..n)
    }
}

/// A plausible answer to `request` (the right kind, content drawn at
/// random), or any response at all, garbage or (rarely) silence.
fn fuzz_answer(draw: &mut Draw, own_id: AgentId, epoch: &AtomicU64, request: Request) -> Answer {
    if draw.below(100) < draw.chaos_pct {
        return match draw.below(20) {
            0 => Answer::Silence,
            1..=3 => Answer::Garbage,
            _ => Answer::Reply(draw.value(any::<Response>())),
        };
    }
    let now = now_ms();
    let reply = match request {
        Request::Hello(_) => Response::Hello(HelloReply {
            version: if draw.below(20) == 0 {
                draw.value(any::<u16>())
            } else {
                MAX_VERSION
            },
            agent_id: if draw.below(20) == 0 {
                draw.value(protocol::arbitrary::any_uuid())
            } else {
                own_id
            },
            hostname: draw.value(any::<String>()),
            demo: draw.value(any::<bool>()),
            heads: draw.value(any::<Vec<(StreamKind, Cursor)>>()),
            time_zone: draw.value(any::<String>()),
        }),
        Request::Pull(pull) => {
            let mut records = draw.value(records(12));
            for record in &mut records {
                if draw.below(2) == 0 {
                    ground(record, now, draw.value(any::<u64>()));
                }
            }
            let first_seq = match draw.below(10) {
                0 => draw.value(any::<u64>()),
                _ => pull.after.seq.saturating_add(1),
            };
            Response::Records(RecordBatch {
                stream: if draw.below(50) == 0 {
                    draw.value(any::<StreamKind>())
                } else {
                    pull.stream
                },
                // Like a real agent, one epoch at a time; now and then a
                // reset (a new one), or a batch of another epoch.
                epoch: match draw.below(50) {
                    0 => {
                        let reset = draw.value(any::<u64>());
                        epoch.store(reset, Ordering::SeqCst);
                        reset
                    }
                    1 => draw.value(any::<u64>()),
                    _ => epoch.load(Ordering::SeqCst),
                },
                records: records
                    .into_iter()
                    .enumerate()
                    .map(|(index, record)| SeqRecord {
                        seq: first_seq.saturating_add(index as u64),
                        record,
                    })
                    .collect(),
                more: draw.value(any::<bool>()),
            })
        }
        Request::Ack(ack) => match draw.below(4) {
            0 => Response::Error(ErrorReply {
                code: ErrorCode::StaleEpoch,
                message: draw.value(any::<String>()),
            }),
            _ => Response::Acked(AckReply {
                stream: ack.stream,
                acked: ack.upto,
            }),
        },
        Request::FetchFrame(_) | Request::Screenshot(_) => match draw.below(3) {
            0 => Response::Error(ErrorReply {
                code: ErrorCode::NotFound,
                message: String::new(),
            }),
            _ => Response::Image(draw.value(any::<CapturedImage>())),
        },
        Request::LiveStart(_) => Response::LiveStarted(LiveLease {
            session_id: draw.value(any::<u64>()),
            interval_ms: draw.value(any::<u32>()) % 2_000,
            lease_secs: draw.value(any::<u32>()),
        }),
        Request::LiveFrame(session) => Response::LiveFrame(LiveFrameReply {
            session_id: session.session_id,
            frame: match draw.below(4) {
                0 => Some(draw.value(any::<CapturedImage>())),
                _ => None,
            },
            interval_ms: 0,
        }),
        Request::LiveStop(session) => Response::LiveStopped(session),
        Request::GetPolicy | Request::SetPolicy(_) => {
            Response::Policy(draw.value(any::<protocol::Policy>()))
        }
        Request::DenyList(_) => Response::DenyList(draw.value(any::<protocol::DenyListReply>())),
        Request::NewKey => Response::KeyRequest(draw.value(any::<Vec<u8>>())),
        Request::InstallCertificate(_) => Response::CertificateInstalled,
        Request::EraseUsers(_) => Response::Erased(draw.value(any::<protocol::ErasedReply>())),
    };
    Answer::Reply(reply)
}

/// Every key of the console's data tree names `agent` (one prefix byte,
/// then the agent's 16 bytes: see `console/src/store/mod.rs`).
fn only_agent_in_store(data: &Path, agent: AgentId) {
    let db = sled::open(data.join(console_engine::STORE_DIR)).expect("raw store");
    let tree = db.open_tree("data").expect("data tree");
    for item in tree.iter() {
        let (key, _) = item.expect("key");
        assert_eq!(
            key.get(1..17),
            Some(&agent.as_bytes()[..]),
            "a key of another agent: {key:02x?}"
        );
    }
}

#[test]
fn the_console_survives_any_response_to_any_request() {
    let site = Site::create();
    let bundle = site.add_agent("fuzzed");
    let identity_path = bundle.join(agent::IDENTITY_FILE);
    let identity = AgentIdentity::read_bundle(&identity_path).expect("bundle");
    let cert_der = identity.cert_der.to_vec();
    let seeds = Arc::new(AtomicU64::new(1));
    let epoch = Arc::new(AtomicU64::new(0xE1));
    let fake = {
        let seeds = seeds.clone();
        let own_id = identity.agent_id;
        FakeAgent::start(identity, move || -> Responder {
            let mut draw = Draw::new(seeds.fetch_add(1, Ordering::SeqCst));
            let epoch = epoch.clone();
            Box::new(move |request| fuzz_answer(&mut draw, own_id, &epoch, request))
        })
    };
    let data = site.console_data();
    let store = Arc::new(
        ConsoleStore::open(&data.join(console_engine::STORE_DIR), DayClock::utc()).expect("store"),
    );
    let mut record = inventory_record("fuzzed", &cert_der, now_ms()).expect("record");
    record.addresses = vec![fake.addr.to_string()];
    store.upsert_agent(&record).expect("inventory");
    let console_identity =
        certs::ConsoleIdentity::read(&data.join(console_engine::IDENTITY_DIR)).expect("identity");
    let config = SyncConfig {
        request_timeout: Duration::from_millis(500),
        agent_deadline: Duration::from_secs(3),
        budget_records: 300,
        batch_records: 16,
        ..SyncConfig::default()
    };
    let syncer = Arc::new(Syncer::new(console_identity, store.clone(), config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let candidate = console_engine::discovery::Candidate {
        addr: fake.addr,
        claimed_agent: None,
        source: console_engine::discovery::CandidateSource::Static,
    };
    let passes = cases(256) / 4;
    let mut kinds: HashMap<&'static str, u64> = HashMap::new();
    let mut stored = 0;
    runtime.block_on(async {
        for pass in 0..passes {
            let started = Instant::now();
            let outcome = syncer.sync_candidate(&candidate).await;
            stored += outcome.stored_records();
            let kind = match &outcome {
                Outcome::Synced { .. } => "synced",
                Outcome::Faulty { .. } => "faulty",
                Outcome::Unknown { .. } => "unknown",
                Outcome::Refused { .. } => "refused",
                Outcome::Unreachable { .. } => "unreachable",
            };
            *kinds.entry(kind).or_default() += 1;
            if std::env::var_os("FUZZ_DEBUG").is_some() {
                eprintln!("{outcome:?}");
            }
            // Deadline, plus one request timeout, plus the connect.
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "pass {pass}: {:?} for {outcome:?}",
                started.elapsed()
            );
            // Requests of other kinds, through a verified session.
            if let Ok(session) = syncer.open_agent(fake.id, fake.addr).await {
                for request in [
                    Request::GetPolicy,
                    Request::SetPolicy(protocol::Policy::default()),
                    Request::Screenshot(console_engine::live::SCREENSHOT_SPEC),
                ] {
                    let _ = session.ask(&request).await;
                }
                session.close(b"fuzz");
            }
        }
    });
    eprintln!("{passes} passes: {kinds:?}, {stored} records stored");
    // The harness reaches past the hello: some passes store records, some
    // end in a fault.
    assert!(kinds.get("synced").copied().unwrap_or(0) > 0, "{kinds:?}");
    assert!(kinds.get("faulty").copied().unwrap_or(0) > 0, "{kinds:?}");
    assert!(stored > 0, "{kinds:?}");
    check_stored(&store, fake.id, now_ms());
    let after_syncs = fake.requests();

    // A live view against answers that come at once: paced, bounded.
    let updates = Arc::new(Mutex::new(Vec::new()));
    let sink = updates.clone();
    let client = LiveClient::new(
        syncer.clone(),
        store.clone(),
        Arc::new(move |update| sink.lock().expect("updates").push(update)),
        console_engine::clock::wall_now_ms,
    );
    let mut board = LiveBoard::default();
    let watch = board
        .want(LiveMode::Single, &[fake.id])
        .expect("a new watch");
    const WATCHED: Duration = Duration::from_secs(4);
    runtime.block_on(async {
        client.set(&watch);
        tokio::time::sleep(WATCHED).await;
        for handle in client.stop_all() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("the watch stops in time")
                .expect("the watch task did not panic");
        }
    });
    for update in updates.lock().expect("updates").drain(..) {
        board.apply(update);
    }
    let live_requests = fake.requests() - after_syncs;
    // At most one frame request every 250 ms, plus restarts and stops.
    assert!(
        live_requests < 4 * 4 * 3 + 30,
        "{live_requests} requests in {WATCHED:?}"
    );
    drop((client, syncer, runtime));

    // Only the fuzzed agent's id, whatever its hellos claimed; host names
    // capped.
    let record = store.agent(fake.id).expect("inventory").expect("record");
    if let Some(hostname) = record.hostname {
        assert!(hostname.len() <= MAX_HOSTNAME_BYTES);
    }
    drop(store);
    only_agent_in_store(&data, fake.id);
}
