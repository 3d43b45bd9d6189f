//! The alert rules over a real store: a workstation not seen during
//! working hours, one critical with a full disk, one fine; one alert per
//! (rule, workstation) however often the rules run, cleared once the
//! condition has stayed away, every opening and clearing audited;
//! acknowledgements and mutes from the command line's handler, hostile
//! numbers and a damaged book refused without losing anything.

use std::sync::Arc;

use console_engine::alerts::commands::AlertsAsk;
use console_engine::alerts::{self, AlertRules, Rule, Transition, CLEAR_AFTER_MS};
use console_engine::commands::{CliOutput, CommandContext, CommandError, Output};
use console_engine::model::{AgentId, DayClock};
use console_engine::store::{AgentRecord, ConsoleStore};
use protocol::{HealthLevel, HealthSample, Record, RecordBatch, SeqRecord, StreamKind};

/// Thursday 2026-12-17 10:00 UTC: working hours.
const NOW_MS: i64 = 1_797_501_600_000;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

fn agent(n: u8) -> AgentId {
    AgentId::from_bytes([n; 16])
}

fn inventory(store: &ConsoleStore, n: u8, last_seen_ms: i64) {
    store
        .upsert_agent(&AgentRecord {
            agent: agent(n),
            name: format!("pc-{n}"),
            spki_sha256: [n; 32],
            added_ms: NOW_MS - 30 * 24 * HOUR_MS,
            addresses: Vec::new(),
            last_seen_ms: Some(last_seen_ms),
            last_error: None,
            hostname: None,
            demo: true,
            time_zone: None,
        })
        .expect("inventory");
}

/// Health every minute over the last `minutes`, at `level` and `disk_pct`.
fn health(store: &ConsoleStore, n: u8, minutes: i64, level: HealthLevel, disk_pct: u64) {
    let records = (0..minutes)
        .map(|m| SeqRecord {
            seq: u64::try_from(m + 1).expect("positive"),
            record: Record::Health(HealthSample {
                at_ms: NOW_MS - (minutes - 1 - m) * MINUTE_MS,
                cpu_pct: 99.0,
                mem_used_bytes: 1,
                mem_total_bytes: 2,
                swap_used_bytes: 0,
                swap_total_bytes: 0,
                disks: vec![protocol::DiskUsage {
                    mount: "/".to_owned(),
                    used_bytes: disk_pct,
                    total_bytes: 100,
                }],
                uptime_secs: 1,
                load_avg: [0.0; 3],
                top_processes: Vec::new(),
                score: 10,
                level,
            }),
        })
        .collect();
    let batch = RecordBatch {
        stream: StreamKind::Health,
        epoch: 1,
        records,
        more: false,
    };
    store.ingest(agent(n), &batch, NOW_MS).expect("ingest");
}

fn context(store: &Arc<ConsoleStore>) -> CommandContext {
    CommandContext {
        store: store.clone(),
        syncer: Err("no identity in this test".to_owned()),
        settings: console_engine::settings::ConsoleSettings::default(),
        data_dir: std::path::PathBuf::from("/nonexistent"),
        actor: "test console".to_owned(),
    }
}

