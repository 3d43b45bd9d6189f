//! Erasing one agent from a real sled store (`ConsoleStore::erase_agent`):
//! afterwards no key or value of any tree holds its 16 id bytes, another
//! agent's records, rollups, screenshots, faults and settings are exactly
//! as before, and an erasure cut short is finished by the next call on an
//! agent already gone from the inventory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use console_engine::model::{AgentId, DayClock, DayNumber, DAY_MS};
use console_engine::settings::{ConsoleSettings, GROUPS_KEY, OWN_ZONE_KEY};
use console_engine::store::{
    jpeg_dimensions, AgentRecord, ConsoleStore, ErasedCounts, FaultKind, FetchedFrame, ShotSource,
    StoreError, ERASE_BATCH_KEYS,
};
use protocol::{
    ActivitySpan, CapturedImage, FrameMeta, HealthLevel, HealthSample, ImageFormat, Presence,
    Record, RecordBatch, SeqRecord, SessionEvent, SessionEventKind, StreamKind, UsageSpan,
};
use sha2::{Digest, Sha256};

/// 2026-03-02T08:00:00Z.
const T0_MS: i64 = 1_772_438_400_000;
/// Ids without long runs of zero bytes, so that no other key or value
/// holds their 16 bytes by chance.
const GONE: AgentId = AgentId::from_u128(0x9f3c_51d2_7a04_4e8b_b6a1_2c3d_4e5f_6071);
const KEPT: AgentId = AgentId::from_u128(0x1b2c_3d4e_5f60_4172_8394_a5b6_c7d8_e9fa);
const EPOCH: u64 = 0xE7;
/// More distinct apps than one erase batch holds: the app rollups of one
/// agent take several batches.
const APPS: u64 = ERASE_BATCH_KEYS as u64 + 76;

fn open(data: &Path) -> ConsoleStore {
    ConsoleStore::open(&data.join("store"), DayClock::utc()).expect("store opens")
}

fn batch(stream: StreamKind, records: Vec<SeqRecord>) -> RecordBatch {
    RecordBatch {
        stream,
        epoch: EPOCH,
        records,
        more: false,
    }
}

fn record(seq: u64, record: Record) -> SeqRecord {
    SeqRecord { seq, record }
}

/// A small noisy JPEG, different per `seed`.
fn captured(seed: u32, at_ms: i64) -> CapturedImage {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let pixels = image::RgbImage::from_fn(32, 24, |x, y| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        image::Rgb([(x * 7) as u8 ^ (state >> 24) as u8, (y * 9) as u8, 3])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80)
        .encode_image(&pixels)
        .expect("encode jpeg");
    let (width, height) = jpeg_dimensions(&bytes).expect("decodable");
    CapturedImage {
        meta: FrameMeta {
            at_ms,
            width,
            height,
            format: ImageFormat::Jpeg,
            size_bytes: u32::try_from(bytes.len()).expect("small"),
            sha256: Sha256::digest(&bytes).into(),
            blurred: false,
        },
        bytes,
    }
}

