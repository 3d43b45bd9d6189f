//! Console store on real sled databases in temporary directories:
//! exactly-once ingest, queries, rollups, retention, export, audit chain,
//! inventory, settings, locking, corruption, and whole batches after
//! aborts in the middle of ingesting.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use console_engine::model::{AgentId, DayClock, DayNumber, Presence as StoredPresence, DAY_MS};
use console_engine::store::{
    AgentRecord, AuditEntry, AuditError, ConsoleStore, ExportKind, RecordKind, StoreError,
};
use console_engine::validate::MAX_SPAN_MS;
use protocol::{
    ActivitySpan, Cursor, GapMarker, GapReason, HealthLevel, HealthSample, Presence, Record,
    RecordBatch, Retention, SeqRecord, SessionEvent, SessionEventKind, StreamKind, UsageSpan,
};

/// 2026-03-02T08:00:00Z.
const T0_MS: i64 = 1_772_438_400_000;
const HOUR_MS: i64 = 3_600_000;
/// The console's clock at ingest: every record of these tests is in its
/// past.
const NOW_MS: i64 = T0_MS + 3_650 * DAY_MS;
/// Europe/Paris, daylight saving included.
fn paris() -> &'static DayClock {
    static PARIS: std::sync::LazyLock<DayClock> = std::sync::LazyLock::new(|| {
        DayClock::from_name("Europe/Paris").expect("Europe/Paris is in the tz database")
    });
    &PARIS
}
const EPOCH: u64 = 0xE1;
const A: AgentId = AgentId::from_u128(0xA);
const B: AgentId = AgentId::from_u128(0xB);

fn open(dir: &Path) -> ConsoleStore {
    ConsoleStore::open(dir, paris().clone()).unwrap()
}

fn usage(seq: u64, start_ms: i64, end_ms: i64, app: &str) -> SeqRecord {
    SeqRecord {
        seq,
        record: Record::Usage(UsageSpan {
            start_ms,
            end_ms,
            app: app.to_owned(),
            raw_app: app.to_lowercase(),
            title: None,
        }),
    }
}

fn activity(seq: u64, start_ms: i64, end_ms: i64, presence: Presence) -> SeqRecord {
    SeqRecord {
        seq,
        record: Record::Activity(ActivitySpan {
            start_ms,
            end_ms,
            presence,
            user: "marie".to_owned(),
        }),
    }
}

fn session(seq: u64, at_ms: i64, kind: SessionEventKind) -> SeqRecord {
    SeqRecord {
        seq,
        record: Record::Session(SessionEvent {
            at_ms,
            kind,
            user: "marie".to_owned(),
        }),
    }
}

fn health(seq: u64, at_ms: i64) -> SeqRecord {
    SeqRecord {
        seq,
        record: Record::Health(HealthSample {
            at_ms,
            cpu_pct: 10.0,
            mem_used_bytes: 1,
            mem_total_bytes: 4,
            swap_used_bytes: 0,
            swap_total_bytes: 0,
            disks: Vec::new(),
            uptime_secs: 5,
            load_avg: [0.0; 3],
            top_processes: Vec::new(),
            score: 90,
            level: HealthLevel::Ok,
        }),
    }
}

fn batch(stream: StreamKind, epoch: u64, records: Vec<SeqRecord>) -> RecordBatch {
    RecordBatch {
        stream,
        epoch,
        records,
        more: false,
    }
}

/// `count` one-minute usage spans from seq `first_seq`, cycling three apps.
fn usage_run(first_seq: u64, count: u64) -> Vec<SeqRecord> {
    (first_seq..first_seq + count)
        .map(|seq| {
            let start_ms = T0_MS + seq as i64 * 60_000;
            let app = ["Firefox", "Terminal", "Files"][(seq % 3) as usize];
            usage(seq, start_ms, start_ms + 50_000, app)
        })
        .collect()
}

/// `[start_ms, end_ms)` as an agent sends it: spans cut every 5 minutes,
/// numbered from `first_seq`.
fn cut(
    first_seq: u64,
    start_ms: i64,
    end_ms: i64,
    span: impl Fn(u64, i64, i64) -> SeqRecord,
) -> Vec<SeqRecord> {
    let mut records = Vec::new();
    let mut from_ms = start_ms;
    while from_ms < end_ms {
        let to_ms = end_ms.min(from_ms + 300_000);
        records.push(span(first_seq + records.len() as u64, from_ms, to_ms));
        from_ms = to_ms;
    }
    records
}

fn all_usage(store: &ConsoleStore, agent: AgentId) -> Vec<console_engine::model::UsageSpan> {
    store.usage_spans(agent, i64::MIN, i64::MAX).unwrap()
}

fn all_app_totals(
    store: &ConsoleStore,
    agent: Option<AgentId>,
) -> Vec<(AgentId, i32, String, i64)> {
    store
        .app_day_totals(agent, DayNumber::MIN, DayNumber::MAX)
        .unwrap()
        .into_iter()
        .map(|total| (total.agent, total.day, total.app, total.active_ms))
        .collect()
}

#[test]
fn the_store_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<ConsoleStore>();
}

