//! Store tests against real sled databases in temporary directories:
//! group commit, cursors and epochs, acks and retention, quotas and gap
//! markers, corruption, locking, and recovery after an abort.

use std::path::Path;
use std::process::Command;

use agent::store::{AccessEntry, Quotas, Store, StoreError, MAX_PULL_RECORDS};
use protocol::{
    Cursor, DiskUsage, GapReason, HealthLevel, HealthSample, Record, Retention, SeqRecord,
    StreamKind, UsageSpan,
};

/// 2026-03-02 09:00:00 UTC.
const T0_MS: i64 = 1_772_442_000_000;
const DAY_MS: i64 = 86_400_000;
const RETENTION: Retention = Retention {
    usage_days: 30,
    sessions_days: 30,
    health_days: 14,
    frames_days: 7,
};
/// Records per block, as the module documentation specifies.
const BLOCK_RECORDS: u64 = 256;

fn usage(i: u64) -> Record {
    let start_ms = T0_MS + i as i64 * 1_000;
    Record::Usage(UsageSpan {
        start_ms,
        end_ms: start_ms + 1_000,
        app: format!("App {}", i % 7),
        raw_app: format!("app-{}", i % 7),
        title: None,
    })
}

fn health(i: u64) -> Record {
    Record::Health(HealthSample {
        at_ms: T0_MS + i as i64 * 30_000,
        cpu_pct: 12.5,
        mem_used_bytes: 4 << 30,
        mem_total_bytes: 16 << 30,
        swap_used_bytes: 0,
        swap_total_bytes: 2 << 30,
        disks: vec![DiskUsage {
            mount: "/".into(),
            used_bytes: 100 << 30,
            total_bytes: 500 << 30,
        }],
        uptime_secs: i * 30,
        load_avg: [0.5, 0.4, 0.3],
        top_processes: Vec::new(),
        score: 95,
        level: HealthLevel::Ok,
    })
}

fn open(dir: &Path) -> Store {
    Store::open(dir, Quotas::default()).unwrap()
}

/// Appends usage records `from..to` (record `i` has seq `i + 1` in a fresh
/// store) stamped at `at_ms`.
fn append_usage(store: &Store, from: u64, to: u64, at_ms: i64) {
    for i in from..to {
        let seq = store.append(StreamKind::Usage, usage(i), at_ms);
        assert_eq!(seq, i + 1);
    }
}

/// Pulls everything after `after` in batches of `batch`.
fn pull_all(store: &Store, stream: StreamKind, after: Cursor, batch: u32) -> Vec<SeqRecord> {
    let mut cursor = after;
    let mut records = Vec::new();
    loop {
        let got = store.pull(stream, cursor, batch).unwrap();
        assert_eq!(got.stream, stream);
        assert_eq!(got.epoch, store.epoch());
        if let Some(last) = got.records.last() {
            cursor = Cursor {
                epoch: got.epoch,
                seq: last.seq,
            };
        }
        let more = got.more;
        assert!(!more || !got.records.is_empty(), "more without records");
        records.extend(got.records);
        if !more {
            return records;
        }
    }
}

fn seqs(records: &[SeqRecord]) -> Vec<u64> {
    records.iter().map(|record| record.seq).collect()
}

fn start(store: &Store) -> Cursor {
    Cursor {
        epoch: store.epoch(),
        seq: 0,
    }
}

fn at(store: &Store, seq: u64) -> Cursor {
    Cursor {
        epoch: store.epoch(),
        seq,
    }
}

#[test]
fn store_is_sync_and_send() {
    fn assert_sync_send<T: Sync + Send>() {}
    assert_sync_send::<Store>();
}

