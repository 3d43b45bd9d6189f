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
mod inventory;
mod keys;
mod models;
mod queries;
mod records;
mod retention;
mod rollup;
mod screenshots;
mod settings;

use std::fs::{File, OpenOptions, TryLockError};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use protocol::schema::{self, SchemaError, SchemaState};

use crate::model::{AgentId, DayClock};

pub use self::audit::{audit_hash, AuditEntry, AuditError, AuditRecord, AUDIT_HASH_DOMAIN};
pub use self::block::BlockError;
pub use self::error::StoreError;
pub use self::export::ExportKind;
pub use self::faults::{AgentFault, FaultKind, FAULT_SHOWN_FOR_MS, MAX_FAULT_DETAIL_BYTES};
pub use self::inventory::AgentRecord;
pub use self::models::MAX_MODEL_BLOB_BYTES;
pub use self::records::{IngestReport, RecordKind, INVALID_REASON};
pub use self::retention::{PruneReport, PrunedKind};
pub use self::rollup::PresenceDayTotal;
pub use self::screenshots::{
    check_digest, check_image, jpeg_dimensions, FetchedFrame, ImageCheckError, ScreenshotKey,
    ScreenshotKeyError, ScreenshotMeta, ShotSource, MAX_SCREENSHOT_BYTES, MAX_SCREENSHOT_SIDE_PX,
    SCREENSHOT_KEY_FILE,
};

use self::keys::{agent_at, agent_prefix, parse_block_key, prefix_end};
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

fn u64_value(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
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
        sled::Error::Io(ref io) if schema::is_sled_lock_error(io) => StoreError::Locked {
            path: path.to_path_buf(),
        },
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
    let stored = db.get(SCHEMA_KEY).map_err(sled_err)?;
    let state = schema::check_schema_version(stored.as_deref(), SCHEMA_VERSION).map_err(
        |error| match error {
            SchemaError::Malformed { .. } => corrupt("the schema version is not 4 bytes"),
            SchemaError::Unknown { found, supported } => StoreError::UnknownSchema {
                path: path.to_path_buf(),
                found,
                supported,
            },
        },
    )?;
    if state == SchemaState::Missing {
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
        batch.insert(
            SCHEMA_KEY,
            &schema::encode_schema_version(SCHEMA_VERSION)[..],
        );
        batch.insert(CLOCK_KEY, &clock.utc_offset_secs.to_be_bytes()[..]);
        db.apply_batch(batch).map_err(sled_err)?;
        db.flush().map_err(sled_err)?;
        return Ok(clock);
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
