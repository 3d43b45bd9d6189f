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
//! - [`ConsoleStore::erase_agent`] deletes every key naming one agent (its
//!   inventory record, records, rollups, cursors, screenshots, faults) in
//!   bounded, flushed batches; calling it again finishes an erasure a crash
//!   cut short (see `erase.rs`).
//! - [`ConsoleStore::erase_accounts`] deletes the records of some OS
//!   accounts of one agent (presence, sessions, the usage and screenshots
//!   of their signed-in time) and takes their time off the rollups in the
//!   same batches; bounded, flushed, finished by calling it again.
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
//! - Default tree: `console_schema_version` → u32 (`1`); `day_clock` →
//!   `tz:` + the IANA name of the zone the day totals are grouped in (a
//!   store from before time zones holds a 4-byte UTC offset there and is
//!   migrated on open); `day_clock_pending` → the zone a regrouping is
//!   moving to, present only until it is done (see
//!   [`ConsoleStore::set_day_clock`]).
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
//!     split at the site's midnight, in its time zone.
//!   - `['P'][agent][day]` → active, idle, locked ms (3 × i64).
//!   - `['a'][agent][utc_day: i32][app]` → `[quarter: u8][active ms:
//!     i64]…` and `['p'][agent][utc_day]` → `[quarter][active, idle,
//!     locked ms]…`: the same totals per quarter hour of each UTC day,
//!     only the quarters with time, in order. Every UTC offset in use is a
//!     whole number of quarter hours, so day totals of any zone are sums of
//!     quarters: changing the site's zone regroups them without raw records
//!     (which are pruned long before rollups).
//!   - `['U'][agent][user: UTF-8]` → first and last seen ms (2 × i64):
//!     the OS accounts the agent reported (see `accounts.rs`).
//!   - `['S'][agent][at_ms: i64][serial: u64]` → a screenshot's metadata;
//!     `['I'][agent][at_ms][serial]` → its encrypted image;
//!     `['N'][agent]` → the agent's next screenshot serial (described in
//!     `screenshots.rs`).
//! - Default tree: `screenshot_key_check` → a hash telling whether a key
//!   file is the one this store's screenshots were encrypted with;
//!   `accounts_indexed` → present once the `['U']` index covers every
//!   stored record.
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

mod accounts;
mod audit;
mod block;
mod erase;
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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use protocol::schema::{self, SchemaError, SchemaState};

use crate::model::{AgentId, DayClock};