#[test]
fn append_flush_pull_in_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append_usage(&store, 0, 10, T0_MS);
    for i in 0..3 {
        assert_eq!(store.append(StreamKind::Health, health(i), T0_MS), i + 1);
    }
    // Nothing is served or reported before the flush.
    assert_eq!(store.heads().seqs.get(StreamKind::Usage), &0);
    assert!(store
        .pull(StreamKind::Usage, start(&store), 100)
        .unwrap()
        .records
        .is_empty());

    let heads = store.flush().unwrap();
    assert_eq!(heads.epoch, store.epoch());
    assert_eq!(heads.cursor(StreamKind::Usage), at(&store, 10));
    assert_eq!(*heads.seqs.get(StreamKind::Health), 3);
    assert_eq!(*heads.seqs.get(StreamKind::Sessions), 0);
    assert_eq!(heads.to_wire().len(), 4);

    let batch = store.pull(StreamKind::Usage, start(&store), 100).unwrap();
    assert!(!batch.more);
    assert_eq!(seqs(&batch.records), (1..=10).collect::<Vec<_>>());
    for record in &batch.records {
        assert_eq!(record.record, usage(record.seq - 1));
    }
    let again = store.pull(StreamKind::Usage, at(&store, 10), 100).unwrap();
    assert!(again.records.is_empty());
    assert!(!again.more);
    let health_records = pull_all(&store, StreamKind::Health, start(&store), 100);
    assert_eq!(seqs(&health_records), vec![1, 2, 3]);
}

#[test]
fn pull_after_cursor_pages_with_more() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append_usage(&store, 0, 600, T0_MS);
    store.flush().unwrap();

    let batch = store.pull(StreamKind::Usage, at(&store, 250), 10).unwrap();
    assert_eq!(seqs(&batch.records), (251..=260).collect::<Vec<_>>());
    assert!(batch.more);
    let tail = store.pull(StreamKind::Usage, at(&store, 595), 10).unwrap();
    assert_eq!(seqs(&tail.records), (596..=600).collect::<Vec<_>>());
    assert!(!tail.more);
    let capped = store
        .pull(StreamKind::Usage, start(&store), u32::MAX)
        .unwrap();
    assert_eq!(capped.records.len(), 600.min(MAX_PULL_RECORDS as usize));
    let none = store.pull(StreamKind::Usage, start(&store), 0).unwrap();
    assert!(none.records.is_empty());
    assert!(none.more);
    assert_eq!(
        seqs(&pull_all(&store, StreamKind::Usage, at(&store, 1), 7)),
        (2..=600).collect::<Vec<_>>()
    );
}

#[test]
fn foreign_epoch_restarts_at_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append_usage(&store, 0, 20, T0_MS);
    store.flush().unwrap();
    let foreign = Cursor {
        epoch: store.epoch() ^ 1,
        seq: 15,
    };
    let batch = store.pull(StreamKind::Usage, foreign, 100).unwrap();
    assert_eq!(batch.epoch, store.epoch());
    assert_eq!(seqs(&batch.records), (1..=20).collect::<Vec<_>>());
}

#[test]
fn acked_records_are_not_served_again_and_pruned_only_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    let epoch;
    {
        let store = open(dir.path());
        epoch = store.epoch();
        append_usage(&store, 0, 10, T0_MS);
        store.flush().unwrap();
        let taken = pull_all(&store, StreamKind::Usage, start(&store), 100);
        assert_eq!(taken.len(), 10);
        let acked = store
            .ack(StreamKind::Usage, at(&store, 10), "console-a")
            .unwrap();
        assert_eq!(acked, at(&store, 10));
    }
    let store = open(dir.path());
    assert_eq!(store.epoch(), epoch);
    assert_eq!(store.counts().get(StreamKind::Usage).acked_seq, 10);
    let after_ack = store.pull(StreamKind::Usage, at(&store, 10), 100).unwrap();
    assert!(after_ack.records.is_empty());

    // Within retention: kept, and a fresh console still gets everything.
    let report = store.prune(T0_MS + 29 * DAY_MS, &RETENTION).unwrap();
    assert_eq!(report.streams.get(StreamKind::Usage).records, 0);
    let fresh = Cursor { epoch: 0, seq: 0 };
    assert_eq!(pull_all(&store, StreamKind::Usage, fresh, 100).len(), 10);

    // Past retention: gone.
    let report = store.prune(T0_MS + 31 * DAY_MS, &RETENTION).unwrap();
    assert_eq!(report.streams.get(StreamKind::Usage).records, 10);
    assert_eq!(report.streams.get(StreamKind::Usage).blocks, 1);
    assert!(pull_all(&store, StreamKind::Usage, fresh, 100).is_empty());
    assert_eq!(store.counts().get(StreamKind::Usage).stored_bytes, 0);
    drop(store);

    // Numbering continues after every block was pruned.
    let store = open(dir.path());
    assert_eq!(*store.heads().seqs.get(StreamKind::Usage), 10);
    assert_eq!(store.append(StreamKind::Usage, usage(10), T0_MS), 11);
    store.flush().unwrap();
    assert_eq!(
        seqs(&pull_all(&store, StreamKind::Usage, fresh, 100)),
        vec![11]
    );
}

