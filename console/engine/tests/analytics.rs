//! Table-driven tests of the console's pure analytics on hand-built days
//! with injected time (Paris winter offset unless said otherwise).

use console_engine::analytics::change_pct;
use console_engine::analytics::{
    attendance, decimate, format_duration_ms, format_hms, health_summary, presence_now,
    recommendations, rollup, usage_summary, usage_summary_from_spans, weekday, AgentSeen, AppLimit,
    AttendanceDay, Param, Range, Recommendation, RecommendationInput, RecommendationKind,
    RecommendationRules, SeriesPoint, Severity, WorkSession, HOUR_MS, MINUTE_MS, SECOND_MS,
};
use console_engine::analytics::{attendance_by, usage_of};
use console_engine::i18n::{recommendation_text, Lang};
use console_engine::model::{
    ActivitySpan, AgentId, AppDayTotal, DayClock, DayNumber, HealthLevel, HealthPoint, Presence,
    SessionEvent, SessionKind, UsageSpan, DAY_MS,
};
use console_engine::people::{Account, PeopleBook, PersonId, Who};
use uuid::Uuid;

/// Europe/Paris, daylight saving included.
fn paris() -> &'static DayClock {
    static PARIS: std::sync::LazyLock<DayClock> = std::sync::LazyLock::new(|| {
        DayClock::from_name("Europe/Paris").expect("Europe/Paris is in the tz database")
    });
    &PARIS
}

/// 2026-03-02, a Monday.
const MONDAY: DayNumber = 20_514;

fn agent(n: u128) -> AgentId {
    Uuid::from_u128(n)
}

/// `hours:minutes` local time on `day` (hours may pass 24).
fn at(clock: &DayClock, day: DayNumber, hours: i64, minutes: i64) -> i64 {
    clock.day_start_ms(day) + hours * HOUR_MS + minutes * MINUTE_MS
}

fn usage(agent_n: u128, app: &str, start_ms: i64, end_ms: i64) -> UsageSpan {
    UsageSpan {
        agent: agent(agent_n),
        start_ms,
        end_ms,
        app: app.to_owned(),
        title: None,
    }
}

fn span(presence: Presence, start_ms: i64, end_ms: i64) -> ActivitySpan {
    user_span("anna", presence, start_ms, end_ms)
}

fn user_span(user: &str, presence: Presence, start_ms: i64, end_ms: i64) -> ActivitySpan {
    ActivitySpan {
        agent: agent(1),
        start_ms,
        end_ms,
        presence,
        user: user.to_owned(),
    }
}

/// Active time cut into 5-minute spans, as the agent records it.
fn active_in_pieces(start_ms: i64, end_ms: i64) -> Vec<ActivitySpan> {
    let mut spans = Vec::new();
    let mut from_ms = start_ms;
    while from_ms < end_ms {
        let to_ms = end_ms.min(from_ms + 5 * MINUTE_MS);
        spans.push(span(Presence::Active, from_ms, to_ms));
        from_ms = to_ms;
    }
    spans
}

fn event(kind: SessionKind, at_ms: i64) -> SessionEvent {
    SessionEvent {
        agent: agent(1),
        at_ms,
        kind,
        user: "anna".to_owned(),
    }
}

fn category_of(app: &str) -> String {
    match app {
        "Firefox" | "Chromium" => "Web",
        "LibreOffice" | "Visual Studio Code" => "Work",
        _ => "Other",
    }
    .to_owned()
}

#[test]
fn durations_read_like_people_write_them() {
    let cases = [
        (0, "0 s", "0s"),
        (999, "0 s", "0s"),
        (30 * SECOND_MS, "30 s", "30s"),
        (59 * SECOND_MS, "59 s", "59s"),
        (59_999, "59 s", "59s"),
        (MINUTE_MS, "1 min", "1m 0s"),
        (45 * MINUTE_MS + 30 * SECOND_MS, "45 min", "45m 30s"),
        (HOUR_MS, "1 h 00", "1h 0m 0s"),
        (HOUR_MS + 5 * MINUTE_MS, "1 h 05", "1h 5m 0s"),
        (
            2 * HOUR_MS + 30 * MINUTE_MS + 45 * SECOND_MS,
            "2 h 30",
            "2h 30m 45s",
        ),
        (25 * HOUR_MS, "25 h 00", "25h 0m 0s"),
        (-90 * SECOND_MS, "-1 min", "-1m 30s"),
        (-500, "0 s", "0s"),
    ];
    for (ms, people, hms) in cases {
        assert_eq!(format_duration_ms(ms), people, "format_duration_ms({ms})");
        assert_eq!(format_hms(ms), hms, "format_hms({ms})");
    }
}

#[test]
fn ranges_cover_whole_local_days_in_any_zone() {
    // 2026-03-04T10:00:00Z, a Wednesday; no zone below changes its offset
    // within 30 days before it.
    let now_ms = 1_772_618_400_000;
    let zones = [
        "UTC",
        "Europe/Paris",
        "Asia/Dubai",
        "America/Bogota",
        "Asia/Kolkata",
        "Pacific/Kiritimati",
        "Etc/GMT+12",
    ];
    for zone in zones {
        let clock = &DayClock::from_name(zone).expect("zone");
        let today = clock.day_of(now_ms);
        let tomorrow_start_ms = clock.day_start_ms(today + 1);

        let day = Range::last_24h(now_ms);
        assert_eq!((day.from_ms, day.to_ms), (now_ms - DAY_MS, now_ms));

        for (days, expected_days) in [(0, 1), (1, 1), (7, 7), (30, 30)] {
            let range = Range::last_days(now_ms, clock, days);
            assert_eq!(range.to_ms, tomorrow_start_ms, "{zone}, {days} d");
            assert_eq!(range.from_ms, clock.day_start_ms(today - expected_days + 1));
            assert_eq!(range.duration_ms(), i64::from(expected_days) * DAY_MS);
            assert!(range.contains(now_ms));
            assert_eq!(
                range.days(clock).count(),
                usize::try_from(expected_days).unwrap_or(0)
            );
            assert_eq!(range.days(clock).last(), Some(today));
            // Local midnight, whatever the offset.
            assert_eq!(clock.ms_since_midnight(range.from_ms), 0, "{zone}");
            let previous = range.previous();
            assert_eq!(previous.to_ms, range.from_ms);
            assert_eq!(previous.duration_ms(), range.duration_ms());
        }
    }
    let custom = Range::custom(5_000, 1_000);
    assert_eq!((custom.from_ms, custom.to_ms), (1_000, 5_000));
    assert!(!custom.contains(5_000));
    assert_eq!(custom.clip(0, 2_000), Some((1_000, 2_000)));
    assert_eq!(custom.clip(5_000, 6_000), None);
    assert_eq!(Range::custom(7, 7).days(&DayClock::utc()).count(), 0);
}