pub use self::accounts::AccountSeen;
pub use self::audit::{audit_hash, AuditEntry, AuditError, AuditRecord, AUDIT_HASH_DOMAIN};
pub use self::block::BlockError;
pub use self::erase::{ErasedAccounts, ErasedCounts, ERASE_BATCH_BLOCKS, ERASE_BATCH_KEYS};
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
const PENDING_CLOCK_KEY: &[u8] = b"day_clock_pending";
/// Tags a zone name in [`CLOCK_KEY`] (an older store holds 4 offset bytes).
const ZONE_TAG: &[u8] = b"tz:";
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
    /// The zone day totals are grouped in; changed only by
    /// [`ConsoleStore::set_day_clock`] under the writer lock.
    clock: RwLock<DayClock>,
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
    /// Opens the store in `dir`, creating it if needed, with day totals in
    /// `clock`'s zone: a store grouped in another zone (or left half way by
    /// a crash during [`Self::set_day_clock`]) is regrouped first, a store
    /// from before time zones gets its slice totals from its raw records.
    pub fn open(dir: &Path, clock: DayClock) -> Result<ConsoleStore, StoreError> {
        ConsoleStore::open_with_progress(dir, clock, |done, total| {
            tracing::info!(done, total, "regrouping day totals in the site's time zone");
        })
    }

    /// [`Self::open`], telling `progress(done, total)` how far a regrouping
    /// has gone (agents done, agents in all).
    pub fn open_with_progress(
        dir: &Path,
        clock: DayClock,
        progress: impl FnMut(usize, usize),
    ) -> Result<ConsoleStore, StoreError> {
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
        let stored = init_or_check_schema(&path, &db, &clock)?;
        let store = ConsoleStore {
            screenshot_key_file: key_file_for(&path),
            screenshot_cipher: Mutex::new(None),
            path,
            clock: RwLock::new(stored.clock.clone()),
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
        };
        if stored.before_zones {
            store.build_slices_from_records()?;
        }
        if stored.before_zones || stored.pending || stored.clock != clock {
            store.set_day_clock(clock, progress)?;
        }
        if store.accounts_unindexed()? {
            store.index_accounts_from_records()?;
        }
        Ok(store)
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The clock day totals are grouped by; analytics must use it too.
    pub fn day_clock(&self) -> DayClock {
        self.clock
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Regroups every day total in `clock`'s zone from the slice totals
    /// (no re-sync: raw records are not needed), telling `progress(done,
    /// total)` after each agent. Ingest waits meanwhile. Crash-safe: the
    /// target zone is noted first and the next open finishes the job.
    pub fn set_day_clock(
        &self,
        clock: DayClock,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<(), StoreError> {
        let _writer = self.write_guard();
        let name = zone_value(&clock);
        self.db
            .insert(PENDING_CLOCK_KEY, name.as_slice())
            .map_err(|source| self.sled_error(source))?;
        self.db.flush().map_err(|source| self.sled_error(source))?;
        let agents = self.agents_with_slices()?;
        progress(0, agents.len());
        for (done, agent) in agents.iter().enumerate() {
            self.regroup_agent_days(&clock, *agent)?;
            progress(done + 1, agents.len());
        }
        let mut batch = sled::Batch::default();
        batch.insert(CLOCK_KEY, name);
        batch.remove(PENDING_CLOCK_KEY);
        self.db
            .apply_batch(batch)
            .map_err(|source| self.sled_error(source))?;
        self.db.flush().map_err(|source| self.sled_error(source))?;
        *self.clock.write().unwrap_or_else(PoisonError::into_inner) = clock;
        Ok(())
    }

    /// Writes the slice totals of every stored usage and presence span
    /// (for a store from before slices; its day totals are regrouped next).
    fn build_slices_from_records(&self) -> Result<(), StoreError> {
        let _writer = self.write_guard();
        let utc = DayClock::utc();
        let mut agents = std::collections::BTreeSet::new();
        for kind in [RecordKind::Usage, RecordKind::Activity] {
            self.for_each_agent(kind.tag(), None, |agent| {
                agents.insert(agent);
                Ok(())
            })?;
        }
        for agent in agents {
            let mut delta = rollup::RollupDelta::default();
            for span in self.usage_spans(agent, i64::MIN, i64::MAX)? {
                delta.add_usage(&utc, &span);
            }
            for span in self.activity_spans(agent, i64::MIN, i64::MAX)? {
                delta.add_activity(&utc, &span);
            }
            delta.apps.clear();
            delta.presence.clear();
            let mut batch = sled::Batch::default();
            self.stage_rollups(&mut batch, agent, &delta)?;
            self.data
                .apply_batch(batch)
                .map_err(|source| self.sled_error(source))?;
        }
        self.db
            .flush()
            .map(|_| ())
            .map_err(|source| self.sled_error(source))
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

/// What a store's default tree says about its day totals.
struct StoredClock {
    /// The zone its day totals are grouped in.
    clock: DayClock,
    /// A regrouping was started and not finished.
    pending: bool,
    /// The store is from before time zones (a UTC offset, no slices).
    before_zones: bool,
}

fn zone_value(clock: &DayClock) -> Vec<u8> {
    [ZONE_TAG, clock.name().as_bytes()].concat()
}

/// Writes the schema version and clock into a new store, or checks them;
/// says which clock the store's day totals are in.
fn init_or_check_schema(
    path: &Path,
    db: &sled::Db,
    clock: &DayClock,
) -> Result<StoredClock, StoreError> {
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
        batch.insert(CLOCK_KEY, zone_value(clock));
        db.apply_batch(batch).map_err(sled_err)?;
        db.flush().map_err(sled_err)?;
        return Ok(StoredClock {
            clock: clock.clone(),
            pending: false,
            before_zones: false,
        });
    }
    let value = db
        .get(CLOCK_KEY)
        .map_err(sled_err)?
        .ok_or_else(|| corrupt("the day clock is missing"))?;
    let pending = db.get(PENDING_CLOCK_KEY).map_err(sled_err)?.is_some();
    if let Some(name) = value.strip_prefix(ZONE_TAG) {
        let name = std::str::from_utf8(name)
            .map_err(|_| corrupt("the day clock's zone name is not UTF-8"))?;
        let stored = DayClock::from_name(name).map_err(|error| corrupt(&error.to_string()))?;
        return Ok(StoredClock {
            clock: stored,
            pending,
            before_zones: false,
        });
    }
    if value.len() != 4 {
        return Err(corrupt("the day clock is neither a zone name nor 4 bytes"));
    }
    Ok(StoredClock {
        clock: DayClock::utc(),
        pending,
        before_zones: true,
    })
}
