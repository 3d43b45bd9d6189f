//! Recommendations for managers from the seeds' rules: per-app daily limits
//! (warning at 80 %), long stretches without a break, work outside working
//! hours or at the weekend, critical health and nearly full disks.
//!
//! Each one carries a stable message key and typed parameters, put into
//! words per language by `i18n::recommendation_text`. They are advice about
//! workload and equipment: none is a sanction and none concerns pay.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;

use protocol::UnixMillis;

use super::{format_duration_ms, HOUR_MS, MINUTE_MS};
use crate::model::{
    ActivitySpan, AgentId, AppDayTotal, DayClock, DayNumber, HealthLevel, HealthPoint, Presence,
    DAY_MS,
};

/// Day of the week of a local day: 0 is Monday, 6 is Sunday.
pub fn weekday(day: DayNumber) -> u8 {
    // 1970-01-01 (day 0) was a Thursday (3); the result is in 0..7.
    (i64::from(day) + 3).rem_euclid(7) as u8
}

/// A time of day on the site's clock.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct LocalTime {
    pub hour: u8,
    pub minute: u8,
}

impl LocalTime {
    /// The time of day `ms_since_midnight` after local midnight.
    fn from_day_offset_ms(ms_since_midnight: i64) -> LocalTime {
        let minutes = ms_since_midnight.rem_euclid(DAY_MS) / MINUTE_MS;
        // Both are in range: minutes < 1440.
        LocalTime {
            hour: (minutes / 60) as u8,
            minute: (minutes % 60) as u8,
        }
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// A daily maximum for one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLimit {
    /// `None` applies to every agent; an agent's own limit overrides it.
    pub agent: Option<AgentId>,
    /// Application name as normalised by the agents (compared ignoring case).
    pub app: String,
    pub max_daily_ms: i64,
}

/// Thresholds of the rules; [`Default`] gives the seeds' values.
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendationRules {
    pub app_limits: Vec<AppLimit>,
    /// Warn when an application reaches this share of its limit (80).
    pub warn_at_pct: u8,
    /// Active stretches longer than this suggest a break (90 min).
    pub max_stretch_ms: i64,
    /// A pause (idle, locked or unrecorded) at least this long is a break
    /// and ends a stretch (5 min).
    pub min_break_ms: i64,
    /// Working hours start this long after local midnight (7 h).
    pub work_hours_start_ms: i64,
    /// Working hours end this long after local midnight (20 h).
    pub work_hours_end_ms: i64,
    /// Less active time than this outside working hours is not reported (10 min).
    pub min_late_ms: i64,
    /// Less active time than this on a Saturday or Sunday is not reported (10 min).
    pub min_weekend_ms: i64,
    /// A disk at least this full (percent) is reported (90).
    pub disk_full_pct: f32,
    /// Health samples older than this at `now_ms` are not current (30 min).
    pub health_max_age_ms: i64,
}

impl Default for RecommendationRules {
    fn default() -> Self {
        RecommendationRules {
            app_limits: Vec::new(),
            warn_at_pct: 80,
            max_stretch_ms: 90 * MINUTE_MS,
            min_break_ms: 5 * MINUTE_MS,
            work_hours_start_ms: 7 * HOUR_MS,
            work_hours_end_ms: 20 * HOUR_MS,
            min_late_ms: 10 * MINUTE_MS,
            min_weekend_ms: 10 * MINUTE_MS,
            disk_full_pct: 90.0,
            health_max_age_ms: 30 * MINUTE_MS,
        }
    }
}

/// What the rules look at; the caller picks the agents and the window.
#[derive(Debug, Clone, Copy)]
pub struct RecommendationInput<'a> {
    /// Usage rollups of the days to check against the app limits.
    pub app_totals: &'a [AppDayTotal],
    /// Activity spans for breaks, late and weekend work.
    pub activity: &'a [ActivitySpan],
    /// Health samples; only each agent's latest current one is used.
    pub health: &'a [HealthPoint],
}

/// How urgent a recommendation is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    Info,
    Warn,
    Critical,
}

