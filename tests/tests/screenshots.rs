//! Screenshots end to end with a real demo agent over real QUIC: an admin
//! console with periodic screenshots enabled by policy syncs the frames
//! and their images, stores them encrypted (no image signature anywhere
//! under its data directory) and takes one on demand with the CLI; a
//! viewer console never pulls frames and is refused a screenshot, which
//! the agent's status shows as REFUSED.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certs::ConsoleIdentity;
use console_engine::model::{AgentId, DayClock};
use console_engine::store::{jpeg_dimensions, ConsoleStore, ShotSource};
use console_engine::sync::{SyncConfig, SyncError, Syncer};
use harness::{bin, run_ok, Agent, Site};
use protocol::{CaptureSpec, ErrorCode, Request, Response, ScreenshotPolicy, StreamKind};

const PNG_MAGIC: [u8; 8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn open_store(data: &Path) -> Arc<ConsoleStore> {
    Arc::new(
        ConsoleStore::open(&data.join(console_engine::STORE_DIR), DayClock::utc())
            .expect("console store"),
    )
}

fn read_identity(data: &Path) -> ConsoleIdentity {
    ConsoleIdentity::read(&data.join(console_engine::IDENTITY_DIR)).expect("console identity")
}

/// Starts one demo agent with a day of history; returns it, its id and
/// address.
fn start_agent(site: &Site, name: &str) -> (Agent, AgentId, SocketAddr) {
    let data = site.add_agent(name);
    let mut agent = Agent::start(
        &data,
        "127.0.0.1:0",
        &["--no-mdns", "--demo-history-days", "1", "--demo-seed", "3"],
    );
    let status = agent.wait_live();
    let id: AgentId = status.agent_id.parse().expect("agent id");
    let addr = agent.addr();
    (agent, id, addr)
}

/// Turns periodic screenshots on through the admin console's identity, the
/// way the console window does.
fn enable_periodic_screenshots(site: &Site, agent: AgentId, addr: SocketAddr, blur: bool) {
    let data = site.console_data();
    let syncer = Syncer::new(
        read_identity(&data),
        open_store(&data),
        SyncConfig::default(),
    );
    runtime().block_on(async {
        let Ok(Response::Policy(mut policy)) =
            syncer.request_agent(agent, addr, &Request::GetPolicy).await
        else {
            panic!("get-policy failed");
        };
        assert!(!policy.screenshots.enabled, "off by default");
        policy.revision += 1;
        policy.screenshots = ScreenshotPolicy {
            enabled: true,
            interval_secs: 120,
            blur,
        };
        let applied = syncer
            .request_agent(agent, addr, &Request::SetPolicy(policy))
            .await;
        assert!(
            matches!(applied, Ok(Response::Policy(ref policy)) if policy.screenshots.enabled),
            "{applied:?}"
        );
    });
}

/// Waits until the agent has recorded at least one frame (it takes one as
/// soon as the policy enables them).
fn wait_for_frame(agent: &mut Agent) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = agent.ready();
        let frames = status
            .streams
            .iter()
            .find(|stream| stream.stream == StreamKind::Frames.name())
            .map_or(0, |stream| stream.durable_seq);
        if frames >= 1 {
            return;
        }
        assert!(Instant::now() < deadline, "no frame recorded: {status:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// No file under `dir` holds the PNG signature, the first four bytes of
/// any of `jpegs` (start-of-image and the marker after it; a bare 3-byte
/// FF D8 FF turns up by chance in random ciphertext), or any 32-byte
/// window taken from their start and middle.
fn assert_no_plain_images(dir: &Path, jpegs: &[Vec<u8>]) {
    let mut needles: Vec<Vec<u8>> = vec![PNG_MAGIC.to_vec()];
    for jpeg in jpegs {
        assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");
        needles.push(jpeg[..4].to_vec());
        needles.push(jpeg[..32].to_vec());
        let middle = jpeg.len() / 2;
        needles.push(jpeg[middle..middle + 32].to_vec());
    }
    let mut files = Vec::new();
    files_under(dir, &mut files);
    for file in files {
        let bytes = std::fs::read(&file).expect("read");
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|window| window == needle),
                "{} holds plain image bytes {:02x?}",
                file.display(),
                &needle[..4]
            );
        }
    }
}

