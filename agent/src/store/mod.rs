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
//! - Every method may block on disk I/O: call it from `spawn_blocking` in
//!   async code. The store is `Sync`; share it through an `Arc`.
//!
//! # On-disk format (schema version 1)
//!
//! One sled database per store directory, which also holds `store.lock`, a
//! file locked exclusively for as long as a [`Store`] is open.
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
//!     sequence numbers starting at `first_seq`. `at_ms` is the time the
//!     recording loop gave [`Store::append`]; retention uses `max_at_ms`.
//!     Bodies are capped at 16 MiB on encode and decode.
//!   - `['H', tag]` → u64 BE: last sequence number written, so numbering
//!     continues after every block was pruned.
//!   - `['A', tag]` → u64 BE: highest sequence number any console acked.
//!   - `['C', tag, console name…]` → u64 BE: highest acked per console.
//! - Tree `meta`: opaque values under string keys ([`Store::put_meta`]).
//! - Tree `access_log`: u64 BE entry number → bincode [`AccessEntry`].
//!
//! Only the last block of a stream is ever rewritten, when a flush appends
//! to it while it holds fewer than 256 records; its records are kept in
//! memory, so that read-modify-write never reads the disk. Block sizes
//! (the sum of a stream's value lengths) are what [`Quotas`] limit.

mod block;
mod core;

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use protocol::{CapturedImage, Cursor, Record, RecordBatch, Retention, StreamKind};
use serde::{Deserialize, Serialize};

pub use self::block::BlockError;
use self::block::{block_key, decode_block, decode_header, parse_block_key, stream_tag};
use self::core::{BlockInfo, PrunePlan, StreamCore, Tail};

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

const MEBIBYTE: u64 = 1024 * 1024;
const DAY_MS: i64 = 86_400_000;
const LOCK_FILE: &str = "store.lock";
/// Tries to take a store's locks before reporting it locked.
const LOCK_ATTEMPTS: u32 = 20;
const LOCK_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
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
        }
    }
}

/// What the `status` command shows about one stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamCounts {
    /// Appended but not yet flushed.
    pub buffered_records: u64,
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

#[derive(Debug)]
struct Inner {
    streams: PerStream<StreamCore>,
    next_access_id: u64,
    /// Bytes held in the frame images tree.
    frame_image_bytes: u64,
}