#[test]
fn rollup_splits_at_local_midnight() {
    // (name, span start and end in local hours on MONDAY, (day offset, ms) per day)
    let cases = [
        ("within a day", 9, 11, vec![(0, 2 * HOUR_MS)]),
        (
            "across Paris midnight",
            23,
            25,
            vec![(0, HOUR_MS), (1, HOUR_MS)],
        ),
        (
            "over three days",
            22,
            50,
            vec![(0, 2 * HOUR_MS), (1, 24 * HOUR_MS), (2, 2 * HOUR_MS)],
        ),
        ("empty span", 9, 9, vec![]),
    ];
    for (name, start_h, end_h, expected) in cases {
        let spans = [usage(
            1,
            "Firefox",
            at(paris(), MONDAY, start_h, 0),
            at(paris(), MONDAY, end_h, 0),
        )];
        let got: Vec<(i32, i64)> = rollup(&spans, paris())
            .into_iter()
            .map(|total| (total.day - MONDAY, total.active_ms))
            .collect();
        assert_eq!(got, expected, "{name}");
    }

    // 23:30–00:30 UTC crosses midnight in UTC, not in Paris (00:30–01:30).
    let start_ms = DayClock::utc().day_start_ms(MONDAY) + 23 * HOUR_MS + 30 * MINUTE_MS;
    let spans = [usage(1, "Firefox", start_ms, start_ms + HOUR_MS)];
    assert_eq!(rollup(&spans, &DayClock::utc()).len(), 2);
    let in_paris = rollup(&spans, paris());
    assert_eq!(in_paris.len(), 1);
    assert_eq!(
        (in_paris[0].day, in_paris[0].active_ms),
        (MONDAY + 1, HOUR_MS)
    );

    // Same (agent, day, app) sums; sorted by agent, day, app.
    let spans = [
        usage(
            2,
            "Firefox",
            at(paris(), MONDAY, 9, 0),
            at(paris(), MONDAY, 10, 0),
        ),
        usage(
            1,
            "Firefox",
            at(paris(), MONDAY, 9, 0),
            at(paris(), MONDAY, 10, 0),
        ),
        usage(
            1,
            "Chromium",
            at(paris(), MONDAY, 11, 0),
            at(paris(), MONDAY, 11, 30),
        ),
        usage(
            1,
            "Firefox",
            at(paris(), MONDAY, 12, 0),
            at(paris(), MONDAY, 12, 15),
        ),
    ];
    let got: Vec<(AgentId, &str, i64)> = rollup(&spans, paris())
        .iter()
        .map(|total| (total.agent, leak(&total.app), total.active_ms))
        .collect();
    assert_eq!(
        got,
        [
            (agent(1), "Chromium", 30 * MINUTE_MS),
            (agent(1), "Firefox", 75 * MINUTE_MS),
            (agent(2), "Firefox", HOUR_MS),
        ]
    );
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

fn total(agent_n: u128, day: DayNumber, app: &str, active_ms: i64) -> AppDayTotal {
    AppDayTotal {
        agent: agent(agent_n),
        day,
        app: app.to_owned(),
        active_ms,
    }
}

#[test]
fn usage_summary_ranks_by_time_then_name() {
    let totals = [
        total(1, MONDAY, "Firefox", 2 * HOUR_MS),
        total(1, MONDAY, "LibreOffice", HOUR_MS),
        total(1, MONDAY + 1, "Chromium", HOUR_MS),
        total(2, MONDAY + 1, "Firefox", HOUR_MS),
        total(2, MONDAY + 1, "Terminal", 30 * MINUTE_MS),
        total(2, MONDAY + 2, "Visual Studio Code", 0),
    ];
    let summary = usage_summary(&totals, &category_of);
    assert_eq!(summary.total_active_ms, 5 * HOUR_MS + 30 * MINUTE_MS);
    assert_eq!(
        summary.top_apps,
        [
            ("Firefox".to_owned(), 3 * HOUR_MS),
            ("Chromium".to_owned(), HOUR_MS),
            ("LibreOffice".to_owned(), HOUR_MS),
            ("Terminal".to_owned(), 30 * MINUTE_MS),
        ]
    );
    assert_eq!(
        summary.by_category,
        [
            ("Web".to_owned(), 4 * HOUR_MS),
            ("Work".to_owned(), HOUR_MS),
            ("Other".to_owned(), 30 * MINUTE_MS),
        ]
    );
    assert_eq!(
        summary.by_agent,
        [
            (agent(1), 4 * HOUR_MS),
            (agent(2), HOUR_MS + 30 * MINUTE_MS)
        ]
    );
    assert_eq!(
        summary.per_day,
        [
            (MONDAY, 3 * HOUR_MS),
            (MONDAY + 1, 2 * HOUR_MS + 30 * MINUTE_MS)
        ]
    );
    let week = Range::custom(
        paris().day_start_ms(MONDAY - 1),
        paris().day_start_ms(MONDAY + 3),
    );
    assert_eq!(
        summary.daily_trend(week, paris()),
        [
            (MONDAY - 1, 0),
            (MONDAY, 3 * HOUR_MS),
            (MONDAY + 1, 2 * HOUR_MS + 30 * MINUTE_MS),
            (MONDAY + 2, 0),
        ]
    );
    assert_eq!(usage_summary(&[], &category_of), Default::default());
}

#[test]
fn usage_from_spans_clips_to_the_last_24_hours() {
    let now_ms = at(paris(), MONDAY + 1, 10, 0);
    let spans = [
        // Half before the window.
        usage(
            1,
            "Firefox",
            at(paris(), MONDAY, 9, 0),
            at(paris(), MONDAY, 11, 0),
        ),
        // Across midnight inside the window.
        usage(
            1,
            "LibreOffice",
            at(paris(), MONDAY, 23, 0),
            at(paris(), MONDAY + 1, 1, 0),
        ),
        // Entirely before.
        usage(
            1,
            "Chromium",
            at(paris(), MONDAY, 8, 0),
            at(paris(), MONDAY, 9, 0),
        ),
        // Running past now.
        usage(
            1,
            "Terminal",
            at(paris(), MONDAY + 1, 9, 30),
            at(paris(), MONDAY + 1, 10, 30),
        ),
    ];
    let summary = usage_summary_from_spans(&spans, Range::last_24h(now_ms), paris(), &category_of);
    assert_eq!(
        summary.top_apps,
        [
            ("LibreOffice".to_owned(), 2 * HOUR_MS),
            ("Firefox".to_owned(), HOUR_MS),
            ("Terminal".to_owned(), 30 * MINUTE_MS),
        ]
    );
    assert_eq!(
        summary.per_day,
        [
            (MONDAY, 2 * HOUR_MS),
            (MONDAY + 1, HOUR_MS + 30 * MINUTE_MS)
        ]
    );
    assert_eq!(summary.total_active_ms, 3 * HOUR_MS + 30 * MINUTE_MS);
}

#[test]
fn change_against_the_previous_period() {
    assert_eq!(change_pct(5 * HOUR_MS, 4 * HOUR_MS), Some(25.0));
    assert_eq!(change_pct(2 * HOUR_MS, 4 * HOUR_MS), Some(-50.0));
    assert_eq!(change_pct(HOUR_MS, 0), None);
}

/// What an attendance row is expected to hold, in local hours:minutes.
struct Expect {
    day: DayNumber,
    arrival: Option<(i64, i64)>,
    departure: Option<(i64, i64)>,
    active_ms: i64,
    idle_ms: i64,
    locked_ms: i64,
    effective_ms: i64,
    /// Sessions as local (start h, start min, end h, end min).
    sessions: Vec<(i64, i64, i64, i64)>,
}

fn check_row(name: &str, row: &AttendanceDay, expect: &Expect) {
    let local = |(hours, minutes): (i64, i64)| at(paris(), expect.day, hours, minutes);
    assert_eq!(row.day, expect.day, "{name}: day");
    assert_eq!(row.arrival_ms, expect.arrival.map(local), "{name}: arrival");
    assert_eq!(
        row.departure_ms,
        expect.departure.map(local),
        "{name}: departure"
    );
    assert_eq!(row.active_ms, expect.active_ms, "{name}: active");
    assert_eq!(row.net_ms, expect.active_ms, "{name}: net is active");
    assert_eq!(row.idle_ms, expect.idle_ms, "{name}: idle");
    assert_eq!(row.locked_ms, expect.locked_ms, "{name}: locked");
    assert_eq!(row.effective_ms, expect.effective_ms, "{name}: effective");
    let sessions: Vec<(i64, i64)> = row
        .sessions
        .iter()
        .map(|session| (session.start_ms, session.end_ms))
        .collect();
    let expected: Vec<(i64, i64)> = expect
        .sessions
        .iter()
        .map(|&(h1, m1, h2, m2)| (local((h1, m1)), local((h2, m2))))
        .collect();
    assert_eq!(sessions, expected, "{name}: sessions");
    let session_active_ms: i64 = row.sessions.iter().map(|session| session.active_ms).sum();
    assert_eq!(
        session_active_ms, expect.active_ms,
        "{name}: sessions hold all active time"
    );
}

#[test]
fn attendance_table() {
    let d = MONDAY;
    let t = |hours, minutes| at(paris(), d, hours, minutes);
    let whole_week = Range::custom(paris().day_start_ms(d - 7), paris().day_start_ms(d + 7));
    use Presence::{Active, Idle, Locked};
    use SessionKind::{Lock, Login, Logout};

    type Case = (
        &'static str,
        Vec<ActivitySpan>,
        Vec<SessionEvent>,
        Vec<Expect>,
    );
    let cases: Vec<Case> = vec![
        (
            "no activity",
            vec![],
            vec![event(Login, t(9, 0)), event(Logout, t(17, 0))],
            vec![],
        ),
        (
            "idle only",
            vec![span(Idle, t(9, 0), t(12, 0))],
            vec![],
            vec![Expect {
                day: d,
                arrival: None,
                departure: None,
                active_ms: 0,
                idle_ms: 3 * HOUR_MS,
                locked_ms: 0,
                effective_ms: 0,
                sessions: vec![],
            }],
        ),
        (
            "idle only, with a login",
            vec![span(Idle, t(9, 0), t(12, 0))],
            vec![event(Login, t(8, 55))],
            vec![Expect {
                day: d,
                arrival: Some((8, 55)),
                departure: None,
                active_ms: 0,
                idle_ms: 3 * HOUR_MS,
                locked_ms: 0,
                effective_ms: 0,
                sessions: vec![],
            }],
        ),
        (
            "an office day: login, lunch locked, logout",
            vec![
                span(Active, t(9, 0), t(12, 0)),
                span(Idle, t(12, 0), t(12, 20)),
                span(Locked, t(12, 20), t(13, 0)),
                span(Active, t(13, 0), t(17, 30)),
            ],
            vec![
                event(Login, t(8, 55)),
                event(Lock, t(12, 20)),
                event(Logout, t(17, 35)),
            ],
            vec![Expect {
                day: d,
                arrival: Some((8, 55)),
                departure: Some((17, 35)),
                active_ms: 7 * HOUR_MS + 30 * MINUTE_MS,
                idle_ms: 20 * MINUTE_MS,
                locked_ms: 40 * MINUTE_MS,
                // 8 h 40 present − 40 min locked − 10 min unrecorded.
                effective_ms: 7 * HOUR_MS + 50 * MINUTE_MS,
                sessions: vec![(9, 0, 12, 0), (13, 0, 17, 30)],
            }],
        ),
        (
            "several sessions: short pause, logout/login, long gap",
            vec![
                span(Active, t(9, 0), t(10, 0)),
                span(Idle, t(10, 0), t(10, 20)),
                span(Active, t(10, 20), t(11, 0)),
                span(Active, t(11, 5), t(12, 0)),
                span(Active, t(14, 0), t(15, 0)),
                span(Active, t(15, 30), t(16, 0)),
            ],
            vec![event(Logout, t(11, 0)), event(Login, t(11, 5))],
            vec![Expect {
                day: d,
                arrival: Some((9, 0)),
                departure: Some((16, 0)),
                active_ms: 4 * HOUR_MS + 5 * MINUTE_MS,
                idle_ms: 20 * MINUTE_MS,
                locked_ms: 0,
                // Active + idle between 9:00 and 16:00; the gaps are away.
                effective_ms: 4 * HOUR_MS + 25 * MINUTE_MS,
                sessions: vec![(9, 0, 11, 0), (11, 5, 12, 0), (14, 0, 16, 0)],
            }],
        ),
        (
            "midnight crossing in Paris: a night shift gives two rows",
            vec![span(Active, t(22, 30), t(25, 30))],
            vec![event(Login, t(22, 25)), event(Logout, t(25, 35))],
            vec![
                Expect {
                    day: d,
                    arrival: Some((22, 25)),
                    departure: Some((24, 0)),
                    active_ms: 90 * MINUTE_MS,
                    idle_ms: 0,
                    locked_ms: 0,
                    effective_ms: 90 * MINUTE_MS,
                    sessions: vec![(22, 30, 24, 0)],
                },
                Expect {
                    day: d + 1,
                    arrival: Some((0, 0)),
                    departure: Some((1, 35)),
                    active_ms: 90 * MINUTE_MS,
                    idle_ms: 0,
                    locked_ms: 0,
                    effective_ms: 90 * MINUTE_MS,
                    sessions: vec![(0, 0, 1, 30)],
                },
            ],
        ),
        (
            "idle overnight before arrival and after departure is not effective",
            vec![
                span(Idle, t(0, 0), t(8, 0)),
                span(Active, t(8, 0), t(12, 0)),
                span(Idle, t(12, 0), t(24, 0)),
            ],
            vec![],
            vec![Expect {
                day: d,
                arrival: Some((8, 0)),
                departure: Some((12, 0)),
                active_ms: 4 * HOUR_MS,
                idle_ms: 20 * HOUR_MS,
                locked_ms: 0,
                effective_ms: 4 * HOUR_MS,
                sessions: vec![(8, 0, 12, 0)],
            }],
        ),
        (
            "a span over three days",
            vec![span(Active, t(22, 0), t(50, 0))],
            vec![],
            vec![
                Expect {
                    day: d,
                    arrival: Some((22, 0)),
                    departure: Some((24, 0)),
                    active_ms: 2 * HOUR_MS,
                    idle_ms: 0,
                    locked_ms: 0,
                    effective_ms: 2 * HOUR_MS,
                    sessions: vec![(22, 0, 24, 0)],
                },
                Expect {
                    day: d + 1,
                    arrival: Some((0, 0)),
                    departure: Some((24, 0)),
                    active_ms: 24 * HOUR_MS,
                    idle_ms: 0,
                    locked_ms: 0,
                    effective_ms: 24 * HOUR_MS,
                    sessions: vec![(0, 0, 24, 0)],
                },
                Expect {
                    day: d + 2,
                    arrival: Some((0, 0)),
                    departure: Some((2, 0)),
                    active_ms: 2 * HOUR_MS,
                    idle_ms: 0,
                    locked_ms: 0,
                    effective_ms: 2 * HOUR_MS,
                    sessions: vec![(0, 0, 2, 0)],
                },
            ],
        ),
    ];
    for (name, activity, sessions, expected) in cases {
        let rows = attendance(&activity, &sessions, paris(), whole_week);
        assert_eq!(rows.len(), expected.len(), "{name}: rows {rows:#?}");
        for (row, expect) in rows.iter().zip(&expected) {
            assert_eq!(
                (&row.who, &row.workstations, &row.users),
                (
                    &Who::Account {
                        agent: agent(1),
                        user: "anna".to_owned()
                    },
                    &vec![agent(1)],
                    &vec!["anna".to_owned()]
                ),
                "{name}"
            );
            check_row(name, row, expect);
        }
    }
}

#[test]
fn attendance_separates_users_and_respects_the_range() {
    let d = MONDAY;
    let t = |hours, minutes| at(paris(), d, hours, minutes);
    let activity = [
        user_span("bruno", Presence::Active, t(14, 0), t(15, 0)),
        user_span("anna", Presence::Active, t(8, 0), t(12, 0)),
    ];
    let rows = attendance(&activity, &[], paris(), Range::custom(t(9, 0), t(24, 0)));
    let got: Vec<(&str, Option<i64>, i64)> = rows
        .iter()
        .map(|row| (row.users[0].as_str(), row.arrival_ms, row.active_ms))
        .collect();
    assert_eq!(
        got,
        [
            ("anna", Some(t(9, 0)), 3 * HOUR_MS),
            ("bruno", Some(t(14, 0)), HOUR_MS)
        ]
    );
    assert_eq!(
        rows[0].sessions,
        [WorkSession {
            start_ms: t(9, 0),
            end_ms: t(12, 0),
            active_ms: 3 * HOUR_MS
        }]
    );
}

#[test]
fn presence_buckets() {
    let now_ms = at(paris(), MONDAY, 15, 0);
    let seen = |n: u128, name: &str, ago_ms: Option<i64>, connected: bool| AgentSeen {
        agent: agent(n),
        name: name.to_owned(),
        last_seen_ms: ago_ms.map(|ago_ms| now_ms - ago_ms),
        connected,
        last_activity: connected.then_some(Presence::Idle),
    };
    let agents = [
        seen(1, "pc-zoe", Some(0), true),
        seen(2, "pc-anna", Some(10 * SECOND_MS), true),
        seen(3, "pc-bruno", Some(HOUR_MS), false),
        seen(4, "pc-chloe", Some(2 * HOUR_MS), false),
        seen(5, "pc-david", Some(2 * HOUR_MS + 1), false),
        seen(6, "pc-emma", None, false),
        seen(7, "pc-felix", Some(3 * DAY_MS), false),
        seen(8, "pc-gina", Some(-5 * MINUTE_MS), false),
    ];
    let fleet = presence_now(&agents, now_ms);
    let names = |bucket: &[console_engine::analytics::SeenAgent]| -> Vec<String> {
        bucket.iter().map(|entry| entry.name.clone()).collect()
    };
    assert_eq!(names(&fleet.online), ["pc-anna", "pc-zoe"]);
    assert_eq!(
        names(&fleet.left_recently),
        ["pc-gina", "pc-bruno", "pc-chloe"]
    );
    assert_eq!(names(&fleet.offline), ["pc-david", "pc-felix", "pc-emma"]);
    assert_eq!(fleet.online[0].last_activity, Some(Presence::Idle));
    assert_eq!(
        fleet.left_recently[0].ago_ms,
        Some(0),
        "a clock ahead is never negative"
    );
    assert_eq!(fleet.left_recently[1].ago_ms, Some(HOUR_MS));
    assert_eq!(fleet.offline[2].ago_ms, None);
}

fn health_point(
    at_ms: i64,
    cpu_pct: f32,
    disk_pct: f32,
    score: u8,
    level: HealthLevel,
) -> HealthPoint {
    HealthPoint {
        agent: agent(1),
        at_ms,
        cpu_pct,
        mem_pct: 40.0,
        disk_pct,
        uptime_secs: 3600,
        score,
        level,
    }
}

#[test]
fn decimation_keeps_the_spike() {
    let start_ms = at(paris(), MONDAY, 0, 0);
    // A day at 1 Hz, flat at 10 % but one second at 100 % and one at 0 %.
    let mut day: Vec<SeriesPoint> = (0..86_400)
        .map(|second| SeriesPoint {
            at_ms: start_ms + second * SECOND_MS,
            value: 10.0,
        })
        .collect();
    day[51_234].value = 100.0;
    day[70_001].value = 0.0;
    for max_points in [2, 3, 300, 1000] {
        let kept = decimate(&day, max_points);
        assert!(
            kept.len() <= max_points,
            "{max_points}: {} points",
            kept.len()
        );
        assert!(
            kept.len() >= max_points - 1,
            "{max_points}: buckets all used"
        );
        assert!(kept.contains(&day[51_234]), "{max_points}: spike kept");
        assert!(kept.contains(&day[70_001]), "{max_points}: dip kept");
        assert!(
            kept.windows(2).all(|pair| pair[0].at_ms < pair[1].at_ms),
            "time order"
        );
    }
    assert_eq!(decimate(&day, 1), [day[51_234]]);
    assert!(decimate(&day, 0).is_empty());
    assert_eq!(decimate(&day[..10], 300), day[..10]);
}

#[test]
fn health_summary_current_and_last_day() {
    let now_ms = at(paris(), MONDAY, 12, 0);
    let mut points = vec![
        // Critical, but more than 24 h ago.
        health_point(now_ms - 25 * HOUR_MS, 99.0, 50.0, 10, HealthLevel::Critical),
        health_point(now_ms - 2 * HOUR_MS, 85.0, 50.0, 60, HealthLevel::Warn),
        health_point(now_ms - HOUR_MS, 20.0, 50.0, 90, HealthLevel::Ok),
        // After now (a clock ahead): not current.
        health_point(now_ms + MINUTE_MS, 20.0, 50.0, 100, HealthLevel::Ok),
    ];
    points.reverse();
    let summary = health_summary(&points, now_ms, 300);
    assert_eq!(
        summary.current.map(|point| point.at_ms),
        Some(now_ms - HOUR_MS)
    );
    assert_eq!(summary.worst_level_24h, Some(HealthLevel::Warn));
    assert_eq!(summary.avg_score_24h, Some(75.0));
    assert_eq!(summary.cpu_pct.len(), 4);
    assert!(summary
        .cpu_pct
        .windows(2)
        .all(|pair| pair[0].at_ms < pair[1].at_ms));
    assert_eq!(summary.score[0].value, 10.0);

    let empty = health_summary(&[], now_ms, 300);
    assert_eq!(
        (empty.current, empty.worst_level_24h, empty.avg_score_24h),
        (None, None, None)
    );

    // A day at 1 Hz is decimated for the chart, its peak intact.
    let day: Vec<HealthPoint> = (0..86_400)
        .map(|second| {
            let cpu_pct = if second == 4_000 { 100.0 } else { 5.0 };
            health_point(
                now_ms - DAY_MS + 1 + second * SECOND_MS,
                cpu_pct,
                50.0,
                95,
                HealthLevel::Ok,
            )
        })
        .collect();
    let summary = health_summary(&day, now_ms, 500);
    assert!(summary.cpu_pct.len() <= 500 && summary.disk_pct.len() <= 500);
    assert!(summary.cpu_pct.iter().any(|point| point.value == 100.0));
    assert_eq!(summary.avg_score_24h, Some(95.0));
}

fn limit(app: &str, minutes: i64) -> AppLimit {
    AppLimit {
        agent: None,
        app: app.to_owned(),
        max_daily_ms: minutes * MINUTE_MS,
    }
}

fn recs(
    input: &RecommendationInput<'_>,
    rules: &RecommendationRules,
    now_ms: i64,
) -> Vec<Recommendation> {
    recommendations(input, rules, now_ms, paris())
}

fn only_activity(activity: &[ActivitySpan]) -> RecommendationInput<'_> {
    RecommendationInput {
        app_totals: &[],
        activity,
        health: &[],
    }
}

