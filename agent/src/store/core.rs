//! Per-stream bookkeeping and write planning (pure: no I/O, no clock).
//!
//! A [`StreamCore`] mirrors what one stream has on disk (an index of its
//! blocks and the records of its open tail block) plus the records it holds
//! in memory: appended since the last flush, or written by a flush whose
//! database sync has not succeeded yet. Planning a flush or a prune returns
//! the exact key writes and deletes plus a commit to apply once the shell's
//! sled batch has succeeded; until then the core is unchanged, so a failed
//! write loses nothing that was held.
//!
//! While the store cannot write, held records pile up. Past the core's held
//! limit the two oldest held entries give way to one gap marker that takes
//! the newer one's sequence number and names every number before it, back
//! to the start of the older one (a record, or an earlier marker's own
//! hole). So a marker always names the hole right before it, numbers are
//! never reused, and nothing is dropped silently. Blocks never span a hole;
//! pulls end a batch before one, so a console sees each hole at the start
//! of a batch, where it records it as missed.
//!
//! An [`Erasure`] (GDPR) replaces each record it covers, held or stored,
//! by a [`GapReason::Erased`] marker at the same sequence number that
//! names only that number (`first_seq == last_seq == seq`): no hole
//! opens, no number changes, so a rewritten block keeps its key and
//! range. Markers are not merged: each keeps its own number.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;

use protocol::{GapMarker, GapReason, Record, SeqRecord, StreamKind};
use serde::{Deserialize, Serialize};

use super::block::{encode_block, BlockHeader, RECORDS_PER_BLOCK};

/// Bytes kept free under a quota for the gap marker appended after a drop.
/// A block holding only a worst-case gap record is 50 bytes; appending one
/// to an open block adds at most 33 (checked by a unit test).
pub(crate) const GAP_RESERVE_BYTES: u64 = 64;

/// What the index knows about one stored block without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockInfo {
    pub(crate) last_seq: u64,
    pub(crate) value_bytes: u64,
    pub(crate) max_at_ms: i64,
}

/// The last block of a stream while it has room: its records are kept in
/// memory so appending to it never reads the disk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tail {
    pub(crate) first_seq: u64,
    pub(crate) records: Vec<SeqRecord>,
    pub(crate) min_at_ms: i64,
    pub(crate) max_at_ms: i64,
}

/// A record that has its sequence number but is not known durable yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pending {
    record: SeqRecord,
    at_ms: i64,
}

impl Pending {
    /// First sequence number this entry accounts for: its own, or for a gap
    /// marker naming the hole right before it, the start of that hole.
    fn span_start(&self) -> u64 {
        match &self.record.record {
            Record::Gap(gap) if gap.last_seq.checked_add(1) == Some(self.record.seq) => {
                gap.first_seq
            }
            _ => self.record.seq,
        }
    }

    /// Whether this entry holds recorded data (not a gap marker).
    fn is_data(&self) -> bool {
        !matches!(self.record.record, Record::Gap(_))
    }
}

/// What a stream holds in memory, as saved for the next process.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Held {
    records: Vec<Pending>,
    dropped: u64,
    dropped_frames: Vec<u64>,
}

/// One stream's index, tail, buffer and sequence counters.
#[derive(Debug)]
pub(crate) struct StreamCore {
    stream: StreamKind,
    /// Every stored block, by first sequence number.
    blocks: BTreeMap<u64, BlockInfo>,
    tail: Option<Tail>,
    /// Appended since the last committed flush, in sequence order.
    pending: VecDeque<Pending>,
    /// Written by a committed flush whose sync has not succeeded yet: kept
    /// so that, if the database breaks, the next process gets them again.
    unsynced: Vec<Pending>,
    /// Most entries `pending` holds (at least 2); past it the oldest give
    /// way to a gap marker.
    held_limit: usize,
    /// Records that gave way to a gap marker while held.
    dropped_held: u64,
    /// Sequence numbers of screenshots that gave way; the shell deletes
    /// their images.
    dropped_frames: Vec<u64>,
    /// Sequence number the next appended record gets.
    next_seq: u64,
    /// Highest sequence number written to sled (not necessarily flushed).
    written_seq: u64,
    /// Highest sequence number known flushed to disk.
    durable_seq: u64,
    /// Highest sequence number any console acked.
    acked_seq: u64,
    /// Sum of the value sizes of `blocks`.
    stored_bytes: u64,
}

/// A block to write: its key's first sequence number and encoded value.
#[derive(Debug)]
pub(crate) struct BlockWrite {
    pub(crate) first_seq: u64,
    pub(crate) value: Vec<u8>,
}

/// The sled operations of one stream's flush and what to commit after.
#[derive(Debug)]
pub(crate) struct FlushPlan {
    pub(crate) writes: Vec<BlockWrite>,
    /// First sequence numbers of blocks to delete.
    pub(crate) deletes: Vec<u64>,
    pub(crate) commit: FlushCommit,
}

/// Core state after a flush plan's batch is applied.
#[derive(Debug)]
pub(crate) struct FlushCommit {
    removed: Vec<u64>,
    added: Vec<(u64, BlockInfo)>,
    tail: Option<Tail>,
    next_seq: u64,
    pub(crate) written_seq: u64,
    stored_bytes: u64,
    /// The marker of the records the quota dropped, if any (already part of
    /// the writes).
    gap: Option<Pending>,
}

impl FlushCommit {
    /// The records the quota dropped, if any.
    pub(crate) fn gap(&self) -> Option<&GapMarker> {
        match self.gap.as_ref().map(|pending| &pending.record.record) {
            Some(Record::Gap(gap)) => Some(gap),
            _ => None,
        }
    }
}

/// Blocks a prune deletes from one stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PrunePlan {
    pub(crate) first_seqs: Vec<u64>,
    pub(crate) records: u64,
    pub(crate) value_bytes: u64,
}

/// What an erasure replaced by gap markers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Erased {
    /// Records replaced.
    pub(crate) records: u64,
    /// Sequence numbers of the screenshots among them, whose images the
    /// shell deletes.
    pub(crate) frames: Vec<u64>,
}

