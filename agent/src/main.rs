//! `smarttracker-agent`: enrol a workstation, run the agent, show its status.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use agent::admission::ServerLimits;
use agent::capture::ScreenSource;
use agent::demo::DemoWorkstation;
use agent::health::SysinfoHealth;
use agent::live::{run_desktop_notice, LiveWatcher};
use agent::mdns::Advert;
use agent::periodic::run_periodic_screenshots;
use agent::recorder::{backfill_demo, DesktopSource, Recorder, Source};
use agent::screen::Screen;
use agent::sensors::session::UtmpSessions;
use agent::sensors::x11::X11Sensors;
use agent::server::{serve, AgentInfo, Service};
use agent::status::{StatusSnapshot, StreamStatus};
use agent::store::{Quotas, Store};
use agent::{clock, IDENTITY_FILE, STORE_DIR};
use anyhow::{bail, Context, Result};
use certs::AgentIdentity;
use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use protocol::{Policy, StreamKind};
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(
    name = "smarttracker-agent",
    version,
    about = "SmartTracker workstation agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sensors {
    /// The real desktop: X11 window and idle sensors, system health.
    X11,
    /// A clearly labelled simulated workstation.
    Demo,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Installs an enrolment bundle made by `smarttracker-certs agent`.
    Enroll {
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        data: PathBuf,
    },
    /// Records activity and serves it to authenticated consoles.
    Run {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = "0.0.0.0:47100")]
        listen: SocketAddr,
        #[arg(long, value_enum, default_value = "x11")]
        sensors: Sensors,
        /// Do not advertise over mDNS (consoles then need a static peer).
        #[arg(long)]
        no_mdns: bool,
        /// Seed of the simulated workstation (demo sensors only).
        #[arg(long, default_value_t = 1)]
        demo_seed: u64,
        /// Days of simulated history to record on first start (demo only).
        #[arg(long, default_value_t = 0)]
        demo_history_days: u32,
        /// A live view ends this long after the console last renewed it.
        #[arg(long, default_value_t = agent::live::DEFAULT_LEASE_SECS,
              value_parser = clap::value_parser!(u32).range(2..=300))]
        live_lease_secs: u32,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// Shows what this agent collects, holds, and who read it.
    Status {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// The server's limits against misbehaving consoles (`ServerLimits`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits against misbehaving consoles")]
struct LimitFlags {
    /// Connections at once from every console, handshakes included.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.max_connections,
          value_parser = clap::value_parser!(u16).range(1..=1024).map(usize::from))]
    max_connections: usize,
    /// Connections at once from one console (one certificate).
    #[arg(long, default_value_t = ServerLimits::DEFAULT.max_connections_per_console,
          value_parser = clap::value_parser!(u16).range(1..=64).map(usize::from))]
    max_connections_per_console: usize,
    /// Handshakes in flight at once from one IP address.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.max_handshakes_per_ip,
          value_parser = clap::value_parser!(u16).range(1..=256).map(usize::from))]
    max_handshakes_per_ip: usize,
    /// A handshake not finished this long after it started is dropped.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.handshake_timeout_ms,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    handshake_timeout_ms: u64,
    /// A connection without a whole request this long after its handshake
    /// is closed.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.first_request_timeout_ms,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    first_request_timeout_ms: u64,
    /// A request frame not whole this long after its stream opened is reset.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.request_timeout_ms,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    request_timeout_ms: u64,
    /// A response not taken by the console within this long is reset.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.response_timeout_ms,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    response_timeout_ms: u64,
    /// A connection with no request for this long is closed, keep-alives or not.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.request_idle_timeout_ms,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    request_idle_timeout_ms: u64,
}

impl From<LimitFlags> for ServerLimits {
    fn from(flags: LimitFlags) -> Self {
        ServerLimits {
            max_connections: flags.max_connections,
            max_connections_per_console: flags.max_connections_per_console,
            max_handshakes_per_ip: flags.max_handshakes_per_ip,
            handshake_timeout_ms: flags.handshake_timeout_ms,
            first_request_timeout_ms: flags.first_request_timeout_ms,
            request_timeout_ms: flags.request_timeout_ms,
            response_timeout_ms: flags.response_timeout_ms,
            request_idle_timeout_ms: flags.request_idle_timeout_ms,
        }
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SMARTTRACKER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run_cli(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Enroll { bundle, data } => enroll(&bundle, &data),
        Command::Status { data, json } => {
            let snapshot = StatusSnapshot::read(&data)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&snapshot)?);
            } else {
                print!("{}", snapshot.render(clock::wall_now_ms()));
            }
            Ok(())
        }
        Command::Run {
            data,
            listen,
            sensors,
            no_mdns,
            demo_seed,
            demo_history_days,
            live_lease_secs,
            limits,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(run(RunOptions {
                data,
                listen,
                sensors,
                mdns: !no_mdns,
                demo_seed,
                demo_history_days,
                live_lease_secs,
                limits: limits.into(),
            }))
        }
    }
}

