//! Rollups: what one ingest adds to the per (agent, day, app) and per
//! (agent, day) presence totals, and to the same totals per 15-minute UTC
//! slice (negated, what an account erasure takes off; a total back at
//! zero is deleted), with their value encodings (pure); the store's
//! staging of them, the day-total queries, and the regrouping of day
//! totals from slices when the site's time zone changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    ActivitySpan, AgentId, AppDayTotal, DayClock, DayNumber, Presence, UsageSpan, DAY_MS,
};

use super::keys::{
    agent_prefix, app_total_key, day_range, parse_app_day_key, parse_app_total_key,
    parse_presence_day_key, parse_presence_total_key, presence_total_key, Grain, APP_DAY_PREFIX,
    APP_SLICE_PREFIX, PRESENCE_DAY_PREFIX, PRESENCE_SLICE_PREFIX,
};
use super::{ConsoleStore, StoreError};

/// Spans starting or ending further than this from 1970 (about 31,700
/// years) are kept raw but not rolled up: their day numbers are nonsense.
const MAX_ROLLUP_ABS_MS: i64 = 1_000_000_000_000_000;
/// A span counts towards day totals for at most this long from its start,
/// so one bogus span cannot add millions of day keys.
pub(crate) const MAX_ROLLUP_SPAN_MS: i64 = 366 * DAY_MS;

/// Length of a slice: every UTC offset in use is a whole number of quarter
/// hours (+5:45 Kathmandu, +12:45 Chatham, -3:30 St John's), so a slice
/// never straddles a local midnight.
pub(crate) const SLICE_MS: i64 = 15 * 60 * 1000;

/// Slices in a UTC day.
const SLICES_PER_DAY: i32 = 96;

/// The UTC day of `slice` and its quarter within that day.
fn split_slice(slice: i32) -> (i32, u8) {
    (
        slice.div_euclid(SLICES_PER_DAY),
        // In 0..96.
        slice.rem_euclid(SLICES_PER_DAY) as u8,
    )
}

/// Totals per quarter hour of one UTC day, by quarter (`N` totals each).
type Quarters<const N: usize> = BTreeMap<u8, [i64; N]>;

/// `[quarter: u8][N × i64]…` in quarter order: only the quarters that
/// have time, so a day of one short span stays a few bytes.
pub(crate) fn encode_quarters<const N: usize>(quarters: &Quarters<N>) -> Vec<u8> {
    let mut value = Vec::with_capacity(quarters.len() * (1 + 8 * N));
    for (quarter, totals) in quarters {
        value.push(*quarter);
        for total in totals {
            value.extend_from_slice(&total.to_be_bytes());
        }
    }
    value
}

/// The quarters of an encoded value; `None` if it is malformed (a length
/// that is not whole entries, a quarter past 95, quarters out of order).
pub(crate) fn decode_quarters<const N: usize>(value: &[u8]) -> Option<Quarters<N>> {
    let entry_bytes = 1 + 8 * N;
    if !value.len().is_multiple_of(entry_bytes) {
        return None;
    }
    let mut quarters = Quarters::new();
    for entry in value.chunks_exact(entry_bytes) {
        let quarter = entry[0];
        if i32::from(quarter) >= SLICES_PER_DAY
            || quarters
                .last_key_value()
                .is_some_and(|(last, _)| *last >= quarter)
        {
            return None;
        }
        let mut totals = [0_i64; N];
        for (total, bytes) in totals.iter_mut().zip(entry[1..].chunks_exact(8)) {
            *total = i64::from_be_bytes(bytes.try_into().ok()?);
        }
        quarters.insert(quarter, totals);
    }
    Some(quarters)
}

/// The slice of `quarter` in UTC `day` (saturating: stored days come from
/// slices, which are in range).
fn slice_at(day: i32, quarter: u8) -> i32 {
    day.saturating_mul(SLICES_PER_DAY)
        .saturating_add(i32::from(quarter))
}

/// Index of the slice `at_ms` falls in.
pub(crate) fn slice_of(at_ms: i64) -> i32 {
    // In range: rollups keep only |ms| <= MAX_ROLLUP_ABS_MS (1.1e9 slices).
    i32::try_from(at_ms.div_euclid(SLICE_MS)).unwrap_or(if at_ms < 0 { i32::MIN } else { i32::MAX })
}

