//! `smarttracker-console demo`: a throw-away demo site in a temporary
//! directory (site CA, admin console identity, N enrolled agents running
//! the labelled demo sensor source with simulated history on loopback,
//! periodic screenshots of their simulated desktops turned on by policy,
//! one of them in another time zone than the site), then the console
//! window on it. The agents are stopped with SIGTERM when
//! the window closes or the console is told to stop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context, Result};
use certs::{ConsoleIdentity, Role, SiteCa, Validity};
use console_engine::model::AgentId;
use console_engine::reach::{open_session, Addresses};
use console_engine::settings::site_clock_of;
use console_engine::settings::ConsoleSettings;
use console_engine::store::{AuditEntry, ConsoleStore};
use console_engine::sync::{inventory_record, SyncConfig, Syncer};
use console_engine::{clock, IDENTITY_DIR};
use protocol::{Request, Response, ScreenshotPolicy};

/// Demo certificates are valid this long: a site kept with `--keep` lasts
/// a year (a console warns in its certificate's last 30 days).
const VALIDITY_DAYS: u32 = 365;
/// How long the agents may take to record their simulated history.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long an agent may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Periodic screenshots of the demo agents: every 2 minutes, the shortest
/// interval a policy allows, so the gallery fills during a demo.
const DEMO_SCREENSHOT_INTERVAL_SECS: u32 = 120;
/// The demo agent whose screenshots are blurred, to show the option.
const BLURRED_DEMO_AGENT: &str = "demo-pc-2";
/// The demo agent that runs in another time zone (`TZ`), so the fleet
/// shows the marker.
const FAR_DEMO_AGENT: (&str, &str) = ("demo-pc-2", "America/Montreal");
/// The OS users of the demo workstations, by number: Camille works on
/// two (a desktop and a laptop), Lucas and Emma share one; the people
/// book knows Camille and Lucas, the others are proposed.
const DEMO_USERS: [&str; 12] = [
    "camille",
    "hugo",
    "camille",
    "lucas,emma",
    "lea",
    "nathan",
    "chloe",
    "louis",
    "manon",
    "jules",
    "sarah",
    "adam",
];
/// The persons a new demo site starts with: name, e-mail, team, account.
const DEMO_PEOPLE: [(&str, &str, &str, &str); 2] = [
    (
        "Camille Martin",
        "camille.martin@example.fr",
        "Comptabilité",
        "camille",
    ),
    (
        "Lucas Bernard",
        "lucas.bernard@example.fr",
        "Accueil",
        "lucas",
    ),
];

/// The `--demo-users` of demo workstation `n` (from 1).
fn demo_users(n: u64) -> String {
    usize::try_from(n)
        .ok()
        .and_then(|n| DEMO_USERS.get(n.wrapping_sub(1)))
        .map_or_else(|| format!("user{n}"), |users| (*users).to_owned())
}

/// What `demo` was asked for.
#[derive(Debug)]
pub struct DemoOptions {
    pub agents: u32,
    pub history_days: u32,
    /// Keep the site here instead of a temporary directory.
    pub keep: Option<PathBuf>,
    pub screen: console::app::Screen,
}

/// Makes the demo site, starts its agents, opens the window on it; stops
/// the agents (and removes the site unless kept) when the window closes.
pub fn demo(options: DemoOptions) -> Result<()> {
    let running = Arc::new(Agents::default());
    let (site, store) = prepare(&options, &running)?;
    stop_on_signal(running.clone(), site.path.clone(), options.keep.is_none())?;
    let data = site.path.join("console");
    let identity = super::engine::identity(&data)?
        .with_context(|| console_engine::service::missing_identity(&data))?;
    let engine = super::gui::in_process(&data, store, Some(identity), false, None)?;
    let shown = super::gui::open_window(engine, options.screen);
    running.stop();
    drop(site);
    shown
}

/// The running agents; stopped on drop.
#[derive(Debug, Default)]
pub struct Agents(Mutex<Vec<Child>>);