impl Erased {
    /// Adds what another part of the erasure replaced.
    pub(crate) fn add(&mut self, other: Erased) {
        self.records += other.records;
        self.frames.extend(other.frames);
    }
}

/// The records of some OS accounts that an erasure replaces: their
/// activity spans and session events, and the usage spans and screenshots
/// that fall within their activity spans on this machine (those records
/// carry no user; the activity spans say who was signed in). Health
/// samples are machine data and never covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Erasure {
    users: BTreeSet<String>,
    /// When the users were active: sorted, disjoint, half-open
    /// `[start_ms, end_ms)` intervals.
    active_ms: Vec<(i64, i64)>,
}

/// The half-open interval a span covers; an empty or reversed span counts
/// as its first millisecond.
fn interval_ms(start_ms: i64, end_ms: i64) -> (i64, i64) {
    (start_ms, end_ms.max(start_ms.saturating_add(1)))
}

impl Erasure {
    /// Erases the records of `users`, knowing of no activity span yet.
    pub(crate) fn new(users: &[String]) -> Self {
        Erasure {
            users: users.iter().cloned().collect(),
            active_ms: Vec::new(),
        }
    }

    /// When one of the users was active, if `record` is their activity
    /// span.
    pub(crate) fn activity_ms(&self, record: &Record) -> Option<(i64, i64)> {
        match record {
            Record::Activity(span) if self.users.contains(&span.user) => {
                Some(interval_ms(span.start_ms, span.end_ms))
            }
            _ => None,
        }
    }

    /// Learns when the users were active (intervals from
    /// [`Erasure::activity_ms`]).
    pub(crate) fn with_activity(
        mut self,
        intervals_ms: impl IntoIterator<Item = (i64, i64)>,
    ) -> Self {
        self.active_ms.extend(intervals_ms);
        self.active_ms.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(self.active_ms.len());
        for (start_ms, end_ms) in self.active_ms.drain(..) {
            match merged.last_mut() {
                Some(last) if start_ms <= last.1 => last.1 = last.1.max(end_ms),
                _ => merged.push((start_ms, end_ms)),
            }
        }
        self.active_ms = merged;
        self
    }

    /// Whether `[start_ms, end_ms)` overlaps a time the users were active.
    fn overlaps_activity(&self, start_ms: i64, end_ms: i64) -> bool {
        let (start_ms, end_ms) = interval_ms(start_ms, end_ms);
        let first_after = self
            .active_ms
            .partition_point(|(_, active_end_ms)| *active_end_ms <= start_ms);
        self.active_ms
            .get(first_after)
            .is_some_and(|(active_start_ms, _)| *active_start_ms < end_ms)
    }

    /// Whether `record` belongs to one of the users.
    pub(crate) fn covers(&self, record: &Record) -> bool {
        match record {
            Record::Activity(span) => self.users.contains(&span.user),
            Record::Session(event) => self.users.contains(&event.user),
            Record::Usage(span) => self.overlaps_activity(span.start_ms, span.end_ms),
            Record::Frame(meta) => self.overlaps_activity(meta.at_ms, meta.at_ms),
            Record::Health(_) | Record::Gap(_) => false,
        }
    }

    /// Replaces `record` by its erasure marker if this erasure covers it;
    /// returns whether it did.
    fn erase(&self, stream: StreamKind, record: &mut SeqRecord) -> bool {
        if !self.covers(&record.record) {
            return false;
        }
        record.record = erased_marker(stream, record.seq);
        true
    }
}

/// The marker an erased record at `seq` becomes: it names that number only.
fn erased_marker(stream: StreamKind, seq: u64) -> Record {
    Record::Gap(GapMarker {
        stream,
        first_seq: seq,
        last_seq: seq,
        reason: GapReason::Erased,
    })
}

/// A stored block rewritten by an erasure, and what to commit after.
#[derive(Debug)]
pub(crate) struct BlockErasure {
    pub(crate) write: BlockWrite,
    erased: Erased,
    /// The block's records after the erasure (for the open tail).
    records: Vec<SeqRecord>,
}

/// A block being assembled from borrowed records.
struct Chunk<'a> {
    first_seq: u64,
    records: Vec<&'a SeqRecord>,
    min_at_ms: i64,
    max_at_ms: i64,
}

impl<'a> Chunk<'a> {
    fn new(record: &'a SeqRecord, at_ms: i64) -> Self {
        Chunk {
            first_seq: record.seq,
            records: vec![record],
            min_at_ms: at_ms,
            max_at_ms: at_ms,
        }
    }

    fn is_full(&self) -> bool {
        self.records.len() >= RECORDS_PER_BLOCK
    }

    /// Room for `record`: not full, and it continues the numbering.
    fn takes(&self, record: &SeqRecord) -> bool {
        !self.is_full() && self.last_seq().checked_add(1) == Some(record.seq)
    }

    fn push(&mut self, record: &'a SeqRecord, at_ms: i64) {
        self.records.push(record);
        self.min_at_ms = self.min_at_ms.min(at_ms);
        self.max_at_ms = self.max_at_ms.max(at_ms);
    }

    fn last_seq(&self) -> u64 {
        self.first_seq + self.records.len() as u64 - 1
    }

    fn encode(&self) -> Result<Vec<u8>, bincode::error::EncodeError> {
        encode_block(&self.records, self.min_at_ms, self.max_at_ms)
    }
}

/// Appends to the last chunk, or starts a new one when it is full or the
/// record comes after a hole (a block never spans one).
fn push_record<'a>(chunks: &mut Vec<Chunk<'a>>, record: &'a SeqRecord, at_ms: i64) {
    match chunks.last_mut() {
        Some(chunk) if chunk.takes(record) => chunk.push(record, at_ms),
        _ => chunks.push(Chunk::new(record, at_ms)),
    }
}

fn widen(range: &mut Option<(u64, u64)>, first_seq: u64, last_seq: u64) {
    *range = Some(match *range {
        Some((first, last)) => (first.min(first_seq), last.max(last_seq)),
        None => (first_seq, last_seq),
    });
}

