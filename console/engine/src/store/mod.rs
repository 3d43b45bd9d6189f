//! The console's embedded store: records of many agents in time-ordered
//! blocks, day rollups so dashboards never scan raw records, cursors for
//! exactly-once sync, encrypted screenshots, the agent inventory, settings
//! and a hash-chained audit log, in one sled database.
//!
//! # Guarantees
//!
//! - [`ConsoleStore::ingest`] writes a batch's new records, the rollups they
//!   change and the stream's new cursor in one atomic sled batch, flushes
//!   the database, and only then returns: after a crash either all of it is
//!   there or none of it, so the caller may ack the returned cursor.
//!   Replayed records (at or below the cursor) are skipped and counted; a
//!   batch with a hole is refused whole. Every new record is checked by
//!   [`validate::check`] first: one that cannot be true is not stored,
//!   and a gap marker (reason [`INVALID_REASON`]) in the same batch says
//!   which; text is capped by [`validate::cap_text`]. A frames batch goes through
//!   [`ConsoleStore::ingest_with_frames`], which writes each frame's
//!   encrypted image (or, if the workstation dropped it, its metadata) in
//!   that same batch.
//! - Screenshots are encrypted before they reach sled (see
//!   `screenshots.rs` for the format and where the key lives); their
//!   metadata is in clear so listing needs no key.
//! - Raw records and screenshots are pruned per data class
//!   ([`ConsoleStore::prune`]); rollups are aggregates and are kept. Dashboard queries
//!   ([`ConsoleStore::app_day_totals`], [`ConsoleStore::presence_day_totals`])
//!   read rollups only.
//! - A damaged value is an error naming what is damaged, never a panic.
//! - Every method may block on disk I/O: call it from `spawn_blocking` in
//!   async code. The store is `Sync`; share it through an `Arc`. Writers
//!   (ingest, prune) take turns on one mutex; readers never wait for them.
//!
//! # On-disk format (schema version 1)
//!
//! One sled database per directory, which also holds `console-store.lock`,
//! locked exclusively while a [`ConsoleStore`] is open. Integers are big
//! endian; `i64` times and `i32` days have their sign bit flipped in keys so
//! that byte order is numeric order. An agent id is its 16 UUID bytes.
//!
//! - Default tree: `console_schema_version` → u32 (`1`); `day_clock` → i32,
//!   the site's UTC offset in seconds, fixed when the store is created.
//! - Tree `data`, changed only by atomic batches:
//!   - block `[kind: u8][agent][start_ms: i64][first_index: u64]`, kinds
//!     usage 1, activity 2, session 3, health 4, gap 5: iteration is time
//!     order per agent and kind. `start_ms` is the earliest start in the
//!     block (for gap markers: when this store received them);
//!     `first_index` is the per (agent, kind) ordinal of the block's first
//!     record, so two blocks never share a key. The value is described in
//!     `block.rs`: header `[format = 1][count: u16][max_end_ms: i64]`, then
//!     a bincode body of 1..=256 records sorted by start.
//!   - `['K'][agent][kind]` → `next_index: u64, max_extent_ms: i64`: the
//!     next ordinal, and the longest `max_end_ms - start_ms` of any block,
//!     which bounds how far before a query range a block can start.
//!   - `['C'][agent][stream: u8]` → `epoch: u64, seq: u64`, the cursor
//!     (streams: usage 0, sessions 1, health 2, frames 3).
//!   - `['E'][agent][stream][epoch: u64]` → seq: an epoch the agent left;
//!     a later batch of it is stale and refused.
//!   - `['A'][agent][day: i32][app: UTF-8]` → active ms (i64): usage spans
//!     split at the site's midnight.
//!   - `['P'][agent][day]` → active, idle, locked ms (3 × i64).
//!   - `['S'][agent][at_ms: i64][serial: u64]` → a screenshot's metadata;
//!     `['I'][agent][at_ms][serial]` → its encrypted image;
//!     `['N'][agent]` → the agent's next screenshot serial (described in
//!     `screenshots.rs`).
//! - Default tree: `screenshot_key_check` → a hash telling whether a key
//!   file is the one this store's screenshots were encrypted with.
//! - Tree `agents`: agent → bincode [`AgentRecord`].
//! - Tree `audit`: index (u64) → bincode [`AuditRecord`].
//! - Tree `settings`: UTF-8 key → JSON text.
//! - Tree `faults`: `[agent][kind]` → bincode [`AgentFault`] (see
//!   `faults.rs`).
//! - Tree `models`: `category` → the trained category model (see
//!   `models.rs`).
//!
//! New records of one kind that all fit into the agent's newest block of
//! that kind, and start no earlier than it, are merged into it, so
//! frequent small pulls do not leave tiny blocks.

mod audit;
mod block;
mod error;
mod export;
mod faults;
mod ingest;
mod keys;
mod models;
mod rollup;
mod screenshots;

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use protocol::{Cursor, Record, RecordBatch, Retention, StreamKind};
use serde::{Deserialize, Serialize};

use crate::model::{
    self, ActivitySpan, AgentId, AppDayTotal, DayClock, DayNumber, Gap, HealthPoint, SessionEvent,
    Stored, UsageSpan, DAY_MS,
};
use crate::validate::{self, Invalid};

pub use self::audit::{audit_hash, AuditEntry, AuditError, AuditRecord, AUDIT_HASH_DOMAIN};
pub use self::block::BlockError;
pub use self::error::StoreError;
pub use self::export::ExportKind;
pub use self::faults::{AgentFault, FaultKind, FAULT_SHOWN_FOR_MS, MAX_FAULT_DETAIL_BYTES};
pub use self::models::MAX_MODEL_BLOB_BYTES;
pub use self::rollup::PresenceDayTotal;
pub use self::screenshots::{
    check_digest, check_image, jpeg_dimensions, FetchedFrame, ImageCheckError, ScreenshotKey,
    ScreenshotKeyError, ScreenshotMeta, ShotSource, MAX_SCREENSHOT_BYTES, MAX_SCREENSHOT_SIDE_PX,
    SCREENSHOT_KEY_FILE,
};

