//! The console window driven by label, as a manager would use it, over a
//! store filled through the engine's real ingest path: records of real
//! demo agents (agent store, recorder, simulated workstation) pulled batch
//! by batch and ingested, as sync does minus QUIC. The Live screen gets
//! its frames injected into its pure core; screenshots are stored through
//! the store's real (encrypting) paths.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::demo::DemoWorkstation;
use agent::recorder::backfill_demo;
use agent::store::{Quotas, Store};
use certs::{ConsoleIdentity, Role, SiteCa, Validity};
use console::app::{ConsoleApp, LiveView, Screen};
use console_engine::i18n::{
    date_time_seconds_label, time_label, time_seconds_label, zone_label, Lang,
};
use console_engine::live::{LiveFrame, LiveMode, LiveUpdate, RgbaImage, UpdateKind};
use console_engine::model::{AgentId, DayClock};
use console_engine::service::socket;
use console_engine::service::{Command, Engine, EngineConfig, Link};
use console_engine::settings::ConsoleSettings;
use console_engine::store::{AgentRecord, ConsoleStore, FetchedFrame, ShotSource};
use console_engine::sync::SYNCED_STREAMS;
use console_engine::views::{Period, ViewData, ViewRequest};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use protocol::{
    CapturedImage, Cursor, FrameMeta, ImageFormat, Policy, Record, RecordBatch, SeqRecord,
    StreamKind,
};
use sha2::{Digest, Sha256};

/// The demo person whose workstation is in another time zone than the
/// site (UTC).
const FAR_PERSON: (&str, &str) = ("demo-pc-2", "America/Montreal");
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
    let mut demo = DemoWorkstation::new(seed).with_users(&[user.to_owned()]);
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
            time_zone: (name == FAR_PERSON.0).then(|| FAR_PERSON.1.to_owned()),
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
        ConsoleStore::open(&dir.path().join("console"), DayClock::utc()).expect("console store"),
    );
    let now_ms = console_engine::clock::wall_now_ms();
    let agents = PEOPLE
        .iter()
        .map(|(name, user, seed)| record_agent(&store, dir.path(), name, user, *seed, now_ms))
        .collect();
    Site { dir, store, agents }
}

fn app(site: &Site, screen: Screen) -> ConsoleApp {
    app_as(site, None, screen)
}

/// A console identity of `role` from a fresh site CA (not the agents'
/// site: this console reaches no agent).
fn identity(dir: &Path, role: Role) -> ConsoleIdentity {
    let validity = Validity::days_from(time::OffsetDateTime::now_utc(), 30);
    let ca = SiteCa::init(&dir.join("test-site"), "Test site", None, validity).expect("site");
    ca.issue_console(role, "Test console", validity)
        .expect("console identity")
}

