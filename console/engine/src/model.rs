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

/// A time zone name the tz database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a time zone of the tz database; use an IANA name such as Europe/Paris, America/Montreal or UTC")]
pub struct UnknownZone {
    pub name: String,
}

/// Maps instants to the site's calendar days and wall-clock times in an
/// IANA time zone, daylight saving included (the tz database is compiled
/// in, so every machine reads the same rules). A day is as long as the
/// zone makes it: 23 hours on the spring change, 25 on the autumn one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayClock {
    /// Always a zone of the tz database, so it has an IANA name.
    zone: jiff::tz::TimeZone,
}

/// Where a [`DayClock`] made from the machine's settings came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSource {
    /// The site's configuration names the zone.
    Configured,
    /// `TZ` or `/etc/localtime` named a zone.
    System,
    /// The machine's zone could not be read or has no IANA name: UTC is
    /// used and the reason must be shown.
    Fallback { reason: String },
}

impl DayClock {
    /// Coordinated Universal Time.
    pub fn utc() -> DayClock {
        DayClock {
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// The clock of an IANA zone (`Europe/Paris`), from the tz database.
    pub fn from_name(name: &str) -> Result<DayClock, UnknownZone> {
        let unknown = || UnknownZone {
            name: name.to_owned(),
        };
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(unknown());
        }
        let zone = jiff::tz::TimeZone::get(name).map_err(|_| unknown())?;
        // `Etc/Unknown` is found but names no zone.
        if zone.iana_name().is_none() {
            return Err(unknown());
        }
        Ok(DayClock { zone })
    }

    /// The machine's zone (`TZ`, else `/etc/localtime`), else UTC with the
    /// reason.
    pub fn system() -> (DayClock, ZoneSource) {
        match jiff::tz::TimeZone::try_system() {
            Ok(zone) => match zone.iana_name().map(DayClock::from_name) {
                Some(Ok(clock)) => (clock, ZoneSource::System),
                _ => (
                    DayClock::utc(),
                    ZoneSource::Fallback {
                        reason: "the machine's time zone has no IANA name (TZ or /etc/localtime)"
                            .to_owned(),
                    },
                ),
            },
            Err(error) => (
                DayClock::utc(),
                ZoneSource::Fallback {
                    reason: format!("the machine's time zone cannot be read: {error}"),
                },
            ),
        }
    }

    /// The zone's IANA name (`Europe/Paris`).
    pub fn name(&self) -> &str {
        // Every clock is made from a named zone (see `from_name`, `utc`).
        self.zone.iana_name().unwrap_or("UTC")
    }

    /// The zone's offset from UTC at `at_ms`, in seconds.
    pub fn offset_secs(&self, at_ms: UnixMillis) -> i32 {
        self.zone.to_offset(timestamp(at_ms)).seconds()
    }

    /// Milliseconds since 1970-01-01 00:00 of the wall clock at `at_ms`.
    fn local_ms(&self, at_ms: UnixMillis) -> i64 {
        at_ms.saturating_add(i64::from(self.offset_secs(at_ms)) * 1000)
    }

    /// The day `at_ms` falls on.
    pub fn day_of(&self, at_ms: UnixMillis) -> DayNumber {
        let days = self.local_ms(at_ms).div_euclid(DAY_MS);
        DayNumber::try_from(days).unwrap_or(if days < 0 {
            DayNumber::MIN
        } else {
            DayNumber::MAX
        })
    }

    /// Milliseconds since the wall clock's midnight at `at_ms` (what a
    /// person reads on the clock, as milliseconds).
    pub fn ms_since_midnight(&self, at_ms: UnixMillis) -> i64 {
        self.local_ms(at_ms).rem_euclid(DAY_MS)
    }

    /// First millisecond of `day`: its midnight, or the first instant after
    /// midnight where the zone skips midnight.
    pub fn day_start_ms(&self, day: DayNumber) -> UnixMillis {
        self.local_instant_ms(day, 0)
    }

    /// The instant the wall clock reads `ms_since_midnight` on `day` (7:00
    /// is 6:00 UTC in a Paris winter, 5:00 UTC in summer). A time the
    /// clocks skip gives the instant they jumped to; a time they repeat
    /// gives its first occurrence.
    pub fn local_instant_ms(&self, day: DayNumber, ms_since_midnight: i64) -> UnixMillis {
        let naive_ms = (i64::from(day) * DAY_MS).saturating_add(ms_since_midnight);
        let Some(datetime) = jiff::Timestamp::from_millisecond(naive_ms)
            .ok()
            .map(|at| at.to_zoned(jiff::tz::TimeZone::UTC).datetime())
        else {
            return naive_ms;
        };
        self.zone
            .to_ambiguous_timestamp(datetime)
            .compatible()
            .map(|at| at.as_millisecond())
            .unwrap_or_else(|_| naive_ms - i64::from(self.offset_secs(naive_ms)) * 1000)
    }

    /// Milliseconds `day` lasts (23 or 25 hours on a change of offset).
    pub fn day_length_ms(&self, day: DayNumber) -> i64 {
        self.day_start_ms(day.saturating_add(1)) - self.day_start_ms(day)
    }

    /// Whether the wall-clock time at `at_ms` happens twice that day (the
    /// repeated hour when clocks go back): then a person needs the zone's
    /// abbreviation to tell which one is meant.
    pub fn is_ambiguous(&self, at_ms: UnixMillis) -> bool {
        let at = timestamp(at_ms);
        self.zone
            .to_ambiguous_timestamp(self.zone.to_datetime(at))
            .is_ambiguous()
    }

    /// The zone's abbreviation at `at_ms` (`CET`, `CEST`, `+0545`).
    pub fn abbreviation(&self, at_ms: UnixMillis) -> String {
        self.zone
            .to_offset_info(timestamp(at_ms))
            .abbreviation()
            .to_owned()
    }

    /// ISO 8601 with the zone's offset: `2026-03-29T08:00:00+02:00`.
    pub fn iso_local(&self, at_ms: UnixMillis) -> String {
        let at = timestamp(at_ms).to_zoned(self.zone.clone());
        at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    /// Splits `[start_ms, end_ms)` at day boundaries: one piece per day,
    /// so callers clip what they split to a bounded range (ingest checks
    /// spans, queries clip to their range).
    pub fn split_by_day(
        &self,
        start_ms: UnixMillis,
        end_ms: UnixMillis,
    ) -> Vec<(DayNumber, UnixMillis, UnixMillis)> {
        let mut pieces = Vec::new();
        let mut from_ms = start_ms;
        while from_ms < end_ms {
            let day = self.day_of(from_ms);
            let next_ms = self.day_start_ms(day.saturating_add(1));
            // A clamped day cannot move on: end there rather than loop.
            let to_ms = if next_ms > from_ms {
                end_ms.min(next_ms)
            } else {
                end_ms
            };
            pieces.push((day, from_ms, to_ms));
            from_ms = to_ms;
        }
        pieces
    }
}

impl Serialize for DayClock {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for DayClock {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<DayClock, D::Error> {
        let name = String::deserialize(deserializer)?;
        DayClock::from_name(&name).map_err(serde::de::Error::custom)
    }
}

/// `at_ms` as a jiff timestamp, clamped to the range jiff supports
/// (years -9999..=9999).
fn timestamp(at_ms: UnixMillis) -> jiff::Timestamp {
    let clamped_ms = at_ms.clamp(
        jiff::Timestamp::MIN.as_millisecond(),
        jiff::Timestamp::MAX.as_millisecond(),
    );
    jiff::Timestamp::from_millisecond(clamped_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
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
        let paris = zone("Europe/Paris");
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
        assert!(DayClock::utc().split_by_day(end_ms, start_ms).is_empty());
    }

    fn zone(name: &str) -> DayClock {
        DayClock::from_name(name).expect("zone of the tz database")
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` as Unix milliseconds.
    fn utc(text: &str) -> UnixMillis {
        text.parse::<jiff::Timestamp>()
            .expect("RFC 3339")
            .as_millisecond()
    }

    const HOUR_MS: i64 = 3_600_000;

    #[test]
    fn paris_days_follow_daylight_saving() {
        let paris = zone("Europe/Paris");
        // Spring: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
        let spring = paris.day_of(utc("2026-03-29T12:00:00Z"));
        assert_eq!(paris.day_start_ms(spring), utc("2026-03-28T23:00:00Z"));
        assert_eq!(paris.day_length_ms(spring), 23 * HOUR_MS);
        assert_eq!(paris.day_length_ms(spring - 1), 24 * HOUR_MS);
        // Autumn: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
        let autumn = paris.day_of(utc("2026-10-25T12:00:00Z"));
        assert_eq!(paris.day_start_ms(autumn), utc("2026-10-24T22:00:00Z"));
        assert_eq!(paris.day_length_ms(autumn), 25 * HOUR_MS);
        assert_eq!(paris.day_length_ms(autumn + 1), 24 * HOUR_MS);
        // A whole day's span sums to the day's length.
        for day in [spring, autumn] {
            let (from_ms, to_ms) = (paris.day_start_ms(day), paris.day_start_ms(day + 1));
            let pieces = paris.split_by_day(from_ms, to_ms);
            assert_eq!(pieces.len(), 1);
            assert_eq!(pieces[0].2 - pieces[0].1, paris.day_length_ms(day));
        }
    }

    #[test]
    fn a_span_across_the_spring_change_splits_at_local_midnight() {
        let paris = zone("Europe/Paris");
        // 23:30 CET on the 28th to 03:30 CEST on the 29th: 3 h of real time,
        // 30 min before midnight and 2 h 30 after it (02:00-03:00 never was).
        let pieces = paris.split_by_day(utc("2026-03-28T22:30:00Z"), utc("2026-03-29T01:30:00Z"));
        let lengths: Vec<i64> = pieces.iter().map(|(_, from, to)| to - from).collect();
        assert_eq!(lengths, [HOUR_MS / 2, 5 * HOUR_MS / 2]);
        // 01:30-03:30 local on the day of the change lasts 1 h, on one day.
        let pieces = paris.split_by_day(utc("2026-03-29T00:30:00Z"), utc("2026-03-29T01:30:00Z"));
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].0, paris.day_of(utc("2026-03-29T12:00:00Z")));
        // 01:30 CEST to 03:30 CET on the autumn day lasts 3 h, on one day.
        let pieces = paris.split_by_day(utc("2026-10-24T23:30:00Z"), utc("2026-10-25T02:30:00Z"));
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].2 - pieces[0].1, 3 * HOUR_MS);
    }

    #[test]
    fn wall_clock_times_and_offsets_follow_the_zone() {
        let paris = zone("Europe/Paris");
        for at in ["2026-03-27T07:00:00Z", "2026-03-30T06:00:00Z"] {
            assert_eq!(paris.ms_since_midnight(utc(at)), 8 * HOUR_MS, "{at}");
        }
        assert_eq!(
            paris.iso_local(utc("2026-03-29T06:00:00Z")),
            "2026-03-29T08:00:00+02:00"
        );
        assert_eq!(
            paris.iso_local(utc("2026-03-28T07:00:00Z")),
            "2026-03-28T08:00:00+01:00"
        );
        // 02:30 happens twice on 2026-10-25: once in CEST, once in CET.
        let (first, second) = (utc("2026-10-25T00:30:00Z"), utc("2026-10-25T01:30:00Z"));
        assert_eq!(
            paris.ms_since_midnight(first),
            paris.ms_since_midnight(second)
        );
        assert!(paris.is_ambiguous(first) && paris.is_ambiguous(second));
        assert_eq!(
            (
                paris.abbreviation(first).as_str(),
                paris.abbreviation(second).as_str()
            ),
            ("CEST", "CET")
        );
        assert!(!paris.is_ambiguous(utc("2026-10-25T03:30:00Z")));
    }

    #[test]
    fn quarter_and_half_hour_zones_start_their_days_right() {
        let cases = [
            // Newfoundland, standard time: UTC-3:30.
            (
                "America/St_Johns",
                "2026-01-15T12:00:00Z",
                "2026-01-15T03:30:00Z",
                -12_600,
            ),
            // Nepal: UTC+5:45, no daylight saving.
            (
                "Asia/Kathmandu",
                "2026-06-15T12:00:00Z",
                "2026-06-14T18:15:00Z",
                20_700,
            ),
            // Chatham Islands in the southern winter: UTC+12:45.
            (
                "Pacific/Chatham",
                "2026-06-15T12:00:00Z",
                "2026-06-15T11:15:00Z",
                45_900,
            ),
        ];
        for (name, at, start, offset_secs) in cases {
            let clock = zone(name);
            let day = clock.day_of(utc(at));
            assert_eq!(clock.day_start_ms(day), utc(start), "{name}");
            assert_eq!(clock.offset_secs(utc(at)), offset_secs, "{name}");
            assert_eq!(clock.day_length_ms(day), 24 * HOUR_MS, "{name}");
            assert_eq!(clock.ms_since_midnight(utc(start)), 0, "{name}");
        }
    }

    #[test]
    fn zones_are_named_and_checked() {
        assert_eq!(zone("europe/paris").name(), "Europe/Paris");
        assert_eq!(DayClock::utc().name(), "UTC");
        let refused = DayClock::from_name("Paris").expect_err("not a zone");
        assert!(refused.to_string().contains("Europe/Paris"), "{refused}");
        assert!(DayClock::from_name("").is_err());
        assert!(DayClock::from_name("Etc/Unknown").is_err());
        for hostile in [
            "../../../etc/passwd",
            "/etc/localtime",
            "Europe/../../etc/passwd",
            "\0",
        ] {
            assert!(DayClock::from_name(hostile).is_err(), "{hostile:?}");
        }
        assert!(DayClock::from_name(&"A/".repeat(100)).is_err());
        let json = serde_json::to_string(&zone("Asia/Kathmandu")).expect("json");
        assert_eq!(json, "\"Asia/Kathmandu\"");
        assert_eq!(
            serde_json::from_str::<DayClock>(&json).expect("back"),
            zone("Asia/Kathmandu")
        );
        assert!(serde_json::from_str::<DayClock>("\"Mars/Olympus\"").is_err());
    }

    #[test]
    fn extreme_instants_neither_panic_nor_loop() {
        let paris = zone("Europe/Paris");
        for at_ms in [
            i64::MIN,
            -1_000_000_000_000_000,
            0,
            1_000_000_000_000_000,
            i64::MAX,
        ] {
            let _ = paris.day_of(at_ms);
            let _ = paris.iso_local(at_ms);
            let _ = paris.is_ambiguous(at_ms);
        }
        let pieces = paris.split_by_day(1_000_000_000_000_000 - 3 * DAY_MS, 1_000_000_000_000_000);
        assert!(!pieces.is_empty() && pieces.len() <= 4);
        assert_eq!(
            pieces.last().map(|piece| piece.2),
            Some(1_000_000_000_000_000)
        );
    }
}
