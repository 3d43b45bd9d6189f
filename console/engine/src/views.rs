//! What each screen shows, computed from the store off the UI thread: one
//! [`ViewData`] per [`ViewRequest`], read from rollups where possible and
//! from raw records only for the short windows that need them (today's
//! timeline, the last 24 h). Health series are decimated here, so a long
//! series never reaches a plot whole. Screenshots are listed from their
//! index alone (nothing decrypted). A workstation in another time zone
//! than the site is marked, and its attendance is computed in its own
//! zone when the settings ask for it.

use std::collections::BTreeMap;

use protocol::UnixMillis;

use crate::analytics::{
    attendance, attendance_by, change_pct, decimate, health_summary, presence_now, recommendations,
    usage_of, usage_summary, usage_summary_from_spans, AgentSeen, AttendanceDay, FleetPresence,
    Range, Recommendation, RecommendationInput, RecommendationRules, SeriesPoint, Severity,
    UsageSummary, HOUR_MS, MINUTE_MS,
};
use crate::categories::Categoriser;
use crate::model::{
    AgentId, DayClock, DayNumber, HealthLevel, HealthPoint, Presence, SessionKind, DAY_MS,
};
use crate::people::{Account, BookError, PeopleBook, Person, PersonId, Proposal, Who};
use crate::settings::ConsoleSettings;
use crate::store::{
    AgentFault, AgentRecord, AuditRecord, ConsoleStore, ScreenshotMeta, StoreError,
};

/// A connection within this long counts as online.
pub const ONLINE_WITHIN_MS: i64 = crate::report::ONLINE_WITHIN_MS;
/// Most points of one plotted series (min/max pairs per bucket).
pub const MAX_PLOT_POINTS: usize = 1_000;
/// Newest audit entries shown.
pub const AUDIT_PAGE: usize = 500;
/// A usage span that ended this recently is the current application.
const CURRENT_APP_WITHIN_MS: i64 = 30 * MINUTE_MS;

/// The time window of a dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Period {
    /// The last 24 hours.
    Day,
    /// The last 7 local days, today included.
    Week,
    /// The last 30 local days, today included.
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    pub fn range(self, now_ms: UnixMillis, clock: &DayClock) -> Range {
        match self {
            Period::Day => Range::last_24h(now_ms),
            Period::Week => Range::last_days(now_ms, clock, 7),
            Period::Month => Range::last_days(now_ms, clock, 30),
        }
    }
}

/// Which screen's data is wanted, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ViewRequest {
    Fleet,
    Employee {
        agent: AgentId,
        period: Period,
    },
    Organisation {
        period: Period,
    },
    Attendance {
        agent: Option<AgentId>,
        period: Period,
    },
    Health {
        agent: Option<AgentId>,
    },
    Audit,
    Screenshots {
        agent: AgentId,
        period: Period,
    },
    People {
        /// The person whose attendance and applications are shown.
        person: Option<PersonId>,
        period: Period,
    },
}

/// Whether an agent answered lately.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Status {
    Online,
    Offline,
    /// Never synced.
    Unknown,
}

/// A workstation's time zone, when it is known and not the site's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OtherZone {
    pub clock: DayClock,
}

/// The zone of `record`'s workstation when it differs from `site`'s.
fn other_zone(record: &AgentRecord, site: &DayClock) -> Option<OtherZone> {
    let clock = DayClock::from_name(record.time_zone.as_deref()?).ok()?;
    (clock.name() != site.name()).then_some(OtherZone { clock })
}

/// The clock `record`'s attendance is computed and shown in: its
/// workstation's when the settings ask for it and the zone is known,
/// else the site's.
fn attendance_clock(record: &AgentRecord, settings: &ConsoleSettings, site: &DayClock) -> DayClock {
    match other_zone(record, site) {
        Some(zone) if settings.own_zone_agents.contains(&record.agent) => zone.clock,
        _ => site.clone(),
    }
}

/// One agent of the fleet screen.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FleetRow {
    pub agent: AgentId,
    pub name: String,
    pub status: Status,
    pub last_seen_ms: Option<UnixMillis>,
    pub address: Option<String>,
    pub user: Option<String>,
    /// Only when the console's settings allow it.
    pub current_app: Option<String>,
    pub health: Option<HealthLevel>,
    pub health_score: Option<u8>,
    pub group: Option<String>,
    pub demo: bool,
    pub other_zone: Option<OtherZone>,
    pub last_error: Option<String>,
    /// The agent's most recent fault, while the fleet screen shows it
    /// (see [`crate::store::FAULT_SHOWN_FOR_MS`]).
    pub fault: Option<AgentFault>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FleetView {
    pub rows: Vec<FleetRow>,
    pub show_current_app: bool,
}