fn run_command(store: &Arc<ConsoleStore>, ask: AlertsAsk) -> (Result<(), CommandError>, String) {
    let said = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = said.clone();
    let output: Output = Arc::new(move |piece| {
        let text = match piece {
            CliOutput::Data(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            CliOutput::Message(text) => text,
        };
        sink.lock().expect("lock").push_str(&text);
    });
    let result = alerts::commands::run(&context(store), ask, &output);
    let text = said.lock().expect("lock").clone();
    (result, text)
}

fn opened(transitions: &[Transition]) -> Vec<(u8, Rule)> {
    let mut found: Vec<(u8, Rule)> = transitions
        .iter()
        .filter_map(|transition| match transition {
            Transition::Opened(alert) => Some((alert.agent.as_bytes()[0], alert.rule)),
            Transition::Cleared(_) => None,
        })
        .collect();
    found.sort();
    found
}

#[test]
fn alerts_open_once_clear_after_the_condition_stays_away_and_are_acknowledged_or_muted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Arc::new(ConsoleStore::open(&dir.path().join("store"), DayClock::utc()).expect("store"));
    inventory(&store, 1, NOW_MS - 5 * HOUR_MS);
    inventory(&store, 2, NOW_MS);
    inventory(&store, 3, NOW_MS);
    health(&store, 2, 20, HealthLevel::Critical, 95);
    health(&store, 3, 20, HealthLevel::Ok, 40);
    let rules = AlertRules::default();

    let alerts::Evaluated {
        transitions: first,
        unread,
        ..
    } = alerts::run(&store, &rules, NOW_MS, "test").expect("rules");
    assert_eq!(
        opened(&first),
        [
            (1, Rule::NotSeen),
            (2, Rule::HealthCritical),
            (2, Rule::DiskFull)
        ]
    );
    assert_eq!(unread, 3);
    // Running again changes nothing: one alert per (rule, workstation).
    let again = alerts::run(&store, &rules, NOW_MS + MINUTE_MS, "test")
        .expect("rules")
        .transitions;
    assert!(again.is_empty(), "{again:?}");

    // pc-1 answers again: its alert clears once it has stayed seen.
    inventory(&store, 1, NOW_MS + 2 * MINUTE_MS);
    let soon = alerts::run(&store, &rules, NOW_MS + 2 * MINUTE_MS, "test")
        .expect("rules")
        .transitions;
    assert!(soon.is_empty(), "{soon:?}");
    let later_ms = NOW_MS + 2 * MINUTE_MS + CLEAR_AFTER_MS;
    inventory(&store, 1, later_ms);
    let alerts::Evaluated {
        transitions: cleared,
        unread,
        ..
    } = alerts::run(&store, &rules, later_ms, "test").expect("rules");
    assert!(
        matches!(&cleared[..], [Transition::Cleared(alert)] if alert.rule == Rule::NotSeen),
        "{cleared:?}"
    );
    assert_eq!(unread, 2);
    let audit = store.audit_log(0, 100).expect("audit");
    let actions: Vec<&str> = audit
        .iter()
        .map(|record| record.entry.action.as_str())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|action| **action == "alert-open")
            .count(),
        3
    );
    assert_eq!(
        actions
            .iter()
            .filter(|action| **action == "alert-clear")
            .count(),
        1
    );

    // The command line lists, acknowledges and mutes.
    let (listed, text) = run_command(
        &store,
        AlertsAsk::List {
            all: false,
            json: false,
        },
    );
    listed.expect("list");
    assert!(
        text.contains("health-critical") && text.contains("disk 95 % full"),
        "{text}"
    );
    assert!(
        !text.contains("not-seen"),
        "cleared alerts are not listed: {text}"
    );
    let (all, text) = run_command(
        &store,
        AlertsAsk::List {
            all: true,
            json: true,
        },
    );
    all.expect("list");
    let listed: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(3));
    let disk = alerts::load(&store)
        .expect("book")
        .open(Rule::DiskFull, agent(2))
        .map(|alert| alert.id)
        .expect("disk alert");
    run_command(&store, AlertsAsk::Ack { id: disk })
        .0
        .expect("ack");
    let health_id = alerts::load(&store)
        .expect("book")
        .open(Rule::HealthCritical, agent(2))
        .map(|alert| alert.id)
        .expect("health alert");
    run_command(
        &store,
        AlertsAsk::Mute {
            id: health_id,
            for_secs: 3_600,
        },
    )
    .0
    .expect("mute");
    assert_eq!(alerts::load(&store).expect("book").unread(), 0);

    // Hostile numbers and lengths: refused with a line, nothing changed.
    let before = alerts::load(&store).expect("book");
    for ask in [
        AlertsAsk::Ack { id: u64::MAX },
        AlertsAsk::Mute {
            id: 0,
            for_secs: 60,
        },
        AlertsAsk::Mute {
            id: disk,
            for_secs: 0,
        },
        AlertsAsk::Mute {
            id: disk,
            for_secs: u64::MAX,
        },
    ] {
        let (result, _) = run_command(&store, ask.clone());
        assert!(
            matches!(result, Err(CommandError::Refused(ref line)) if line.len() < 200),
            "{ask:?}: {result:?}"
        );
    }
    assert_eq!(alerts::load(&store).expect("book"), before);

    // A damaged book is reported and left as it is, never overwritten.
    let damaged = serde_json::json!({"alerts": "not a list"});
    store
        .put_setting(alerts::ALERTS_KEY, &damaged)
        .expect("put");
    assert!(matches!(
        alerts::run(&store, &rules, later_ms + HOUR_MS, "test"),
        Err(alerts::AlertError::Damaged(_))
    ));
    assert_eq!(
        store.get_setting(alerts::ALERTS_KEY).expect("get"),
        Some(damaged)
    );
}