use self::block::{
    decode_block, decode_header, encode_block, BlockRecord, NotedGap, RECORDS_PER_BLOCK,
};
use self::ingest::{accept, Refusal};
use self::keys::{
    agent_at, agent_prefix, app_day_key, block_key, block_prefix, block_start_bound, cursor_key,
    day_range, kind_state_key, parse_app_day_key, parse_block_key, parse_presence_day_key,
    prefix_end, presence_day_key, retired_epoch_key, APP_DAY_PREFIX, PRESENCE_DAY_PREFIX,
};
use self::rollup::{
    add_presence, decode_app_total, decode_presence, encode_app_total, encode_presence, RollupDelta,
};
use self::screenshots::{key_file_for, ShotCipher};

/// Schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
/// Page cache sled may use; sled's own default is 1 GiB.
pub const SLED_CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;
/// Name of the lock file inside the store directory.
pub const LOCK_FILE: &str = "console-store.lock";

const SCHEMA_KEY: &[u8] = b"console_schema_version";
const CLOCK_KEY: &[u8] = b"day_clock";
const DATA_TREE: &str = "data";
const AGENTS_TREE: &str = "agents";
const AUDIT_TREE: &str = "audit";
const SETTINGS_TREE: &str = "settings";
const FAULTS_TREE: &str = "faults";
const MODELS_TREE: &str = "models";
/// How often, and how far apart, opening retries sled's own file lock.
const SLED_LOCK_ATTEMPTS: u32 = 250;
const SLED_LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(20);
/// Largest encoded agent record.
const MAX_AGENT_RECORD_BYTES: usize = 64 * 1024;
/// Why a first pull of an epoch did not start at seq 1, as a gap reason.
/// (The agent's own reasons are `QuotaExceeded` and `RetentionExpired`.)
const MISSED_AT_START_REASON: &str = "NotServed";
/// Gap reason of records this console refused (see [`validate::check`]).
pub const INVALID_REASON: &str = "Invalid";

/// Raw record kinds, each in its own blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Usage,
    Activity,
    Session,
    Health,
    Gap,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Usage,
        RecordKind::Activity,
        RecordKind::Session,
        RecordKind::Health,
        RecordKind::Gap,
    ];

    /// Stable lower-case name, used in exports and messages.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Usage => "usage",
            RecordKind::Activity => "activity",
            RecordKind::Session => "session",
            RecordKind::Health => "health",
            RecordKind::Gap => "gap",
        }
    }

    /// First byte of this kind's block keys.
    pub(crate) fn tag(self) -> u8 {
        self.index() as u8 + 1
    }

    fn index(self) -> usize {
        match self {
            RecordKind::Usage => 0,
            RecordKind::Activity => 1,
            RecordKind::Session => 2,
            RecordKind::Health => 3,
            RecordKind::Gap => 4,
        }
    }

    /// Days raw records of this kind are kept. Gap markers describe
    /// records of any class, so they stay as long as the longest class.
    pub fn retention_days(self, retention: &Retention) -> u16 {
        match self {
            RecordKind::Usage => retention.usage_days,
            RecordKind::Activity | RecordKind::Session => retention.sessions_days,
            RecordKind::Health => retention.health_days,
            RecordKind::Gap => retention
                .usage_days
                .max(retention.sessions_days)
                .max(retention.health_days)
                .max(retention.frames_days),
        }
    }
}

/// An agent the console knows about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub agent: AgentId,
    /// Name the manager gave it (or its hostname when enrolled).
    pub name: String,
    /// SHA-256 of the agent certificate's SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
    pub added_ms: i64,
    /// `host:port` addresses to try, from mDNS or static configuration.
    pub addresses: Vec<String>,
    pub last_seen_ms: Option<i64>,
    pub last_error: Option<String>,
    pub hostname: Option<String>,
    /// The agent serves simulated demo data.
    pub demo: bool,
}

/// What one [`ConsoleStore::ingest`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    /// Records written (a frame record: its screenshot, stored or
    /// marked dropped on the workstation).
    pub stored_records: u64,
    /// Records at or below the stored cursor, skipped.
    pub skipped_duplicates: u64,
    /// On first contact with an epoch, records before the first one served
    /// (pruned or dropped on the agent); a gap marker records them.
    pub missed_records: u64,
    /// New records that failed [`validate::check`]: not stored, a gap
    /// marker (reason [`INVALID_REASON`]) says which.
    pub refused_records: u64,
    /// The first refused record's seq and why.
    pub first_refusal: Option<(u64, Invalid)>,
    /// The durable cursor: ack this.
    pub new_cursor: Cursor,
}

/// What a prune deleted of one kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrunedKind {
    pub blocks: u64,
    pub records: u64,
    pub bytes: u64,
}

/// What [`ConsoleStore::prune`] deleted, per kind, and of screenshots.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PruneReport {
    kinds: [PrunedKind; 5],
    screenshots: PrunedKind,
}

impl PruneReport {
    pub fn get(&self, kind: RecordKind) -> &PrunedKind {
        &self.kinds[kind.index()]
    }

    /// Records deleted of every kind (screenshots not included).
    pub fn records(&self) -> u64 {
        self.kinds.iter().map(|kind| kind.records).sum()
    }

    /// Screenshots deleted (`records`: how many; `blocks` stays 0;
    /// `bytes`: index entries and encrypted images).
    pub fn screenshots(&self) -> &PrunedKind {
        &self.screenshots
    }
}

/// Per (agent, kind) block bookkeeping.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct KindState {
    next_index: u64,
    max_extent_ms: i64,
}

impl KindState {
    fn encode(self) -> [u8; 16] {
        let mut value = [0_u8; 16];
        value[..8].copy_from_slice(&self.next_index.to_be_bytes());
        value[8..].copy_from_slice(&self.max_extent_ms.to_be_bytes());
        value
    }

    fn decode(value: &[u8]) -> Option<KindState> {
        let value = <&[u8; 16]>::try_from(value).ok()?;
        Some(KindState {
            next_index: u64::from_be_bytes(value[..8].try_into().ok()?),
            max_extent_ms: i64::from_be_bytes(value[8..].try_into().ok()?),
        })
    }
}

fn encode_cursor(cursor: Cursor) -> [u8; 16] {
    let mut value = [0_u8; 16];
    value[..8].copy_from_slice(&cursor.epoch.to_be_bytes());
    value[8..].copy_from_slice(&cursor.seq.to_be_bytes());
    value
}