#[test]
fn partly_acked_block_is_not_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append_usage(&store, 0, 10, T0_MS);
    store.flush().unwrap();
    store
        .ack(StreamKind::Usage, at(&store, 9), "console-a")
        .unwrap();
    let report = store.prune(T0_MS + 365 * DAY_MS, &RETENTION).unwrap();
    assert_eq!(report.streams.get(StreamKind::Usage).records, 0);
    assert_eq!(
        pull_all(&store, StreamKind::Usage, start(&store), 100).len(),
        10
    );
}

#[test]
fn unacked_records_are_served_again_after_reopen_and_never_pruned() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        append_usage(&store, 0, 300, T0_MS);
        store.flush().unwrap();
        assert_eq!(
            pull_all(&store, StreamKind::Usage, start(&store), 50).len(),
            300
        );
    }
    let store = open(dir.path());
    let report = store.prune(T0_MS + 365 * DAY_MS, &RETENTION).unwrap();
    assert_eq!(report.streams.get(StreamKind::Usage).records, 0);
    let again = pull_all(&store, StreamKind::Usage, start(&store), 50);
    assert_eq!(seqs(&again), (1..=300).collect::<Vec<_>>());
}

#[test]
fn ack_refuses_foreign_epoch_and_beyond_head_and_keeps_per_console_max() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append_usage(&store, 0, 10, T0_MS);
    store.flush().unwrap();
    append_usage(&store, 10, 12, T0_MS);

    let foreign = Cursor {
        epoch: store.epoch().wrapping_add(1),
        seq: 5,
    };
    let error = store.ack(StreamKind::Usage, foreign, "a").unwrap_err();
    assert!(matches!(error, StoreError::StaleEpoch { .. }), "{error}");
    // 11 and 12 are buffered, not durable: they cannot be acked.
    let error = store
        .ack(StreamKind::Usage, at(&store, 11), "a")
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::AckBeyondHead {
                upto_seq: 11,
                durable_seq: 10,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(store.counts().get(StreamKind::Usage).acked_seq, 0);

    assert_eq!(
        store
            .ack(StreamKind::Usage, at(&store, 7), "a")
            .unwrap()
            .seq,
        7
    );
    assert_eq!(
        store
            .ack(StreamKind::Usage, at(&store, 3), "b")
            .unwrap()
            .seq,
        3
    );
    // Acks never move back.
    assert_eq!(
        store
            .ack(StreamKind::Usage, at(&store, 2), "a")
            .unwrap()
            .seq,
        7
    );
    assert_eq!(store.counts().get(StreamKind::Usage).acked_seq, 7);
    let error = store
        .ack(StreamKind::Usage, at(&store, 1), &"x".repeat(1_000))
        .unwrap_err();
    assert!(matches!(error, StoreError::ConsoleNameTooLong { .. }));
}

#[test]
fn unflushed_records_are_absent_after_reopen_and_named_lost() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        append_usage(&store, 0, 3, T0_MS);
        assert_eq!(*store.flush().unwrap().seqs.get(StreamKind::Usage), 3);
        append_usage(&store, 3, 5, T0_MS);
        // Buffered records are never reported stored or served.
        assert_eq!(*store.heads().seqs.get(StreamKind::Usage), 3);
        assert_eq!(store.counts().get(StreamKind::Usage).buffered_records, 2);
        assert_eq!(
            pull_all(&store, StreamKind::Usage, start(&store), 100).len(),
            3
        );
    }
    let store = open(dir.path());
    assert_eq!(*store.heads().seqs.get(StreamKind::Usage), 3);
    assert_eq!(
        seqs(&pull_all(&store, StreamKind::Usage, start(&store), 100)),
        vec![1, 2, 3]
    );
    // The store was closed knowing it had not written 4 and 5: the next
    // open names them with a gap marker at 6 (held until the next flush),
    // and they are never given out again.
    assert_eq!(store.counts().get(StreamKind::Usage).buffered_records, 1);
    assert_eq!(store.append(StreamKind::Usage, usage(3), T0_MS), 7);
    store.flush().unwrap();
    let records = pull_all(&store, StreamKind::Usage, start(&store), 100);
    assert_eq!(seqs(&records), vec![1, 2, 3, 6, 7]);
    assert!(
        matches!(&records[3].record, Record::Gap(gap) if (gap.first_seq, gap.last_seq) == (4, 5))
    );
}

