//! `smarttracker-console`: the manager's console window (`gui`, `demo`) and
//! headless commands for scripts (sync, agents, export, report, screenshot).

#[path = "cli/demo.rs"]
mod demo;

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use certs::{AgentIdentity, ConsoleIdentity, Role};
use clap::{Parser, Subcommand, ValueEnum};
use console::analytics::Range;
use console::app::{ConsoleApp, Screen};
use console::categories::{self, Categoriser};
use console::discovery::{self, Candidate, CandidateSource};
use console::engine::{Engine, EngineConfig};
use console::export::{Format, Table};
use console::model::AgentId;
use console::settings::ConsoleSettings;
use console::store::{AgentRecord, ConsoleStore, ShotSource};
use console::sync::{
    inventory_record, own_certificate_problem, unsynced_agents, Outcome, StreamReport, SyncConfig,
    SyncError, Syncer,
};
use console::{clock, IDENTITY_DIR, STORE_DIR};
use protocol::{CaptureSpec, CapturedImage, ErrorCode, Request, Response};

#[derive(Debug, Parser)]
#[command(
    name = "smarttracker-console",
    version,
    about = "SmartTracker manager console"
)]
struct Cli {
    /// The console's data directory (identity, store, settings).
    #[arg(long, global = true, default_value = "smarttracker-console")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Opens the console window on --data (sync runs in the background).
    Gui {
        /// Do not browse mDNS (static peers and remembered addresses only).
        #[arg(long)]
        no_mdns: bool,
        /// Screen shown first.
        #[arg(long, value_parser = parse_screen, default_value = "fleet")]
        screen: Screen,
        /// Pause between background syncs.
        #[arg(long, default_value_t = 30)]
        sync_interval_secs: u64,
    },
    /// Creates a temporary demo site, starts demo agents with labelled
    /// simulated history on loopback and opens the console on them.
    Demo {
        /// Number of demo agents.
        #[arg(long, default_value_t = 3)]
        agents: u32,
        /// Days of simulated history each agent records first.
        #[arg(long, default_value_t = 30)]
        history_days: u32,
        /// Keep the site in this directory instead of a temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Screen shown first.
        #[arg(long, value_parser = parse_screen, default_value = "fleet")]
        screen: Screen,
    },
    /// Pulls every record from every reachable inventoried agent.
    Sync {
        /// One pass, then exit (otherwise: keep syncing).
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        reach: Reach,
        /// Pause between passes when not --once.
        #[arg(long, default_value_t = 30)]
        interval_secs: u64,
        /// Longest a pass spends on one agent; the next pass resumes.
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        agent_deadline_secs: u64,
        /// Most records one stream of one agent brings per pass.
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
        budget_records: u64,
    },
    /// Lists the agents of the inventory and their state.
    Agents {
        #[arg(long)]
        json: bool,
    },
    /// Adds an agent to the inventory from its enrolment bundle or
    /// certificate (only the public key is kept).
    AddAgent {
        file: PathBuf,
        /// Display name (default: the name in the bundle).
        #[arg(long)]
        name: Option<String>,
    },
    /// Writes a table of stored data (the audit log is verified first).
    Export {
        #[arg(value_enum)]
        table: TableArg,
        /// First day included (YYYY-MM-DD, site time); default: 30 days
        /// before --to. Give an earlier day to widen.
        #[arg(long)]
        from: Option<String>,
        /// Last day included (YYYY-MM-DD, site time); default: today.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: FormatArg,
        /// Output file; default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prints the organisation's report for a period.
    Report {
        #[arg(long, value_enum, default_value = "7d")]
        range: RangeArg,
    },
    /// Captures one agent's screen now (admin consoles only): writes the
    /// JPEG to --out (mode 0600) and keeps an encrypted copy in the
    /// console's gallery. Audited here and on the agent.
    Screenshot {
        /// The agent: its id, or its name in the inventory.
        #[arg(long)]
        agent: String,
        /// Where to write the JPEG.
        #[arg(long)]
        out: PathBuf,
        /// Monitor index, left to right; default: the whole desktop.
        #[arg(long)]
        monitor: Option<u16>,
        /// The image fits in this width (pixels; never upscaled).
        #[arg(long, default_value_t = 1920)]
        max_width: u16,
        /// The image fits in this height (pixels; never upscaled).
        #[arg(long, default_value_t = 1080)]
        max_height: u16,
        /// JPEG quality, 1–95.
        #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=95))]
        quality: u8,
        #[command(flatten)]
        reach: Reach,
    },
}

/// Where to look for agents, besides remembered addresses and static peers.
#[derive(Debug, Clone, clap::Args)]
struct Reach {
    /// An agent address to try first (repeatable).
    #[arg(long = "peer")]
    peers: Vec<SocketAddr>,
    /// Do not browse mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// How long to browse mDNS.
    #[arg(long, default_value_t = 3)]
    browse_secs: u64,
}

impl Reach {
    fn mdns(&self) -> bool {
        !self.no_mdns
    }

