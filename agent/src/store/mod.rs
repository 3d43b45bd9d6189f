//! Durable local record store: a thin sled shell over a pure per-stream core.
//!
//! # Guarantees
//!
//! - [`Store::append`] only buffers in memory and hands out the record's
//!   sequence number. [`Store::flush`] is the group commit: every buffered
//!   record of every stream goes into one atomic sled batch, then the
//!   database is flushed, and only then are the new durable [`Heads`]
//!   returned. A record counts as stored once a flush returned a head at or
//!   above its sequence number; a crash before that loses it, and it is
//!   never served.
//! - [`Store::pull`] serves durable records only, by sequence number, never
//!   by wall-clock time. A cursor from another epoch (a fresh console, or a
//!   store that was wiped) is served from the first retained record.
//! - [`Store::ack`] persists what consoles took, flushed before it returns.
//!   [`Store::prune`] deletes only blocks that are wholly acked *and* past
//!   retention. Only the per-stream quota drops unacked records, oldest
//!   first, and it always appends a [`protocol::GapMarker`] saying which ones.
//!   [`Store::erase_users`] (GDPR) replaces a person's records, acked or
//!   not, by markers at their own sequence numbers.
//! - Every method may block on disk I/O: call it from `spawn_blocking` in
//!   async code. The store is `Sync`; share it through an `Arc`.
//!
//! # When the disk is full
//!
//! - Every write first checks the free space of the store's file system
//!   and refuses, with [`StoreError::DiskFull`], to eat into
//!   [`Quotas::disk_reserve_bytes`], so sled does not see the disk full.
//!   Refused writes change nothing: records stay held in memory and the next
//!   flush retries.
//! - If sled fails a write anyway (another process filled the disk between
//!   the check and the write, or an I/O error), that database instance is
//!   *broken*: sled 0.34 keeps failing it, and a blob write that failed
//!   leaves a writer registered in its log buffer, so a later flush, and the
//!   flush in its `Drop`, wait forever. The store never writes to, flushes
//!   or closes a broken database again (it is leaked, and its file lock with
//!   it): reads still go to it, writes are refused, and once there is room
//!   [`Store::flush`] saves everything held to `held.bin` and returns
//!   [`StoreError::NeedsRestart`]. The next [`Store::open`] (a new process)
//!   takes the held records back with their numbers; sled recovers what was
//!   durable, as after a crash.
//! - Meanwhile records stay held, [`Quotas::held_records`] per stream; past
//!   that the oldest give way to a gap marker (see [`core`](self::core)),
//!   never silently. Access log entries are held too (at most
//!   [`MAX_HELD_ACCESS_ENTRIES`], then one entry counts those that gave
//!   way), so consoles are still served and audited.
//! - While records are held, the store keeps a note of the sequence numbers
//!   it handed out but has not written (`unwritten.json`, rewritten in
//!   place so a full disk cannot stop it, see [`spare`]). If the process
//!   ends with them neither written nor saved in `held.bin`, the next open
//!   appends a gap marker naming them, so a number is never given out
//!   twice. After a crash outside such an outage, numbers never written are
//!   given out again: they were never reported stored.
//!
//! # On-disk format (schema version 1)
//!
//! One sled database per store directory, which also holds `store.lock`, a
//! file locked exclusively for as long as a [`Store`] is open, the note
//! `unwritten.json` (with its spare): `{"epoch": u64, "streams": [{"stream":
//! "Usage", "first_seq": u64, "last_seq": u64}, …]}`, padded with spaces,
//! and while records wait for a restart, `held.bin`: the bincode 2 (serde,
//! standard configuration, at most [`MAX_HELD_FILE_BYTES`]) encoding of the
//! held records and access log entries, removed by the first flush that
//! writes them.
//!
//! - Default tree: `schema_version` → u32 big-endian (`1`); `epoch` → u64
//!   big-endian, random and non-zero, chosen when the store is created.
//! - Tree `records`, written by one atomic batch per flush, prune or ack:
//!   - block `[stream tag: u8][first_seq: u64 BE]` (tags: usage 0,
//!     sessions 1, health 2, frames 3), so iteration order is stream, then
//!     sequence order. The value is `[format: u8 = 1][count: u16 BE]
//!     [min_at_ms: i64 BE][max_at_ms: i64 BE]` followed by the bincode 2
//!     (serde, standard configuration) encoding of the block's
//!     `Vec<SeqRecord>`: between 1 and 256 records with consecutive
//!     sequence numbers starting at `first_seq` (a stream may have holes
//!     between blocks, each named by the gap marker right after it). `at_ms` is the time the
//!     recording loop gave [`Store::append`]; retention uses `max_at_ms`.
//!     Bodies are capped at 16 MiB on encode and decode.
//!   - `['H', tag]` → u64 BE: last sequence number written, so numbering
//!     continues after every block was pruned.
//!   - `['A', tag]` → u64 BE: highest sequence number any console acked.
//!   - `['C', tag, console name…]` → u64 BE: highest acked per console.
//! - Tree `meta`: opaque values under string keys ([`Store::put_meta`]).
//! - Tree `access_log`: u64 BE entry number → bincode [`AccessEntry`].
//!
//! Only the last block of a stream is rewritten in the normal course, when
//! a flush appends to it while it holds fewer than 256 records; its records
//! are kept in memory, so that read-modify-write never reads the disk. An
//! erasure rewrites any block under its own key, with the same sequence
//! numbers and `at_ms` range. Block sizes
//! (the sum of a stream's value lengths) are what [`Quotas`] limit.

mod block;
mod core;
pub mod outage;
pub mod spare;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use protocol::schema::{self, SchemaError, SchemaState};
use protocol::{CapturedImage, Cursor, Record, RecordBatch, Retention, StreamKind};
use serde::{Deserialize, Serialize};

pub use self::block::BlockError;
use self::block::{
    block_key, decode_block, decode_header, parse_block_key, stream_tag, BlockHeader,
};
use self::core::{BlockInfo, Erased, Erasure, Held, PrunePlan, StreamCore, Tail};
use self::outage::HeldCounts;

/// Schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
/// Most records one [`Store::pull`] returns, whatever the caller asks.
pub const MAX_PULL_RECORDS: u32 = 4096;
/// A pull stops reading further blocks once it has read this many bytes of
/// block values, keeping a batch well under the protocol's response cap.
pub const MAX_PULL_READ_BYTES: usize = 8 * 1024 * 1024;
/// Longest console name an ack may carry.
pub const MAX_CONSOLE_NAME_BYTES: usize = 256;
/// Page cache sled may use; sled's own default is 1 GiB.
pub const SLED_CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;
/// Records each stream holds in memory by default while the store cannot
/// write (a few days of live recording).
pub const DEFAULT_HELD_RECORDS: u64 = 10_000;
/// Free space the store leaves on its disk by default: room for sled's
/// log segments (512 KiB each) around any write.
pub const DEFAULT_DISK_RESERVE_BYTES: u64 = 4 * MEBIBYTE;
/// Access log entries held in memory while the store cannot write.
pub const MAX_HELD_ACCESS_ENTRIES: usize = 1_000;

/// Blocks one sled batch of an erasure rewrites at most.
const ERASE_BATCH_BLOCKS: usize = 64;
/// The streams an erasure rewrites: health samples are machine data.
const ERASED_STREAMS: [StreamKind; 3] =
    [StreamKind::Sessions, StreamKind::Usage, StreamKind::Frames];