fn app_as(site: &Site, identity: Option<ConsoleIdentity>, screen: Screen) -> ConsoleApp {
    let engine = Engine::start(EngineConfig {
        store: site.store.clone(),
        background: true,
        identity,
        mdns: false,
        sync_interval: Some(Duration::from_secs(30)),
        data_dir: site.dir.path().join("console"),
    })
    .expect("engine");
    ConsoleApp::new(Link::InProcess(engine), screen)
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
fn a_workstation_in_another_zone_is_marked_and_its_attendance_can_follow_it() {
    let site = site();
    let mut harness = harness(app(&site, Screen::Fleet));
    wait_until(&mut harness, "the fleet view", |app| {
        has_view(app, &ViewRequest::Fleet) && app.state.fleet_visible.len() == PEOPLE.len()
    });
    let montreal = DayClock::from_name(FAR_PERSON.1).expect("zone");
    let now_ms = console_engine::clock::wall_now_ms();
    let label = zone_label(&montreal, now_ms);
    // EST or EDT: short in the table, the zone in full on hover.
    let marker = format!("◷ {}", montreal.abbreviation(now_ms));
    assert_eq!(
        harness.query_all_by_label(&marker).count(),
        1,
        "one workstation in another zone"
    );
    assert_eq!(harness.query_all_by_label_contains("◷").count(), 1);

    harness.get_by_label_contains(FAR_PERSON.0).click();
    let far = site.agents[1];
    wait_until(&mut harness, "the employee view", |app| {
        has_view(
            app,
            &ViewRequest::Employee {
                agent: far,
                period: Period::Week,
            },
        )
    });
    assert_shown(&harness, &marker);
    harness
        .get_by_label(&format!(
            "Afficher la présence dans le fuseau horaire de ce poste : {label}"
        ))
        .click();
    wait_until(&mut harness, "the setting shown", |app| {
        app.state.settings.own_zone_agents.contains(&far)
    });
    // The engine saves it on its own thread: wait for the store to hold it.
    wait_until(&mut harness, "the setting kept in the store", |_| {
        ConsoleSettings::load(&site.store)
            .is_ok_and(|reloaded| reloaded.own_zone_agents.contains(&far))
    });
}

#[test]
fn fleet_shows_a_faulty_agent_until_a_week_after_its_last_fault() {
    let site = site();
    let now_ms = console_engine::clock::wall_now_ms();
    site.store
        .note_fault(
            site.agents[0],
            console_engine::store::FaultKind::InvalidData,
            now_ms - 60_000,
            "usage: 3 records refused as invalid",
        )
        .expect("fault");
    site.store
        .note_fault(
            site.agents[1],
            console_engine::store::FaultKind::Impersonation,
            now_ms - 8 * 86_400_000,
            "an old one",
        )
        .expect("fault");
    let mut harness = harness(app(&site, Screen::Fleet));
    wait_until(&mut harness, "the fleet view", |app| {
        has_view(app, &ViewRequest::Fleet) && app.state.fleet_visible.len() == PEOPLE.len()
    });
    assert_eq!(
        harness
            .query_all_by_label("envoie des données invalides")
            .count(),
        1
    );
    assert_eq!(
        harness
            .query_all_by_label("se fait passer pour un autre poste")
            .count(),
        0,
        "a fault older than a week is no longer shown"
    );
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
        .map(|day| console_engine::i18n::day_label(Lang::Fr, day.day))
        .expect("an attendance day");
    // The top app as the manager sees it, and its duration as people read it.
    harness.get_by_label(&top_app);
    harness.get_by_label(&arrival_day);
    assert!(
        harness.query_all_by_label_contains(" h ").count() > 0,
        "durations read as `2 h 05`"
    );
    // Categories read in the manager's language (`Développement`).
    let (top_category, _) = view
        .summary
        .by_category
        .first()
        .cloned()
        .expect("a category");
    let shown_category = console_engine::i18n::category_label(Lang::Fr, &top_category);
    assert!(
        harness.query_all_by_label(shown_category).count() > 0,
        "{top_category} shown as {shown_category}"
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
        .get_by_role_and_label(egui::accesskit::Role::ComboBox, "Poste")
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
        path: out.clone(),
    });
    wait_until(&mut harness, "the export", |app| {
        app.state
            .notices
            .iter()
            .any(|notice| notice.text.contains("attendance.csv"))
    });
    let csv = std::fs::read_to_string(&out).expect("csv written");
    let mut lines = csv.lines();
    assert!(lines.next().is_some_and(
        |header| header.starts_with("person,person_id,workstations,users,day,arrival")
    ));
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
        charts.raw_samples > console_engine::views::MAX_PLOT_POINTS,
        "{} samples",
        charts.raw_samples
    );
    assert!(
        charts.cpu_pct.len() <= console_engine::views::MAX_PLOT_POINTS,
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
    assert_shown(&harness, "Conservation sur cette console (jours)");
    harness
        .get_by_label("Enregistré pour la fonction d'alertes ; aucun e-mail n'est encore envoyé.");
}