#[test]
fn ingest_then_query_in_time_order_clipped_to_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // The longest span an agent sends.
    const STEP_MS: i64 = MAX_SPAN_MS;
    // Out of time order within the batch (a clock jump on the agent).
    let records = vec![
        usage(1, T0_MS + 2 * STEP_MS, T0_MS + 3 * STEP_MS, "Terminal"),
        usage(2, T0_MS, T0_MS + STEP_MS, "Firefox"),
        usage(3, T0_MS + STEP_MS, T0_MS + 2 * STEP_MS, "Files"),
    ];
    let report = store
        .ingest(A, &batch(StreamKind::Usage, EPOCH, records), NOW_MS)
        .unwrap();
    assert_eq!(report.stored_records, 3);
    assert_eq!(report.skipped_duplicates, 0);
    assert_eq!(
        report.new_cursor,
        Cursor {
            epoch: EPOCH,
            seq: 3
        }
    );
    assert_eq!(
        store.cursor(A, StreamKind::Usage).unwrap(),
        Some(report.new_cursor)
    );
    assert_eq!(store.cursor(A, StreamKind::Health).unwrap(), None);

    let spans = all_usage(&store, A);
    let apps: Vec<&str> = spans.iter().map(|span| span.app.as_str()).collect();
    assert_eq!(apps, ["Firefox", "Files", "Terminal"]);
    assert!(spans.iter().all(|span| span.agent == A));

    // Clipped to the range; a span ending at `from` is not in it.
    let middle = store
        .usage_spans(A, T0_MS + STEP_MS + 1_000, T0_MS + 2 * STEP_MS + 1_000)
        .unwrap();
    let bounds: Vec<(i64, i64)> = middle.iter().map(|s| (s.start_ms, s.end_ms)).collect();
    assert_eq!(
        bounds,
        [
            (T0_MS + STEP_MS + 1_000, T0_MS + 2 * STEP_MS),
            (T0_MS + 2 * STEP_MS, T0_MS + 2 * STEP_MS + 1_000)
        ]
    );
    assert!(store
        .usage_spans(A, T0_MS + 3 * STEP_MS, T0_MS + 4 * STEP_MS)
        .unwrap()
        .is_empty());
    assert!(all_usage(&store, B).is_empty());

    // The sessions stream carries activity spans and session events.
    let sessions = vec![
        session(1, T0_MS, SessionEventKind::Login),
        activity(2, T0_MS, T0_MS + STEP_MS, Presence::Active),
        activity(3, T0_MS + STEP_MS, T0_MS + 2 * STEP_MS, Presence::Idle),
        session(4, T0_MS + 2 * STEP_MS, SessionEventKind::Lock),
    ];
    store
        .ingest(A, &batch(StreamKind::Sessions, EPOCH, sessions), NOW_MS)
        .unwrap();
    let presence: Vec<StoredPresence> = store
        .activity_spans(A, T0_MS, T0_MS + DAY_MS)
        .unwrap()
        .iter()
        .map(|span| span.presence)
        .collect();
    assert_eq!(presence, [StoredPresence::Active, StoredPresence::Idle]);
    let events = store.session_events(A, T0_MS, T0_MS + 2 * STEP_MS).unwrap();
    assert_eq!(events.len(), 1, "the end of the range is excluded");

    let points = (1..=5).map(|seq| health(seq, T0_MS + seq as i64 * 30_000));
    store
        .ingest(
            A,
            &batch(StreamKind::Health, EPOCH, points.collect()),
            NOW_MS,
        )
        .unwrap();
    let points = store
        .health_points(A, T0_MS + 60_000, T0_MS + 120_000)
        .unwrap();
    let at: Vec<i64> = points.iter().map(|point| point.at_ms - T0_MS).collect();
    assert_eq!(at, [60_000, 90_000]);
    assert_eq!(points[0].mem_pct, 25.0);
}

#[test]
fn a_span_starting_before_the_range_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // The longest lock an agent sends, then 599 short spans after it: the
    // lock's block starts long before the queried minute.
    let mut records = vec![activity(1, T0_MS, T0_MS + MAX_SPAN_MS, Presence::Locked)];
    for seq in 2..600 {
        let start_ms = T0_MS + MAX_SPAN_MS + seq as i64 * 1_000;
        records.push(activity(seq, start_ms, start_ms + 1_000, Presence::Active));
    }
    store
        .ingest(A, &batch(StreamKind::Sessions, EPOCH, records), NOW_MS)
        .unwrap();
    let from_ms = T0_MS + MAX_SPAN_MS - 60_000;
    let last_minute = store.activity_spans(A, from_ms, from_ms + 30_000).unwrap();
    assert_eq!(last_minute.len(), 1);
    assert_eq!(last_minute[0].presence, StoredPresence::Locked);
    assert_eq!(last_minute[0].end_ms - last_minute[0].start_ms, 30_000);
}

#[test]
fn replaying_a_batch_stores_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = batch(StreamKind::Usage, EPOCH, usage_run(1, 40));
    store.ingest(A, &first, NOW_MS).unwrap();
    let spans = all_usage(&store, A);
    let totals = all_app_totals(&store, Some(A));

    let replay = store.ingest(A, &first, NOW_MS).unwrap();
    assert_eq!(replay.stored_records, 0);
    assert_eq!(replay.skipped_duplicates, 40);
    assert_eq!(
        replay.new_cursor,
        Cursor {
            epoch: EPOCH,
            seq: 40
        }
    );
    assert_eq!(all_usage(&store, A), spans);
    assert_eq!(all_app_totals(&store, Some(A)), totals);

    // Overlapping replay: only the new tail is stored.
    let overlap = store
        .ingest(
            A,
            &batch(StreamKind::Usage, EPOCH, usage_run(31, 20)),
            NOW_MS,
        )
        .unwrap();
    assert_eq!(overlap.stored_records, 10);
    assert_eq!(overlap.skipped_duplicates, 10);
    assert_eq!(overlap.new_cursor.seq, 50);
    let starts: Vec<i64> = all_usage(&store, A).iter().map(|s| s.start_ms).collect();
    let expected: Vec<i64> = (1..=50).map(|seq| T0_MS + seq * 60_000).collect();
    assert_eq!(starts, expected);
}

#[test]
fn a_hole_inside_a_batch_is_refused_and_one_before_it_is_recorded_as_missed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .ingest(
            A,
            &batch(StreamKind::Usage, EPOCH, usage_run(1, 10)),
            NOW_MS,
        )
        .unwrap();
    let spans = all_usage(&store, A);
    let totals = all_app_totals(&store, Some(A));

    // A hole in the middle of a batch refuses the whole batch.
    let mut holed = usage_run(11, 3);
    holed.extend(usage_run(15, 3));
    assert!(matches!(
        store.ingest(A, &batch(StreamKind::Usage, EPOCH, holed), NOW_MS),
        Err(StoreError::Hole {
            expected_seq: 14,
            found_seq: 15,
            ..
        })
    ));
    assert_eq!(
        store.cursor(A, StreamKind::Usage).unwrap(),
        Some(Cursor {
            epoch: EPOCH,
            seq: 10
        })
    );
    assert_eq!(all_usage(&store, A), spans);
    assert_eq!(all_app_totals(&store, Some(A)), totals);

    // 11 is gone from the agent (dropped over its quota): the batch from 12
    // is stored and the loss is recorded, not hidden.
    let report = store
        .ingest(
            A,
            &batch(StreamKind::Usage, EPOCH, usage_run(12, 5)),
            NOW_MS,
        )
        .unwrap();
    assert_eq!(report.stored_records, 5);
    assert_eq!(report.missed_records, 1);
    assert_eq!(
        report.new_cursor,
        Cursor {
            epoch: EPOCH,
            seq: 16
        }
    );
    let gaps = store.gaps(A).unwrap();
    assert!(
        gaps.iter()
            .any(|gap| gap.first_seq == 11 && gap.last_seq == 11),
        "{gaps:?}"
    );
}

