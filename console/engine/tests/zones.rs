//! Workstations in another time zone than the site: the fleet and
//! employee views mark them, and attendance follows the workstation's
//! wall clock only when the settings ask for it.

use std::collections::BTreeSet;

use console_engine::categories::Categoriser;
use console_engine::i18n::time_label;
use console_engine::model::{AgentId, DayClock};
use console_engine::settings::ConsoleSettings;
use console_engine::store::{AgentRecord, ConsoleStore};
use console_engine::validate::MAX_SPAN_MS;
use console_engine::views::{compute, Period, ViewContext, ViewData, ViewRequest};
use protocol::{
    ActivitySpan, Presence, Record, RecordBatch, SeqRecord, SessionEvent, SessionEventKind,
    StreamKind,
};

/// 2026-03-04T13:00:00Z: 08:00 in Montreal (UTC−5), 14:00 in Paris (UTC+1).
const ARRIVAL_MS: i64 = 1_772_629_200_000;
const HOUR_MS: i64 = 3_600_000;
const NOW_MS: i64 = ARRIVAL_MS + 10 * HOUR_MS;
const FAR: AgentId = AgentId::from_u128(0xF);
const NEAR: AgentId = AgentId::from_u128(0xE);

fn record(agent: AgentId, name: &str, time_zone: Option<&str>) -> AgentRecord {
    AgentRecord {
        agent,
        name: name.to_owned(),
        spki_sha256: [1; 32],
        added_ms: 0,
        addresses: Vec::new(),
        last_seen_ms: Some(NOW_MS),
        last_error: None,
        hostname: Some(name.to_owned()),
        demo: false,
        time_zone: time_zone.map(str::to_owned),
    }
}

/// A store in Paris with two agents that logged in at `ARRIVAL_MS` and
/// were active four hours: one in Montreal, one in Paris.
fn site(dir: &std::path::Path) -> ConsoleStore {
    let paris = DayClock::from_name("Europe/Paris").expect("zone");
    let store = ConsoleStore::open(&dir.join("store"), paris).expect("store");
    store
        .upsert_agent(&record(FAR, "montreal", Some("America/Montreal")))
        .expect("agent");
    store
        .upsert_agent(&record(NEAR, "paris", Some("Europe/Paris")))
        .expect("agent");
    let login = SeqRecord {
        seq: 1,
        record: Record::Session(SessionEvent {
            at_ms: ARRIVAL_MS,
            kind: SessionEventKind::Login,
            user: "marie".to_owned(),
        }),
    };
    // Four hours of activity, in spans as long as a span may be.
    let active = (0..4 * HOUR_MS / MAX_SPAN_MS).map(|n| SeqRecord {
        seq: 2 + n as u64,
        record: Record::Activity(ActivitySpan {
            start_ms: ARRIVAL_MS + n * MAX_SPAN_MS,
            end_ms: ARRIVAL_MS + (n + 1) * MAX_SPAN_MS,
            presence: Presence::Active,
            user: "marie".to_owned(),
        }),
    });
    let records: Vec<SeqRecord> = std::iter::once(login).chain(active).collect();
    for agent in [FAR, NEAR] {
        let batch = RecordBatch {
            stream: StreamKind::Sessions,
            epoch: 1,
            records: records.clone(),
            more: false,
        };
        store.ingest(agent, &batch, NOW_MS).expect("ingest");
    }
    store
}

fn view(store: &ConsoleStore, request: &ViewRequest, settings: &ConsoleSettings) -> ViewData {
    let categoriser = Categoriser::builtin().expect("categoriser");
    let context = ViewContext {
        categoriser: &categoriser,
        settings,
        now_ms: NOW_MS,
    };
    compute(store, request, context).expect("view")
}

/// Arrival on the clock the employee view shows it with, and whether the
/// view marks the workstation's zone.
fn employee_arrival(store: &ConsoleStore, settings: &ConsoleSettings) -> (String, Option<String>) {
    let request = ViewRequest::Employee {
        agent: FAR,
        period: Period::Week,
    };
    let ViewData::Employee(employee) = view(store, &request, settings) else {
        panic!("an employee view");
    };
    let arrivals: Vec<String> = employee
        .attendance
        .iter()
        .filter_map(|day| day.arrival_ms)
        .map(|at_ms| time_label(&employee.attendance_clock, at_ms))
        .collect();
    assert_eq!(arrivals.len(), 1, "{arrivals:?}");
    let marked = employee
        .other_zone
        .map(|zone| format!("{} {}", zone.clock.name(), zone.clock.offset_secs(NOW_MS)));
    (arrivals[0].clone(), marked)
}

#[test]
fn attendance_follows_the_workstations_zone_only_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = site(dir.path());
    let site_settings = ConsoleSettings::default();
    let marked = Some("America/Montreal -18000".to_owned());
    assert_eq!(
        employee_arrival(&store, &site_settings),
        ("14:00".to_owned(), marked.clone()),
        "the site's wall clock by default"
    );
    let own_zone = ConsoleSettings {
        own_zone_agents: BTreeSet::from([FAR, NEAR]),
        ..ConsoleSettings::default()
    };
    assert_eq!(
        employee_arrival(&store, &own_zone),
        ("08:00".to_owned(), marked),
        "the workstation's wall clock when asked"
    );
    let request = ViewRequest::Attendance {
        agent: None,
        period: Period::Week,
    };
    let ViewData::Attendance(attendance) = view(&store, &request, &own_zone) else {
        panic!("an attendance view");
    };
    let mut arrivals: Vec<(String, String)> = attendance
        .lines
        .iter()
        .filter_map(|line| {
            let at_ms = line.day.arrival_ms?;
            Some((line.workstations.join(" "), time_label(&line.clock, at_ms)))
        })
        .collect();
    arrivals.sort();
    assert_eq!(
        arrivals,
        [
            ("montreal".to_owned(), "08:00".to_owned()),
            ("paris".to_owned(), "14:00".to_owned())
        ]
    );
}

#[test]
fn the_fleet_marks_only_workstations_in_another_zone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = site(dir.path());
    store
        .upsert_agent(&record(AgentId::from_u128(0xD), "unknown", None))
        .expect("agent");
    let ViewData::Fleet(fleet) = view(&store, &ViewRequest::Fleet, &ConsoleSettings::default())
    else {
        panic!("a fleet view");
    };
    let marked: Vec<(String, Option<String>)> = fleet
        .rows
        .iter()
        .map(|row| {
            let zone = row.other_zone.as_ref();
            (
                row.name.clone(),
                zone.map(|zone| zone.clock.name().to_owned()),
            )
        })
        .collect();
    assert_eq!(
        marked,
        [
            ("montreal".to_owned(), Some("America/Montreal".to_owned())),
            ("paris".to_owned(), None),
            ("unknown".to_owned(), None)
        ]
    );
}
