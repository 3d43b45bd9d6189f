//! The console window driven by label, as a manager would use it, over a
//! store filled through the engine's real ingest path: records of real
//! demo agents (agent store, recorder, simulated workstation) pulled batch
//! by batch and ingested, as sync does minus QUIC.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::demo::DemoWorkstation;
use agent::recorder::backfill_demo;
use agent::store::{Quotas, Store};
use console::app::{ConsoleApp, Screen};
use console::engine::{Command, Engine, EngineConfig};
use console::i18n::Lang;
use console::model::{AgentId, DayClock};
use console::store::{AgentRecord, ConsoleStore};
use console::sync::SYNCED_STREAMS;
use console::views::{Period, ViewData, ViewRequest};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use protocol::{Cursor, Policy};

/// Demo people: (agent name, user, seed).
const PEOPLE: [(&str, &str, u64); 3] = [
    ("demo-pc-1", "alice", 1),
    ("demo-pc-2", "bruno", 2),
    ("demo-pc-3", "chloe", 3),
];
const HISTORY_DAYS: u32 = 10;

/// Records `HISTORY_DAYS` of a demo workstation into an agent store and
/// ingests every batch into `store`, acking as sync does.
fn record_agent(
    store: &ConsoleStore,
    scratch: &Path,
    name: &str,
    user: &str,
    seed: u64,
    now_ms: i64,
) -> AgentId {
    let agent_store =
        Arc::new(Store::open(&scratch.join(name), Quotas::default()).expect("agent store"));
    let mut demo = DemoWorkstation::new(seed);
    backfill_demo(
        &agent_store,
        &mut demo,
        &Policy::default(),
        user,
        HISTORY_DAYS,
        now_ms,
        &mut || {},
    )
    .expect("backfill");
    let agent = AgentId::from_u128(u128::from(seed));
    store
        .upsert_agent(&AgentRecord {
            agent,
            name: name.to_owned(),
            spki_sha256: [u8::try_from(seed).unwrap_or(0); 32],
            added_ms: now_ms - 30 * 86_400_000,
            addresses: vec![format!("127.0.0.1:{}", 47_100 + seed)],
            // The first two answered a moment ago; the third never did.
            last_seen_ms: (seed < 3).then_some(now_ms - 5_000),
            last_error: None,
            hostname: Some(name.to_owned()),
            demo: true,
        })
        .expect("inventory");
    for stream in SYNCED_STREAMS {
        let mut cursor = Cursor { epoch: 0, seq: 0 };
        loop {
            let batch = agent_store.pull(stream, cursor, 2_000).expect("pull");
            if batch.records.is_empty() && batch.epoch == cursor.epoch {
                break;
            }
            let more = batch.more;
            let report = store.ingest(agent, &batch, now_ms).expect("ingest");
            cursor = report.new_cursor;
            agent_store.ack(stream, cursor, "gui test").expect("ack");
            if !more {
                break;
            }
        }
    }
    agent
}

struct Site {
    dir: tempfile::TempDir,
    store: Arc<ConsoleStore>,
    agents: Vec<AgentId>,
}

fn site() -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        ConsoleStore::open(&dir.path().join("console"), DayClock::UTC).expect("console store"),
    );
    let now_ms = console::clock::wall_now_ms();
    let agents = PEOPLE
        .iter()
        .map(|(name, user, seed)| record_agent(&store, dir.path(), name, user, *seed, now_ms))
        .collect();
    Site { dir, store, agents }
}

fn app(site: &Site, screen: Screen) -> ConsoleApp {
    let engine = Engine::start(EngineConfig {
        store: site.store.clone(),
        identity: None,
        mdns: false,
        sync_interval: Duration::from_secs(30),
        data_dir: site.dir.path().join("console"),
    })
    .expect("engine");
    ConsoleApp::new(engine, DayClock::UTC, screen)
}

fn harness(app: ConsoleApp) -> Harness<'static, ConsoleApp> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .build_ui_state(|ui, app: &mut ConsoleApp| app.frame(ui), app)
}

