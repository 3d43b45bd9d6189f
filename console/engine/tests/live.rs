//! The live-view client against a real demo agent process over QUIC:
//! frames arrive decoded in the single and the grid mode, the workstation
//! shows its notice while watched and drops it as soon as the client stops
//! (well before the lease would lapse), closing the engine ends its
//! watches too, a viewer console is refused, and a screenshot taken on
//! demand lands encrypted in the store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::status::StatusSnapshot;
use certs::{AgentIdentity, ConsoleIdentity, Role, SiteCa, Validity};
use console_engine::live::{LiveBoard, LiveClient, LiveMode, LiveState, LiveUpdate};
use console_engine::model::{AgentId, DayClock};
use console_engine::service::{Command as EngineCommand, Engine, EngineConfig, Event};
use console_engine::store::{ConsoleStore, ShotSource};
use console_engine::sync::{inventory_record, SyncConfig, Syncer};

/// The agent binary next to this test's directory (`target/<profile>/`):
/// the workspace test run builds every binary first.
fn agent_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps")
        .join("smarttracker-agent");
    assert!(
        path.is_file(),
        "{} is missing: build the workspace binaries first (`cargo build --bins`, or scripts/test.sh)",
        path.display()
    );
    path
}

/// A running demo agent; killed on drop.
struct AgentProcess {
    child: Child,
    data: PathBuf,
}

