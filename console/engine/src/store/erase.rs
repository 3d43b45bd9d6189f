//! Erasing one agent from the store: its inventory record (with its
//! remembered addresses), every key of the `data` tree that names it
//! (record blocks of every kind and their per-kind state, cursors,
//! retired epochs, day and quarter-hour rollups, screenshot index
//! entries, encrypted images and the serial) and its faults.
//!
//! Every key of the `data` tree is a one-byte prefix then the agent's 16
//! id bytes, so the erasure walks `[prefix][agent]` for every prefix byte:
//! a kind of key added later is erased too. Deletes go in batches of at
//! most [`ERASE_BATCH_KEYS`] keys, each applied under the writer lock and
//! flushed before the next, so a big agent never makes one giant batch and
//! ingest of other agents waits at most one batch. The inventory record
//! goes first (sync then refuses the agent's certificate); a crash part way
//! leaves keys that a second call, which needs no inventory record,
//! erases. Settings that name the agent are `crate::settings`'s business.
//!
//! # Erasing accounts of one agent
//!
//! [`ConsoleStore::erase_accounts`] deletes what belongs to some OS
//! accounts of one agent (a person's right to erasure on a shared
//! workstation): their presence spans and session events (by user), the
//! usage spans overlapping a presence span of theirs (usage spans name no
//! user; the presence spans say who was signed in, and a span partly
//! inside is that person's app time, so it goes whole) and the
//! screenshots taken inside those spans. Health points and gap markers
//! are machine data and stay; cursors stay, so a later sync does not
//! bring the records back (the agent erases its own copy separately).
//!
//! Each affected block is rewritten without the erased records (deleted
//! when none is left, re-keyed when its earliest record went, see
//! `rewrite_block`) in batches of at most [`ERASE_BATCH_BLOCKS`] blocks
//! read, each under the writer lock and flushed. The rollups are not
//! rebuilt from raw records, which are pruned long before rollups (a
//! rebuild would lose every day total older than the raw retention, other
//! people's included): each batch takes off the day and quarter-hour
//! totals its erased usage and presence spans added, in the same atomic
//! batch (`RollupDelta::negated`), exactly as ingest added them, so no
//! total counts an erased record and a crash cannot take anything off
//! twice. Totals back at zero are deleted.
//! The order makes a second call finish what a crash cut short: usage
//! spans, then screenshots, then session events, then presence spans,
//! the spans the others are found from, last. Afterwards a call erases
//! nothing. Rollups of days whose raw records were already pruned still
//! count the accounts' time: they are per agent, not per user, and there
//! is no telling it apart any more.

use std::collections::HashSet;
use std::ops::Bound;

use crate::analytics::Intervals;
use crate::model::{ActivitySpan, AgentId, DayClock, SessionEvent, UsageSpan};

use super::block::{decode_block, decode_header, BlockRecord};
use super::keys::{
    account_key, agent_prefix, block_key, block_prefix, parse_block_key, parse_shot_key,
    prefix_end, shot_key, shot_time_bound, SHOT_IMAGE_PREFIX, SHOT_INDEX_PREFIX,
};
use super::queries::clip;
use super::rollup::RollupDelta;
use super::{ConsoleStore, RecordKind, StoreError};

/// Most keys deleted in one batch.
pub const ERASE_BATCH_KEYS: usize = 1024;
/// Most record blocks read (and rewritten) in one batch of an account
/// erasure: up to 256 records each.
pub const ERASE_BATCH_BLOCKS: usize = 64;
/// Most screenshots (index entry and image) deleted in one batch.
const ERASE_BATCH_SHOTS: usize = ERASE_BATCH_KEYS / 2;

/// What [`ConsoleStore::erase_agent`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ErasedCounts {
    /// Records of every kind in the erased blocks (gap markers included).
    pub records: u64,
    /// Screenshots (index entries, with their images when stored).
    pub screenshots: u64,
    /// Keys deleted in every tree, the inventory record included.
    pub keys: u64,
}

/// What [`ConsoleStore::erase_accounts`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ErasedAccounts {
    /// Presence spans, session events and usage spans.
    pub records: u64,
    /// Screenshots (index entries, with their images when stored).
    pub screenshots: u64,
}

/// When the erased accounts were signed in.
#[derive(Debug, Default, PartialEq, Eq)]
struct SignedIn {
    intervals: Intervals,
}

impl SignedIn {
    /// The union of `spans` (`(start_ms, end_ms)`); a span no longer than
    /// zero is its start millisecond.
    fn of(spans: impl IntoIterator<Item = (i64, i64)>) -> SignedIn {
        SignedIn {
            intervals: Intervals::merge(
                spans
                    .into_iter()
                    .map(|(start_ms, end_ms)| (start_ms, end_ms.max(start_ms.saturating_add(1)))),
            ),
        }
    }

    /// Sorted, disjoint `[start_ms, end_ms)` intervals.
    fn intervals_ms(&self) -> &[(i64, i64)] {
        self.intervals.as_slice()
    }

    /// Whether `[start_ms, end_ms)` (its start millisecond if no longer
    /// than zero, as queries take it) overlaps an interval.
    fn overlaps(&self, start_ms: i64, end_ms: i64) -> bool {
        // The first interval ending after the start is the only candidate:
        // the later ones start after it ends.
        self.intervals
            .from(start_ms)
            .first()
            .is_some_and(|(from_ms, to_ms)| clip(start_ms, end_ms, *from_ms, *to_ms).is_some())
    }
}

