//! The text report of `smarttracker-console report`: the organisation over
//! a period, from rollups (never raw scans) plus the attendance, presence,
//! health and recommendations a manager reads first, in the manager's
//! language (dates stay ISO, app names as recorded).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use protocol::UnixMillis;

use crate::analytics::{
    attendance, change_pct, health_summary, presence_now, recommendations, usage_summary,
    AgentSeen, Range, RecommendationInput, RecommendationRules,
};
use crate::categories::Categoriser;
use crate::export::day_text;
use crate::i18n::{
    category_label, change_label, duration_label, health_level_key, percent_label,
    recommendation_text, severity_key, tr, trf, Lang,
};
use crate::settings::ConsoleSettings;
use crate::store::{ConsoleStore, StoreError};

/// A connection within this long counts as online.
pub const ONLINE_WITHIN_MS: i64 = 120_000;

/// Renders the report for `range` (called `label`, already in `lang`) as of
/// `now_ms`, in `lang`: the organisation, each workstation (attendance and
/// health), each person (attendance across their workstations; an account
/// no person holds is its own line), recommendations.
pub fn render(
    store: &ConsoleStore,
    categoriser: &Categoriser,
    settings: &ConsoleSettings,
    range: Range,
    label: &str,
    lang: Lang,
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
        "{}",
        trf(
            lang,
            "report.title",
            &[
                ("period", label),
                ("from", &day_text(first_day)),
                ("to", &day_text(last_day)),
                ("agents", &agents.len().to_string()),
            ],
        )
    );
    if agents.iter().any(|agent| agent.demo) {
        let _ = writeln!(out, "{}", tr(lang, "report.demo"));
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
        "\n{}",
        trf(
            lang,
            "report.fleet",
            &[
                ("online", &presence.online.len().to_string()),
                ("left", &presence.left_recently.len().to_string()),
                ("offline", &presence.offline.len().to_string()),
            ],
        )
    );
    for agent in &presence.left_recently {
        let ago = duration_label(lang, agent.ago_ms.unwrap_or(0));
        let ago = trf(lang, "seen.ago", &[("ago", &ago)]);
        let _ = writeln!(
            out,
            "  {}",
            trf(
                lang,
                "report.left_recently",
                &[("name", &agent.name), ("ago", &ago)]
            )
        );
    }

    let change = change_pct(summary.total_active_ms, previous_summary.total_active_ms)
        .map(|pct| {
            let pct = change_label(lang, pct);
            format!(" ({})", trf(lang, "vs_previous", &[("pct", &pct)]))
        })
        .unwrap_or_default();
    let active = duration_label(lang, summary.total_active_ms);
    let _ = writeln!(
        out,
        "\n{}{change}",
        trf(lang, "report.active_time", &[("duration", &active)])
    );
    if summary.total_active_ms == 0 {
        let _ = writeln!(out, "  {}", tr(lang, "report.nothing"));
    }
    let _ = writeln!(out, "\n{}", tr(lang, "report.top_apps"));
    for (app, active_ms) in summary.top_apps.iter().take(10) {
        let _ = writeln!(
            out,
            "  {:<32} {:>11}  {}",
            app,
            duration_label(lang, *active_ms),
            category_label(lang, &category_of(app))
        );
    }
    let _ = writeln!(out, "\n{}", tr(lang, "report.by_category"));
    for (category, active_ms) in &summary.by_category {
        let share = *active_ms as f64 * 100.0 / summary.total_active_ms.max(1) as f64;
        let _ = writeln!(
            out,
            "  {:<16} {:>11}  {:>7}",
            category_label(lang, category),
            duration_label(lang, *active_ms),
            percent_label(lang, share, 1)
        );
    }
    let _ = writeln!(out, "\n{}", tr(lang, "report.per_day"));
    for (day, active_ms) in summary.daily_trend(range, clock) {
        let _ = writeln!(
            out,
            "  {}  {:>11}",
            day_text(day),
            duration_label(lang, active_ms)
        );
    }

    let _ = writeln!(out, "\n{}", tr(lang, "report.per_agent"));
    let mut input_activity = Vec::new();
    let mut input_health = Vec::new();
    for agent in &agents {
        let activity = store.activity_spans(agent.agent, range.from_ms, range.to_ms)?;
        let sessions = store.session_events(agent.agent, range.from_ms, range.to_ms)?;
        let days = attendance(&activity, &sessions, clock, range);
        let active_ms: i64 = days.iter().map(|day| day.active_ms).sum();
        let idle_ms: i64 = days.iter().map(|day| day.idle_ms).sum();
        // A shared workstation has a line per user and day: days once.
        let present_days = days
            .iter()
            .map(|day| day.day)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let health = store.health_points(agent.agent, now_ms - 86_400_000, now_ms)?;
        let health_now = health_summary(&health, now_ms, 2).current.map_or_else(
            || tr(lang, "report.no_health").to_owned(),
            |point| {
                trf(
                    lang,
                    "report.health",
                    &[
                        ("score", &point.score.to_string()),
                        ("level", tr(lang, health_level_key(Some(point.level)))),
                    ],
                )
            },
        );
        let line = trf(
            lang,
            "report.agent_line",
            &[
                ("days", &present_days.to_string()),
                ("active", &duration_label(lang, active_ms)),
                ("idle", &duration_label(lang, idle_ms)),
                ("health", &health_now),
            ],
        );
        let _ = writeln!(out, "  {:<20} {line}", agent.name);
        input_activity.extend(activity);
        input_health.extend(health);
    }

    let _ = writeln!(out, "\n{}", tr(lang, "report.per_person"));
    let book = crate::views::people_book(store)?;
    let mut per_person: BTreeMap<String, (usize, i64, i64)> = BTreeMap::new();
    for line in crate::views::attendance_lines(store, &book, settings, None, |_| range)? {
        let entry = per_person.entry(line.name).or_default();
        entry.0 += 1;
        entry.1 += line.day.active_ms;
        entry.2 += line.day.idle_ms;
    }
    if per_person.is_empty() {
        let _ = writeln!(out, "  {}", tr(lang, "report.nothing"));
    }
    for (name, (days, active_ms, idle_ms)) in per_person {
        let line = trf(
            lang,
            "report.person_line",
            &[
                ("days", &days.to_string()),
                ("active", &duration_label(lang, active_ms)),
                ("idle", &duration_label(lang, idle_ms)),
            ],
        );
        let _ = writeln!(out, "  {name:<28} {line}");
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
    let _ = writeln!(out, "\n{}", tr(lang, "report.recommendations"));
    if advice.is_empty() {
        let _ = writeln!(out, "  {}", tr(lang, "org.no_recommendations"));
    }
    for item in advice.iter().take(20) {
        let name = agents
            .iter()
            .find(|agent| agent.agent == item.agent)
            .map_or("?", |agent| agent.name.as_str());
        let _ = writeln!(
            out,
            "  [{}] {name}: {}",
            tr(lang, severity_key(item.severity)),
            recommendation_text(lang, item)
        );
    }
    Ok(out)
}