impl Agents {
    /// SIGTERM to every agent, then waits for each (killed if it hangs).
    pub fn stop(&self) {
        let mut children = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for child in children.iter() {
            if let Some(pid) = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        for child in children.iter_mut() {
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        children.clear();
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The site directory: removed on drop unless kept.
#[derive(Debug)]
pub struct SiteDir {
    pub path: PathBuf,
    remove: bool,
}

impl Drop for SiteDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The agent binary next to this executable.
fn agent_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell where this executable is")?;
    let agent = exe.with_file_name("smarttracker-agent");
    if !agent.is_file() {
        bail!(
            "{} is missing: the demo starts agents from next to {}; build both with `cargo build --release --bins`",
            agent.display(),
            exe.display()
        );
    }
    Ok(agent)
}

/// Reads the `listen` and `backfilling` fields of an agent's status.json
/// (the console does not depend on the agent crate).
fn agent_status(data: &Path) -> Option<(String, bool)> {
    let bytes = std::fs::read(data.join("status.json")).ok()?;
    let status: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let listen = status.get("listen")?.as_str()?.to_owned();
    let backfilling = status.get("backfilling")?.as_bool()?;
    Some((listen, backfilling))
}

/// Creates the site (or reuses a kept one), starts the agents, waits for
/// their history; returns
/// the console's data directory and store, ready for the window.
pub fn prepare(
    options: &DemoOptions,
    agents: &Arc<Agents>,
) -> Result<(SiteDir, Arc<ConsoleStore>)> {
    let agent_bin = agent_binary()?;
    let site = match &options.keep {
        Some(path) => SiteDir {
            path: path.clone(),
            remove: false,
        },
        None => SiteDir {
            path: std::env::temp_dir().join(format!(
                "smarttracker-demo-{}-{}",
                std::process::id(),
                clock::wall_now_ms()
            )),
            remove: true,
        },
    };
    let reuse = site.path.join("site").join("site.json").is_file();
    std::fs::create_dir_all(&site.path)
        .with_context(|| format!("cannot create {}", site.path.display()))?;
    eprintln!("demo site in {}", site.path.display());
    let console_data = site.path.join("console");
    if !reuse {
        let validity = Validity::days_from(time::OffsetDateTime::now_utc(), VALIDITY_DAYS);
        let ca = SiteCa::init(&site.path.join("site"), "Demo SmartTracker", None, validity)?;
        ca.issue_console(Role::Admin, "Demo console", validity)?
            .write(&console_data.join(IDENTITY_DIR))?;
        let store = ConsoleStore::open(
            &console_data.join(console_engine::STORE_DIR),
            site_clock_of(&console_data)?.0,
        )?;
        for n in 1..=options.agents {
            let name = format!("demo-pc-{n}");
            let identity = ca.issue_agent(Some(&name), validity)?;
            let bundle = site.path.join(format!("{name}.bundle"));
            identity.write_bundle(&bundle)?;
            let enrolled = Command::new(&agent_bin)
                .args(["enroll", "--bundle"])
                .arg(&bundle)
                .arg("--data")
                .arg(site.path.join(&name))
                .stdout(Stdio::null())
                .status()
                .with_context(|| format!("cannot run {}", agent_bin.display()))?;
            std::fs::remove_file(&bundle).ok();
            if !enrolled.success() {
                bail!("enrolling {name} failed ({enrolled})");
            }
            store.upsert_agent(&inventory_record(
                &name,
                &identity.cert_der,
                clock::wall_now_ms(),
            )?)?;
        }
        for (name, email, team, user) in DEMO_PEOPLE {
            let account = console_engine::people::check_account(Some(user), None)?;
            console_engine::people::update(&store, |book| {
                book.add(name, email, team, vec![account], &|agent| agent.to_string())
            })?;
        }
    }
    let store = super::engine::open_store(&console_data)?;
    // A kept site restarts its agents: their stores already hold history.
    let mut data_dirs = Vec::new();
    for (index, record) in store.agents()?.into_iter().enumerate() {
        let seed = record
            .name
            .strip_prefix("demo-pc-")
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(index as u64 + 1);
        let data = site.path.join(&record.name);
        if !data.join("identity.pem").is_file() {
            continue;
        }
        std::fs::remove_file(data.join("status.json")).ok();
        let log = std::fs::File::create(site.path.join(format!("{}.log", record.name)))
            .context("cannot create the agent log")?;
        let mut command = Command::new(&agent_bin);
        if record.name == FAR_DEMO_AGENT.0 {
            command.env("TZ", FAR_DEMO_AGENT.1);
        }
        let child = command
            .args([
                "run",
                "--sensors",
                "demo",
                "--no-mdns",
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--demo-seed")
            .arg(seed.to_string())
            .arg("--demo-history-days")
            .arg(options.history_days.to_string())
            .arg("--demo-users")
            .arg(demo_users(seed))
            .arg("--data")
            .arg(&data)
            .env("SMARTTRACKER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", agent_bin.display()))?;
        agents
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(child);
        data_dirs.push((record.agent, record.name, data));
    }
    if data_dirs.is_empty() {
        bail!("{} holds no demo agents", site.path.display());
    }

    eprintln!(
        "recording {} days of simulated history on {} agent(s)…",
        options.history_days,
        data_dirs.len()
    );
    let deadline = Instant::now() + HISTORY_TIMEOUT;
    let mut peers = Vec::new();
    let mut listening = Vec::new();
    for (agent, name, data) in &data_dirs {
        let listen = loop {
            match agent_status(data) {
                Some((listen, false)) => break listen,
                _ if Instant::now() >= deadline => {
                    bail!(
                        "{name} did not finish its history in time; see its log in {}",
                        site.path.display()
                    )
                }
                _ => {}
            }
            let exited = agents
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter_mut()
                .any(|child| matches!(child.try_wait(), Ok(Some(_))));
            if exited {
                bail!(
                    "an agent stopped early; see the logs in {}",
                    site.path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        eprintln!("{name} listens on {listen}");
        if let Some(mut record) = store.agent(*agent)? {
            record.addresses = vec![listen.clone()];
            store.upsert_agent(&record)?;
        }
        if let Ok(addr) = listen.parse::<SocketAddr>() {
            listening.push((*agent, name.clone(), addr));
        }
        peers.push(listen);
    }
    let identity = ConsoleIdentity::read(&console_data.join(IDENTITY_DIR))
        .context("cannot read the demo console's identity")?;
    enable_screenshots(identity, &store, &listening)?;
    let settings = ConsoleSettings::load(&store)?;
    ConsoleSettings {
        static_peers: peers,
        // Simulated people: show what a manager could choose to see.
        show_current_app: true,
        ..settings.clone()
    }
    .save_changes(&settings, &store)?;
    Ok((site, store))
}

/// Turns on periodic screenshots of every demo agent through a policy
/// change (blurred on [`BLURRED_DEMO_AGENT`]), audited like one made in
/// the window; an agent that refuses is a warning, not a failed demo.
fn enable_screenshots(
    identity: ConsoleIdentity,
    store: &Arc<ConsoleStore>,
    agents: &[(AgentId, String, SocketAddr)],
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let syncer = Syncer::new(identity, store.clone(), SyncConfig::default());
    for (agent, name, addr) in agents {
        let record = store.agent(*agent)?;
        let applied = runtime.block_on(async {
            let record = record.ok_or_else(|| anyhow!("{name} is not in the inventory"))?;
            let addresses = Addresses {
                given: vec![*addr],
                ..Addresses::default()
            };
            let (session, _) = open_session(&syncer, &record, &addresses)
                .await
                .map_err(|unreached| anyhow!("{name}: {}", unreached.reasons().join("; ")))?;
            let applied = async {
                let mut policy = match session.ask(&Request::GetPolicy).await {
                    Ok(Response::Policy(policy)) => policy,
                    Ok(_) => return Err(anyhow!("{name} answered get-policy with something else")),
                    Err(error) => return Err(anyhow!("{name}: {error}")),
                };
                policy.revision = policy.revision.saturating_add(1);
                policy.screenshots = ScreenshotPolicy {
                    enabled: true,
                    interval_secs: DEMO_SCREENSHOT_INTERVAL_SECS,
                    blur: name == BLURRED_DEMO_AGENT,
                };
                match session.ask(&Request::SetPolicy(policy)).await {
                    Ok(Response::Policy(applied)) => Ok(applied),
                    Ok(_) => Err(anyhow!("{name} answered set-policy with something else")),
                    Err(error) => Err(anyhow!("{name}: {error}")),
                }
            }
            .await;
            session.close(b"request done");
            applied
        });
        let detail = match &applied {
            Ok(policy) => format!(
                "revision {}: demo screenshots every {} s{}",
                policy.revision,
                policy.screenshots.interval_secs,
                if policy.screenshots.blur {
                    ", blurred"
                } else {
                    ""
                }
            ),
            Err(error) => format!("refused: {error:#}"),
        };
        store.audit(AuditEntry {
            at_ms: clock::wall_now_ms(),
            actor: syncer.actor(),
            action: "set-policy".to_owned(),
            target: agent.to_string(),
            detail,
        })?;
        // The demo still opens: its gallery just stays empty.
        if let Err(error) = applied {
            eprintln!("warning: periodic screenshots stay off: {error:#}");
        }
    }
    eprintln!(
        "periodic screenshots of the simulated desktops: every {} min",
        DEMO_SCREENSHOT_INTERVAL_SECS / 60
    );
    Ok(())
}

/// Stops the agents (and removes the site) on SIGINT or SIGTERM, then
/// exits: the window cannot be closed from another thread otherwise.
pub fn stop_on_signal(agents: Arc<Agents>, site_path: PathBuf, remove: bool) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal watcher")?;
    std::thread::Builder::new()
        .name("demo-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                let Ok(mut terminate) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            });
            eprintln!("stopping the demo agents");
            agents.stop();
            if remove {
                let _ = std::fs::remove_dir_all(&site_path);
            }
            std::process::exit(130);
        })
        .context("cannot start the signal watcher")?;
    Ok(())
}