/// The agent's durable record store. See the [module documentation](self).
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    epoch: u64,
    quotas: Quotas,
    db: sled::Db,
    records: sled::Tree,
    meta: sled::Tree,
    access: sled::Tree,
    frame_images: sled::Tree,
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
    /// it does not exist yet.
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
        let db = loop {
            attempts_left -= 1;
            let opened = match lock_file.try_lock() {
                Ok(()) => sled::Config::new()
                    .path(dir)
                    .cache_capacity(SLED_CACHE_CAPACITY_BYTES)
                    .open()
                    .map_err(|source| sled_error(&path, source)),
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
        let open_tree = |name: &str| {
            db.open_tree(name)
                .map_err(|source| sled_error(&path, source))
        };
        let records = open_tree(RECORDS_TREE)?;
        let meta = open_tree(META_TREE)?;
        let access = open_tree(ACCESS_TREE)?;
        let frame_images = open_tree(FRAME_IMAGES_TREE)?;
        let epoch = init_or_check_schema(&path, &db, &records)?;

        let [usage, sessions, health, frames] =
            StreamKind::ALL.map(|stream| load_stream(&path, &records, stream));
        let streams = PerStream([usage?, sessions?, health?, frames?]);
        let next_access_id = match access.last().map_err(|source| sled_error(&path, source))? {
            Some((key, _)) => {
                u64_value(&key).ok_or_else(|| corrupt(&path, "bad access log key"))? + 1
            }
            None => 0,
        };
        let store = Store {
            path,
            epoch,
            quotas,
            db,
            records,
            meta,
            access,
            frame_images,
            inner: Mutex::new(Inner {
                streams,
                next_access_id,
                frame_image_bytes: 0,
            }),
            _lock_file: lock_file,
        };
        store.open_frame_images()?;
        Ok(store)
    }

    /// Counts the frame images and drops those without a stored record
    /// (a crash between taking a screenshot and the next flush).
    fn open_frame_images(&self) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let written_seq = inner.streams.get(StreamKind::Frames).written_seq();
        let mut held_bytes = 0_u64;
        let mut orphans = Vec::new();
        for item in self.frame_images.iter() {
            let (key, value) = item.map_err(|source| sled_error(&self.path, source))?;
            match u64_value(&key) {
                Some(seq) if seq <= written_seq => held_bytes += value.len() as u64,
                _ => orphans.push(key),
            }
        }
        for key in orphans {
            self.frame_images
                .remove(key)
                .map_err(|source| sled_error(&self.path, source))?;
        }
        inner.frame_image_bytes = held_bytes;
        self.tidy_frame_images(&mut inner)
    }

    /// Keeps a periodic screenshot: its image now, its [`FrameMeta`]
    /// record in the frames stream (durable with the next flush, like any
    /// record). Returns the record's sequence number.
    pub fn append_frame(&self, image: &CapturedImage) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let frames = inner.streams.get_mut(StreamKind::Frames);
        let seq = frames.next_seq();
        self.frame_images
            .insert(seq.to_be_bytes(), image.bytes.as_slice())
            .map_err(|source| sled_error(&self.path, source))?;
        frames.append(Record::Frame(image.meta.clone()), image.meta.at_ms);
        inner.frame_image_bytes += image.bytes.len() as u64;
        self.tidy_frame_images(&mut inner)?;
        Ok(seq)
    }

    /// The image of the periodic screenshot at `cursor`, if its record is
    /// durable in this epoch and the image was not dropped since.
    pub fn frame_image(&self, cursor: Cursor) -> Result<Option<Vec<u8>>, StoreError> {
        let durable_seq = self.lock().streams.get(StreamKind::Frames).durable_seq();
        if cursor.epoch != self.epoch || cursor.seq == 0 || cursor.seq > durable_seq {
            return Ok(None);
        }
        Ok(self
            .frame_images
            .get(cursor.seq.to_be_bytes())
            .map_err(|source| sled_error(&self.path, source))?
            .map(|value| value.to_vec()))
    }

    /// Drops images whose records are gone (pruned or over quota) and, past
    /// the frames quota, the oldest images (their records stay: a console
    /// then learns the image was dropped).
    fn tidy_frame_images(&self, inner: &mut Inner) -> Result<(), StoreError> {
        let frames = inner.streams.get(StreamKind::Frames);
        let first_kept_seq = frames
            .blocks_after(0)
            .next()
            .map_or(frames.written_seq() + 1, |(first_seq, _)| first_seq);
        let quota_bytes = self.quotas.for_stream(StreamKind::Frames);
        loop {
            let Some((key, value)) = self
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
            self.frame_images
                .remove(key)
                .map_err(|source| sled_error(&self.path, source))?;
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

    /// Buffers `record` (no I/O) and returns its sequence number. It is
    /// stored once a later [`Store::flush`] returned a head at or above it.
    /// `at_ms` is when it was recorded; retention is measured from it.
    pub fn append(&self, stream: StreamKind, record: Record, at_ms: i64) -> u64 {
        self.lock().streams.get_mut(stream).append(record, at_ms)
    }

    /// Group commit: writes every buffered record in one atomic batch,
    /// flushes the database and returns the durable heads. Call it at least
    /// every second. A stream past its quota loses its oldest blocks in the
    /// same batch, with a gap marker appended.
    pub fn flush(&self) -> Result<Heads, StoreError> {
        let (written, needs_sync) = {
            let mut inner = self.lock();
            let mut batch = sled::Batch::default();
            let mut commits = Vec::new();
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
            if !commits.is_empty() {
                self.records
                    .apply_batch(batch)
                    .map_err(|source| sled_error(&self.path, source))?;
            }
            for (stream, commit) in commits {
                if let Some(gap) = &commit.gap {
                    tracing::warn!(
                        stream = stream.name(),
                        first_seq = gap.first_seq,
                        last_seq = gap.last_seq,
                        "stream over its quota: dropped its oldest records"
                    );
                }
                inner.streams.get_mut(stream).commit_flush(commit);
            }
            self.tidy_frame_images(&mut inner)?;
            let written = PerStream::from_fn(|stream| inner.streams.get(stream).written_seq());
            let needs_sync = inner
                .streams
                .iter()
                .any(|(_, core)| core.durable_seq() < core.written_seq());
            (written, needs_sync)
        };
        if needs_sync {
            self.sync()?;
        }
        let mut inner = self.lock();
        for (stream, seq) in written.iter() {
            inner.streams.get_mut(stream).mark_durable(*seq);
        }
        Ok(heads_of(self.epoch, &inner))
    }

    /// Durable heads: what a flush last reported stored.
    pub fn heads(&self) -> Heads {
        heads_of(self.epoch, &self.lock())
    }

    /// Per-stream buffered and stored counts, for the `status` command.
    pub fn counts(&self) -> PerStream<StreamCounts> {
        let inner = self.lock();
        PerStream::from_fn(|stream| {
            let core = inner.streams.get(stream);
            StreamCounts {
                buffered_records: core.pending_records() as u64,
                stored_records: core.stored_records(),
                stored_bytes: core.stored_bytes(),
                durable_seq: core.durable_seq(),
                acked_seq: core.acked_seq(),
            }
        })
    }

    /// Up to `max_records` (at most [`MAX_PULL_RECORDS`]) durable records
    /// of `stream` after `after`, in sequence order. A cursor from another
    /// epoch is served from the first retained record.
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
        let core = inner.streams.get(stream);
        let durable_seq = core.durable_seq();
        let mut records = Vec::new();
        let mut read_bytes = 0_usize;
        for (first_seq, _) in core.blocks_after(after_seq) {
            if first_seq > durable_seq
                || records.len() >= limit
                || (!records.is_empty() && read_bytes >= MAX_PULL_READ_BYTES)
            {
                break;
            }
            let value = self
                .records
                .get(block_key(stream, first_seq))
                .map_err(|source| sled_error(&self.path, source))?
                .ok_or_else(|| {
                    corrupt(
                        &self.path,
                        &format!("{} block {first_seq} is indexed but missing", stream.name()),
                    )
                })?;
            read_bytes += value.len();
            let (_, block) =
                decode_block(first_seq, &value).map_err(|source| StoreError::CorruptBlock {
                    path: self.path.clone(),
                    stream,
                    first_seq,
                    source,
                })?;
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
    /// the highest cursor this console has acked, flushed to disk.
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
        let console_seq = {
            let mut inner = self.lock();
            let core = inner.streams.get_mut(stream);
            if upto.seq > core.durable_seq() {
                return Err(StoreError::AckBeyondHead {
                    stream,
                    upto_seq: upto.seq,
                    durable_seq: core.durable_seq(),
                });
            }
            let console_key = console_ack_key(stream, console);
            let previous = self
                .records
                .get(&console_key)
                .map_err(|source| sled_error(&self.path, source))?
                .map(|value| {
                    u64_value(&value).ok_or_else(|| corrupt(&self.path, "bad console ack value"))
                })
                .transpose()?
                .unwrap_or(0);
            let console_seq = previous.max(upto.seq);
            let overall_seq = core.acked_seq().max(upto.seq);
            let mut batch = sled::Batch::default();
            batch.insert(console_key, &console_seq.to_be_bytes()[..]);
            batch.insert(&ack_key(stream)[..], &overall_seq.to_be_bytes()[..]);
            self.records
                .apply_batch(batch)
                .map_err(|source| sled_error(&self.path, source))?;
            // Any flush that makes a later prune durable makes this ack
            // durable too (sled persists in order), so it may count now.
            core.mark_acked(overall_seq);
            console_seq
        };
        self.sync()?;
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
        {
            let mut inner = self.lock();
            let plans = PerStream::from_fn(|stream| {
                let days = retention_days(retention, stream);
                let cutoff_ms = now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
                inner.streams.get(stream).plan_prune(cutoff_ms)
            });
            if plans.iter().all(|(_, plan)| plan.first_seqs.is_empty()) {
                return Ok(report);
            }
            let mut batch = sled::Batch::default();
            for (stream, plan) in plans.iter() {
                for first_seq in &plan.first_seqs {
                    batch.remove(&block_key(stream, *first_seq)[..]);
                }
            }
            self.records
                .apply_batch(batch)
                .map_err(|source| sled_error(&self.path, source))?;
            for (stream, plan) in plans.iter() {
                inner.streams.get_mut(stream).commit_prune(plan);
                *report.streams.get_mut(stream) = pruned(plan);
            }
            self.tidy_frame_images(&mut inner)?;
        }
        self.sync()?;
        Ok(report)
    }

    /// Stores a small value under `key`, flushed before returning.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta
            .insert(key.as_bytes(), value)
            .map_err(|source| sled_error(&self.path, source))?;
        self.sync()
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .meta
            .get(key.as_bytes())
            .map_err(|source| sled_error(&self.path, source))?
            .map(|value| value.to_vec()))
    }

    /// Appends to the access log, flushed before returning.
    pub fn log_access(&self, entry: &AccessEntry) -> Result<(), StoreError> {
        let value = bincode::serde::encode_to_vec(entry, access_config()).map_err(|source| {
            StoreError::Encode {
                path: self.path.clone(),
                what: "an access log entry".into(),
                source,
            }
        })?;
        {
            let mut inner = self.lock();
            let id = inner.next_access_id;
            self.access
                .insert(id.to_be_bytes(), value)
                .map_err(|source| sled_error(&self.path, source))?;
            inner.next_access_id = id + 1;
            if let Some(oldest_kept) = id.checked_sub(self.quotas.access_entries) {
                self.access
                    .remove(oldest_kept.to_be_bytes())
                    .map_err(|source| sled_error(&self.path, source))?;
            }
        }
        self.sync()
    }

    /// The newest `limit` access log entries, oldest first.
    pub fn access_log(&self, limit: usize) -> Result<Vec<AccessEntry>, StoreError> {
        let mut entries = Vec::with_capacity(limit.min(1024));
        for item in self.access.iter().rev().take(limit) {
            let (key, value) = item.map_err(|source| sled_error(&self.path, source))?;
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
        Ok(entries)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(drop)
            .map_err(|source| sled_error(&self.path, source))
    }

    /// Mutations of `Inner` happen only after every fallible step, in code
    /// that does not panic, so a poisoned lock still guards a consistent
    /// state and is recovered.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
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
    match db.get(SCHEMA_KEY).map_err(sled_err)? {
        None => {
            if !records.is_empty() || db.get(EPOCH_KEY).map_err(sled_err)?.is_some() {
                return Err(corrupt(path, "it holds data but no schema version"));
            }
            let epoch = random_epoch();
            let mut batch = sled::Batch::default();
            batch.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()[..]);
            batch.insert(EPOCH_KEY, &epoch.to_be_bytes()[..]);
            db.apply_batch(batch).map_err(sled_err)?;
            db.flush().map_err(sled_err)?;
            Ok(epoch)
        }
        Some(version) => {
            let found = <[u8; 4]>::try_from(version.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| corrupt(path, "bad schema version value"))?;
            if found != SCHEMA_VERSION {
                return Err(StoreError::UnknownSchema {
                    path: path.to_path_buf(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            db.get(EPOCH_KEY)
                .map_err(sled_err)?
                .and_then(|value| u64_value(&value))
                .filter(|epoch| *epoch != 0)
                .ok_or_else(|| corrupt(path, "missing or bad epoch"))
        }
    }
}

fn read_u64(path: &Path, tree: &sled::Tree, key: &[u8], what: &str) -> Result<u64, StoreError> {
    match tree.get(key).map_err(|source| sled_error(path, source))? {
        Some(value) => u64_value(&value).ok_or_else(|| corrupt(path, &format!("bad {what} value"))),
        None => Ok(0),
    }
}

/// Rebuilds one stream's index from block headers and decodes its open
/// tail block.
fn load_stream(
    path: &Path,
    records: &sled::Tree,
    stream: StreamKind,
) -> Result<StreamCore, StoreError> {
    let head_seq = read_u64(path, records, &head_key(stream), "head")?;
    let acked_seq = read_u64(path, records, &ack_key(stream), "ack")?;
    let mut core = StreamCore::new(stream, head_seq, acked_seq);
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