fn enroll(bundle: &Path, data: &Path) -> Result<()> {
    let identity = AgentIdentity::read_bundle(bundle)?;
    let target = data.join(IDENTITY_FILE);
    if target.exists() {
        bail!(
            "{} already holds an enrolled identity; use another --data directory or remove it to re-enrol",
            target.display()
        );
    }
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create data directory {}", data.display()))?;
    identity.write_bundle(&target)?;
    println!(
        "enrolled agent {} ({}) into {}",
        identity.agent_id,
        identity.name.as_deref().unwrap_or("unnamed"),
        data.display()
    );
    Ok(())
}

#[derive(Debug)]
struct RunOptions {
    data: PathBuf,
    listen: SocketAddr,
    sensors: Sensors,
    mdns: bool,
    demo_seed: u64,
    demo_history_days: u32,
    live_lease_secs: u32,
    limits: ServerLimits,
}

/// How often acked records past retention are deleted.
const PRUNE_INTERVAL_MS: u64 = 10 * 60 * 1000;

/// Meta key recording which source a store holds data from.
const SOURCE_META: &str = "source";

async fn run(options: RunOptions) -> Result<()> {
    let identity_path = options.data.join(IDENTITY_FILE);
    let identity = AgentIdentity::read_bundle(&identity_path).with_context(|| {
        format!(
            "not enrolled: run `smarttracker-agent enroll --bundle FILE --data {}` first",
            options.data.display()
        )
    })?;
    let store = Arc::new(Store::open(
        &options.data.join(STORE_DIR),
        Quotas::default(),
    )?);

    // Never mix simulated and real records in one store.
    let source_name = match options.sensors {
        Sensors::X11 => "x11",
        Sensors::Demo => "demo",
    };
    let fresh_store = match store.get_meta(SOURCE_META)? {
        None => {
            store.put_meta(SOURCE_META, source_name.as_bytes())?;
            true
        }
        Some(existing) if existing == source_name.as_bytes() => false,
        Some(existing) => bail!(
            "store {} holds {} data; running it with --sensors {source_name} would mix simulated and real records; use another --data directory",
            options.data.join(STORE_DIR).display(),
            String::from_utf8_lossy(&existing)
        ),
    };
    let policy = agent::settings::load_policy(&store)?;
    let user = match options.sensors {
        Sensors::Demo => agent::demo::DEMO_USER.to_owned(),
        Sensors::X11 => std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned()),
    };
    // A demo agent stands for a simulated workstation: its enrolment name,
    // not the real machine's.
    let hostname = match (options.sensors, &identity.name) {
        (Sensors::Demo, Some(name)) => name.clone(),
        _ => sysinfo::System::host_name().unwrap_or_else(|| "unknown".to_owned()),
    };
    let mut source: Box<dyn Source> = match options.sensors {
        Sensors::X11 => Box::new(DesktopSource {
            x11: X11Sensors::connect(None)?,
            health: SysinfoHealth::default(),
            sessions: UtmpSessions::system(),
        }),
        Sensors::Demo => Box::new(DemoWorkstation::new(options.demo_seed)),
    };
    let backfill_days = match options.sensors {
        Sensors::Demo if fresh_store => options.demo_history_days,
        _ => 0,
    };

    let tls = certs::tls::agent_server_config(&identity, Vec::new())?;
    let endpoint = certs::transport::server_endpoint(
        options.listen,
        certs::transport::server_config(tls, &certs::transport::Limits::agent())?,
    )?;
    let local_addr = endpoint
        .local_addr()
        .context("cannot read the bound address")?;
    let screen = Arc::new(match options.sensors {
        Sensors::X11 => Screen::new(desktop_screen_source),
        Sensors::Demo => {
            let seed = options.demo_seed;
            Screen::new(move || ScreenSource::Demo { seed })
        }
    });
    let service = Arc::new(Service::new(
        AgentInfo {
            agent_id: identity.agent_id,
            hostname: hostname.clone(),
            demo: source.is_demo(),
        },
        store.clone(),
        policy.clone(),
        screen.clone(),
        options.live_lease_secs,
    ));
    let mut policy_rx = service.policy.subscribe();
    let watchers_rx = service.watchers.subscribe();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let periodic = tokio::spawn(run_periodic_screenshots(
        screen,
        store.clone(),
        service.policy.subscribe(),
        shutdown_rx.clone(),
    ));
    let notice = tokio::spawn(run_desktop_notice(watchers_rx.clone()));
    let server = tokio::spawn(serve(endpoint, service, options.limits, shutdown_rx));
    let _advert = if options.mdns {
        match Advert::start(identity.agent_id, local_addr.port(), true) {
            Ok(advert) => Some(advert),
            Err(advert_error) => {
                tracing::warn!(%advert_error);
                None
            }
        }
    } else {
        None
    };
    tracing::info!(agent = %identity.agent_id, %local_addr, demo = source.is_demo(), "agent running");

    // The recorder runs on its own thread: sensors block (X11 round trips).
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let status = StatusWriter {
        base: StatusSnapshot {
            written_at_ms: 0,
            pid: std::process::id(),
            agent_id: identity.agent_id.to_string(),
            hostname,
            demo: source.is_demo(),
            listen: local_addr.to_string(),
            backfilling: false,
            epoch: store.epoch(),
            policy: policy.clone(),
            streams: Vec::new(),
            last_sensor_error: None,
            recent_access: Vec::new(),
            live_view: Vec::new(),
        },
        store: store.clone(),
        data_dir: options.data.clone(),
        watchers: watchers_rx,
    };
    let recorder_store = store.clone();
    let recorder = std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || -> Result<()> {
            if backfill_days > 0 {
                tracing::info!(days = backfill_days, "recording simulated demo history");
                let mut demo = DemoWorkstation::new(options.demo_seed);
                backfill_demo(
                    &recorder_store,
                    &mut demo,
                    &policy,
                    &user,
                    backfill_days,
                    clock::wall_now_ms(),
                    &mut || status.write(&policy, None, true),
                )?;
            }
            let mut recorder = Recorder::new(recorder_store.clone(), policy, &user, clock::now());
            let mut next_prune_ms = clock::steady_now_ms();
            loop {
                if policy_rx.has_changed().unwrap_or(false) {
                    recorder.apply_policy(policy_rx.borrow_and_update().clone());
                }
                let now = clock::now();
                recorder.step(now, source.as_mut());
                recorder_store.flush()?;
                if now.steady_ms >= next_prune_ms {
                    // Only what a console acked and what is past retention.
                    let pruned = recorder_store.prune(now.wall_ms, &recorder.policy().retention)?;
                    tracing::debug!(?pruned, "pruned");
                    next_prune_ms = now.steady_ms + PRUNE_INTERVAL_MS;
                }
                status.write(recorder.policy(), recorder.last_sensor_error.clone(), false);
                match stop_rx.recv_timeout(Duration::from_secs(1)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            recorder.finish(clock::now());
            recorder_store.flush()?;
            status.write(recorder.policy(), recorder.last_sensor_error.clone(), false);
            Ok(())
        })
        .context("cannot start the recorder thread")?;

    let recorder_failed = tokio::select! {
        _ = wait_for_signal() => false,
        _ = wait_for_thread(&recorder) => true,
    };
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    let _ = server.await;
    let _ = periodic.await;
    // The server (and its watchers sender) is gone: the notice closes.
    let _ = notice.await;
    let _ = stop_tx.send(());
    match recorder.join() {
        Ok(result) => result?,
        Err(_) => bail!("the recorder thread panicked"),
    }
    if recorder_failed {
        bail!("the recorder stopped unexpectedly");
    }
    store.flush()?;
    tracing::info!("stopped; everything recorded is stored");
    Ok(())
}