#[test]
fn a_new_epoch_is_accepted_from_seq_1_and_the_old_one_is_then_stale() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .ingest(
            A,
            &batch(StreamKind::Usage, EPOCH, usage_run(1, 30)),
            NOW_MS,
        )
        .unwrap();
    // The agent's store was wiped: new epoch, numbering from 1 again.
    let new_epoch = EPOCH + 1;
    let later: Vec<SeqRecord> = (1..=5)
        .map(|seq| {
            let start_ms = T0_MS + DAY_MS + seq as i64 * 60_000;
            usage(seq, start_ms, start_ms + 1_000, "Zoom")
        })
        .collect();
    let report = store
        .ingest(A, &batch(StreamKind::Usage, new_epoch, later), NOW_MS)
        .unwrap();
    assert_eq!(report.stored_records, 5);
    assert_eq!(report.skipped_duplicates, 0);
    assert_eq!(report.missed_records, 0);
    assert_eq!(
        report.new_cursor,
        Cursor {
            epoch: new_epoch,
            seq: 5
        }
    );
    assert_eq!(all_usage(&store, A).len(), 35, "old records stay");

    // A late batch of the epoch left behind would re-add old seqs.
    let stale = store.ingest(A, &batch(StreamKind::Usage, EPOCH, usage_run(1, 3)), NOW_MS);
    assert!(
        matches!(stale, Err(StoreError::StaleEpoch { .. })),
        "{stale:?}"
    );
    assert_eq!(all_usage(&store, A).len(), 35);
}

#[test]
fn absurd_records_are_not_stored_and_a_gap_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let span = |seq, start_ms, end_ms| usage(seq, start_ms, end_ms, "Firefox");
    let mut overlong = health(6, T0_MS);
    if let Record::Health(sample) = &mut overlong.record {
        sample.cpu_pct = -5.0;
    }
    // Seqs 2, 3, 4 and 7 cannot be true; 1, 5 and 8 are ordinary.
    let records = vec![
        span(1, T0_MS, T0_MS + 60_000),
        span(2, T0_MS, T0_MS - 60_000),
        span(3, i64::MIN, i64::MAX),
        span(4, -62_135_596_800_000, T0_MS),
        span(5, T0_MS + 60_000, T0_MS + 120_000),
        overlong,
        span(7, T0_MS, T0_MS + 2 * DAY_MS),
        span(8, T0_MS + 120_000, T0_MS + 180_000),
    ];
    let report = store
        .ingest(A, &batch(StreamKind::Usage, EPOCH, records), NOW_MS)
        .unwrap();
    assert_eq!(report.stored_records, 3);
    assert_eq!(report.refused_records, 5);
    let (first_seq, first_reason) = report.first_refusal.clone().unwrap();
    assert_eq!(first_seq, 2);
    assert!(first_reason.to_string().contains("ends"), "{first_reason}");
    // The cursor moves past them all: they are not asked again.
    assert_eq!(
        report.new_cursor,
        Cursor {
            epoch: EPOCH,
            seq: 8
        }
    );
    let starts: Vec<i64> = all_usage(&store, A).iter().map(|s| s.start_ms).collect();
    assert_eq!(starts, [T0_MS, T0_MS + 60_000, T0_MS + 120_000]);
    // Rollups count only what was stored: three one-minute spans.
    let total_ms: i64 = all_app_totals(&store, Some(A))
        .iter()
        .map(|(_, _, _, ms)| ms)
        .sum();
    assert_eq!(total_ms, 180_000);
    // One gap per run of refused seqs, in the same batch as the records.
    let gaps: Vec<(u64, u64, String)> = store
        .gaps(A)
        .unwrap()
        .into_iter()
        .map(|gap| (gap.first_seq, gap.last_seq, gap.reason))
        .collect();
    let invalid = console_engine::store::INVALID_REASON.to_owned();
    assert_eq!(gaps, [(2, 4, invalid.clone()), (6, 7, invalid)]);
    // Exports of such a store stay finite and exact.
    let mut out = Vec::new();
    let lines = store
        .export_jsonl(
            &mut out,
            &[ExportKind::Raw(RecordKind::Usage)],
            i64::MIN,
            i64::MAX,
        )
        .unwrap();
    assert_eq!(lines, 3);
}

#[test]
fn text_from_agents_is_capped_on_char_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let huge_app = format!("x{}", "é".repeat(2 << 20));
    let mut record = usage(1, T0_MS, T0_MS + 1_000, &huge_app);
    if let Record::Usage(span) = &mut record.record {
        span.title = Some(format!("{}\u{1b}[2J", "t".repeat(2_000)));
    }
    let user = format!("{}\n", "ü".repeat(1 << 19));
    let mut login = session(1, T0_MS, SessionEventKind::Login);
    if let Record::Session(event) = &mut login.record {
        event.user = user;
    }
    store
        .ingest(A, &batch(StreamKind::Usage, EPOCH, vec![record]), NOW_MS)
        .unwrap();
    store
        .ingest(A, &batch(StreamKind::Sessions, EPOCH, vec![login]), NOW_MS)
        .unwrap();
    let span = all_usage(&store, A).pop().unwrap();
    assert_eq!(
        span.app.len(),
        console_engine::validate::MAX_APP_BYTES - 1,
        "cut before a char"
    );
    assert!(span.app.starts_with('x') && span.app[1..].chars().all(|c| c == 'é'));
    let title = span.title.unwrap();
    assert_eq!(title.len(), console_engine::validate::MAX_TITLE_BYTES);
    assert!(!title.contains('\u{1b}'));
    let event = store
        .session_events(A, i64::MIN, i64::MAX)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(event.user.len(), console_engine::validate::MAX_USER_BYTES);
    assert!(event.user.chars().all(|c| c == 'ü'));
}

#[test]
fn faults_count_per_agent_and_kind_and_survive_reopen() {
    use console_engine::store::FaultKind;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        assert!(store.faults(None).unwrap().is_empty());
        store
            .note_fault(A, FaultKind::InvalidData, T0_MS, "first")
            .unwrap();
        store
            .note_fault(A, FaultKind::InvalidData, T0_MS + 10, "second")
            .unwrap();
        let long = "z".repeat(1 << 20);
        store
            .note_fault(B, FaultKind::Impersonation, T0_MS + 5, &long)
            .unwrap();
    }
    let store = open(dir.path());
    let faults = store.faults(None).unwrap();
    assert_eq!(faults.len(), 2);
    assert_eq!(
        (faults[0].agent, faults[0].kind, faults[0].count),
        (A, FaultKind::InvalidData, 2)
    );
    assert_eq!((faults[0].first_ms, faults[0].last_ms), (T0_MS, T0_MS + 10));
    assert_eq!(faults[0].detail, "second");
    assert_eq!(faults[1].kind, FaultKind::Impersonation);
    assert_eq!(
        faults[1].detail.len(),
        console_engine::store::MAX_FAULT_DETAIL_BYTES
    );
    assert_eq!(store.faults(Some(B)).unwrap().len(), 1);
    assert!(faults[0].is_recent(T0_MS + DAY_MS));
    assert!(!faults[0].is_recent(T0_MS + 8 * DAY_MS));
}