const CRASH_DIR_ENV: &str = "SMARTTRACKER_STORE_CRASH_DIR";

/// Child half of `flushed_records_survive_abort`: flushes, buffers more,
/// then aborts without running any destructor (no sled shutdown flush).
/// The test re-runs itself in a child process (`CRASH_DIR_ENV` set) that
/// flushes, acks, appends more and aborts; the parent checks what survived.
#[test]
fn flushed_records_survive_abort() {
    if let Ok(dir) = std::env::var(CRASH_DIR_ENV) {
        let store = open(Path::new(&dir));
        append_usage(&store, 0, 500, T0_MS);
        store.flush().unwrap();
        store.ack(StreamKind::Usage, at(&store, 100), "a").unwrap();
        append_usage(&store, 500, 600, T0_MS);
        std::process::abort();
    }
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["flushed_records_survive_abort", "--exact", "--nocapture"])
        .env(CRASH_DIR_ENV, dir.path())
        .status()
        .unwrap();
    assert!(!status.success(), "the child should have aborted");
    let store = open(dir.path());
    assert_eq!(*store.heads().seqs.get(StreamKind::Usage), 500);
    assert_eq!(store.counts().get(StreamKind::Usage).acked_seq, 100);
    assert_eq!(
        seqs(&pull_all(&store, StreamKind::Usage, start(&store), 1000)),
        (1..=500).collect::<Vec<_>>()
    );
}

