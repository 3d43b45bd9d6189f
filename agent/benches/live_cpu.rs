//! Agent CPU with a live view open at one frame per second, against the
//! same agent process with nobody watching, in one run.
//!
//! `cargo bench -p smarttracker-agent --bench live_cpu [-- --secs N]`
//!
//! Starts its own Xvfb (1920x1080) showing a text-heavy screen, a real
//! agent (`--sensors x11`) on it, and a real admin console client over
//! QUIC. Three phases of `--secs` each: nobody watching; a single live view
//! (1280x720, one frame a second) of a static screen (frames skipped by
//! hash); the same live view while the screen changes every second (every
//! frame encoded and sent). The agent's CPU is read from /proc; the X
//! server's CPU for the captures is printed apart. Figures are printed,
//! never asserted.

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::capture::LIVE_QUALITY;
use certs::tls::{agent_server_name, console_client_config, AgentPin};
use certs::transport::{client_config, client_endpoint, connect, request, Limits};
use certs::{spki_sha256, Role, SiteCa, Validity};
use protocol::{CaptureSpec, Hello, LiveFrameReply, LiveSession, LiveStart, Request, Response};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_smarttracker-agent");
const DEFAULT_SECS: u64 = 30;
const SINGLE_VIEW: CaptureSpec = CaptureSpec {
    monitor: None,
    max_width: 1280,
    max_height: 720,
    quality: LIVE_QUALITY,
};

/// A child process killed when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of a process, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> BenchResult<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th fields of the whole line.
    let after_name = stat
        .rsplit_once(')')
        .ok_or("unexpected /proc stat format")?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}