#[test]
fn app_limits_warn_at_80_and_fire_at_100_percent() {
    let now_ms = at(paris(), MONDAY, 18, 0);
    let rules = RecommendationRules {
        app_limits: vec![limit("Firefox", 60)],
        ..Default::default()
    };
    let cases = [
        (47, None),
        (48, Some((Severity::Info, "rec.app_limit.near", 80))),
        (59, Some((Severity::Info, "rec.app_limit.near", 98))),
        (60, Some((Severity::Warn, "rec.app_limit.exceeded", 100))),
        (75, Some((Severity::Warn, "rec.app_limit.exceeded", 125))),
    ];
    for (used_min, expected) in cases {
        let totals = [
            total(1, MONDAY, "firefox", used_min * MINUTE_MS),
            total(1, MONDAY, "Chromium", 10 * HOUR_MS),
        ];
        let input = RecommendationInput {
            app_totals: &totals,
            activity: &[],
            health: &[],
        };
        let found = recs(&input, &rules, now_ms);
        let got = found.first().map(|rec| {
            let pct = rec
                .params()
                .into_iter()
                .find_map(|(name, value)| match (name, value) {
                    ("pct", Param::Percent(pct)) => Some(pct),
                    _ => None,
                })
                .unwrap_or_default();
            (rec.severity, rec.key(), pct)
        });
        assert_eq!(got, expected, "{used_min} min of a 60 min limit");
        assert!(found.len() <= 1, "no limit on Chromium");
    }

    // An agent's own limit overrides the one for everyone.
    let rules = RecommendationRules {
        app_limits: vec![
            limit("Firefox", 60),
            AppLimit {
                agent: Some(agent(2)),
                ..limit("Firefox", 120)
            },
        ],
        ..Default::default()
    };
    let totals = [
        total(1, MONDAY, "Firefox", 90 * MINUTE_MS),
        total(2, MONDAY, "Firefox", 90 * MINUTE_MS),
    ];
    let input = RecommendationInput {
        app_totals: &totals,
        activity: &[],
        health: &[],
    };
    let found = recs(&input, &rules, now_ms);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].agent, agent(1));
    assert_eq!(
        found[0].kind,
        RecommendationKind::AppLimitExceeded {
            app: "Firefox".to_owned(),
            used_ms: 90 * MINUTE_MS,
            limit_ms: 60 * MINUTE_MS
        }
    );
    assert_eq!(
        recommendation_text(Lang::En, &found[0]),
        "Firefox: daily limit of 1h 00m reached (1h 30m used)."
    );
}