/// Gives `agent` data of every kind the store keeps: an inventory record
/// with an address, usage over [`APPS`] apps (first contact at seq 3, so a
/// gap marker too), presence and session events, health, frames with and
/// without their image, an on-demand screenshot, a fault.
fn fill(store: &ConsoleStore, agent: AgentId, seed: u32) {
    store
        .upsert_agent(&AgentRecord {
            agent,
            name: format!("pc-{seed}"),
            spki_sha256: [seed as u8; 32],
            added_ms: T0_MS,
            addresses: vec![format!("10.0.0.{seed}:47100")],
            last_seen_ms: Some(T0_MS),
            last_error: None,
            hostname: Some(format!("pc-{seed}")),
            demo: true,
            time_zone: Some("Europe/Paris".to_owned()),
        })
        .expect("inventory");
    let now_ms = T0_MS + 30 * DAY_MS;
    let usage: Vec<SeqRecord> = (0..APPS)
        .map(|n| {
            let start_ms = T0_MS + n as i64 * 60_000 + i64::from(seed);
            record(
                n + 3,
                Record::Usage(UsageSpan {
                    start_ms,
                    end_ms: start_ms + 45_000,
                    app: format!("app-{n}"),
                    raw_app: format!("app-{n}"),
                    title: None,
                }),
            )
        })
        .collect();
    store
        .ingest(agent, &batch(StreamKind::Usage, usage), now_ms)
        .expect("usage");
    let sessions = vec![
        record(
            1,
            Record::Session(SessionEvent {
                at_ms: T0_MS,
                kind: SessionEventKind::Login,
                user: "marie".to_owned(),
            }),
        ),
        record(
            2,
            Record::Activity(ActivitySpan {
                start_ms: T0_MS,
                end_ms: T0_MS + 240_000,
                presence: Presence::Active,
                user: "marie".to_owned(),
            }),
        ),
        record(
            3,
            Record::Activity(ActivitySpan {
                start_ms: T0_MS + DAY_MS,
                end_ms: T0_MS + DAY_MS + 120_000 + i64::from(seed) * 1_000,
                presence: Presence::Idle,
                user: "marie".to_owned(),
            }),
        ),
    ];
    store
        .ingest(agent, &batch(StreamKind::Sessions, sessions), now_ms)
        .expect("sessions");
    let health = (1..=3)
        .map(|seq| {
            record(
                seq,
                Record::Health(HealthSample {
                    at_ms: T0_MS + seq as i64 * 60_000,
                    cpu_pct: 12.0,
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
            )
        })
        .collect();
    store
        .ingest(agent, &batch(StreamKind::Health, health), now_ms)
        .expect("health");
    let kept = captured(seed, T0_MS + 60_000);
    let dropped = captured(seed + 100, T0_MS + 120_000);
    let frames = batch(
        StreamKind::Frames,
        vec![
            record(1, Record::Frame(kept.meta.clone())),
            record(2, Record::Frame(dropped.meta.clone())),
        ],
    );
    let fetched = HashMap::from([(1, FetchedFrame::Image(kept)), (2, FetchedFrame::Dropped)]);
    store
        .ingest_with_frames(agent, &frames, &fetched, now_ms)
        .expect("frames");
    store
        .put_screenshot(
            agent,
            ShotSource::OnDemand,
            &captured(seed + 200, T0_MS + 180_000),
        )
        .expect("on-demand screenshot");
    store
        .note_fault(agent, FaultKind::InvalidData, T0_MS, "a span of 3 hours")
        .expect("fault");
}

/// Everything the store answers about `agent`, to compare before and after.
#[derive(Debug, PartialEq)]
struct Held {
    inventory: Option<AgentRecord>,
    usage: usize,
    activity: usize,
    sessions: usize,
    health: usize,
    gaps: usize,
    app_totals: Vec<(DayNumber, String, i64)>,
    presence_totals: Vec<(DayNumber, i64, i64, i64)>,
    screenshots: usize,
    faults: usize,
    cursors: Vec<Option<protocol::Cursor>>,
}

fn held(store: &ConsoleStore, agent: AgentId) -> Held {
    let all = (i64::MIN, i64::MAX);
    Held {
        inventory: store.agent(agent).expect("agent"),
        usage: store.usage_spans(agent, all.0, all.1).expect("usage").len(),
        activity: store
            .activity_spans(agent, all.0, all.1)
            .expect("activity")
            .len(),
        sessions: store
            .session_events(agent, all.0, all.1)
            .expect("sessions")
            .len(),
        health: store
            .health_points(agent, all.0, all.1)
            .expect("health")
            .len(),
        gaps: store.gaps(agent).expect("gaps").len(),
        app_totals: store
            .app_day_totals(Some(agent), DayNumber::MIN, DayNumber::MAX)
            .expect("app totals")
            .into_iter()
            .map(|total| (total.day, total.app, total.active_ms))
            .collect(),
        presence_totals: store
            .presence_day_totals(Some(agent), DayNumber::MIN, DayNumber::MAX)
            .expect("presence totals")
            .into_iter()
            .map(|total| (total.day, total.active_ms, total.idle_ms, total.locked_ms))
            .collect(),
        screenshots: store
            .screenshots(agent, i64::MIN, i64::MAX)
            .expect("screenshots")
            .len(),
        faults: store.faults(Some(agent)).expect("faults").len(),
        cursors: [
            StreamKind::Usage,
            StreamKind::Sessions,
            StreamKind::Health,
            StreamKind::Frames,
        ]
        .into_iter()
        .map(|stream| store.cursor(agent, stream).expect("cursor"))
        .collect(),
    }
}

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

/// Keys and values (tree name, key) of every tree of a closed store that
/// hold `agent`'s 16 id bytes anywhere.
fn naming(dir: &Path, agent: AgentId) -> Vec<(String, Vec<u8>)> {
    let db = raw_db(dir);
    let id = agent.as_bytes();
    let holds = |bytes: &[u8]| bytes.windows(id.len()).any(|window| window == id);
    let mut found = Vec::new();
    for name in db.tree_names() {
        let tree = db.open_tree(&name).expect("tree");
        for item in tree.iter() {
            let (key, value) = item.expect("item");
            if holds(&key) || holds(&value) {
                found.push((String::from_utf8_lossy(&name).into_owned(), key.to_vec()));
            }
        }
    }
    found
}

/// Keys of every tree of a closed store that start with a prefix byte
/// then `agent`'s id, or with its id.
fn data_keys_of(dir: &Path, agent: AgentId) -> usize {
    let db = raw_db(dir);
    let data = db.open_tree("data").expect("data");
    (0..=u8::MAX)
        .map(|prefix| {
            let mut start = vec![prefix];
            start.extend_from_slice(agent.as_bytes());
            data.scan_prefix(start).count()
        })
        .sum()
}

#[test]
fn erasing_an_agent_leaves_no_trace_of_it_and_the_other_intact() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = open(data.path());
    fill(&store, GONE, 1);
    fill(&store, KEPT, 2);
    let both = BTreeMap::from([(GONE, "Accueil".to_owned()), (KEPT, "Compta".to_owned())]);
    store
        .put_setting(GROUPS_KEY, &serde_json::to_value(&both).expect("json"))
        .expect("groups");
    store
        .put_setting(
            OWN_ZONE_KEY,
            &serde_json::to_value(BTreeSet::from([GONE, KEPT])).expect("json"),
        )
        .expect("own zone");

    let gone_before = held(&store, GONE);
    let kept_before = held(&store, KEPT);
    assert_eq!(gone_before.app_totals.len() as u64, APPS, "{gone_before:?}");
    assert!(gone_before.gaps >= 1, "first contact at seq 3 is a gap");
    assert_eq!(gone_before.screenshots, 3);
    let records = gone_before.usage
        + gone_before.activity
        + gone_before.sessions
        + gone_before.health
        + gone_before.gaps;

    let counts = store.erase_agent(GONE).expect("erase");
    assert_eq!(counts.records, records as u64);
    assert_eq!(counts.screenshots, 3);
    assert!(
        counts.keys > ERASE_BATCH_KEYS as u64 * 2,
        "day and slice app rollups alone: {counts:?}"
    );
    assert!(ConsoleSettings::forget_agent(&store, GONE).expect("settings"));
    assert!(!ConsoleSettings::forget_agent(&store, GONE).expect("settings again"));

    let gone_after = held(&store, GONE);
    assert_eq!(
        gone_after,
        Held {
            inventory: None,
            usage: 0,
            activity: 0,
            sessions: 0,
            health: 0,
            gaps: 0,
            app_totals: Vec::new(),
            presence_totals: Vec::new(),
            screenshots: 0,
            faults: 0,
            cursors: vec![None; 4],
        }
    );
    assert_eq!(held(&store, KEPT), kept_before, "the other agent is intact");
    let settings = ConsoleSettings::load(&store).expect("settings");
    assert_eq!(
        settings.groups,
        BTreeMap::from([(KEPT, "Compta".to_owned())])
    );
    assert_eq!(settings.own_zone_agents, BTreeSet::from([KEPT]));
    assert_eq!(
        store.erase_agent(GONE).expect("again"),
        ErasedCounts::default(),
        "nothing left to erase"
    );
    drop(store);

    let store_dir = data.path().join("store");
    assert_eq!(naming(&store_dir, GONE), Vec::new());
    assert!(
        !naming(&store_dir, KEPT).is_empty(),
        "the scan finds an agent's keys"
    );
    // Reopened: the kept agent's day totals are unchanged.
    let store = open(data.path());
    assert_eq!(held(&store, KEPT), kept_before);
    assert_eq!(store.agents().expect("agents").len(), 1);
}

#[test]
fn an_erasure_cut_short_is_finished_for_an_agent_gone_from_the_inventory() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = open(data.path());
    fill(&store, GONE, 3);
    fill(&store, KEPT, 4);
    let kept_before = held(&store, KEPT);
    // Revoked without erasing: the data stays.
    assert!(store.remove_agent(GONE).expect("remove").is_some());
    let gone = held(&store, GONE);
    assert_eq!(gone.inventory, None);
    assert!(gone.usage > 0 && gone.screenshots == 3);
    drop(store);

    // A crash after the first batches: the day rollups, blocks of usage
    // and half of what else there was are gone, the rest is left.
    let store_dir = data.path().join("store");
    let before_keys = data_keys_of(&store_dir, GONE);
    {
        let db = raw_db(&store_dir);
        let tree = db.open_tree("data").expect("data");
        for prefix in [b'A', b'P', 1] {
            let mut start = vec![prefix];
            start.extend_from_slice(GONE.as_bytes());
            for key in tree.scan_prefix(start).keys() {
                tree.remove(key.expect("key")).expect("remove");
            }
        }
        db.flush().expect("flush");
    }
    let left_keys = data_keys_of(&store_dir, GONE);
    assert!(left_keys > 0 && left_keys < before_keys);

    let store = open(data.path());
    let counts = store.erase_agent(GONE).expect("erase the rest");
    assert_eq!(counts.screenshots, 3);
    assert_eq!(
        counts.records as usize,
        gone.activity + gone.sessions + gone.health + gone.gaps,
        "usage blocks were already gone"
    );
    assert_eq!(
        counts.keys as usize,
        left_keys + 1,
        "data keys and the fault"
    );
    assert_eq!(held(&store, KEPT), kept_before);
    drop(store);
    assert_eq!(naming(&store_dir, GONE), Vec::new());
}