#[test]
fn quota_overflow_drops_oldest_with_gap_marker() {
    let dir = tempfile::tempdir().unwrap();
    let quotas = Quotas {
        usage_bytes: 40 * 1024,
        ..Quotas::default()
    };
    let store = Store::open(dir.path(), quotas).unwrap();
    // About 30 bytes a record: 1,000 records fit, 3,000 do not.
    append_usage(&store, 0, 1_000, T0_MS);
    store.flush().unwrap();
    assert_eq!(
        pull_all(&store, StreamKind::Usage, start(&store), 4096).len(),
        1_000
    );
    append_usage(&store, 1_000, 3_000, T0_MS);
    let heads = store.flush().unwrap();
    // The gap marker took the next number.
    assert_eq!(*heads.seqs.get(StreamKind::Usage), 3_001);
    let counts = *store.counts().get(StreamKind::Usage);
    assert!(counts.stored_bytes <= quotas.usage_bytes, "{counts:?}");

    let records = pull_all(&store, StreamKind::Usage, start(&store), 4096);
    let gaps: Vec<_> = records
        .iter()
        .filter_map(|record| match &record.record {
            Record::Gap(gap) => Some((record.seq, gap.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let (gap_seq, gap) = &gaps[0];
    assert_eq!(*gap_seq, 3_001);
    assert_eq!(gap.stream, StreamKind::Usage);
    assert_eq!(gap.reason, GapReason::QuotaExceeded);
    assert_eq!(gap.first_seq, 1);
    let first_kept = records[0].seq;
    assert!(first_kept > 1);
    assert_eq!(gap.last_seq, first_kept - 1);
    assert_eq!(
        seqs(&records),
        (first_kept..=3_001).collect::<Vec<_>>(),
        "everything after the gap range is kept, in order"
    );
    // Other streams are untouched by the usage quota.
    assert_eq!(store.counts().get(StreamKind::Health).stored_records, 0);

    // The index rebuilt from disk agrees with the one kept in memory.
    drop(store);
    let store = Store::open(dir.path(), quotas).unwrap();
    assert_eq!(*store.counts().get(StreamKind::Usage), counts);
    assert_eq!(
        pull_all(&store, StreamKind::Usage, start(&store), 4096),
        records
    );
}

/// Opens the store's sled database directly, as a damaged disk would leave it.
fn raw_records_tree(dir: &Path) -> (sled::Db, sled::Tree) {
    let db = sled::open(dir).unwrap();
    let tree = db.open_tree("records").unwrap();
    (db, tree)
}

fn usage_block_key(first_seq: u64) -> Vec<u8> {
    let mut key = vec![0_u8];
    key.extend_from_slice(&first_seq.to_be_bytes());
    key
}

#[test]
fn corrupt_block_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        append_usage(&store, 0, 300, T0_MS);
        store.flush().unwrap();
    }
    {
        let (db, tree) = raw_records_tree(dir.path());
        let value = tree.get(usage_block_key(1)).unwrap().unwrap();
        // Keep the 19-byte header, scramble the body: the record count
        // prefix now claims a huge length.
        let mut broken = value[..19].to_vec();
        broken.extend_from_slice(&[0xfe; 40]);
        tree.insert(usage_block_key(1), broken).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    let error = store
        .pull(StreamKind::Usage, start(&store), 10)
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::CorruptBlock {
                stream: StreamKind::Usage,
                first_seq: 1,
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("usage") && message.contains("seq 1"),
        "{message}"
    );
    assert!(message.contains("move it aside"), "{message}");
    // The intact tail block is still served.
    let tail = store.pull(StreamKind::Usage, at(&store, 256), 100).unwrap();
    assert_eq!(seqs(&tail.records), (257..=300).collect::<Vec<_>>());
    drop(store);

    // A truncated open tail block makes open fail with a clear error.
    {
        let (db, tree) = raw_records_tree(dir.path());
        tree.insert(usage_block_key(257), &[1_u8, 0][..]).unwrap();
        db.flush().unwrap();
    }
    let error = Store::open(dir.path(), Quotas::default()).unwrap_err();
    assert!(
        matches!(error, StoreError::CorruptBlock { first_seq: 257, .. }),
        "{error}"
    );
}

#[test]
fn unknown_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert("schema_version", &99_u32.to_be_bytes()[..])
            .unwrap();
        db.flush().unwrap();
    }
    let error = Store::open(dir.path(), Quotas::default()).unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::UnknownSchema {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("schema version 99"));
}

#[test]
fn epoch_persists_and_wiped_store_gets_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).epoch();
    assert_ne!(first, 0);
    assert_eq!(open(dir.path()).epoch(), first);
    std::fs::remove_dir_all(dir.path()).unwrap();
    let second = open(dir.path()).epoch();
    assert_ne!(second, 0);
    assert_ne!(second, first);
}

#[test]
fn second_open_of_a_locked_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let error = Store::open(dir.path(), Quotas::default()).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()) && message.contains("stop it first"),
        "{message}"
    );
    drop(store);
    open(dir.path());
}

#[test]
fn block_keys_iterate_in_seq_order_across_flushes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let mut next = 0;
        for group in [137, 1, 300, 255, 256, 51] {
            append_usage(&store, next, next + group, T0_MS);
            next += group;
            store.flush().unwrap();
        }
        assert_eq!(next, 1_000);
        assert_eq!(
            seqs(&pull_all(&store, StreamKind::Usage, start(&store), 333)),
            (1..=1_000).collect::<Vec<_>>()
        );
    }
    let (_db, tree) = raw_records_tree(dir.path());
    let mut expected_first = 1;
    let mut blocks = 0;
    for item in tree.scan_prefix([0_u8]) {
        let (key, value) = item.unwrap();
        let first_seq = u64::from_be_bytes(key[1..9].try_into().unwrap());
        assert_eq!(first_seq, expected_first);
        assert_eq!(value[0], 1, "block format version");
        let count = u64::from(u16::from_be_bytes([value[1], value[2]]));
        assert!((1..=BLOCK_RECORDS).contains(&count));
        expected_first += count;
        blocks += 1;
    }
    assert_eq!(expected_first, 1_001);
    assert_eq!(blocks, 1_000_u64.div_ceil(BLOCK_RECORDS));
}