/// What a recommendation is about, with its facts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum RecommendationKind {
    /// An application reached `warn_at_pct` of its daily limit.
    AppLimitNear {
        app: String,
        used_ms: i64,
        limit_ms: i64,
    },
    /// An application reached or passed its daily limit.
    AppLimitExceeded {
        app: String,
        used_ms: i64,
        limit_ms: i64,
    },
    /// Active for `duration_ms` from `starts_at` without a break.
    LongStretch {
        user: String,
        starts_at: LocalTime,
        duration_ms: i64,
        min_break_ms: i64,
    },
    /// Active time outside `work_start`–`work_end` on one day.
    LateWork {
        user: String,
        outside_ms: i64,
        work_start: LocalTime,
        work_end: LocalTime,
    },
    /// Active time on a Saturday or Sunday.
    WeekendWork { user: String, active_ms: i64 },
    /// The latest health sample is critical.
    HealthCritical { score: u8 },
    /// The fullest disk is `disk_pct` percent full.
    DiskAlmostFull { disk_pct: u8 },
}

/// A typed parameter of a message, formatted by the GUI per language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    DurationMs(i64),
    Percent(u8),
    TimeOfDay(LocalTime),
    Number(i64),
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Text(text) => f.write_str(text),
            Param::DurationMs(ms) => f.write_str(&format_duration_ms(*ms)),
            Param::Percent(pct) => write!(f, "{pct} %"),
            Param::TimeOfDay(time) => time.fmt(f),
            Param::Number(number) => number.fmt(f),
        }
    }
}

/// One piece of advice about one agent and one local day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recommendation {
    pub severity: Severity,
    pub agent: AgentId,
    /// The local day it concerns (of the stretch start, of the sample).
    pub day: DayNumber,
    pub kind: RecommendationKind,
}

impl Recommendation {
    /// Stable message key for translations.
    pub fn key(&self) -> &'static str {
        match self.kind {
            RecommendationKind::AppLimitNear { .. } => "rec.app_limit.near",
            RecommendationKind::AppLimitExceeded { .. } => "rec.app_limit.exceeded",
            RecommendationKind::LongStretch { .. } => "rec.long_stretch",
            RecommendationKind::LateWork { .. } => "rec.late_work",
            RecommendationKind::WeekendWork { .. } => "rec.weekend_work",
            RecommendationKind::HealthCritical { .. } => "rec.health.critical",
            RecommendationKind::DiskAlmostFull { .. } => "rec.disk.almost_full",
        }
    }

    /// Named parameters of the message behind [`Recommendation::key`].
    pub fn params(&self) -> Vec<(&'static str, Param)> {
        match &self.kind {
            RecommendationKind::AppLimitNear {
                app,
                used_ms,
                limit_ms,
            }
            | RecommendationKind::AppLimitExceeded {
                app,
                used_ms,
                limit_ms,
            } => vec![
                ("app", Param::Text(app.clone())),
                ("used", Param::DurationMs(*used_ms)),
                ("limit", Param::DurationMs(*limit_ms)),
                ("pct", Param::Percent(share_pct(*used_ms, *limit_ms))),
            ],
            RecommendationKind::LongStretch {
                user,
                starts_at,
                duration_ms,
                min_break_ms,
            } => vec![
                ("user", Param::Text(user.clone())),
                ("start", Param::TimeOfDay(*starts_at)),
                ("duration", Param::DurationMs(*duration_ms)),
                ("break", Param::DurationMs(*min_break_ms)),
            ],
            RecommendationKind::LateWork {
                user,
                outside_ms,
                work_start,
                work_end,
            } => vec![
                ("user", Param::Text(user.clone())),
                ("outside", Param::DurationMs(*outside_ms)),
                ("work_start", Param::TimeOfDay(*work_start)),
                ("work_end", Param::TimeOfDay(*work_end)),
            ],
            RecommendationKind::WeekendWork { user, active_ms } => vec![
                ("user", Param::Text(user.clone())),
                ("active", Param::DurationMs(*active_ms)),
            ],
            RecommendationKind::HealthCritical { score } => {
                vec![("score", Param::Number(i64::from(*score)))]
            }
            RecommendationKind::DiskAlmostFull { disk_pct } => {
                vec![("disk", Param::Percent(*disk_pct))]
            }
        }
    }
}

/// `used_ms` as a percentage of `limit_ms`, capped at 255.
fn share_pct(used_ms: i64, limit_ms: i64) -> u8 {
    if limit_ms <= 0 {
        return u8::MAX;
    }
    let pct = i128::from(used_ms) * 100 / i128::from(limit_ms);
    u8::try_from(pct.clamp(0, 255)).unwrap_or(u8::MAX)
}