#[test]
fn long_stretches_and_breaks() {
    let d = MONDAY;
    let t = |hours, minutes| at(paris(), d, hours, minutes);
    let with_pause = |presence: Presence, pause_min: i64| {
        let mut spans = active_in_pieces(t(9, 0), t(9, 47));
        spans.push(span(presence, t(9, 47), t(9, 47 + pause_min)));
        spans.extend(active_in_pieces(
            t(9, 47 + pause_min),
            t(10, 34 + pause_min),
        ));
        spans
    };
    let cases: [(&str, Vec<ActivitySpan>, Option<i64>); 6] = [
        (
            "100 min straight",
            active_in_pieces(t(9, 0), t(10, 40)),
            Some(100),
        ),
        (
            "90 min is not more than 90",
            active_in_pieces(t(9, 0), t(10, 30)),
            None,
        ),
        (
            "broken by a 6-min idle",
            with_pause(Presence::Idle, 6),
            None,
        ),
        (
            "broken by a 6-min lock",
            with_pause(Presence::Locked, 6),
            None,
        ),
        (
            "a 4-min idle is no break",
            with_pause(Presence::Idle, 4),
            Some(98),
        ),
        (
            "one 2 h span",
            vec![span(Presence::Active, t(14, 0), t(16, 0))],
            Some(120),
        ),
    ];
    let rules = RecommendationRules::default();
    for (name, activity, expected_min) in cases {
        let found = recs(&only_activity(&activity), &rules, t(18, 0));
        let got: Vec<i64> = found
            .iter()
            .filter_map(|rec| match rec.kind {
                RecommendationKind::LongStretch { duration_ms, .. } => {
                    Some(duration_ms / MINUTE_MS)
                }
                _ => None,
            })
            .collect();
        assert_eq!(got, expected_min.into_iter().collect::<Vec<_>>(), "{name}");
        assert!(
            found.iter().all(|rec| rec.severity == Severity::Info),
            "{name}"
        );
    }
    let found = recs(
        &only_activity(&active_in_pieces(t(9, 0), t(10, 40))),
        &rules,
        t(18, 0),
    );
    assert_eq!(found[0].key(), "rec.long_stretch");
    assert_eq!(found[0].day, d);
    assert_eq!(
        recommendation_text(Lang::En, &found[0]),
        "anna: 1h 40m of continuous activity from 09:00 without a 5 min break; suggest regular breaks."
    );
}