/// A span of the day timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimelineSpan {
    pub start_ms: UnixMillis,
    pub end_ms: UnixMillis,
    pub label: String,
}

/// A presence span of the day timeline.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PresenceSpan {
    pub start_ms: UnixMillis,
    pub end_ms: UnixMillis,
    pub presence: Presence,
}

/// A session event on the day timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionMark {
    pub at_ms: UnixMillis,
    pub kind: String,
}

/// Today, from local midnight to now.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Timeline {
    pub from_ms: UnixMillis,
    pub to_ms: UnixMillis,
    /// Apps with their category, in time order.
    pub apps: Vec<(TimelineSpan, String)>,
    pub presence: Vec<PresenceSpan>,
    pub sessions: Vec<SessionMark>,
}

/// Active and idle time per bucket (hour or day).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Trend {
    /// Bucket width: an hour for 24 h, a day otherwise.
    pub bucket_ms: i64,
    /// Bucket start, active ms, idle ms.
    pub buckets: Vec<(UnixMillis, i64, i64)>,
}

/// Plot-ready health series of one agent, decimated.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct HealthCharts {
    /// The instant x = 0 stands for (now when computed).
    pub origin_ms: UnixMillis,
    /// `[x, y]`: x = hours relative to `origin_ms` (negative), y = percent.
    pub cpu_pct: Vec<[f64; 2]>,
    pub mem_pct: Vec<[f64; 2]>,
    pub disk_pct: Vec<[f64; 2]>,
    pub score: Vec<[f64; 2]>,
    /// Samples before decimation.
    pub raw_samples: usize,
    pub current: Option<HealthPoint>,
    pub worst_level_24h: Option<HealthLevel>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EmployeeView {
    pub agent: AgentId,
    pub name: String,
    pub period: Period,
    pub today: Timeline,
    pub summary: UsageSummary,
    pub idle_ms: i64,
    pub trend: Trend,
    pub other_zone: Option<OtherZone>,
    /// The settings show this agent's attendance in its own zone.
    pub own_zone_attendance: bool,
    /// The clock of `attendance`'s days and times.
    pub attendance_clock: DayClock,
    pub attendance: Vec<AttendanceDay>,
    pub health: HealthCharts,
}

/// A recommendation with the name of its agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Advice {
    pub agent_name: String,
    pub recommendation: Recommendation,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OrganisationView {
    pub period: Period,
    pub agents: usize,
    pub summary: UsageSummary,
    pub previous_active_ms: i64,
    pub change_pct: Option<f64>,
    pub idle_ms: i64,
    pub trend: Trend,
    pub presence: FleetPresence,
    /// Warnings and critical ones.
    pub alerts: Vec<Advice>,
    /// Advice (info).
    pub recommendations: Vec<Advice>,
}

/// One attendance line: a person's day, or the day of an account no
/// person holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttendanceLine {
    /// The person's name; for an account no person holds, `user
    /// (workstation)`.
    pub name: String,
    /// Names of the workstations of the day, sorted.
    pub workstations: Vec<String>,
    /// The clock of `day` and its times (see [`EmployeeView::attendance_clock`]).
    pub clock: DayClock,
    pub day: AttendanceDay,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttendanceView {
    pub agent: Option<AgentId>,
    pub period: Period,
    pub lines: Vec<AttendanceLine>,
}

/// One agent of the fleet health table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HealthRow {
    pub agent: AgentId,
    pub name: String,
    pub current: Option<HealthPoint>,
    pub worst_level_24h: Option<HealthLevel>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HealthView {
    pub rows: Vec<HealthRow>,
    pub selected: Option<(AgentId, HealthCharts)>,
    pub alerts: Vec<Advice>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditView {
    /// Newest first.
    pub entries: Vec<AuditRecord>,
    /// Entries in a verified chain, or why it does not verify.
    pub verified: Result<u64, String>,
}

/// The stored screenshots of one agent over a period.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScreenshotsView {
    pub agent: AgentId,
    pub name: String,
    /// Newest first.
    pub shots: Vec<ScreenshotMeta>,
}