/// Active, idle and locked milliseconds of one agent on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceDayTotal {
    pub agent: AgentId,
    pub day: DayNumber,
    pub active_ms: i64,
    pub idle_ms: i64,
    pub locked_ms: i64,
}

/// Presence milliseconds of one day, in `[active, idle, locked]` order.
pub(crate) type PresenceMs = [i64; 3];

/// Bytes of an encoded app total.
const APP_TOTAL_BYTES: usize = 8;
/// Bytes of encoded presence totals.
const PRESENCE_BYTES: usize = 24;

fn presence_slot(presence: Presence) -> usize {
    match presence {
        Presence::Active => 0,
        Presence::Idle => 1,
        Presence::Locked => 2,
    }
}

/// The part of `[start_ms, end_ms)` that counts towards totals, if any.
fn counted(start_ms: i64, end_ms: i64) -> Option<(i64, i64)> {
    if start_ms.unsigned_abs() > MAX_ROLLUP_ABS_MS.unsigned_abs()
        || end_ms.unsigned_abs() > MAX_ROLLUP_ABS_MS.unsigned_abs()
    {
        return None;
    }
    Some((start_ms, end_ms.min(start_ms + MAX_ROLLUP_SPAN_MS)))
}

/// The per-day pieces of `[start_ms, end_ms)` that count towards totals.
fn day_pieces(clock: &DayClock, start_ms: i64, end_ms: i64) -> Vec<(DayNumber, i64)> {
    let Some((start_ms, end_ms)) = counted(start_ms, end_ms) else {
        return Vec::new();
    };
    clock
        .split_by_day(start_ms, end_ms)
        .into_iter()
        .map(|(day, from_ms, to_ms)| (day, to_ms - from_ms))
        .collect()
}

/// The per-slice pieces of `[start_ms, end_ms)` that count towards totals.
fn slice_pieces(start_ms: i64, end_ms: i64) -> Vec<(i32, i64)> {
    let Some((start_ms, end_ms)) = counted(start_ms, end_ms) else {
        return Vec::new();
    };
    let mut pieces = Vec::new();
    let mut from_ms = start_ms;
    while from_ms < end_ms {
        let slice = slice_of(from_ms);
        let to_ms = end_ms.min((i64::from(slice) + 1) * SLICE_MS);
        pieces.push((slice, to_ms - from_ms));
        from_ms = to_ms;
    }
    pieces
}

/// What one ingest adds to the rollups of one agent.
#[derive(Debug, Default)]
pub(crate) struct RollupDelta {
    pub(crate) apps: BTreeMap<(DayNumber, String), i64>,
    pub(crate) presence: BTreeMap<DayNumber, PresenceMs>,
    pub(crate) slice_apps: BTreeMap<(i32, String), i64>,
    pub(crate) slice_presence: BTreeMap<i32, PresenceMs>,
}

fn add_app(totals: &mut BTreeMap<(i32, String), i64>, unit: i32, app: &str, ms: i64) {
    let total = totals.entry((unit, app.to_owned())).or_default();
    *total = total.saturating_add(ms);
}

fn add_presence_ms(totals: &mut BTreeMap<i32, PresenceMs>, unit: i32, presence: Presence, ms: i64) {
    let slot = &mut totals.entry(unit).or_default()[presence_slot(presence)];
    *slot = slot.saturating_add(ms);
}

impl RollupDelta {
    pub(crate) fn add_usage(&mut self, clock: &DayClock, span: &UsageSpan) {
        for (day, ms) in day_pieces(clock, span.start_ms, span.end_ms) {
            add_app(&mut self.apps, day, &span.app, ms);
        }
        for (slice, ms) in slice_pieces(span.start_ms, span.end_ms) {
            add_app(&mut self.slice_apps, slice, &span.app, ms);
        }
    }

    pub(crate) fn add_activity(&mut self, clock: &DayClock, span: &ActivitySpan) {
        for (day, ms) in day_pieces(clock, span.start_ms, span.end_ms) {
            add_presence_ms(&mut self.presence, day, span.presence, ms);
        }
        for (slice, ms) in slice_pieces(span.start_ms, span.end_ms) {
            add_presence_ms(&mut self.slice_presence, slice, span.presence, ms);
        }
    }