impl StreamCore {
    /// A stream whose last written sequence number is `head_seq`, holding
    /// at most `held_limit` appended records in memory.
    pub(crate) fn new(
        stream: StreamKind,
        head_seq: u64,
        acked_seq: u64,
        held_limit: usize,
    ) -> Self {
        StreamCore {
            stream,
            blocks: BTreeMap::new(),
            tail: None,
            pending: VecDeque::new(),
            unsynced: Vec::new(),
            held_limit: held_limit.max(2),
            dropped_held: 0,
            dropped_frames: Vec::new(),
            next_seq: head_seq + 1,
            written_seq: head_seq,
            durable_seq: head_seq,
            acked_seq,
            stored_bytes: 0,
        }
    }

    /// Registers a block found on disk; blocks come in key order. Returns
    /// false when it overlaps the previous block.
    pub(crate) fn load_block(&mut self, first_seq: u64, info: BlockInfo) -> bool {
        if let Some((_, previous)) = self.blocks.last_key_value() {
            if previous.last_seq >= first_seq {
                return false;
            }
        }
        self.blocks.insert(first_seq, info);
        self.stored_bytes += info.value_bytes;
        if info.last_seq > self.written_seq {
            self.written_seq = info.last_seq;
            self.durable_seq = info.last_seq;
            self.next_seq = info.last_seq + 1;
        }
        true
    }

    /// The last loaded block, if it ends at the head and still has room
    /// for more records (appends must continue its sequence).
    pub(crate) fn open_tail_candidate(&self) -> Option<u64> {
        self.blocks
            .last_key_value()
            .filter(|(first_seq, info)| {
                info.last_seq == self.written_seq
                    && info.last_seq - **first_seq + 1 < RECORDS_PER_BLOCK as u64
            })
            .map(|(first_seq, _)| *first_seq)
    }

    /// Makes a decoded open last block the tail appends go to.
    pub(crate) fn set_tail(&mut self, tail: Tail) {
        self.tail = Some(tail);
    }

    /// Buffers a record and gives it the next sequence number. At the held
    /// limit the oldest held entries first give way to a gap marker.
    pub(crate) fn append(&mut self, record: Record, at_ms: i64) -> u64 {
        if self.pending.len() >= self.held_limit {
            self.make_room();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push_back(Pending {
            record: SeqRecord { seq, record },
            at_ms,
        });
        seq
    }

    /// Replaces the two oldest held entries with one gap marker at the newer
    /// one's sequence number, naming every number before it back to the
    /// start of the older one.
    fn make_room(&mut self) {
        if self.pending.len() < 2 {
            return;
        }
        let (Some(older), Some(newer)) = (self.pending.pop_front(), self.pending.pop_front())
        else {
            return;
        };
        for gone in [&older, &newer] {
            if gone.is_data() {
                self.dropped_held += 1;
                if matches!(gone.record.record, Record::Frame(_)) {
                    self.dropped_frames.push(gone.record.seq);
                }
            }
        }
        let seq = newer.record.seq;
        self.pending.push_front(Pending {
            record: SeqRecord {
                seq,
                record: Record::Gap(GapMarker {
                    stream: self.stream,
                    first_seq: older.span_start(),
                    last_seq: seq - 1,
                    reason: GapReason::QuotaExceeded,
                }),
            },
            at_ms: older.at_ms.max(newer.at_ms),
        });
    }

    /// Numbers from the next one through `last_seq` were handed out by an
    /// earlier run of this store and never written: a gap marker right after
    /// them names them, and numbering continues past it.
    pub(crate) fn mark_lost_through(&mut self, last_seq: u64) {
        if last_seq < self.next_seq {
            return;
        }
        let first_seq = self.next_seq;
        self.next_seq = last_seq + 1;
        self.append(
            Record::Gap(GapMarker {
                stream: self.stream,
                first_seq,
                last_seq,
                reason: GapReason::QuotaExceeded,
            }),
            0,
        );
    }

    /// Records appended and not written yet (those written are in blocks).
    pub(crate) fn unwritten_records(&self) -> impl Iterator<Item = &Record> + '_ {
        self.pending.iter().map(|pending| &pending.record.record)
    }

    /// Replaces every held record `erasure` covers by its marker. Counts
    /// only those not written yet: the written ones are counted when their
    /// block is rewritten (see [`StreamCore::plan_erase_block`]).
    pub(crate) fn erase_held(&mut self, erasure: &Erasure) -> Erased {
        let stream = self.stream;
        let mut erased = Erased::default();
        for pending in &mut self.pending {
            let is_frame = matches!(pending.record.record, Record::Frame(_));
            if erasure.erase(stream, &mut pending.record) {
                erased.records += 1;
                if is_frame {
                    erased.frames.push(pending.record.seq);
                }
            }
        }
        for unsynced in &mut self.unsynced {
            erasure.erase(stream, &mut unsynced.record);
        }
        erased
    }

    /// Plans rewriting the stored block at `first_seq` (decoded as
    /// `header` and `records`) with every record `erasure` covers replaced
    /// by its marker, under the same key. `None` when it covers none, or
    /// the block is not in the index.
    pub(crate) fn plan_erase_block(
        &self,
        first_seq: u64,
        header: BlockHeader,
        mut records: Vec<SeqRecord>,
        erasure: &Erasure,
    ) -> Result<Option<BlockErasure>, bincode::error::EncodeError> {
        if !self.blocks.contains_key(&first_seq) {
            return Ok(None);
        }
        let mut erased = Erased::default();
        for record in &mut records {
            let is_frame = matches!(record.record, Record::Frame(_));
            if erasure.erase(self.stream, record) {
                erased.records += 1;
                if is_frame {
                    erased.frames.push(record.seq);
                }
            }
        }
        if erased.records == 0 {
            return Ok(None);
        }
        let refs: Vec<&SeqRecord> = records.iter().collect();
        let value = encode_block(&refs, header.min_at_ms, header.max_at_ms)?;
        Ok(Some(BlockErasure {
            write: BlockWrite { first_seq, value },
            erased,
            records,
        }))
    }