/// One person of the people screen.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PersonRow {
    pub person: Person,
    /// Each account with the name of its workstation, if it names one.
    pub accounts: Vec<(Account, Option<String>)>,
    /// The accounts seen that resolve to them, as `user@workstation`,
    /// sorted.
    pub seen: Vec<String>,
    /// Active time over the period (0 when deactivated: not computed).
    pub active_ms: i64,
}

/// The selected person's period.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PersonDetail {
    pub id: PersonId,
    /// Newest day first.
    pub attendance: Vec<AttendanceLine>,
    /// Their applications, on every workstation, only while signed in.
    pub summary: UsageSummary,
}

/// The people screen: persons, proposals, the selected person.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PeopleView {
    pub period: Period,
    /// Every person, active first, then by name.
    pub people: Vec<PersonRow>,
    /// Persons the console suggests for the accounts no one holds.
    pub proposals: Vec<Proposal>,
    pub selected: Option<PersonDetail>,
    /// Why the book could not be read (nothing is shown then).
    pub problem: Option<String>,
}

/// What a screen shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ViewData {
    Fleet(FleetView),
    Employee(Box<EmployeeView>),
    Organisation(Box<OrganisationView>),
    Attendance(AttendanceView),
    Health(Box<HealthView>),
    Audit(AuditView),
    Screenshots(ScreenshotsView),
    People(Box<PeopleView>),
}

/// What computing a view needs besides the store.
#[derive(Debug, Clone, Copy)]
pub struct ViewContext<'a> {
    pub categoriser: &'a Categoriser,
    pub settings: &'a ConsoleSettings,
    pub now_ms: UnixMillis,
}

/// Computes the data of one screen. Blocking (store reads).
pub fn compute(
    store: &ConsoleStore,
    request: &ViewRequest,
    context: ViewContext<'_>,
) -> Result<ViewData, StoreError> {
    Ok(match request {
        ViewRequest::Fleet => ViewData::Fleet(fleet(store, context)?),
        ViewRequest::Employee { agent, period } => {
            ViewData::Employee(Box::new(employee(store, *agent, *period, context)?))
        }
        ViewRequest::Organisation { period } => {
            ViewData::Organisation(Box::new(organisation(store, *period, context)?))
        }
        ViewRequest::Attendance { agent, period } => {
            ViewData::Attendance(attendance_view(store, *agent, *period, context)?)
        }
        ViewRequest::Health { agent } => {
            ViewData::Health(Box::new(health(store, *agent, context)?))
        }
        ViewRequest::Audit => ViewData::Audit(audit(store)?),
        ViewRequest::Screenshots { agent, period } => {
            ViewData::Screenshots(screenshots(store, *agent, *period, context)?)
        }
        ViewRequest::People { person, period } => {
            ViewData::People(Box::new(people(store, *person, *period, context)?))
        }
    })
}

pub fn status_of(record: &AgentRecord, now_ms: UnixMillis) -> Status {
    match record.last_seen_ms {
        Some(seen_ms) if now_ms - seen_ms < ONLINE_WITHIN_MS => Status::Online,
        Some(_) => Status::Offline,
        None => Status::Unknown,
    }
}

fn fleet(store: &ConsoleStore, context: ViewContext<'_>) -> Result<FleetView, StoreError> {
    let now_ms = context.now_ms;
    let show_current_app = context.settings.show_current_app;
    let mut faults: BTreeMap<AgentId, AgentFault> = BTreeMap::new();
    for fault in store.faults(None)? {
        if !fault.is_recent(now_ms) {
            continue;
        }
        let newer = faults
            .get(&fault.agent)
            .is_none_or(|shown| shown.last_ms < fault.last_ms);
        if newer {
            faults.insert(fault.agent, fault);
        }
    }
    let site = store.day_clock();
    let mut rows = Vec::new();
    for record in store.agents()? {
        let agent = record.agent;
        let status = status_of(&record, now_ms);
        let user = store
            .activity_spans(agent, now_ms - DAY_MS, now_ms + MINUTE_MS)?
            .pop()
            .map(|span| span.user);
        let current_app = if show_current_app && status == Status::Online {
            store
                .usage_spans(agent, now_ms - CURRENT_APP_WITHIN_MS, now_ms + MINUTE_MS)?
                .pop()
                .map(|span| span.app)
        } else {
            None
        };
        let latest_health = store
            .health_points(agent, now_ms - HOUR_MS, now_ms + MINUTE_MS)?
            .pop();
        rows.push(FleetRow {
            agent,
            name: record.name.clone(),
            status,
            last_seen_ms: record.last_seen_ms,
            address: record.addresses.first().cloned(),
            user,
            current_app,
            health: latest_health.as_ref().map(|point| point.level),
            health_score: latest_health.as_ref().map(|point| point.score),
            group: context.settings.groups.get(&agent).cloned(),
            demo: record.demo,
            other_zone: other_zone(&record, &site),
            last_error: record.last_error.clone(),
            fault: faults.remove(&agent),
        });
    }
    Ok(FleetView {
        rows,
        show_current_app,
    })
}