#[test]
fn late_and_weekend_work() {
    let rules = RecommendationRules::default();
    let saturday = MONDAY + 5;
    assert_eq!((weekday(MONDAY), weekday(saturday), weekday(0)), (0, 5, 3));
    let t = |day, hours, minutes| at(paris(), day, hours, minutes);
    let active = |day, from: (i64, i64), to: (i64, i64)| {
        span(Presence::Active, t(day, from.0, from.1), t(day, to.0, to.1))
    };
    let cases = [
        (
            "office hours",
            vec![active(MONDAY, (9, 0), (12, 0))],
            vec![],
        ),
        (
            "after 20:00",
            vec![active(MONDAY, (20, 30), (21, 15))],
            vec![("rec.late_work", MONDAY, 45)],
        ),
        (
            "before 7:00",
            vec![active(MONDAY, (6, 30), (7, 30))],
            vec![("rec.late_work", MONDAY, 30)],
        ),
        (
            "5 min late is not reported",
            vec![active(MONDAY, (19, 0), (20, 5))],
            vec![],
        ),
        (
            "across midnight counts on both days",
            vec![active(MONDAY, (23, 0), (25, 0))],
            vec![
                ("rec.late_work", MONDAY + 1, 60),
                ("rec.late_work", MONDAY, 60),
            ],
        ),
        (
            "Saturday daytime",
            vec![active(saturday, (10, 0), (12, 0))],
            vec![("rec.weekend_work", saturday, 120)],
        ),
        (
            "Saturday evening",
            vec![active(saturday, (19, 0), (21, 0))],
            vec![
                ("rec.late_work", saturday, 60),
                ("rec.weekend_work", saturday, 120),
            ],
        ),
    ];
    for (name, activity, expected) in cases {
        let found = recs(&only_activity(&activity), &rules, t(saturday + 1, 12, 0));
        let got: Vec<(&str, DayNumber, i64)> = found
            .iter()
            .filter_map(|rec| match rec.kind {
                RecommendationKind::LateWork { outside_ms, .. } => {
                    Some((rec.key(), rec.day, outside_ms / MINUTE_MS))
                }
                RecommendationKind::WeekendWork { active_ms, .. } => {
                    Some((rec.key(), rec.day, active_ms / MINUTE_MS))
                }
                _ => None,
            })
            .collect();
        assert_eq!(got, expected, "{name}");
    }
    let found = recs(
        &only_activity(&[active(MONDAY, (20, 30), (21, 15))]),
        &rules,
        0,
    );
    assert_eq!(
        recommendation_text(Lang::En, &found[0]),
        "anna: 45 min of activity before 07:00 or after 20:00; mind the right to disconnect."
    );
}