    /// Applies a block erasure whose write succeeded (the block's size, and
    /// the open tail if it is that block); returns what it replaced.
    pub(crate) fn commit_erase_block(&mut self, erasure: BlockErasure) -> Erased {
        let first_seq = erasure.write.first_seq;
        if let Some(info) = self.blocks.get_mut(&first_seq) {
            self.stored_bytes -= info.value_bytes;
            info.value_bytes = erasure.write.value.len() as u64;
            self.stored_bytes += info.value_bytes;
        }
        if let Some(tail) = self
            .tail
            .as_mut()
            .filter(|tail| tail.first_seq == first_seq)
        {
            tail.records = erasure.records;
        }
        erasure.erased
    }

    /// First sequence numbers of every stored block, in order.
    pub(crate) fn block_first_seqs(&self) -> Vec<u64> {
        self.blocks.keys().copied().collect()
    }

    /// A copy of everything held in memory.
    pub(crate) fn held(&self) -> Held {
        Held {
            records: self.unsynced.iter().chain(&self.pending).cloned().collect(),
            dropped: self.dropped_held,
            dropped_frames: self.dropped_frames.clone(),
        }
    }

    /// Takes back what an earlier process's core held: the entries this
    /// core does not have on disk are held again, with their numbers.
    pub(crate) fn restore(&mut self, held: Held) {
        for pending in held.records {
            if pending.record.seq > self.written_seq {
                self.next_seq = pending.record.seq + 1;
                self.pending.push_back(pending);
            }
        }
        self.dropped_held += held.dropped;
        self.dropped_frames.extend(held.dropped_frames);
    }

    /// The sequence number the next appended record gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Entries held in memory, not known durable.
    pub(crate) fn held_records(&self) -> usize {
        self.pending.len() + self.unsynced.len()
    }

    /// Records that gave way to a gap marker while held.
    pub(crate) fn dropped_held(&self) -> u64 {
        self.dropped_held
    }

