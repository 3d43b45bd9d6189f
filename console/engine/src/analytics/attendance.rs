//! Attendance per person and local day: arrival, departure, active, idle,
//! locked, net and effective time, and the work sessions of the day.
//!
//! Definitions (shown to managers as such):
//! - **arrival**: the earlier of the first active moment and the first login
//!   of the day; a day with neither (only idle or locked) has no arrival.
//! - **departure**: the later of the end of the last active span and the
//!   last logout of the day.
//! - **net** = active: time with keyboard or mouse input within the agent's
//!   idle threshold. Idle and locked time are reported next to it, as idle
//!   and locked, and are never subtracted from anything as "not working".
//! - **effective**: the present span, departure − arrival, minus locked time
//!   and minus time nothing was recorded (logged out, machine off or
//!   suspended); that is active + idle time between arrival and departure.
//! - **sessions**: runs of active time; a new one starts after more than
//!   [`SESSION_GAP_MS`] without activity, or at a login or logout between
//!   two active spans.
//!
//! Everything is split at local midnight: a night shift gives two rows.

use std::collections::BTreeMap;

use protocol::UnixMillis;

use super::{Range, MINUTE_MS};
use crate::model::{
    ActivitySpan, AgentId, DayClock, DayNumber, Presence, SessionEvent, SessionKind,
};

/// More than this without activity ends a work session.
pub const SESSION_GAP_MS: i64 = 30 * MINUTE_MS;

/// One run of activity within a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkSession {
    /// Start of its first active span.
    pub start_ms: UnixMillis,
    /// End of its last active span.
    pub end_ms: UnixMillis,
    /// Active time in it (short idle pauses inside are not counted).
    pub active_ms: i64,
}

/// One person's day on one workstation. See the module documentation for
/// the definitions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttendanceDay {
    pub agent: AgentId,
    pub user: String,
    pub day: DayNumber,
    pub arrival_ms: Option<UnixMillis>,
    pub departure_ms: Option<UnixMillis>,
    pub active_ms: i64,
    pub idle_ms: i64,
    pub locked_ms: i64,
    /// Equal to `active_ms`; kept as its own column for the reports.
    pub net_ms: i64,
    pub effective_ms: i64,
    /// Work sessions, in time order.
    pub sessions: Vec<WorkSession>,
}

/// A piece of an activity span that lies within one day.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start_ms: UnixMillis,
    end_ms: UnixMillis,
    presence: Presence,
}

/// Logins and logouts of one person's day.
#[derive(Debug, Default)]
struct Marks {
    first_login_ms: Option<UnixMillis>,
    last_logout_ms: Option<UnixMillis>,
    /// Every login and logout instant.
    all_ms: Vec<UnixMillis>,
}

type DayKey<'a> = (AgentId, &'a str, DayNumber);

/// Attendance rows for every (agent, user, local day) with at least one
/// activity span inside `range`, sorted by agent, user, day. Spans are
/// clipped to `range` and split at local midnight; logins and logouts only
/// count on days with activity.
pub fn attendance(
    activity: &[ActivitySpan],
    sessions: &[SessionEvent],
    clock: &DayClock,
    range: Range,
) -> Vec<AttendanceDay> {
    let mut days: BTreeMap<DayKey<'_>, Vec<Piece>> = BTreeMap::new();
    for span in activity {
        let Some((start_ms, end_ms)) = range.clip(span.start_ms, span.end_ms) else {
            continue;
        };
        for (day, from_ms, to_ms) in clock.split_by_day(start_ms, end_ms) {
            days.entry((span.agent, &span.user, day))
                .or_default()
                .push(Piece {
                    start_ms: from_ms,
                    end_ms: to_ms,
                    presence: span.presence,
                });
        }
    }
    let mut marks: BTreeMap<DayKey<'_>, Marks> = BTreeMap::new();
    for event in sessions.iter().filter(|event| range.contains(event.at_ms)) {
        let key = (event.agent, event.user.as_str(), clock.day_of(event.at_ms));
        match event.kind {
            SessionKind::Login => {
                let day = marks.entry(key).or_default();
                day.first_login_ms = earliest(day.first_login_ms, Some(event.at_ms));
                day.all_ms.push(event.at_ms);
            }
            SessionKind::Logout => {
                let day = marks.entry(key).or_default();
                day.last_logout_ms = latest(day.last_logout_ms, Some(event.at_ms));
                day.all_ms.push(event.at_ms);
            }
            _ => {}
        }
    }
    let no_marks = Marks::default();
    days.into_iter()
        .map(|((agent, user, day), mut pieces)| {
            pieces.sort_by_key(|piece| (piece.start_ms, piece.end_ms));
            let marks = marks.get(&(agent, user, day)).unwrap_or(&no_marks);
            day_row(agent, user, day, &pieces, marks)
        })
        .collect()
}