#[test]
fn first_contact_after_the_agent_pruned_records_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let report = store
        .ingest(
            A,
            &batch(StreamKind::Usage, EPOCH, usage_run(101, 5)),
            NOW_MS,
        )
        .unwrap();
    assert_eq!(report.stored_records, 5);
    assert_eq!(report.missed_records, 100);
    let gaps = store.gaps(A).unwrap();
    assert_eq!(gaps.len(), 1);
    assert_eq!((gaps[0].first_seq, gaps[0].last_seq), (1, 100));
    assert_eq!(gaps[0].stream, "usage");
    assert_eq!(gaps[0].reason, "NotServed");
    // The agent's own gap markers are stored too.
    let marker = SeqRecord {
        seq: 106,
        record: Record::Gap(GapMarker {
            stream: StreamKind::Usage,
            first_seq: 50,
            last_seq: 60,
            reason: GapReason::QuotaExceeded,
        }),
    };
    let report = store
        .ingest(
            A,
            &batch(StreamKind::Usage, EPOCH, vec![marker]),
            NOW_MS + 1,
        )
        .unwrap();
    assert_eq!(report.stored_records, 1);
    let gaps = store.gaps(A).unwrap();
    assert_eq!(gaps.len(), 2);
    assert_eq!(gaps[1].reason, "QuotaExceeded");
}

#[test]
fn cursor_records_and_rollups_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (spans, totals) = {
        let store = open(dir.path());
        store
            .ingest(
                A,
                &batch(StreamKind::Usage, EPOCH, usage_run(1, 700)),
                NOW_MS,
            )
            .unwrap();
        (all_usage(&store, A), all_app_totals(&store, None))
    };
    let store = open(dir.path());
    assert_eq!(
        store.cursor(A, StreamKind::Usage).unwrap(),
        Some(Cursor {
            epoch: EPOCH,
            seq: 700
        })
    );
    assert_eq!(all_usage(&store, A), spans);
    assert_eq!(all_app_totals(&store, None), totals);
    // Ingest continues where it stopped.
    let report = store
        .ingest(
            A,
            &batch(StreamKind::Usage, EPOCH, usage_run(690, 20)),
            NOW_MS,
        )
        .unwrap();
    assert_eq!((report.stored_records, report.skipped_duplicates), (9, 11));
}

/// The sled database of a closed store, for inspecting and damaging it.
/// sled's background threads of a just dropped store may hold its file
/// lock for a moment.
fn raw_db(dir: &Path) -> sled::Db {
    for _ in 0..250 {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(sled::Error::Io(error)) if error.to_string().contains("could not acquire lock") => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("cannot open {}: {error}", dir.display()),
        }
    }
    panic!("{} stays locked", dir.display());
}

/// Number of block keys of `kind` in a closed store.
fn block_keys(dir: &Path, kind: RecordKind) -> usize {
    let tag = RecordKind::ALL.iter().position(|k| *k == kind).unwrap() as u8 + 1;
    let db = raw_db(dir);
    let data = db.open_tree("data").unwrap();
    data.scan_prefix([tag]).count()
}

#[test]
fn small_batches_fill_blocks_instead_of_making_tiny_ones() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        for seq in 1..=300 {
            store
                .ingest(
                    A,
                    &batch(StreamKind::Usage, EPOCH, usage_run(seq, 1)),
                    NOW_MS,
                )
                .unwrap();
        }
        assert_eq!(all_usage(&store, A).len(), 300);
    }
    // 256 in the first block, 44 in the second.
    assert_eq!(block_keys(dir.path(), RecordKind::Usage), 2);
    let store = open(dir.path());
    let starts: Vec<i64> = all_usage(&store, A).iter().map(|s| s.start_ms).collect();
    let expected: Vec<i64> = (1..=300).map(|seq| T0_MS + seq * 60_000).collect();
    assert_eq!(starts, expected);
}

/// Day totals recomputed from raw spans, as analytics would without
/// rollups.
fn recompute_app_totals(
    store: &ConsoleStore,
    agent: AgentId,
) -> BTreeMap<(DayNumber, String), i64> {
    let clock = store.day_clock();
    let mut totals = BTreeMap::new();
    for span in all_usage(store, agent) {
        for (day, from_ms, to_ms) in clock.split_by_day(span.start_ms, span.end_ms) {
            *totals.entry((day, span.app.clone())).or_default() += to_ms - from_ms;
        }
    }
    totals
}