fn start_xvfb() -> BenchResult<(Spawned, String)> {
    let mut child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1920x1080x24"])
        .args(["-nolisten", "tcp", "-noreset"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot start Xvfb ({error}); run scripts/install-deps.sh"))?;
    let stdout = child.stdout.take().ok_or("Xvfb stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let display = format!(":{}", line.trim());
    Ok((Spawned(child), display))
}

/// Dense text in the manner of an editor full of code, as a PNG.
fn text_screen(path: &Path, variant: u32) -> BenchResult<()> {
    let mut text = String::new();
    for line in 0..60 {
        text.push_str(&format!(
            "{:>4}  fn handle_request_{variant}_{line}(state: &mut State, input: &[u8]) -> Result<Reply, Error> {{ let parsed = parse(input)?; state.apply(parsed) }}\n",
            line + 1
        ));
    }
    let status = Command::new("convert")
        .args(["-size", "1920x1080", "xc:#1e1e1e", "-fill", "#d4d4d4"])
        .args(["-font", "DejaVu-Sans-Mono", "-pointsize", "13"])
        .args(["-annotate", "+10+20", &text])
        .arg(path)
        .status()
        .map_err(|error| {
            format!("cannot run ImageMagick convert ({error}); run scripts/install-deps.sh")
        })?;
    if !status.success() {
        return Err(format!("convert failed for {}", path.display()).into());
    }
    Ok(())
}

/// Paints `image` on the root window (`display` exits with 1 even when it
/// painted, so only a failure to run it counts).
fn show(display: &str, image: &Path) -> BenchResult<()> {
    Command::new("display")
        .env("DISPLAY", display)
        .args(["-window", "root"])
        .arg(image)
        .stdout(Stdio::null())
        .status()
        .map_err(|error| {
            format!("cannot run ImageMagick display ({error}); run scripts/install-deps.sh")
        })?;
    Ok(())
}

struct Phase {
    name: &'static str,
    agent_cpu_secs: f64,
    xvfb_cpu_secs: f64,
    wall_secs: f64,
    frames: u64,
    unchanged: u64,
    frame_bytes: u64,
}

impl Phase {
    fn core_pct(&self) -> f64 {
        100.0 * self.agent_cpu_secs / self.wall_secs
    }
}

fn main() -> BenchResult<()> {
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let mut secs = DEFAULT_SECS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secs" => secs = args.next().ok_or("--secs needs a value")?.parse()?,
            "--bench" => {}
            other => return Err(format!("unknown argument {other}; use --secs N").into()),
        }
    }
    let phase_length = Duration::from_secs(secs.max(1));
    let dir = tempfile::tempdir()?;
    let (xvfb, display) = start_xvfb()?;
    let screens: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("screen{i}.png")))
        .collect();
    for (i, screen) in screens.iter().enumerate() {
        text_screen(screen, i as u32)?;
    }
    show(&display, &screens[0])?;

    // A site, an enrolled agent, an admin console.
    let validity = Validity::days_from(time::OffsetDateTime::now_utc(), 1);
    let ca = SiteCa::init(&dir.path().join("site"), "Bench site", None, validity)?;
    let identity = ca.issue_agent(Some("bench-pc"), validity)?;
    let bundle = dir.path().join("agent.bundle");
    identity.write_bundle(&bundle)?;
    let data = dir.path().join("agent");
    let enrolled = Command::new(AGENT_BIN)
        .args(["enroll", "--bundle"])
        .arg(&bundle)
        .arg("--data")
        .arg(&data)
        .stdout(Stdio::null())
        .status()?;
    if !enrolled.success() {
        return Err("enrolment failed".into());
    }
    let console = ca.issue_console(Role::Admin, "bench console", validity)?;
    let agent = Spawned(
        Command::new(AGENT_BIN)
            .args([
                "run",
                "--listen",
                "127.0.0.1:0",
                "--sensors",
                "x11",
                "--no-mdns",
            ])
            .arg("--data")
            .arg(&data)
            .env("DISPLAY", &display)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let agent_pid = agent.0.id();
    let addr = loop {
        if let Ok(snapshot) = agent::status::StatusSnapshot::read(&data) {
            if snapshot.pid == agent_pid {
                break snapshot.listen.parse::<std::net::SocketAddr>()?;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let xvfb_pid = xvfb.0.id();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _in_runtime = runtime.enter();
    let pin = AgentPin {
        agent_id: identity.agent_id,
        spki_sha256: spki_sha256(&identity.cert_der)?,
    };
    let tls = console_client_config(&console, pin)?;
    let endpoint = client_endpoint(addr)?;
    let conn = runtime.block_on(connect(
        &endpoint,
        client_config(tls, &Limits::default())?,
        addr,
        &agent_server_name(identity.agent_id),
    ))?;
    runtime.block_on(request(
        &conn,
        &Request::Hello(Hello {
            min_version: 1,
            max_version: 1,
            console_name: "bench".into(),
        }),
    ))?;
    // Let the agent settle after its start.
    std::thread::sleep(Duration::from_secs(2));

    let measure = |name: &'static str, watch: bool| -> BenchResult<Phase> {
        let agent_before = cpu_ticks(agent_pid)?;
        let xvfb_before = cpu_ticks(xvfb_pid)?;
        let started = Instant::now();
        let (mut frames, mut unchanged, mut frame_bytes) = (0, 0, 0);
        if watch {
            let lease = match runtime.block_on(request(
                &conn,
                &Request::LiveStart(LiveStart {
                    spec: SINGLE_VIEW,
                    interval_ms: 1_000,
                }),
            ))? {
                Response::LiveStarted(lease) => lease,
                other => return Err(format!("live start: {other:?}").into()),
            };
            let session = LiveSession {
                session_id: lease.session_id,
            };
            while started.elapsed() < phase_length {
                match runtime.block_on(request(&conn, &Request::LiveFrame(session)))? {
                    Response::LiveFrame(LiveFrameReply {
                        frame: Some(image), ..
                    }) => {
                        frames += 1;
                        frame_bytes += image.bytes.len() as u64;
                    }
                    Response::LiveFrame(LiveFrameReply { frame: None, .. }) => unchanged += 1,
                    other => return Err(format!("live frame: {other:?}").into()),
                }
            }
            runtime.block_on(request(&conn, &Request::LiveStop(session)))?;
        } else {
            std::thread::sleep(phase_length);
        }
        let wall_secs = started.elapsed().as_secs_f64();
        Ok(Phase {
            name,
            agent_cpu_secs: (cpu_ticks(agent_pid)? - agent_before) as f64 / 100.0,
            xvfb_cpu_secs: (cpu_ticks(xvfb_pid)? - xvfb_before) as f64 / 100.0,
            wall_secs,
            frames,
            unchanged,
            frame_bytes,
        })
    };

    let idle = measure("nobody watching", false)?;
    let static_view = measure("live, static screen", true)?;
    // The screen changes every second from a helper thread.
    let changing = Arc::new(AtomicBool::new(true));
    let flipper = {
        let changing = changing.clone();
        let display = display.clone();
        let screens = screens.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            while changing.load(Ordering::Relaxed) {
                i += 1;
                let _ = show(&display, &screens[i % 2]);
                std::thread::sleep(Duration::from_millis(1_000));
            }
        })
    };
    let changing_view = measure("live, changing screen", true)?;
    changing.store(false, Ordering::Relaxed);
    let _ = flipper.join();
    conn.close(0u32.into(), b"bench done");

    println!(
        "live_cpu: agent on Xvfb 1920x1080 (text-heavy screen), single live view {}x{} q{} at 1 frame/s, {secs} s per phase",
        SINGLE_VIEW.max_width, SINGLE_VIEW.max_height, SINGLE_VIEW.quality
    );
    println!(
        "{:<24} {:>10} {:>12} {:>8} {:>10} {:>12} {:>14}",
        "phase", "agent CPU s", "% of a core", "frames", "unchanged", "KB/frame", "Xvfb CPU s"
    );
    for phase in [&idle, &static_view, &changing_view] {
        println!(
            "{:<24} {:>10.2} {:>12.2} {:>8} {:>10} {:>12.1} {:>14.2}",
            phase.name,
            phase.agent_cpu_secs,
            phase.core_pct(),
            phase.frames,
            phase.unchanged,
            if phase.frames > 0 {
                phase.frame_bytes as f64 / phase.frames as f64 / 1024.0
            } else {
                0.0
            },
            phase.xvfb_cpu_secs
        );
    }
    let ratio = |phase: &Phase| phase.core_pct() / idle.core_pct().max(0.01);
    println!(
        "agent CPU live/idle: static screen {:.1}x, changing screen {:.1}x; cost of the live view: {:.2} % of a core (static), {:.2} % (changing)",
        ratio(&static_view),
        ratio(&changing_view),
        static_view.core_pct() - idle.core_pct(),
        changing_view.core_pct() - idle.core_pct()
    );
    drop(agent);
    drop(xvfb);
    Ok(())
}