const MEBIBYTE: u64 = 1024 * 1024;
const DAY_MS: i64 = 86_400_000;
const LOCK_FILE: &str = "store.lock";
/// Tries to take a store's locks before reporting it locked.
const LOCK_ATTEMPTS: u32 = 20;
const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The note of numbers handed out but not written.
const UNWRITTEN_FILE: &str = "unwritten.json";
/// Held records saved for the next process.
const HELD_FILE: &str = "held.bin";
/// Largest `held.bin` read back.
pub const MAX_HELD_FILE_BYTES: usize = 256 * 1024 * 1024;
const SCHEMA_KEY: &[u8] = b"schema_version";
const EPOCH_KEY: &[u8] = b"epoch";
const RECORDS_TREE: &str = "records";
const META_TREE: &str = "meta";
const ACCESS_TREE: &str = "access_log";
/// JPEG bytes of periodic screenshots, keyed by their frames-stream seq.
const FRAME_IMAGES_TREE: &str = "frame_images";
const HEAD_PREFIX: u8 = b'H';
const ACK_PREFIX: u8 = b'A';
const CONSOLE_ACK_PREFIX: u8 = b'C';
/// Largest encoded access log entry.
const MAX_ACCESS_ENTRY_BYTES: usize = 64 * 1024;

/// Why a store operation failed. Messages name the store and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is locked by another smarttracker-agent process; stop it first")]
    Locked { path: PathBuf },
    #[error("store {path} is corrupt ({detail}); move it aside, the agent will start a new epoch")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "store {path} is corrupt: the {} block starting at seq {first_seq}: {source}; \
         move it aside, the agent will start a new epoch",
        .stream.name()
    )]
    CorruptBlock {
        path: PathBuf,
        stream: StreamKind,
        first_seq: u64,
        source: BlockError,
    },
    #[error(
        "store {path} has schema version {found}, this agent reads version {supported}; \
         upgrade the agent, or move the store aside to start a new epoch"
    )]
    UnknownSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("store {path}: {source}; check that the directory exists, is writable and has space")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store {path}: database error: {source}; check disk space and permissions")]
    Sled { path: PathBuf, source: sled::Error },
    #[error("store {path}: cannot encode {what}: {source}")]
    Encode {
        path: PathBuf,
        what: String,
        source: bincode::error::EncodeError,
    },
    #[error(
        "ack for the {} stream names epoch {theirs:#018x}, but this store is epoch \
         {ours:#018x}; pull again from the start",
        .stream.name()
    )]
    StaleEpoch {
        stream: StreamKind,
        ours: u64,
        theirs: u64,
    },
    #[error(
        "ack for the {} stream up to seq {upto_seq} is beyond the last stored seq {durable_seq}",
        .stream.name()
    )]
    AckBeyondHead {
        stream: StreamKind,
        upto_seq: u64,
        durable_seq: u64,
    },
    #[error("console name of {len_bytes} bytes is longer than {MAX_CONSOLE_NAME_BYTES} bytes")]
    ConsoleNameTooLong { len_bytes: usize },
    #[error(
        "cannot write to {path}: no space left on device ({available_bytes} bytes free, \
         {needed_bytes} needed to write safely); free space on that disk"
    )]
    DiskFull {
        path: PathBuf,
        available_bytes: u64,
        needed_bytes: u64,
    },
    #[error("cannot write to {path}: {cause}")]
    WriteFailed { path: PathBuf, cause: WriteFailure },
    #[error(
        "cannot write to {path}: its database failed a write ({cause}) and cannot be \
         reopened in this process; the {records} records it held are saved in {held_file}, \
         for the next start to write: restart the agent"
    )]
    NeedsRestart {
        path: PathBuf,
        cause: WriteFailure,
        records: u64,
        held_file: PathBuf,
    },
    #[error("cannot save held records to {path}: {source}")]
    Spill {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why the database refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteFailure {
    #[error("no space left on device; free space on that disk")]
    NoSpace,
    #[error("disk quota exceeded; free space or raise the quota")]
    QuotaExceeded,
    #[error("the file system is read-only; remount it read-write")]
    ReadOnly,
    #[error("{0}; check that disk and the directory's permissions")]
    Other(String),
}

impl WriteFailure {
    /// The disk (or the user's quota on it) ran out of space.
    pub fn is_space(&self) -> bool {
        matches!(self, WriteFailure::NoSpace | WriteFailure::QuotaExceeded)
    }

    fn of(error: &sled::Error) -> WriteFailure {
        match error {
            sled::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::StorageFull => WriteFailure::NoSpace,
                std::io::ErrorKind::QuotaExceeded => WriteFailure::QuotaExceeded,
                std::io::ErrorKind::ReadOnlyFilesystem => WriteFailure::ReadOnly,
                _ => WriteFailure::Other(io.to_string()),
            },
            other => WriteFailure::Other(other.to_string()),
        }
    }
}

/// One value per record stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PerStream<T>([T; 4]);

impl<T> PerStream<T> {
    pub fn get(&self, stream: StreamKind) -> &T {
        &self.0[usize::from(stream_tag(stream))]
    }

    /// Values in [`StreamKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (StreamKind, &T)> {
        StreamKind::ALL.into_iter().zip(self.0.iter())
    }

    fn from_fn(value: impl FnMut(StreamKind) -> T) -> Self {
        PerStream(StreamKind::ALL.map(value))
    }

    fn get_mut(&mut self, stream: StreamKind) -> &mut T {
        &mut self.0[usize::from(stream_tag(stream))]
    }
}

/// Last durable sequence number of every stream, in one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub epoch: u64,
    pub seqs: PerStream<u64>,
}

impl Heads {
    pub fn cursor(&self, stream: StreamKind) -> Cursor {
        Cursor {
            epoch: self.epoch,
            seq: *self.seqs.get(stream),
        }
    }

    /// The heads as [`protocol::HelloReply::heads`] carries them.
    pub fn to_wire(&self) -> Vec<(StreamKind, Cursor)> {
        StreamKind::ALL
            .into_iter()
            .map(|stream| (stream, self.cursor(stream)))
            .collect()
    }
}

/// Most bytes of block values each stream may keep; past it the oldest
/// blocks are dropped, acked or not, and a gap marker says so. Frame
/// images have a quota of their own, the same size as their records'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub usage_bytes: u64,
    pub sessions_bytes: u64,
    pub health_bytes: u64,
    pub frames_bytes: u64,
    /// Access log entries kept; the oldest go first.
    pub access_entries: u64,
    /// Records each stream holds in memory while the store cannot write;
    /// past it the oldest give way to a gap marker.
    pub held_records: u64,
    /// Free space writes leave on the store's file system.
    pub disk_reserve_bytes: u64,
}

impl Quotas {
    pub fn for_stream(&self, stream: StreamKind) -> u64 {
        match stream {
            StreamKind::Usage => self.usage_bytes,
            StreamKind::Sessions => self.sessions_bytes,
            StreamKind::Health => self.health_bytes,
            StreamKind::Frames => self.frames_bytes,
        }
    }
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            usage_bytes: 64 * MEBIBYTE,
            sessions_bytes: 32 * MEBIBYTE,
            health_bytes: 64 * MEBIBYTE,
            frames_bytes: 256 * MEBIBYTE,
            access_entries: 100_000,
            held_records: DEFAULT_HELD_RECORDS,
            disk_reserve_bytes: DEFAULT_DISK_RESERVE_BYTES,
        }
    }
}

/// What the `status` command shows about one stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamCounts {
    /// Appended but not yet durable: held in memory.
    pub buffered_records: u64,
    /// Held records that gave way to a gap marker because the store could
    /// not write them in time.
    pub dropped_records: u64,
    pub stored_records: u64,
    /// Sum of the stream's block value sizes, what its quota limits.
    pub stored_bytes: u64,
    pub durable_seq: u64,
    /// Highest sequence number any console acked.
    pub acked_seq: u64,
}

/// What one stream lost to a prune.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrunedStream {
    pub blocks: u64,
    pub records: u64,
    pub bytes: u64,
}

/// What [`Store::prune`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PruneReport {
    pub streams: PerStream<PrunedStream>,
}