impl AgentProcess {
    fn status(&mut self) -> StatusSnapshot {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(snapshot) = StatusSnapshot::read(&self.data) {
                return snapshot;
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("agent exited early: {exit}");
            }
            assert!(
                Instant::now() < deadline,
                "the agent never wrote its status"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the agent's status satisfies `ready`.
    fn wait_status(&mut self, what: &str, ready: impl Fn(&StatusSnapshot) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(&self.status()) {
            assert!(Instant::now() < deadline, "the status never showed {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Site {
    dir: tempfile::TempDir,
    ca: SiteCa,
    /// One validity for everything the CA issues (none may outlive it).
    validity: Validity,
    store: Arc<ConsoleStore>,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let validity = Validity::days_from(time::OffsetDateTime::now_utc(), 30);
        let ca =
            SiteCa::init(&dir.path().join("site"), "Live site", None, validity).expect("site CA");
        let store = Arc::new(
            ConsoleStore::open(&dir.path().join("console").join("store"), DayClock::utc())
                .expect("console store"),
        );
        Site {
            dir,
            ca,
            validity,
            store,
        }
    }

    fn console(&self, role: Role) -> ConsoleIdentity {
        self.ca
            .issue_console(role, "Live test console", self.validity)
            .expect("console identity")
    }

    /// Enrols and starts a demo agent, and puts it in the inventory with
    /// its address.
    fn agent(&self, name: &str) -> (AgentId, AgentProcess) {
        let identity: AgentIdentity = self
            .ca
            .issue_agent(Some(name), self.validity)
            .expect("agent");
        let bundle = self.dir.path().join(format!("{name}.bundle"));
        identity.write_bundle(&bundle).expect("bundle");
        let data = self.dir.path().join(name);
        let enrolled = Command::new(agent_bin())
            .args(["enroll", "--bundle"])
            .arg(&bundle)
            .arg("--data")
            .arg(&data)
            .output()
            .expect("run enroll");
        assert!(enrolled.status.success(), "enroll: {enrolled:?}");
        let child = Command::new(agent_bin())
            .args([
                "run",
                "--sensors",
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(&data)
            .env("SMARTTRACKER_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn agent");
        let mut process = AgentProcess { child, data };
        let listen = process.status().listen;
        let mut record = inventory_record(
            name,
            &identity.cert_der,
            console_engine::clock::wall_now_ms(),
        )
        .expect("inventory record");
        record.addresses = vec![listen];
        self.store.upsert_agent(&record).expect("inventory");
        (record.agent, process)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A live client whose updates are collected for the test.
fn client(site: &Site, identity: ConsoleIdentity) -> (LiveClient, Arc<Mutex<Vec<LiveUpdate>>>) {
    let updates = Arc::new(Mutex::new(Vec::new()));
    let sink = updates.clone();
    let syncer = Arc::new(Syncer::new(
        identity,
        site.store.clone(),
        SyncConfig::default(),
    ));
    let client = LiveClient::new(
        syncer,
        site.store.clone(),
        Arc::new(move |update| sink.lock().expect("updates").push(update)),
        console_engine::clock::wall_now_ms,
    );
    (client, updates)
}

/// Applies the collected updates to `board` until `ready` holds.
fn wait_board(
    board: &mut LiveBoard,
    updates: &Mutex<Vec<LiveUpdate>>,
    what: &str,
    ready: impl Fn(&LiveBoard) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for update in updates.lock().expect("updates").drain(..) {
            board.apply(update);
        }
        if ready(board) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {board:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn frame_size(board: &LiveBoard, agent: AgentId) -> Option<[usize; 2]> {
    board
        .get(agent)
        .and_then(|entry| entry.frame.as_ref())
        .map(|frame| frame.image.size())
}

#[test]
fn frames_come_in_both_modes_and_stopping_removes_the_workstation_notice_at_once() {
    let site = Site::new();
    let (agent, mut process) = site.agent("pc-live-1");
    let runtime = runtime();
    let (client, updates) = client(&site, site.console(Role::Admin));
    let mut board = LiveBoard::default();

    // Single view: a large frame.
    let watch = board.want(LiveMode::Single, &[agent]).expect("a new watch");
    runtime.block_on(async { client.set(&watch) });
    wait_board(&mut board, &updates, "a single-view frame", |board| {
        matches!(
            board.get(agent).map(|entry| &entry.state),
            Some(LiveState::Live { .. } | LiveState::Unchanged { .. })
        ) && frame_size(board, agent).is_some()
    });
    let [width, height] = frame_size(&board, agent).expect("a frame");
    assert!(
        width > 320 && width <= 1280 && height <= 720,
        "{width}x{height}"
    );
    process.wait_status("the live-view notice", |status| {
        !status.live_view.is_empty()
    });

    // The grid: the same agent, thumbnails.
    let watch = board.want(LiveMode::Grid, &[agent]).expect("a new watch");
    runtime.block_on(async { client.set(&watch) });
    wait_board(&mut board, &updates, "a thumbnail", |board| {
        frame_size(board, agent).is_some_and(|[width, height]| width <= 320 && height <= 180)
    });

    // Stop: the notice goes within a few seconds, not at the lease's end.
    let stop = board.stop().expect("a stop");
    let stopped_at = Instant::now();
    let ending = runtime.block_on(async {
        client.set(&stop);
        client.stop_all()
    });
    assert!(ending.is_empty(), "set(stop) already ended every task");
    process.wait_status("the notice gone", |status| status.live_view.is_empty());
    assert!(
        stopped_at.elapsed() < Duration::from_secs(10),
        "the notice went only after {:?}",
        stopped_at.elapsed()
    );
    process.wait_status("the stop logged", |status| {
        status
            .recent_access
            .iter()
            .any(|entry| entry.request == "live-stop" && entry.allowed)
    });
}

#[test]
fn a_viewer_console_is_refused_and_does_not_retry() {
    let site = Site::new();
    let (agent, mut process) = site.agent("pc-live-2");
    let runtime = runtime();
    let (client, updates) = client(&site, site.console(Role::Viewer));
    let mut board = LiveBoard::default();
    let watch = board.want(LiveMode::Grid, &[agent]).expect("a new watch");
    runtime.block_on(async { client.set(&watch) });
    wait_board(&mut board, &updates, "the refusal", |board| {
        matches!(
            board.get(agent).map(|entry| &entry.state),
            Some(LiveState::Refused { .. })
        )
    });
    assert!(frame_size(&board, agent).is_none());
    process.wait_status("the refusal logged", |status| {
        status
            .recent_access
            .iter()
            .any(|entry| entry.request == "live-start" && !entry.allowed)
    });
    // No second attempt (the first retry would come after a second).
    std::thread::sleep(Duration::from_millis(2_500));
    let status = process.status();
    assert!(status.live_view.is_empty());
    let refused = status
        .recent_access
        .iter()
        .filter(|entry| entry.request.starts_with("live-"))
        .count();
    assert_eq!(refused, 1, "{:?}", status.recent_access);
}

#[test]
fn closing_the_engine_ends_its_watches_and_screenshots_are_stored() {
    let site = Site::new();
    let (agent, mut process) = site.agent("pc-live-3");
    let engine = Engine::start(EngineConfig {
        store: site.store.clone(),
        background: true,
        identity: Some(site.console(Role::Admin)),
        mdns: false,
        sync_interval: Some(Duration::from_secs(3_600)),
        data_dir: site.dir.path().join("console"),
    })
    .expect("engine");
    let mut board = LiveBoard::default();
    let watch = board.want(LiveMode::Single, &[agent]).expect("a new watch");
    engine.send(EngineCommand::Live(watch));
    engine.send(EngineCommand::TakeScreenshot(agent));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut taken = None;
    while taken.is_none() || frame_size(&board, agent).is_none() {
        assert!(
            Instant::now() < deadline,
            "no frame or screenshot: {board:?}"
        );
        match engine.try_recv() {
            Some(Event::Live(update)) => {
                board.apply(update);
            }
            Some(Event::ScreenshotTaken { meta, .. }) => taken = Some(meta),
            Some(Event::ScreenshotFailed { error, .. }) => panic!("screenshot: {error}"),
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    process.wait_status("the live-view notice", |status| {
        !status.live_view.is_empty()
    });
    let taken = taken.expect("a screenshot");
    assert_eq!(taken.source, ShotSource::OnDemand);
    assert!(taken.available && taken.width > 320, "{taken:?}");
    let stored = site
        .store
        .screenshots(agent, taken.key.at_ms, taken.key.at_ms + 1)
        .expect("listed");
    assert_eq!(stored, vec![taken.clone()]);
    let jpeg = site.store.screenshot_jpeg(taken.key).expect("decrypted");
    let decoded = console_engine::live::decode_image(&jpeg, u32::MAX).expect("a JPEG");
    assert_eq!(
        decoded.size(),
        [taken.width as usize, taken.height as usize]
    );

    // Closing the window drops the engine: the notice goes at once.
    let closed_at = Instant::now();
    drop(engine);
    process.wait_status("the notice gone", |status| status.live_view.is_empty());
    assert!(
        closed_at.elapsed() < Duration::from_secs(10),
        "the notice went only after {:?}",
        closed_at.elapsed()
    );
}
