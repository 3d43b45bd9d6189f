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
//!
//! Rows are per [`Who`]: a person with every workstation they used that
//! day (time on two workstations at once counts once, as the busiest
//! state: active over idle over locked), or an OS account on one
//! workstation that no person holds yet.

use std::collections::BTreeMap;

use protocol::UnixMillis;

use super::{Range, MINUTE_MS};
use crate::model::{
    ActivitySpan, AgentId, DayClock, DayNumber, Presence, SessionEvent, SessionKind,
};
use crate::people::Who;

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

/// One person's day. See the module documentation for the definitions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttendanceDay {
    pub who: Who,
    /// The workstations with activity that day, sorted.
    pub workstations: Vec<AgentId>,
    /// The OS accounts with activity that day, sorted.
    pub users: Vec<String>,
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

type DayKey = (Who, DayNumber);

/// What one row was made of.
#[derive(Debug, Default)]
struct DayParts<'a> {
    pieces: Vec<Piece>,
    workstations: std::collections::BTreeSet<AgentId>,
    users: std::collections::BTreeSet<&'a str>,
}

/// Attendance of each workstation's own accounts: one row per (agent,
/// user, local day), as [`attendance_by`] with no person known.
pub fn attendance(
    activity: &[ActivitySpan],
    sessions: &[SessionEvent],
    clock: &DayClock,
    range: Range,
) -> Vec<AttendanceDay> {
    attendance_by(activity, sessions, clock, range, &|agent, user| {
        Who::Account {
            agent,
            user: user.to_owned(),
        }
    })
}

/// Attendance rows for every (who, local day) with at least one activity
/// span inside `range`, sorted by who then day; `who_of` says whose a
/// workstation's account is. Spans are clipped to `range` and split at
/// local midnight; logins and logouts only count on days with activity.
pub fn attendance_by<'a>(
    activity: &'a [ActivitySpan],
    sessions: &'a [SessionEvent],
    clock: &DayClock,
    range: Range,
    who_of: &dyn Fn(AgentId, &str) -> Who,
) -> Vec<AttendanceDay> {
    let mut whose: BTreeMap<(AgentId, &'a str), Who> = BTreeMap::new();
    let mut who = |agent: AgentId, user: &'a str| -> Who {
        whose
            .entry((agent, user))
            .or_insert_with(|| who_of(agent, user))
            .clone()
    };
    let mut days: BTreeMap<DayKey, DayParts<'a>> = BTreeMap::new();
    for span in activity {
        let Some((start_ms, end_ms)) = range.clip(span.start_ms, span.end_ms) else {
            continue;
        };
        let owner = who(span.agent, &span.user);
        for (day, from_ms, to_ms) in clock.split_by_day(start_ms, end_ms) {
            let parts = days.entry((owner.clone(), day)).or_default();
            parts.workstations.insert(span.agent);
            parts.users.insert(&span.user);
            parts.pieces.push(Piece {
                start_ms: from_ms,
                end_ms: to_ms,
                presence: span.presence,
            });
        }
    }
    let mut marks: BTreeMap<DayKey, Marks> = BTreeMap::new();
    for event in sessions.iter().filter(|event| range.contains(event.at_ms)) {
        let key = (who(event.agent, &event.user), clock.day_of(event.at_ms));
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
        .map(|((who, day), parts)| {
            let marks = marks.get(&(who.clone(), day)).unwrap_or(&no_marks);
            let pieces = if parts.workstations.len() > 1 {
                flatten(parts.pieces)
            } else {
                let mut pieces = parts.pieces;
                pieces.sort_by_key(|piece| (piece.start_ms, piece.end_ms));
                pieces
            };
            let mut row = day_row(who, day, &pieces, marks);
            row.workstations = parts.workstations.into_iter().collect();
            row.users = parts.users.into_iter().map(str::to_owned).collect();
            row
        })
        .collect()
}

/// Pieces of several workstations as one time line in time order: where
/// they overlap, the busiest state holds (active, then idle, then locked).
/// One sweep over the sorted boundaries, counting open pieces per state.
fn flatten(pieces: Vec<Piece>) -> Vec<Piece> {
    const BY_RANK: [Presence; 3] = [Presence::Locked, Presence::Idle, Presence::Active];
    let rank = |presence: Presence| match presence {
        Presence::Locked => 0usize,
        Presence::Idle => 1,
        Presence::Active => 2,
    };
    let mut edges: Vec<(UnixMillis, i8, usize)> = Vec::with_capacity(pieces.len() * 2);
    for piece in pieces.iter().filter(|piece| piece.start_ms < piece.end_ms) {
        edges.push((piece.start_ms, 1, rank(piece.presence)));
        edges.push((piece.end_ms, -1, rank(piece.presence)));
    }
    edges.sort_unstable();
    let mut open = [0i64; 3];
    let mut flat: Vec<Piece> = Vec::new();
    let mut index = 0;
    while index < edges.len() {
        let at_ms = edges[index].0;
        while index < edges.len() && edges[index].0 == at_ms {
            let (_, step, slot) = edges[index];
            open[slot] += i64::from(step);
            index += 1;
        }
        let Some(next_ms) = edges.get(index).map(|edge| edge.0) else {
            break;
        };
        let Some(slot) = (0..3).rev().find(|slot| open[*slot] > 0) else {
            continue;
        };
        let presence = BY_RANK[slot];
        match flat.last_mut() {
            Some(last) if last.end_ms == at_ms && last.presence == presence => {
                last.end_ms = next_ms;
            }
            _ => flat.push(Piece {
                start_ms: at_ms,
                end_ms: next_ms,
                presence,
            }),
        }
    }
    flat
}

/// One row from the day's pieces (in time order) and its logins/logouts.
fn day_row(who: Who, day: DayNumber, pieces: &[Piece], marks: &Marks) -> AttendanceDay {
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
        who,
        workstations: Vec::new(),
        users: Vec::new(),
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