/// What [`Store::erase_users`] replaced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ErasureReport {
    /// Records replaced by gap markers, in every stream.
    pub records: u64,
    /// Screenshot images deleted.
    pub images: u64,
}

/// One audited access to this agent, kept in the store's access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub at_ms: i64,
    pub console_id: String,
    pub console_name: String,
    pub role: String,
    pub request: String,
    pub detail: String,
    pub allowed: bool,
}

/// The sled database and its trees.
#[derive(Debug)]
struct Backend {
    db: sled::Db,
    records: sled::Tree,
    meta: sled::Tree,
    access: sled::Tree,
    frame_images: sled::Tree,
}

impl Backend {
    /// Opens the database in `path` (one attempt).
    fn open(path: &Path) -> Result<Backend, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(SLED_CACHE_CAPACITY_BYTES)
            .open()
            .map_err(|source| sled_error(path, source))?;
        let open_tree = |name: &str| {
            db.open_tree(name)
                .map_err(|source| sled_error(path, source))
        };
        Ok(Backend {
            records: open_tree(RECORDS_TREE)?,
            meta: open_tree(META_TREE)?,
            access: open_tree(ACCESS_TREE)?,
            frame_images: open_tree(FRAME_IMAGES_TREE)?,
            db,
        })
    }
}

/// The database under the store, and whether it takes writes.
#[derive(Debug)]
enum Database {
    /// Reads and writes go to it.
    Open(Arc<Backend>),
    /// A write failed: only reads go to it, and it is never flushed or
    /// closed (see the [module documentation](self)).
    Broken {
        backend: Arc<Backend>,
        cause: WriteFailure,
    },
}

/// An access log entry not written yet, with its entry number.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldAccess {
    id: u64,
    entry: AccessEntry,
    value: Vec<u8>,
}

/// Held access log entries that gave way: written as one entry in the place
/// of the newest of them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct DroppedAccess {
    last_id: u64,
    last_at_ms: i64,
    count: u64,
}

/// Sequence numbers one stream handed out and has not written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UnwrittenRange {
    stream: StreamKind,
    first_seq: u64,
    last_seq: u64,
}

/// What `held.bin` holds.
#[derive(Debug, Serialize, Deserialize)]
struct HeldFile {
    epoch: u64,
    streams: Vec<(StreamKind, Held)>,
    access: Vec<HeldAccess>,
    dropped_access: Option<DroppedAccess>,
}

/// What `unwritten.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UnwrittenNote {
    epoch: u64,
    streams: Vec<UnwrittenRange>,
}

#[derive(Debug)]
struct Inner {
    streams: PerStream<StreamCore>,
    next_access_id: u64,
    /// Bytes held in the frame images tree.
    frame_image_bytes: u64,
    database: Database,
    /// Access log entries waiting to be written, oldest first.
    held_access: VecDeque<HeldAccess>,
    dropped_access: Option<DroppedAccess>,
    /// What `unwritten.json` says now (`None`: not known).
    noted: Option<Vec<UnwrittenRange>>,
    /// `held.bin` exists: the next flush that writes everything removes it.
    spilled: bool,
}

/// The agent's durable record store. See the [module documentation](self).
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    epoch: u64,
    quotas: Quotas,
    inner: Mutex<Inner>,
    /// Holds the exclusive lock on `store.lock`; declared last so it is
    /// released only after the database is closed.
    _lock_file: File,
}

fn head_key(stream: StreamKind) -> [u8; 2] {
    [HEAD_PREFIX, stream_tag(stream)]
}

fn ack_key(stream: StreamKind) -> [u8; 2] {
    [ACK_PREFIX, stream_tag(stream)]
}

fn console_ack_key(stream: StreamKind, console: &str) -> Vec<u8> {
    let mut key = vec![CONSOLE_ACK_PREFIX, stream_tag(stream)];
    key.extend_from_slice(console.as_bytes());
    key
}

fn access_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_ACCESS_ENTRY_BYTES>()
}

fn random_epoch() -> u64 {
    loop {
        let epoch: u64 = rand::random();
        if epoch != 0 {
            return epoch;
        }
    }
}

impl Store {
    /// Opens the store in `dir`, creating it (and a new random epoch) if
    /// it does not exist yet. Numbers an earlier run noted as handed out
    /// and never written get their gap marker (written by the next flush).
    pub fn open(dir: &Path, quotas: Quotas) -> Result<Store, StoreError> {
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
        // A store closed a moment ago may still be held by sled's flusher
        // thread (or a process exiting): wait a little before refusing.
        let mut attempts_left = LOCK_ATTEMPTS;
        let backend = loop {
            attempts_left -= 1;
            let opened = match lock_file.try_lock() {
                Ok(()) => Backend::open(&path),
                Err(TryLockError::WouldBlock) => Err(StoreError::Locked { path: path.clone() }),
                Err(TryLockError::Error(source)) => return Err(io_err(source)),
            };
            match opened {
                Err(StoreError::Locked { .. }) if attempts_left > 0 => {
                    std::thread::sleep(LOCK_RETRY_PAUSE);
                }
                result => break result?,
            }
        };
        let epoch = init_or_check_schema(&path, &backend.db, &backend.records)?;
        let streams = load_streams(&path, &backend.records, quotas.held_records)?;
        let next_access_id = match backend
            .access
            .last()
            .map_err(|source| sled_error(&path, source))?
        {
            Some((key, _)) => {
                u64_value(&key).ok_or_else(|| corrupt(&path, "bad access log key"))? + 1
            }
            None => 0,
        };
        let backend = Arc::new(backend);
        let store = Store {
            path,
            epoch,
            quotas,
            inner: Mutex::new(Inner {
                streams,
                next_access_id,
                frame_image_bytes: 0,
                database: Database::Open(backend.clone()),
                held_access: VecDeque::new(),
                dropped_access: None,
                noted: None,
                spilled: false,
            }),
            _lock_file: lock_file,
        };
        {
            let mut inner = store.lock();
            store.take_back_spilled(&mut inner);
            // Images of screenshots taken back stay with their records.
            let last_seq = inner.streams.get(StreamKind::Frames).next_seq() - 1;
            store.take_back_unwritten(&mut inner);
            store.note_unwritten(&mut inner);
            store.count_frame_images(&mut inner, &backend, last_seq)?;
        }
        Ok(store)
    }

