//! The Live screen's grid at real window sizes, driven by label: every
//! watched workstation's thumbnail is reachable (inside the window's
//! width, and in view once scrolled to), and a narrower window gives
//! fewer columns. Agents are inventoried as online without history; the
//! engine has no identity, so it watches nobody and the test hands each
//! watch its frames, as the live client would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use certs::Role;
use console::app::{ConsoleApp, LiveView, Screen, MAX_GRID_AGENTS};
use console_engine::live::{LiveFrame, LiveMode, LiveUpdate, RgbaImage, UpdateKind};
use console_engine::model::{AgentId, DayClock};
use console_engine::service::{Engine, EngineConfig, Link};
use console_engine::store::{AgentRecord, ConsoleStore};
use egui::{Rect, Vec2};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

/// The window size of the brief and of `scripts/screenshots.sh`.
const WIDE: Vec2 = Vec2::new(1600.0, 1000.0);
/// A narrow window: fewer columns.
const NARROW: Vec2 = Vec2::new(700.0, 1000.0);

/// The name of the `n`th workstation (none is a prefix of another); the
/// third's is far too long for its thumbnail.
fn name(n: usize) -> String {
    match n {
        3 => "poste-03-du-service-comptabilite-au-deuxieme-etage.site.example.org".to_owned(),
        _ => format!("poste-{n:02}"),
    }
}

/// A console store with `count` agents seen a moment ago (online).
fn store_with_online_agents(dir: &std::path::Path, count: usize) -> Arc<ConsoleStore> {
    let store =
        Arc::new(ConsoleStore::open(&dir.join("console"), DayClock::utc()).expect("console store"));
    let now_ms = console_engine::clock::wall_now_ms();
    for n in 1..=count {
        let seed = u8::try_from(n).expect("a small fleet");
        store
            .upsert_agent(&AgentRecord {
                agent: AgentId::from_u128(u128::from(seed)),
                name: name(n),
                spki_sha256: [seed; 32],
                added_ms: now_ms - 86_400_000,
                addresses: vec![format!("127.0.0.1:{}", 47_100 + u16::from(seed))],
                last_seen_ms: Some(now_ms - 5_000),
                last_error: None,
                hostname: Some(name(n)),
                demo: true,
                time_zone: None,
            })
            .expect("inventory");
    }
    store
}

/// The Live screen of an admin console over `count` online agents, in a
/// window of `size`, once the grid watches them all (at most
/// `MAX_GRID_AGENTS`) and each has a frame.
fn live_grid(dir: &std::path::Path, count: usize, size: Vec2) -> Harness<'static, ConsoleApp> {
    let store = store_with_online_agents(dir, count);
    let engine = Engine::start(EngineConfig {
        store,
        background: true,
        identity: None,
        mdns: false,
        sync_interval: Some(Duration::from_secs(30)),
        data_dir: dir.join("console"),
    })
    .expect("engine");
    let mut app = ConsoleApp::new(Link::InProcess(engine), Screen::Live);
    app.state.role = Some(Role::Admin);
    let mut harness = Harness::builder()
        .with_size(size)
        .build_ui_state(|ui, app: &mut ConsoleApp| app.frame(ui), app);
    let watched = count.min(MAX_GRID_AGENTS);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        harness.step();
        let board = &harness.state().state.live.board;
        if board.mode() == Some(LiveMode::Grid) && board.agents().count() == watched {
            break;
        }
        assert!(Instant::now() < deadline, "timed out waiting for the grid");
        std::thread::sleep(Duration::from_millis(20));
    }
    let app = harness.state_mut();
    let now_ms = console_engine::clock::wall_now_ms();
    for (agent, watch) in app.state.live.board.watch().agents {
        let applied = app.state.live.board.apply(LiveUpdate {
            agent,
            watch,
            received_ms: now_ms,
            kind: UpdateKind::Frame {
                frame: LiveFrame {
                    at_ms: now_ms - 1_000,
                    width_px: 320,
                    height_px: 180,
                    blurred: false,
                    image: Arc::new(RgbaImage {
                        width_px: 320,
                        height_px: 180,
                        rgba: [0x20, 0x40, 0x80, 0xff].repeat(320 * 180),
                    }),
                },
                interval_ms: 5_000,
            },
        });
        assert!(applied, "the watch of {agent} is current");
    }
    harness.run_steps(3);
    harness
}

/// The rect of workstation `n`'s tile: its image and the name button
/// below it.
fn tile(harness: &Harness<'_, ConsoleApp>, n: usize) -> Rect {
    let image = harness
        .get_by_label(&format!("Image en direct de {}", name(n)))
        .rect();
    let label = harness
        .get_by_role_and_label(egui::accesskit::Role::Button, &name(n))
        .rect();
    assert!(
        image.min.x <= label.min.x && label.max.x <= image.max.x && label.min.y >= image.max.y,
        "the name of {} at {label:?} is not under its image at {image:?}",
        name(n)
    );
    image.union(label)
}