#[test]
fn rollups_equal_a_recomputation_from_raw_spans_across_local_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(&store.day_clock(), paris());
    // 2026-03-02 22:30 UTC is 23:30 in Paris (UTC+1): this two-hour span
    // puts 30 minutes on the 2nd and 90 on the 3rd.
    let late_ms = 1_772_490_600_000;
    let mut records = cut(
        1,
        late_ms,
        late_ms + 2 * HOUR_MS,
        |seq, start_ms, end_ms| usage(seq, start_ms, end_ms, "Firefox"),
    );
    let mut seq = records.len() as u64 + 1;
    for day in 0..3 {
        for minute in 0..200 {
            let start_ms = T0_MS + day * DAY_MS + minute * 97_000;
            let app = ["Firefox", "Terminal", "LibreOffice Calc"][(minute % 3) as usize];
            records.push(usage(seq, start_ms, start_ms + 90_000, app));
            seq += 1;
        }
    }
    // Two batches, the second in small pieces, so tails get appended to.
    let (head, tail) = records.split_at(450);
    store
        .ingest(A, &batch(StreamKind::Usage, EPOCH, head.to_vec()), NOW_MS)
        .unwrap();
    for chunk in tail.chunks(7) {
        store
            .ingest(A, &batch(StreamKind::Usage, EPOCH, chunk.to_vec()), NOW_MS)
            .unwrap();
    }

    let stored: BTreeMap<(DayNumber, String), i64> = all_app_totals(&store, Some(A))
        .into_iter()
        .map(|(_, day, app, ms)| ((day, app), ms))
        .collect();
    assert_eq!(stored, recompute_app_totals(&store, A));
    let late_day = paris().day_of(late_ms);
    let firefox = |day| stored.get(&(day, "Firefox".to_owned())).copied();
    assert!(firefox(late_day).unwrap() >= 1_800_000);
    // The 3rd only has the 90 minutes after midnight plus its own spans.
    let own_spans_ms: i64 = all_usage(&store, A)
        .iter()
        .filter(|s| {
            s.app == "Firefox"
                && !(late_ms..late_ms + 2 * HOUR_MS).contains(&s.start_ms)
                && paris().day_of(s.start_ms) == late_day + 1
        })
        .map(|s| s.end_ms - s.start_ms)
        .sum();
    assert_eq!(firefox(late_day + 1), Some(5_400_000 + own_spans_ms));

    // Presence totals, also split at local midnight.
    let mut sessions = cut(1, late_ms, late_ms + HOUR_MS, |seq, start_ms, end_ms| {
        activity(seq, start_ms, end_ms, Presence::Active)
    });
    let next = sessions.len() as u64 + 1;
    sessions.extend(cut(
        next,
        late_ms + HOUR_MS,
        late_ms + 2 * HOUR_MS,
        |seq, start_ms, end_ms| activity(seq, start_ms, end_ms, Presence::Idle),
    ));
    let next = sessions.len() as u64 + 1;
    sessions.extend(cut(
        next,
        late_ms + 2 * HOUR_MS,
        late_ms + 5 * HOUR_MS,
        |seq, start_ms, end_ms| activity(seq, start_ms, end_ms, Presence::Locked),
    ));
    store
        .ingest(A, &batch(StreamKind::Sessions, EPOCH, sessions), NOW_MS)
        .unwrap();
    let presence = store
        .presence_day_totals(Some(A), late_day, late_day + 1)
        .unwrap();
    let rows: Vec<(DayNumber, i64, i64, i64)> = presence
        .iter()
        .map(|t| (t.day, t.active_ms, t.idle_ms, t.locked_ms))
        .collect();
    assert_eq!(
        rows,
        [
            (late_day, 1_800_000, 0, 0),
            (late_day + 1, 1_800_000, HOUR_MS, 3 * HOUR_MS)
        ]
    );
}

#[test]
fn fleet_totals_cover_every_agent_and_only_the_asked_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let agents: Vec<AgentId> = (1..=5).map(|n| AgentId::from_u128(n << 100)).collect();
    for agent in &agents {
        let records: Vec<SeqRecord> = (0..10)
            .map(|day| {
                let start_ms = T0_MS + day * DAY_MS;
                usage(day as u64 + 1, start_ms, start_ms + MAX_SPAN_MS, "Firefox")
            })
            .collect();
        store
            .ingest(*agent, &batch(StreamKind::Usage, EPOCH, records), NOW_MS)
            .unwrap();
    }
    let first_day = paris().day_of(T0_MS);
    let totals = store
        .app_day_totals(None, first_day + 2, first_day + 4)
        .unwrap();
    assert_eq!(totals.len(), 5 * 3);
    let seen: Vec<(AgentId, DayNumber)> = totals.iter().map(|t| (t.agent, t.day)).collect();
    let expected: Vec<(AgentId, DayNumber)> = agents
        .iter()
        .flat_map(|agent| (2..=4).map(move |d| (*agent, first_day + d)))
        .collect();
    assert_eq!(seen, expected);
    assert!(totals.iter().all(|t| t.active_ms == MAX_SPAN_MS));
    assert!(store
        .app_day_totals(None, first_day + 4, first_day + 2)
        .unwrap()
        .is_empty());
}

/// Overwrites every raw block value of `kind` with `value` in a closed
/// store.
fn overwrite_blocks(dir: &Path, kind: RecordKind, value: &[u8]) -> usize {
    let tag = RecordKind::ALL.iter().position(|k| *k == kind).unwrap() as u8 + 1;
    let db = raw_db(dir);
    let data = db.open_tree("data").unwrap();
    let keys: Vec<sled::IVec> = data.scan_prefix([tag]).keys().map(Result::unwrap).collect();
    for key in &keys {
        data.insert(key, value).unwrap();
    }
    db.flush().unwrap();
    keys.len()
}

#[test]
fn day_totals_never_read_raw_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (apps, presence) = {
        let store = open(dir.path());
        store
            .ingest(
                A,
                &batch(StreamKind::Usage, EPOCH, usage_run(1, 600)),
                NOW_MS,
            )
            .unwrap();
        let sessions = vec![activity(1, T0_MS, T0_MS + MAX_SPAN_MS, Presence::Active)];
        store
            .ingest(A, &batch(StreamKind::Sessions, EPOCH, sessions), NOW_MS)
            .unwrap();
        (
            all_app_totals(&store, None),
            store
                .presence_day_totals(None, DayNumber::MIN, DayNumber::MAX)
                .unwrap(),
        )
    };
    assert!(!apps.is_empty());
    // Every raw block is garbage now: raw queries fail, totals still answer.
    assert!(overwrite_blocks(dir.path(), RecordKind::Usage, b"garbage") >= 3);
    assert_eq!(overwrite_blocks(dir.path(), RecordKind::Activity, b"x"), 1);
    {
        let store = open(dir.path());
        assert!(store.usage_spans(A, i64::MIN, i64::MAX).is_err());
        assert_eq!(all_app_totals(&store, None), apps);
        assert_eq!(
            store
                .presence_day_totals(Some(A), DayNumber::MIN, DayNumber::MAX)
                .unwrap(),
            presence
        );
    }

    // Retention deletes raw blocks; the totals stay.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .ingest(
            A,
            &batch(StreamKind::Usage, EPOCH, usage_run(1, 600)),
            NOW_MS,
        )
        .unwrap();
    let totals = all_app_totals(&store, Some(A));
    let retention = Retention {
        usage_days: 30,
        sessions_days: 30,
        health_days: 14,
        frames_days: 7,
    };
    let report = store.prune(T0_MS + 40 * DAY_MS, &retention).unwrap();
    assert_eq!(report.get(RecordKind::Usage).records, 600);
    assert_eq!(report.records(), 600);
    assert!(all_usage(&store, A).is_empty());
    assert_eq!(all_app_totals(&store, Some(A)), totals);
}