    /// Takes back the records (and access log entries) an earlier process
    /// saved in `held.bin`, with their numbers, to write at the next flush.
    fn take_back_spilled(&self, inner: &mut Inner) {
        let path = self.path.join(HELD_FILE);
        let bytes = match std::fs::metadata(&path) {
            Ok(metadata) if metadata.len() > MAX_HELD_FILE_BYTES as u64 => {
                tracing::warn!(path = %path.display(), "held records file too large; ignored");
                return;
            }
            Ok(_) => match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(read_error) => {
                    tracing::warn!(path = %path.display(), %read_error, "cannot read held records");
                    return;
                }
            },
            Err(_) => return,
        };
        let config = bincode::config::standard().with_limit::<MAX_HELD_FILE_BYTES>();
        let held: HeldFile = match bincode::serde::decode_from_slice(&bytes, config) {
            Ok((held, _)) => held,
            Err(decode_error) => {
                tracing::warn!(path = %path.display(), %decode_error, "unreadable held records; ignored");
                return;
            }
        };
        inner.spilled = true;
        if held.epoch != self.epoch {
            return;
        }
        for (stream, records) in held.streams {
            inner.streams.get_mut(stream).restore(records);
        }
        let next_access_id = inner.next_access_id;
        inner.held_access.extend(
            held.access
                .into_iter()
                .filter(|entry| entry.id >= next_access_id),
        );
        if let Some(last) = inner.held_access.back() {
            inner.next_access_id = last.id + 1;
        }
        inner.dropped_access = held.dropped_access;
        tracing::warn!(path = %path.display(), "records an earlier run could not write are taken back");
    }

    /// Saves everything held in memory to `held.bin` (durably), for the
    /// next process to write: what to do when this one cannot write and is
    /// about to end, or to restart.
    pub fn spill_held(&self) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        self.spill(&mut inner)
    }

    fn spill(&self, inner: &mut Inner) -> Result<u64, StoreError> {
        let path = self.path.join(HELD_FILE);
        let spill_error = |source| StoreError::Spill {
            path: path.clone(),
            source,
        };
        let held = HeldFile {
            epoch: self.epoch,
            streams: inner
                .streams
                .iter()
                .map(|(stream, core)| (stream, core.held()))
                .collect(),
            access: inner.held_access.iter().cloned().collect(),
            dropped_access: inner.dropped_access,
        };
        let config = bincode::config::standard().with_limit::<MAX_HELD_FILE_BYTES>();
        let bytes = bincode::serde::encode_to_vec(&held, config)
            .map_err(|error| spill_error(std::io::Error::other(error)))?;
        let tmp = self.path.join(format!("{HELD_FILE}.tmp"));
        let written = File::create(&tmp).and_then(|mut file| {
            std::io::Write::write_all(&mut file, &bytes)?;
            file.sync_all()
        });
        if let Err(source) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(spill_error(source));
        }
        inner.spilled = true;
        Ok(inner
            .streams
            .iter()
            .map(|(_, core)| core.held_records() as u64)
            .sum())
    }

    /// Reads `unwritten.json` and names its numbers lost (gap markers held
    /// for the next flush).
    fn take_back_unwritten(&self, inner: &mut Inner) {
        let path = self.path.join(UNWRITTEN_FILE);
        let note = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<UnwrittenNote>(&bytes) {
                Ok(note) => note,
                Err(note_error) => {
                    tracing::warn!(path = %path.display(), %note_error, "unreadable note of unwritten records; ignored");
                    return;
                }
            },
            Err(_) => return,
        };
        if note.epoch != self.epoch {
            return;
        }
        for range in note.streams {
            let core = inner.streams.get_mut(range.stream);
            if range.last_seq >= core.next_seq() {
                tracing::warn!(
                    stream = range.stream.name(),
                    first_seq = range.first_seq,
                    last_seq = range.last_seq,
                    "the last run ended without writing these records; a gap marker names them"
                );
                core.mark_lost_through(range.last_seq);
            }
        }
    }

    /// Rewrites `unwritten.json` when what is handed out but unwritten
    /// changed; best effort (a failure is logged, the next call retries).
    fn note_unwritten(&self, inner: &mut Inner) {
        let streams: Vec<UnwrittenRange> = inner
            .streams
            .iter()
            .filter_map(|(stream, core)| {
                core.unwritten()
                    .map(|(first_seq, last_seq)| UnwrittenRange {
                        stream,
                        first_seq,
                        last_seq,
                    })
            })
            .collect();
        if inner.noted.as_ref() == Some(&streams) {
            return;
        }
        let note = UnwrittenNote {
            epoch: self.epoch,
            streams,
        };
        let written = serde_json::to_vec(&note)
            .map_err(std::io::Error::from)
            .and_then(|json| spare::replace(&self.path.join(UNWRITTEN_FILE), &json, true));
        match written {
            Ok(()) => inner.noted = Some(note.streams),
            Err(note_error) => {
                tracing::warn!(path = %self.path.display(), %note_error, "cannot note unwritten records");
                inner.noted = None;
            }
        }
    }

    /// Counts the frame images and drops those past `last_seq`, whose
    /// records were never written (the process ended between taking a
    /// screenshot and the next flush).
    fn count_frame_images(
        &self,
        inner: &mut Inner,
        backend: &Arc<Backend>,
        last_seq: u64,
    ) -> Result<(), StoreError> {
        let mut held_bytes = 0_u64;
        let mut orphans = Vec::new();
        for item in backend.frame_images.iter() {
            let (key, value) = item.map_err(|source| sled_error(&self.path, source))?;
            match u64_value(&key) {
                Some(seq) if seq <= last_seq => held_bytes += value.len() as u64,
                _ => orphans.push(key),
            }
        }
        for key in orphans {
            let removed = backend.frame_images.remove(key);
            self.written(inner, backend, removed)?;
        }
        inner.frame_image_bytes = held_bytes;
        self.tidy_frame_images(inner, backend)
    }

    /// Keeps a periodic screenshot: its image now, its [`FrameMeta`]
    /// record in the frames stream (durable with the next flush, like any
    /// record). Returns the record's sequence number.
    pub fn append_frame(&self, image: &CapturedImage) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let backend = self.writable(&inner)?;
        self.check_space(image.bytes.len() as u64)?;
        let seq = inner.streams.get(StreamKind::Frames).next_seq();
        let inserted = backend
            .frame_images
            .insert(seq.to_be_bytes(), image.bytes.as_slice());
        self.written(&mut inner, &backend, inserted)?;
        inner
            .streams
            .get_mut(StreamKind::Frames)
            .append(Record::Frame(image.meta.clone()), image.meta.at_ms);
        inner.frame_image_bytes += image.bytes.len() as u64;
        self.tidy_frame_images(&mut inner, &backend)?;
        Ok(seq)
    }

    /// The image of the periodic screenshot at `cursor`, if its record is
    /// durable in this epoch and the image was not dropped since.
    pub fn frame_image(&self, cursor: Cursor) -> Result<Option<Vec<u8>>, StoreError> {
        let (durable_seq, backend) = {
            let inner = self.lock();
            let durable_seq = inner.streams.get(StreamKind::Frames).durable_seq();
            (durable_seq, self.readable(&inner))
        };
        if cursor.epoch != self.epoch || cursor.seq == 0 || cursor.seq > durable_seq {
            return Ok(None);
        }
        Ok(backend
            .frame_images
            .get(cursor.seq.to_be_bytes())
            .map_err(|source| sled_error(&self.path, source))?
            .map(|value| value.to_vec()))
    }

    /// Drops images whose records are gone (pruned, over quota, or given way
    /// while held) and, past the frames quota, the oldest images (their
    /// records stay: a console then learns the image was dropped).
    fn tidy_frame_images(
        &self,
        inner: &mut Inner,
        backend: &Arc<Backend>,
    ) -> Result<(), StoreError> {
        for seq in inner
            .streams
            .get_mut(StreamKind::Frames)
            .take_dropped_frames()
        {
            let removed = backend.frame_images.remove(seq.to_be_bytes());
            if let Some(value) = self.written(inner, backend, removed)? {
                inner.frame_image_bytes =
                    inner.frame_image_bytes.saturating_sub(value.len() as u64);
            }
        }
        let frames = inner.streams.get(StreamKind::Frames);
        let first_kept_seq = frames
            .blocks_after(0)
            .next()
            .map_or(frames.written_seq() + 1, |(first_seq, _)| first_seq);
        let quota_bytes = self.quotas.for_stream(StreamKind::Frames);
        loop {
            let Some((key, value)) = backend
                .frame_images
                .first()
                .map_err(|source| sled_error(&self.path, source))?
            else {
                return Ok(());
            };
            // Keys are written as 8-byte seqs; anything else is junk and goes.
            let seq = u64_value(&key).unwrap_or(0);
            if seq >= first_kept_seq && inner.frame_image_bytes <= quota_bytes {
                return Ok(());
            }
            let removed = backend.frame_images.remove(key);
            self.written(inner, backend, removed)?;
            inner.frame_image_bytes = inner.frame_image_bytes.saturating_sub(value.len() as u64);
        }
    }

    /// Frame images held, in bytes.
    pub fn frame_image_bytes(&self) -> u64 {
        self.lock().frame_image_bytes
    }

    /// This store's epoch, fixed for its lifetime.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The limits this store was opened with.
    pub fn quotas(&self) -> Quotas {
        self.quotas
    }

    /// Buffers `record` (no I/O) and returns its sequence number. It is
    /// stored once a later [`Store::flush`] returned a head at or above it.
    /// `at_ms` is when it was recorded; retention is measured from it.
    /// Past [`Quotas::held_records`] unwritten records, the oldest give way
    /// to a gap marker.
    pub fn append(&self, stream: StreamKind, record: Record, at_ms: i64) -> u64 {
        self.lock().streams.get_mut(stream).append(record, at_ms)
    }

    /// Group commit: writes every held record and access log entry in one
    /// atomic batch, flushes the database and returns the durable heads.
    /// Call it at least every second. A stream past its quota loses its
    /// oldest blocks in the same batch, with a gap marker appended. On
    /// failure everything stays held, and the note of unwritten numbers is
    /// brought up to date; if the database broke on an earlier write and
    /// there is room again, everything held is saved for the next process
    /// and [`StoreError::NeedsRestart`] says so.
    pub fn flush(&self) -> Result<Heads, StoreError> {
        let written = {
            let mut inner = self.lock();
            let written = self.write_held(&mut inner);
            if written.is_err() {
                self.note_unwritten(&mut inner);
            }
            written?
        };
        if written.needs_sync {
            if let Err(sync_error) = self.sync(&written.backend) {
                self.note_unwritten(&mut self.lock());
                return Err(sync_error);
            }
        }
        let mut inner = self.lock();
        for (stream, seq) in written.seqs.iter() {
            inner.streams.get_mut(stream).mark_durable(*seq);
        }
        forget_written_access(&mut inner, written.access_id);
        self.note_unwritten(&mut inner);
        if inner.spilled && inner.noted.as_ref().is_some_and(Vec::is_empty) {
            match std::fs::remove_file(self.path.join(HELD_FILE)) {
                Ok(()) => inner.spilled = false,
                Err(remove_error) => {
                    tracing::warn!(%remove_error, "cannot remove the written held records")
                }
            }
        }
        Ok(heads_of(self.epoch, &inner))
    }

    /// The writing half of [`Store::flush`], under the lock.
    fn write_held(&self, inner: &mut Inner) -> Result<Written, StoreError> {
        let backend = match &inner.database {
            Database::Open(backend) => backend.clone(),
            Database::Broken { cause, .. } => {
                let cause = cause.clone();
                self.check_space(0)?;
                let records = self.spill(inner)?;
                return Err(StoreError::NeedsRestart {
                    path: self.path.clone(),
                    cause,
                    records,
                    held_file: self.path.join(HELD_FILE),
                });
            }
        };
        let mut batch = sled::Batch::default();
        let mut commits = Vec::new();
        let mut write_bytes = 0_u64;
        for stream in StreamKind::ALL {
            let plan = inner
                .streams
                .get(stream)
                .plan_flush(self.quotas.for_stream(stream))
                .map_err(|source| StoreError::Encode {
                    path: self.path.clone(),
                    what: format!("a {} block", stream.name()),
                    source,
                })?;
            let Some(plan) = plan else { continue };
            for write in plan.writes {
                write_bytes += write.value.len() as u64;
                batch.insert(&block_key(stream, write.first_seq)[..], write.value);
            }
            for first_seq in &plan.deletes {
                batch.remove(&block_key(stream, *first_seq)[..]);
            }
            batch.insert(
                &head_key(stream)[..],
                &plan.commit.written_seq.to_be_bytes()[..],
            );
            commits.push((stream, plan.commit));
        }
        write_bytes += inner
            .held_access
            .iter()
            .map(|held| held.value.len() as u64)
            .sum::<u64>();
        let has_writes = !commits.is_empty() || !inner.held_access.is_empty();
        if has_writes {
            self.check_space(write_bytes)?;
        }
        if !commits.is_empty() {
            let applied = backend.records.apply_batch(batch);
            self.written(inner, &backend, applied)?;
        }
        for (stream, commit) in commits {
            if let Some(gap) = commit.gap() {
                tracing::warn!(
                    stream = stream.name(),
                    first_seq = gap.first_seq,
                    last_seq = gap.last_seq,
                    "stream over its quota: dropped its oldest records"
                );
            }
            inner.streams.get_mut(stream).commit_flush(commit);
        }
        let access_id = self.write_access(inner, &backend)?;
        if has_writes {
            self.tidy_frame_images(inner, &backend)?;
        }
        let seqs = PerStream::from_fn(|stream| inner.streams.get(stream).written_seq());
        let needs_sync = access_id.is_some()
            || inner
                .streams
                .iter()
                .any(|(_, core)| core.durable_seq() < core.written_seq());
        Ok(Written {
            backend,
            seqs,
            access_id,
            needs_sync,
        })
    }

    /// Durable heads: what a flush last reported stored.
    pub fn heads(&self) -> Heads {
        heads_of(self.epoch, &self.lock())
    }

    /// Per-stream held and stored counts, for the `status` command.
    pub fn counts(&self) -> PerStream<StreamCounts> {
        let inner = self.lock();
        PerStream::from_fn(|stream| {
            let core = inner.streams.get(stream);
            StreamCounts {
                buffered_records: core.held_records() as u64,
                dropped_records: core.dropped_held(),
                stored_records: core.stored_records(),
                stored_bytes: core.stored_bytes(),
                durable_seq: core.durable_seq(),
                acked_seq: core.acked_seq(),
            }
        })
    }

    /// Records held in memory (and dropped while held) over all streams.
    pub fn held(&self) -> HeldCounts {
        self.counts()
            .iter()
            .fold(HeldCounts::default(), |total, (_, count)| HeldCounts {
                records: total.records + count.buffered_records,
                dropped: total.dropped + count.dropped_records,
            })
    }

    /// Up to `max_records` (at most [`MAX_PULL_RECORDS`]) durable records
    /// of `stream` after `after`, in sequence order. A cursor from another
    /// epoch is served from the first retained record. A batch ends before
    /// a hole in the numbering, so a hole only ever starts a batch.
    pub fn pull(
        &self,
        stream: StreamKind,
        after: Cursor,
        max_records: u32,
    ) -> Result<RecordBatch, StoreError> {
        let after_seq = if after.epoch == self.epoch {
            after.seq
        } else {
            0
        };
        let limit = max_records.min(MAX_PULL_RECORDS) as usize;
        let inner = self.lock();
        let backend = self.readable(&inner);
        let core = inner.streams.get(stream);
        let durable_seq = core.durable_seq();
        let mut records: Vec<protocol::SeqRecord> = Vec::new();
        let mut read_bytes = 0_usize;
        for (first_seq, _) in core.blocks_after(after_seq) {
            let after_hole = records
                .last()
                .is_some_and(|last| last.seq.checked_add(1) != Some(first_seq));
            if first_seq > durable_seq
                || records.len() >= limit
                || after_hole
                || (!records.is_empty() && read_bytes >= MAX_PULL_READ_BYTES)
            {
                break;
            }
            let (_, block, value_bytes) = self.read_block(&backend, stream, first_seq)?;
            read_bytes += value_bytes;
            let room = limit - records.len();
            records.extend(
                block
                    .into_iter()
                    .filter(|record| record.seq > after_seq && record.seq <= durable_seq)
                    .take(room),
            );
        }
        let last_seq = records.last().map_or(after_seq, |record| record.seq);
        Ok(RecordBatch {
            stream,
            epoch: self.epoch,
            more: core.has_durable_after(last_seq),
            records,
        })
    }

    /// Records that `console` durably took `stream` up to `upto`. Refuses
    /// another epoch and a sequence number beyond the durable head; returns
    /// the highest cursor this console has acked, flushed to disk. While the
    /// store cannot write, acks are refused (the console acks again later).
    pub fn ack(
        &self,
        stream: StreamKind,
        upto: Cursor,
        console: &str,
    ) -> Result<Cursor, StoreError> {
        if console.len() > MAX_CONSOLE_NAME_BYTES {
            return Err(StoreError::ConsoleNameTooLong {
                len_bytes: console.len(),
            });
        }
        if upto.epoch != self.epoch {
            return Err(StoreError::StaleEpoch {
                stream,
                ours: self.epoch,
                theirs: upto.epoch,
            });
        }
        let (backend, console_seq) = {
            let mut inner = self.lock();
            let durable_seq = inner.streams.get(stream).durable_seq();
            if upto.seq > durable_seq {
                return Err(StoreError::AckBeyondHead {
                    stream,
                    upto_seq: upto.seq,
                    durable_seq,
                });
            }
            let backend = self.writable(&inner)?;
            let console_key = console_ack_key(stream, console);
            let previous = backend
                .records
                .get(&console_key)
                .map_err(|source| sled_error(&self.path, source))?
                .map(|value| {
                    u64_value(&value).ok_or_else(|| corrupt(&self.path, "bad console ack value"))
                })
                .transpose()?
                .unwrap_or(0);
            let console_seq = previous.max(upto.seq);
            let overall_seq = inner.streams.get(stream).acked_seq().max(upto.seq);
            let mut batch = sled::Batch::default();
            batch.insert(console_key, &console_seq.to_be_bytes()[..]);
            batch.insert(&ack_key(stream)[..], &overall_seq.to_be_bytes()[..]);
            self.check_space(64)?;
            let applied = backend.records.apply_batch(batch);
            self.written(&mut inner, &backend, applied)?;
            // Any flush that makes a later prune durable makes this ack
            // durable too (sled persists in order), so it may count now.
            inner.streams.get_mut(stream).mark_acked(overall_seq);
            (backend, console_seq)
        };
        self.sync(&backend)?;
        Ok(Cursor {
            epoch: self.epoch,
            seq: console_seq,
        })
    }

    /// Deletes the blocks whose records are all acked and whose newest
    /// record is older than its class's retention at `now_ms`. Never
    /// deletes unacked records.
    pub fn prune(&self, now_ms: i64, retention: &Retention) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport::default();
        let backend = {
            let mut inner = self.lock();
            let plans = PerStream::from_fn(|stream| {
                let days = retention_days(retention, stream);
                let cutoff_ms = now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
                inner.streams.get(stream).plan_prune(cutoff_ms)
            });
            if plans.iter().all(|(_, plan)| plan.first_seqs.is_empty()) {
                return Ok(report);
            }
            let backend = self.writable(&inner)?;
            let mut batch = sled::Batch::default();
            for (stream, plan) in plans.iter() {
                for first_seq in &plan.first_seqs {
                    batch.remove(&block_key(stream, *first_seq)[..]);
                }
            }
            self.check_space(0)?;
            let applied = backend.records.apply_batch(batch);
            self.written(&mut inner, &backend, applied)?;
            for (stream, plan) in plans.iter() {
                inner.streams.get_mut(stream).commit_prune(plan);
                *report.streams.get_mut(stream) = pruned(plan);
            }
            self.tidy_frame_images(&mut inner, &backend)?;
            backend
        };
        self.sync(&backend)?;
        Ok(report)
    }

    /// GDPR erasure of the OS accounts `users`: every record of theirs,
    /// held or stored, acked or not, becomes a
    /// [`protocol::GapReason::Erased`] marker at the same sequence number
    /// (see [`core`](self::core)), and the images of the screenshots among
    /// them are deleted. Their records are their activity spans and session
    /// events, and the usage spans and screenshots within those activity
    /// spans; health samples stay. Stored blocks are rewritten under their
    /// keys, 64 blocks per sled batch, with the store locked
    /// throughout; then everything is flushed before this returns. Erasing
    /// again erases nothing more. On failure some records may already be
    /// erased: erasing again finishes the job.
    pub fn erase_users(&self, users: &[String]) -> Result<ErasureReport, StoreError> {
        let report = {
            let mut inner = self.lock();
            let backend = self.writable(&inner)?;
            let erasure = self.erasure_of(&inner, &backend, users)?;
            let mut erased = Erased::default();
            for stream in ERASED_STREAMS {
                erased.add(inner.streams.get_mut(stream).erase_held(&erasure));
                erased.add(self.erase_blocks(&mut inner, &backend, stream, &erasure)?);
            }
            let images = self.delete_frame_images(&mut inner, &backend, &erased.frames)?;
            ErasureReport {
                records: erased.records,
                images,
            }
        };
        self.flush()?;
        Ok(report)
    }

    /// The erasure of `users`, knowing when they were active: from every
    /// activity span of theirs in the sessions stream, stored or held.
    fn erasure_of(
        &self,
        inner: &Inner,
        backend: &Backend,
        users: &[String],
    ) -> Result<Erasure, StoreError> {
        let erasure = Erasure::new(users);
        let sessions = inner.streams.get(StreamKind::Sessions);
        let mut active_ms: Vec<(i64, i64)> = sessions
            .unwritten_records()
            .filter_map(|record| erasure.activity_ms(record))
            .collect();
        for first_seq in sessions.block_first_seqs() {
            let (_, records, _) = self.read_block(backend, StreamKind::Sessions, first_seq)?;
            active_ms.extend(
                records
                    .iter()
                    .filter_map(|record| erasure.activity_ms(&record.record)),
            );
        }
        Ok(erasure.with_activity(active_ms))
    }

    /// Rewrites the stored blocks of `stream` that hold records `erasure`
    /// covers, in batches of at most [`ERASE_BATCH_BLOCKS`].
    fn erase_blocks(
        &self,
        inner: &mut Inner,
        backend: &Arc<Backend>,
        stream: StreamKind,
        erasure: &Erasure,
    ) -> Result<Erased, StoreError> {
        let mut erased = Erased::default();
        let first_seqs = inner.streams.get(stream).block_first_seqs();
        for first_seqs in first_seqs.chunks(ERASE_BATCH_BLOCKS) {
            let mut batch = sled::Batch::default();
            let mut plans = Vec::new();
            let mut write_bytes = 0_u64;
            for first_seq in first_seqs {
                let (header, records, _) = self.read_block(backend, stream, *first_seq)?;
                let plan = inner
                    .streams
                    .get(stream)
                    .plan_erase_block(*first_seq, header, records, erasure)
                    .map_err(|source| StoreError::Encode {
                        path: self.path.clone(),
                        what: format!("an erased {} block", stream.name()),
                        source,
                    })?;
                let Some(plan) = plan else { continue };
                write_bytes += plan.write.value.len() as u64;
                batch.insert(
                    &block_key(stream, *first_seq)[..],
                    plan.write.value.as_slice(),
                );
                plans.push(plan);
            }
            if plans.is_empty() {
                continue;
            }
            self.check_space(write_bytes)?;
            let applied = backend.records.apply_batch(batch);
            self.written(inner, backend, applied)?;
            for plan in plans {
                erased.add(inner.streams.get_mut(stream).commit_erase_block(plan));
            }
        }
        Ok(erased)
    }

    /// Deletes the images of the screenshots at `seqs`; returns how many
    /// there were.
    fn delete_frame_images(
        &self,
        inner: &mut Inner,
        backend: &Arc<Backend>,
        seqs: &[u64],
    ) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for seq in seqs {
            let removed = backend.frame_images.remove(seq.to_be_bytes());
            if let Some(value) = self.written(inner, backend, removed)? {
                inner.frame_image_bytes =
                    inner.frame_image_bytes.saturating_sub(value.len() as u64);
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Reads and decodes the stored block of `stream` at `first_seq`; also
    /// says how many bytes its value took.
    fn read_block(
        &self,
        backend: &Backend,
        stream: StreamKind,
        first_seq: u64,
    ) -> Result<(BlockHeader, Vec<protocol::SeqRecord>, usize), StoreError> {
        let value = backend
            .records
            .get(block_key(stream, first_seq))
            .map_err(|source| sled_error(&self.path, source))?
            .ok_or_else(|| {
                corrupt(
                    &self.path,
                    &format!("{} block {first_seq} is indexed but missing", stream.name()),
                )
            })?;
        let (header, records) =
            decode_block(first_seq, &value).map_err(|source| StoreError::CorruptBlock {
                path: self.path.clone(),
                stream,
                first_seq,
                source,
            })?;
        Ok((header, records, value.len()))
    }

    /// Stores a small value under `key`, flushed before returning.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let backend = {
            let mut inner = self.lock();
            let backend = self.writable(&inner)?;
            self.check_space(value.len() as u64)?;
            let inserted = backend.meta.insert(key.as_bytes(), value);
            self.written(&mut inner, &backend, inserted)?;
            backend
        };
        self.sync(&backend)
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let backend = self.readable(&self.lock());
        Ok(backend
            .meta
            .get(key.as_bytes())
            .map_err(|source| sled_error(&self.path, source))?
            .map(|value| value.to_vec()))
    }

    /// Appends to the access log, flushed before returning. While the store
    /// cannot write, the entry is held in memory and written by the first
    /// flush that works (past [`MAX_HELD_ACCESS_ENTRIES`] held entries the
    /// oldest give way to one entry counting them): a console is still
    /// served, and its access is still logged.
    pub fn log_access(&self, entry: &AccessEntry) -> Result<(), StoreError> {
        let value = bincode::serde::encode_to_vec(entry, access_config()).map_err(|source| {
            StoreError::Encode {
                path: self.path.clone(),
                what: "an access log entry".into(),
                source,
            }
        })?;
        let (backend, access_id) = {
            let mut inner = self.lock();
            let id = inner.next_access_id;
            inner.next_access_id = id + 1;
            inner.held_access.push_back(HeldAccess {
                id,
                entry: entry.clone(),
                value,
            });
            if inner.held_access.len() > MAX_HELD_ACCESS_ENTRIES {
                if let Some(gone) = inner.held_access.pop_front() {
                    let count = inner.dropped_access.map_or(0, |dropped| dropped.count);
                    inner.dropped_access = Some(DroppedAccess {
                        last_id: gone.id,
                        last_at_ms: gone.entry.at_ms,
                        count: count + 1,
                    });
                }
            }
            let write_bytes = inner
                .held_access
                .iter()
                .map(|held| held.value.len() as u64)
                .sum();
            let Ok(backend) = self.writable(&inner) else {
                return Ok(());
            };
            if self.check_space(write_bytes).is_err() {
                return Ok(());
            }
            match self.write_access(&mut inner, &backend) {
                Ok(access_id) => (backend, access_id),
                Err(_) => return Ok(()),
            }
        };
        if self.sync(&backend).is_ok() {
            forget_written_access(&mut self.lock(), access_id);
        }
        Ok(())
    }

    /// Writes the held access log entries, and the entry counting those
    /// that gave way, without syncing; returns the highest entry number
    /// written.
    fn write_access(
        &self,
        inner: &mut Inner,
        backend: &Arc<Backend>,
    ) -> Result<Option<u64>, StoreError> {
        let mut last_id = None;
        if let Some(dropped) = inner.dropped_access {
            let summary = AccessEntry {
                at_ms: dropped.last_at_ms,
                console_id: "agent".to_owned(),
                console_name: String::new(),
                role: "agent".to_owned(),
                request: "access-log-gap".to_owned(),
                detail: format!(
                    "{} access log entries were lost: the store could not write them in time",
                    dropped.count
                ),
                allowed: true,
            };
            let value =
                bincode::serde::encode_to_vec(&summary, access_config()).map_err(|source| {
                    StoreError::Encode {
                        path: self.path.clone(),
                        what: "an access log entry".into(),
                        source,
                    }
                })?;
            let inserted = backend.access.insert(dropped.last_id.to_be_bytes(), value);
            self.written(inner, backend, inserted)?;
            last_id = Some(dropped.last_id);
        }
        let ids: Vec<(u64, Vec<u8>)> = inner
            .held_access
            .iter()
            .map(|held| (held.id, held.value.clone()))
            .collect();
        for (id, value) in ids {
            let inserted = backend.access.insert(id.to_be_bytes(), value);
            self.written(inner, backend, inserted)?;
            if let Some(oldest_kept) = id.checked_sub(self.quotas.access_entries) {
                let removed = backend.access.remove(oldest_kept.to_be_bytes());
                self.written(inner, backend, removed)?;
            }
            last_id = Some(id);
        }
        Ok(last_id)
    }

    /// The newest `limit` access log entries, oldest first, including those
    /// held in memory.
    pub fn access_log(&self, limit: usize) -> Result<Vec<AccessEntry>, StoreError> {
        let (backend, held) = {
            let inner = self.lock();
            let held: Vec<(u64, AccessEntry)> = inner
                .held_access
                .iter()
                .map(|held| (held.id, held.entry.clone()))
                .collect();
            (self.readable(&inner), held)
        };
        let mut entries = Vec::with_capacity(limit.min(1024));
        let mut last_written_id = None;
        for item in backend.access.iter().rev().take(limit) {
            let (key, value) = item.map_err(|source| sled_error(&self.path, source))?;
            last_written_id = last_written_id.or(u64_value(&key));
            let (entry, _): (AccessEntry, usize) =
                bincode::serde::decode_from_slice(&value, access_config()).map_err(|error| {
                    corrupt(
                        &self.path,
                        &format!(
                            "access log entry {:?} does not decode: {error}",
                            u64_value(&key)
                        ),
                    )
                })?;
            entries.push(entry);
        }
        entries.reverse();
        // Held entries written but not yet synced are in both.
        entries.extend(
            held.into_iter()
                .filter(|(id, _)| last_written_id.is_none_or(|last| *id > last))
                .map(|(_, entry)| entry),
        );
        let extra = entries.len().saturating_sub(limit);
        entries.drain(..extra);
        Ok(entries)
    }

    /// Flushes the database; a failure breaks it.
    fn sync(&self, backend: &Arc<Backend>) -> Result<(), StoreError> {
        let flushed = backend.db.flush().map(drop);
        self.written(&mut self.lock(), backend, flushed)
    }

    /// The result of a write to `backend`: a failure breaks that database
    /// (if it is still the open one) and says why.
    fn written<T>(
        &self,
        inner: &mut Inner,
        backend: &Arc<Backend>,
        result: sled::Result<T>,
    ) -> Result<T, StoreError> {
        result.map_err(|source| {
            let cause = WriteFailure::of(&source);
            if matches!(&inner.database, Database::Open(open) if Arc::ptr_eq(open, backend)) {
                tracing::debug!(%source, "store write failed; its database takes no more writes");
                inner.database = Database::Broken {
                    backend: backend.clone(),
                    cause: cause.clone(),
                };
            }
            self.write_failed(cause)
        })
    }

    /// The database for a read: the open one, or a broken one (sled still
    /// reads what it has).
    fn readable(&self, inner: &Inner) -> Arc<Backend> {
        match &inner.database {
            Database::Open(backend) | Database::Broken { backend, .. } => backend.clone(),
        }
    }

    /// The database for a write, if it takes writes.
    fn writable(&self, inner: &Inner) -> Result<Arc<Backend>, StoreError> {
        match &inner.database {
            Database::Open(backend) => Ok(backend.clone()),
            Database::Broken { cause, .. } => Err(self.write_failed(cause.clone())),
        }
    }

    fn write_failed(&self, cause: WriteFailure) -> StoreError {
        StoreError::WriteFailed {
            path: self.path.clone(),
            cause,
        }
    }

    /// Refuses a write of about `write_bytes` that would leave less than the
    /// reserve free. When the free space cannot be read, the write goes on
    /// and tells for itself.
    fn check_space(&self, write_bytes: u64) -> Result<(), StoreError> {
        let needed_bytes = self.quotas.disk_reserve_bytes.saturating_add(write_bytes);
        match rustix::fs::statvfs(&self.path) {
            Ok(stats) => {
                let available_bytes = stats.f_bavail.saturating_mul(stats.f_frsize);
                if available_bytes < needed_bytes {
                    return Err(StoreError::DiskFull {
                        path: self.path.clone(),
                        available_bytes,
                        needed_bytes,
                    });
                }
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    /// Mutations of `Inner` happen only after every fallible step, in code
    /// that does not panic, so a poisoned lock still guards a consistent
    /// state and is recovered.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Store {
    /// Notes what was handed out but not written, and leaks a broken
    /// database: closing it could wait forever.
    fn drop(&mut self) {
        let mut inner = self.lock();
        self.note_unwritten(&mut inner);
        if let Database::Broken { backend, .. } = &inner.database {
            std::mem::forget(backend.clone());
        }
    }
}

/// What the writing half of a flush did.
#[derive(Debug)]
struct Written {
    backend: Arc<Backend>,
    seqs: PerStream<u64>,
    access_id: Option<u64>,
    needs_sync: bool,
}

/// Forgets the held access log entries up to `access_id`, now durable.
fn forget_written_access(inner: &mut Inner, access_id: Option<u64>) {
    let Some(access_id) = access_id else { return };
    inner.held_access.retain(|held| held.id > access_id);
    if inner
        .dropped_access
        .is_some_and(|dropped| dropped.last_id <= access_id)
    {
        inner.dropped_access = None;
    }
}

fn heads_of(epoch: u64, inner: &Inner) -> Heads {
    Heads {
        epoch,
        seqs: PerStream::from_fn(|stream| inner.streams.get(stream).durable_seq()),
    }
}

fn pruned(plan: &PrunePlan) -> PrunedStream {
    PrunedStream {
        blocks: plan.first_seqs.len() as u64,
        records: plan.records,
        bytes: plan.value_bytes,
    }
}

fn retention_days(retention: &Retention, stream: StreamKind) -> u16 {
    match stream {
        StreamKind::Usage => retention.usage_days,
        StreamKind::Sessions => retention.sessions_days,
        StreamKind::Health => retention.health_days,
        StreamKind::Frames => retention.frames_days,
    }
}

fn corrupt(path: &Path, detail: &str) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.to_owned(),
    }
}