/// An application's use against its limit on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitUsage {
    pub agent: AgentId,
    pub day: DayNumber,
    pub app: String,
    pub used_ms: i64,
    pub limit_ms: i64,
}

/// Every rollup that has a limit, with it: for "real-time usage against the
/// limit" bars. An agent's own limit wins over one for every agent. Sorted
/// by agent, day, application.
pub fn limit_usage(totals: &[AppDayTotal], limits: &[AppLimit]) -> Vec<LimitUsage> {
    let limit_of = |agent: AgentId, app: &str| {
        let app = app.to_lowercase();
        let matching = || {
            limits
                .iter()
                .filter(|limit| limit.app.to_lowercase() == app)
        };
        matching()
            .find(|limit| limit.agent == Some(agent))
            .or_else(|| matching().find(|limit| limit.agent.is_none()))
            .map(|limit| limit.max_daily_ms)
    };
    let mut usage: Vec<LimitUsage> = totals
        .iter()
        .filter_map(|total| {
            limit_of(total.agent, &total.app).map(|limit_ms| LimitUsage {
                agent: total.agent,
                day: total.day,
                app: total.app.clone(),
                used_ms: total.active_ms,
                limit_ms,
            })
        })
        .collect();
    usage.sort_by(|a, b| (a.agent, a.day, &a.app).cmp(&(b.agent, b.day, &b.app)));
    usage
}

/// Applies every rule. Output: most severe first, then newest day, agent,
/// kind. `now_ms` decides which health samples are current.
pub fn recommendations(
    input: &RecommendationInput<'_>,
    rules: &RecommendationRules,
    now_ms: UnixMillis,
    clock: &DayClock,
) -> Vec<Recommendation> {
    let mut found = Vec::new();
    app_limit_rule(input.app_totals, rules, &mut found);
    stretch_rule(input.activity, rules, clock, &mut found);
    hours_rules(input.activity, rules, clock, &mut found);
    health_rules(input.health, rules, now_ms, clock, &mut found);
    found.sort_by(|a, b| {
        (Reverse(a.severity), Reverse(a.day), a.agent, &a.kind).cmp(&(
            Reverse(b.severity),
            Reverse(b.day),
            b.agent,
            &b.kind,
        ))
    });
    found
}

fn app_limit_rule(
    totals: &[AppDayTotal],
    rules: &RecommendationRules,
    found: &mut Vec<Recommendation>,
) {
    for usage in limit_usage(totals, &rules.app_limits) {
        let (used_ms, limit_ms) = (usage.used_ms, usage.limit_ms);
        let (severity, kind) = if used_ms >= limit_ms {
            let app = usage.app;
            (
                Severity::Warn,
                RecommendationKind::AppLimitExceeded {
                    app,
                    used_ms,
                    limit_ms,
                },
            )
        } else if i128::from(used_ms) * 100 >= i128::from(limit_ms) * i128::from(rules.warn_at_pct)
        {
            let app = usage.app;
            (
                Severity::Info,
                RecommendationKind::AppLimitNear {
                    app,
                    used_ms,
                    limit_ms,
                },
            )
        } else {
            continue;
        };
        found.push(Recommendation {
            severity,
            agent: usage.agent,
            day: usage.day,
            kind,
        });
    }
}

/// Active spans grouped by (agent, user), each group in time order.
fn active_by_person(
    activity: &[ActivitySpan],
) -> BTreeMap<(AgentId, &str), Vec<(UnixMillis, UnixMillis)>> {
    let mut people: BTreeMap<(AgentId, &str), Vec<(UnixMillis, UnixMillis)>> = BTreeMap::new();
    for span in activity
        .iter()
        .filter(|span| span.presence == Presence::Active && span.start_ms < span.end_ms)
    {
        people
            .entry((span.agent, &span.user))
            .or_default()
            .push((span.start_ms, span.end_ms));
    }
    for spans in people.values_mut() {
        spans.sort_unstable();
    }
    people
}