#[test]
fn meta_and_access_log_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let entry = |i: i64| AccessEntry {
        at_ms: T0_MS + i,
        console_id: "0f0e".into(),
        console_name: "office".into(),
        role: "viewer".into(),
        request: "pull".into(),
        detail: format!("usage after {i}"),
        allowed: i % 2 == 0,
    };
    {
        let store = open(dir.path());
        assert_eq!(store.get_meta("policy").unwrap(), None);
        store.put_meta("policy", b"rev 3").unwrap();
        for i in 0..5 {
            store.log_access(&entry(i)).unwrap();
        }
    }
    let store = open(dir.path());
    assert_eq!(
        store.get_meta("policy").unwrap().as_deref(),
        Some(&b"rev 3"[..])
    );
    store.log_access(&entry(5)).unwrap();
    assert_eq!(
        store.access_log(3).unwrap(),
        vec![entry(3), entry(4), entry(5)]
    );
    assert_eq!(store.access_log(100).unwrap().len(), 6);
}

fn screenshot(i: u64, size_bytes: usize) -> protocol::CapturedImage {
    let bytes: Vec<u8> = (0..size_bytes).map(|b| (b as u64 ^ i) as u8).collect();
    protocol::CapturedImage {
        meta: protocol::FrameMeta {
            at_ms: T0_MS + i as i64 * 120_000,
            width: 1280,
            height: 720,
            format: protocol::ImageFormat::Jpeg,
            size_bytes: size_bytes as u32,
            sha256: [i as u8; 32],
            blurred: false,
        },
        bytes,
    }
}

#[test]
fn frame_images_follow_their_records_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let epoch;
    {
        let store = open(dir.path());
        epoch = store.epoch();
        for i in 1..=3 {
            assert_eq!(store.append_frame(&screenshot(i, 1_000)).unwrap(), i);
        }
        // Not durable yet: not served.
        assert_eq!(store.frame_image(at(&store, 1)).unwrap(), None);
        store.flush().unwrap();
        assert_eq!(
            store.frame_image(at(&store, 2)).unwrap(),
            Some(screenshot(2, 1_000).bytes)
        );
        assert_eq!(
            store.frame_image(at(&store, 4)).unwrap(),
            None,
            "beyond head"
        );
        let foreign = Cursor {
            epoch: epoch ^ 1,
            seq: 2,
        };
        assert_eq!(store.frame_image(foreign).unwrap(), None, "other epoch");
        assert_eq!(store.frame_image_bytes(), 3_000);
        // A screenshot taken but never flushed is dropped at the next open.
        store.append_frame(&screenshot(4, 1_000)).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(
        store.frame_image_bytes(),
        3_000,
        "the unflushed one is gone"
    );
    let records = pull_all(&store, StreamKind::Frames, start(&store), 10);
    assert_eq!(seqs(&records), vec![1, 2, 3]);
    assert!(matches!(&records[0].record, Record::Frame(meta) if meta.size_bytes == 1_000));
    assert_eq!(
        store.frame_image(at(&store, 3)).unwrap(),
        Some(screenshot(3, 1_000).bytes)
    );
    // Its number is not given out again: a gap marker at 5 names it.
    assert_eq!(store.append_frame(&screenshot(5, 10)).unwrap(), 6);
    store.flush().unwrap();
    let records = pull_all(&store, StreamKind::Frames, start(&store), 10);
    assert_eq!(seqs(&records), vec![1, 2, 3, 5, 6]);
    assert!(
        matches!(&records[3].record, Record::Gap(gap) if (gap.first_seq, gap.last_seq) == (4, 4))
    );
    assert_eq!(store.frame_image(at(&store, 5)).unwrap(), None);
}

