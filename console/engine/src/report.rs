//! The text report of `smarttracker-console report`: the organisation over
//! a period, from rollups (never raw scans) plus the attendance, presence,
//! health and recommendations a manager reads first.

use std::fmt::Write as _;

use protocol::UnixMillis;

use crate::analytics::{
    attendance, change_pct, format_duration_ms, health_summary, presence_now, recommendations,
    usage_summary, AgentSeen, Range, RecommendationInput, RecommendationRules,
};
use crate::categories::Categoriser;
use crate::export::day_text;
use crate::store::{ConsoleStore, StoreError};

/// A connection within this long counts as online.
pub const ONLINE_WITHIN_MS: i64 = 120_000;

/// Renders the report for `range` as of `now_ms`.
pub fn render(
    store: &ConsoleStore,
    categoriser: &Categoriser,
    range: Range,
    label: &str,
    now_ms: UnixMillis,
) -> Result<String, StoreError> {
    let clock = &store.day_clock();
    let agents = store.agents()?;
    let days = range.days(clock);
    let (first_day, last_day) = (days.start, days.end - 1);
    let category_of = |app: &str| categoriser.categorise(app).category;
    let totals = store.app_day_totals(None, first_day, last_day)?;
    let summary = usage_summary(&totals, &category_of);
    let previous = range.previous().days(clock);
    let previous_totals = store.app_day_totals(None, previous.start, previous.end - 1)?;
    let previous_summary = usage_summary(&previous_totals, &category_of);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "SmartTracker report, {label} ({} to {}), {} agent(s)",
        day_text(first_day),
        day_text(last_day),
        agents.len()
    );
    if agents.iter().any(|agent| agent.demo) {
        let _ = writeln!(out, "Includes DEMO agents: their data is simulated.");
    }

    let seen: Vec<AgentSeen> = agents
        .iter()
        .map(|agent| AgentSeen {
            agent: agent.agent,
            name: agent.name.clone(),
            last_seen_ms: agent.last_seen_ms,
            connected: agent
                .last_seen_ms
                .is_some_and(|seen_ms| now_ms - seen_ms < ONLINE_WITHIN_MS),
            last_activity: None,
        })
        .collect();
    let presence = presence_now(&seen, now_ms);
    let _ = writeln!(
        out,
        "\nFleet: {} online, {} left recently, {} offline",
        presence.online.len(),
        presence.left_recently.len(),
        presence.offline.len()
    );
    for agent in &presence.left_recently {
        let _ = writeln!(
            out,
            "  left recently: {} ({} ago)",
            agent.name,
            format_duration_ms(agent.ago_ms.unwrap_or(0))
        );
    }

    let change = change_pct(summary.total_active_ms, previous_summary.total_active_ms)
        .map(|pct| format!(" ({pct:+.0} % on the previous period)"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\nActive time: {}{change}",
        format_duration_ms(summary.total_active_ms)
    );
    if summary.total_active_ms == 0 {
        let _ = writeln!(
            out,
            "  nothing recorded in this period: run `smarttracker-console sync --once` to pull from the agents"
        );
    }
    let _ = writeln!(out, "\nTop applications:");
    for (app, active_ms) in summary.top_apps.iter().take(10) {
        let _ = writeln!(
            out,
            "  {:<32} {:>9}  {}",
            app,
            format_duration_ms(*active_ms),
            category_of(app)
        );
    }
    let _ = writeln!(out, "\nBy category:");
    for (category, active_ms) in &summary.by_category {
        let share = *active_ms as f64 * 100.0 / summary.total_active_ms.max(1) as f64;
        let _ = writeln!(
            out,
            "  {:<16} {:>9}  {share:>5.1} %",
            category,
            format_duration_ms(*active_ms)
        );
    }
    let _ = writeln!(out, "\nPer day:");
    for (day, active_ms) in summary.daily_trend(range, clock) {
        let _ = writeln!(
            out,
            "  {}  {:>9}",
            day_text(day),
            format_duration_ms(active_ms)
        );
    }

    let _ = writeln!(out, "\nPer agent (attendance over the period):");
    let mut input_activity = Vec::new();
    let mut input_health = Vec::new();
    for agent in &agents {
        let activity = store.activity_spans(agent.agent, range.from_ms, range.to_ms)?;
        let sessions = store.session_events(agent.agent, range.from_ms, range.to_ms)?;
        let days = attendance(&activity, &sessions, clock, range);
        let active_ms: i64 = days.iter().map(|day| day.active_ms).sum();
        let idle_ms: i64 = days.iter().map(|day| day.idle_ms).sum();
        let health = store.health_points(agent.agent, now_ms - 86_400_000, now_ms)?;
        let health_now = health_summary(&health, now_ms, 2)
            .current
            .map(|point| format!("health {} ({:?})", point.score, point.level))
            .unwrap_or_else(|| "no recent health".to_owned());
        let _ = writeln!(
            out,
            "  {:<20} {} day(s) present, active {}, idle {}, {health_now}",
            agent.name,
            days.len(),
            format_duration_ms(active_ms),
            format_duration_ms(idle_ms)
        );
        input_activity.extend(activity);
        input_health.extend(health);
    }

    let advice = recommendations(
        &RecommendationInput {
            app_totals: &totals,
            activity: &input_activity,
            health: &input_health,
        },
        &RecommendationRules::default(),
        now_ms,
        clock,
    );
    let _ = writeln!(out, "\nRecommendations:");
    if advice.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for item in advice.iter().take(20) {
        let name = agents
            .iter()
            .find(|agent| agent.agent == item.agent)
            .map_or("?", |agent| agent.name.as_str());
        let _ = writeln!(out, "  [{:?}] {name}: {}", item.severity, item.text());
    }
    Ok(out)
}