    /// The same totals taken away: staged, it takes off what the records
    /// it was built from added (see `erase.rs`).
    pub(crate) fn negated(mut self) -> RollupDelta {
        let negate_presence = |totals: &mut PresenceMs| {
            for ms in totals.iter_mut() {
                *ms = ms.saturating_neg();
            }
        };
        for ms in self.apps.values_mut().chain(self.slice_apps.values_mut()) {
            *ms = ms.saturating_neg();
        }
        self.presence.values_mut().for_each(negate_presence);
        self.slice_presence.values_mut().for_each(negate_presence);
        self
    }
}

/// A total after a change: never below zero (an erasure takes away at
/// most what ingest added; a total is never shown negative).
fn floored(ms: i64) -> i64 {
    ms.max(0)
}

/// Presence totals after a change, each floored at zero.
fn floored_presence(totals: PresenceMs) -> PresenceMs {
    totals.map(floored)
}

/// Day totals regrouped from slice totals in `clock`'s days.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Regrouped {
    pub(crate) apps: BTreeMap<(DayNumber, String), i64>,
    pub(crate) presence: BTreeMap<DayNumber, PresenceMs>,
}

impl Regrouped {
    /// Adds one slice's app total.
    pub(crate) fn add_app_slice(&mut self, clock: &DayClock, slice: i32, app: &str, ms: i64) {
        let day = clock.day_of(i64::from(slice) * SLICE_MS);
        add_app(&mut self.apps, day, app, ms);
    }

    /// Adds one slice's presence totals.
    pub(crate) fn add_presence_slice(&mut self, clock: &DayClock, slice: i32, totals: PresenceMs) {
        let day = clock.day_of(i64::from(slice) * SLICE_MS);
        let sum = self.presence.entry(day).or_default();
        *sum = add_presence(*sum, totals);
    }
}

/// Stages `quarters` under `key` without the quarters back at zero (an
/// erasure took their time away), and deletes the key if none is left.
fn stage_quarters<const N: usize>(
    writes: &mut sled::Batch,
    key: Vec<u8>,
    mut quarters: Quarters<N>,
) {
    quarters.retain(|_, totals| totals.iter().any(|ms| *ms != 0));
    if quarters.is_empty() {
        writes.remove(key);
    } else {
        writes.insert(key, encode_quarters(&quarters));
    }
}

pub(crate) fn encode_app_total(active_ms: i64) -> [u8; APP_TOTAL_BYTES] {
    active_ms.to_be_bytes()
}

pub(crate) fn decode_app_total(value: &[u8]) -> Option<i64> {
    <[u8; APP_TOTAL_BYTES]>::try_from(value)
        .ok()
        .map(i64::from_be_bytes)
}

pub(crate) fn encode_presence(totals: PresenceMs) -> [u8; PRESENCE_BYTES] {
    let mut value = [0_u8; PRESENCE_BYTES];
    for (chunk, ms) in value.chunks_exact_mut(8).zip(totals) {
        chunk.copy_from_slice(&ms.to_be_bytes());
    }
    value
}

pub(crate) fn decode_presence(value: &[u8]) -> Option<PresenceMs> {
    if value.len() != PRESENCE_BYTES {
        return None;
    }
    let mut totals = [0_i64; 3];
    for (ms, chunk) in totals.iter_mut().zip(value.chunks_exact(8)) {
        *ms = i64::from_be_bytes(chunk.try_into().ok()?);
    }
    Some(totals)
}

/// Adds two presence totals, saturating.
pub(crate) fn add_presence(a: PresenceMs, b: PresenceMs) -> PresenceMs {
    [
        a[0].saturating_add(b[0]),
        a[1].saturating_add(b[1]),
        a[2].saturating_add(b[2]),
    ]
}

