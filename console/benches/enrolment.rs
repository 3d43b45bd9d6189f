//! Enrolment of N workstations (default 100) against one console, in one
//! run, two ways:
//! - by code: one real `smarttracker-console enrolment open` process and N
//!   agents enrolling over loopback QUIC (4 at a time, with the agent's own
//!   enrolment code: new key, CSR, channel-bound proof);
//! - the bundle flow it replaces (the baseline): the site CA issues a
//!   bundle per workstation (key made on the manager's machine) and one
//!   `smarttracker-console add-agent BUNDLE` process adds each.
//!
//! Prints the total time, the time per workstation and the console's CPU
//! per workstation (from /proc: the `enrolment open` process, and the
//! `add-agent` processes this bench waited for), and the ratios.
//!
//! `cargo bench -p smarttracker-console --bench enrolment [-- --agents N]`

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certs::enrol::EnrolmentCode;
use certs::{Role, SiteCa, Validity};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const CONSOLE_BIN: &str = env!("CARGO_BIN_EXE_smarttracker-console");
/// Agents enrolling at once.
const CONCURRENT: usize = 4;

fn agents_arg() -> usize {
    std::env::args()
        .skip_while(|arg| arg != "--agents")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}

/// utime + stime of a process, in clock ticks (100 per second on Linux).
fn cpu_ticks(stat_path: &str, children: bool) -> BenchResult<u64> {
    let stat = std::fs::read_to_string(stat_path)?;
    let after_name = stat
        .rsplit_once(')')
        .ok_or("unexpected /proc stat format")?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14–17 of the whole line.
    let first = if children { 13 } else { 11 };
    let user: u64 = fields.get(first).ok_or("no utime")?.parse()?;
    let system: u64 = fields.get(first + 1).ok_or("no stime")?.parse()?;
    Ok(user + system)
}

fn ms_per(ticks: u64, agents: usize) -> f64 {
    ticks as f64 * 10.0 / agents as f64
}

fn main() -> BenchResult<()> {
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let agents = agents_arg().max(1);
    let dir = tempfile::tempdir()?;
    let validity = Validity::days_from(time::OffsetDateTime::now_utc(), 30);
    let site = dir.path().join("site");
    let ca = SiteCa::init(
        &site,
        "Bench",
        None,
        Validity::days_from(time::OffsetDateTime::now_utc(), 3650),
    )?;
    for name in ["by-code", "by-bundle"] {
        ca.issue_console(Role::Admin, name, validity)?
            .write(&dir.path().join(name).join("identity"))?;
    }

    let (code_wall, code_ticks) = by_code(&dir.path().join("by-code"), &site, agents)?;
    let (bundle_wall, bundle_ticks) = by_bundle(&dir.path().join("by-bundle"), &ca, agents)?;

    println!("enrolment of {agents} workstations against one console");
    println!(
        "  by code (1 console process):      {:>8.2} s total, {:>7.1} ms per workstation, console CPU {:>6.1} ms per workstation",
        code_wall.as_secs_f64(),
        code_wall.as_secs_f64() * 1000.0 / agents as f64,
        ms_per(code_ticks, agents)
    );
    println!(
        "  by bundle + add-agent (baseline): {:>8.2} s total, {:>7.1} ms per workstation, console CPU {:>6.1} ms per workstation",
        bundle_wall.as_secs_f64(),
        bundle_wall.as_secs_f64() * 1000.0 / agents as f64,
        ms_per(bundle_ticks, agents)
    );
    println!(
        "  ratio baseline / by code: time {:.2}x, console CPU {:.2}x",
        bundle_wall.as_secs_f64() / code_wall.as_secs_f64().max(f64::EPSILON),
        bundle_ticks as f64 / (code_ticks.max(1)) as f64
    );
    Ok(())
}

/// One `enrolment open` and `agents` workstations enrolling with its code.
fn by_code(data: &Path, site: &Path, agents: usize) -> BenchResult<(Duration, u64)> {
    let mut child = Command::new(CONSOLE_BIN)
        .arg("--data")
        .arg(data)
        .args(["enrolment", "open", "--no-mdns", "--listen", "127.0.0.1:0"])
        .args(["--expires", "1h", "--uses"])
        // One use more, so the process is still there to be measured.
        .arg((agents + 1).to_string())
        .arg("--site")
        .arg(site)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut code, mut addr) = (None::<EnrolmentCode>, None::<SocketAddr>);
    while addr.is_none() {
        let line = lines.next().ok_or("enrolment open ended early")??;
        if let Some(text) = line.strip_prefix("code: ") {
            code = Some(text.parse()?);
        }
        if let Some(text) = line.strip_prefix("listening on ") {
            addr = Some(text.parse()?);
        }
    }
    let (code, addr) = (Arc::new(code.ok_or("no code")?), addr.ok_or("no address")?);
    let stat = format!("/proc/{}/stat", child.id());
    let before = cpu_ticks(&stat, false)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let enrolled = runtime.block_on(async {
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT));
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..agents {
            let (code, slots) = (code.clone(), slots.clone());
            tasks.spawn(async move {
                let _slot = slots.acquire().await;
                agent::enrol::enrol(&code, &[addr], &format!("pc-{index:03}"))
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            });
        }
        let mut enrolled = 0usize;
        while let Some(done) = tasks.join_next().await {
            done.map_err(|error| error.to_string())??;
            enrolled += 1;
        }
        Ok::<usize, String>(enrolled)
    })?;
    let wall = started.elapsed();
    let ticks = cpu_ticks(&stat, false)?.saturating_sub(before);
    let _ = child.kill();
    let _ = child.wait();
    if enrolled != agents {
        return Err(format!("{enrolled} of {agents} enrolled").into());
    }
    Ok((wall, ticks))
}

/// The baseline: a bundle per workstation and one `add-agent` each.
fn by_bundle(data: &Path, ca: &SiteCa, agents: usize) -> BenchResult<(Duration, u64)> {
    let validity = Validity::days_from(time::OffsetDateTime::now_utc(), 30);
    let before = cpu_ticks("/proc/self/stat", true)?;
    let started = Instant::now();
    for index in 0..agents {
        let name = format!("pc-{index:03}");
        let bundle = data.join(format!("{name}.bundle"));
        ca.issue_agent(Some(&name), validity)?
            .write_bundle(&bundle)?;
        let status = Command::new(CONSOLE_BIN)
            .arg("--data")
            .arg(data)
            .arg("add-agent")
            .arg(&bundle)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(format!("add-agent {name} failed").into());
        }
    }
    let wall = started.elapsed();
    let ticks = cpu_ticks("/proc/self/stat", true)?.saturating_sub(before);
    Ok((wall, ticks))
}