fn names(store: &ConsoleStore) -> Result<BTreeMap<AgentId, String>, StoreError> {
    Ok(store
        .agents()?
        .into_iter()
        .map(|record| (record.agent, record.name))
        .collect())
}

/// The usage summary of `agent` (or everyone) over `period`: raw spans for
/// 24 h, day rollups otherwise.
fn period_summary(
    store: &ConsoleStore,
    agents: &[AgentId],
    everyone: bool,
    range: Range,
    period: Period,
    categoriser: &Categoriser,
) -> Result<UsageSummary, StoreError> {
    let clock = &store.day_clock();
    let category_of = |app: &str| categoriser.categorise(app).category;
    match period {
        Period::Day => {
            let mut spans = Vec::new();
            for agent in agents {
                spans.extend(store.usage_spans(*agent, range.from_ms, range.to_ms)?);
            }
            Ok(usage_summary_from_spans(&spans, range, clock, &category_of))
        }
        Period::Week | Period::Month => {
            let days = range.days(clock);
            let (first, last) = (days.start, days.end - 1);
            let totals = if everyone {
                store.app_day_totals(None, first, last)?
            } else {
                let mut totals = Vec::new();
                for agent in agents {
                    totals.extend(store.app_day_totals(Some(*agent), first, last)?);
                }
                totals
            };
            Ok(usage_summary(&totals, &category_of))
        }
    }
}

/// Active and idle time per hour (24 h) or per day (from rollups).
fn trend(
    store: &ConsoleStore,
    agents: &[AgentId],
    everyone: bool,
    range: Range,
    period: Period,
) -> Result<(Trend, i64), StoreError> {
    let clock = &store.day_clock();
    match period {
        Period::Day => {
            let first_hour_ms = range.from_ms - range.from_ms.rem_euclid(HOUR_MS);
            let hours = ((range.to_ms - first_hour_ms) / HOUR_MS + 1).max(1) as usize;
            let mut buckets: Vec<(UnixMillis, i64, i64)> = (0..hours)
                .map(|hour| (first_hour_ms + hour as i64 * HOUR_MS, 0, 0))
                .collect();
            let mut idle_total_ms = 0;
            for agent in agents {
                for span in store.activity_spans(*agent, range.from_ms, range.to_ms)? {
                    let mut from_ms = span.start_ms;
                    while from_ms < span.end_ms {
                        let index = ((from_ms - first_hour_ms) / HOUR_MS) as usize;
                        let bucket_end_ms = first_hour_ms + (index as i64 + 1) * HOUR_MS;
                        let to_ms = span.end_ms.min(bucket_end_ms);
                        if let Some(bucket) = buckets.get_mut(index) {
                            match span.presence {
                                Presence::Active => bucket.1 += to_ms - from_ms,
                                Presence::Idle => {
                                    bucket.2 += to_ms - from_ms;
                                    idle_total_ms += to_ms - from_ms;
                                }
                                Presence::Locked => {}
                            }
                        }
                        from_ms = to_ms;
                    }
                }
            }
            Ok((
                Trend {
                    bucket_ms: HOUR_MS,
                    buckets,
                },
                idle_total_ms,
            ))
        }
        Period::Week | Period::Month => {
            let days = range.days(clock);
            let (first, last) = (days.start, days.end - 1);
            let totals = if everyone {
                store.presence_day_totals(None, first, last)?
            } else {
                let mut totals = Vec::new();
                for agent in agents {
                    totals.extend(store.presence_day_totals(Some(*agent), first, last)?);
                }
                totals
            };
            let mut by_day: BTreeMap<DayNumber, (i64, i64)> =
                days.clone().map(|day| (day, (0, 0))).collect();
            for total in &totals {
                let entry = by_day.entry(total.day).or_default();
                entry.0 += total.active_ms;
                entry.1 += total.idle_ms;
            }
            let idle_total_ms = by_day.values().map(|(_, idle_ms)| idle_ms).sum();
            Ok((
                Trend {
                    bucket_ms: DAY_MS,
                    buckets: by_day
                        .into_iter()
                        .map(|(day, (active_ms, idle_ms))| {
                            (clock.day_start_ms(day), active_ms, idle_ms)
                        })
                        .collect(),
                },
                idle_total_ms,
            ))
        }
    }
}