/// Steps the UI until `label` is on screen.
fn wait_for_label(harness: &mut Harness<'_, ConsoleApp>, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while harness.query_all_by_label(label).next().is_none() {
        assert!(Instant::now() < deadline, "{label:?} never appeared");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn changing_the_site_zone_in_settings_moves_attendance_times() {
    let site = site();
    let mut harness = harness(app(&site, Screen::Attendance));
    let everyone = ViewRequest::Attendance {
        agent: None,
        period: Period::Week,
    };
    wait_until(&mut harness, "the attendance view", |app| {
        has_view(app, &everyone)
    });
    let arrival_ms = |app: &ConsoleApp| {
        let Some(ViewData::Attendance(view)) = app.state.views.get(&everyone).map(Arc::as_ref)
        else {
            return None;
        };
        view.lines.iter().find_map(|line| line.day.arrival_ms)
    };
    let arrival = arrival_ms(harness.state()).expect("an arrival");
    let utc = DayClock::utc();
    let paris = DayClock::from_name("Europe/Paris").expect("zone");
    assert_shown(&harness, &time_label(&utc, arrival));
    let now_ms = console_engine::clock::wall_now_ms();
    assert_shown(&harness, &format!("Heures en {}", zone_label(&utc, now_ms)));

    click_nav(&mut harness, "Réglages");
    assert_shown(&harness, "Fuseau horaire du site");
    harness.get_by_label("Europe/Paris").click();
    wait_until(&mut harness, "the new clock", |app| {
        app.state.clock == paris && app.state.regrouping.is_none()
    });
    assert_eq!(site.store.day_clock(), paris, "day totals regrouped");
    assert_eq!(
        ConsoleSettings::load(&site.store)
            .expect("settings")
            .time_zone,
        "Europe/Paris",
        "kept in console.toml"
    );
    assert_shown(
        &harness,
        &format!(
            "Jours et heures sont affichés en {}.",
            zone_label(&paris, now_ms)
        ),
    );

    click_nav(&mut harness, "Présence");
    wait_for_label(
        &mut harness,
        &format!("Heures en {}", zone_label(&paris, now_ms)),
    );
    // The same instant, an hour or two later on the wall clock.
    wait_for_label(&mut harness, &time_label(&paris, arrival));
    assert_ne!(time_label(&paris, arrival), time_label(&utc, arrival));
    let audit = audited(&site.store, "regroup-days");
    assert_eq!(audit, ["Europe/Paris day totals regrouped"]);
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
    // Persisted in console.toml.
    wait_until(&mut harness, "the saved language", |_| {
        ConsoleSettings::load(&site.store).is_ok_and(|settings| settings.language == Lang::En)
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
        Arc::new(ConsoleStore::open(&dir.path().join("console"), DayClock::utc()).expect("store"));
    let engine = Engine::start(EngineConfig {
        store,
        background: true,
        identity: None,
        mdns: false,
        sync_interval: Some(Duration::from_secs(30)),
        data_dir: dir.path().join("console"),
    })
    .expect("engine");
    let mut harness = harness(ConsoleApp::new(Link::InProcess(engine), Screen::Fleet));
    wait_until(&mut harness, "the fleet view", |app| {
        has_view(app, &ViewRequest::Fleet)
    });
    harness.get_by_label_contains("smarttracker-agent enroll");
    harness.get_by_label_contains("Synchronisation désactivée");
}

/// A plain image as the live client would have decoded it.
fn live_frame(at_ms: i64, width: usize, height: usize) -> LiveFrame {
    LiveFrame {
        at_ms,
        width_px: width as u32,
        height_px: height as u32,
        blurred: false,
        image: Arc::new(RgbaImage {
            width_px: width as u32,
            height_px: height as u32,
            rgba: [0x20, 0x40, 0x80, 0xff].repeat(width * height),
        }),
    }
}

/// Hands a frame to every current watch, as the live client would.
fn inject_frames(harness: &mut Harness<'_, ConsoleApp>, at_ms: i64, size: [usize; 2]) {
    let app = harness.state_mut();
    let now_ms = console_engine::clock::wall_now_ms();
    for (agent, watch) in app.state.live.board.watch().agents {
        let applied = app.state.live.board.apply(LiveUpdate {
            agent,
            watch,
            received_ms: now_ms,
            kind: UpdateKind::Frame {
                frame: live_frame(at_ms, size[0], size[1]),
                interval_ms: 1_000,
            },
        });
        assert!(applied, "the watch of {agent} is current");
    }
    harness.run_steps(3);
}

fn audited(store: &ConsoleStore, action: &str) -> Vec<String> {
    store
        .audit_log(0, 10_000)
        .expect("audit log")
        .into_iter()
        .filter(|record| record.entry.action == action)
        .map(|record| format!("{} {}", record.entry.target, record.entry.detail))
        .collect()
}

#[test]
fn live_grid_then_one_workstation_with_its_time_overlay_and_stop() {
    let site = site();
    // An admin console as far as the window knows; frames come from the
    // test (the engine, without an identity, watches nobody).
    let mut app = app(&site, Screen::Fleet);
    app.state.role = Some(Role::Admin);
    let mut harness = harness(app);
    wait_until(&mut harness, "the fleet view", |app| {
        app.state.fleet_visible.len() == PEOPLE.len()
    });
    click_nav(&mut harness, "En direct");
    // The two online agents are watched as thumbnails, not the third.
    wait_until(&mut harness, "the grid watch", |app| {
        app.state.live.board.mode() == Some(LiveMode::Grid)
            && app.state.live.board.agents().count() == 2
    });
    harness.get_by_label_contains("la personne voit sur son écran un avis");
    let grid_at_ms = console_engine::clock::wall_now_ms() - 3_000;
    inject_frames(&mut harness, grid_at_ms, [320, 180]);
    let grid_time = time_seconds_label(&DayClock::utc(), grid_at_ms);
    assert_eq!(harness.query_all_by_label(&grid_time).count(), 2);
    for (name, _, _) in &PEOPLE[..2] {
        assert_shown(&harness, name);
    }
    assert!(harness.query_by_label("demo-pc-3").is_none());
    assert_eq!(harness.state().state.live.textures.len(), 2);

    // One of them, large: a new watch in single mode.
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "demo-pc-1")
        .click();
    wait_until(&mut harness, "the single watch", |app| {
        app.state.live.board.mode() == Some(LiveMode::Single)
    });
    assert_eq!(
        harness.state().state.live.view,
        LiveView::Single(site.agents[0])
    );
    let single_at_ms = console_engine::clock::wall_now_ms() - 1_000;
    inject_frames(&mut harness, single_at_ms, [1280, 720]);
    let single_time = time_seconds_label(&DayClock::utc(), single_at_ms);
    // The overlay over the image: badge, name, capture time.
    harness.get_by_label(" ● EN DIRECT ");
    harness.get_by_label(&single_time);
    assert!(harness.query_all_by_label("demo-pc-1").count() >= 1);
    harness.get_by_label("1280 × 720");
    harness.get_by_label_contains(&format!("Capturé à {single_time}"));
    harness.get_by_label("Prendre une capture");
    harness.get_by_label("← Tous les postes");

    // The agent says the screen did not change: same image, said so.
    {
        let app = harness.state_mut();
        let (agent, watch) = app.state.live.board.watch().agents[0];
        app.state.live.board.apply(LiveUpdate {
            agent,
            watch,
            received_ms: console_engine::clock::wall_now_ms(),
            kind: UpdateKind::Unchanged { interval_ms: 1_000 },
        });
    }
    harness.run_steps(2);
    harness.get_by_label(&format!("Écran inchangé depuis {single_time}"));
    // A refusal is said in red, with the agent's reason.
    {
        let app = harness.state_mut();
        let (agent, watch) = app.state.live.board.watch().agents[0];
        app.state.live.board.apply(LiveUpdate {
            agent,
            watch,
            received_ms: console_engine::clock::wall_now_ms(),
            kind: UpdateKind::Refused("forbidden for a viewer console".to_owned()),
        });
    }
    harness.run_steps(2);
    harness.get_by_label("Le poste a refusé la vue en direct : forbidden for a viewer console");

    // Stop: nobody is watched any more, and no image is kept.
    harness.get_by_label("Arrêter").click();
    wait_until(&mut harness, "the stop", |app| {
        app.state.live.board.mode().is_none()
    });
    harness.get_by_label("Vue en direct arrêtée : aucun poste n'est regardé.");
    assert!(harness.state().state.live.textures.is_empty());

    // Back to the grid, then leaving the screen stops it too.
    harness.get_by_label("Regarder les postes en ligne").click();
    wait_until(&mut harness, "the grid again", |app| {
        app.state.live.board.agents().count() == 2
    });
    click_nav(&mut harness, "Parc");
    wait_until(&mut harness, "the stop on leaving", |app| {
        app.state.live.board.mode().is_none()
    });
}

#[test]
fn stop_on_the_live_screen_ends_the_engine_s_watches() {
    let site = site();
    let admin = identity(site.dir.path(), Role::Admin);
    let mut harness = harness(app_as(&site, Some(admin), Screen::Live));
    // The engine starts one watch per online agent (none reachable here).
    wait_until(&mut harness, "the audited starts", |_| {
        audited(&site.store, "live-view-start").len() == 2
    });
    harness.get_by_label("Arrêter").click();
    wait_until(&mut harness, "the audited stops", |_| {
        audited(&site.store, "live-view-stop").len() == 2
    });
    let stops = audited(&site.store, "live-view-stop");
    for agent in &site.agents[..2] {
        assert!(
            stops
                .iter()
                .any(|line| line.starts_with(&agent.to_string())),
            "{agent} stopped: {stops:?}"
        );
    }
    harness.get_by_label("Vue en direct arrêtée : aucun poste n'est regardé.");
}

#[test]
fn a_viewer_console_is_told_why_there_is_no_live_view() {
    let site = site();
    let viewer = identity(site.dir.path(), Role::Viewer);
    let mut harness = harness(app_as(&site, Some(viewer), Screen::Live));
    wait_until(&mut harness, "the fleet view", |app| {
        app.state.fleet_visible.len() == PEOPLE.len()
    });
    harness.get_by_label_contains("réservées aux consoles administrateur");
    assert!(harness.query_by_label("Arrêter").is_none());
    assert_eq!(harness.state().state.live.board.mode(), None);
    assert!(audited(&site.store, "live-view-start").is_empty());
}

/// A JPEG as an agent sends it: metadata with size, digest, dimensions.
fn captured(at_ms: i64, blurred: bool) -> CapturedImage {
    let pixels = image::RgbImage::from_fn(160, 90, |x, y| {
        image::Rgb([(x * 255 / 160) as u8, (y * 255 / 90) as u8, 128])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80)
        .encode_image(&pixels)
        .expect("jpeg");
    CapturedImage {
        meta: FrameMeta {
            at_ms,
            width: 160,
            height: 90,
            format: ImageFormat::Jpeg,
            size_bytes: bytes.len() as u32,
            sha256: Sha256::digest(&bytes).into(),
            blurred,
        },
        bytes,
    }
}

#[test]
fn screenshots_list_exact_times_and_badges_and_open_one() {
    let site = site();
    let agent = site.agents[0];
    let now_ms = console_engine::clock::wall_now_ms();
    // One on demand; two periodic (one blurred, one whose image the
    // workstation dropped before it was fetched).
    let on_demand = captured(now_ms - 60_000, false);
    let taken = site
        .store
        .put_screenshot(agent, ShotSource::OnDemand, &on_demand)
        .expect("stored");
    let periodic = captured(now_ms - 3_600_000, true);
    let dropped = captured(now_ms - 7_200_000, false);
    let batch = RecordBatch {
        stream: StreamKind::Frames,
        epoch: 7,
        records: vec![
            SeqRecord {
                seq: 1,
                record: Record::Frame(dropped.meta.clone()),
            },
            SeqRecord {
                seq: 2,
                record: Record::Frame(periodic.meta.clone()),
            },
        ],
        more: false,
    };
    let fetched = HashMap::from([
        (1, FetchedFrame::Dropped),
        (2, FetchedFrame::Image(periodic.clone())),
    ]);
    site.store
        .ingest_with_frames(agent, &batch, &fetched, now_ms)
        .expect("frames ingested");

    let mut harness = harness(app(&site, Screen::Fleet));
    wait_until(&mut harness, "the fleet view", |app| {
        has_view(app, &ViewRequest::Fleet)
    });
    click_nav(&mut harness, "Captures d'écran");
    let request = ViewRequest::Screenshots {
        agent,
        period: Period::Week,
    };
    wait_until(&mut harness, "the screenshots view", |app| {
        has_view(app, &request)
    });
    harness.get_by_label("3 capture(s)");
    for shot in [&on_demand, &periodic, &dropped] {
        let when = date_time_seconds_label(Lang::Fr, &DayClock::utc(), shot.meta.at_ms);
        assert_shown(&harness, &when);
    }
    assert_eq!(harness.query_all_by_label(" à la demande ").count(), 1);
    assert_eq!(harness.query_all_by_label(" périodique ").count(), 2);
    assert_eq!(harness.query_all_by_label(" floutée ").count(), 1);
    assert_eq!(
        harness
            .query_all_by_label(" image supprimée sur le poste ")
            .count(),
        1
    );
    harness.get_by_label("Cliquez sur une capture pour l'afficher.");

    // Open the one taken on demand: decrypted and decoded by the engine.
    let when = date_time_seconds_label(Lang::Fr, &DayClock::utc(), on_demand.meta.at_ms);
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, &when)
        .click();
    wait_until(&mut harness, "the decoded screenshot", |app| {
        app.state
            .gallery
            .images
            .iter()
            .any(|(key, texture)| *key == taken.key && texture.is_ok())
    });
    // Its time now heads the image too.
    assert_eq!(harness.query_all_by_label(&when).count(), 2);
    assert_eq!(
        audited(&site.store, "screenshot-view").len(),
        1,
        "opening a screenshot is audited"
    );
}

#[test]
fn the_policy_editor_turns_periodic_screenshots_on_with_interval_and_blur() {
    let site = site();
    let mut harness = harness(app(&site, Screen::Settings));
    harness.state_mut().state.policy.agent = Some(site.agents[0]);
    harness.state_mut().state.policy.draft = Some(Policy::default());
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label("Les flouter (texte illisible)")
            .is_none(),
        "no interval or blur while they are off"
    );
    harness.get_by_label("Captures d'écran périodiques").click();
    harness.run_steps(2);
    let draft = |harness: &Harness<'_, ConsoleApp>| {
        harness
            .state()
            .state
            .policy
            .draft
            .clone()
            .expect("a draft")
            .screenshots
    };
    assert!(draft(&harness).enabled);
    assert_eq!(draft(&harness).interval_secs, 600, "10 min to start with");
    assert!(!draft(&harness).blur);
    harness
        .get_by_label("Les flouter (texte illisible)")
        .click();
    harness.run_steps(2);
    assert!(draft(&harness).blur);
    harness.get_by_label("Toutes les (minutes)");
}

