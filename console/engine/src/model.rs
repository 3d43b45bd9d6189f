//! The console's own record types: what the store keeps and analytics read.
//! Converted from wire records at ingest, so a wire change never silently
//! changes stored data (see `from_wire`).

use protocol::UnixMillis;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validate::{self, cap_text};

/// An agent's stable identity (its certificate's UUID).
pub type AgentId = Uuid;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// A calendar day as days since 1970-01-01 in the site's time zone
/// (see [`DayClock`]); cheap to key and compare.
pub type DayNumber = i32;

/// Maps instants to the site's calendar days with a fixed UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayClock {
    pub utc_offset_secs: i32,
}

impl DayClock {
    pub const UTC: DayClock = DayClock { utc_offset_secs: 0 };

    fn offset_ms(self) -> i64 {
        i64::from(self.utc_offset_secs) * 1000
    }

    /// The day `at_ms` falls on.
    pub fn day_of(self, at_ms: UnixMillis) -> DayNumber {
        let days = at_ms.saturating_add(self.offset_ms()).div_euclid(DAY_MS);
        DayNumber::try_from(days).unwrap_or(if days < 0 {
            DayNumber::MIN
        } else {
            DayNumber::MAX
        })
    }

    /// First millisecond of `day`.
    pub fn day_start_ms(self, day: DayNumber) -> UnixMillis {
        i64::from(day) * DAY_MS - self.offset_ms()
    }

    /// Splits `[start_ms, end_ms)` at day boundaries: one piece per day,
    /// so callers clip what they split to a bounded range (ingest checks
    /// spans, queries clip to their range).
    pub fn split_by_day(
        self,
        start_ms: UnixMillis,
        end_ms: UnixMillis,
    ) -> Vec<(DayNumber, UnixMillis, UnixMillis)> {
        let mut pieces = Vec::new();
        let mut from_ms = start_ms;
        while from_ms < end_ms {
            let day = self.day_of(from_ms);
            let to_ms = end_ms.min(self.day_start_ms(day.saturating_add(1)));
            pieces.push((day, from_ms, to_ms));
            from_ms = to_ms;
        }
        pieces
    }
}

/// Presence over a span, as the agent saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Presence {
    Active,
    Idle,
    Locked,
}

/// Which application was in front, for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSpan {
    pub agent: AgentId,
    pub start_ms: UnixMillis,
    pub end_ms: UnixMillis,
    pub app: String,
    pub title: Option<String>,
}

/// A presence span of one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitySpan {
    pub agent: AgentId,
    pub start_ms: UnixMillis,
    pub end_ms: UnixMillis,
    pub presence: Presence,
    pub user: String,
}

/// Session boundaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionKind {
    Login,
    Logout,
    Lock,
    Unlock,
    AgentStart,
    AgentStop,
    Suspended { gap_ms: u64 },
    ClockJump { delta_ms: i64 },
}

/// A point event in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    pub agent: AgentId,
    pub at_ms: UnixMillis,
    pub kind: SessionKind,
    pub user: String,
}

/// Health classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HealthLevel {
    Ok,
    Warn,
    Critical,
}

/// One health sample, reduced to what the console charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthPoint {
    pub agent: AgentId,
    pub at_ms: UnixMillis,
    pub cpu_pct: f32,
    pub mem_pct: f32,
    /// Fullest disk.
    pub disk_pct: f32,
    pub uptime_secs: u64,
    pub score: u8,
    pub level: HealthLevel,
}

/// Records an agent says it dropped (quota, retention): shown, never hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub agent: AgentId,
    pub stream: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub reason: String,
}

/// One stored record of any kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stored {
    Usage(UsageSpan),
    Activity(ActivitySpan),
    Session(SessionEvent),
    Health(HealthPoint),
    Gap(Gap),
}

/// Active milliseconds per (agent, day, app): the rollup dashboards read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDayTotal {
    pub agent: AgentId,
    pub day: DayNumber,
    pub app: String,
    pub active_ms: i64,
}

fn pct(used: u64, total: u64) -> f32 {
    if total == 0 {
        0.0
    } else {
        (used as f64 / total as f64 * 100.0) as f32
    }
}

