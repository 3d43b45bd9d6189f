//! Raw records in time-ordered blocks: their kinds, the ingest of a
//! pulled batch (the shell around the pure rules of `ingest.rs`), cursors
//! and per (agent, kind) block bookkeeping.

use std::collections::HashMap;

use protocol::{Cursor, Record, RecordBatch, Retention, StreamKind};

use crate::model::{
    self, ActivitySpan, AgentId, Gap, HealthPoint, SessionEvent, Stored, UsageSpan,
};
use crate::validate::{self, Invalid};

use super::accounts::AccountDelta;
use super::block::{
    decode_block, decode_header, encode_block, BlockRecord, NotedGap, RECORDS_PER_BLOCK,
};
use super::ingest::{accept, Refusal};
use super::keys::{
    block_key, block_prefix, cursor_key, kind_state_key, parse_block_key, retired_epoch_key,
};
use super::rollup::RollupDelta;
use super::screenshots::{FetchedFrame, ShotSource};
use super::{ConsoleStore, StoreError};

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

    pub(super) fn index(self) -> usize {
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

/// Per (agent, kind) block bookkeeping.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct KindState {
    next_index: u64,
    pub(super) max_extent_ms: i64,
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

/// New records of one batch, by kind, with what they add to rollups.
#[derive(Debug, Default)]
struct Staged {
    usage: Vec<UsageSpan>,
    activity: Vec<ActivitySpan>,
    sessions: Vec<SessionEvent>,
    health: Vec<HealthPoint>,
    gaps: Vec<NotedGap>,
    rollups: RollupDelta,
    accounts: AccountDelta,
}

/// Whose batches an ingest takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// Any agent's (the store's tests and benches).
    Any,
    /// Only an agent still in the inventory (sync).
    Inventoried,
}

impl ConsoleStore {
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
        self.ingest_admitted(agent, batch, frames, now_ms, Admission::Any)
    }

    /// [`Self::ingest_with_frames`] for sync: refused with
    /// [`StoreError::NotInInventory`] when `agent` left the inventory
    /// during the pass. Checked under the writer lock, which
    /// [`Self::erase_agent`] takes too, so nothing is stored after an
    /// erasure of a revoked agent.
    pub fn ingest_inventoried(
        &self,
        agent: AgentId,
        batch: &RecordBatch,
        frames: &HashMap<u64, FetchedFrame>,
        now_ms: i64,
    ) -> Result<IngestReport, StoreError> {
        self.ingest_admitted(agent, batch, frames, now_ms, Admission::Inventoried)
    }

    fn ingest_admitted(
        &self,
        agent: AgentId,
        batch: &RecordBatch,
        frames: &HashMap<u64, FetchedFrame>,
        now_ms: i64,
        admission: Admission,
    ) -> Result<IngestReport, StoreError> {
        let writer = self.write_guard();
        if admission == Admission::Inventoried && self.agent(agent)?.is_none() {
            return Err(StoreError::NotInInventory {
                path: self.path.clone(),
                agent,
            });
        }
        let clock = self.day_clock();
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
                    staged.rollups.add_usage(&clock, &span);
                    staged.usage.push(span);
                }
                Stored::Activity(span) => {
                    staged.rollups.add_activity(&clock, &span);
                    staged.accounts.add_activity(&span);
                    staged.activity.push(span);
                }
                Stored::Session(event) => {
                    staged.accounts.add_session(&event);
                    staged.sessions.push(event);
                }
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
        self.stage_accounts(&mut writes, agent, &staged.accounts)?;
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

    pub(super) fn encode_block<R: BlockRecord>(
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

    pub(super) fn kind_state(
        &self,
        agent: AgentId,
        kind: RecordKind,
    ) -> Result<KindState, StoreError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