#[test]
fn retention_is_per_data_class_and_keeps_recent_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Usage on day 0 and on day 20; health on day 0 and day 20.
    let mut old_and_new = usage_run(1, 300);
    for seq in 301..=310 {
        let start_ms = T0_MS + 20 * DAY_MS + seq as i64 * 1_000;
        old_and_new.push(usage(seq, start_ms, start_ms + 500, "Zoom"));
    }
    store
        .ingest(A, &batch(StreamKind::Usage, EPOCH, old_and_new), NOW_MS)
        .unwrap();
    store
        .ingest(
            A,
            &batch(
                StreamKind::Health,
                EPOCH,
                vec![health(1, T0_MS), health(2, T0_MS + 20 * DAY_MS)],
            ),
            NOW_MS,
        )
        .unwrap();
    let retention = Retention {
        usage_days: 30,
        sessions_days: 30,
        health_days: 14,
        frames_days: 7,
    };
    // Day 25: usage (30 days) keeps everything; health (14 days) loses
    // the block whose newest point is older than day 11.
    let report = store.prune(T0_MS + 25 * DAY_MS, &retention).unwrap();
    assert_eq!(report.get(RecordKind::Usage).records, 0);
    assert_eq!(
        report.get(RecordKind::Health).records,
        0,
        "one block, one new point"
    );
    // Day 45: the day-0 usage blocks go, the block holding day 20 stays
    // whole (blocks are pruned whole by their newest record).
    let report = store.prune(T0_MS + 45 * DAY_MS, &retention).unwrap();
    let pruned = report.get(RecordKind::Usage);
    assert_eq!((pruned.blocks, pruned.records), (1, 256));
    assert!(pruned.bytes > 0);
    assert_eq!(all_usage(&store, A).len(), 54);
    assert_eq!(report.get(RecordKind::Health).records, 2);
}

#[test]
fn export_streams_json_lines_with_agent_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .ingest(
            A,
            &batch(StreamKind::Usage, EPOCH, usage_run(1, 10)),
            NOW_MS,
        )
        .unwrap();
    store
        .ingest(B, &batch(StreamKind::Usage, EPOCH, usage_run(1, 4)), NOW_MS)
        .unwrap();
    let sessions = vec![session(1, T0_MS, SessionEventKind::Login)];
    store
        .ingest(A, &batch(StreamKind::Sessions, EPOCH, sessions), NOW_MS)
        .unwrap();
    let mut out = Vec::new();
    let lines = store
        .export_jsonl(&mut out, &ExportKind::ALL, T0_MS, T0_MS + DAY_MS)
        .unwrap();
    let parsed: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(parsed.len() as u64, lines);
    let count = |kind: &str, agent: AgentId| {
        parsed
            .iter()
            .filter(|line| line["kind"] == kind && line["agent"] == agent.to_string())
            .count()
    };
    assert_eq!(count("usage", A), 10);
    assert_eq!(count("usage", B), 4);
    assert_eq!(count("session", A), 1);
    assert_eq!(count("app_day_total", A), 3);
    let login = parsed
        .iter()
        .find(|line| line["kind"] == "session")
        .unwrap();
    assert_eq!(login["record"]["kind"], "Login");
    assert_eq!(login["record"]["at_ms"], T0_MS);
    assert_eq!(
        ExportKind::from_name("presence_day_total"),
        Some(ExportKind::PresenceDayTotals)
    );

    // Only the asked kinds and range.
    let mut out = Vec::new();
    let lines = store
        .export_jsonl(
            &mut out,
            &[ExportKind::Raw(RecordKind::Usage)],
            T0_MS + 3 * 60_000,
            T0_MS + 5 * 60_000,
        )
        .unwrap();
    assert_eq!(lines, 4, "seqs 3 and 4 of both agents");
}

#[test]
fn audit_chain_verifies_and_tampering_is_found_at_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        assert_eq!(store.verify_audit().unwrap(), 0);
        for n in 0..5 {
            let record = store
                .audit(AuditEntry {
                    at_ms: T0_MS + n,
                    actor: "admin".into(),
                    action: "export".into(),
                    target: format!("agent-{n}"),
                    detail: format!("detail-{n}"),
                })
                .unwrap();
            assert_eq!(record.index, n as u64);
        }
        assert_eq!(store.verify_audit().unwrap(), 5);
        let log = store.audit_log(1, 2).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].index, 1);
        assert_eq!(log[1].prev_hash, log[0].hash);
        assert_eq!(log[1].entry.detail, "detail-2");
    }
    // Edit entry 2 in place, keeping its length and its stored hash.
    {
        let db = raw_db(dir.path());
        let audit = db.open_tree("audit").unwrap();
        let key = 2_u64.to_be_bytes();
        let mut value = audit.get(key).unwrap().unwrap().to_vec();
        let at = value
            .windows(8)
            .position(|window| window == b"detail-2")
            .unwrap();
        value[at + 7] = b'9';
        audit.insert(key, value).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    match store.verify_audit() {
        Err(AuditError::Broken { index, reason }) => {
            assert_eq!(index, 2);
            assert!(reason.contains("hash"), "{reason}");
        }
        other => panic!("tampering not found: {other:?}"),
    }
    drop(store);
    // Removing an entry is found too.
    {
        let db = raw_db(dir.path());
        let audit = db.open_tree("audit").unwrap();
        audit.remove(1_u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    assert!(matches!(
        store.verify_audit(),
        Err(AuditError::Broken { index: 1, .. })
    ));
}

#[test]
fn a_second_open_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let error = ConsoleStore::open(dir.path(), paris().clone()).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "store {} is in use by another smarttracker-console; stop it first",
            dir.path().display()
        )
    );
}

#[test]
fn unknown_schema_and_foreign_stores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    {
        let db = raw_db(dir.path());
        db.insert("console_schema_version", &99_u32.to_be_bytes()[..])
            .unwrap();
        db.flush().unwrap();
    }
    let error = ConsoleStore::open(dir.path(), paris().clone()).unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::UnknownSchema {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("move the directory aside"), "{message}");

    // A directory holding some other sled database (an agent store).
    let other = tempfile::tempdir().unwrap();
    {
        let db = raw_db(other.path());
        db.insert("schema_version", &1_u32.to_be_bytes()[..])
            .unwrap();
        db.flush().unwrap();
    }
    let error = ConsoleStore::open(other.path(), paris().clone()).unwrap_err();
    assert!(
        matches!(error, StoreError::NotAConsoleStore { .. }),
        "{error:?}"
    );
}

