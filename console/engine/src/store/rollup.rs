//! Day rollups: what one ingest adds to the per (agent, day, app) and
//! per (agent, day) presence totals and their value encodings (pure), and
//! the store's staging of them and the day-total queries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    ActivitySpan, AgentId, AppDayTotal, DayClock, DayNumber, Presence, UsageSpan, DAY_MS,
};

use super::keys::{
    app_day_key, day_range, parse_app_day_key, parse_presence_day_key, presence_day_key,
    APP_DAY_PREFIX, PRESENCE_DAY_PREFIX,
};
use super::{ConsoleStore, StoreError};

/// Spans starting or ending further than this from 1970 (about 31,700
/// years) are kept raw but not rolled up: their day numbers are nonsense.
const MAX_ROLLUP_ABS_MS: i64 = 1_000_000_000_000_000;
/// A span counts towards day totals for at most this long from its start,
/// so one bogus span cannot add millions of day keys.
pub(crate) const MAX_ROLLUP_SPAN_MS: i64 = 366 * DAY_MS;

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

/// The per-day pieces of `[start_ms, end_ms)` that count towards totals.
fn day_pieces(clock: DayClock, start_ms: i64, end_ms: i64) -> Vec<(DayNumber, i64)> {
    if start_ms.unsigned_abs() > MAX_ROLLUP_ABS_MS.unsigned_abs()
        || end_ms.unsigned_abs() > MAX_ROLLUP_ABS_MS.unsigned_abs()
    {
        return Vec::new();
    }
    let end_ms = end_ms.min(start_ms + MAX_ROLLUP_SPAN_MS);
    clock
        .split_by_day(start_ms, end_ms)
        .into_iter()
        .map(|(day, from_ms, to_ms)| (day, to_ms - from_ms))
        .collect()
}

/// What one ingest adds to the rollups of one agent.
#[derive(Debug, Default)]
pub(crate) struct RollupDelta {
    pub(crate) apps: BTreeMap<(DayNumber, String), i64>,
    pub(crate) presence: BTreeMap<DayNumber, PresenceMs>,
}

impl RollupDelta {
    pub(crate) fn add_usage(&mut self, clock: DayClock, span: &UsageSpan) {
        for (day, ms) in day_pieces(clock, span.start_ms, span.end_ms) {
            let total = self.apps.entry((day, span.app.clone())).or_default();
            *total = total.saturating_add(ms);
        }
    }

    pub(crate) fn add_activity(&mut self, clock: DayClock, span: &ActivitySpan) {
        for (day, ms) in day_pieces(clock, span.start_ms, span.end_ms) {
            let totals = self.presence.entry(day).or_default();
            let slot = &mut totals[presence_slot(span.presence)];
            *slot = slot.saturating_add(ms);
        }
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

    const PARIS: DayClock = DayClock {
        utc_offset_secs: 3600,
    };
    /// 2026-03-02T22:30:00Z, 23:30 in Paris.
    const LATE_MS: i64 = 1_772_490_600_000;

    #[test]
    fn usage_across_local_midnight_splits_into_two_days() {
        let mut delta = RollupDelta::default();
        delta.add_usage(
            PARIS,
            &UsageSpan {
                agent: AgentId::nil(),
                start_ms: LATE_MS,
                end_ms: LATE_MS + 2 * 3_600_000,
                app: "Firefox".into(),
                title: None,
            },
        );
        let day = PARIS.day_of(LATE_MS);
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
        delta.add_activity(PARIS, &span(i64::MIN, i64::MAX));
        delta.add_activity(PARIS, &span(10, 5));
        assert!(delta.presence.is_empty());
        delta.add_activity(PARIS, &span(0, 1_000 * DAY_MS));
        assert_eq!(delta.presence.len(), 367);
        let total: i64 = delta.presence.values().map(|ms| ms[1]).sum();
        assert_eq!(total, MAX_ROLLUP_SPAN_MS);
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