    fn browse(&self) -> Duration {
        Duration::from_secs(self.browse_secs)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TableArg {
    Usage,
    Sessions,
    Attendance,
    Health,
    Audit,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Jsonl,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RangeArg {
    #[value(name = "24h")]
    Day,
    #[value(name = "7d")]
    Week,
    #[value(name = "30d")]
    Month,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SMARTTRACKER_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn open_store(data: &Path) -> Result<Arc<ConsoleStore>> {
    Ok(Arc::new(ConsoleStore::open(
        &data.join(STORE_DIR),
        console::model::DayClock::UTC,
    )?))
}

fn identity(data: &Path) -> Result<ConsoleIdentity> {
    let dir = data.join(IDENTITY_DIR);
    ConsoleIdentity::read(&dir).with_context(|| {
        format!(
            "no console identity in {}: create one with `smarttracker-certs console --site SITE --role admin --name NAME --out {}`",
            dir.display(),
            dir.display()
        )
    })
}

fn parse_screen(name: &str) -> Result<Screen, String> {
    Screen::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Screen::ALL.iter().map(|screen| screen.name()).collect();
        format!("unknown screen {name:?}; one of: {}", names.join(", "))
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Gui {
            no_mdns,
            screen,
            sync_interval_secs,
        } => {
            let store = open_store(&cli.data)?;
            let identity = match identity(&cli.data) {
                Ok(identity) => Some(identity),
                Err(error) => {
                    eprintln!("warning: {error:#}; the window opens without sync");
                    None
                }
            };
            gui(GuiOptions {
                store,
                identity,
                data: cli.data,
                mdns: !no_mdns,
                screen,
                sync_interval: Duration::from_secs(sync_interval_secs),
            })
        }
        Command::Demo {
            agents,
            history_days,
            keep,
            screen,
        } => {
            let options = demo::DemoOptions {
                agents: agents.max(1),
                history_days,
                keep,
                screen,
            };
            let running = Arc::new(demo::Agents::default());
            let (site, store) = demo::prepare(&options, &running)?;
            demo::stop_on_signal(running.clone(), site.path.clone(), options.keep.is_none())?;
            let data = site.path.join("console");
            let identity = identity(&data)?;
            let shown = gui(GuiOptions {
                store,
                identity: Some(identity),
                data,
                mdns: false,
                screen: options.screen,
                sync_interval: Duration::from_secs(30),
            });
            running.stop();
            drop(site);
            shown
        }
        Command::AddAgent { file, name } => add_agent(&cli.data, &file, name),
        Command::Agents { json } => list_agents(&cli.data, json),
        Command::Export {
            table,
            from,
            to,
            format,
            out,
        } => export(&cli.data, table, from, to, format, out),
        Command::Report { range } => report(&cli.data, range),
        Command::Screenshot {
            agent,
            out,
            monitor,
            max_width,
            max_height,
            quality,
            reach,
        } => {
            let options = ScreenshotOptions {
                agent,
                out,
                spec: CaptureSpec {
                    monitor,
                    max_width,
                    max_height,
                    quality,
                },
                reach,
            };
            // Checked before anything else: a viewer never asks.
            let identity = identity(&cli.data)?;
            if identity.role != Role::Admin {
                bail!(
                    "this console's certificate has the {} role; screenshots need an admin console (issue one with `smarttracker-certs console --role admin`)",
                    identity.role
                );
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(screenshot(&cli.data, identity, options))
        }
        Command::Sync {
            once,
            reach,
            interval_secs,
            agent_deadline_secs,
            budget_records,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(sync(SyncOptions {
                data: cli.data,
                once,
                reach,
                interval: Duration::from_secs(interval_secs),
                config: SyncConfig {
                    agent_deadline: Duration::from_secs(agent_deadline_secs),
                    budget_records,
                    ..SyncConfig::default()
                },
            }))
        }
    }
}

#[derive(Debug)]
struct GuiOptions {
    store: Arc<ConsoleStore>,
    identity: Option<ConsoleIdentity>,
    data: PathBuf,
    mdns: bool,
    screen: Screen,
    sync_interval: Duration,
}

/// Opens the window; returns when it is closed.
fn gui(options: GuiOptions) -> Result<()> {
    let clock = options.store.day_clock();
    let engine = Engine::start(EngineConfig {
        store: options.store,
        identity: options.identity,
        mdns: options.mdns,
        sync_interval: options.sync_interval,
        data_dir: options.data,
    })?;
    let screen = options.screen;
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("SmartTracker")
            .with_inner_size([1600.0, 1000.0]),
        ..Default::default()
    };
    eframe::run_native(
        "SmartTracker console",
        native,
        Box::new(move |_creation| Ok(Box::new(ConsoleApp::new(engine, clock, screen)))),
    )
    .map_err(|error| anyhow!("cannot open the console window: {error}"))
}

fn add_agent(data: &Path, file: &Path, name: Option<String>) -> Result<()> {
    let store = open_store(data)?;
    let (cert_der, bundle_name) = match AgentIdentity::read_bundle(file) {
        Ok(bundle) => (bundle.cert_der.to_vec(), bundle.name),
        Err(bundle_error) => {
            let pem =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let cert = rustls_pemfile_cert(&pem).with_context(|| {
                format!("{} is neither an agent bundle ({bundle_error}) nor a certificate PEM; give the file smarttracker-certs agent wrote", file.display())
            })?;
            (cert, None)
        }
    };
    let display_name = name
        .or(bundle_name)
        .unwrap_or_else(|| "unnamed agent".to_owned());
    let record = inventory_record(&display_name, &cert_der, clock::wall_now_ms())
        .with_context(|| format!("{} does not hold an agent certificate", file.display()))?;
    store.upsert_agent(&record)?;
    store.audit(console::store::AuditEntry {
        at_ms: clock::wall_now_ms(),
        actor: "cli".to_owned(),
        action: "add-agent".to_owned(),
        target: record.agent.to_string(),
        detail: display_name.clone(),
    })?;
    println!("added agent {} ({display_name})", record.agent);
    Ok(())
}

/// Parses `YYYY-MM-DD` as a day number of the site's calendar.
fn parse_day(text: &str) -> Result<console::model::DayNumber> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format)
        .with_context(|| format!("{text:?} is not a date; write it as YYYY-MM-DD"))?;
    Ok(date.to_julian_day() - 2_440_588)
}

/// Days an export covers when --from is not given.
const EXPORT_DEFAULT_DAYS: i32 = 30;

fn export(
    data: &Path,
    table: TableArg,
    from: Option<String>,
    to: Option<String>,
    format: FormatArg,
    out: Option<PathBuf>,
) -> Result<()> {
    let store = open_store(data)?;
    let clock = store.day_clock();
    let now_ms = clock::wall_now_ms();
    let last_day = match &to {
        Some(day) => parse_day(day)?,
        None => clock.day_of(now_ms),
    };
    let first_day = match &from {
        Some(day) => parse_day(day)?,
        None => last_day.saturating_sub(EXPORT_DEFAULT_DAYS - 1),
    };
    if first_day > last_day {
        bail!("--from is after --to: nothing to export");
    }
    // Days outside what records can hold are not walked through.
    let range = Range::custom(
        clock.day_start_ms(first_day),
        clock.day_start_ms(last_day.saturating_add(1)),
    )
    .within_records(now_ms);
    let table = match table {
        TableArg::Usage => Table::Usage,
        TableArg::Sessions => Table::Sessions,
        TableArg::Attendance => Table::Attendance,
        TableArg::Health => Table::Health,
        TableArg::Audit => Table::Audit,
    };
    let format = match format {
        FormatArg::Csv => Format::Csv,
        FormatArg::Jsonl => Format::Jsonl,
    };
    let categoriser = categoriser(&store)?;
    let rows = match &out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            console::export::export(&store, &categoriser, table, format, range, file)?
        }
        None => console::export::export(
            &store,
            &categoriser,
            table,
            format,
            range,
            std::io::stdout().lock(),
        )?,
    };
    store.audit(console::store::AuditEntry {
        at_ms: now_ms,
        actor: "cli".to_owned(),
        action: "export".to_owned(),
        target: format!("{table:?}").to_lowercase(),
        detail: format!(
            "{rows} rows to {}",
            out.as_deref()
                .map_or("standard output".to_owned(), |path| path
                    .display()
                    .to_string())
        ),
    })?;
    if let Some(path) = out {
        eprintln!("wrote {rows} rows to {}", path.display());
    }
    Ok(())
}