    /// Screenshots that gave way while held, whose images are to be
    /// deleted; the list is handed over once.
    pub(crate) fn take_dropped_frames(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.dropped_frames)
    }

    /// Numbers handed out but not known durable, if any: what a later run
    /// names as lost if this one ends without writing them.
    pub(crate) fn unwritten(&self) -> Option<(u64, u64)> {
        let last_seq = self.next_seq - 1;
        (last_seq > self.durable_seq).then_some((self.durable_seq + 1, last_seq))
    }

    pub(crate) fn written_seq(&self) -> u64 {
        self.written_seq
    }

    pub(crate) fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    pub(crate) fn acked_seq(&self) -> u64 {
        self.acked_seq
    }

    pub(crate) fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    pub(crate) fn stored_records(&self) -> u64 {
        self.blocks
            .iter()
            .map(|(first_seq, info)| info.last_seq - first_seq + 1)
            .sum()
    }

    /// Records up to `seq` are on disk.
    pub(crate) fn mark_durable(&mut self, seq: u64) {
        self.durable_seq = self.durable_seq.max(seq.min(self.written_seq));
        let durable_seq = self.durable_seq;
        self.unsynced
            .retain(|pending| pending.record.seq > durable_seq);
    }

    /// A console acked up to `seq` (already persisted by the shell).
    pub(crate) fn mark_acked(&mut self, seq: u64) {
        self.acked_seq = self.acked_seq.max(seq);
    }

    /// Stored blocks that may hold records after `after_seq`, in order.
    pub(crate) fn blocks_after(
        &self,
        after_seq: u64,
    ) -> impl Iterator<Item = (u64, BlockInfo)> + '_ {
        let start = after_seq.saturating_add(1);
        let containing = self
            .blocks
            .range(..=start)
            .next_back()
            .filter(|(first_seq, info)| **first_seq < start && info.last_seq >= start);
        containing
            .into_iter()
            .chain(
                self.blocks
                    .range((Bound::Included(start), Bound::Unbounded)),
            )
            .map(|(first_seq, info)| (*first_seq, *info))
    }

    /// Some durable record has a sequence number above `after_seq`.
    pub(crate) fn has_durable_after(&self, after_seq: u64) -> bool {
        let start = after_seq.saturating_add(1);
        start <= self.durable_seq
            && self
                .blocks_after(after_seq)
                .next()
                .is_some_and(|(first_seq, _)| first_seq <= self.durable_seq)
    }

    /// Plans writing every held record: the open tail is rewritten with
    /// its new records, full blocks are sealed, and if the stream then
    /// exceeds `quota_bytes` its oldest blocks are dropped and a
    /// [`GapReason::QuotaExceeded`] marker is appended, all in one plan.
    /// `None` when nothing is buffered.
    pub(crate) fn plan_flush(
        &self,
        quota_bytes: u64,
    ) -> Result<Option<FlushPlan>, bincode::error::EncodeError> {
        let Some(last_pending) = self.pending.back() else {
            return Ok(None);
        };
        let gap_at_ms = self
            .pending
            .iter()
            .map(|pending| pending.at_ms)
            .max()
            .unwrap_or(last_pending.at_ms);
        let tail_first_seq = self.tail.as_ref().map(|tail| tail.first_seq);
        // Declared before the chunks so a gap record can be borrowed by them.
        let mut gap_slot: Option<SeqRecord> = None;

        let mut chunks: Vec<Chunk<'_>> = Vec::new();
        let mut bytes_after = self.stored_bytes;
        if let Some(tail) = &self.tail {
            chunks.push(Chunk {
                first_seq: tail.first_seq,
                records: tail.records.iter().collect(),
                min_at_ms: tail.min_at_ms,
                max_at_ms: tail.max_at_ms,
            });
            let old_tail_bytes = self
                .blocks
                .get(&tail.first_seq)
                .map_or(0, |info| info.value_bytes);
            bytes_after -= old_tail_bytes;
        }
        for pending in &self.pending {
            push_record(&mut chunks, &pending.record, pending.at_ms);
        }
        let mut values = chunks
            .iter()
            .map(Chunk::encode)
            .collect::<Result<Vec<_>, _>>()?;
        bytes_after += values.iter().map(|value| value.len() as u64).sum::<u64>();

        let mut deletes = Vec::new();
        let mut next_seq = self.next_seq;
        let mut gap = None;
        if bytes_after > quota_bytes {
            let target_bytes = quota_bytes.saturating_sub(GAP_RESERVE_BYTES);
            let mut dropped: Option<(u64, u64)> = None;
            for (first_seq, info) in &self.blocks {
                if bytes_after <= target_bytes || Some(*first_seq) == tail_first_seq {
                    break;
                }
                deletes.push(*first_seq);
                bytes_after -= info.value_bytes;
                widen(&mut dropped, *first_seq, info.last_seq);
            }
            let mut dropped_chunks = 0;
            while bytes_after > target_bytes && dropped_chunks < chunks.len() {
                let chunk = &chunks[dropped_chunks];
                bytes_after -= values[dropped_chunks].len() as u64;
                widen(&mut dropped, chunk.first_seq, chunk.last_seq());
                if Some(chunk.first_seq) == tail_first_seq {
                    deletes.push(chunk.first_seq);
                }
                dropped_chunks += 1;
            }
            chunks.drain(..dropped_chunks);
            values.drain(..dropped_chunks);
            if let Some((first_seq, last_seq)) = dropped {
                let marker = GapMarker {
                    stream: self.stream,
                    first_seq,
                    last_seq,
                    reason: GapReason::QuotaExceeded,
                };
                let gap_record = gap_slot.insert(SeqRecord {
                    seq: next_seq,
                    record: Record::Gap(marker),
                });
                gap = Some(Pending {
                    record: gap_record.clone(),
                    at_ms: gap_at_ms,
                });
                next_seq += 1;
                let reuse_last = chunks.last().is_some_and(|chunk| chunk.takes(gap_record));
                if reuse_last {
                    if let Some(old) = values.pop() {
                        bytes_after -= old.len() as u64;
                    }
                }
                push_record(&mut chunks, gap_record, gap_at_ms);
                if let Some(chunk) = chunks.last() {
                    let value = chunk.encode()?;
                    bytes_after += value.len() as u64;
                    values.push(value);
                }
            }
        }

        let mut added = Vec::with_capacity(chunks.len());
        let mut writes = Vec::with_capacity(chunks.len());
        for (chunk, value) in chunks.iter().zip(values) {
            added.push((
                chunk.first_seq,
                BlockInfo {
                    last_seq: chunk.last_seq(),
                    value_bytes: value.len() as u64,
                    max_at_ms: chunk.max_at_ms,
                },
            ));
            writes.push(BlockWrite {
                first_seq: chunk.first_seq,
                value,
            });
        }
        let tail = chunks
            .last()
            .filter(|chunk| !chunk.is_full())
            .map(|chunk| Tail {
                first_seq: chunk.first_seq,
                records: chunk
                    .records
                    .iter()
                    .map(|record| (*record).clone())
                    .collect(),
                min_at_ms: chunk.min_at_ms,
                max_at_ms: chunk.max_at_ms,
            });
        Ok(Some(FlushPlan {
            writes,
            commit: FlushCommit {
                removed: deletes.clone(),
                added,
                tail,
                next_seq,
                written_seq: next_seq - 1,
                stored_bytes: bytes_after,
                gap,
            },
            deletes,
        }))
    }

    /// Applies a flush plan whose batch was written.
    pub(crate) fn commit_flush(&mut self, commit: FlushCommit) {
        for first_seq in &commit.removed {
            self.blocks.remove(first_seq);
        }
        self.blocks.extend(commit.added);
        self.tail = commit.tail;
        self.next_seq = commit.next_seq;
        self.written_seq = commit.written_seq;
        self.stored_bytes = commit.stored_bytes;
        self.unsynced.extend(self.pending.drain(..));
        self.unsynced.extend(commit.gap);
    }

    /// Blocks whose records are all durable, all acked and whose newest
    /// record is older than `cutoff_ms`.
    pub(crate) fn plan_prune(&self, cutoff_ms: i64) -> PrunePlan {
        let taken_seq = self.acked_seq.min(self.durable_seq);
        let mut plan = PrunePlan::default();
        for (first_seq, info) in self.blocks.range(..=taken_seq) {
            if info.last_seq <= taken_seq && info.max_at_ms < cutoff_ms {
                plan.first_seqs.push(*first_seq);
                plan.records += info.last_seq - first_seq + 1;
                plan.value_bytes += info.value_bytes;
            }
        }
        plan
    }

    /// Applies a prune plan whose deletes were written.
    pub(crate) fn commit_prune(&mut self, plan: &PrunePlan) {
        for first_seq in &plan.first_seqs {
            if let Some(info) = self.blocks.remove(first_seq) {
                self.stored_bytes -= info.value_bytes;
            }
            if self.tail.as_ref().map(|tail| tail.first_seq) == Some(*first_seq) {
                self.tail = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{UnixMillis, UsageSpan};

    fn usage(at_ms: UnixMillis) -> Record {
        Record::Usage(UsageSpan {
            start_ms: at_ms,
            end_ms: at_ms + 1_000,
            app: "Firefox".into(),
            raw_app: "firefox-esr".into(),
            title: None,
        })
    }

    const NO_LIMIT: usize = usize::MAX;

    /// Plans and commits a flush and marks it durable; returns the block
    /// writes and any gap.
    fn flush(core: &mut StreamCore, quota_bytes: u64) -> (Vec<BlockWrite>, Option<GapMarker>) {
        let plan = core.plan_flush(quota_bytes).unwrap().unwrap();
        let gap = plan.commit.gap().cloned();
        let written_seq = plan.commit.written_seq;
        core.commit_flush(plan.commit);
        core.mark_durable(written_seq);
        (plan.writes, gap)
    }

    /// The records of block writes, decoded, in order.
    fn written(writes: &[BlockWrite]) -> Vec<SeqRecord> {
        writes
            .iter()
            .flat_map(|write| {
                super::super::block::decode_block(write.first_seq, &write.value)
                    .unwrap()
                    .1
            })
            .collect()
    }

    fn gap_of(record: &SeqRecord) -> Option<(u64, u64)> {
        match &record.record {
            Record::Gap(gap) => Some((gap.first_seq, gap.last_seq)),
            _ => None,
        }
    }

    fn activity(user: &str, start_ms: i64, end_ms: i64) -> Record {
        Record::Activity(protocol::ActivitySpan {
            start_ms,
            end_ms,
            presence: protocol::Presence::Active,
            user: user.into(),
        })
    }

    fn login(user: &str, at_ms: i64) -> Record {
        Record::Session(protocol::SessionEvent {
            at_ms,
            kind: protocol::SessionEventKind::Login,
            user: user.into(),
        })
    }

    fn frame(at_ms: i64) -> Record {
        Record::Frame(protocol::FrameMeta {
            at_ms,
            width: 1,
            height: 1,
            format: protocol::ImageFormat::Jpeg,
            size_bytes: 1,
            sha256: [0; 32],
            blurred: false,
        })
    }

    fn erasure_of_alice() -> Erasure {
        Erasure::new(&["alice".to_owned()]).with_activity([(1_000, 2_000), (5_000, 6_000)])
    }

    fn erased_marker_of(record: &SeqRecord) -> Option<(u64, u64, GapReason)> {
        match &record.record {
            Record::Gap(gap) => Some((gap.first_seq, gap.last_seq, gap.reason)),
            _ => None,
        }
    }

    #[test]
    fn an_erasure_covers_its_users_and_what_fell_in_their_activity() {
        let erasure = erasure_of_alice();
        assert!(erasure.covers(&activity("alice", 1_000, 2_000)));
        assert!(erasure.covers(&login("alice", 0)));
        assert!(!erasure.covers(&activity("bob", 1_000, 2_000)));
        assert!(!erasure.covers(&login("bob", 1_500)));
        assert!(!erasure.covers(&login("", 1_500)), "no user is not a match");
        assert!(!erasure.covers(&login("Alice", 1_500)), "names are exact");
        // Usage spans overlapping [1000, 2000) or [5000, 6000), half-open.
        let usage_at = |start_ms, end_ms| {
            Record::Usage(UsageSpan {
                start_ms,
                end_ms,
                app: "A".into(),
                raw_app: "a".into(),
                title: None,
            })
        };
        assert!(erasure.covers(&usage_at(500, 1_001)));
        assert!(erasure.covers(&usage_at(1_999, 3_000)));
        assert!(erasure.covers(&usage_at(0, 10_000)));
        assert!(
            !erasure.covers(&usage_at(500, 1_000)),
            "ends as alice starts"
        );
        assert!(
            !erasure.covers(&usage_at(2_000, 5_000)),
            "between her spans"
        );
        assert!(erasure.covers(&usage_at(5_500, 5_500)), "empty span inside");
        assert!(
            !erasure.covers(&usage_at(3_000, 1_000)),
            "reversed, starts outside"
        );
        assert!(!erasure.covers(&usage_at(i64::MAX, i64::MIN)));
        assert!(erasure.covers(&frame(1_000)));
        assert!(erasure.covers(&frame(5_999)));
        assert!(!erasure.covers(&frame(2_000)));
        assert!(!erasure.covers(&frame(i64::MIN)));
        let gap = Record::Gap(GapMarker {
            stream: StreamKind::Usage,
            first_seq: 1,
            last_seq: 1,
            reason: GapReason::QuotaExceeded,
        });
        assert!(!erasure.covers(&gap));
    }

    #[test]
    fn activity_intervals_merge_and_hostile_spans_do_not_overflow() {
        let users = ["alice".to_owned()];
        let probe = Erasure::new(&users);
        assert_eq!(
            probe.activity_ms(&activity("alice", 10, 20)),
            Some((10, 20))
        );
        assert_eq!(probe.activity_ms(&activity("bob", 10, 20)), None);
        assert_eq!(
            probe.activity_ms(&activity("alice", i64::MAX, i64::MIN)),
            Some((i64::MAX, i64::MAX)),
            "reversed at the end of time"
        );
        let erasure = probe.with_activity([(30, 40), (10, 20), (15, 35), (100, 101)]);
        assert_eq!(erasure.active_ms, vec![(10, 40), (100, 101)]);
        let nobody = Erasure::new(&[]).with_activity([]);
        assert!(!nobody.covers(&frame(0)));
        assert!(!nobody.covers(&login("", 0)));
    }

    #[test]
    fn erasing_held_records_keeps_their_numbers() {
        let mut core = StreamCore::new(StreamKind::Frames, 0, 0, NO_LIMIT);
        for at_ms in [1_500, 3_000, 5_500] {
            core.append(frame(at_ms), at_ms);
        }
        let erased = core.erase_held(&erasure_of_alice());
        assert_eq!(
            erased,
            Erased {
                records: 2,
                frames: vec![1, 3]
            }
        );
        let again = core.erase_held(&erasure_of_alice());
        assert_eq!(again, Erased::default(), "markers are not erased twice");
        let (writes, _) = flush(&mut core, u64::MAX);
        let records = written(&writes);
        assert_eq!(records.len(), 3);
        assert_eq!(
            erased_marker_of(&records[0]),
            Some((1, 1, GapReason::Erased))
        );
        assert_eq!(records[1].record, frame(3_000));
        assert_eq!(
            erased_marker_of(&records[2]),
            Some((3, 3, GapReason::Erased))
        );
        assert_eq!(core.next_seq(), 4, "no number is used or reused");
    }

    #[test]
    fn an_erased_block_keeps_its_key_and_the_tail_does_not_bring_records_back() {
        let mut core = StreamCore::new(StreamKind::Sessions, 0, 0, NO_LIMIT);
        core.append(login("alice", 900), 900);
        core.append(activity("alice", 1_000, 2_000), 2_000);
        core.append(activity("bob", 2_000, 3_000), 3_000);
        let (writes, _) = flush(&mut core, u64::MAX);
        let (header, records) = super::super::block::decode_block(1, &writes[0].value).unwrap();
        let bytes_before = core.stored_bytes();
        let erasure = erasure_of_alice();
        assert!(
            core.plan_erase_block(2, header, records.clone(), &erasure)
                .unwrap()
                .is_none(),
            "no block starts at 2"
        );
        let plan = core
            .plan_erase_block(1, header, records, &erasure)
            .unwrap()
            .unwrap();
        assert_eq!(plan.write.first_seq, 1);
        let (new_header, rewritten) =
            super::super::block::decode_block(1, &plan.write.value).unwrap();
        assert_eq!(new_header, header, "same count and at_ms range");
        let new_bytes = plan.write.value.len() as u64;
        let erased = core.commit_erase_block(plan);
        assert_eq!(erased.records, 2);
        assert!(erased.frames.is_empty());
        assert_eq!(
            core.stored_bytes(),
            bytes_before - writes[0].value.len() as u64 + new_bytes
        );
        assert_eq!(
            erased_marker_of(&rewritten[0]),
            Some((1, 1, GapReason::Erased))
        );
        assert_eq!(
            erased_marker_of(&rewritten[1]),
            Some((2, 2, GapReason::Erased))
        );
        assert_eq!(rewritten[2].record, activity("bob", 2_000, 3_000));
        // Nothing left to erase in the rewritten block.
        assert!(core
            .plan_erase_block(1, new_header, rewritten, &erasure)
            .unwrap()
            .is_none());
        // The next flush rewrites the open tail from memory: still erased.
        core.append(login("bob", 4_000), 4_000);
        let (writes, _) = flush(&mut core, u64::MAX);
        let records = written(&writes);
        let kinds: Vec<Option<(u64, u64, GapReason)>> =
            records.iter().map(erased_marker_of).collect();
        assert_eq!(
            kinds,
            vec![
                Some((1, 1, GapReason::Erased)),
                Some((2, 2, GapReason::Erased)),
                None,
                None
            ]
        );
    }

    #[test]
    fn written_but_unsynced_copies_are_erased_for_the_next_process() {
        let mut core = StreamCore::new(StreamKind::Sessions, 0, 0, NO_LIMIT);
        core.append(login("alice", 1), 1);
        let plan = core.plan_flush(u64::MAX).unwrap().unwrap();
        core.commit_flush(plan.commit);
        let erased = core.erase_held(&erasure_of_alice());
        assert_eq!(erased.records, 0, "counted when its block is rewritten");
        // The database lost the write; the next process takes back what
        // this one held.
        let mut next = StreamCore::new(StreamKind::Sessions, 0, 0, NO_LIMIT);
        next.restore(core.held());
        let (writes, _) = flush(&mut next, u64::MAX);
        let records = written(&writes);
        assert_eq!(records.len(), 1);
        assert_eq!(
            erased_marker_of(&records[0]),
            Some((1, 1, GapReason::Erased))
        );
    }

    #[test]
    fn an_erased_marker_giving_way_is_named_by_the_newer_marker() {
        let mut core = StreamCore::new(StreamKind::Sessions, 0, 0, 3);
        core.append(login("alice", 1), 1);
        core.append(login("bob", 2), 2);
        core.erase_held(&erasure_of_alice());
        for at_ms in 3..=4 {
            core.append(login("bob", at_ms), at_ms);
        }
        assert_eq!(core.dropped_held(), 1, "only bob's record was data");
        let (writes, _) = flush(&mut core, u64::MAX);
        let records = written(&writes);
        assert_eq!(gap_of(&records[0]), Some((1, 1)));
        assert_eq!(records[0].seq, 2);
    }

    #[test]
    fn held_records_past_the_limit_give_way_to_one_gap_marker() {
        let mut core = StreamCore::new(StreamKind::Usage, 0, 0, 4);
        for at_ms in 1..=10 {
            core.append(usage(at_ms), at_ms);
        }
        // Bounded: the marker and the three newest records.
        assert_eq!(core.held_records(), 4);
        // 1..=6 form the hole the marker names; 7 gave way to the marker.
        assert_eq!(core.dropped_held(), 7);
        let (writes, quota_gap) = flush(&mut core, u64::MAX);
        assert!(quota_gap.is_none());
        let records = written(&writes);
        let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
        assert_eq!(seqs, vec![7, 8, 9, 10]);
        assert_eq!(gap_of(&records[0]), Some((1, 6)));
        assert_eq!(writes[0].first_seq, 7, "a block never spans the hole");
        assert_eq!(core.next_seq(), 11);
        assert_eq!(core.held_records(), 0);
    }

    #[test]
    fn a_hole_after_stored_records_starts_a_new_block() {
        let mut core = StreamCore::new(StreamKind::Usage, 0, 0, 2);
        core.append(usage(1), 1);
        flush(&mut core, u64::MAX);
        for at_ms in 2..=5 {
            core.append(usage(at_ms), at_ms);
        }
        let (writes, _) = flush(&mut core, u64::MAX);
        let firsts: Vec<u64> = writes.iter().map(|write| write.first_seq).collect();
        assert_eq!(firsts, vec![1, 4], "the old tail, then the marker's block");
        let records = written(&writes);
        assert_eq!(gap_of(&records[1]), Some((2, 3)));
        assert_eq!(records[2].seq, 5);
        assert_eq!(core.stored_records(), 3);
    }

    #[test]
    fn overflowing_screenshots_are_listed_for_their_images() {
        let mut core = StreamCore::new(StreamKind::Frames, 0, 0, 2);
        for at_ms in 1..=3 {
            core.append(frame(at_ms), at_ms);
        }
        assert_eq!(core.take_dropped_frames(), vec![1, 2]);
        assert!(core.take_dropped_frames().is_empty());
    }

    #[test]
    fn records_stay_held_until_their_flush_is_durable() {
        let mut core = StreamCore::new(StreamKind::Usage, 0, 0, NO_LIMIT);
        for at_ms in 1..=5 {
            core.append(usage(at_ms), at_ms);
        }
        let plan = core.plan_flush(u64::MAX).unwrap().unwrap();
        core.commit_flush(plan.commit);
        assert_eq!(core.held_records(), 5, "written, not yet synced");
        assert_eq!(core.unwritten(), Some((1, 5)));
        core.mark_durable(3);
        assert_eq!(core.held_records(), 2);
        core.mark_durable(5);
        assert_eq!(core.held_records(), 0);
        assert_eq!(core.unwritten(), None);
    }

    #[test]
    fn a_new_core_takes_back_what_its_disk_lacks() {
        let mut old = StreamCore::new(StreamKind::Usage, 0, 0, 4);
        for at_ms in 1..=4 {
            old.append(usage(at_ms), at_ms);
        }
        let plan = old.plan_flush(u64::MAX).unwrap().unwrap();
        old.commit_flush(plan.commit);
        for at_ms in 5..=9 {
            old.append(usage(at_ms), at_ms);
        }
        assert_eq!(old.dropped_held(), 2, "5 and 6 gave way to a marker at 6");
        // The disk, reopened by the next process, holds 1..=2 of the
        // unsynced flush.
        let mut new = StreamCore::new(StreamKind::Usage, 2, 0, 8);
        new.restore(old.held());
        assert_eq!(new.held_records(), 6);
        assert_eq!(new.dropped_held(), 2);
        assert_eq!(new.append(usage(10), 10), 10);
        let (writes, _) = flush(&mut new, u64::MAX);
        let records = written(&writes);
        let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
        assert_eq!(seqs, vec![3, 4, 6, 7, 8, 9, 10]);
        assert_eq!(gap_of(&records[2]), Some((5, 5)));
    }

    #[test]
    fn numbers_lost_by_an_earlier_run_are_named_once() {
        let mut core = StreamCore::new(StreamKind::Usage, 10, 0, NO_LIMIT);
        core.mark_lost_through(7);
        assert_eq!(core.next_seq(), 11, "already written: nothing lost");
        core.mark_lost_through(15);
        assert_eq!(core.append(usage(1), 1), 17);
        let (writes, _) = flush(&mut core, u64::MAX);
        let records = written(&writes);
        assert_eq!(records[0].seq, 16);
        assert_eq!(gap_of(&records[0]), Some((11, 15)));
    }

    #[test]
    fn gap_reserve_covers_worst_case_gap() {
        let gap = SeqRecord {
            seq: u64::MAX,
            record: Record::Gap(GapMarker {
                stream: StreamKind::Frames,
                first_seq: u64::MAX,
                last_seq: u64::MAX,
                reason: GapReason::RetentionExpired,
            }),
        };
        let alone = encode_block(&[&gap], i64::MIN, i64::MAX).unwrap();
        assert!(alone.len() as u64 <= GAP_RESERVE_BYTES, "{}", alone.len());
        let full: Vec<SeqRecord> = (0..RECORDS_PER_BLOCK as u64 - 1)
            .map(|seq| SeqRecord {
                seq,
                record: usage(0),
            })
            .collect();
        let mut refs: Vec<&SeqRecord> = full.iter().collect();
        let before = encode_block(&refs, 0, 0).unwrap().len();
        refs.push(&gap);
        let after = encode_block(&refs, 0, 0).unwrap().len();
        assert!((after - before) as u64 <= GAP_RESERVE_BYTES);
    }

    #[test]
    fn tail_is_rewritten_then_sealed() {
        let mut core = StreamCore::new(StreamKind::Usage, 0, 0, NO_LIMIT);
        for at_ms in 0..10 {
            core.append(usage(at_ms), at_ms);
        }
        let (writes, _) = flush(&mut core, u64::MAX);
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].first_seq, 1);
        for at_ms in 10..300 {
            core.append(usage(at_ms), at_ms);
        }
        let (writes, _) = flush(&mut core, u64::MAX);
        let firsts: Vec<u64> = writes.iter().map(|write| write.first_seq).collect();
        assert_eq!(firsts, vec![1, 257]);
        assert_eq!(core.written_seq(), 300);
        assert_eq!(core.stored_records(), 300);
        let stored: u64 = writes.iter().map(|w| w.value.len() as u64).sum();
        assert_eq!(core.stored_bytes(), stored);
    }

    #[test]
    fn quota_drops_oldest_and_appends_gap() {
        let mut core = StreamCore::new(StreamKind::Usage, 0, 0, NO_LIMIT);
        for at_ms in 0..1_000 {
            core.append(usage(at_ms), at_ms);
        }
        let unlimited_bytes = {
            let plan = core.plan_flush(u64::MAX).unwrap().unwrap();
            plan.commit.stored_bytes
        };
        let quota_bytes = unlimited_bytes / 2;
        let (_, gap) = flush(&mut core, quota_bytes);
        let gap = gap.unwrap();
        assert_eq!(gap.first_seq, 1);
        assert_eq!(gap.last_seq % RECORDS_PER_BLOCK as u64, 0);
        assert!(core.stored_bytes() <= quota_bytes);
        assert_eq!(core.written_seq(), 1_001);
        let first_kept = core.blocks_after(0).next().unwrap().0;
        assert_eq!(first_kept, gap.last_seq + 1);
    }

    #[test]
    fn prune_needs_ack_and_age() {
        let mut core = StreamCore::new(StreamKind::Usage, 0, 0, NO_LIMIT);
        for at_ms in 0..300 {
            core.append(usage(at_ms), at_ms);
        }
        flush(&mut core, u64::MAX);
        core.mark_durable(300);
        assert!(core.plan_prune(1_000).first_seqs.is_empty());
        core.mark_acked(299);
        assert_eq!(core.plan_prune(1_000).first_seqs, vec![1]);
        assert!(core.plan_prune(200).first_seqs.is_empty());
        core.mark_acked(300);
        let plan = core.plan_prune(1_000);
        assert_eq!(plan.first_seqs, vec![1, 257]);
        core.commit_prune(&plan);
        assert_eq!(core.stored_bytes(), 0);
        core.append(usage(5), 5);
        let (writes, _) = flush(&mut core, u64::MAX);
        assert_eq!(writes[0].first_seq, 301);
    }
}