fn today(
    store: &ConsoleStore,
    agent: AgentId,
    categoriser: &Categoriser,
    now_ms: UnixMillis,
) -> Result<Timeline, StoreError> {
    let clock = &store.day_clock();
    let from_ms = clock.day_start_ms(clock.day_of(now_ms));
    let apps = store
        .usage_spans(agent, from_ms, now_ms)?
        .into_iter()
        .map(|span| {
            let category = categoriser.categorise(&span.app).category;
            (
                TimelineSpan {
                    start_ms: span.start_ms,
                    end_ms: span.end_ms,
                    label: span.app,
                },
                category,
            )
        })
        .collect();
    let presence = store
        .activity_spans(agent, from_ms, now_ms)?
        .into_iter()
        .map(|span| PresenceSpan {
            start_ms: span.start_ms,
            end_ms: span.end_ms,
            presence: span.presence,
        })
        .collect();
    let sessions = store
        .session_events(agent, from_ms, now_ms)?
        .into_iter()
        .filter_map(|event| {
            let kind = match event.kind {
                SessionKind::Login => "login",
                SessionKind::Logout => "logout",
                SessionKind::Lock => "lock",
                SessionKind::Unlock => "unlock",
                _ => return None,
            };
            Some(SessionMark {
                at_ms: event.at_ms,
                kind: kind.to_owned(),
            })
        })
        .collect();
    Ok(Timeline {
        from_ms,
        to_ms: now_ms,
        apps,
        presence,
        sessions,
    })
}

fn to_plot(points: &[SeriesPoint], now_ms: UnixMillis) -> Vec<[f64; 2]> {
    points
        .iter()
        .map(|point| {
            [
                (point.at_ms - now_ms) as f64 / HOUR_MS as f64,
                f64::from(point.value),
            ]
        })
        .collect()
}

/// Decimated health charts of `points` (sorted or not).
pub fn health_charts(points: &[HealthPoint], now_ms: UnixMillis) -> HealthCharts {
    let summary = health_summary(points, now_ms, MAX_PLOT_POINTS);
    HealthCharts {
        origin_ms: now_ms,
        cpu_pct: to_plot(&summary.cpu_pct, now_ms),
        mem_pct: to_plot(&summary.mem_pct, now_ms),
        disk_pct: to_plot(&summary.disk_pct, now_ms),
        score: to_plot(&summary.score, now_ms),
        raw_samples: points.len(),
        current: summary.current,
        worst_level_24h: summary.worst_level_24h,
    }
}

/// Raw points decimated for one plot (used by the benchmark too).
pub fn decimated_plot(points: &[SeriesPoint], now_ms: UnixMillis) -> Vec<[f64; 2]> {
    to_plot(&decimate(points, MAX_PLOT_POINTS), now_ms)
}

fn employee(
    store: &ConsoleStore,
    agent: AgentId,
    period: Period,
    context: ViewContext<'_>,
) -> Result<EmployeeView, StoreError> {
    let now_ms = context.now_ms;
    let clock = &store.day_clock();
    let range = period.range(now_ms, clock);
    let record = store.agent(agent)?;
    let name = record
        .as_ref()
        .map(|record| record.name.clone())
        .unwrap_or_else(|| agent.to_string());
    let other_zone = record.as_ref().and_then(|record| other_zone(record, clock));
    let attendance_clock = record.as_ref().map_or_else(
        || clock.clone(),
        |record| attendance_clock(record, context.settings, clock),
    );
    let summary = period_summary(store, &[agent], false, range, period, context.categoriser)?;
    let (trend, idle_ms) = trend(store, &[agent], false, range, period)?;
    let attendance_range = period.range(now_ms, &attendance_clock);
    let activity = store.activity_spans(agent, attendance_range.from_ms, attendance_range.to_ms)?;
    let sessions = store.session_events(agent, attendance_range.from_ms, attendance_range.to_ms)?;
    let mut days = attendance(&activity, &sessions, &attendance_clock, attendance_range);
    days.reverse();
    let health_points = store.health_points(agent, range.from_ms, range.to_ms.max(now_ms + 1))?;
    Ok(EmployeeView {
        agent,
        name,
        period,
        today: today(store, agent, context.categoriser, now_ms)?,
        summary,
        idle_ms,
        trend,
        own_zone_attendance: context.settings.own_zone_agents.contains(&agent),
        other_zone,
        attendance_clock,
        attendance: days,
        health: health_charts(&health_points, now_ms),
    })
}