impl ConsoleStore {
    pub(super) fn stage_rollups(
        &self,
        writes: &mut sled::Batch,
        agent: AgentId,
        delta: &RollupDelta,
    ) -> Result<(), StoreError> {
        for ((day, app), added_ms) in &delta.apps {
            let key = app_total_key(Grain::Day, agent, *day, app);
            let old_ms = match self.get_data(&key)? {
                Some(value) => decode_app_total(&value).ok_or_else(|| {
                    self.corrupt(format!(
                        "the {app:?} total of agent {agent} on day {day} is not 8 bytes"
                    ))
                })?,
                None => 0,
            };
            match floored(old_ms.saturating_add(*added_ms)) {
                // Back at zero: an erasure took away all there was.
                0 => writes.remove(key),
                total_ms => writes.insert(key, &encode_app_total(total_ms)[..]),
            }
        }
        for (day, added) in &delta.presence {
            let key = presence_total_key(Grain::Day, agent, *day);
            let old = match self.get_data(&key)? {
                Some(value) => decode_presence(&value).ok_or_else(|| {
                    self.corrupt(format!(
                        "the presence totals of agent {agent} on day {day} are not 24 bytes"
                    ))
                })?,
                None => [0; 3],
            };
            match floored_presence(add_presence(old, *added)) {
                [0, 0, 0] => writes.remove(key),
                totals => writes.insert(key, &encode_presence(totals)[..]),
            }
        }
        // Slices: one value per (UTC day, app) and per UTC day.
        let mut app_days: BTreeMap<(i32, &str), Quarters<1>> = BTreeMap::new();
        for ((slice, app), added_ms) in &delta.slice_apps {
            let (day, quarter) = split_slice(*slice);
            let total = &mut app_days
                .entry((day, app))
                .or_default()
                .entry(quarter)
                .or_default()[0];
            *total = total.saturating_add(*added_ms);
        }
        for ((day, app), added) in app_days {
            let key = app_total_key(Grain::Slice, agent, day, app);
            let mut quarters = self.stored_quarters::<1>(&key, agent)?;
            for (quarter, [ms]) in added {
                let total = &mut quarters.entry(quarter).or_default()[0];
                *total = floored(total.saturating_add(ms));
            }
            stage_quarters(writes, key, quarters);
        }
        let mut presence_days: BTreeMap<i32, Quarters<3>> = BTreeMap::new();
        for (slice, added) in &delta.slice_presence {
            let (day, quarter) = split_slice(*slice);
            let totals = presence_days
                .entry(day)
                .or_default()
                .entry(quarter)
                .or_default();
            *totals = add_presence(*totals, *added);
        }
        for (day, added) in presence_days {
            let key = presence_total_key(Grain::Slice, agent, day);
            let mut quarters = self.stored_quarters::<3>(&key, agent)?;
            for (quarter, totals) in added {
                let sum = quarters.entry(quarter).or_default();
                *sum = floored_presence(add_presence(*sum, totals));
            }
            stage_quarters(writes, key, quarters);
        }
        Ok(())
    }

    /// The quarters stored under `key` (none if there is no value).
    fn stored_quarters<const N: usize>(
        &self,
        key: &[u8],
        agent: AgentId,
    ) -> Result<Quarters<N>, StoreError> {
        match self.get_data(key)? {
            Some(value) => decode_quarters(&value).ok_or_else(|| {
                self.corrupt(format!(
                    "a quarter-hour total of agent {agent} is malformed"
                ))
            }),
            None => Ok(Quarters::new()),
        }
    }