/// Steps the UI until `ready` holds (the engine answers asynchronously).
fn wait_until(
    harness: &mut Harness<'_, ConsoleApp>,
    what: &str,
    ready: impl Fn(&ConsoleApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        harness.step();
        if ready(harness.state()) {
            harness.run_steps(2);
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has_view(app: &ConsoleApp, request: &ViewRequest) -> bool {
    app.state.views.contains_key(request)
}

/// Asserts `label` is on screen (once or more: a heading may repeat a
/// navigation label).
fn assert_shown(harness: &Harness<'_, ConsoleApp>, label: &str) {
    assert!(
        harness.query_all_by_label(label).next().is_some(),
        "{label:?} is not on screen"
    );
}

fn click_nav(harness: &mut Harness<'_, ConsoleApp>, label: &str) {
    harness
        .query_all_by_label(label)
        .next()
        .unwrap_or_else(|| panic!("no {label:?} on screen"))
        .click();
    harness.run_steps(2);
}

#[test]
fn fleet_lists_every_agent_with_its_state_and_opens_an_employee() {
    let site = site();
    let mut harness = harness(app(&site, Screen::Fleet));
    wait_until(&mut harness, "the fleet view", |app| {
        has_view(app, &ViewRequest::Fleet) && app.state.fleet_visible.len() == PEOPLE.len()
    });
    // French by default (francophone first).
    click_nav(&mut harness, "Parc");
    for (name, _, _) in PEOPLE {
        harness.get_by_label_contains(name);
    }
    assert_eq!(harness.query_all_by_label("● en ligne").count(), 2);
    assert_eq!(harness.query_all_by_label("● inconnu").count(), 1);
    harness.get_by_label_contains("2 en ligne");

    // Search narrows the rows; the filter of states too.
    harness.get_by_label("Rechercher").click();
    harness.run_steps(1);
    harness.get_by_label("Rechercher").type_text("pc-2");
    wait_until(&mut harness, "the search", |app| {
        app.state.fleet_visible.len() == 1
    });
    assert!(harness.query_by_label_contains("demo-pc-1").is_none());
    harness.get_by_label_contains("demo-pc-2").click();
    wait_until(&mut harness, "the employee view", |app| {
        app.state.screen == Screen::Employee
            && has_view(
                app,
                &ViewRequest::Employee {
                    agent: site.agents[1],
                    period: Period::Week,
                },
            )
    });
    assert_shown(&harness, "Applications les plus utilisées");
    assert_shown(&harness, "Chronologie du jour");
}

#[test]
fn employee_shows_top_apps_trend_and_attendance_of_the_period() {
    let site = site();
    let mut harness = harness(app(&site, Screen::Fleet));
    wait_until(&mut harness, "the fleet view", |app| {
        has_view(app, &ViewRequest::Fleet)
    });
    click_nav(&mut harness, "Employé");
    let request = ViewRequest::Employee {
        agent: site.agents[0],
        period: Period::Week,
    };
    wait_until(&mut harness, "the employee view", |app| {
        has_view(app, &request)
    });
    let Some(ViewData::Employee(view)) =
        harness.state().state.views.get(&request).map(AsRef::as_ref)
    else {
        panic!("employee view expected");
    };
    let (top_app, _) = view.summary.top_apps.first().cloned().expect("a top app");
    let arrival_day = view
        .attendance
        .iter()
        .find(|day| day.arrival_ms.is_some())
        .map(|day| console::i18n::day_label(Lang::Fr, day.day))
        .expect("an attendance day");
    // The top app as the manager sees it, and its duration as people read it.
    harness.get_by_label(&top_app);
    harness.get_by_label(&arrival_day);
    assert!(
        harness.query_all_by_label_contains(" h ").count() > 0,
        "durations read as `2 h 05`"
    );
    assert_shown(&harness, "Tendance");
    assert_shown(&harness, "Historique de santé");
    // Switching to 30 days asks for (and shows) that period.
    harness.get_by_label("30 jours").click();
    wait_until(&mut harness, "the 30-day view", |app| {
        has_view(
            app,
            &ViewRequest::Employee {
                agent: site.agents[0],
                period: Period::Month,
            },
        )
    });
    harness.get_by_label_contains("mesures tracées sur");
}

#[test]
fn attendance_lines_filter_by_person_and_export_as_csv() {
    let site = site();
    let mut harness = harness(app(&site, Screen::Attendance));
    let everyone = ViewRequest::Attendance {
        agent: None,
        period: Period::Week,
    };
    wait_until(&mut harness, "the attendance view", |app| {
        has_view(app, &everyone)
    });
    assert_shown(&harness, "Présence");
    assert_shown(&harness, "Arrivée");
    for (name, _, _) in PEOPLE {
        assert!(
            harness.query_all_by_label(name).count() > 0,
            "{name} has attendance lines"
        );
    }
    // One person only.
    harness
        .get_by_role_and_label(egui::accesskit::Role::ComboBox, "Personne")
        .click();
    harness.run_steps(2);
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "demo-pc-3")
        .click();
    let one = ViewRequest::Attendance {
        agent: Some(site.agents[2]),
        period: Period::Week,
    };
    wait_until(&mut harness, "the filtered view", |app| has_view(app, &one));
    assert_eq!(harness.query_all_by_label("demo-pc-1").count(), 0);

    // The export behind the button (the dialog is the system's).
    let out = site.dir.path().join("attendance.csv");
    harness.state().send_command(Command::ExportAttendance {
        agent: Some(site.agents[2]),
        period: Period::Week,
        path: Some(out.clone()),
    });
    wait_until(&mut harness, "the export", |app| {
        app.state
            .notices
            .iter()
            .any(|notice| notice.text.contains("attendance.csv"))
    });
    let csv = std::fs::read_to_string(&out).expect("csv written");
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .is_some_and(|header| header.starts_with("agent,agent_name,user,day,arrival")));
    assert!(lines.all(|line| line.contains("demo-pc-3")));
}

#[test]
fn organisation_health_settings_and_audit_screens_show_the_engine_s_data() {
    let site = site();
    let mut harness = harness(app(&site, Screen::Fleet));
    wait_until(&mut harness, "the fleet view", |app| {
        has_view(app, &ViewRequest::Fleet)
    });
    click_nav(&mut harness, "Organisation");
    wait_until(&mut harness, "the organisation view", |app| {
        has_view(
            app,
            &ViewRequest::Organisation {
                period: Period::Week,
            },
        )
    });
    assert_shown(&harness, "En ligne maintenant");
    assert_shown(&harness, "Recommandations");
    assert_shown(&harness, "Alertes");

    click_nav(&mut harness, "Santé");
    // The first agent's charts show until another is chosen.
    wait_until(&mut harness, "the health view", |app| {
        has_view(
            app,
            &ViewRequest::Health {
                agent: Some(site.agents[0]),
            },
        )
    });
    assert_shown(&harness, "Santé du parc");
    harness
        .query_all_by_label("demo-pc-2")
        .next()
        .expect("health row")
        .click();
    wait_until(&mut harness, "another agent's charts", |app| {
        has_view(
            app,
            &ViewRequest::Health {
                agent: Some(site.agents[1]),
            },
        )
    });
    let Some(ViewData::Health(view)) = harness
        .state()
        .state
        .views
        .get(&ViewRequest::Health {
            agent: Some(site.agents[1]),
        })
        .map(AsRef::as_ref)
    else {
        panic!("health view expected");
    };
    let (_, charts) = view.selected.as_ref().expect("selected agent");
    assert!(
        charts.raw_samples > console::views::MAX_PLOT_POINTS,
        "{} samples",
        charts.raw_samples
    );
    assert!(
        charts.cpu_pct.len() <= console::views::MAX_PLOT_POINTS,
        "decimated before the plot"
    );

    click_nav(&mut harness, "Journal d'audit");
    wait_until(&mut harness, "the audit view", |app| {
        has_view(app, &ViewRequest::Audit)
    });
    harness.get_by_label_contains("Chaîne de hachage vérifiée");

    click_nav(&mut harness, "Réglages");
    assert_shown(&harness, "Catégories et règles");
    assert_shown(&harness, "Alertes par e-mail (SMTP)");
    harness
        .get_by_label("Enregistré pour la fonction d'alertes ; aucun e-mail n'est encore envoyé.");
}

#[test]
fn language_switches_at_runtime_and_is_remembered() {
    let site = site();
    let mut harness = harness(app(&site, Screen::Settings));
    wait_until(&mut harness, "the settings", |app| {
        has_view(app, &ViewRequest::Fleet)
    });
    assert_shown(&harness, "Langue");
    harness.get_by_label("English").click();
    harness.run_steps(2);
    assert_shown(&harness, "Language");
    assert_shown(&harness, "Fleet");
    assert!(harness.query_by_label("Parc").is_none());
    click_nav(&mut harness, "Fleet");
    harness.get_by_label_contains("2 online");
    // Persisted in the store's settings.
    wait_until(&mut harness, "the saved language", |_| {
        site.store
            .get_setting("language")
            .ok()
            .flatten()
            .is_some_and(|value| value == serde_json::json!("en"))
    });
    click_nav(&mut harness, "Settings");
    harness.get_by_label("Français").click();
    harness.run_steps(2);
    assert_shown(&harness, "Parc");
    harness.get_by_label("Русский").click();
    harness.run_steps(2);
    assert_shown(&harness, "Парк");
}

#[test]
fn an_empty_console_says_how_to_enrol_a_first_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        Arc::new(ConsoleStore::open(&dir.path().join("console"), DayClock::UTC).expect("store"));
    let engine = Engine::start(EngineConfig {
        store,
        identity: None,
        mdns: false,
        sync_interval: Duration::from_secs(30),
        data_dir: dir.path().join("console"),
    })
    .expect("engine");
    let mut harness = harness(ConsoleApp::new(engine, DayClock::UTC, Screen::Fleet));
    wait_until(&mut harness, "the fleet view", |app| {
        has_view(app, &ViewRequest::Fleet)
    });
    harness.get_by_label_contains("smarttracker-agent enroll");
    harness.get_by_label_contains("Synchronisation désactivée");
}