/// One row from the day's pieces (in time order) and its logins/logouts.
fn day_row(
    agent: AgentId,
    user: &str,
    day: DayNumber,
    pieces: &[Piece],
    marks: &Marks,
) -> AttendanceDay {
    let sum = |presence: Presence| -> i64 {
        pieces
            .iter()
            .filter(|piece| piece.presence == presence)
            .map(|piece| piece.end_ms.saturating_sub(piece.start_ms))
            .sum()
    };
    let active = || {
        pieces
            .iter()
            .filter(|piece| piece.presence == Presence::Active)
    };
    let arrival_ms = earliest(
        active().map(|piece| piece.start_ms).min(),
        marks.first_login_ms,
    );
    let departure_ms = latest(
        active().map(|piece| piece.end_ms).max(),
        marks.last_logout_ms,
    );
    let effective_ms = match (arrival_ms, departure_ms) {
        (Some(arrival_ms), Some(departure_ms)) => pieces
            .iter()
            .filter(|piece| piece.presence != Presence::Locked)
            .map(|piece| (piece.end_ms.min(departure_ms) - piece.start_ms.max(arrival_ms)).max(0))
            .sum(),
        _ => 0,
    };
    let active_ms = sum(Presence::Active);
    AttendanceDay {
        agent,
        user: user.to_owned(),
        day,
        arrival_ms,
        departure_ms,
        active_ms,
        idle_ms: sum(Presence::Idle),
        locked_ms: sum(Presence::Locked),
        net_ms: active_ms,
        effective_ms,
        sessions: work_sessions(active(), &marks.all_ms),
    }
}

/// Groups active pieces (in time order) into sessions.
fn work_sessions<'a>(
    active: impl Iterator<Item = &'a Piece>,
    marks_ms: &[UnixMillis],
) -> Vec<WorkSession> {
    let mut sessions: Vec<WorkSession> = Vec::new();
    for piece in active {
        let length_ms = piece.end_ms.saturating_sub(piece.start_ms);
        match sessions.last_mut() {
            Some(open)
                if piece.start_ms.saturating_sub(open.end_ms) <= SESSION_GAP_MS
                    && !marks_ms
                        .iter()
                        .any(|&at_ms| open.end_ms <= at_ms && at_ms <= piece.start_ms) =>
            {
                open.end_ms = open.end_ms.max(piece.end_ms);
                open.active_ms += length_ms;
            }
            _ => sessions.push(WorkSession {
                start_ms: piece.start_ms,
                end_ms: piece.end_ms,
                active_ms: length_ms,
            }),
        }
    }
    sessions
}

fn earliest(a: Option<UnixMillis>, b: Option<UnixMillis>) -> Option<UnixMillis> {
    a.into_iter().chain(b).min()
}

fn latest(a: Option<UnixMillis>, b: Option<UnixMillis>) -> Option<UnixMillis> {
    a.into_iter().chain(b).max()
}