/// Usage and presence across the night of the Paris spring change
/// (2026-03-28 20:00 UTC to 2026-03-29 04:00 UTC), as an agent sends them.
fn across_the_spring_change(store: &ConsoleStore) {
    let (start_ms, end_ms) = (1_774_728_000_000, 1_774_756_800_000);
    let usage = cut(1, start_ms, end_ms, |seq, from, to| {
        usage(seq, from, to, ["Firefox", "Terminal"][(seq % 2) as usize])
    });
    let presence = cut(1, start_ms, end_ms, |seq, from, to| {
        activity(
            seq,
            from,
            to,
            [Presence::Active, Presence::Idle][(seq % 2) as usize],
        )
    });
    store
        .ingest(A, &batch(StreamKind::Usage, EPOCH, usage), NOW_MS)
        .unwrap();
    store
        .ingest(A, &batch(StreamKind::Sessions, EPOCH, presence), NOW_MS)
        .unwrap();
}

fn presence_totals(store: &ConsoleStore) -> Vec<(i32, i64, i64, i64)> {
    store
        .presence_day_totals(None, DayNumber::MIN, DayNumber::MAX)
        .unwrap()
        .into_iter()
        .map(|total| (total.day, total.active_ms, total.idle_ms, total.locked_ms))
        .collect()
}

#[test]
fn changing_the_zone_regroups_day_totals_without_raw_records() {
    let kathmandu = DayClock::from_name("Asia/Kathmandu").unwrap();
    let direct = tempfile::tempdir().unwrap();
    let expected = {
        let store = ConsoleStore::open(direct.path(), kathmandu.clone()).unwrap();
        across_the_spring_change(&store);
        (all_app_totals(&store, None), presence_totals(&store))
    };
    let dir = tempfile::tempdir().unwrap();
    let in_paris = {
        let store = open(dir.path());
        across_the_spring_change(&store);
        // Raw records go (retention); day totals must still move.
        store
            .prune(
                NOW_MS + 3_650 * DAY_MS,
                &Retention {
                    usage_days: 30,
                    sessions_days: 30,
                    health_days: 14,
                    frames_days: 7,
                },
            )
            .unwrap();
        assert!(all_usage(&store, A).is_empty());
        let in_paris = (all_app_totals(&store, None), presence_totals(&store));
        // 20:00-04:00 UTC is 21:00-06:00 in Paris: two local days.
        assert_eq!(in_paris.1.len(), 2);
        assert_ne!(in_paris, expected);
        let mut steps = Vec::new();
        store
            .set_day_clock(kathmandu.clone(), |done, total| steps.push((done, total)))
            .unwrap();
        assert_eq!(steps, [(0, 1), (1, 1)]);
        assert_eq!(store.day_clock(), kathmandu);
        assert_eq!(
            (all_app_totals(&store, None), presence_totals(&store)),
            expected
        );
        in_paris
    };
    // Opening in the first zone again regroups back.
    let store = open(dir.path());
    assert_eq!(&store.day_clock(), paris());
    assert_eq!(
        (all_app_totals(&store, None), presence_totals(&store)),
        in_paris
    );
    drop(store);
    let store = ConsoleStore::open(dir.path(), kathmandu.clone()).unwrap();
    assert_eq!(
        (all_app_totals(&store, None), presence_totals(&store)),
        expected
    );
}

#[test]
fn a_regrouping_cut_short_is_finished_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let in_paris = {
        let store = open(dir.path());
        across_the_spring_change(&store);
        all_app_totals(&store, None)
    };
    {
        // As if the process died just after noting the target zone and
        // regrouping nothing.
        let db = raw_db(dir.path());
        db.insert("day_clock_pending", &b"tz:Asia/Kathmandu"[..])
            .unwrap();
        let data = db.open_tree("data").unwrap();
        for item in data.scan_prefix(b"A") {
            data.remove(item.unwrap().0).unwrap();
        }
        db.flush().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(all_app_totals(&store, None), in_paris);
}

#[test]
fn a_store_from_before_time_zones_gets_slices_from_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let in_paris = {
        let store = open(dir.path());
        across_the_spring_change(&store);
        (all_app_totals(&store, None), presence_totals(&store))
    };
    {
        // What an older console wrote: a UTC offset, no slice totals.
        let db = raw_db(dir.path());
        db.insert("day_clock", &0_i32.to_be_bytes()[..]).unwrap();
        let data = db.open_tree("data").unwrap();
        for prefix in [b"a", b"p", b"A", b"P"] {
            for item in data.scan_prefix(prefix) {
                data.remove(item.unwrap().0).unwrap();
            }
        }
        db.flush().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(&store.day_clock(), paris());
    assert_eq!(
        (all_app_totals(&store, None), presence_totals(&store)),
        in_paris
    );
}

#[test]
fn a_corrupt_block_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .ingest(
                A,
                &batch(StreamKind::Usage, EPOCH, usage_run(1, 20)),
                NOW_MS,
            )
            .unwrap();
    }
    let good = {
        let db = raw_db(dir.path());
        let data = db.open_tree("data").unwrap();
        data.scan_prefix([1]).next().unwrap().unwrap().1.to_vec()
    };
    let mut bad_count = good.clone();
    bad_count[1..3].copy_from_slice(&999_u16.to_be_bytes());
    let mut flipped = good.clone();
    for byte in &mut flipped[11..] {
        *byte ^= 0x5A;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("bad count", bad_count),
        ("flipped body", flipped),
        ("trailing", [good.as_slice(), &[0]].concat()),
    ];
    for (name, value) in cases {
        overwrite_blocks(dir.path(), RecordKind::Usage, &value);
        let store = open(dir.path());
        let error = store.usage_spans(A, i64::MIN, i64::MAX).unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::CorruptBlock {
                    kind: RecordKind::Usage,
                    ..
                }
            ),
            "{name}: {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{name}: {message}"
        );
        assert!(
            message.contains("usage block of agent"),
            "{name}: {message}"
        );
        assert!(
            store
                .export_jsonl(Vec::new(), &ExportKind::ALL, i64::MIN, i64::MAX)
                .is_err(),
            "{name}"
        );
        // Ingest appends to that block: refused, not a panic.
        assert!(
            store
                .ingest(
                    A,
                    &batch(StreamKind::Usage, EPOCH, usage_run(21, 1)),
                    NOW_MS
                )
                .is_err(),
            "{name}"
        );
    }
}