fn agent_status_text(data: &Path) -> String {
    let output = run_ok(
        Command::new(bin("smarttracker-agent"))
            .args(["status", "--data"])
            .arg(data),
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn an_admin_console_syncs_periodic_screenshots_encrypted_and_takes_one_on_demand() {
    let site = Site::create();
    let (mut agent, id, addr) = start_agent(&site, "pc-7");
    enable_periodic_screenshots(&site, id, addr, true);
    wait_for_frame(&mut agent);

    let output = run_ok(
        site.console(&["sync", "--once", "--no-mdns", "--peer"])
            .arg(addr.to_string()),
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("synced "), "{report}");
    assert!(
        report.contains("frames +") && !report.contains("frames +0"),
        "{report}"
    );

    // The on-demand capture through the CLI.
    let out = site.path("shot.jpg");
    let output = run_ok(
        site.console(&[
            "screenshot",
            "--agent",
            "pc-7",
            "--no-mdns",
            "--max-width",
            "640",
            "--max-height",
            "480",
            "--quality",
            "70",
            "--out",
        ])
        .arg(&out),
    );
    let line = String::from_utf8_lossy(&output.stdout);
    assert!(
        line.starts_with(&format!("wrote {}: ", out.display())),
        "{line}"
    );
    assert!(
        line.contains(" JPEG, ") && line.contains(" KB, captured "),
        "{line}"
    );
    assert!(line.trim_end().ends_with(" UTC on pc-7"), "{line}");
    let written = std::fs::read(&out).expect("the screenshot file");
    let mode = std::fs::metadata(&out).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the file is private");
    let (width, height) = jpeg_dimensions(&written).expect("a JPEG that decodes");
    assert!(width <= 640 && height <= 480, "{width}x{height}");
    assert!(line.contains(&format!(": {width}x{height} JPEG")), "{line}");
    agent.stop();

    let data = site.console_data();
    let store = open_store(&data);
    let shots = store.screenshots(id, i64::MIN, i64::MAX).expect("list");
    let periodic: Vec<_> = shots
        .iter()
        .filter(|meta| meta.source == ShotSource::Periodic)
        .collect();
    let on_demand: Vec<_> = shots
        .iter()
        .filter(|meta| meta.source == ShotSource::OnDemand)
        .collect();
    assert!(!periodic.is_empty(), "{shots:?}");
    assert_eq!(on_demand.len(), 1, "{shots:?}");
    let mut jpegs = Vec::new();
    for meta in &shots {
        assert!(meta.available, "{meta:?}");
        let jpeg = store.screenshot_jpeg(meta.key).expect("decrypts");
        assert_eq!(
            jpeg_dimensions(&jpeg).expect("a valid JPEG"),
            (meta.width, meta.height)
        );
        assert_eq!(jpeg.len(), meta.size_bytes as usize);
        jpegs.push(jpeg);
    }
    assert!(
        periodic.iter().all(|meta| meta.blurred),
        "the policy asked for blur: {periodic:?}"
    );
    let on_demand_jpeg = store.screenshot_jpeg(on_demand[0].key).expect("decrypts");
    assert_eq!(
        on_demand_jpeg, written,
        "the gallery keeps what was written"
    );

    let actions: Vec<String> = store
        .audit_log(0, 1_000)
        .expect("audit")
        .into_iter()
        .map(|record| record.entry.action)
        .collect();
    for action in [
        "pull",
        "screenshot-store",
        "screenshot-export",
        "screenshot-view",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    store.verify_audit().expect("the audit chain holds");
    drop(store);

    assert_no_plain_images(&data, &jpegs);
}

#[test]
fn a_viewer_console_never_pulls_frames_and_is_refused_screenshots() {
    let site = Site::create();
    let (mut agent, id, addr) = start_agent(&site, "pc-8");
    enable_periodic_screenshots(&site, id, addr, false);
    wait_for_frame(&mut agent);

    let viewer_data = site.path("viewer");
    run_ok(
        Command::new(bin("smarttracker-certs"))
            .args(["console", "--role", "viewer", "--name", "Viewer", "--site"])
            .arg(site.path("site"))
            .arg("--out")
            .arg(viewer_data.join(console_engine::IDENTITY_DIR)),
    );
    let viewer = |args: &[&str]| {
        let mut command = Command::new(bin("smarttracker-console"));
        command
            .arg("--data")
            .arg(&viewer_data)
            .args(args)
            .env("SMARTTRACKER_LOG", "warn");
        command
    };
    run_ok(viewer(&["add-agent"]).arg(site.path("pc-8.bundle")));
    let viewer_id = read_identity(&viewer_data).console_id.to_string();

    let output = run_ok(viewer(&["sync", "--once", "--no-mdns", "--peer"]).arg(addr.to_string()));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("synced "), "{report}");
    assert!(
        !report.contains("frames"),
        "a viewer does not ask: {report}"
    );
    // The status file is rewritten every second: wait for the pulls.
    let deadline = Instant::now() + Duration::from_secs(10);
    let viewer_access = loop {
        let viewer_access: Vec<(String, bool)> = agent
            .ready()
            .recent_access
            .iter()
            .filter(|entry| entry.console_id == viewer_id)
            .map(|entry| (entry.request.clone(), entry.allowed))
            .collect();
        if viewer_access.contains(&("pull".to_owned(), true)) {
            break viewer_access;
        }
        assert!(
            Instant::now() < deadline,
            "the viewer's pulls never showed: {viewer_access:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        viewer_access.iter().all(|(_, allowed)| *allowed),
        "nothing refused: the viewer never asked for frames: {viewer_access:?}"
    );

    // The CLI refuses before asking, and writes nothing.
    let out = site.path("viewer-shot.jpg");
    let output = viewer(&["screenshot", "--agent", "pc-8", "--no-mdns", "--out"])
        .arg(&out)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "this console's certificate has the viewer role; screenshots need an admin console"
        ),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");

    // Asked anyway (another client with the viewer certificate), the agent
    // refuses and logs it.
    let store = open_store(&viewer_data);
    let syncer = Syncer::new(
        read_identity(&viewer_data),
        store.clone(),
        SyncConfig::default(),
    );
    let asked = runtime().block_on(async {
        let session = syncer.open_agent(id, addr).await.expect("session");
        let spec = CaptureSpec {
            monitor: None,
            max_width: 640,
            max_height: 480,
            quality: 70,
        };
        let answer = session.ask(&Request::Screenshot(spec)).await;
        session.close(b"test done");
        answer
    });
    assert!(
        matches!(asked, Err(SyncError::Agent(ErrorCode::Forbidden, _))),
        "{asked:?}"
    );
    assert_eq!(
        store.cursor(id, StreamKind::Frames).expect("cursor"),
        None,
        "no frames cursor in a viewer's store"
    );
    assert!(store
        .screenshots(id, i64::MIN, i64::MAX)
        .expect("list")
        .is_empty());
    drop(syncer);
    drop(store);

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = agent_status_text(&agent.data);
        if text.contains("screenshot REFUSED") {
            assert!(text.contains(&viewer_id), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "never shown as refused: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    agent.stop();
}