#[test]
fn a_sync_finishing_after_a_revocation_neither_writes_the_agent_back_nor_stores_its_data() {
    let data = tempfile::tempdir().expect("tempdir");
    let store = open(data.path());
    fill(&store, GONE, 5);
    let noted = |record: &mut AgentRecord| record.last_error = Some("timed out".to_owned());
    assert!(store.update_agent(GONE, noted).expect("update"));
    assert_eq!(
        store.agent(GONE).expect("agent").and_then(|r| r.last_error),
        Some("timed out".to_owned())
    );
    let next = |seq| {
        batch(
            StreamKind::Health,
            vec![record(
                seq,
                Record::Health(HealthSample {
                    at_ms: T0_MS + seq as i64 * 60_000,
                    cpu_pct: 1.0,
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
            )],
        )
    };
    let now_ms = T0_MS + DAY_MS;
    let report = store
        .ingest_inventoried(GONE, &next(4), &HashMap::new(), now_ms)
        .expect("inventoried");
    assert_eq!(report.stored_records, 1);

    store.remove_agent(GONE).expect("revoke");
    assert!(!store.update_agent(GONE, noted).expect("update"));
    assert_eq!(store.agent(GONE).expect("agent"), None);
    assert!(store.agents().expect("agents").is_empty());
    let health = held(&store, GONE).health;
    assert!(matches!(
        store.ingest_inventoried(GONE, &next(5), &HashMap::new(), now_ms),
        Err(StoreError::NotInInventory { agent, .. }) if agent == GONE
    ));
    assert_eq!(held(&store, GONE).health, health, "nothing stored");
    assert_eq!(
        store.cursor(GONE, StreamKind::Health).expect("cursor"),
        Some(protocol::Cursor {
            epoch: EPOCH,
            seq: 4
        })
    );
}