fn report(data: &Path, range: RangeArg) -> Result<()> {
    let store = open_store(data)?;
    let now_ms = clock::wall_now_ms();
    let clock = store.day_clock();
    let (range, label) = match range {
        RangeArg::Day => (Range::last_24h(now_ms), "last 24 hours"),
        RangeArg::Week => (Range::last_days(now_ms, clock, 7), "last 7 days"),
        RangeArg::Month => (Range::last_days(now_ms, clock, 30), "last 30 days"),
    };
    let categoriser = categoriser(&store)?;
    print!(
        "{}",
        console::report::render(&store, &categoriser, range, label, now_ms)?
    );
    Ok(())
}

/// The categoriser with the manager's rules and labelled examples, its
/// model loaded from the store (or trained and stored there).
fn categoriser(store: &ConsoleStore) -> Result<Categoriser> {
    let settings = ConsoleSettings::load(store)?;
    let (categoriser, _) =
        categories::load_or_train(store, settings.category_rules, &settings.category_labels)?;
    Ok(categoriser)
}

fn rustls_pemfile_cert(pem: &[u8]) -> Option<Vec<u8>> {
    let mut reader = std::io::BufReader::new(pem);
    let first = rustls_pemfile::certs(&mut reader).next()?;
    first.ok().map(|cert| cert.to_vec())
}