/// `smarttracker-console serve` on a data directory holding `PEOPLE`;
/// killed on drop.
struct Serving {
    child: std::process::Child,
    data: tempfile::TempDir,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serving() -> Serving {
    let data = tempfile::tempdir().expect("tempdir");
    let store = ConsoleStore::open(
        &data.path().join(console_engine::STORE_DIR),
        DayClock::utc(),
    )
    .expect("console store");
    let now_ms = console_engine::clock::wall_now_ms();
    for (name, user, seed) in PEOPLE {
        record_agent(&store, data.path(), name, user, seed, now_ms);
    }
    drop(store);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_smarttracker-console"))
        .arg("--data")
        .arg(data.path())
        .args(["serve", "--no-mdns"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(socket::attach(data.path(), false), Ok(Some(_))) {
        assert!(Instant::now() < deadline, "serve never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    Serving { child, data }
}

fn attached_window(serving: &Serving) -> Harness<'static, ConsoleApp> {
    let remote = socket::attach(serving.data.path(), true)
        .expect("attach")
        .expect("serve runs")
        .into_remote()
        .expect("remote engine");
    harness(ConsoleApp::new(Link::Attached(remote), Screen::Fleet))
}

#[test]
fn two_windows_attached_to_serve_show_what_the_command_line_reports() {
    let serving = serving();
    let mut first = attached_window(&serving);
    let mut second = attached_window(&serving);
    for harness in [&mut first, &mut second] {
        wait_until(harness, "the fleet view from serve", |app| {
            has_view(app, &ViewRequest::Fleet) && app.state.fleet_visible.len() == PEOPLE.len()
        });
        for (name, _, _) in PEOPLE {
            harness.get_by_label_contains(name);
        }
    }
    // A window's command reaches serve: the period of the organisation
    // screen is computed there and comes back.
    click_nav(&mut first, "Organisation");
    wait_until(&mut first, "the organisation view from serve", |app| {
        has_view(
            app,
            &ViewRequest::Organisation {
                period: Period::Week,
            },
        )
    });
    // The command line attaches too, and reports the same workstations.
    let report = std::process::Command::new(env!("CARGO_BIN_EXE_smarttracker-console"))
        .arg("--data")
        .arg(serving.data.path())
        .args(["report", "--range", "7d"])
        .output()
        .expect("report");
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{text}");
    for (name, _, _) in PEOPLE {
        assert!(text.contains(name), "{text}");
    }
}

#[test]
fn a_console_certificate_near_its_end_is_named_in_the_status_bar() {
    let site = site();
    let now = time::OffsetDateTime::now_utc();
    let ca = SiteCa::init(
        &site.dir.path().join("test-site"),
        "Test site",
        None,
        Validity::days_from(now, 365),
    )
    .expect("site");
    let identity = ca
        .issue_console(Role::Admin, "Test console", Validity::days_from(now, 10))
        .expect("console identity");
    let mut harness = harness(app_as(&site, Some(identity), Screen::Fleet));
    wait_until(&mut harness, "a sync pass", |app| {
        app.state.sync.last.is_some()
    });
    assert_shown(&harness, "Le certificat de cette console est à renouveler");
    let certificate = harness
        .state()
        .state
        .sync
        .last
        .as_ref()
        .and_then(|summary| summary.certificate.clone())
        .expect("the certificate's problem");
    assert!(
        certificate.contains("expires on") && certificate.contains("smarttracker-certs console"),
        "{certificate}"
    );
}

#[test]
fn people_are_proposed_confirmed_with_one_click_and_shown_with_their_days() {
    let site = site();
    let mut harness = harness(app(&site, Screen::Fleet));
    wait_until(&mut harness, "the fleet view", |app| {
        has_view(app, &ViewRequest::Fleet)
    });
    click_nav(&mut harness, "Personnes");
    let everyone = ViewRequest::People {
        person: None,
        period: Period::Week,
    };
    wait_until(&mut harness, "the people view", |app| {
        has_view(app, &everyone)
    });
    assert_shown(&harness, "Propositions");
    assert_shown(
        &harness,
        "Aucune personne pour l'instant : confirmez celles proposées ci-dessous ou ajoutez-en une.",
    );
    for name in ["Alice", "Bruno", "Chloe"] {
        assert_shown(&harness, name);
    }
    // Confirming Alice makes her a person; the others stay proposed.
    harness
        .query_all_by_label("Confirmer")
        .next()
        .expect("a Confirm button")
        .click();
    wait_until(&mut harness, "Alice confirmed", |app| {
        app.state.views.get(&everyone).is_some_and(|data| {
            matches!(data.as_ref(), ViewData::People(view)
                if view.people.iter().any(|row| row.person.name == "Alice")
                    && view.proposals.iter().all(|proposal| proposal.name != "Alice"))
        })
    });
    harness.run_steps(2);
    harness
        .query_all_by_label("Alice")
        .next()
        .expect("Alice in the table")
        .click();
    harness.run_steps(2);
    let alice = ViewRequest::People {
        person: Some(console_engine::people::PersonId(1)),
        period: Period::Week,
    };
    wait_until(&mut harness, "Alice's days", |app| {
        app.state.views.get(&alice).is_some_and(|data| {
            matches!(data.as_ref(), ViewData::People(view)
                if view.selected.as_ref().is_some_and(|detail|
                    !detail.attendance.is_empty() && detail.summary.total_active_ms > 0))
        })
    });
    harness.run_steps(2);
    assert_shown(&harness, "Applications les plus utilisées");
    assert_shown(&harness, "Effacer (RGPD)…");
    // Refused input keeps what was typed and says why.
    harness.state_mut().state.people.draft.name = "Mallory".to_owned();
    harness.state_mut().state.people.draft.email = "pas-une-adresse".to_owned();
    harness.run_steps(2);
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "Ajouter")
        .click();
    wait_until(&mut harness, "the refusal", |app| {
        app.state
            .notices
            .iter()
            .any(|notice| notice.error && notice.text.contains("not an e-mail address"))
    });
    assert_eq!(harness.state().state.people.draft.name, "Mallory");
}

/// Enrols a workstation named `hostname` with `code` at `addr`, on a
/// thread of its own (the agent's side, as `enroll --code` runs it).
fn enrol_in_background(
    code: &str,
    addr: std::net::SocketAddr,
    hostname: &'static str,
) -> std::thread::JoinHandle<Result<certs::AgentIdentity, String>> {
    let code: certs::enrol::EnrolmentCode = code.parse().expect("the code parses");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime
            .block_on(agent::enrol::enrol(&code, &[addr], hostname))
            .map_err(|error| error.to_string())
    })
}

fn open_enrolment(app: &ConsoleApp) -> Option<console_engine::service::OpenEnrolment> {
    app.state.enrolment.status.open.clone()
}

#[test]
fn an_enrolment_opened_in_the_window_waits_for_approval_and_adds_the_workstation() {
    use console_engine::service::{EnrolmentCommand, EnrolmentOpen};
    let site = site();
    let identity = identity(site.dir.path(), Role::Admin);
    let mut harness = harness(app_as(&site, Some(identity), Screen::Fleet));
    wait_until(&mut harness, "the fleet view", |app| {
        has_view(app, &ViewRequest::Fleet)
    });
    // A site directory that is not this console's is refused with a line.
    let other = site.dir.path().join("other-site");
    let validity = Validity::days_from(time::OffsetDateTime::now_utc(), 30);
    SiteCa::init(&other, "Other", None, validity).expect("other site");
    let open = |site_dir: &Path| {
        Command::Enrolment(EnrolmentCommand::Open(Box::new(EnrolmentOpen {
            site: site_dir.to_owned(),
            passphrase: None,
            uses: 2,
            expires_secs: 600,
            group: Some("Accueil".to_owned()),
            team: None,
            listen: "127.0.0.1:0".parse().expect("address"),
            approve_each: true,
            mdns: false,
        })))
    };
    harness.state().send_command(open(&other));
    wait_until(&mut harness, "the refusal", |app| {
        app.state
            .enrolment
            .status
            .last_end
            .as_ref()
            .is_some_and(|end| matches!(end,
                console_engine::service::EnrolmentEnd::NotOpened(reason) if reason.contains("another site")))
    });
    harness
        .state()
        .send_command(open(&site.dir.path().join("test-site")));
    wait_until(&mut harness, "the open enrolment", |app| {
        open_enrolment(app).is_some()
    });
    harness.run_steps(2);
    let open = open_enrolment(harness.state()).expect("open");
    assert_shown(&harness, &open.code);
    let addr: std::net::SocketAddr = open.listening.parse().expect("listening address");

    // The first workstation waits on the list until the manager approves.
    let first = enrol_in_background(&open.code, addr, "pc-accueil");
    wait_until(&mut harness, "a pending request", |app| {
        open_enrolment(app).is_some_and(|open| open.pending.len() == 1)
    });
    harness.run_steps(2);
    assert!(harness
        .query_all_by_label_contains("pc-accueil (127.0.0.1:")
        .next()
        .is_some());
    assert!(!first.is_finished(), "nothing is signed before approval");
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "Approuver")
        .click();
    harness.run_steps(2);
    let enrolled = first.join().expect("thread").expect("enrolled");
    wait_until(&mut harness, "the enrolled workstation", |app| {
        open_enrolment(app).is_some_and(|open| open.done.len() == 1 && open.pending.is_empty())
    });
    let record = site
        .store
        .agent(enrolled.agent_id)
        .expect("inventory")
        .expect("the workstation is in the inventory");
    assert_eq!(record.name, "pc-accueil");
    let settings = ConsoleSettings::load(&site.store).expect("settings");
    assert_eq!(
        settings.groups.get(&enrolled.agent_id).map(String::as_str),
        Some("Accueil")
    );

    // The second is declined: refused, nothing added.
    let second = enrol_in_background(&open.code, addr, "pc-intrus");
    wait_until(&mut harness, "the second request", |app| {
        open_enrolment(app).is_some_and(|open| open.pending.len() == 1)
    });
    harness.run_steps(2);
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "Refuser")
        .click();
    harness.run_steps(2);
    let refused = second.join().expect("thread").expect_err("declined");
    assert!(refused.contains("refused"), "{refused}");
    assert_eq!(site.store.agents().expect("agents").len(), PEOPLE.len() + 1);

    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "Fermer l'enrôlement")
        .click();
    wait_until(&mut harness, "the enrolment closed", |app| {
        open_enrolment(app).is_none()
            && app.state.enrolment.status.last_end.is_some()
            && app.state.enrolment.status.last_done.len() == 1
    });
}