fn advice(
    names: &BTreeMap<AgentId, String>,
    found: Vec<Recommendation>,
) -> (Vec<Advice>, Vec<Advice>) {
    let (alerts, advice): (Vec<Recommendation>, Vec<Recommendation>) = found
        .into_iter()
        .partition(|recommendation| recommendation.severity >= Severity::Warn);
    let name = |recommendation: Recommendation| Advice {
        agent_name: names
            .get(&recommendation.agent)
            .cloned()
            .unwrap_or_else(|| recommendation.agent.to_string()),
        recommendation,
    };
    (
        alerts.into_iter().map(name).collect(),
        advice.into_iter().map(name).collect(),
    )
}

/// Recommendations over the last 7 days of activity and today's usage.
fn fleet_recommendations(
    store: &ConsoleStore,
    agents: &[AgentId],
    now_ms: UnixMillis,
) -> Result<Vec<Recommendation>, StoreError> {
    let clock = &store.day_clock();
    let week = Range::last_days(now_ms, clock, 7);
    let today = clock.day_of(now_ms);
    let app_totals = store.app_day_totals(None, today, today)?;
    let mut activity = Vec::new();
    let mut health = Vec::new();
    let rules = RecommendationRules::default();
    for agent in agents {
        activity.extend(store.activity_spans(*agent, week.from_ms, week.to_ms)?);
        health.extend(store.health_points(
            *agent,
            now_ms - rules.health_max_age_ms,
            now_ms + MINUTE_MS,
        )?);
    }
    Ok(recommendations(
        &RecommendationInput {
            app_totals: &app_totals,
            activity: &activity,
            health: &health,
        },
        &rules,
        now_ms,
        clock,
    ))
}

fn organisation(
    store: &ConsoleStore,
    period: Period,
    context: ViewContext<'_>,
) -> Result<OrganisationView, StoreError> {
    let now_ms = context.now_ms;
    let clock = &store.day_clock();
    let records = store.agents()?;
    let agents: Vec<AgentId> = records.iter().map(|record| record.agent).collect();
    let range = period.range(now_ms, clock);
    let summary = period_summary(store, &agents, true, range, period, context.categoriser)?;
    let previous = period_summary(
        store,
        &agents,
        true,
        range.previous(),
        period,
        context.categoriser,
    )?;
    let (trend, idle_ms) = trend(store, &agents, true, range, period)?;
    let seen: Vec<AgentSeen> = records
        .iter()
        .map(|record| AgentSeen {
            agent: record.agent,
            name: record.name.clone(),
            last_seen_ms: record.last_seen_ms,
            connected: status_of(record, now_ms) == Status::Online,
            last_activity: None,
        })
        .collect();
    let names = records
        .iter()
        .map(|record| (record.agent, record.name.clone()))
        .collect();
    let (alerts, recommendations) = advice(&names, fleet_recommendations(store, &agents, now_ms)?);
    Ok(OrganisationView {
        period,
        agents: records.len(),
        change_pct: change_pct(summary.total_active_ms, previous.total_active_ms),
        previous_active_ms: previous.total_active_ms,
        summary,
        idle_ms,
        trend,
        presence: presence_now(&seen, now_ms),
        alerts,
        recommendations,
    })
}

fn attendance_view(
    store: &ConsoleStore,
    agent: Option<AgentId>,
    period: Period,
    context: ViewContext<'_>,
) -> Result<AttendanceView, StoreError> {
    let book = people_book(store)?;
    let lines = attendance_lines(store, &book, context.settings, agent, |clock| {
        period.range(context.now_ms, clock)
    })?;
    Ok(AttendanceView {
        agent,
        period,
        lines,
    })
}