#[test]
fn frame_images_go_with_pruned_records_and_over_quota() {
    let dir = tempfile::tempdir().unwrap();
    let quotas = Quotas {
        frames_bytes: 2_500,
        ..Quotas::default()
    };
    let store = Store::open(dir.path(), quotas).unwrap();
    for i in 1..=3 {
        store.append_frame(&screenshot(i, 1_000)).unwrap();
    }
    store.flush().unwrap();
    // Over the image quota: the oldest image goes, its record stays.
    assert_eq!(store.frame_image_bytes(), 2_000);
    assert_eq!(store.frame_image(at(&store, 1)).unwrap(), None);
    assert!(store.frame_image(at(&store, 2)).unwrap().is_some());
    assert_eq!(
        seqs(&pull_all(&store, StreamKind::Frames, start(&store), 10)),
        vec![1, 2, 3]
    );
    // Acked and past retention: records and images are deleted together.
    store
        .ack(StreamKind::Frames, at(&store, 3), "console-a")
        .unwrap();
    store.prune(T0_MS + 30 * DAY_MS, &RETENTION).unwrap();
    assert!(pull_all(&store, StreamKind::Frames, start(&store), 10).is_empty());
    assert_eq!(store.frame_image_bytes(), 0);
    assert_eq!(store.frame_image(at(&store, 3)).unwrap(), None);
}

#[test]
fn access_log_keeps_the_newest_entries() {
    let dir = tempfile::tempdir().unwrap();
    let quotas = Quotas {
        access_entries: 50,
        ..Quotas::default()
    };
    let store = Store::open(dir.path(), quotas).unwrap();
    let count = quotas.access_entries + 5;
    for i in 0..count {
        store
            .log_access(&AccessEntry {
                at_ms: T0_MS + i as i64,
                console_id: "c".into(),
                console_name: String::new(),
                role: "admin".into(),
                request: "pull".into(),
                detail: i.to_string(),
                allowed: true,
            })
            .unwrap();
    }
    let all = store.access_log(usize::MAX).unwrap();
    assert_eq!(all.len() as u64, quotas.access_entries);
    assert_eq!(all[0].detail, "5", "the five oldest are gone");
    assert_eq!(all.last().unwrap().detail, (count - 1).to_string());
}

fn activity(user: &str, from_s: i64, to_s: i64) -> Record {
    Record::Activity(protocol::ActivitySpan {
        start_ms: T0_MS + from_s * 1_000,
        end_ms: T0_MS + to_s * 1_000,
        presence: protocol::Presence::Active,
        user: user.into(),
    })
}

fn login(user: &str, at_s: i64) -> Record {
    Record::Session(protocol::SessionEvent {
        at_ms: T0_MS + at_s * 1_000,
        kind: protocol::SessionEventKind::Login,
        user: user.into(),
    })
}

/// What each stream must serve after an erasure: the expected record, or
/// `None` for an erased one (a marker naming its own number).
fn assert_erased_as(store: &Store, stream: StreamKind, expected: &[Option<Record>]) {
    let records = pull_all(store, stream, start(store), 100);
    assert_eq!(
        seqs(&records),
        (1..=expected.len() as u64).collect::<Vec<_>>(),
        "{} keeps every number",
        stream.name()
    );
    for (record, want) in records.iter().zip(expected) {
        match want {
            Some(want) => assert_eq!(&record.record, want, "seq {}", record.seq),
            None => assert_eq!(
                record.record,
                Record::Gap(protocol::GapMarker {
                    stream,
                    first_seq: record.seq,
                    last_seq: record.seq,
                    reason: GapReason::Erased,
                }),
                "seq {}",
                record.seq
            ),
        }
    }
}

