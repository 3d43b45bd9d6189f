//! Pure analytics over stored records: usage rollups and summaries,
//! attendance, fleet presence, health history and recommendations.
//!
//! No I/O and no clock reads: the current instant (`now_ms`) and the site's
//! [`DayClock`](crate::model::DayClock) are arguments, inputs are slices of
//! [`model`](crate::model) types the store has already filtered, and outputs
//! are plain structs sorted deterministically (largest value first, then
//! name) for the GUI and the CLI to print.
//!
//! Privacy by default (DESIGN.md §6): idle time is reported as idle, next to
//! active time, never as "not working", and nothing here computes pay.

mod attendance;
mod format;
mod health;
mod intervals;
mod presence;
mod range;
mod recommend;
mod usage;

pub use attendance::{attendance, attendance_by, AttendanceDay, WorkSession, SESSION_GAP_MS};
pub(crate) use format::duration_parts;
pub use format::{format_duration_ms, format_hms, parse_duration};
pub use health::{decimate, health_summary, HealthSummary, SeriesPoint};
pub use intervals::Intervals;
pub use presence::{presence_now, AgentSeen, FleetPresence, SeenAgent, RECENTLY_MS};
pub use range::Range;
pub use recommend::{
    limit_usage, recommendations, weekday, AppLimit, LimitUsage, LocalTime, Param, Recommendation,
    RecommendationInput, RecommendationKind, RecommendationRules, Severity,
};
pub use usage::{
    change_pct, rollup, usage_of, usage_summary, usage_summary_from_spans, UsageSummary,
};

/// Milliseconds in a second.
pub const SECOND_MS: i64 = 1_000;
/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
