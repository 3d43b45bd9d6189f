//! The time window a view covers: last 24 h, last n local days, or custom.

use protocol::UnixMillis;

use crate::model::{DayClock, DayNumber, DAY_MS};
use crate::validate::{EARLIEST_MS, MAX_AHEAD_MS};

/// A half-open window `[from_ms, to_ms)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range {
    pub from_ms: UnixMillis,
    pub to_ms: UnixMillis,
}

impl Range {
    /// `[from_ms, to_ms)`; bounds given the wrong way round are swapped.
    pub fn custom(from_ms: UnixMillis, to_ms: UnixMillis) -> Range {
        Range {
            from_ms: from_ms.min(to_ms),
            to_ms: from_ms.max(to_ms),
        }
    }

    /// The 24 hours before `now_ms` (not whole days).
    pub fn last_24h(now_ms: UnixMillis) -> Range {
        Range {
            from_ms: now_ms.saturating_sub(DAY_MS),
            to_ms: now_ms,
        }
    }

    /// `days` whole local days ending with today: from local midnight
    /// `days - 1` days ago to next local midnight. `days` of 0 counts as 1
    /// (today). 7 and 30 are the dashboards' "7 d" and "30 d".
    pub fn last_days(now_ms: UnixMillis, clock: &DayClock, days: u16) -> Range {
        let today = clock.day_of(now_ms);
        let first = today.saturating_sub(i32::from(days.max(1)) - 1);
        Range {
            from_ms: clock.day_start_ms(first),
            to_ms: clock.day_start_ms(today.saturating_add(1)),
        }
    }

    /// The part of this window where stored records can be: from
    /// [`EARLIEST_MS`] to a day past `now_ms` plus the most a record may
    /// be ahead of it ([`MAX_AHEAD_MS`]). Whatever a person asks for, the
    /// work on it stays bounded (tens of years, not billions).
    pub fn within_records(self, now_ms: UnixMillis) -> Range {
        let latest_ms = now_ms.saturating_add(MAX_AHEAD_MS).saturating_add(DAY_MS);
        let from_ms = self.from_ms.clamp(EARLIEST_MS, latest_ms);
        Range {
            from_ms,
            to_ms: self.to_ms.clamp(from_ms, latest_ms),
        }
    }

    /// Length in milliseconds.
    pub fn duration_ms(self) -> i64 {
        self.to_ms.saturating_sub(self.from_ms)
    }

    /// The window of the same length just before this one, for "vs previous
    /// period" trends.
    pub fn previous(self) -> Range {
        Range {
            from_ms: self.from_ms.saturating_sub(self.duration_ms()),
            to_ms: self.from_ms,
        }
    }

    /// Whether `at_ms` falls in the window.
    pub fn contains(self, at_ms: UnixMillis) -> bool {
        self.from_ms <= at_ms && at_ms < self.to_ms
    }

    /// The part of `[start_ms, end_ms)` inside the window, if not empty.
    pub fn clip(
        self,
        start_ms: UnixMillis,
        end_ms: UnixMillis,
    ) -> Option<(UnixMillis, UnixMillis)> {
        let from_ms = start_ms.max(self.from_ms);
        let to_ms = end_ms.min(self.to_ms);
        (from_ms < to_ms).then_some((from_ms, to_ms))
    }

    /// Every local day the window touches, as `first..last + 1` (empty for
    /// an empty window).
    pub fn days(self, clock: &DayClock) -> std::ops::Range<DayNumber> {
        let first = clock.day_of(self.from_ms);
        if self.from_ms >= self.to_ms {
            return first..first;
        }
        first..clock.day_of(self.to_ms - 1).saturating_add(1)
    }
}