#[test]
fn health_recommendations_use_the_current_sample() {
    let now_ms = at(paris(), MONDAY, 12, 0);
    let rules = RecommendationRules::default();
    let cases = [
        (
            "healthy",
            vec![health_point(
                now_ms - MINUTE_MS,
                20.0,
                50.0,
                95,
                HealthLevel::Ok,
            )],
            vec![],
        ),
        (
            "critical now",
            vec![
                health_point(now_ms - 10 * MINUTE_MS, 20.0, 50.0, 95, HealthLevel::Ok),
                health_point(now_ms - MINUTE_MS, 99.0, 50.0, 15, HealthLevel::Critical),
            ],
            vec!["rec.health.critical"],
        ),
        (
            "critical earlier, fine now",
            vec![
                health_point(
                    now_ms - 10 * MINUTE_MS,
                    99.0,
                    50.0,
                    15,
                    HealthLevel::Critical,
                ),
                health_point(now_ms - MINUTE_MS, 20.0, 50.0, 95, HealthLevel::Ok),
            ],
            vec![],
        ),
        (
            "critical but stale",
            vec![health_point(
                now_ms - 2 * HOUR_MS,
                99.0,
                50.0,
                15,
                HealthLevel::Critical,
            )],
            vec![],
        ),
        (
            "disk almost full and critical",
            vec![health_point(
                now_ms - MINUTE_MS,
                20.0,
                96.4,
                20,
                HealthLevel::Critical,
            )],
            vec!["rec.health.critical", "rec.disk.almost_full"],
        ),
    ];
    for (name, health, expected) in cases {
        let input = RecommendationInput {
            app_totals: &[],
            activity: &[],
            health: &health,
        };
        let found = recs(&input, &rules, now_ms);
        let keys: Vec<&str> = found.iter().map(Recommendation::key).collect();
        assert_eq!(keys, expected, "{name}");
    }
    let input = RecommendationInput {
        app_totals: &[],
        activity: &[],
        health: &[health_point(now_ms, 20.0, 96.4, 20, HealthLevel::Critical)],
    };
    let found = recs(&input, &rules, now_ms);
    assert_eq!(found[0].severity, Severity::Critical);
    assert_eq!(
        recommendation_text(Lang::En, &found[0]),
        "System health is critical (score 20/100)."
    );
    assert_eq!(
        found[1].kind,
        RecommendationKind::DiskAlmostFull { disk_pct: 96 }
    );
    assert_eq!(
        recommendation_text(Lang::En, &found[1]),
        "Disk almost full (96 % used); free space or add storage."
    );
}