#[test]
fn erasing_a_user_replaces_their_records_by_markers_and_deletes_their_images() {
    let dir = tempfile::tempdir().unwrap();
    let alice = vec!["alice".to_owned()];
    // alice is active 0..300 s and 600..700 s, bob 300..600 s.
    let mut sessions = vec![
        login("alice", 0),
        activity("alice", 0, 300),
        login("bob", 300),
        activity("bob", 300, 600),
    ];
    let alice_sessions = [true, true, false, false, true];
    let usage_of_alice = |i: u64| !(300..600).contains(&i);
    // Frames every 120 s: 0, 120, 240 (alice), 360, 480 (bob), 600 (alice).
    let frame_of_alice = [true, true, true, false, false, true];
    let expected = |sessions: &[Record]| {
        let sessions: Vec<Option<Record>> = sessions
            .iter()
            .zip(alice_sessions)
            .map(|(record, hers)| (!hers).then(|| record.clone()))
            .collect();
        let usage: Vec<Option<Record>> = (0..700)
            .map(|i| (!usage_of_alice(i)).then(|| usage(i)))
            .collect();
        let frames: Vec<Option<Record>> = (0..6)
            .map(|i| (!frame_of_alice[i as usize]).then(|| Record::Frame(screenshot(i, 100).meta)))
            .collect();
        (sessions, usage, frames)
    };
    {
        let store = open(dir.path());
        for record in &sessions {
            store.append(StreamKind::Sessions, record.clone(), T0_MS);
        }
        append_usage(&store, 0, 650, T0_MS);
        for i in 0..5 {
            assert_eq!(store.append_frame(&screenshot(i, 100)).unwrap(), i + 1);
        }
        for i in 0..3 {
            store.append(StreamKind::Health, health(i), T0_MS);
        }
        store.flush().unwrap();
        // A console took some usage already: it keeps its cursor.
        store
            .ack(StreamKind::Usage, at(&store, 100), "console-a")
            .unwrap();
        // Held, not written yet: alice's second span and what fell in it.
        sessions.push(activity("alice", 600, 700));
        store.append(StreamKind::Sessions, sessions[4].clone(), T0_MS);
        append_usage(&store, 650, 700, T0_MS);
        assert_eq!(store.append_frame(&screenshot(5, 100)).unwrap(), 6);

        let report = store.erase_users(&alice).unwrap();
        assert_eq!(report.records, 3 + 400 + 4);
        assert_eq!(report.images, 4);
        // Durable before it answered.
        let heads = store.heads();
        assert_eq!(*heads.seqs.get(StreamKind::Sessions), 5);
        assert_eq!(*heads.seqs.get(StreamKind::Usage), 700);
        assert_eq!(*heads.seqs.get(StreamKind::Frames), 6);

        let (want_sessions, want_usage, want_frames) = expected(&sessions);
        assert_erased_as(&store, StreamKind::Sessions, &want_sessions);
        assert_erased_as(&store, StreamKind::Usage, &want_usage);
        assert_erased_as(&store, StreamKind::Frames, &want_frames);
        let health_records = pull_all(&store, StreamKind::Health, start(&store), 100);
        let health_now: Vec<Record> = health_records.into_iter().map(|r| r.record).collect();
        assert_eq!(health_now, (0..3).map(health).collect::<Vec<_>>());
        // The console's cursor still works: it is served markers after it.
        let after_ack = store.pull(StreamKind::Usage, at(&store, 100), 10).unwrap();
        assert_eq!(after_ack.records[0].seq, 101);
        assert!(matches!(
            &after_ack.records[0].record,
            Record::Gap(gap) if gap.reason == GapReason::Erased
        ));
        for seq in 1..=6 {
            let image = store.frame_image(at(&store, seq)).unwrap();
            assert_eq!(
                image.is_some(),
                !frame_of_alice[seq as usize - 1],
                "seq {seq}"
            );
        }
        assert_eq!(store.frame_image_bytes(), 200);

        // Again, or someone unknown: nothing more.
        assert_eq!(store.erase_users(&alice).unwrap().records, 0);
        let unknown = store.erase_users(&["carol".to_owned()]).unwrap();
        assert_eq!((unknown.records, unknown.images), (0, 0));
        // The rewritten open tails do not bring records back on the next flush.
        store.append(StreamKind::Usage, usage(700), T0_MS);
        store.flush().unwrap();
        let mut want_usage = want_usage;
        want_usage.push(Some(usage(700)));
        assert_erased_as(&store, StreamKind::Usage, &want_usage);
    }
    let store = open(dir.path());
    let (want_sessions, mut want_usage, want_frames) = expected(&sessions);
    want_usage.push(Some(usage(700)));
    assert_erased_as(&store, StreamKind::Sessions, &want_sessions);
    assert_erased_as(&store, StreamKind::Usage, &want_usage);
    assert_erased_as(&store, StreamKind::Frames, &want_frames);
    assert_eq!(store.frame_image_bytes(), 200);
    assert_eq!(store.frame_image(at(&store, 1)).unwrap(), None);
    assert!(store.frame_image(at(&store, 4)).unwrap().is_some());
    let again = store.erase_users(&alice).unwrap();
    assert_eq!((again.records, again.images), (0, 0));
}
