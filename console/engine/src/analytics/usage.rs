//! Application usage: per (agent, day, app) rollups split at local midnight,
//! and the summaries dashboards show (total, top apps, categories, days).

use std::collections::BTreeMap;

use protocol::UnixMillis;

use super::Range;
use crate::model::{AgentId, AppDayTotal, DayClock, DayNumber, UsageSpan};

/// What a usage dashboard shows, for one agent or the whole organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsageSummary {
    /// Time with an application in front and the user active.
    pub total_active_ms: i64,
    /// Every application, largest first, then by name.
    pub top_apps: Vec<(String, i64)>,
    /// Every category, largest first, then by name.
    pub by_category: Vec<(String, i64)>,
    /// Every agent, largest first, then by id (organisation views).
    pub by_agent: Vec<(AgentId, i64)>,
    /// Days with usage, oldest first; see [`UsageSummary::daily_trend`]
    /// for a series with the empty days filled in.
    pub per_day: Vec<(DayNumber, i64)>,
}

impl UsageSummary {
    /// One entry per local day of `range`, oldest first, with 0 for days
    /// without usage: the series a trend chart plots.
    pub fn daily_trend(&self, range: Range, clock: &DayClock) -> Vec<(DayNumber, i64)> {
        let by_day: BTreeMap<DayNumber, i64> = self.per_day.iter().copied().collect();
        range
            .days(clock)
            .map(|day| (day, by_day.get(&day).copied().unwrap_or(0)))
            .collect()
    }
}

/// Active milliseconds per (agent, day, app), each span split at local
/// midnight; sorted by agent, day, app. Spans with no length are skipped.
pub fn rollup(spans: &[UsageSpan], clock: &DayClock) -> Vec<AppDayTotal> {
    rollup_within(
        spans,
        clock,
        Range::custom(UnixMillis::MIN, UnixMillis::MAX),
    )
}

/// [`rollup`] of the parts of `spans` inside `range`.
fn rollup_within(spans: &[UsageSpan], clock: &DayClock, range: Range) -> Vec<AppDayTotal> {
    let mut totals: BTreeMap<(AgentId, DayNumber, &str), i64> = BTreeMap::new();
    for span in spans {
        let Some((start_ms, end_ms)) = range.clip(span.start_ms, span.end_ms) else {
            continue;
        };
        for (day, from_ms, to_ms) in clock.split_by_day(start_ms, end_ms) {
            *totals.entry((span.agent, day, &span.app)).or_default() += to_ms - from_ms;
        }
    }
    totals
        .into_iter()
        .map(|((agent, day, app), active_ms)| AppDayTotal {
            agent,
            day,
            app: app.to_owned(),
            active_ms,
        })
        .collect()
}

/// Sums rollups into a summary. Pass one agent's rollups for a person's
/// dashboard, every agent's for the organisation. `category_of` is asked
/// once per application.
pub fn usage_summary(totals: &[AppDayTotal], category_of: &dyn Fn(&str) -> String) -> UsageSummary {
    let mut by_app: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_agent: BTreeMap<AgentId, i64> = BTreeMap::new();
    let mut by_day: BTreeMap<DayNumber, i64> = BTreeMap::new();
    let mut total_active_ms = 0;
    for total in totals.iter().filter(|total| total.active_ms > 0) {
        total_active_ms += total.active_ms;
        *by_app.entry(&total.app).or_default() += total.active_ms;
        *by_agent.entry(total.agent).or_default() += total.active_ms;
        *by_day.entry(total.day).or_default() += total.active_ms;
    }
    let mut by_category: BTreeMap<String, i64> = BTreeMap::new();
    for (app, active_ms) in &by_app {
        *by_category.entry(category_of(app)).or_default() += active_ms;
    }
    let mut top_apps: Vec<(String, i64)> = by_app
        .into_iter()
        .map(|(app, ms)| (app.to_owned(), ms))
        .collect();
    let mut by_category: Vec<(String, i64)> = by_category.into_iter().collect();
    let mut by_agent: Vec<(AgentId, i64)> = by_agent.into_iter().collect();
    rank(&mut top_apps);
    rank(&mut by_category);
    rank(&mut by_agent);
    UsageSummary {
        total_active_ms,
        top_apps,
        by_category,
        by_agent,
        per_day: by_day.into_iter().collect(),
    }
}

/// A summary of raw spans clipped to `range`: for windows that are not
/// whole days (the last 24 h), where day rollups would overcount.
pub fn usage_summary_from_spans(
    spans: &[UsageSpan],
    range: Range,
    clock: &DayClock,
    category_of: &dyn Fn(&str) -> String,
) -> UsageSummary {
    usage_summary(&rollup_within(spans, clock, range), category_of)
}

/// The parts of one workstation's usage spans that fall within the
/// presence spans `theirs` accepts (a person's OS accounts): usage spans
/// carry no user, the presence spans say who was signed in. Both lists of
/// one workstation; the result is in start order.
pub fn usage_of(
    usage: &[UsageSpan],
    activity: &[crate::model::ActivitySpan],
    theirs: &dyn Fn(&str) -> bool,
) -> Vec<UsageSpan> {
    // Merged, so each usage span meets each instant once.
    let theirs = super::Intervals::merge(
        activity
            .iter()
            .filter(|span| span.start_ms < span.end_ms && theirs(&span.user))
            .map(|span| (span.start_ms, span.end_ms)),
    );
    let mut pieces = Vec::new();
    for span in usage {
        for (from_ms, to_ms) in theirs
            .from(span.start_ms)
            .iter()
            .take_while(|(from_ms, _)| *from_ms < span.end_ms)
        {
            let (start_ms, end_ms) = (span.start_ms.max(*from_ms), span.end_ms.min(*to_ms));
            if start_ms < end_ms {
                let mut piece = span.clone();
                (piece.start_ms, piece.end_ms) = (start_ms, end_ms);
                pieces.push(piece);
            }
        }
    }
    pieces.sort_by_key(|piece| piece.start_ms);
    pieces
}

/// Change from `previous_ms` to `current_ms` in percent (`+25.0` is a
/// quarter more); `None` when there was nothing before to compare with.
pub fn change_pct(current_ms: i64, previous_ms: i64) -> Option<f64> {
    (previous_ms > 0).then(|| (current_ms - previous_ms) as f64 / previous_ms as f64 * 100.0)
}

/// Sorts `(name, value)` pairs largest value first, then by name, the order
/// every ranking here uses.
fn rank<K: Ord>(pairs: &mut [(K, i64)]) {
    pairs.sort_by(|(a_name, a_ms), (b_name, b_ms)| b_ms.cmp(a_ms).then_with(|| a_name.cmp(b_name)));
}