/// Converts a wire record of `agent` that passed [`validate::check`],
/// capping its text ([`validate::cap_text`]); frame metadata is kept
/// elsewhere (screenshots), so it maps to `None` here.
pub fn from_wire(agent: AgentId, record: &protocol::Record) -> Option<Stored> {
    use protocol::Record as R;
    let user = |user: &str| cap_text(user, validate::MAX_USER_BYTES).into_owned();
    Some(match record {
        R::Usage(span) => Stored::Usage(UsageSpan {
            agent,
            start_ms: span.start_ms,
            end_ms: span.end_ms,
            app: cap_text(&span.app, validate::MAX_APP_BYTES).into_owned(),
            title: span
                .title
                .as_deref()
                .map(|title| cap_text(title, validate::MAX_TITLE_BYTES).into_owned()),
        }),
        R::Activity(span) => Stored::Activity(ActivitySpan {
            agent,
            start_ms: span.start_ms,
            end_ms: span.end_ms,
            presence: match span.presence {
                protocol::Presence::Active => Presence::Active,
                protocol::Presence::Idle => Presence::Idle,
                protocol::Presence::Locked => Presence::Locked,
            },
            user: user(&span.user),
        }),
        R::Session(event) => Stored::Session(SessionEvent {
            agent,
            at_ms: event.at_ms,
            kind: match event.kind {
                protocol::SessionEventKind::Login => SessionKind::Login,
                protocol::SessionEventKind::Logout => SessionKind::Logout,
                protocol::SessionEventKind::Lock => SessionKind::Lock,
                protocol::SessionEventKind::Unlock => SessionKind::Unlock,
                protocol::SessionEventKind::AgentStart => SessionKind::AgentStart,
                protocol::SessionEventKind::AgentStop => SessionKind::AgentStop,
                protocol::SessionEventKind::Suspended { gap_ms } => {
                    SessionKind::Suspended { gap_ms }
                }
                protocol::SessionEventKind::ClockJump { delta_ms } => {
                    SessionKind::ClockJump { delta_ms }
                }
            },
            user: user(&event.user),
        }),
        R::Health(sample) => Stored::Health(HealthPoint {
            agent,
            at_ms: sample.at_ms,
            cpu_pct: sample.cpu_pct,
            mem_pct: pct(sample.mem_used_bytes, sample.mem_total_bytes),
            disk_pct: sample
                .disks
                .iter()
                .map(|disk| pct(disk.used_bytes, disk.total_bytes))
                .fold(0.0, f32::max),
            uptime_secs: sample.uptime_secs,
            score: sample.score,
            level: match sample.level {
                protocol::HealthLevel::Ok => HealthLevel::Ok,
                protocol::HealthLevel::Warn => HealthLevel::Warn,
                protocol::HealthLevel::Critical => HealthLevel::Critical,
            },
        }),
        R::Gap(gap) => Stored::Gap(Gap {
            agent,
            stream: gap.stream.name().to_owned(),
            first_seq: gap.first_seq,
            last_seq: gap.last_seq,
            reason: format!("{:?}", gap.reason),
        }),
        R::Frame(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_split_at_local_midnight() {
        // Paris in winter: UTC+1. 2026-03-02 22:30 UTC is 23:30 local.
        let paris = DayClock {
            utc_offset_secs: 3600,
        };
        let start_ms = 1_772_490_600_000; // 2026-03-02T22:30:00Z
        let end_ms = start_ms + 2 * 3_600_000;
        let pieces = paris.split_by_day(start_ms, end_ms);
        assert_eq!(pieces.len(), 2);
        assert_eq!(
            pieces[0].2 - pieces[0].1,
            1_800_000,
            "30 min before local midnight"
        );
        assert_eq!(pieces[1].2 - pieces[1].1, 5_400_000);
        assert_eq!(pieces[1].0, pieces[0].0 + 1);
        assert_eq!(paris.day_start_ms(pieces[1].0), pieces[1].1);
        assert!(DayClock::UTC.split_by_day(end_ms, start_ms).is_empty());
    }
}