    /// Replaces `agent`'s day totals with its slice totals regrouped in
    /// `clock`'s days, in one atomic batch. The caller holds the writer
    /// lock.
    pub(super) fn regroup_agent_days(
        &self,
        clock: &DayClock,
        agent: AgentId,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut regrouped = Regrouped::default();
        for prefix in [APP_DAY_PREFIX, PRESENCE_DAY_PREFIX] {
            for item in self.data.scan_prefix(agent_prefix(prefix, agent)) {
                let (key, _) = item.map_err(|source| self.sled_error(source))?;
                batch.remove(key);
            }
        }
        for item in self.data.scan_prefix(agent_prefix(APP_SLICE_PREFIX, agent)) {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            let (_, day, app) = parse_app_total_key(Grain::Slice, &key).ok_or_else(|| {
                self.corrupt(format!("an app-slice key of agent {agent} is malformed"))
            })?;
            let quarters = decode_quarters::<1>(&value).ok_or_else(|| {
                self.corrupt(format!("an app-slice total of agent {agent} is malformed"))
            })?;
            for (quarter, [ms]) in quarters {
                regrouped.add_app_slice(clock, slice_at(day, quarter), &app, ms);
            }
        }
        for item in self
            .data
            .scan_prefix(agent_prefix(PRESENCE_SLICE_PREFIX, agent))
        {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            let (_, day) = parse_presence_total_key(Grain::Slice, &key).ok_or_else(|| {
                self.corrupt(format!(
                    "a presence-slice key of agent {agent} is malformed"
                ))
            })?;
            let quarters = decode_quarters::<3>(&value).ok_or_else(|| {
                self.corrupt(format!(
                    "a presence-slice total of agent {agent} is malformed"
                ))
            })?;
            for (quarter, totals) in quarters {
                regrouped.add_presence_slice(clock, slice_at(day, quarter), totals);
            }
        }
        for ((day, app), ms) in &regrouped.apps {
            batch.insert(
                app_total_key(Grain::Day, agent, *day, app),
                &encode_app_total(*ms)[..],
            );
        }
        for (day, totals) in &regrouped.presence {
            batch.insert(
                presence_total_key(Grain::Day, agent, *day),
                &encode_presence(*totals)[..],
            );
        }
        self.data
            .apply_batch(batch)
            .map_err(|source| self.sled_error(source))
    }

    /// Every agent with slice totals, in id order.
    pub(super) fn agents_with_slices(&self) -> Result<Vec<AgentId>, StoreError> {
        let mut agents = std::collections::BTreeSet::new();
        for prefix in [APP_SLICE_PREFIX, PRESENCE_SLICE_PREFIX] {
            self.for_each_agent(prefix, None, |agent| {
                agents.insert(agent);
                Ok(())
            })?;
        }
        Ok(agents.into_iter().collect())
    }

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