/// The people book, or an empty one when it does not read (the people
/// screen says why; other screens fall back to workstations).
pub(crate) fn people_book(store: &ConsoleStore) -> Result<PeopleBook, StoreError> {
    match crate::people::load(store) {
        Ok(book) => Ok(book),
        Err(BookError::Store(error)) => Err(error),
        Err(error) => {
            tracing::warn!(%error, "people book unreadable: attendance per workstation");
            Ok(PeopleBook::default())
        }
    }
}

/// Attendance per person and local day (an account no person holds is
/// its own line, named `user (workstation)`), newest day first, then by
/// name; deactivated persons are left out. With `agent`, only that
/// workstation's time counts. Workstations whose attendance follows their
/// own zone (settings) are computed on their own clock, the others on the
/// site's; `range_of` gives the range for a clock. The one computation
/// behind the Attendance screen, its export and `export attendance`.
pub fn attendance_lines(
    store: &ConsoleStore,
    book: &PeopleBook,
    settings: &ConsoleSettings,
    agent: Option<AgentId>,
    range_of: impl Fn(&DayClock) -> Range,
) -> Result<Vec<AttendanceLine>, StoreError> {
    let site = &store.day_clock();
    let records = store.agents()?;
    let names: BTreeMap<AgentId, String> = records
        .iter()
        .map(|record| (record.agent, record.name.clone()))
        .collect();
    let name_of = |agent: &AgentId| {
        names
            .get(agent)
            .cloned()
            .unwrap_or_else(|| agent.to_string())
    };
    let mut by_clock: BTreeMap<String, (DayClock, Vec<AgentId>)> = BTreeMap::new();
    for record in &records {
        if agent.is_some_and(|wanted| wanted != record.agent) {
            continue;
        }
        let clock = attendance_clock(record, settings, site);
        by_clock
            .entry(clock.name().to_owned())
            .or_insert_with(|| (clock, Vec::new()))
            .1
            .push(record.agent);
    }
    let who_of = |agent: AgentId, user: &str| book.who(agent, user);
    let mut lines = Vec::new();
    for (clock, agents) in by_clock.into_values() {
        let range = range_of(&clock);
        let (mut activity, mut sessions) = (Vec::new(), Vec::new());
        for agent in &agents {
            activity.extend(store.activity_spans(*agent, range.from_ms, range.to_ms)?);
            sessions.extend(store.session_events(*agent, range.from_ms, range.to_ms)?);
        }
        for day in attendance_by(&activity, &sessions, &clock, range, &who_of) {
            let name = match &day.who {
                Who::Person(id) => match book.get(*id) {
                    Some(person) if person.active => person.name.clone(),
                    _ => continue,
                },
                Who::Account { agent, user } => format!("{user} ({})", name_of(agent)),
            };
            let mut workstations: Vec<String> = day.workstations.iter().map(&name_of).collect();
            workstations.sort();
            lines.push(AttendanceLine {
                name,
                workstations,
                clock: clock.clone(),
                day,
            });
        }
    }
    lines.sort_by(|a, b| {
        b.day
            .day
            .cmp(&a.day.day)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.day.users.cmp(&b.day.users))
    });
    Ok(lines)
}