/// Resolves when the thread has ended (polled: threads have no async join).
async fn wait_for_thread<T>(thread: &std::thread::JoinHandle<T>) {
    while !thread.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes the transparency snapshot after each flush.
struct StatusWriter {
    base: StatusSnapshot,
    store: Arc<Store>,
    data_dir: PathBuf,
    watchers: watch::Receiver<Vec<LiveWatcher>>,
}

impl StatusWriter {
    fn write(&self, policy: &Policy, last_sensor_error: Option<String>, backfilling: bool) {
        let counts = self.store.counts();
        let snapshot = StatusSnapshot {
            written_at_ms: clock::wall_now_ms(),
            policy: policy.clone(),
            streams: StreamKind::ALL
                .iter()
                .map(|stream| {
                    let count = counts.get(*stream);
                    StreamStatus {
                        stream: stream.name().to_owned(),
                        durable_seq: count.durable_seq,
                        acked_seq: count.acked_seq,
                        held_records: count.stored_records,
                        held_bytes: count.stored_bytes,
                    }
                })
                .collect(),
            last_sensor_error,
            backfilling,
            recent_access: self.store.access_log(50).unwrap_or_default(),
            live_view: self.watchers.borrow().clone(),
            ..self.base.clone()
        };
        if let Err(status_error) = snapshot.write(&self.data_dir) {
            tracing::warn!(%status_error);
        }
    }
}

/// The X11 display when there is one, else xcap (Wayland sessions).
fn desktop_screen_source() -> ScreenSource {
    let has_x11 = std::env::var_os("DISPLAY").is_some_and(|display| !display.is_empty());
    let has_wayland =
        std::env::var_os("WAYLAND_DISPLAY").is_some_and(|display| !display.is_empty());
    if !has_x11 && has_wayland {
        ScreenSource::Xcap
    } else {
        ScreenSource::X11 { display: None }
    }
}

async fn wait_for_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(signal_error) => {
                tracing::warn!(%signal_error, "SIGTERM not handled; use Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