#[test]
fn recommendations_are_sorted_and_never_about_pay() {
    let now_ms = at(paris(), MONDAY + 5, 22, 0);
    let saturday = MONDAY + 5;
    let mut activity = active_in_pieces(at(paris(), saturday, 19, 0), at(paris(), saturday, 21, 0));
    activity.push(span(
        Presence::Active,
        at(paris(), MONDAY, 21, 0),
        at(paris(), MONDAY, 22, 0),
    ));
    let totals = [total(1, MONDAY, "Firefox", 2 * HOUR_MS)];
    let health = [health_point(now_ms, 99.0, 99.0, 5, HealthLevel::Critical)];
    let input = RecommendationInput {
        app_totals: &totals,
        activity: &activity,
        health: &health,
    };
    let rules = RecommendationRules {
        app_limits: vec![limit("Firefox", 60)],
        ..Default::default()
    };
    let found = recs(&input, &rules, now_ms);
    let got: Vec<(Severity, DayNumber, &str)> = found
        .iter()
        .map(|rec| (rec.severity, rec.day, rec.key()))
        .collect();
    assert_eq!(
        got,
        [
            (Severity::Critical, saturday, "rec.health.critical"),
            (Severity::Warn, saturday, "rec.disk.almost_full"),
            (Severity::Warn, MONDAY, "rec.app_limit.exceeded"),
            (Severity::Info, saturday, "rec.long_stretch"),
            (Severity::Info, saturday, "rec.late_work"),
            (Severity::Info, saturday, "rec.weekend_work"),
            (Severity::Info, MONDAY, "rec.late_work"),
        ]
    );
    for rec in &found {
        let text = recommendation_text(Lang::En, rec).to_lowercase();
        for word in ["pay", "salary", "wage", "deduct", "not working"] {
            assert!(!text.contains(word), "{text}");
        }
    }
}