fn sled_error(path: &Path, source: sled::Error) -> StoreError {
    match source {
        sled::Error::Corruption { .. } => corrupt(path, &source.to_string()),
        // A full or read-only disk says so, with what to do.
        sled::Error::Io(ref io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::QuotaExceeded
                    | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            StoreError::WriteFailed {
                path: path.to_path_buf(),
                cause: WriteFailure::of(&source),
            }
        }
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

fn u64_value(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

/// Creates schema version and epoch in a new store, or checks them.
fn init_or_check_schema(
    path: &Path,
    db: &sled::Db,
    records: &sled::Tree,
) -> Result<u64, StoreError> {
    let sled_err = |source| sled_error(path, source);
    let stored = db.get(SCHEMA_KEY).map_err(sled_err)?;
    let state = schema::check_schema_version(stored.as_deref(), SCHEMA_VERSION).map_err(
        |error| match error {
            SchemaError::Malformed { .. } => corrupt(path, "bad schema version value"),
            SchemaError::Unknown { found, supported } => StoreError::UnknownSchema {
                path: path.to_path_buf(),
                found,
                supported,
            },
        },
    )?;
    match state {
        SchemaState::Missing => {
            if !records.is_empty() || db.get(EPOCH_KEY).map_err(sled_err)?.is_some() {
                return Err(corrupt(path, "it holds data but no schema version"));
            }
            let epoch = random_epoch();
            let mut batch = sled::Batch::default();
            batch.insert(
                SCHEMA_KEY,
                &schema::encode_schema_version(SCHEMA_VERSION)[..],
            );
            batch.insert(EPOCH_KEY, &epoch.to_be_bytes()[..]);
            db.apply_batch(batch).map_err(sled_err)?;
            db.flush().map_err(sled_err)?;
            Ok(epoch)
        }
        SchemaState::Current => db
            .get(EPOCH_KEY)
            .map_err(sled_err)?
            .and_then(|value| u64_value(&value))
            .filter(|epoch| *epoch != 0)
            .ok_or_else(|| corrupt(path, "missing or bad epoch")),
    }
}

fn read_u64(path: &Path, tree: &sled::Tree, key: &[u8], what: &str) -> Result<u64, StoreError> {
    match tree.get(key).map_err(|source| sled_error(path, source))? {
        Some(value) => u64_value(&value).ok_or_else(|| corrupt(path, &format!("bad {what} value"))),
        None => Ok(0),
    }
}

/// Rebuilds every stream's core from the database.
fn load_streams(
    path: &Path,
    records: &sled::Tree,
    held_records: u64,
) -> Result<PerStream<StreamCore>, StoreError> {
    let held_limit = usize::try_from(held_records).unwrap_or(usize::MAX);
    let [usage, sessions, health, frames] =
        StreamKind::ALL.map(|stream| load_stream(path, records, stream, held_limit));
    Ok(PerStream([usage?, sessions?, health?, frames?]))
}

/// Rebuilds one stream's index from block headers and decodes its open
/// tail block.
fn load_stream(
    path: &Path,
    records: &sled::Tree,
    stream: StreamKind,
    held_limit: usize,
) -> Result<StreamCore, StoreError> {
    let head_seq = read_u64(path, records, &head_key(stream), "head")?;
    let acked_seq = read_u64(path, records, &ack_key(stream), "ack")?;
    let mut core = StreamCore::new(stream, head_seq, acked_seq, held_limit);
    for item in records.scan_prefix([stream_tag(stream)]) {
        let (key, value) = item.map_err(|source| sled_error(path, source))?;
        let corrupt_block = |first_seq, source| StoreError::CorruptBlock {
            path: path.to_path_buf(),
            stream,
            first_seq,
            source,
        };
        let first_seq = parse_block_key(stream, &key).map_err(|source| corrupt_block(0, source))?;
        let header = decode_header(&value).map_err(|source| corrupt_block(first_seq, source))?;
        let info = BlockInfo {
            last_seq: first_seq.saturating_add(u64::from(header.count) - 1),
            value_bytes: value.len() as u64,
            max_at_ms: header.max_at_ms,
        };
        if !core.load_block(first_seq, info) {
            return Err(corrupt(
                path,
                &format!(
                    "{} block {first_seq} overlaps the block before it",
                    stream.name()
                ),
            ));
        }
    }
    if let Some(first_seq) = core.open_tail_candidate() {
        let value = records
            .get(block_key(stream, first_seq))
            .map_err(|source| sled_error(path, source))?
            .ok_or_else(|| corrupt(path, "tail block vanished while loading"))?;
        let (header, tail_records) =
            decode_block(first_seq, &value).map_err(|source| StoreError::CorruptBlock {
                path: path.to_path_buf(),
                stream,
                first_seq,
                source,
            })?;
        core.set_tail(Tail {
            first_seq,
            records: tail_records,
            min_at_ms: header.min_at_ms,
            max_at_ms: header.max_at_ms,
        });
    }
    Ok(core)
}