impl ConsoleStore {
    /// Deletes everything the store holds about `agent` (see the module
    /// documentation), whether or not it is still in the inventory, in
    /// bounded flushed batches. Calling it again after a crash finishes
    /// the job; calling it on an agent with nothing left deletes nothing.
    pub fn erase_agent(&self, agent: AgentId) -> Result<ErasedCounts, StoreError> {
        let mut counts = ErasedCounts::default();
        if self.remove_agent(agent)?.is_some() {
            counts.keys += 1;
        }
        let (mut records, mut screenshots) = (0u64, 0u64);
        for prefix in 0..=u8::MAX {
            counts.keys +=
                self.erase_prefix(&self.data, &agent_prefix(prefix, agent), |key, value| {
                    if prefix == SHOT_INDEX_PREFIX {
                        screenshots += 1;
                    } else if RecordKind::ALL
                        .iter()
                        .any(|kind| parse_block_key(*kind, key).is_some())
                    {
                        // A damaged block is erased all the same, uncounted.
                        records += decode_header(value).map_or(0, |header| u64::from(header.count));
                    }
                })?;
        }
        counts.keys += self.erase_prefix(&self.faults, agent.as_bytes(), |_, _| {})?;
        counts.records = records;
        counts.screenshots = screenshots;
        Ok(counts)
    }

    /// Deletes every record of the OS accounts `users` on `agent`: their
    /// presence spans and session events, the usage spans overlapping
    /// their presence spans and the screenshots taken inside those, and
    /// takes their time off the day and quarter-hour totals (see the
    /// module documentation), and forgets that the accounts were seen on
    /// `agent`. Health points, gap markers and cursors stay. Calling it again after a crash finishes the job; then it
    /// erases nothing.
    pub fn erase_accounts(
        &self,
        agent: AgentId,
        users: &[String],
    ) -> Result<ErasedAccounts, StoreError> {
        let users: HashSet<&str> = users.iter().map(String::as_str).collect();
        let mut erased = ErasedAccounts::default();
        if users.is_empty() {
            return Ok(erased);
        }
        let mut spans = Vec::new();
        self.visit_range::<ActivitySpan>(agent, i64::MIN, i64::MAX, |block| {
            spans.extend(
                block
                    .iter()
                    .filter(|span| users.contains(span.user.as_str()))
                    .map(|span| (span.start_ms, span.end_ms)),
            );
            Ok(())
        })?;
        let signed_in = SignedIn::of(spans);
        erased.records += self.erase_records::<UsageSpan>(
            agent,
            |span| signed_in.overlaps(span.start_ms, span.end_ms),
            RollupDelta::add_usage,
        )?;
        for (from_ms, to_ms) in signed_in.intervals_ms() {
            erased.screenshots += self.erase_screenshots(agent, *from_ms, *to_ms)?;
        }
        erased.records += self.erase_records::<SessionEvent>(
            agent,
            |event| users.contains(event.user.as_str()),
            |_, _, _| {},
        )?;
        erased.records += self.erase_records::<ActivitySpan>(
            agent,
            |span| users.contains(span.user.as_str()),
            RollupDelta::add_activity,
        )?;
        // Last: the accounts' entries in the index of accounts seen.
        let writer = self.write_guard();
        let mut forget = sled::Batch::default();
        for user in &users {
            forget.remove(account_key(agent, user));
        }
        self.data
            .apply_batch(forget)
            .map_err(|source| self.sled_error(source))?;
        drop(writer);
        self.sync()?;
        Ok(erased)
    }

    /// How many live keys and values contain one of `needles` among
    /// everything the store keeps about `agents` (every `data` key
    /// `[prefix][agent]…`, their faults) and in the trees any agent may be
    /// named in (settings but those under `skip_settings`, audit log,
    /// inventory), each read once: how an erasure is verified. Window
    /// titles and application names count too, so a title naming the
    /// person shows up here. Reads only.
    pub fn count_mentions(
        &self,
        agents: &[AgentId],
        needles: &[&[u8]],
        skip_settings: &[&str],
    ) -> Result<u64, StoreError> {
        let needles: Vec<&[u8]> = needles.iter().copied().filter(|n| !n.is_empty()).collect();
        let mentions = |bytes: &[u8]| {
            needles
                .iter()
                .any(|needle| bytes.windows(needle.len()).any(|window| window == *needle))
        };
        let mut count = 0u64;
        let mut tally = |item: Result<(sled::IVec, sled::IVec), sled::Error>| {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            if mentions(&key) || mentions(&value) {
                count += 1;
            }
            Ok::<(), StoreError>(())
        };
        for agent in agents {
            for prefix in 0..=u8::MAX {
                for item in self.data.scan_prefix(agent_prefix(prefix, *agent)) {
                    tally(item)?;
                }
            }
            for item in self.faults.scan_prefix(agent.as_bytes()) {
                tally(item)?;
            }
        }
        for item in self.settings.iter().filter(|item| {
            item.as_ref().map_or(true, |(key, _)| {
                !skip_settings.iter().any(|skip| key == skip.as_bytes())
            })
        }) {
            tally(item)?;
        }
        for tree in [&self.audit, &self.agents] {
            for item in tree.iter() {
                tally(item)?;
            }
        }
        Ok(count)
    }