fn decode_cursor(value: &[u8]) -> Option<Cursor> {
    let value = <&[u8; 16]>::try_from(value).ok()?;
    Some(Cursor {
        epoch: u64::from_be_bytes(value[..8].try_into().ok()?),
        seq: u64::from_be_bytes(value[8..].try_into().ok()?),
    })
}

fn u64_value(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

fn agent_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_AGENT_RECORD_BYTES>()
}

/// Block records with a duration, which queries clip to their range.
trait ClippedSpan: BlockRecord {
    fn set_extent_ms(&mut self, start_ms: i64, end_ms: i64);
}

impl ClippedSpan for UsageSpan {
    fn set_extent_ms(&mut self, start_ms: i64, end_ms: i64) {
        (self.start_ms, self.end_ms) = (start_ms, end_ms);
    }
}

impl ClippedSpan for ActivitySpan {
    fn set_extent_ms(&mut self, start_ms: i64, end_ms: i64) {
        (self.start_ms, self.end_ms) = (start_ms, end_ms);
    }
}

/// `[start, end)` clipped to `[from_ms, to_ms)` if they overlap. Zero-length
/// (or reversed) spans are points at their start and are kept unchanged.
fn clip(start_ms: i64, end_ms: i64, from_ms: i64, to_ms: i64) -> Option<(i64, i64)> {
    if start_ms < end_ms {
        (start_ms < to_ms && end_ms > from_ms).then(|| (start_ms.max(from_ms), end_ms.min(to_ms)))
    } else {
        within(start_ms, from_ms, to_ms).then_some((start_ms, end_ms))
    }
}

fn within(at_ms: i64, from_ms: i64, to_ms: i64) -> bool {
    from_ms <= at_ms && at_ms < to_ms
}

/// New records of one batch, by kind, with what they add to rollups.
#[derive(Debug, Default)]
struct Staged {
    usage: Vec<UsageSpan>,
    activity: Vec<ActivitySpan>,
    sessions: Vec<SessionEvent>,
    health: Vec<HealthPoint>,
    gaps: Vec<NotedGap>,
    rollups: RollupDelta,
}

/// The console's store. See the [module documentation](self).
#[derive(Debug)]
pub struct ConsoleStore {
    path: PathBuf,
    clock: DayClock,
    db: sled::Db,
    data: sled::Tree,
    agents: sled::Tree,
    audit: sled::Tree,
    settings: sled::Tree,
    faults: sled::Tree,
    models: sled::Tree,
    /// The screenshot key file (see `screenshots.rs`).
    screenshot_key_file: PathBuf,
    /// The screenshot key once loaded (or made) on first use.
    screenshot_cipher: Mutex<Option<Arc<ShotCipher>>>,
    /// Serialises writers of `data` (their reads and writes of tails,
    /// rollups, cursors and screenshot serials); the state it guards is on
    /// disk.
    writer: Mutex<()>,
    /// Serialises audit appends (next index and previous hash).
    auditor: Mutex<()>,
    /// Holds the exclusive lock on [`LOCK_FILE`]; declared last so it is
    /// released only after the database is closed.
    _lock_file: File,
}

