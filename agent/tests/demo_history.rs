//! The labelled demo source through the real recorder and store: a week of
//! simulated history has a login and a logout on each working day, at the
//! planned arrival and departure, and plausible usage.

use std::sync::Arc;

use agent::demo::{DayPlan, DemoWorkstation, DEMO_USER};
use agent::recorder::backfill_demo;
use agent::store::{Quotas, Store};
use protocol::{Cursor, Policy, Presence, Record, SessionEventKind, StreamKind};

/// Monday 2026-03-02 00:00 UTC.
const MONDAY_MS: i64 = 1_772_409_600_000;
const DAY_MS: i64 = 86_400_000;

fn records(store: &Store, stream: StreamKind) -> Vec<Record> {
    let mut cursor = Cursor {
        epoch: store.epoch(),
        seq: 0,
    };
    let mut all = Vec::new();
    loop {
        let batch = store.pull(stream, cursor, 4096).expect("pull");
        if let Some(last) = batch.records.last() {
            cursor.seq = last.seq;
        }
        all.extend(batch.records.into_iter().map(|record| record.record));
        if !batch.more {
            return all;
        }
    }
}

#[test]
fn a_week_of_history_has_one_login_and_logout_per_working_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path(), Quotas::default()).expect("store"));
    let seed = 3;
    let mut desk = DemoWorkstation::new(seed);
    let mut flushes = 0;
    backfill_demo(
        &store,
        &mut desk,
        &Policy::default(),
        DEMO_USER,
        7,
        MONDAY_MS + 7 * DAY_MS,
        &mut || flushes += 1,
    )
    .expect("backfill");
    assert!(flushes >= 7, "a flush per simulated day");

    let events: Vec<_> = records(&store, StreamKind::Sessions)
        .into_iter()
        .filter_map(|record| match record {
            Record::Session(event) => Some(event),
            _ => None,
        })
        .collect();
    let logins: Vec<i64> = events
        .iter()
        .filter(|event| event.kind == SessionEventKind::Login)
        .map(|event| event.at_ms)
        .collect();
    let logouts: Vec<i64> = events
        .iter()
        .filter(|event| event.kind == SessionEventKind::Logout)
        .map(|event| event.at_ms)
        .collect();
    assert_eq!(logins.len(), 5, "Monday to Friday: {logins:?}");
    assert_eq!(logouts.len(), 5);
    for (day, (login_ms, logout_ms)) in logins.iter().zip(&logouts).enumerate() {
        let plan = DayPlan::new(
            seed,
            MONDAY_MS + i64::try_from(day).expect("small") * DAY_MS,
        );
        let arrival_ms = plan.stretches.first().expect("weekday").start_ms;
        let departure_ms = plan.stretches.last().expect("weekday").end_ms;
        // Sessions are polled every 10 s; backfill steps 10 s.
        assert!((0..=20_000).contains(&(login_ms - arrival_ms)), "day {day}");
        assert!(
            (0..=20_000).contains(&(logout_ms - departure_ms)),
            "day {day}"
        );
    }
    assert!(events.iter().all(|event| event.user == DEMO_USER));

    // Nothing is present between logout and the next login: no idle night.
    let idle_ms: i64 = records(&store, StreamKind::Sessions)
        .into_iter()
        .filter_map(|record| match record {
            Record::Activity(span) if span.presence == Presence::Idle => {
                Some(span.end_ms - span.start_ms)
            }
            _ => None,
        })
        .sum();
    let idle_hours = idle_ms as f64 / 3_600_000.0;
    assert!(
        // Seen: 11.2 h (8 h before Monday's first login, idle gaps at the desk).
        idle_hours < 20.0,
        "idle only before the first login and at the desk: {idle_hours:.1} h"
    );

    let usage_ms: i64 = records(&store, StreamKind::Usage)
        .into_iter()
        .filter_map(|record| match record {
            Record::Usage(span) => Some(span.end_ms - span.start_ms),
            _ => None,
        })
        .sum();
    let hours = usage_ms as f64 / 3_600_000.0;
    assert!(
        (15.0..45.0).contains(&hours),
        "5 working days of use: {hours:.1} h"
    );
}