    /// Rewrites every block of `agent` and kind `R` without the records
    /// `erased` picks, taking off the rollups `added` says each of them
    /// added, in batches of [`ERASE_BATCH_BLOCKS`] blocks read, each under
    /// the writer lock and flushed; returns how many records went.
    fn erase_records<R: BlockRecord>(
        &self,
        agent: AgentId,
        erased: impl Fn(&R) -> bool,
        added: impl Fn(&mut RollupDelta, &DayClock, &R),
    ) -> Result<u64, StoreError> {
        let prefix = block_prefix(R::KIND, agent);
        let mut from = Bound::Included(prefix.clone());
        let mut erased_records = 0u64;
        loop {
            let writer = self.write_guard();
            let clock = self.day_clock();
            let mut writes = sled::Batch::default();
            let mut taken_off = RollupDelta::default();
            let mut rewritten_blocks = 0usize;
            let mut read_blocks = 0usize;
            let mut last_key = None;
            for item in self
                .data
                .range((from.clone(), prefix_end(&prefix)))
                .take(ERASE_BATCH_BLOCKS)
            {
                let (key, value) = item.map_err(|source| self.sled_error(source))?;
                read_blocks += 1;
                let start_ms = self.block_start(R::KIND, agent, &key)?;
                let (_, records) = decode_block::<R>(agent, start_ms, &value)
                    .map_err(|source| self.corrupt_block(R::KIND, agent, start_ms, source))?;
                let (gone, kept): (Vec<R>, Vec<R>) =
                    records.into_iter().partition(|record| erased(record));
                if !gone.is_empty() {
                    for record in &gone {
                        added(&mut taken_off, &clock, record);
                    }
                    erased_records += gone.len() as u64;
                    rewritten_blocks += 1;
                    self.rewrite_block(&mut writes, agent, &key, &kept)?;
                }
                last_key = Some(key);
            }
            if rewritten_blocks > 0 {
                self.stage_rollups(&mut writes, agent, &taken_off.negated())?;
                self.data
                    .apply_batch(writes)
                    .map_err(|source| self.sled_error(source))?;
                drop(writer);
                self.sync()?;
            }
            match last_key {
                Some(key) if read_blocks == ERASE_BATCH_BLOCKS => {
                    from = Bound::Excluded(key.to_vec());
                }
                _ => return Ok(erased_records),
            }
        }
    }

    /// Stages `kept` (in start order) in place of the block under `key`:
    /// the key is deleted if nothing is left. Otherwise the block keeps
    /// its `first_index` (ordinals of two blocks never overlap, so keys
    /// stay unique) but its key must name its earliest remaining start:
    /// the body stores times as differences from the key's start, and
    /// queries skip blocks by it (a block starting at or after a range's
    /// end is not read). When the earliest record went, the block moves
    /// to a key with the later start. Its extent only shrinks (later
    /// start, no later end), so the kind state's widest extent, which
    /// queries look back by, still bounds it; the next ordinal is kept,
    /// so no key is ever reused.
    fn rewrite_block<R: BlockRecord>(
        &self,
        writes: &mut sled::Batch,
        agent: AgentId,
        key: &[u8],
        kept: &[R],
    ) -> Result<(), StoreError> {
        let parsed = parse_block_key(R::KIND, key)
            .filter(|parsed| parsed.agent == agent)
            .ok_or_else(|| self.corrupt(format!("block key {key:02x?} is malformed")))?;
        if kept.is_empty() {
            writes.remove(key);
            return Ok(());
        }
        let (start_ms, value) = self.encode_block(agent, kept)?;
        if start_ms != parsed.start_ms {
            writes.remove(key);
        }
        writes.insert(
            block_key(R::KIND, agent, start_ms, parsed.first_index),
            value,
        );
        Ok(())
    }

    /// Deletes the screenshots of `agent` taken in `[from_ms, to_ms)`
    /// (index entries and images), in batches of [`ERASE_BATCH_SHOTS`]
    /// under the writer lock, each flushed; returns how many.
    fn erase_screenshots(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut erased_shots = 0u64;
        loop {
            let writer = self.write_guard();
            let mut deletes = sled::Batch::default();
            let mut batch_shots = 0usize;
            let range = shot_time_bound(SHOT_INDEX_PREFIX, agent, from_ms)
                ..shot_time_bound(SHOT_INDEX_PREFIX, agent, to_ms);
            for item in self.data.range(range).take(ERASE_BATCH_SHOTS) {
                let (key, _) = item.map_err(|source| self.sled_error(source))?;
                let (_, at_ms, serial) =
                    parse_shot_key(SHOT_INDEX_PREFIX, &key).ok_or_else(|| {
                        self.corrupt(format!("screenshot index key {key:02x?} is malformed"))
                    })?;
                deletes.remove(shot_key(SHOT_IMAGE_PREFIX, agent, at_ms, serial));
                deletes.remove(key);
                batch_shots += 1;
            }
            if batch_shots == 0 {
                return Ok(erased_shots);
            }
            self.data
                .apply_batch(deletes)
                .map_err(|source| self.sled_error(source))?;
            drop(writer);
            self.sync()?;
            erased_shots += batch_shots as u64;
            if batch_shots < ERASE_BATCH_SHOTS {
                return Ok(erased_shots);
            }
        }
    }