/// Spans stored before ingest checked them (negative, year-1, i64
/// extremes) and the widest range a person can ask for: attendance is
/// computed over the range clamped to where records can be, in bounded
/// time and rows, and no duration overflows.
#[test]
fn absurd_old_spans_and_unbounded_ranges_stay_bounded() {
    let now_ms = at(paris(), MONDAY, 12, 0);
    let absurd = vec![
        span(Presence::Active, i64::MIN, i64::MAX),
        span(Presence::Idle, -62_135_596_800_000, now_ms),
        span(Presence::Locked, now_ms, now_ms - HOUR_MS),
        span(Presence::Active, i64::MAX - 1, i64::MAX),
    ];
    let sessions = vec![SessionEvent {
        agent: agent(1),
        at_ms: i64::MIN,
        kind: SessionKind::Login,
        user: "anna".to_owned(),
    }];
    let range = Range::custom(i64::MIN, i64::MAX).within_records(now_ms);
    assert!(range.duration_ms() > 0);
    let started = std::time::Instant::now();
    let days = attendance(&absurd, &sessions, paris(), range);
    // From 2000-01-01 to two days past now: under 10,000 days.
    assert!(!days.is_empty() && days.len() < 10_000, "{}", days.len());
    for day in &days {
        // At most 25 h: the day clocks go back.
        assert!(
            day.active_ms >= 0 && day.active_ms <= DAY_MS + HOUR_MS,
            "{day:?}"
        );
        assert!(day.idle_ms >= 0 && day.locked_ms >= 0);
    }
    eprintln!("{} days in {:?}", days.len(), started.elapsed());
    // The unclamped range is not even needed to stay safe: its length
    // saturates instead of overflowing.
    assert_eq!(Range::custom(i64::MIN, i64::MAX).duration_ms(), i64::MAX);
    assert_eq!(format_duration_ms(i64::MIN), "-2562047788015 h 12");
}

/// `span` on workstation `n`.
fn on(n: u128, mut span: ActivitySpan) -> ActivitySpan {
    span.agent = agent(n);
    span
}

#[test]
fn a_person_on_two_workstations_is_one_line_and_a_shared_one_splits() {
    let d = MONDAY;
    let t = |hours, minutes| at(paris(), d, hours, minutes);
    let mut book = PeopleBook::default();
    let name_of = |agent: AgentId| agent.to_string();
    let anna = book
        .add(
            "Anna",
            "",
            "",
            vec![Account {
                user: Some("anna".to_owned()),
                agent: None,
            }],
            &name_of,
        )
        .expect("added");
    assert_eq!(anna, PersonId(1));
    let activity = [
        // Anna on her desktop in the morning, on her laptop in the
        // afternoon, both at once from 11:00 to 12:00 (counted once, as
        // active where one of them is active).
        on(1, user_span("anna", Presence::Active, t(8, 0), t(12, 0))),
        on(2, user_span("anna", Presence::Idle, t(11, 0), t(12, 0))),
        on(2, user_span("anna", Presence::Active, t(13, 0), t(17, 0))),
        // A shared workstation: bruno then carla, no person yet.
        on(3, user_span("bruno", Presence::Active, t(8, 0), t(12, 0))),
        on(3, user_span("carla", Presence::Active, t(13, 0), t(18, 0))),
    ];
    let who_of = |agent: AgentId, user: &str| book.who(agent, user);
    let rows = attendance_by(
        &activity,
        &[],
        paris(),
        Range::custom(t(0, 0), t(24, 0)),
        &who_of,
    );
    /// Who, workstations, arrival, departure, active, idle.
    type Line = (Who, Vec<AgentId>, Option<i64>, Option<i64>, i64, i64);
    let got: Vec<Line> = rows
        .iter()
        .map(|row| {
            (
                row.who.clone(),
                row.workstations.clone(),
                row.arrival_ms,
                row.departure_ms,
                row.active_ms,
                row.idle_ms,
            )
        })
        .collect();
    let account = |n: u128, user: &str| Who::Account {
        agent: agent(n),
        user: user.to_owned(),
    };
    assert_eq!(
        got,
        [
            (
                Who::Person(anna),
                vec![agent(1), agent(2)],
                Some(t(8, 0)),
                Some(t(17, 0)),
                8 * HOUR_MS,
                0
            ),
            (
                account(3, "bruno"),
                vec![agent(3)],
                Some(t(8, 0)),
                Some(t(12, 0)),
                4 * HOUR_MS,
                0
            ),
            (
                account(3, "carla"),
                vec![agent(3)],
                Some(t(13, 0)),
                Some(t(18, 0)),
                5 * HOUR_MS,
                0
            ),
        ]
    );
    // The shared workstation's applications go to whoever was signed in.
    let apps = [
        usage(3, "Firefox", t(11, 0), t(14, 0)),
        usage(3, "LibreOffice", t(15, 0), t(16, 0)),
    ];
    let carla_only = |user: &str| user == "carla";
    let carla: Vec<(String, i64, i64)> = usage_of(&apps, &activity[3..], &carla_only)
        .into_iter()
        .map(|span| (span.app, span.start_ms, span.end_ms))
        .collect();
    assert_eq!(
        carla,
        [
            ("Firefox".to_owned(), t(13, 0), t(14, 0)),
            ("LibreOffice".to_owned(), t(15, 0), t(16, 0)),
        ]
    );
}