fn people(
    store: &ConsoleStore,
    selected: Option<PersonId>,
    period: Period,
    context: ViewContext<'_>,
) -> Result<PeopleView, StoreError> {
    let book = match crate::people::load(store) {
        Ok(book) => book,
        Err(BookError::Store(error)) => return Err(error),
        Err(problem) => {
            return Ok(PeopleView {
                period,
                people: Vec::new(),
                proposals: Vec::new(),
                selected: None,
                problem: Some(problem.to_string()),
            })
        }
    };
    let names = names(store)?;
    let name_of = |agent: AgentId| {
        names
            .get(&agent)
            .cloned()
            .unwrap_or_else(|| agent.to_string())
    };
    let seen = store.accounts(None)?;
    let lines = attendance_lines(store, &book, context.settings, None, |clock| {
        period.range(context.now_ms, clock)
    })?;
    let mut active: BTreeMap<PersonId, i64> = BTreeMap::new();
    for line in &lines {
        if let Who::Person(id) = line.day.who {
            *active.entry(id).or_default() += line.day.active_ms;
        }
    }
    let mut seen_as = book.seen_as(&seen, &name_of);
    let mut people: Vec<PersonRow> = book
        .people()
        .iter()
        .map(|person| PersonRow {
            accounts: person
                .accounts
                .iter()
                .map(|account| (account.clone(), account.agent.map(name_of)))
                .collect(),
            seen: seen_as.remove(&person.id).unwrap_or_default(),
            active_ms: active.get(&person.id).copied().unwrap_or(0),
            person: person.clone(),
        })
        .collect();
    people.sort_by(|a, b| {
        b.person
            .active
            .cmp(&a.person.active)
            .then_with(|| a.person.name.cmp(&b.person.name))
            .then_with(|| a.person.id.cmp(&b.person.id))
    });
    let selected = match selected.and_then(|id| book.get(id)) {
        Some(person) => {
            let clock = store.day_clock();
            let range = period.range(context.now_ms, &clock);
            let mut spans = Vec::new();
            let agents: std::collections::BTreeSet<AgentId> = book
                .seen_accounts(person.id, &seen)
                .into_iter()
                .map(|(agent, _)| agent)
                .collect();
            for agent in agents {
                let usage = store.usage_spans(agent, range.from_ms, range.to_ms)?;
                let activity = store.activity_spans(agent, range.from_ms, range.to_ms)?;
                let theirs = |user: &str| {
                    book.resolve(agent, user)
                        .is_some_and(|holder| holder.id == person.id)
                };
                spans.extend(usage_of(&usage, &activity, &theirs));
            }
            let category_of = |app: &str| context.categoriser.categorise(app).category;
            Some(PersonDetail {
                id: person.id,
                attendance: lines
                    .iter()
                    .filter(|line| line.day.who == Who::Person(person.id))
                    .cloned()
                    .collect(),
                summary: usage_summary_from_spans(&spans, range, &clock, &category_of),
            })
        }
        None => None,
    };
    Ok(PeopleView {
        period,
        people,
        proposals: book.proposals(&seen, &name_of),
        selected,
        problem: None,
    })
}

fn health(
    store: &ConsoleStore,
    selected: Option<AgentId>,
    context: ViewContext<'_>,
) -> Result<HealthView, StoreError> {
    let now_ms = context.now_ms;
    let records = store.agents()?;
    let mut rows = Vec::new();
    for record in &records {
        let last_day = store.health_points(record.agent, now_ms - DAY_MS, now_ms + MINUTE_MS)?;
        rows.push(HealthRow {
            agent: record.agent,
            name: record.name.clone(),
            current: last_day.last().cloned(),
            worst_level_24h: last_day.iter().map(|point| point.level).max(),
        });
    }
    let selected = match selected {
        Some(agent) => {
            let range = Period::Month.range(now_ms, &store.day_clock());
            let points = store.health_points(agent, range.from_ms, now_ms + MINUTE_MS)?;
            Some((agent, health_charts(&points, now_ms)))
        }
        None => None,
    };
    let agents: Vec<AgentId> = records.iter().map(|record| record.agent).collect();
    let names = names(store)?;
    let mut found = fleet_recommendations(store, &agents, now_ms)?;
    found.retain(|recommendation| {
        matches!(
            recommendation.kind,
            crate::analytics::RecommendationKind::HealthCritical { .. }
                | crate::analytics::RecommendationKind::DiskAlmostFull { .. }
        )
    });
    let (alerts, _) = advice(&names, found);
    Ok(HealthView {
        rows,
        selected,
        alerts,
    })
}

fn audit(store: &ConsoleStore) -> Result<AuditView, StoreError> {
    let verified = store.verify_audit().map_err(|error| error.to_string());
    let total = *verified.as_ref().unwrap_or(&0);
    let from_index = total.saturating_sub(AUDIT_PAGE as u64);
    let mut entries = store.audit_log(from_index, AUDIT_PAGE)?;
    entries.reverse();
    Ok(AuditView { entries, verified })
}

fn screenshots(
    store: &ConsoleStore,
    agent: AgentId,
    period: Period,
    context: ViewContext<'_>,
) -> Result<ScreenshotsView, StoreError> {
    let range = period.range(context.now_ms, &store.day_clock());
    let name = store
        .agent(agent)?
        .map(|record| record.name)
        .unwrap_or_else(|| agent.to_string());
    // Capture times are the workstation's: a little slack for its clock.
    let mut shots = store.screenshots(agent, range.from_ms, range.to_ms + HOUR_MS)?;
    shots.reverse();
    Ok(ScreenshotsView { agent, name, shots })
}