fn list_agents(data: &Path, json: bool) -> Result<()> {
    let store = open_store(data)?;
    let agents = store.agents()?;
    let now_ms = clock::wall_now_ms();
    let faults = store.faults(None)?;
    let faults_of = |agent: AgentId| faults.iter().filter(move |fault| fault.agent == agent);
    if json {
        let mut listed = Vec::new();
        for agent in &agents {
            let mut value = serde_json::to_value(agent)?;
            value["faults"] = serde_json::to_value(faults_of(agent.agent).collect::<Vec<_>>())?;
            listed.push(value);
        }
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    if agents.is_empty() {
        println!(
            "no agents yet: add one with `smarttracker-console --data {} add-agent BUNDLE`",
            data.display()
        );
    }
    let mut out = std::io::stdout().lock();
    for agent in agents {
        let state = match agent.last_seen_ms {
            Some(seen_ms) if now_ms - seen_ms < 120_000 => "online".to_owned(),
            Some(seen_ms) => format!(
                "offline, last seen {} ago",
                console::analytics::format_duration_ms(now_ms - seen_ms)
            ),
            None => "never seen".to_owned(),
        };
        writeln!(
            out,
            "{} {:<20} {:<30} {}{}{}",
            agent.agent,
            agent.name,
            state,
            agent.addresses.first().map(String::as_str).unwrap_or("-"),
            if agent.demo { " DEMO" } else { "" },
            agent
                .last_error
                .as_deref()
                .map(|error| format!(" (last error: {error})"))
                .unwrap_or_default()
        )?;
        for fault in faults_of(agent.agent).filter(|fault| fault.is_recent(now_ms)) {
            writeln!(
                out,
                "    FAULT: {} ({} time(s), last {} ago): {}",
                fault.kind.describe(),
                fault.count,
                console::analytics::format_duration_ms(now_ms.saturating_sub(fault.last_ms)),
                fault.detail
            )?;
        }
    }
    Ok(())
}

#[derive(Debug)]
struct SyncOptions {
    data: PathBuf,
    once: bool,
    reach: Reach,
    interval: Duration,
    config: SyncConfig,
}

async fn sync(options: SyncOptions) -> Result<()> {
    let store = open_store(&options.data)?;
    let identity = identity(&options.data)?;
    if let Some(problem) = own_certificate_problem(&identity, clock::wall_now_ms()) {
        bail!("{problem}");
    }
    if store.agents()?.is_empty() {
        bail!(
            "the inventory is empty: add agents with `smarttracker-console --data {} add-agent BUNDLE`",
            options.data.display()
        );
    }
    let syncer = Arc::new(Syncer::new(identity, store.clone(), options.config));
    loop {
        let mut candidates: Vec<Candidate> = options
            .reach
            .peers
            .iter()
            .map(|addr| Candidate {
                addr: *addr,
                claimed_agent: None,
                source: CandidateSource::Static,
            })
            .collect();
        for agent in store.agents()? {
            for addr in agent.addresses.iter().filter_map(|addr| addr.parse().ok()) {
                candidates.push(Candidate {
                    addr,
                    claimed_agent: Some(agent.agent),
                    source: CandidateSource::Remembered,
                });
            }
        }
        if options.reach.mdns() {
            let browse = options.reach.browse();
            match tokio::task::spawn_blocking(move || discovery::browse(browse)).await? {
                Ok(found) => candidates.extend(found),
                Err(discovery_error) => eprintln!("warning: {discovery_error}"),
            }
        }
        let outcomes = syncer.sync_all(discovery::merge(candidates)).await;
        report_outcomes(&outcomes);
        let inventory = store.agents()?;
        let missing = unsynced_agents(&inventory, &outcomes);
        for (record, why) in &missing {
            println!("no sync for {} ({}): {why}", record.name, record.agent);
        }
        if options.once {
            if !inventory.is_empty() && missing.len() == inventory.len() {
                bail!(
                    "no agent of the inventory could be synced ({} expected); see the reasons above",
                    inventory.len()
                );
            }
            return Ok(());
        }
        tokio::time::sleep(options.interval).await;
    }
}

fn report_outcomes(outcomes: &[Outcome]) {
    for outcome in outcomes {
        match outcome {
            Outcome::Synced {
                addr,
                agent,
                hostname,
                demo,
                streams,
                incomplete: _,
            } => {
                let detail: Vec<String> = streams.iter().map(StreamReport::summary).collect();
                println!(
                    "synced {agent} ({hostname}{}) at {addr}: {}",
                    if *demo { ", DEMO data" } else { "" },
                    detail.join(", ")
                );
            }
            Outcome::Unknown {
                addr,
                claimed_agent,
                reason,
            } => println!(
                "unknown agent at {addr}{}: not in the inventory or key mismatch; nothing ingested ({reason})",
                claimed_agent.map(|id| format!(" (claims {id})")).unwrap_or_default()
            ),
            Outcome::Refused { addr, reason, .. } => println!("refused {addr}: {reason}"),
            Outcome::Faulty {
                addr,
                agent,
                fault,
                reason,
                streams,
            } => {
                let detail: Vec<String> = streams.iter().map(StreamReport::summary).collect();
                println!(
                    "FAULT {agent} at {addr}: {}: {reason} (stored before: {})",
                    fault.describe(),
                    if detail.is_empty() {
                        "nothing".to_owned()
                    } else {
                        detail.join(", ")
                    }
                );
            }
            Outcome::Unreachable { addr, reason, .. } => println!("unreachable {addr}: {reason}"),
        }
    }
}

#[derive(Debug)]
struct ScreenshotOptions {
    agent: String,
    out: PathBuf,
    spec: CaptureSpec,
    reach: Reach,
}

/// The inventory record named by `text`: an agent id, or a unique name.
fn find_agent(store: &ConsoleStore, data: &Path, text: &str) -> Result<AgentRecord> {
    let agents = store.agents()?;
    let by_id = text
        .parse::<AgentId>()
        .ok()
        .and_then(|id| agents.iter().find(|record| record.agent == id));
    if let Some(record) = by_id {
        return Ok(record.clone());
    }
    let named: Vec<&AgentRecord> = agents.iter().filter(|record| record.name == text).collect();
    match named.as_slice() {
        [record] => Ok((*record).clone()),
        [] => bail!(
            "no agent {text:?} in the inventory: list them with `smarttracker-console --data {} agents`",
            data.display()
        ),
        _ => bail!("several agents are named {text:?}: give the agent's id instead"),
    }
}

/// Asks `agent` at `addr` for a screenshot. `Ok(None)`: nobody (or
/// another agent) answered there, try the next address; an error is final.
async fn capture_at(
    syncer: &Syncer,
    record: &AgentRecord,
    addr: SocketAddr,
    spec: CaptureSpec,
) -> Result<Result<CapturedImage, String>> {
    let session = match syncer.open_agent(record.agent, addr).await {
        Ok(session) => session,
        Err(error) => return Ok(Err(format!("{addr}: {error}"))),
    };
    let answer = session.ask(&Request::Screenshot(spec)).await;
    session.close(b"screenshot done");
    match answer {
        Ok(Response::Image(image)) => Ok(Ok(image)),
        Ok(_) => Ok(Err(format!(
            "{addr}: {}",
            SyncError::Unexpected("screenshot")
        ))),
        Err(SyncError::Agent(ErrorCode::Forbidden, message)) => bail!(
            "{} refused: {message}; screenshots need an admin console",
            record.name
        ),
        Err(SyncError::Agent(ErrorCode::CaptureUnavailable, message)) => {
            bail!("{} cannot capture its screen: {message}", record.name)
        }
        Err(SyncError::Agent(code, message)) => {
            bail!(
                "{} refused the screenshot ({code:?}): {message}",
                record.name
            )
        }
        Err(error) => Ok(Err(format!("{addr}: {error}"))),
    }
}

/// Tries `addrs` in order; the first image wins.
async fn capture_first(
    syncer: &Syncer,
    record: &AgentRecord,
    addrs: &[SocketAddr],
    spec: CaptureSpec,
    failures: &mut Vec<String>,
) -> Result<Option<CapturedImage>> {
    for addr in addrs {
        match capture_at(syncer, record, *addr, spec).await? {
            Ok(image) => return Ok(Some(image)),
            Err(failure) => failures.push(failure),
        }
    }
    Ok(None)
}

async fn screenshot(
    data: &Path,
    identity: ConsoleIdentity,
    options: ScreenshotOptions,
) -> Result<()> {
    let store = open_store(data)?;
    let record = find_agent(&store, data, &options.agent)?;
    let settings = ConsoleSettings::load(&store)?;
    let mut addrs: Vec<SocketAddr> = options.reach.peers.clone();
    addrs.extend(
        record
            .addresses
            .iter()
            .filter_map(|addr| addr.parse::<SocketAddr>().ok()),
    );
    addrs.extend(settings.peer_addrs());
    let mut unique = Vec::new();
    for addr in addrs {
        if !unique.contains(&addr) {
            unique.push(addr);
        }
    }
    let syncer = Syncer::new(identity, store.clone(), SyncConfig::default());
    let mut failures = Vec::new();
    let mut image = capture_first(&syncer, &record, &unique, options.spec, &mut failures).await?;
    if image.is_none() && options.reach.mdns() {
        let browse = options.reach.browse();
        let found = tokio::task::spawn_blocking(move || discovery::browse(browse)).await?;
        match found {
            Ok(candidates) => {
                let advertised: Vec<SocketAddr> = candidates
                    .into_iter()
                    .filter(|candidate| candidate.claimed_agent == Some(record.agent))
                    .map(|candidate| candidate.addr)
                    .filter(|addr| !unique.contains(addr))
                    .collect();
                image = capture_first(&syncer, &record, &advertised, options.spec, &mut failures)
                    .await?;
            }
            Err(discovery_error) => failures.push(format!("mDNS: {discovery_error}")),
        }
    }
    let Some(image) = image else {
        if failures.is_empty() {
            bail!(
                "no address of {} is known: sync once, or give --peer HOST:PORT",
                record.name
            );
        }
        bail!("{} did not answer: {}", record.name, failures.join("; "));
    };
    console::store::check_image(&image.meta, &image.bytes)
        .with_context(|| format!("{} sent a bad image; nothing was written", record.name))?;
    let stored = store.put_screenshot(record.agent, ShotSource::OnDemand, &image)?;
    write_private_file(&options.out, &image.bytes)?;
    store.audit(console::store::AuditEntry {
        at_ms: clock::wall_now_ms(),
        actor: syncer.actor(),
        action: "screenshot-export".to_owned(),
        target: record.agent.to_string(),
        detail: format!(
            "on demand, {}x{} JPEG captured at {} ms, written to {}",
            stored.width,
            stored.height,
            stored.key.at_ms,
            options.out.display()
        ),
    })?;
    println!(
        "wrote {}: {}x{} JPEG, {} KB, captured {} on {}",
        options.out.display(),
        stored.width,
        stored.height,
        (u64::from(stored.size_bytes) + 512) / 1024,
        utc_text(stored.key.at_ms),
        record.name
    );
    Ok(())
}

/// `2026-11-21 09:12:03 UTC`.
fn utc_text(at_ms: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&format).ok())
        .unwrap_or_else(|| format!("at {at_ms} ms"))
}

/// Writes `bytes` to `path` atomically (a new file, mode 0600, renamed over
/// `path` once durable).
fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}