#[test]
fn inventory_and_settings_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let record = |agent: AgentId, name: &str| AgentRecord {
        agent,
        name: name.into(),
        spki_sha256: [7; 32],
        added_ms: T0_MS,
        addresses: vec!["192.0.2.10:4433".into()],
        last_seen_ms: None,
        last_error: None,
        hostname: Some("pc".into()),
        demo: false,
        time_zone: None,
    };
    store.upsert_agent(&record(B, "accueil")).unwrap();
    store.upsert_agent(&record(A, "compta")).unwrap();
    store
        .upsert_agent(&record(AgentId::from_u128(0xC), "accueil"))
        .unwrap();
    let names: Vec<(String, AgentId)> = store
        .agents()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.agent))
        .collect();
    assert_eq!(
        names,
        [
            ("accueil".to_owned(), B),
            ("accueil".to_owned(), AgentId::from_u128(0xC)),
            ("compta".to_owned(), A)
        ]
    );
    let mut seen = record(A, "compta");
    seen.last_seen_ms = Some(T0_MS + 1);
    seen.last_error = Some("timed out".into());
    store.upsert_agent(&seen).unwrap();
    assert_eq!(store.agent(A).unwrap(), Some(seen.clone()));
    assert_eq!(store.remove_agent(A).unwrap(), Some(seen));
    assert_eq!(store.agent(A).unwrap(), None);
    assert_eq!(store.remove_agent(A).unwrap(), None);

    let peers = serde_json::json!(["192.0.2.10:4433", "192.0.2.11:4433"]);
    store.put_setting("static_peers", &peers).unwrap();
    store
        .put_setting("language", &serde_json::json!("fr"))
        .unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.get_setting("static_peers").unwrap(), Some(peers));
    assert_eq!(store.get_setting("missing").unwrap(), None);
    assert_eq!(store.agents().unwrap().len(), 2);
}

// ----- crash safety -----

const CRASH_DIR_ENV: &str = "SMARTTRACKER_CONSOLE_STORE_CRASH_DIR";
const CRASH_ROUND_ENV: &str = "SMARTTRACKER_CONSOLE_STORE_CRASH_ROUND";
const CRASH_ROUNDS: u64 = 16;
const CRASH_AGENTS: [AgentId; 3] = [
    AgentId::from_u128(1),
    AgentId::from_u128(2),
    AgentId::from_u128(3),
];
const CRASH_SPAN_MS: i64 = 40_000;

fn crash_usage(seq: u64) -> SeqRecord {
    let start_ms = T0_MS + seq as i64 * 60_000;
    usage(
        seq,
        start_ms,
        start_ms + CRASH_SPAN_MS,
        ["A", "B", "C"][(seq % 3) as usize],
    )
}

fn crash_activity(seq: u64) -> SeqRecord {
    let start_ms = T0_MS + seq as i64 * 60_000;
    activity(seq, start_ms, start_ms + CRASH_SPAN_MS, Presence::Idle)
}

/// Small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Child half of the crash test: ingests batches of random sizes (each
/// starting a little before the stored cursor, as an agent resends what
/// was not acked) until a timer thread aborts the process.
fn crash_child(dir: &Path, round: u64) -> ! {
    let store = open(dir);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (round + 1));
    let abort_after = Duration::from_millis(20 + rng.below(400));
    std::thread::spawn(move || {
        std::thread::sleep(abort_after);
        std::process::abort();
    });
    loop {
        for agent in CRASH_AGENTS {
            for stream in [StreamKind::Usage, StreamKind::Sessions] {
                let done = store.cursor(agent, stream).unwrap().map_or(0, |c| c.seq);
                let first = (done + 1).saturating_sub(rng.below(5)).max(1);
                let last = done + 1 + rng.below(400);
                let records = (first..=last)
                    .map(|seq| match stream {
                        StreamKind::Usage => crash_usage(seq),
                        _ => crash_activity(seq),
                    })
                    .collect();
                store
                    .ingest(agent, &batch(stream, EPOCH, records), NOW_MS)
                    .unwrap();
            }
        }
    }
}

/// Every agent's records are exactly seqs `1..=cursor`, and its rollups
/// count exactly those: no batch is partly there.
fn check_whole_batches(dir: &Path) -> u64 {
    let store = ConsoleStore::open(dir, paris().clone())
        .unwrap_or_else(|error| panic!("the store does not reopen: {error}"));
    let mut total = 0;
    for agent in CRASH_AGENTS {
        let usage_seq = store
            .cursor(agent, StreamKind::Usage)
            .unwrap()
            .map_or(0, |c| c.seq);
        let starts: Vec<i64> = all_usage(&store, agent)
            .iter()
            .map(|s| s.start_ms)
            .collect();
        let expected: Vec<i64> = (1..=usage_seq)
            .map(|seq| T0_MS + seq as i64 * 60_000)
            .collect();
        assert_eq!(starts, expected, "usage of {agent} against its cursor");
        let rolled_up: i64 = all_app_totals(&store, Some(agent))
            .iter()
            .map(|(_, _, _, ms)| ms)
            .sum();
        assert_eq!(rolled_up, usage_seq as i64 * CRASH_SPAN_MS);

        let sessions_seq = store
            .cursor(agent, StreamKind::Sessions)
            .unwrap()
            .map_or(0, |c| c.seq);
        let spans = store.activity_spans(agent, i64::MIN, i64::MAX).unwrap();
        assert_eq!(spans.len() as u64, sessions_seq, "activity of {agent}");
        let idle: i64 = store
            .presence_day_totals(Some(agent), DayNumber::MIN, DayNumber::MAX)
            .unwrap()
            .iter()
            .map(|t| t.idle_ms)
            .sum();
        assert_eq!(idle, sessions_seq as i64 * CRASH_SPAN_MS);
        total += usage_seq + sessions_seq;
    }
    total
}

/// Re-executes this test as a child that ingests and aborts at a random
/// moment, many times on the same store; after each abort every batch is
/// either wholly there with its cursor or wholly absent.
#[test]
fn aborts_mid_ingest_leave_only_whole_batches() {
    if let Ok(dir) = std::env::var(CRASH_DIR_ENV) {
        let round = std::env::var(CRASH_ROUND_ENV)
            .ok()
            .and_then(|round| round.parse().ok())
            .unwrap_or(0);
        crash_child(Path::new(&dir), round);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut stored = 0;
    for round in 0..CRASH_ROUNDS {
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "aborts_mid_ingest_leave_only_whole_batches",
                "--exact",
                "--nocapture",
            ])
            .env(CRASH_DIR_ENV, dir.path())
            .env(CRASH_ROUND_ENV, round.to_string())
            .status()
            .unwrap();
        // SIGABRT, not a panic (exit status 101) of the child's own checks.
        assert_eq!(
            status.signal(),
            Some(6),
            "round {round}: the child should have aborted, not {status}"
        );
        let now = check_whole_batches(dir.path());
        assert!(now >= stored, "round {round}: flushed records were lost");
        stored = now;
    }
    assert!(stored > 0, "the children stored nothing");
}