impl ConsoleStore {
    /// Opens the store in `dir`, creating it if needed. `clock` sets the
    /// site's days for day totals when the store is created; an existing
    /// store keeps the clock it was created with (see [`Self::day_clock`]),
    /// because stored totals cannot be regrouped.
    pub fn open(dir: &Path, clock: DayClock) -> Result<ConsoleStore, StoreError> {
        let path = dir.to_path_buf();
        let io_err = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(io_err)?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked { path }),
            Err(TryLockError::Error(source)) => return Err(io_err(source)),
        }
        let db = open_sled(&path)?;
        let open_tree = |name: &str| {
            db.open_tree(name)
                .map_err(|source| sled_error(&path, source))
        };
        let data = open_tree(DATA_TREE)?;
        let agents = open_tree(AGENTS_TREE)?;
        let audit = open_tree(AUDIT_TREE)?;
        let settings = open_tree(SETTINGS_TREE)?;
        let faults = open_tree(FAULTS_TREE)?;
        let models = open_tree(MODELS_TREE)?;
        let clock = init_or_check_schema(&path, &db, clock)?;
        Ok(ConsoleStore {
            screenshot_key_file: key_file_for(&path),
            screenshot_cipher: Mutex::new(None),
            path,
            clock,
            db,
            data,
            agents,
            audit,
            settings,
            faults,
            models,
            writer: Mutex::new(()),
            auditor: Mutex::new(()),
            _lock_file: lock_file,
        })
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The clock day totals are grouped by; analytics must use it too.
    pub fn day_clock(&self) -> DayClock {
        self.clock
    }

    // ----- inventory -----

    /// Adds or replaces the inventory record of `record.agent`, flushed.
    pub fn upsert_agent(&self, record: &AgentRecord) -> Result<(), StoreError> {
        let value = bincode::serde::encode_to_vec(record, agent_config()).map_err(|source| {
            StoreError::Encode {
                path: self.path.clone(),
                what: format!("the inventory record of agent {}", record.agent),
                source,
            }
        })?;
        self.agents
            .insert(record.agent.as_bytes(), value)
            .map_err(|source| self.sled_error(source))?;
        self.sync()
    }

    pub fn agent(&self, agent: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        self.agents
            .get(agent.as_bytes())
            .map_err(|source| self.sled_error(source))?
            .map(|value| self.decode_agent(agent.as_bytes(), &value))
            .transpose()
    }

    /// Every known agent, sorted by name, then id.
    pub fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let mut records = Vec::new();
        for item in self.agents.iter() {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            records.push(self.decode_agent(&key, &value)?);
        }
        records.sort_by(|a, b| a.name.cmp(&b.name).then(a.agent.cmp(&b.agent)));
        Ok(records)
    }

    /// Removes an agent from the inventory, flushed, and returns what it
    /// was. Its records, rollups and cursors stay until retention prunes
    /// them, so adding it back resumes sync where it stopped.
    pub fn remove_agent(&self, agent: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        let removed = self
            .agents
            .remove(agent.as_bytes())
            .map_err(|source| self.sled_error(source))?;
        self.sync()?;
        removed
            .map(|value| self.decode_agent(agent.as_bytes(), &value))
            .transpose()
    }

    fn decode_agent(&self, key: &[u8], value: &[u8]) -> Result<AgentRecord, StoreError> {
        let agent = agent_at(key, 0).filter(|_| key.len() == 16);
        let decoded = bincode::serde::decode_from_slice::<AgentRecord, _>(value, agent_config());
        let name = agent.map_or_else(|| format!("key {key:02x?}"), |agent| agent.to_string());
        match (agent, decoded) {
            (Some(agent), Ok((record, _))) if record.agent == agent => Ok(record),
            (_, Ok(_)) => Err(self.corrupt(format!(
                "the inventory record under {name} names another agent"
            ))),
            (_, Err(error)) => Err(self.corrupt(format!(
                "the inventory record of {name} does not decode: {error}"
            ))),
        }
    }

    // ----- ingest -----

    /// The stored cursor of one stream of `agent`: where the next pull
    /// continues. `None` before the first ingest.
    pub fn cursor(&self, agent: AgentId, stream: StreamKind) -> Result<Option<Cursor>, StoreError> {
        self.get_data(&cursor_key(agent, stream))?
            .map(|value| {
                decode_cursor(&value).ok_or_else(|| {
                    self.corrupt(format!(
                        "the {} cursor of agent {agent} is not 16 bytes",
                        stream.name()
                    ))
                })
            })
            .transpose()
    }

    /// Stores a pulled batch exactly once and returns the durable cursor to
    /// ack. See the [module documentation](self) for the guarantees;
    /// `now_ms` dates gap markers. A batch with frame records needs their
    /// images: see [`Self::ingest_with_frames`].
    pub fn ingest(
        &self,
        agent: AgentId,
        batch: &RecordBatch,
        now_ms: i64,
    ) -> Result<IngestReport, StoreError> {
        self.ingest_with_frames(agent, batch, &HashMap::new(), now_ms)
    }

    /// [`Self::ingest`] for a batch that may hold frame records: `frames`
    /// maps the seq of every new frame record to what the agent answered
    /// for its image. Each image is checked against its record (size,
    /// SHA-256, a JPEG of the stated dimensions) and encrypted; images,
    /// records and cursor are written in one atomic batch. A bad image or
    /// a missing answer refuses the whole batch.
    pub fn ingest_with_frames(
        &self,
        agent: AgentId,
        batch: &RecordBatch,
        frames: &HashMap<u64, FetchedFrame>,
        now_ms: i64,
    ) -> Result<IngestReport, StoreError> {
        let writer = self.write_guard();
        let stored = self.cursor(agent, batch.stream)?;
        let retired = match stored {
            Some(cursor) if cursor.epoch != batch.epoch => self
                .get_data(&retired_epoch_key(agent, batch.stream, batch.epoch))?
                .is_some(),
            _ => false,
        };
        let accepted = accept(stored, retired, batch).map_err(|refusal| match refusal {
            Refusal::Hole {
                expected_seq,
                found_seq,
            } => StoreError::Hole {
                path: self.path.clone(),
                agent,
                stream: batch.stream,
                epoch: batch.epoch,
                expected_seq,
                found_seq,
            },
            Refusal::StaleEpoch => StoreError::StaleEpoch {
                path: self.path.clone(),
                agent,
                stream: batch.stream,
                epoch: batch.epoch,
            },
        })?;
        let mut report = IngestReport {
            stored_records: 0,
            skipped_duplicates: accepted.skipped_duplicates,
            missed_records: accepted.missed.map_or(0, |(first, last)| last - first + 1),
            refused_records: 0,
            first_refusal: None,
            new_cursor: accepted.new_cursor,
        };
        if accepted.records.is_empty() && stored == Some(accepted.new_cursor) {
            return Ok(report);
        }

        let mut staged = Staged::default();
        let mut shots = Vec::new();
        let mut serials = None;
        // Runs of consecutive refused seqs, each noted as one gap.
        let mut refused: Vec<(u64, u64)> = Vec::new();
        for record in &accepted.records {
            if let Err(invalid) = validate::check(batch.stream, record, now_ms) {
                report.refused_records += 1;
                report.first_refusal.get_or_insert((record.seq, invalid));
                match refused.last_mut() {
                    Some((_, last)) if *last + 1 == record.seq => *last = record.seq,
                    _ => refused.push((record.seq, record.seq)),
                }
                continue;
            }
            if let Record::Frame(meta) = &record.record {
                let bytes = match frames.get(&record.seq) {
                    Some(FetchedFrame::Image(image)) => Some(image.bytes.as_slice()),
                    Some(FetchedFrame::Dropped) => None,
                    None => {
                        return Err(StoreError::FrameImageMissing {
                            path: self.path.clone(),
                            agent,
                            seq: record.seq,
                        })
                    }
                };
                let serials = match &mut serials {
                    Some(serials) => serials,
                    None => serials.insert(self.serials(agent)?),
                };
                shots.push(self.seal_shot(agent, ShotSource::Periodic, serials, meta, bytes)?);
                report.stored_records += 1;
                continue;
            }
            let Some(stored) = model::from_wire(agent, &record.record) else {
                continue;
            };
            report.stored_records += 1;
            match stored {
                Stored::Usage(span) => {
                    staged.rollups.add_usage(self.clock, &span);
                    staged.usage.push(span);
                }
                Stored::Activity(span) => {
                    staged.rollups.add_activity(self.clock, &span);
                    staged.activity.push(span);
                }
                Stored::Session(event) => staged.sessions.push(event),
                Stored::Health(point) => staged.health.push(point),
                Stored::Gap(gap) => staged.gaps.push(NotedGap {
                    noted_ms: now_ms,
                    gap,
                }),
            }
        }
        let noted_gaps = accepted
            .missed
            .map(|range| (range, MISSED_AT_START_REASON))
            .into_iter()
            .chain(refused.into_iter().map(|range| (range, INVALID_REASON)));
        for ((first_seq, last_seq), reason) in noted_gaps {
            staged.gaps.push(NotedGap {
                noted_ms: now_ms,
                gap: Gap {
                    agent,
                    stream: batch.stream.name().to_owned(),
                    first_seq,
                    last_seq,
                    reason: reason.to_owned(),
                },
            });
        }

        let mut writes = sled::Batch::default();
        self.stage_blocks(&mut writes, agent, staged.usage)?;
        self.stage_blocks(&mut writes, agent, staged.activity)?;
        self.stage_blocks(&mut writes, agent, staged.sessions)?;
        self.stage_blocks(&mut writes, agent, staged.health)?;
        self.stage_blocks(&mut writes, agent, staged.gaps)?;
        self.stage_rollups(&mut writes, agent, &staged.rollups)?;
        for shot in shots {
            shot.stage(&mut writes);
        }
        if let Some(serials) = serials {
            serials.stage(&mut writes);
        }
        if let Some(old) = stored.filter(|old| old.epoch != batch.epoch) {
            writes.insert(
                retired_epoch_key(agent, batch.stream, old.epoch),
                &old.seq.to_be_bytes()[..],
            );
        }
        writes.insert(
            cursor_key(agent, batch.stream),
            &encode_cursor(accepted.new_cursor)[..],
        );
        self.data
            .apply_batch(writes)
            .map_err(|source| self.sled_error(source))?;
        drop(writer);
        self.sync()?;
        Ok(report)
    }

    /// Adds blocks of `records` (one kind, one agent) to `writes`: into the
    /// newest block if they all fit after its start, else into new blocks.
    fn stage_blocks<R: BlockRecord>(
        &self,
        writes: &mut sled::Batch,
        agent: AgentId,
        mut records: Vec<R>,
    ) -> Result<(), StoreError> {
        let Some(first_start_ms) = records.iter().map(|record| record.extent_ms().0).min() else {
            return Ok(());
        };
        let mut state = self.kind_state(agent, R::KIND)?;
        if records.len() < RECORDS_PER_BLOCK {
            if let Some((tail_key, tail)) = self.tail_block::<R>(agent)? {
                let tail_start_ms = tail.first().map_or(i64::MIN, |r| r.extent_ms().0);
                let tail_key_start = parse_block_key(R::KIND, &tail_key).map(|key| key.start_ms);
                if tail.len() + records.len() <= RECORDS_PER_BLOCK
                    && tail_key_start == Some(tail_start_ms)
                    && first_start_ms >= tail_start_ms
                {
                    state.next_index = state.next_index.saturating_add(records.len() as u64);
                    let mut merged = tail;
                    merged.append(&mut records);
                    merged.sort_by_key(|record| record.extent_ms().0);
                    let (_, value) = self.encode_block(agent, &merged)?;
                    self.widen_extent(&mut state, &merged);
                    writes.insert(tail_key, value);
                    writes.insert(kind_state_key(agent, R::KIND), &state.encode()[..]);
                    return Ok(());
                }
            }
        }
        records.sort_by_key(|record| record.extent_ms().0);
        for chunk in records.chunks(RECORDS_PER_BLOCK) {
            let (start_ms, value) = self.encode_block(agent, chunk)?;
            writes.insert(block_key(R::KIND, agent, start_ms, state.next_index), value);
            state.next_index = state.next_index.saturating_add(chunk.len() as u64);
            self.widen_extent(&mut state, chunk);
        }
        writes.insert(kind_state_key(agent, R::KIND), &state.encode()[..]);
        Ok(())
    }

    fn widen_extent<R: BlockRecord>(&self, state: &mut KindState, block: &[R]) {
        let start_ms = block.first().map_or(0, |record| record.extent_ms().0);
        let end_ms = block
            .iter()
            .map(|record| record.extent_ms().1)
            .max()
            .unwrap_or(start_ms);
        state.max_extent_ms = state.max_extent_ms.max(end_ms.saturating_sub(start_ms));
    }

    fn encode_block<R: BlockRecord>(
        &self,
        agent: AgentId,
        records: &[R],
    ) -> Result<(i64, Vec<u8>), StoreError> {
        encode_block(records).map_err(|source| StoreError::Encode {
            path: self.path.clone(),
            what: format!("a {} block of agent {agent}", R::KIND.name()),
            source,
        })
    }

    /// The newest block of `agent` and kind `R`, decoded, unless it is
    /// already full.
    fn tail_block<R: BlockRecord>(
        &self,
        agent: AgentId,
    ) -> Result<Option<(sled::IVec, Vec<R>)>, StoreError> {
        let Some(item) = self
            .data
            .scan_prefix(block_prefix(R::KIND, agent))
            .next_back()
        else {
            return Ok(None);
        };
        let (key, value) = item.map_err(|source| self.sled_error(source))?;
        let start_ms = self.block_start(R::KIND, agent, &key)?;
        let header = decode_header(&value)
            .map_err(|source| self.corrupt_block(R::KIND, agent, start_ms, source))?;
        if usize::from(header.count) >= RECORDS_PER_BLOCK {
            return Ok(None);
        }
        let (_, records) = decode_block(agent, start_ms, &value)
            .map_err(|source| self.corrupt_block(R::KIND, agent, start_ms, source))?;
        Ok(Some((key, records)))
    }

    fn stage_rollups(
        &self,
        writes: &mut sled::Batch,
        agent: AgentId,
        delta: &RollupDelta,
    ) -> Result<(), StoreError> {
        for ((day, app), added_ms) in &delta.apps {
            let key = app_day_key(agent, *day, app);
            let old_ms = match self.get_data(&key)? {
                Some(value) => decode_app_total(&value).ok_or_else(|| {
                    self.corrupt(format!(
                        "the {app:?} total of agent {agent} on day {day} is not 8 bytes"
                    ))
                })?,
                None => 0,
            };
            writes.insert(key, &encode_app_total(old_ms.saturating_add(*added_ms))[..]);
        }
        for (day, added) in &delta.presence {
            let key = presence_day_key(agent, *day);
            let old = match self.get_data(&key)? {
                Some(value) => decode_presence(&value).ok_or_else(|| {
                    self.corrupt(format!(
                        "the presence totals of agent {agent} on day {day} are not 24 bytes"
                    ))
                })?,
                None => [0; 3],
            };
            writes.insert(key, &encode_presence(add_presence(old, *added))[..]);
        }
        Ok(())
    }

    fn kind_state(&self, agent: AgentId, kind: RecordKind) -> Result<KindState, StoreError> {
        match self.get_data(&kind_state_key(agent, kind))? {
            Some(value) => KindState::decode(&value).ok_or_else(|| {
                self.corrupt(format!(
                    "the {} block index of agent {agent} is not 16 bytes",
                    kind.name()
                ))
            }),
            None => Ok(KindState::default()),
        }
    }

    // ----- raw queries -----

    /// Usage spans of `agent` overlapping `[from_ms, to_ms)`, clipped to
    /// it, in start order.
    pub fn usage_spans(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<UsageSpan>, StoreError> {
        self.clipped_spans(agent, from_ms, to_ms)
    }

    /// Presence spans of `agent` overlapping `[from_ms, to_ms)`, clipped to
    /// it, in start order.
    pub fn activity_spans(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ActivitySpan>, StoreError> {
        self.clipped_spans(agent, from_ms, to_ms)
    }

    /// Spans of `agent` overlapping `[from_ms, to_ms)`, clipped to it, in
    /// start order.
    fn clipped_spans<R: ClippedSpan>(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<R>, StoreError> {
        let mut spans = Vec::new();
        self.visit_range::<R>(agent, from_ms, to_ms, |block| {
            spans.extend(block.into_iter().filter_map(|mut span| {
                let (start_ms, end_ms) = span.extent_ms();
                let (start_ms, end_ms) = clip(start_ms, end_ms, from_ms, to_ms)?;
                span.set_extent_ms(start_ms, end_ms);
                Some(span)
            }));
            Ok(())
        })?;
        spans.sort_by_key(|span| span.extent_ms().0);
        Ok(spans)
    }

    /// Session events of `agent` in `[from_ms, to_ms)`, in time order.
    pub fn session_events(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SessionEvent>, StoreError> {
        let mut events = Vec::new();
        self.visit_range::<SessionEvent>(agent, from_ms, to_ms, |block| {
            events.extend(
                block
                    .into_iter()
                    .filter(|event| within(event.at_ms, from_ms, to_ms)),
            );
            Ok(())
        })?;
        events.sort_by_key(|event| event.at_ms);
        Ok(events)
    }

    /// Health points of `agent` in `[from_ms, to_ms)`, in time order.
    pub fn health_points(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<HealthPoint>, StoreError> {
        let mut points = Vec::new();
        self.visit_range::<HealthPoint>(agent, from_ms, to_ms, |block| {
            points.extend(
                block
                    .into_iter()
                    .filter(|point| within(point.at_ms, from_ms, to_ms)),
            );
            Ok(())
        })?;
        points.sort_by_key(|point| point.at_ms);
        Ok(points)
    }

    /// Every gap marker of `agent` still retained, in the order received.
    pub fn gaps(&self, agent: AgentId) -> Result<Vec<Gap>, StoreError> {
        let mut gaps = Vec::new();
        self.visit_range::<NotedGap>(agent, i64::MIN, i64::MAX, |block| {
            gaps.extend(block);
            Ok(())
        })?;
        gaps.sort_by_key(|noted| noted.noted_ms);
        Ok(gaps.into_iter().map(|noted| noted.gap).collect())
    }

    /// Calls `visit` with every block of `agent` and kind `R` that may hold
    /// a record overlapping `[from_ms, to_ms)` (`to_ms == i64::MAX`: no
    /// upper bound), in key order.
    fn visit_range<R: BlockRecord>(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
        mut visit: impl FnMut(Vec<R>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if from_ms >= to_ms {
            return Ok(());
        }
        let lookback_ms = self.kind_state(agent, R::KIND)?.max_extent_ms.max(0);
        let start = block_start_bound(R::KIND, agent, from_ms.saturating_sub(lookback_ms));
        let end = if to_ms == i64::MAX {
            prefix_end(&block_prefix(R::KIND, agent))
        } else {
            Bound::Excluded(block_start_bound(R::KIND, agent, to_ms))
        };
        for item in self.data.range((Bound::Included(start), end)) {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            let start_ms = self.block_start(R::KIND, agent, &key)?;
            let corrupt = |source| self.corrupt_block(R::KIND, agent, start_ms, source);
            let header = decode_header(&value).map_err(corrupt)?;
            if header.max_end_ms < from_ms {
                continue;
            }
            let (_, records) = decode_block(agent, start_ms, &value).map_err(corrupt)?;
            visit(records)?;
        }
        Ok(())
    }

    // ----- rollups -----

    /// Active milliseconds per app and day, from the rollups only: of one
    /// agent, or of every agent with `None`; days `from_day..=to_day`
    /// (inclusive, in the store's [`DayClock`]), ordered by agent, day,
    /// app.
    pub fn app_day_totals(
        &self,
        agent: Option<AgentId>,
        from_day: DayNumber,
        to_day: DayNumber,
    ) -> Result<Vec<AppDayTotal>, StoreError> {
        let mut totals = Vec::new();
        self.visit_app_days(agent, from_day, to_day, |total| {
            totals.push(total);
            Ok(())
        })?;
        Ok(totals)
    }

    /// Active, idle and locked milliseconds per day, from the rollups only:
    /// of one agent, or of every agent with `None`; days `from_day..=to_day`
    /// inclusive, ordered by agent, day.
    pub fn presence_day_totals(
        &self,
        agent: Option<AgentId>,
        from_day: DayNumber,
        to_day: DayNumber,
    ) -> Result<Vec<PresenceDayTotal>, StoreError> {
        let mut totals = Vec::new();
        self.visit_presence_days(agent, from_day, to_day, |total| {
            totals.push(total);
            Ok(())
        })?;
        Ok(totals)
    }

    fn visit_app_days(
        &self,
        agent: Option<AgentId>,
        from_day: DayNumber,
        to_day: DayNumber,
        mut visit: impl FnMut(AppDayTotal) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if from_day > to_day {
            return Ok(());
        }
        self.for_each_agent(APP_DAY_PREFIX, agent, |agent| {
            for item in self
                .data
                .range(day_range(APP_DAY_PREFIX, agent, from_day, to_day))
            {
                let (key, value) = item.map_err(|source| self.sled_error(source))?;
                let total = parse_app_day_key(&key).and_then(|(agent, day, app)| {
                    Some(AppDayTotal {
                        agent,
                        day,
                        app,
                        active_ms: decode_app_total(&value)?,
                    })
                });
                visit(total.ok_or_else(|| {
                    self.corrupt(format!("an app-day total of agent {agent} is malformed"))
                })?)?;
            }
            Ok(())
        })
    }

    fn visit_presence_days(
        &self,
        agent: Option<AgentId>,
        from_day: DayNumber,
        to_day: DayNumber,
        mut visit: impl FnMut(PresenceDayTotal) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if from_day > to_day {
            return Ok(());
        }
        self.for_each_agent(PRESENCE_DAY_PREFIX, agent, |agent| {
            for item in self
                .data
                .range(day_range(PRESENCE_DAY_PREFIX, agent, from_day, to_day))
            {
                let (key, value) = item.map_err(|source| self.sled_error(source))?;
                let total = parse_presence_day_key(&key).and_then(|(agent, day)| {
                    let [active_ms, idle_ms, locked_ms] = decode_presence(&value)?;
                    Some(PresenceDayTotal {
                        agent,
                        day,
                        active_ms,
                        idle_ms,
                        locked_ms,
                    })
                });
                visit(total.ok_or_else(|| {
                    self.corrupt(format!(
                        "a presence-day total of agent {agent} is malformed"
                    ))
                })?)?;
            }
            Ok(())
        })
    }

    /// Calls `visit` with `only`, or with every agent that has a key under
    /// `prefix`, in id order, seeking from one agent to the next.
    fn for_each_agent(
        &self,
        prefix: u8,
        only: Option<AgentId>,
        mut visit: impl FnMut(AgentId) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if let Some(agent) = only {
            return visit(agent);
        }
        let mut start = vec![prefix];
        loop {
            let next = self
                .data
                .range((Bound::Included(start), prefix_end(&[prefix])))
                .next();
            let Some(item) = next else {
                return Ok(());
            };
            let (key, _) = item.map_err(|source| self.sled_error(source))?;
            let agent = agent_at(&key, 1)
                .ok_or_else(|| self.corrupt(format!("key {key:02x?} is too short")))?;
            visit(agent)?;
            start = match prefix_end(&agent_prefix(prefix, agent)) {
                Bound::Excluded(next_start) => next_start,
                _ => return Ok(()),
            };
        }
    }

    // ----- retention -----

    /// Deletes raw blocks whose newest record is older than its class's
    /// retention at `now_ms`, and screenshots (index entry and encrypted
    /// image) taken before `frames_days`, flushed. Rollups are kept.
    pub fn prune(&self, now_ms: i64, retention: &Retention) -> Result<PruneReport, StoreError> {
        let writer = self.write_guard();
        let mut report = PruneReport {
            screenshots: self.prune_screenshots(now_ms, retention.frames_days)?,
            ..PruneReport::default()
        };
        for kind in RecordKind::ALL {
            let days = i64::from(kind.retention_days(retention));
            let cutoff_ms = now_ms.saturating_sub(days.saturating_mul(DAY_MS));
            let pruned = &mut report.kinds[kind.index()];
            self.for_each_agent(kind.tag(), None, |agent| {
                let mut deletes = sled::Batch::default();
                let range = block_prefix(kind, agent)..block_start_bound(kind, agent, cutoff_ms);
                for item in self.data.range(range) {
                    let (key, value) = item.map_err(|source| self.sled_error(source))?;
                    let start_ms = self.block_start(kind, agent, &key)?;
                    let header = decode_header(&value)
                        .map_err(|source| self.corrupt_block(kind, agent, start_ms, source))?;
                    if header.max_end_ms < cutoff_ms {
                        deletes.remove(key);
                        pruned.blocks += 1;
                        pruned.records += u64::from(header.count);
                        pruned.bytes += value.len() as u64;
                    }
                }
                self.data
                    .apply_batch(deletes)
                    .map_err(|source| self.sled_error(source))
            })?;
        }
        drop(writer);
        self.sync()?;
        Ok(report)
    }

    // ----- audit log -----

    /// Appends `entry` to the hash-chained audit log, flushed before it
    /// returns the stored record.
    pub fn audit(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        let auditor = self.auditor.lock().unwrap_or_else(PoisonError::into_inner);
        let (index, prev_hash) = match self
            .audit
            .last()
            .map_err(|source| self.sled_error(source))?
        {
            Some((key, value)) => {
                let last = self.decode_audit(&key, &value)?;
                (last.index.saturating_add(1), last.hash)
            }
            None => (0, [0; 32]),
        };
        let record = AuditRecord {
            index,
            prev_hash,
            hash: audit_hash(index, &prev_hash, &entry),
            entry,
        };
        let value =
            bincode::serde::encode_to_vec(&record, audit::record_config()).map_err(|source| {
                StoreError::Encode {
                    path: self.path.clone(),
                    what: format!("audit entry {index}"),
                    source,
                }
            })?;
        self.audit
            .insert(index.to_be_bytes(), value)
            .map_err(|source| self.sled_error(source))?;
        drop(auditor);
        self.sync()?;
        Ok(record)
    }

    /// Up to `limit` audit records from index `from_index` on, in order.
    pub fn audit_log(&self, from_index: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let mut records = Vec::with_capacity(limit.min(1024));
        for item in self.audit.range(from_index.to_be_bytes()..).take(limit) {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            records.push(self.decode_audit(&key, &value)?);
        }
        Ok(records)
    }

    /// Checks the whole chain; returns the number of entries.
    pub fn verify_audit(&self) -> Result<u64, AuditError> {
        let mut expected_index = 0_u64;
        let mut prev_hash = [0_u8; 32];
        for item in self.audit.iter() {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            let broken = |reason: String| AuditError::Broken {
                index: expected_index,
                reason,
            };
            let key_index = u64_value(&key)
                .ok_or_else(|| broken(format!("key {key:02x?} is not an entry number")))?;
            let (record, _): (AuditRecord, usize) =
                bincode::serde::decode_from_slice(&value, audit::record_config())
                    .map_err(|error| broken(format!("it does not decode: {error}")))?;
            audit::check_link(key_index, expected_index, &prev_hash, &record).map_err(broken)?;
            prev_hash = record.hash;
            expected_index += 1;
        }
        Ok(expected_index)
    }

    fn decode_audit(&self, key: &[u8], value: &[u8]) -> Result<AuditRecord, StoreError> {
        bincode::serde::decode_from_slice::<AuditRecord, _>(value, audit::record_config())
            .map(|(record, _)| record)
            .map_err(|error| {
                self.corrupt(format!(
                    "audit entry {:?} does not decode: {error}",
                    u64_value(key)
                ))
            })
    }

    // ----- settings -----

    /// Stores a console setting (static peers, category rules, language…),
    /// flushed.
    pub fn put_setting(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        let text = serde_json::to_vec(value).map_err(|source| StoreError::Setting {
            path: self.path.clone(),
            key: key.to_owned(),
            source,
        })?;
        self.settings
            .insert(key.as_bytes(), text)
            .map_err(|source| self.sled_error(source))?;
        self.sync()
    }

    pub fn get_setting(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.settings
            .get(key.as_bytes())
            .map_err(|source| self.sled_error(source))?
            .map(|text| {
                serde_json::from_slice(&text).map_err(|source| StoreError::Setting {
                    path: self.path.clone(),
                    key: key.to_owned(),
                    source,
                })
            })
            .transpose()
    }

    // ----- helpers -----

    fn get_data(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.data.get(key).map_err(|source| self.sled_error(source))
    }

    fn block_start(&self, kind: RecordKind, agent: AgentId, key: &[u8]) -> Result<i64, StoreError> {
        parse_block_key(kind, key)
            .filter(|parsed| parsed.agent == agent)
            .map(|parsed| parsed.start_ms)
            .ok_or_else(|| StoreError::CorruptBlock {
                path: self.path.clone(),
                kind,
                agent,
                start_ms: 0,
                source: BlockError::BadKey,
            })
    }

    fn corrupt_block(
        &self,
        kind: RecordKind,
        agent: AgentId,
        start_ms: i64,
        source: BlockError,
    ) -> StoreError {
        StoreError::CorruptBlock {
            path: self.path.clone(),
            kind,
            agent,
            start_ms,
            source,
        }
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    fn sled_error(&self, source: sled::Error) -> StoreError {
        sled_error(&self.path, source)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(drop)
            .map_err(|source| self.sled_error(source))
    }

    /// The guarded state is on disk and every write is one atomic batch, so
    /// a panic while holding the lock leaves nothing half-done: a poisoned
    /// lock is recovered.
    fn write_guard(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Opens the database. Our lock file is held, so no other console uses
/// it; sled's own lock can still be held for a moment by background
/// threads of a store this process just dropped, so that is retried.
fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let mut attempts_left = SLED_LOCK_ATTEMPTS;
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(SLED_CACHE_CAPACITY_BYTES)
            .open()
            .map_err(|source| sled_error(path, source));
        match opened {
            Err(StoreError::Locked { .. }) if attempts_left > 1 => {
                attempts_left -= 1;
                std::thread::sleep(SLED_LOCK_RETRY);
            }
            opened => return opened,
        }
    }
}

fn sled_error(path: &Path, source: sled::Error) -> StoreError {
    match source {
        sled::Error::Corruption { .. } => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: source.to_string(),
        },
        // sled reports a lock held by another process only as this text.
        sled::Error::Io(ref io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked {
                path: path.to_path_buf(),
            }
        }
        source => StoreError::Sled {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Writes the schema version and clock into a new store, or checks them;
/// returns the store's clock.
fn init_or_check_schema(
    path: &Path,
    db: &sled::Db,
    clock: DayClock,
) -> Result<DayClock, StoreError> {
    let sled_err = |source| sled_error(path, source);
    let corrupt = |detail: &str| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.to_owned(),
    };
    let Some(version) = db.get(SCHEMA_KEY).map_err(sled_err)? else {
        let mut has_data = !db.is_empty();
        for name in db.tree_names() {
            has_data |= !db.open_tree(&name).map_err(sled_err)?.is_empty();
        }
        if has_data {
            return Err(StoreError::NotAConsoleStore {
                path: path.to_path_buf(),
            });
        }
        let mut batch = sled::Batch::default();
        batch.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()[..]);
        batch.insert(CLOCK_KEY, &clock.utc_offset_secs.to_be_bytes()[..]);
        db.apply_batch(batch).map_err(sled_err)?;
        db.flush().map_err(sled_err)?;
        return Ok(clock);
    };
    let found = <[u8; 4]>::try_from(version.as_ref())
        .map(u32::from_be_bytes)
        .map_err(|_| corrupt("the schema version is not 4 bytes"))?;
    if found != SCHEMA_VERSION {
        return Err(StoreError::UnknownSchema {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let stored = db
        .get(CLOCK_KEY)
        .map_err(sled_err)?
        .and_then(|value| <[u8; 4]>::try_from(value.as_ref()).ok())
        .map(|bytes| DayClock {
            utc_offset_secs: i32::from_be_bytes(bytes),
        })
        .ok_or_else(|| corrupt("the day clock is missing or not 4 bytes"))?;
    if stored != clock {
        tracing::warn!(
            store = %path.display(),
            stored_offset_secs = stored.utc_offset_secs,
            asked_offset_secs = clock.utc_offset_secs,
            "the store groups days by the UTC offset it was created with; keeping it"
        );
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_overlaps_and_points() {
        assert_eq!(clip(0, 10, 5, 20), Some((5, 10)));
        assert_eq!(clip(0, 10, 10, 20), None);
        assert_eq!(clip(5, 5, 5, 20), Some((5, 5)));
        assert_eq!(clip(20, 20, 5, 20), None);
        assert_eq!(clip(0, 100, 5, 20), Some((5, 20)));
        assert_eq!(clip(9, 3, 5, 20), Some((9, 3)));
    }

    #[test]
    fn small_values_round_trip() {
        let cursor = Cursor {
            epoch: u64::MAX,
            seq: 3,
        };
        assert_eq!(decode_cursor(&encode_cursor(cursor)), Some(cursor));
        assert_eq!(decode_cursor(&[0; 15]), None);
        let state = KindState {
            next_index: 7,
            max_extent_ms: -2,
        };
        assert_eq!(KindState::decode(&state.encode()), Some(state));
        assert_eq!(RecordKind::Gap.tag(), 5);
    }
}