    /// Deletes every key of `tree` that starts with `prefix`, telling
    /// `tally` each key and value first; returns how many.
    fn erase_prefix(
        &self,
        tree: &sled::Tree,
        prefix: &[u8],
        mut tally: impl FnMut(&[u8], &[u8]),
    ) -> Result<u64, StoreError> {
        let mut erased_keys = 0u64;
        loop {
            let writer = self.write_guard();
            let mut deletes = sled::Batch::default();
            let mut batch_keys = 0usize;
            for item in tree.scan_prefix(prefix).take(ERASE_BATCH_KEYS) {
                let (key, value) = item.map_err(|source| self.sled_error(source))?;
                tally(&key, &value);
                deletes.remove(key);
                batch_keys += 1;
            }
            if batch_keys == 0 {
                return Ok(erased_keys);
            }
            tree.apply_batch(deletes)
                .map_err(|source| self.sled_error(source))?;
            drop(writer);
            self.sync()?;
            erased_keys += batch_keys as u64;
            if batch_keys < ERASE_BATCH_KEYS {
                return Ok(erased_keys);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use protocol::{
        CapturedImage, FrameMeta, HealthLevel, HealthSample, ImageFormat, Record, RecordBatch,
        SeqRecord, SessionEventKind, StreamKind,
    };
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::model::DAY_MS;
    use crate::store::{jpeg_dimensions, FetchedFrame, ScreenshotMeta, ShotSource};

    /// 2026-03-02T08:00:00Z.
    const T0_MS: i64 = 1_772_438_400_000;
    const AGENT: AgentId = AgentId::from_u128(0x9f3c_51d2_7a04_4e8b_b6a1_2c3d_4e5f_6071);
    const MINUTE_MS: i64 = 60_000;
    const HOUR_MS: i64 = 60 * MINUTE_MS;
    const NOW_MS: i64 = T0_MS + 30 * DAY_MS;

    fn clock() -> DayClock {
        DayClock::from_name("Europe/Paris").expect("Europe/Paris is in the tz database")
    }

    fn open(data: &Path) -> ConsoleStore {
        ConsoleStore::open(&data.join("store"), clock()).expect("store opens")
    }

    fn alice() -> Vec<String> {
        vec!["alice".to_owned()]
    }

    /// Numbers `records` from seq 1 into one batch of `stream`.
    fn batch(stream: StreamKind, records: Vec<Record>) -> RecordBatch {
        RecordBatch {
            stream,
            epoch: 7,
            records: (1..)
                .zip(records)
                .map(|(seq, record)| SeqRecord { seq, record })
                .collect(),
            more: false,
        }
    }

    fn usage(start_ms: i64, length_ms: i64, app: &str) -> Record {
        Record::Usage(protocol::UsageSpan {
            start_ms,
            end_ms: start_ms + length_ms,
            app: app.to_owned(),
            raw_app: app.to_owned(),
            title: Some(format!("{app} window")),
        })
    }

    fn activity(start_ms: i64, length_ms: i64, presence: protocol::Presence, user: &str) -> Record {
        Record::Activity(protocol::ActivitySpan {
            start_ms,
            end_ms: start_ms + length_ms,
            presence,
            user: user.to_owned(),
        })
    }

    fn session(at_ms: i64, kind: SessionEventKind, user: &str) -> Record {
        Record::Session(protocol::SessionEvent {
            at_ms,
            kind,
            user: user.to_owned(),
        })
    }

    fn health(at_ms: i64) -> Record {
        Record::Health(HealthSample {
            at_ms,
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
        })
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

    /// Records of one workstation shared by two accounts, per stream.
    struct Shared {
        usage: Vec<Record>,
        sessions: Vec<Record>,
        health: Vec<Record>,
    }

    impl Shared {
        fn ingest(&self, store: &ConsoleStore) {
            for (stream, records) in [
                (StreamKind::Usage, &self.usage),
                (StreamKind::Sessions, &self.sessions),
                (StreamKind::Health, &self.health),
            ] {
                if !records.is_empty() {
                    store
                        .ingest(AGENT, &batch(stream, records.clone()), NOW_MS)
                        .expect("ingest");
                }
            }
        }

        /// Only what is not alice's: her presence and sessions, and the
        /// usage overlapping her presence, left out.
        fn without_alice(&self) -> Shared {
            let alice_spans: Vec<(i64, i64)> = self
                .sessions
                .iter()
                .filter_map(|record| match record {
                    Record::Activity(span) if span.user == "alice" => {
                        Some((span.start_ms, span.end_ms))
                    }
                    _ => None,
                })
                .collect();
            let hers = |start_ms: i64, end_ms: i64| {
                alice_spans
                    .iter()
                    .any(|(from_ms, to_ms)| start_ms < *to_ms && end_ms > *from_ms)
            };
            Shared {
                usage: self
                    .usage
                    .iter()
                    .filter(|record| match record {
                        Record::Usage(span) => !hers(span.start_ms, span.end_ms),
                        _ => true,
                    })
                    .cloned()
                    .collect(),
                sessions: self
                    .sessions
                    .iter()
                    .filter(|record| match record {
                        Record::Activity(span) => span.user != "alice",
                        Record::Session(event) => event.user != "alice",
                        _ => true,
                    })
                    .cloned()
                    .collect(),
                health: self.health.clone(),
            }
        }
    }

    /// Two days of alice from 08:00 to 12:30 UTC and bob from 12:30 to
    /// 17:00 in 5-minute presence spans, usage every 7 minutes from 07:53
    /// to 17:30 (some across the switch, one app only alice uses), health
    /// every half hour.
    fn two_accounts() -> Shared {
        let mut shared = Shared {
            usage: Vec::new(),
            sessions: Vec::new(),
            health: Vec::new(),
        };
        let apps = ["Firefox", "LibreOffice", "Terminal"];
        for day in 0..2 {
            let base_ms = T0_MS + day * DAY_MS;
            let switch_ms = base_ms + 4 * HOUR_MS + 30 * MINUTE_MS;
            let end_ms = base_ms + 9 * HOUR_MS;
            shared
                .sessions
                .push(session(base_ms, SessionEventKind::Login, "alice"));
            for (n, start_ms) in (base_ms..switch_ms).step_by(5 * 60_000).enumerate() {
                let presence = match n % 7 {
                    3 => protocol::Presence::Idle,
                    _ => protocol::Presence::Active,
                };
                shared
                    .sessions
                    .push(activity(start_ms, 5 * MINUTE_MS, presence, "alice"));
            }
            shared
                .sessions
                .push(session(switch_ms, SessionEventKind::Logout, "alice"));
            shared
                .sessions
                .push(session(switch_ms, SessionEventKind::Login, "bob"));
            for (n, start_ms) in (switch_ms..end_ms).step_by(5 * 60_000).enumerate() {
                let presence = match n % 5 {
                    2 => protocol::Presence::Locked,
                    4 => protocol::Presence::Idle,
                    _ => protocol::Presence::Active,
                };
                shared
                    .sessions
                    .push(activity(start_ms, 5 * MINUTE_MS, presence, "bob"));
            }
            shared
                .sessions
                .push(session(end_ms, SessionEventKind::Logout, "bob"));
            let first_ms = base_ms - 7 * MINUTE_MS;
            for (n, start_ms) in (first_ms..end_ms + 30 * MINUTE_MS)
                .step_by(7 * 60_000)
                .enumerate()
            {
                shared
                    .usage
                    .push(usage(start_ms, 6 * MINUTE_MS, apps[n % apps.len()]));
            }
            shared.usage.push(usage(
                base_ms + HOUR_MS + 30_000,
                8 * MINUTE_MS,
                "Solitaire",
            ));
            for at_ms in (base_ms..=end_ms).step_by(30 * 60_000) {
                shared.health.push(health(at_ms));
            }
        }
        shared
    }

    fn all_usage(store: &ConsoleStore) -> Vec<UsageSpan> {
        store.usage_spans(AGENT, i64::MIN, i64::MAX).expect("usage")
    }

    fn all_activity(store: &ConsoleStore) -> Vec<ActivitySpan> {
        store
            .activity_spans(AGENT, i64::MIN, i64::MAX)
            .expect("activity")
    }

    fn all_sessions(store: &ConsoleStore) -> Vec<SessionEvent> {
        store
            .session_events(AGENT, i64::MIN, i64::MAX)
            .expect("sessions")
    }

    fn all_health(store: &ConsoleStore) -> Vec<crate::model::HealthPoint> {
        store
            .health_points(AGENT, i64::MIN, i64::MAX)
            .expect("health")
    }

    fn all_shots(store: &ConsoleStore) -> Vec<ScreenshotMeta> {
        store
            .screenshots(AGENT, i64::MIN, i64::MAX)
            .expect("screenshots")
    }

    /// Keys and values, in key order.
    type Entries = Vec<(Vec<u8>, Vec<u8>)>;

    /// Every key and value of the `data` tree under `prefix` and the agent.
    fn entries(store: &ConsoleStore, prefix: u8) -> Entries {
        store
            .data
            .scan_prefix(agent_prefix(prefix, AGENT))
            .map(|item| {
                let (key, value) = item.expect("item");
                (key.to_vec(), value.to_vec())
            })
            .collect()
    }

    /// The day totals (as dashboards read them) and the quarter-hour
    /// totals (byte for byte) of the agent.
    fn rollups(store: &ConsoleStore) -> (Vec<String>, Vec<Entries>) {
        let days = (i32::MIN, i32::MAX);
        let apps = store
            .app_day_totals(Some(AGENT), days.0, days.1)
            .expect("app totals");
        let presence = store
            .presence_day_totals(Some(AGENT), days.0, days.1)
            .expect("presence totals");
        let readable = apps
            .iter()
            .map(|total| format!("{total:?}"))
            .chain(presence.iter().map(|total| format!("{total:?}")))
            .collect();
        let raw = [b'A', b'P', b'a', b'p']
            .into_iter()
            .map(|prefix| entries(store, prefix))
            .collect();
        (readable, raw)
    }

    /// The whole `data` tree.
    fn dump(store: &ConsoleStore) -> Entries {
        store
            .data
            .iter()
            .map(|item| {
                let (key, value) = item.expect("item");
                (key.to_vec(), value.to_vec())
            })
            .collect()
    }

    /// Trees (and keys) of a closed store whose key or value holds `needle`.
    fn holding(store_dir: &Path, needle: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut attempts_left = 250;
        let db = loop {
            match sled::open(store_dir) {
                Ok(db) => break db,
                Err(error) if attempts_left > 0 => {
                    attempts_left -= 1;
                    assert!(error.to_string().contains("lock"), "{error}");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(error) => panic!("cannot open {}: {error}", store_dir.display()),
            }
        };
        let holds = |bytes: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
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

    /// Stores frames (periodic, one dropped) and on-demand screenshots at
    /// `(seed, at_ms, image kept)`; returns the images kept by time.
    fn add_shots(store: &ConsoleStore, shots: &[(u32, i64, bool)]) -> HashMap<i64, Vec<u8>> {
        let mut frames = Vec::new();
        let mut fetched = HashMap::new();
        let mut images = HashMap::new();
        for (seq, (seed, at_ms, kept)) in (1..).zip(shots) {
            let image = captured(*seed, *at_ms);
            frames.push(Record::Frame(image.meta.clone()));
            if *kept {
                images.insert(*at_ms, image.bytes.clone());
                fetched.insert(seq, FetchedFrame::Image(image));
            } else {
                fetched.insert(seq, FetchedFrame::Dropped);
            }
        }
        store
            .ingest_with_frames(AGENT, &batch(StreamKind::Frames, frames), &fetched, NOW_MS)
            .expect("frames");
        images
    }

    #[test]
    fn signed_in_time_is_merged_and_overlaps_like_queries_clip() {
        let signed_in = SignedIn::of([(50, 60), (10, 20), (15, 30), (40, 40), (30, 35)]);
        assert_eq!(signed_in.intervals_ms(), vec![(10, 35), (40, 41), (50, 60)]);
        assert!(signed_in.overlaps(0, 11));
        assert!(!signed_in.overlaps(0, 10), "ends as hers starts");
        assert!(!signed_in.overlaps(35, 40), "between");
        assert!(signed_in.overlaps(34, 34), "a point inside");
        assert!(signed_in.overlaps(40, 40), "a point on a point span");
        assert!(signed_in.overlaps(36, 45), "across a point span");
        assert!(!signed_in.overlaps(60, 70));
        assert!(signed_in.overlaps(0, 100));
        assert!(!SignedIn::default().overlaps(i64::MIN, i64::MAX));
    }

    #[test]
    fn erasing_an_account_leaves_nothing_of_it_and_the_other_account_as_if_alone() {
        let data = tempfile::tempdir().expect("tempdir");
        let store = open(data.path());
        let shared = two_accounts();
        shared.ingest(&store);
        let images = add_shots(
            &store,
            &[
                (1, T0_MS + HOUR_MS, true),
                (2, T0_MS + 2 * HOUR_MS, false),
                (3, T0_MS + 6 * HOUR_MS, true),
                (4, T0_MS + DAY_MS + 8 * HOUR_MS, true),
            ],
        );
        let alice_on_demand = captured(5, T0_MS + DAY_MS + 3 * HOUR_MS);
        store
            .put_screenshot(AGENT, ShotSource::OnDemand, &alice_on_demand)
            .expect("on demand");
        let bob_on_demand = captured(6, T0_MS + DAY_MS + 7 * HOUR_MS);
        store
            .put_screenshot(AGENT, ShotSource::OnDemand, &bob_on_demand)
            .expect("on demand");

        let bobs = shared.without_alice();
        let alone_dir = tempfile::tempdir().expect("tempdir");
        let alone = open(alone_dir.path());
        bobs.ingest(&alone);

        let usage_before = all_usage(&store);
        let activity_before = all_activity(&store);
        let sessions_before = all_sessions(&store);
        let health_before = all_health(&store);
        let shots_before = all_shots(&store);
        let gaps_before = store.gaps(AGENT).expect("gaps");
        assert_eq!(shots_before.len(), 6);
        assert!(activity_before.iter().any(|span| span.user == "alice"));
        assert_ne!(rollups(&store), rollups(&alone));

        let erased = store.erase_accounts(AGENT, &alice()).expect("erase");
        let alice_records =
            (shared.usage.len() - bobs.usage.len()) + (shared.sessions.len() - bobs.sessions.len());
        assert_eq!(
            erased,
            ErasedAccounts {
                records: alice_records as u64,
                screenshots: 3,
            }
        );

        // Alice's records are gone, bob's are exactly as before.
        let alice_time: Vec<(i64, i64)> = activity_before
            .iter()
            .filter(|span| span.user == "alice")
            .map(|span| (span.start_ms, span.end_ms))
            .collect();
        let hers = |start_ms: i64, end_ms: i64| {
            alice_time
                .iter()
                .any(|(from_ms, to_ms)| start_ms < *to_ms && end_ms > *from_ms)
        };
        let activity_after = all_activity(&store);
        assert!(activity_after.iter().all(|span| span.user == "bob"));
        assert_eq!(
            activity_after,
            activity_before
                .iter()
                .filter(|span| span.user == "bob")
                .cloned()
                .collect::<Vec<_>>()
        );
        let sessions_after = all_sessions(&store);
        assert!(sessions_after.iter().all(|event| event.user == "bob"));
        assert_eq!(
            sessions_after,
            sessions_before
                .iter()
                .filter(|event| event.user == "bob")
                .cloned()
                .collect::<Vec<_>>()
        );
        let usage_after = all_usage(&store);
        assert!(usage_after
            .iter()
            .all(|span| !hers(span.start_ms, span.end_ms)));
        assert!(usage_after.iter().all(|span| span.app != "Solitaire"));
        assert_eq!(
            usage_after,
            usage_before
                .iter()
                .filter(|span| !hers(span.start_ms, span.end_ms))
                .cloned()
                .collect::<Vec<_>>()
        );
        assert!(
            usage_before.len() - usage_after.len() > 2 * 38,
            "across the switch too"
        );
        assert_eq!(usage_after, all_usage(&alone));
        assert_eq!(activity_after, all_activity(&alone));
        assert_eq!(sessions_after, all_sessions(&alone));
        assert_eq!(all_health(&store), health_before, "machine data stays");
        assert_eq!(store.gaps(AGENT).expect("gaps"), gaps_before);

        // Screenshots taken while alice was signed in are gone, images too.
        let shots_after = all_shots(&store);
        let (kept, gone): (Vec<_>, Vec<_>) = shots_before
            .into_iter()
            .partition(|shot| !hers(shot.key.at_ms, shot.key.at_ms + 1));
        assert_eq!((kept.len(), gone.len()), (3, 3));
        assert_eq!(shots_after, kept);
        for shot in &gone {
            assert!(matches!(
                store.screenshot_jpeg(shot.key),
                Err(StoreError::ScreenshotNotFound { .. })
            ));
            let image_key = shot_key(SHOT_IMAGE_PREFIX, AGENT, shot.key.at_ms, shot.key.serial);
            assert_eq!(store.get_data(&image_key).expect("get"), None);
        }
        for shot in &kept {
            let expected = images
                .get(&shot.key.at_ms)
                .cloned()
                .unwrap_or_else(|| bob_on_demand.bytes.clone());
            assert_eq!(store.screenshot_jpeg(shot.key).expect("bob's"), expected);
        }

        // Day and quarter-hour totals as if only bob's records came.
        assert_eq!(rollups(&store), rollups(&alone));

        // Again, or an unknown account: nothing.
        let before = dump(&store);
        assert_eq!(
            store.erase_accounts(AGENT, &alice()).expect("again"),
            ErasedAccounts::default()
        );
        for users in [
            vec!["mallory".to_owned()],
            Vec::new(),
            vec!["bo".to_owned()],
        ] {
            assert_eq!(
                store.erase_accounts(AGENT, &users).expect("unknown"),
                ErasedAccounts::default()
            );
        }
        assert_eq!(
            store
                .erase_accounts(AgentId::from_u128(3), &alice())
                .expect("other agent"),
            ErasedAccounts::default()
        );
        assert_eq!(dump(&store), before, "nothing changed");
        drop(store);

        let store_dir = data.path().join("store");
        assert_eq!(holding(&store_dir, b"alice"), Vec::new());
        assert!(
            !holding(&store_dir, b"bob").is_empty(),
            "the scan finds names"
        );
        // Reopened, the totals still match.
        let store = open(data.path());
        assert_eq!(rollups(&store), rollups(&alone));
    }

    #[test]
    fn erasing_an_unknown_account_changes_nothing() {
        let data = tempfile::tempdir().expect("tempdir");
        let store = open(data.path());
        two_accounts().ingest(&store);
        add_shots(&store, &[(1, T0_MS + HOUR_MS, true)]);
        let before = dump(&store);
        let users = vec!["mallory".to_owned(), "Alice".to_owned()];
        assert_eq!(
            store.erase_accounts(AGENT, &users).expect("erase"),
            ErasedAccounts::default()
        );
        assert_eq!(dump(&store), before);
    }

    /// 150 hours of alice and bob taking turns every hour: presence every
    /// 5 minutes, usage every 30 seconds lasting 40 (so some cross a
    /// switch), more blocks than one erase batch reads; then a batch of
    /// alice's session events only, whose blocks go whole.
    fn taking_turns() -> Shared {
        const HOURS: i64 = 150;
        let mut shared = Shared {
            usage: Vec::new(),
            sessions: Vec::new(),
            health: Vec::new(),
        };
        for hour in 0..HOURS {
            let user = if hour % 2 == 0 { "alice" } else { "bob" };
            let hour_ms = T0_MS + hour * HOUR_MS;
            shared
                .sessions
                .push(session(hour_ms, SessionEventKind::Login, user));
            for start_ms in (hour_ms..hour_ms + HOUR_MS).step_by(5 * 60_000) {
                shared.sessions.push(activity(
                    start_ms,
                    5 * MINUTE_MS,
                    protocol::Presence::Active,
                    user,
                ));
            }
            shared.sessions.push(session(
                hour_ms + HOUR_MS - 1,
                SessionEventKind::Logout,
                user,
            ));
        }
        let end_ms = T0_MS + HOURS * HOUR_MS;
        for (n, start_ms) in (T0_MS..end_ms).step_by(30_000).enumerate() {
            shared
                .usage
                .push(usage(start_ms, 40_000, &format!("app-{}", n % 17)));
        }
        for (n, at_ms) in (end_ms..end_ms + 300 * 1_000).step_by(1_000).enumerate() {
            let kind = if n % 2 == 0 {
                SessionEventKind::Lock
            } else {
                SessionEventKind::Unlock
            };
            shared.sessions.push(session(at_ms, kind, "alice"));
        }
        shared.health.push(health(T0_MS));
        shared
    }

    #[test]
    fn erasing_from_many_full_blocks_rekeys_and_deletes_them_and_queries_still_agree() {
        let data = tempfile::tempdir().expect("tempdir");
        let store = open(data.path());
        let shared = taking_turns();
        // The lock/unlock events are their own batch: blocks of alice only.
        let (turns, alone_events) = shared.sessions.split_at(shared.sessions.len() - 300);
        store
            .ingest(
                AGENT,
                &batch(StreamKind::Usage, shared.usage.clone()),
                NOW_MS,
            )
            .expect("usage");
        store
            .ingest(AGENT, &batch(StreamKind::Sessions, turns.to_vec()), NOW_MS)
            .expect("turns");
        let mut more = batch(StreamKind::Sessions, alone_events.to_vec());
        for (seq, record) in (turns.len() as u64 + 1..).zip(&mut more.records) {
            record.seq = seq;
        }
        store.ingest(AGENT, &more, NOW_MS).expect("alice's events");
        let usage_blocks = entries(&store, RecordKind::Usage.tag()).len();
        assert!(usage_blocks > ERASE_BATCH_BLOCKS, "{usage_blocks} blocks");
        let session_blocks = entries(&store, RecordKind::Session.tag()).len();
        let block_starts = |store: &ConsoleStore| -> HashMap<u64, i64> {
            entries(store, RecordKind::Usage.tag())
                .iter()
                .map(|(key, _)| {
                    let parsed = parse_block_key(RecordKind::Usage, key).expect("block key");
                    (parsed.first_index, parsed.start_ms)
                })
                .collect()
        };
        let starts_before = block_starts(&store);

        let bobs = shared.without_alice();
        let alone_dir = tempfile::tempdir().expect("tempdir");
        let alone = open(alone_dir.path());
        bobs.ingest(&alone);

        let erased = store.erase_accounts(AGENT, &alice()).expect("erase");
        let alice_records =
            (shared.usage.len() - bobs.usage.len()) + (shared.sessions.len() - bobs.sessions.len());
        assert_eq!(erased.records, alice_records as u64);
        assert_eq!(
            entries(&store, RecordKind::Session.tag()).len(),
            session_blocks - 2,
            "alice's own 256 + 44 events went with their blocks"
        );

        let starts_after = block_starts(&store);
        assert_eq!(starts_after.len(), starts_before.len(), "each keeps some");
        let moved = starts_after
            .iter()
            .filter(|(first_index, start_ms)| starts_before.get(first_index) != Some(start_ms))
            .count();
        assert!(moved > 0, "blocks whose first record went are re-keyed");
        assert!(moved < starts_after.len(), "the others stay");

        // Every block is keyed by its earliest record, and every range
        // query answers as the store that only ever had bob's records.
        for kind in [RecordKind::Usage, RecordKind::Activity, RecordKind::Session] {
            for (key, value) in entries(&store, kind.tag()) {
                let start_ms = parse_block_key(kind, &key).expect("block key").start_ms;
                let header = decode_header(&value).expect("header");
                assert!(header.max_end_ms >= start_ms);
            }
        }
        for (key, value) in entries(&store, RecordKind::Usage.tag()) {
            let start_ms = parse_block_key(RecordKind::Usage, &key)
                .expect("block key")
                .start_ms;
            let (_, spans) =
                decode_block::<UsageSpan>(AGENT, start_ms, &value).expect("usage block");
            assert_eq!(spans.first().map(|span| span.start_ms), Some(start_ms));
        }
        let end_ms = T0_MS + 151 * HOUR_MS;
        for from_ms in (T0_MS - HOUR_MS..end_ms).step_by(47 * 60_000) {
            let to_ms = from_ms + 53 * MINUTE_MS;
            assert_eq!(
                store.usage_spans(AGENT, from_ms, to_ms).expect("usage"),
                alone.usage_spans(AGENT, from_ms, to_ms).expect("usage"),
                "usage in [{from_ms}, {to_ms})"
            );
            assert_eq!(
                store
                    .activity_spans(AGENT, from_ms, to_ms)
                    .expect("activity"),
                alone
                    .activity_spans(AGENT, from_ms, to_ms)
                    .expect("activity"),
            );
            assert_eq!(
                store
                    .session_events(AGENT, from_ms, to_ms)
                    .expect("sessions"),
                alone
                    .session_events(AGENT, from_ms, to_ms)
                    .expect("sessions"),
            );
        }
        assert_eq!(all_usage(&store), all_usage(&alone));
        assert_eq!(rollups(&store), rollups(&alone));
        assert_eq!(
            store.erase_accounts(AGENT, &alice()).expect("again"),
            ErasedAccounts::default()
        );

        // New records still go into blocks and are found.
        let mut next = batch(
            StreamKind::Usage,
            vec![usage(end_ms + HOUR_MS, 20_000, "late")],
        );
        next.records[0].seq = shared.usage.len() as u64 + 1;
        store.ingest(AGENT, &next, NOW_MS).expect("later usage");
        assert_eq!(all_usage(&store).len(), bobs.usage.len() + 1);
    }

    #[test]
    fn an_account_erasure_cut_short_is_finished_by_the_next_call() {
        let data = tempfile::tempdir().expect("tempdir");
        let store = open(data.path());
        let shared = two_accounts();
        shared.ingest(&store);
        add_shots(&store, &[(1, T0_MS + HOUR_MS, true)]);
        let bobs = shared.without_alice();
        let alone_dir = tempfile::tempdir().expect("tempdir");
        let alone = open(alone_dir.path());
        bobs.ingest(&alone);

        // A crash after the usage spans, the screenshots and half of
        // alice's presence went (each in flushed batches, rollups with
        // them), in the order erase_accounts goes.
        let signed_in = SignedIn::of(
            all_activity(&store)
                .iter()
                .filter(|span| span.user == "alice")
                .map(|span| (span.start_ms, span.end_ms)),
        );
        let usage_erased = store
            .erase_records::<UsageSpan>(
                AGENT,
                |span| signed_in.overlaps(span.start_ms, span.end_ms),
                RollupDelta::add_usage,
            )
            .expect("usage");
        let mut shots_erased = 0;
        for (from_ms, to_ms) in signed_in.intervals_ms() {
            shots_erased += store
                .erase_screenshots(AGENT, *from_ms, *to_ms)
                .expect("screenshots");
        }
        let presence_erased = store
            .erase_records::<ActivitySpan>(
                AGENT,
                |span| span.user == "alice" && span.start_ms < T0_MS + DAY_MS,
                RollupDelta::add_activity,
            )
            .expect("half the presence");
        assert!(usage_erased > 0 && presence_erased > 0);
        assert_eq!(shots_erased, 1);

        let erased = store.erase_accounts(AGENT, &alice()).expect("the rest");
        let alice_records =
            (shared.usage.len() - bobs.usage.len()) + (shared.sessions.len() - bobs.sessions.len());
        assert_eq!(
            erased.records + usage_erased + presence_erased,
            alice_records as u64
        );
        assert_eq!(erased.screenshots, 0);
        assert!(all_shots(&store).is_empty());
        assert_eq!(all_usage(&store), all_usage(&alone));
        assert_eq!(all_activity(&store), all_activity(&alone));
        assert_eq!(all_sessions(&store), all_sessions(&alone));
        assert_eq!(rollups(&store), rollups(&alone));
        assert_eq!(
            store.erase_accounts(AGENT, &alice()).expect("again"),
            ErasedAccounts::default()
        );
    }
}