fn stretch_rule(
    activity: &[ActivitySpan],
    rules: &RecommendationRules,
    clock: &DayClock,
    found: &mut Vec<Recommendation>,
) {
    for ((agent, user), spans) in active_by_person(activity) {
        // Merge active spans separated by less than a break into stretches.
        let mut stretches: Vec<(UnixMillis, UnixMillis)> = Vec::new();
        for (start_ms, end_ms) in spans {
            match stretches.last_mut() {
                Some(open) if start_ms.saturating_sub(open.1) < rules.min_break_ms => {
                    open.1 = open.1.max(end_ms)
                }
                _ => stretches.push((start_ms, end_ms)),
            }
        }
        for (start_ms, end_ms) in stretches {
            if end_ms.saturating_sub(start_ms) <= rules.max_stretch_ms {
                continue;
            }
            let day = clock.day_of(start_ms);
            found.push(Recommendation {
                severity: Severity::Info,
                agent,
                day,
                kind: RecommendationKind::LongStretch {
                    user: user.to_owned(),
                    starts_at: LocalTime::from_day_offset_ms(clock.ms_since_midnight(start_ms)),
                    duration_ms: end_ms.saturating_sub(start_ms),
                    min_break_ms: rules.min_break_ms,
                },
            });
        }
    }
}

/// Late/early work and weekend work, per person and local day.
fn hours_rules(
    activity: &[ActivitySpan],
    rules: &RecommendationRules,
    clock: &DayClock,
    found: &mut Vec<Recommendation>,
) {
    let overlap_ms = |a: (i64, i64), b: (i64, i64)| (a.1.min(b.1) - a.0.max(b.0)).max(0);
    for ((agent, user), spans) in active_by_person(activity) {
        // Per day: (active outside working hours, active in total).
        let mut days: BTreeMap<DayNumber, (i64, i64)> = BTreeMap::new();
        for (start_ms, end_ms) in spans {
            for (day, from_ms, to_ms) in clock.split_by_day(start_ms, end_ms) {
                // Working hours on the wall clock: a day of 23 or 25 hours
                // keeps 7:00 and 20:00 where people read them.
                let early = (
                    clock.day_start_ms(day),
                    clock.local_instant_ms(day, rules.work_hours_start_ms),
                );
                let late = (
                    clock.local_instant_ms(day, rules.work_hours_end_ms),
                    clock.day_start_ms(day.saturating_add(1)),
                );
                let entry = days.entry(day).or_default();
                entry.0 += overlap_ms((from_ms, to_ms), early) + overlap_ms((from_ms, to_ms), late);
                entry.1 += to_ms - from_ms;
            }
        }
        for (day, (outside_ms, active_ms)) in days {
            if outside_ms > 0 && outside_ms >= rules.min_late_ms {
                found.push(Recommendation {
                    severity: Severity::Info,
                    agent,
                    day,
                    kind: RecommendationKind::LateWork {
                        user: user.to_owned(),
                        outside_ms,
                        work_start: LocalTime::from_day_offset_ms(rules.work_hours_start_ms),
                        work_end: LocalTime::from_day_offset_ms(rules.work_hours_end_ms),
                    },
                });
            }
            if weekday(day) >= 5 && active_ms > 0 && active_ms >= rules.min_weekend_ms {
                found.push(Recommendation {
                    severity: Severity::Info,
                    agent,
                    day,
                    kind: RecommendationKind::WeekendWork {
                        user: user.to_owned(),
                        active_ms,
                    },
                });
            }
        }
    }
}

fn health_rules(
    health: &[HealthPoint],
    rules: &RecommendationRules,
    now_ms: UnixMillis,
    clock: &DayClock,
    found: &mut Vec<Recommendation>,
) {
    let mut latest: BTreeMap<AgentId, &HealthPoint> = BTreeMap::new();
    for point in health
        .iter()
        .filter(|point| point.at_ms <= now_ms && now_ms - point.at_ms <= rules.health_max_age_ms)
    {
        let entry = latest.entry(point.agent).or_insert(point);
        if point.at_ms > entry.at_ms {
            *entry = point;
        }
    }
    for (agent, point) in latest {
        let day = clock.day_of(point.at_ms);
        if point.level == HealthLevel::Critical {
            found.push(Recommendation {
                severity: Severity::Critical,
                agent,
                day,
                kind: RecommendationKind::HealthCritical { score: point.score },
            });
        }
        if point.disk_pct >= rules.disk_full_pct {
            found.push(Recommendation {
                severity: Severity::Warn,
                agent,
                day,
                // A percentage of 0..=100 fits; `as` saturates otherwise.
                kind: RecommendationKind::DiskAlmostFull {
                    disk_pct: point.disk_pct.round() as u8,
                },
            });
        }
    }
}
