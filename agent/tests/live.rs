//! Screens over real QUIC from a real agent process: a known pattern on a
//! real X server comes back in the decoded screenshot; screenshots, live
//! view and periodic screenshots are admin-only and logged; the employee's
//! notice (desktop notification on a private session bus, and `status`)
//! appears while a live view runs and goes when the console disappears.

mod harness;
#[path = "support/xvfb.rs"]
mod xvfb;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::status::StatusSnapshot;
use certs::Role;
use harness::{block_on, AgentProcess, Console, Site};
use image::GenericImageView;
use protocol::{
    CaptureSpec, CapturedImage, Cursor, ErrorCode, LiveFrameReply, LiveSession, LiveStart, Policy,
    Pull, Record, Request, Response, ScreenshotPolicy, StreamKind,
};
use sha2::{Digest, Sha256};

const THUMBNAIL: CaptureSpec = CaptureSpec {
    monitor: None,
    max_width: 320,
    max_height: 180,
    quality: 60,
};

fn decode(image: &CapturedImage) -> image::DynamicImage {
    assert_eq!(&image.bytes[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    assert_eq!(image.meta.size_bytes as usize, image.bytes.len());
    assert_eq!(
        image.meta.sha256,
        <[u8; 32]>::from(Sha256::digest(&image.bytes))
    );
    let decoded = image::load_from_memory(&image.bytes).expect("decodes");
    assert_eq!(decoded.dimensions(), (image.meta.width, image.meta.height));
    decoded
}

fn forbidden(response: &Response) -> bool {
    matches!(response, Response::Error(error) if error.code == ErrorCode::Forbidden)
}

/// Waits until the agent's status satisfies `ready`.
fn wait_status(
    agent: &AgentProcess,
    what: &str,
    ready: impl Fn(&StatusSnapshot) -> bool,
) -> StatusSnapshot {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(snapshot) = StatusSnapshot::read(&agent.data) {
            if ready(&snapshot) {
                return snapshot;
            }
        }
        assert!(Instant::now() < deadline, "status never showed {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_known_pattern_on_the_x_screen_comes_back_in_the_screenshot() {
    let xvfb = xvfb::Xvfb::start();
    let site = Site::new();
    let (identity, data) = site.enrolled_agent("pc-x11");
    let admin = site.console(Role::Admin);
    // Left half red, right half blue, with a white band across the middle.
    let pattern = site.dir.path().join("pattern.png");
    let made = Command::new(xvfb::require("convert"))
        .args(["-size", "1280x800", "xc:#ff0000"])
        .args(["-fill", "#0000ff", "-draw", "rectangle 640,0 1279,799"])
        .args(["-fill", "#ffffff", "-draw", "rectangle 0,350 1279,449"])
        .arg(&pattern)
        .status()
        .expect("convert");
    assert!(made.success());
    // `display -window root` paints the root window, then exits with 1
    // whatever happened: the decoded screenshot is what shows it worked.
    xvfb.command("display")
        .args(["-window", "root"])
        .arg(&pattern)
        .stdout(Stdio::null())
        .status()
        .expect("display");

    let mut agent = AgentProcess::start_with(&data, "x11", &[], &[("DISPLAY", xvfb.display())]);
    let addr = agent.addr();
    let image = block_on(async {
        let console = Console::connect(&admin, &identity, addr).await;
        console.hello().await;
        match console.ask(Request::Screenshot(THUMBNAIL)).await {
            Response::Image(image) => image,
            other => panic!("screenshot: {other:?}"),
        }
    });
    let decoded = decode(&image).to_rgb8();
    assert_eq!(
        (image.meta.width, image.meta.height),
        (288, 180),
        "aspect kept"
    );
    let near = |(x, y): (u32, u32), want: [u8; 3]| {
        let got = decoded.get_pixel(x, y).0;
        let close = got
            .iter()
            .zip(want)
            .all(|(got, want)| got.abs_diff(want) <= 40);
        assert!(close, "pixel ({x},{y}) is {got:?}, expected about {want:?}");
    };
    near((40, 30), [255, 0, 0]);
    near((250, 150), [0, 0, 255]);
    near((40, 90), [255, 255, 255]);
    near((250, 90), [255, 255, 255]);
    agent.stop();
}

#[test]
fn a_viewer_gets_no_screen_and_every_attempt_is_logged() {
    let site = Site::new();
    let (identity, data) = site.enrolled_agent("pc-viewer");
    let viewer = site.console(Role::Viewer);
    let mut agent = AgentProcess::start(&data, &[]);
    let addr = agent.addr();
    block_on(async {
        let console = Console::connect(&viewer, &identity, addr).await;
        console.hello().await;
        let attempts = [
            Request::Screenshot(THUMBNAIL),
            Request::LiveStart(LiveStart {
                spec: THUMBNAIL,
                interval_ms: 1_000,
            }),
            Request::LiveFrame(LiveSession { session_id: 1 }),
            Request::FetchFrame(Cursor { epoch: 0, seq: 1 }),
            Request::Pull(Pull {
                stream: StreamKind::Frames,
                after: Cursor { epoch: 0, seq: 0 },
                max_records: 10,
            }),
        ];
        for attempt in attempts {
            let response = console.ask(attempt.clone()).await;
            assert!(forbidden(&response), "{attempt:?} → {response:?}");
        }
    });
    let viewer_id = viewer.console_id.to_string();
    let snapshot = wait_status(&agent, "the refused attempts", |snapshot| {
        let refused: Vec<&str> = snapshot
            .recent_access
            .iter()
            .filter(|entry| entry.console_id == viewer_id && !entry.allowed)
            .map(|entry| entry.request.as_str())
            .collect();
        [
            "screenshot",
            "live-start",
            "live-frame",
            "fetch-frame",
            "pull",
        ]
        .iter()
        .all(|request| refused.contains(request))
    });
    assert!(snapshot.live_view.is_empty(), "no live view was opened");
    let text = snapshot.render(snapshot.written_at_ms);
    assert!(text.contains("screenshot REFUSED"), "{text}");
    agent.stop();
}

/// A stand-in for the desktop's notification daemon on a private bus.
#[derive(Debug, Default, Clone)]
struct Notifications {
    /// "notify <id> <body>" and "close <id>", in order.
    calls: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: String,
        replaces_id: u32,
        _app_icon: String,
        _summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let id = if replaces_id == 0 { 7 } else { replaces_id };
        self.calls
            .lock()
            .expect("calls")
            .push(format!("notify {id} {body}"));
        id
    }

    fn close_notification(&self, id: u32) {
        self.calls
            .lock()
            .expect("calls")
            .push(format!("close {id}"));
    }
}

/// A private session bus with the fake notification daemon on it.
struct SessionBus {
    daemon: std::process::Child,
    address: String,
}

impl SessionBus {
    fn start() -> SessionBus {
        use std::io::BufRead;
        let mut daemon = Command::new(xvfb::require("dbus-daemon"))
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        let stdout = daemon.stdout.take().expect("piped");
        let mut address = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut address)
            .expect("bus address");
        SessionBus {
            daemon,
            address: address.trim().to_owned(),
        }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

#[test]
fn live_view_shows_a_notice_and_lapses_when_the_console_disappears() {
    let bus = SessionBus::start();
    let site = Site::new();
    let (identity, data) = site.enrolled_agent("pc-live");
    let admin = site.console(Role::Admin);
    let notifications = Notifications::default();
    let calls = notifications.calls.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _daemon = runtime.block_on(async {
        zbus::connection::Builder::address(bus.address.as_str())
            .expect("address")
            .name("org.freedesktop.Notifications")
            .expect("name")
            .serve_at("/org/freedesktop/Notifications", notifications)
            .expect("serve")
            .build()
            .await
            .expect("notification daemon on the bus")
    });
    let mut agent = AgentProcess::start_with(
        &data,
        "demo",
        // Long enough that a frame request on a loaded machine renews it in
        // time, short enough that the lapse comes soon.
        &["--live-lease-secs", "5"],
        &[("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())],
    );
    let addr = agent.addr();

    let (session_id, frames) = runtime.block_on(async {
        let console = Console::connect(&admin, &identity, addr).await;
        console.hello().await;
        let lease = match console
            .ask(Request::LiveStart(LiveStart {
                spec: THUMBNAIL,
                interval_ms: 250,
            }))
            .await
        {
            Response::LiveStarted(lease) => lease,
            other => panic!("live start: {other:?}"),
        };
        assert_eq!(lease.lease_secs, 5);
        let mut frames = Vec::new();
        for _ in 0..6 {
            match console
                .ask(Request::LiveFrame(LiveSession {
                    session_id: lease.session_id,
                }))
                .await
            {
                Response::LiveFrame(LiveFrameReply {
                    frame: Some(image), ..
                }) => frames.push(image),
                Response::LiveFrame(LiveFrameReply { frame: None, .. }) => {}
                other => panic!("live frame: {other:?}"),
            }
        }
        // The console vanishes: no stop, no more renewals.
        console.conn.close(0u32.into(), b"gone");
        (lease.session_id, frames)
    });
    assert!(!frames.is_empty(), "the first live frame always comes");
    for frame in &frames {
        let decoded = decode(frame);
        assert!(decoded.width() <= 320 && decoded.height() <= 180);
    }

    // While it ran, the employee was told, by name, on the desktop and in
    // `status`; the watching is shown until the lease lapses.
    let notified = calls.lock().expect("calls").clone();
    assert!(
        notified
            .first()
            .is_some_and(|call| call.starts_with("notify 7 ") && call.contains("test (")),
        "{notified:?}"
    );
    let gone = wait_status(&agent, "the live view ending", |snapshot| {
        snapshot.live_view.is_empty()
            && snapshot
                .recent_access
                .iter()
                .any(|entry| entry.request == "live-end" && entry.detail.contains("lapsed"))
    });
    assert!(gone.live_view_lines(gone.written_at_ms).is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !calls.lock().expect("calls").contains(&"close 7".to_owned()) {
        assert!(
            Instant::now() < deadline,
            "notification never closed: {:?}",
            calls.lock().expect("calls")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let frames_logged = gone
        .recent_access
        .iter()
        .filter(|entry| entry.request == "live-frame" && entry.allowed)
        .count();
    assert_eq!(frames_logged, 6, "every frame request is in the access log");

    // The lapsed session is gone for good.
    runtime.block_on(async {
        let console = Console::connect(&admin, &identity, addr).await;
        let response = console
            .ask(Request::LiveFrame(LiveSession { session_id }))
            .await;
        assert!(
            matches!(response, Response::Error(ref error) if error.code == ErrorCode::NotFound),
            "{response:?}"
        );
    });
    agent.stop();
}

#[test]
fn live_view_notice_is_in_status_while_it_runs() {
    let site = Site::new();
    let (identity, data) = site.enrolled_agent("pc-status");
    let admin = site.console(Role::Admin);
    let mut agent = AgentProcess::start(&data, &[]);
    let addr = agent.addr();
    block_on(async {
        let console = Console::connect(&admin, &identity, addr).await;
        console.hello().await;
        let Response::LiveStarted(lease) = console
            .ask(Request::LiveStart(LiveStart {
                spec: THUMBNAIL,
                interval_ms: 1_000,
            }))
            .await
        else {
            panic!("live start")
        };
        let session = LiveSession {
            session_id: lease.session_id,
        };
        let shown = wait_status(&agent, "the live view", |snapshot| {
            snapshot.live_view.len() == 1
        });
        let text = shown.render(shown.written_at_ms);
        assert!(text.contains("LIVE VIEW"), "{text}");
        assert!(text.contains("console test ("), "{text}");
        let stopped = console.ask(Request::LiveStop(session)).await;
        assert_eq!(stopped, Response::LiveStopped(session));
        wait_status(&agent, "the live view stopped", |snapshot| {
            snapshot.live_view.is_empty()
        });
    });
    agent.stop();
}

#[test]
fn periodic_screenshots_follow_the_policy_and_their_images_are_fetched() {
    let site = Site::new();
    let (identity, data) = site.enrolled_agent("pc-periodic");
    let admin = site.console(Role::Admin);
    let mut agent = AgentProcess::start(&data, &[]);
    let addr = agent.addr();
    block_on(async {
        let console = Console::connect(&admin, &identity, addr).await;
        console.hello().await;
        let start = Cursor { epoch: 0, seq: 0 };
        let (before, _) = console.pull_all(StreamKind::Frames, start).await;
        assert!(before.is_empty(), "off by default");
        let policy = Policy {
            revision: 1,
            screenshots: ScreenshotPolicy {
                enabled: true,
                interval_secs: 120,
                blur: true,
            },
            ..Policy::default()
        };
        assert!(matches!(
            console.ask(Request::SetPolicy(policy)).await,
            Response::Policy(_)
        ));
        // The first one is taken at once and durable within a flush.
        let deadline = Instant::now() + Duration::from_secs(20);
        let (records, cursor) = loop {
            let (records, cursor) = console.pull_all(StreamKind::Frames, start).await;
            if !records.is_empty() {
                break (records, cursor);
            }
            assert!(Instant::now() < deadline, "no periodic screenshot");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(records.len(), 1, "one now, the next in two minutes");
        let Record::Frame(meta) = &records[0].record else {
            panic!("{records:?}")
        };
        assert!(meta.blurred);
        let Response::Image(image) = console.ask(Request::FetchFrame(cursor)).await else {
            panic!("fetch frame")
        };
        assert_eq!(&image.meta, meta);
        let decoded = decode(&image);
        assert!(decoded.width() <= 1280 && decoded.height() <= 720);
        let missing = console
            .ask(Request::FetchFrame(Cursor {
                epoch: cursor.epoch,
                seq: cursor.seq + 5,
            }))
            .await;
        assert!(
            matches!(missing, Response::Error(ref error) if error.code == ErrorCode::NotFound),
            "{missing:?}"
        );
    });
    let logged = wait_status(&agent, "the periodic screenshot", |snapshot| {
        snapshot
            .recent_access
            .iter()
            .any(|entry| entry.request == "periodic-screenshot" && entry.detail.contains("blurred"))
    });
    assert!(logged
        .render(logged.written_at_ms)
        .contains("periodic screenshots every 2 min"));
    agent.stop();
}