fn assert_within_width(rect: Rect, size: Vec2, what: &str) {
    assert!(
        rect.min.x >= 0.0 && rect.max.x <= size.x,
        "{what} at {rect:?} is past the window's width {}",
        size.x
    );
}

/// How many distinct columns (left edges) the tiles sit in.
fn columns(rects: &[Rect]) -> usize {
    let mut lefts: Vec<f32> = rects.iter().map(|rect| rect.min.x.round()).collect();
    lefts.sort_by(f32::total_cmp);
    lefts.dedup();
    lefts.len()
}

/// Scrolls tile `n` into view and checks it lies inside the window.
fn scroll_to_tile(harness: &mut Harness<'_, ConsoleApp>, n: usize, size: Vec2) -> Rect {
    harness
        .get_by_label(&format!("Image en direct de {}", name(n)))
        .scroll_to_me();
    harness.run_steps(3);
    let rect = tile(harness, n);
    let window = Rect::from_min_size(egui::Pos2::ZERO, size);
    assert!(
        window.contains_rect(rect),
        "{} at {rect:?} is not in view after scrolling to it",
        name(n)
    );
    rect
}

#[test]
fn eight_workstations_wrap_into_rows_within_a_wide_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut harness = live_grid(dir.path(), 8, WIDE);
    let rects: Vec<Rect> = (1..=8).map(|n| tile(&harness, n)).collect();
    for (n, rect) in (1..=8).zip(&rects) {
        assert_within_width(*rect, WIDE, &name(n));
    }
    let wide_columns = columns(&rects);
    assert!(
        (2..8).contains(&wide_columns),
        "8 thumbnails in {wide_columns} columns at 1600 px"
    );
    for n in 1..=8 {
        scroll_to_tile(&mut harness, n, WIDE);
    }
}

#[test]
fn thirty_online_workstations_are_all_reachable_by_scrolling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut harness = live_grid(dir.path(), 30, WIDE);
    let watched = 30.min(MAX_GRID_AGENTS);
    harness.get_by_label(&format!(
        "Affichage des {watched} premiers postes en ligne ; les autres sont listés sous les vignettes."
    ));
    for n in 1..=watched {
        assert_within_width(tile(&harness, n), WIDE, &name(n));
    }
    // Last first: scrolling down then back up reaches each thumbnail.
    for n in (1..=watched).rev() {
        scroll_to_tile(&mut harness, n, WIDE);
    }
    // The others, without a thumbnail, are named below the grid, each in
    // view once scrolled to, and open large.
    harness.get_by_label("Autres postes en ligne (cliquez sur l'un d'eux pour le voir en grand) :");
    let window = Rect::from_min_size(egui::Pos2::ZERO, WIDE);
    for n in watched + 1..=30 {
        assert!(harness
            .query_by_label(&format!("Image en direct de {}", name(n)))
            .is_none());
        harness
            .get_by_role_and_label(egui::accesskit::Role::Button, &name(n))
            .scroll_to_me();
        harness.run_steps(3);
        let rect = harness
            .get_by_role_and_label(egui::accesskit::Role::Button, &name(n))
            .rect();
        assert!(
            window.contains_rect(rect),
            "{} at {rect:?} is not in view after scrolling to it",
            name(n)
        );
    }
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, &name(30))
        .click();
    harness.run_steps(3);
    assert_eq!(
        harness.state().state.live.view,
        LiveView::Single(AgentId::from_u128(30))
    );
}

#[test]
fn a_narrow_window_gives_fewer_columns_and_scrolls_the_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wide = live_grid(dir.path(), 8, WIDE);
    let wide_rects: Vec<Rect> = (1..=8).map(|n| tile(&wide, n)).collect();
    drop(wide);
    let narrow_dir = tempfile::tempdir().expect("tempdir");
    let mut narrow = live_grid(narrow_dir.path(), 8, NARROW);
    let narrow_rects: Vec<Rect> = (1..=8).map(|n| tile(&narrow, n)).collect();
    for (n, rect) in (1..=8).zip(&narrow_rects) {
        assert_within_width(*rect, NARROW, &name(n));
    }
    let (wide_columns, narrow_columns) = (columns(&wide_rects), columns(&narrow_rects));
    assert!(
        (1..wide_columns).contains(&narrow_columns),
        "{narrow_columns} columns at 700 px, {wide_columns} at 1600 px"
    );
    // The last row is below the window until scrolled to.
    assert!(
        narrow_rects[7].max.y > NARROW.y,
        "8 thumbnails fit 700 px without scrolling: {:?}",
        narrow_rects[7]
    );
    for n in (1..=8).rev() {
        scroll_to_tile(&mut narrow, n, NARROW);
    }
}