    pub(super) fn visit_app_days(
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

    pub(super) fn visit_presence_days(
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Europe/Paris, daylight saving included.
    fn paris() -> &'static DayClock {
        static PARIS: std::sync::LazyLock<DayClock> = std::sync::LazyLock::new(|| {
            DayClock::from_name("Europe/Paris").expect("Europe/Paris is in the tz database")
        });
        &PARIS
    }
    /// 2026-03-02T22:30:00Z, 23:30 in Paris.
    const LATE_MS: i64 = 1_772_490_600_000;

    #[test]
    fn usage_across_local_midnight_splits_into_two_days() {
        let mut delta = RollupDelta::default();
        delta.add_usage(
            paris(),
            &UsageSpan {
                agent: AgentId::nil(),
                start_ms: LATE_MS,
                end_ms: LATE_MS + 2 * 3_600_000,
                app: "Firefox".into(),
                title: None,
            },
        );
        let day = paris().day_of(LATE_MS);
        let totals: Vec<_> = delta.apps.into_iter().collect();
        assert_eq!(
            totals,
            vec![
                ((day, "Firefox".to_owned()), 1_800_000),
                ((day + 1, "Firefox".to_owned()), 5_400_000)
            ]
        );
    }

    #[test]
    fn bogus_spans_stay_bounded() {
        let mut delta = RollupDelta::default();
        let span = |start_ms, end_ms| ActivitySpan {
            agent: AgentId::nil(),
            start_ms,
            end_ms,
            presence: Presence::Idle,
            user: "u".into(),
        };
        delta.add_activity(paris(), &span(i64::MIN, i64::MAX));
        delta.add_activity(paris(), &span(10, 5));
        assert!(delta.presence.is_empty());
        delta.add_activity(paris(), &span(0, 1_000 * DAY_MS));
        assert_eq!(delta.presence.len(), 367);
        let total: i64 = delta.presence.values().map(|ms| ms[1]).sum();
        assert_eq!(total, MAX_ROLLUP_SPAN_MS);
        let slices: i64 = delta.slice_presence.values().map(|ms| ms[1]).sum();
        assert_eq!(slices, MAX_ROLLUP_SPAN_MS);
    }

    #[test]
    fn slices_cut_at_quarter_hours_of_utc() {
        // 10:05 to 10:50 UTC: 10 min, 15, 15, 5.
        let start_ms = 1_772_618_700_000;
        let pieces = slice_pieces(start_ms, start_ms + 45 * 60_000);
        let lengths: Vec<i64> = pieces.iter().map(|(_, ms)| ms / 60_000).collect();
        assert_eq!(lengths, [10, 15, 15, 5]);
        assert_eq!(pieces[0].0, slice_of(start_ms));
        assert_eq!(pieces[3].0, pieces[0].0 + 3);
        assert_eq!(slice_of(-1), -1);
    }

    #[test]
    fn day_totals_regrouped_from_slices_equal_day_totals_made_directly() {
        // Spans every 37 minutes for 40 days around the Paris spring change,
        // each 29 minutes long, alternating apps and presence.
        let first_ms = 1_773_878_400_000; // 2026-03-19T00:00:00Z
        let spans: Vec<(i64, i64)> = (0..40 * 24 * 60 / 37)
            .map(|n| {
                let start_ms = first_ms + n * 37 * 60_000;
                (start_ms, start_ms + 29 * 60_000)
            })
            .collect();
        let utc = DayClock::utc();
        for name in [
            "Europe/Paris",
            "America/St_Johns",
            "Asia/Kathmandu",
            "Pacific/Chatham",
        ] {
            let clock = DayClock::from_name(name).expect("zone");
            let mut direct = RollupDelta::default();
            let mut built_in_utc = RollupDelta::default();
            for (n, (start_ms, end_ms)) in spans.iter().enumerate() {
                let usage = UsageSpan {
                    agent: AgentId::nil(),
                    start_ms: *start_ms,
                    end_ms: *end_ms,
                    app: ["Firefox", "LibreOffice"][n % 2].into(),
                    title: None,
                };
                let activity = ActivitySpan {
                    agent: AgentId::nil(),
                    start_ms: *start_ms,
                    end_ms: *end_ms,
                    presence: [Presence::Active, Presence::Idle, Presence::Locked][n % 3],
                    user: "u".into(),
                };
                for (delta, by) in [(&mut direct, &clock), (&mut built_in_utc, &utc)] {
                    delta.add_usage(by, &usage);
                    delta.add_activity(by, &activity);
                }
            }
            let mut regrouped = Regrouped::default();
            for ((slice, app), ms) in &built_in_utc.slice_apps {
                regrouped.add_app_slice(&clock, *slice, app, *ms);
            }
            for (slice, totals) in &built_in_utc.slice_presence {
                regrouped.add_presence_slice(&clock, *slice, *totals);
            }
            assert_eq!(regrouped.apps, direct.apps, "{name}");
            assert_eq!(regrouped.presence, direct.presence, "{name}");
        }
    }

    #[test]
    fn quarters_are_sparse_ordered_and_checked() {
        let mut quarters = Quarters::<3>::new();
        quarters.insert(0, [1, 2, 3]);
        quarters.insert(95, [i64::MAX, 0, -1]);
        let value = encode_quarters(&quarters);
        assert_eq!(value.len(), 2 * 25);
        assert_eq!(decode_quarters::<3>(&value), Some(quarters));
        assert_eq!(decode_quarters::<3>(&value[..24]), None);
        let mut past = value.clone();
        past[25] = 96;
        assert_eq!(decode_quarters::<3>(&past), None);
        let mut unordered = value;
        unordered[25] = 0;
        assert_eq!(decode_quarters::<3>(&unordered), None);
        assert_eq!(decode_quarters::<1>(&[]), Some(Quarters::new()));
        for slice in [-97, -1, 0, 95, 96, 1_000_000] {
            let (day, quarter) = split_slice(slice);
            assert_eq!(slice_at(day, quarter), slice);
        }
    }

    #[test]
    fn values_round_trip() {
        assert_eq!(decode_app_total(&encode_app_total(-3)), Some(-3));
        assert_eq!(decode_app_total(&[1, 2]), None);
        let totals = [1, i64::MAX, -1];
        assert_eq!(decode_presence(&encode_presence(totals)), Some(totals));
        assert_eq!(decode_presence(&[0; 23]), None);
        assert_eq!(add_presence([1, i64::MAX, 0], [1, 1, 2]), [2, i64::MAX, 2]);
    }
}
