//! `smarttracker-agent`: enrol a workstation, run the agent, show its status.

use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use agent::admission::ServerLimits;
use agent::capture::ScreenSource;
use agent::config::{self, Config, LimitSettings, Sensors, Settings};
use agent::demo::DemoWorkstation;
use agent::health::SysinfoHealth;
use agent::live::{run_desktop_notice, LiveWatcher};
use agent::mdns::Advert;
use agent::periodic::run_periodic_screenshots;
use agent::recorder::{record_demo_history, DesktopSource, Recorder, Source};
use agent::screen::Screen;
use agent::sensors::session::UtmpSessions;
use agent::sensors::x11::X11Sensors;
use agent::server::{
    quic_server_config, serve, system_time_zone, time_zone_name, AgentInfo, Renewal, Service,
};
use agent::settings::load_deny_list;
use agent::status::{StatusSnapshot, StoreProblem, StreamStatus};
use agent::store::outage::{Notice, Outage};
use agent::store::{Quotas, Store, StoreError};
use agent::tracker::Now;
use agent::{clock, IDENTITY_FILE, STORE_DIR};
use anyhow::{anyhow, bail, Context, Result};
use certs::enrol::EnrolmentCode;
use certs::AgentIdentity;
use clap::builder::TypedValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use protocol::{Policy, StreamKind};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{oneshot, watch};

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Enrols this workstation: with a code from `smarttracker-console
    /// enrolment open` (a key made here, certified by the console), or
    /// with a bundle made by `smarttracker-certs agent` (air-gapped).
    #[command(group(clap::ArgGroup::new("how").required(true).args(["code", "bundle"])))]
    Enroll {
        /// The enrolment code the console printed.
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
        /// The console's enrolment address; without it, found over mDNS.
        #[arg(long, value_name = "HOST:PORT", requires = "code")]
        console: Option<String>,
        /// How long to look for the console over mDNS.
        #[arg(long, value_name = "SECS", default_value_t = 10, requires = "code",
              value_parser = clap::value_parser!(u64).range(1..=600))]
        mdns_secs: u64,
        /// The name this workstation takes in the console's inventory
        /// (default: its host name).
        #[arg(long, value_name = "NAME", requires = "code")]
        name: Option<String>,
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
        #[command(flatten)]
        place: Place,
    },
    /// Records activity and serves it to authenticated consoles.
    Run(RunFlags),
    /// Shows what this agent collects, holds, and who read it.
    Status {
        #[command(flatten)]
        place: Place,
        #[arg(long)]
        json: bool,
    },
    /// Checks the settings file, or prints a commented one with every
    /// default.
    Config {
        /// The settings file to check.
        #[arg(long, value_name = "PATH", default_value = config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Print the commented example (every key at its default) instead.
        #[arg(long)]
        print_default: bool,
    },
}

/// Where the settings file and the data directory are.
#[derive(Debug, Args)]
struct Place {
    /// The settings file (TOML). A missing file is fine unless it was
    /// given here.
    #[arg(long, value_name = "PATH", default_value = config::DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// The data directory (identity, store, status). Default: `data_dir`
    /// in the settings file, else $XDG_DATA_HOME/smarttracker-agent, else
    /// $HOME/.local/share/smarttracker-agent.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

/// `run`'s flags. Each wins over the settings file, which wins over the
/// defaults shown.
#[derive(Debug, Args)]
struct RunFlags {
    #[command(flatten)]
    place: Place,
    #[arg(long, default_value_t = config::DEFAULT_LISTEN)]
    listen: SocketAddr,
    #[arg(long, value_enum, default_value_t = Sensors::X11)]
    sensors: Sensors,
    /// Do not advertise over mDNS (consoles then need a static peer).
    #[arg(long)]
    no_mdns: bool,
    /// Seed of the simulated workstation (demo sensors only).
    #[arg(long, default_value_t = config::DEFAULT_DEMO_SEED,
          value_parser = clap::value_parser!(u64).range(config::DEMO_SEED.range_u64()))]
    demo_seed: u64,
    /// Days of simulated history to record on first start (demo only).
    #[arg(long, default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(config::DEMO_HISTORY_DAYS.range()))]
    demo_history_days: u32,
    /// OS users of the simulated workstation, comma-separated, in the
    /// order they take the seat each day (demo only) [default: demo].
    #[arg(long, value_name = "USERS")]
    demo_users: Option<config::DemoUsers>,
    /// A live view ends this long after the console last renewed it.
    #[arg(long, default_value_t = agent::live::DEFAULT_LEASE_SECS,
          value_parser = clap::value_parser!(u32).range(config::LIVE_LEASE_SECS.range()))]
    live_lease_secs: u32,
    #[command(flatten)]
    limits: LimitFlags,
}

/// The server's limits against misbehaving consoles (`ServerLimits`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits against misbehaving consoles")]
struct LimitFlags {
    /// Connections at once from every console, handshakes included.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.max_connections,
          value_parser = clap::value_parser!(u16).range(config::MAX_CONNECTIONS.range()).map(usize::from))]
    max_connections: usize,
    /// Connections at once from one console (one certificate).
    #[arg(long, default_value_t = ServerLimits::DEFAULT.max_connections_per_console,
          value_parser = clap::value_parser!(u16).range(config::MAX_CONNECTIONS_PER_CONSOLE.range()).map(usize::from))]
    max_connections_per_console: usize,
    /// Handshakes in flight at once from one IP address.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.max_handshakes_per_ip,
          value_parser = clap::value_parser!(u16).range(config::MAX_HANDSHAKES_PER_IP.range()).map(usize::from))]
    max_handshakes_per_ip: usize,
    /// A handshake not finished this long after it started is dropped.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.handshake_timeout_ms,
          value_parser = clap::value_parser!(u64).range(config::TIMEOUT_MS.range_u64()))]
    handshake_timeout_ms: u64,
    /// A connection without a whole request this long after its handshake
    /// is closed.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.first_request_timeout_ms,
          value_parser = clap::value_parser!(u64).range(config::TIMEOUT_MS.range_u64()))]
    first_request_timeout_ms: u64,
    /// A request frame not whole this long after its stream opened is reset.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.request_timeout_ms,
          value_parser = clap::value_parser!(u64).range(config::TIMEOUT_MS.range_u64()))]
    request_timeout_ms: u64,
    /// A response not taken by the console within this long is reset.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.response_timeout_ms,
          value_parser = clap::value_parser!(u64).range(config::TIMEOUT_MS.range_u64()))]
    response_timeout_ms: u64,
    /// A connection with no request for this long is closed, keep-alives or not.
    #[arg(long, default_value_t = ServerLimits::DEFAULT.request_idle_timeout_ms,
          value_parser = clap::value_parser!(u64).range(config::REQUEST_IDLE_TIMEOUT_MS.range_u64()))]
    request_idle_timeout_ms: u64,
}

/// `value` if it was given on the command line; `None` leaves it to the
/// settings file, then to the default (clap fills in defaults too, so
/// only the value's source tells).
fn given<T>(matches: &ArgMatches, id: &str, value: T) -> Option<T> {
    (matches.value_source(id) == Some(ValueSource::CommandLine)).then_some(value)
}

impl RunFlags {
    /// What the command line says, as one settings layer.
    fn settings(self, matches: &ArgMatches) -> Settings {
        let limits = self.limits;
        Settings {
            data_dir: self.place.data,
            listen: given(matches, "listen", self.listen),
            sensors: given(matches, "sensors", self.sensors),
            mdns: given(matches, "no_mdns", false),
            live_lease_secs: given(matches, "live_lease_secs", self.live_lease_secs),
            demo_seed: given(matches, "demo_seed", self.demo_seed),
            demo_history_days: given(matches, "demo_history_days", self.demo_history_days),
            demo_users: self.demo_users,
            limits: LimitSettings {
                max_connections: given(matches, "max_connections", limits.max_connections),
                max_connections_per_console: given(
                    matches,
                    "max_connections_per_console",
                    limits.max_connections_per_console,
                ),
                max_handshakes_per_ip: given(
                    matches,
                    "max_handshakes_per_ip",
                    limits.max_handshakes_per_ip,
                ),
                handshake_timeout_ms: given(
                    matches,
                    "handshake_timeout_ms",
                    limits.handshake_timeout_ms,
                ),
                first_request_timeout_ms: given(
                    matches,
                    "first_request_timeout_ms",
                    limits.first_request_timeout_ms,
                ),
                request_timeout_ms: given(matches, "request_timeout_ms", limits.request_timeout_ms),
                response_timeout_ms: given(
                    matches,
                    "response_timeout_ms",
                    limits.response_timeout_ms,
                ),
                request_idle_timeout_ms: given(
                    matches,
                    "request_idle_timeout_ms",
                    limits.request_idle_timeout_ms,
                ),
            },
        }
    }
}

/// The settings in force: `flags` over the settings file at `config_path`
/// over the defaults.
fn resolve(config_path: &Path, matches: &ArgMatches, flags: Settings) -> Result<Config> {
    let explicit = given(matches, "config", ()).is_some();
    let file = config::load(config_path, explicit)?.unwrap_or_default();
    let default_data_dir = config::xdg_data_dir(
        std::env::var_os("XDG_DATA_HOME").as_deref(),
        std::env::var_os("HOME").as_deref(),
    );
    Ok(flags.over(file).resolve(default_data_dir)?)
}

/// The settings in force for a command that needs only the data directory.
fn resolve_place(place: Place, matches: &ArgMatches) -> Result<Config> {
    let flags = Settings {
        data_dir: place.data,
        ..Settings::default()
    };
    resolve(&place.config, matches, flags)
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SMARTTRACKER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let Some((_, command_matches)) = matches.subcommand() else {
        // clap requires a subcommand: `get_matches` exited without one.
        return std::process::ExitCode::FAILURE;
    };
    match run_cli(cli, command_matches) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `cli`; `matches` are its subcommand's (where each value came from).
fn run_cli(cli: Cli, matches: &ArgMatches) -> Result<()> {
    match cli.command {
        Command::Enroll {
            code,
            console,
            mdns_secs,
            name,
            bundle,
            place,
        } => {
            let data = resolve_place(place, matches)?.data_dir;
            match (code, bundle) {
                (Some(code), _) => enroll_by_code(
                    &code,
                    console.as_deref(),
                    Duration::from_secs(mdns_secs),
                    name,
                    &data,
                ),
                (None, Some(bundle)) => enroll(&bundle, &data),
                (None, None) => {
                    bail!("give --code CODE (or --bundle FILE for an air-gapped workstation)")
                }
            }
        }
        Command::Status { place, json } => {
            let snapshot = StatusSnapshot::read(&resolve_place(place, matches)?.data_dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&snapshot)?);
            } else {
                print!("{}", snapshot.render(clock::wall_now_ms()));
            }
            Ok(())
        }
        Command::Config {
            config: path,
            print_default,
        } => {
            if print_default {
                print!("{}", config::EXAMPLE);
                return Ok(());
            }
            let explicit = given(matches, "config", ()).is_some();
            match config::load(&path, explicit)? {
                Some(_) => println!("{}: ok", path.display()),
                None => println!("{}: no such file; the defaults apply", path.display()),
            }
            Ok(())
        }
        Command::Run(flags) => {
            let config_path = flags.place.config.clone();
            let options = resolve(&config_path, matches, flags.settings(matches))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(run(options))
        }
    }
}

fn enroll(bundle: &Path, data: &Path) -> Result<()> {
    let identity = AgentIdentity::read_bundle(bundle)?;
    install_identity(&identity, data)
}

/// Enrols with a console's code: the key is made here and only its
/// public half leaves; the identity is written only once certified.
fn enroll_by_code(
    code: &str,
    console: Option<&str>,
    mdns: Duration,
    name: Option<String>,
    data: &Path,
) -> Result<()> {
    let code: EnrolmentCode = code.parse()?;
    refuse_enrolled(data)?;
    let consoles: Vec<SocketAddr> = match console {
        Some(console) => console
            .to_socket_addrs()
            .with_context(|| {
                format!("cannot resolve the console address {console:?}; give HOST:PORT")
            })?
            .collect(),
        None => {
            eprintln!("looking for the console over mDNS ({} s)…", mdns.as_secs());
            agent::enrol::browse(&code, mdns)?
        }
    };
    let hostname = name
        .unwrap_or_else(|| sysinfo::System::host_name().unwrap_or_else(|| "unknown".to_owned()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let identity = runtime.block_on(agent::enrol::enrol(&code, &consoles, &hostname))?;
    install_identity(&identity, data)
}

fn refuse_enrolled(data: &Path) -> Result<()> {
    let target = data.join(IDENTITY_FILE);
    if target.exists() {
        bail!(
            "{} already holds an enrolled identity; use another --data directory or remove it to re-enrol",
            target.display()
        );
    }
    Ok(())
}

fn install_identity(identity: &AgentIdentity, data: &Path) -> Result<()> {
    refuse_enrolled(data)?;
    let target = data.join(IDENTITY_FILE);
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

/// How often acked records past retention are deleted.
const PRUNE_INTERVAL_MS: u64 = 10 * 60 * 1000;
/// How long stopping may take after SIGTERM or SIGINT: past it (or at a
/// second signal) the process exits without its final flush. Below
/// systemd's `TimeoutStopSec` (15 s), above the server's 5 s drain.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(8);

/// Meta key recording which source a store holds data from.
const SOURCE_META: &str = "source";

async fn run(options: Config) -> Result<()> {
    let (signal_tx, signal_rx) = oneshot::channel();
    watch_signals(signal_tx)?;
    let identity_path = options.data_dir.join(IDENTITY_FILE);
    let identity = AgentIdentity::read_bundle(&identity_path).with_context(|| {
        format!(
            "not enrolled: run `smarttracker-agent enroll --bundle FILE --data {}` first",
            options.data_dir.display()
        )
    })?;
    let store = Arc::new(Store::open(
        &options.data_dir.join(STORE_DIR),
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
            options.data_dir.join(STORE_DIR).display(),
            String::from_utf8_lossy(&existing)
        ),
    };
    let policy = agent::settings::load_policy(&store)?;
    let user = match options.sensors {
        Sensors::Demo => options.demo_users.names()[0].clone(),
        Sensors::X11 => std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned()),
    };
    // A demo agent stands for a simulated workstation: its enrolment name,
    // not the real machine's.
    let hostname = match (options.sensors, &identity.name) {
        (Sensors::Demo, Some(name)) => name.clone(),
        _ => sysinfo::System::host_name().unwrap_or_else(|| "unknown".to_owned()),
    };
    // Read once: the hello names it, demo employees keep its hours.
    let zone = system_time_zone();
    let demo_zone = zone.clone().unwrap_or(jiff::tz::TimeZone::UTC);
    let mut source: Box<dyn Source> = match options.sensors {
        Sensors::X11 => Box::new(DesktopSource {
            x11: X11Sensors::connect(None)?,
            health: SysinfoHealth::default(),
            sessions: UtmpSessions::system(),
        }),
        Sensors::Demo => Box::new(
            DemoWorkstation::in_zone(options.demo_seed, demo_zone.clone())
                .with_users(options.demo_users.names()),
        ),
    };
    let backfill_days = match options.sensors {
        Sensors::Demo if fresh_store => options.demo_history_days,
        _ => 0,
    };

    let deny = load_deny_list(&store, &identity.ca_cert_der)?;
    let endpoint = certs::transport::server_endpoint(
        options.listen,
        quic_server_config(&identity, deny.clone())?,
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
    let service = Arc::new(
        Service::new(
            AgentInfo {
                agent_id: identity.agent_id,
                hostname: hostname.clone(),
                demo: source.is_demo(),
                time_zone: time_zone_name(zone.as_ref()),
                team: certs::tls::agent_team(&identity.cert_der)
                    .context("the agent certificate names an invalid team; enrol again")?,
            },
            store.clone(),
            policy.clone(),
            screen.clone(),
            options.live_lease_secs,
        )
        .with_revocation(identity.ca_cert_der.to_vec(), deny)
        .with_renewal(Renewal::new(
            identity_path.clone(),
            identity.name.clone(),
            endpoint.clone(),
        )),
    );
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
            store_problem: None,
        },
        store: store.clone(),
        data_dir: options.data_dir.clone(),
        watchers: watchers_rx,
    };
    let mut writer = StoreWriter {
        store: store.clone(),
        outage: Outage::default(),
        status,
    };
    let recorder = std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || -> Result<()> {
            let stop_requested = || !matches!(stop_rx.try_recv(), Err(mpsc::TryRecvError::Empty));
            if backfill_days > 0 {
                tracing::info!(days = backfill_days, "recording simulated demo history");
                let mut demo = DemoWorkstation::in_zone(options.demo_seed, demo_zone)
                    .with_users(options.demo_users.names());
                let store = writer.store.clone();
                let recorded = record_demo_history(
                    &store,
                    &mut demo,
                    &policy,
                    &user,
                    backfill_days,
                    clock::wall_now_ms(),
                    &mut || {
                        writer.commit(clock::now(), &policy, None, true);
                        if stop_requested() {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    },
                );
                if recorded.is_break() {
                    return writer.finish(clock::now(), &policy, None);
                }
            }
            let mut recorder = Recorder::new(writer.store.clone(), policy, &user, clock::now());
            let mut next_prune_ms = clock::steady_now_ms();
            loop {
                if policy_rx.has_changed().unwrap_or(false) {
                    recorder.apply_policy(policy_rx.borrow_and_update().clone());
                }
                let now = clock::now();
                recorder.step(now, source.as_mut());
                writer.commit(
                    now,
                    recorder.policy(),
                    recorder.last_sensor_error.clone(),
                    false,
                );
                if now.steady_ms >= next_prune_ms && writer.outage.episode().is_none() {
                    // Only what a console acked and what is past retention.
                    match writer
                        .store
                        .prune(now.wall_ms, &recorder.policy().retention)
                    {
                        Ok(pruned) => tracing::debug!(?pruned, "pruned"),
                        Err(prune_error) => {
                            tracing::warn!(%prune_error, "prune failed; tried again later")
                        }
                    }
                    next_prune_ms = now.steady_ms + PRUNE_INTERVAL_MS;
                }
                match stop_rx.recv_timeout(Duration::from_secs(1)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            let now = clock::now();
            recorder.finish(now);
            writer.finish(now, recorder.policy(), recorder.last_sensor_error.clone())
        })
        .context("cannot start the recorder thread")?;

    // The recorder ends only when told to, unless it panicked.
    tokio::select! {
        _ = signal_rx => {}
        _ = wait_for_thread(&recorder) => {}
    };
    tracing::info!("shutting down");
    // The recorder's final flush runs while the server drains.
    let _ = stop_tx.send(());
    let _ = shutdown_tx.send(true);
    let _ = server.await;
    let _ = periodic.await;
    // The server (and its watchers sender) is gone: the notice closes.
    let _ = notice.await;
    match recorder.join() {
        Ok(result) => result,
        Err(_) => bail!("the recorder thread panicked"),
    }
}

/// Listens for SIGTERM and SIGINT on a thread and runtime of their own, so
/// nothing that blocks the main runtime or the store can delay them. The
/// first signal tells `run` to stop (`stop`); if the process still runs
/// [`SHUTDOWN_DEADLINE`] later, or at a second signal, it exits at once
/// without its final flush: sled then recovers what was stored at the next
/// start, as after a crash.
fn watch_signals(stop: oneshot::Sender<()>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    let (mut terminate, mut interrupt) = {
        let _entered = runtime.enter();
        (
            signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        )
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let second_signal = runtime.block_on(async {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
                let _ = stop.send(());
                tokio::select! {
                    _ = tokio::time::sleep(SHUTDOWN_DEADLINE) => false,
                    _ = terminate.recv() => true,
                    _ = interrupt.recv() => true,
                }
            });
            let why = if second_signal {
                "a second signal came".to_owned()
            } else {
                format!(
                    "stopping took longer than {} s",
                    SHUTDOWN_DEADLINE.as_secs()
                )
            };
            eprintln!(
                "error: {why}; exiting without the final flush (what was stored is recovered at the next start)"
            );
            std::process::exit(1);
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// Writes what the recorder holds into the store: at every step while
/// writes work, on the [`Outage`] retry schedule while they fail. Tells the
/// log once when an outage begins, starts dropping and ends, and keeps the
/// status snapshot saying what is wrong and what to do.
struct StoreWriter {
    store: Arc<Store>,
    outage: Outage,
    status: StatusWriter,
}

impl StoreWriter {
    fn commit(
        &mut self,
        now: Now,
        policy: &Policy,
        last_sensor_error: Option<String>,
        backfilling: bool,
    ) {
        if self.outage.due(now) {
            let held = self.store.held();
            let notice = match self.store.flush() {
                Ok(_) => self.outage.succeeded(now, held),
                Err(store_error) => {
                    // Only for space: an I/O error that persists would
                    // restart the agent every second.
                    if let StoreError::NeedsRestart { cause, .. } = &store_error {
                        if cause.is_space() {
                            tracing::error!("{store_error}; restarting now");
                            let exec_error = restart();
                            tracing::error!(%exec_error, "cannot restart the agent");
                        }
                    }
                    self.outage
                        .failed(now, store_error.to_string(), self.store.held())
                }
            };
            self.tell(notice);
        }
        let notice = self.outage.held(self.store.held());
        self.tell(notice);
        self.status
            .write(policy, last_sensor_error, backfilling, self.problem());
    }

    /// The last write before the process ends, whatever the schedule.
    /// What cannot be written is saved for the next start if there is room
    /// for that; an error says how many records were neither.
    fn finish(
        mut self,
        now: Now,
        policy: &Policy,
        last_sensor_error: Option<String>,
    ) -> Result<()> {
        let held = self.store.held();
        let flushed = self.store.flush();
        let notice = match &flushed {
            Ok(_) => self.outage.succeeded(now, held),
            Err(store_error) => self
                .outage
                .failed(now, store_error.to_string(), self.store.held()),
        };
        self.tell(notice);
        self.status
            .write(policy, last_sensor_error, false, self.problem());
        let Err(store_error) = flushed else {
            tracing::info!("stopped; everything recorded is stored");
            return Ok(());
        };
        let saved = match &store_error {
            StoreError::NeedsRestart { records, .. } => Ok(*records),
            _ => self.store.spill_held(),
        };
        match saved {
            Ok(records) => {
                tracing::warn!(
                    "stopping with {records} records the store could not write ({store_error}); they are saved and written at the next start"
                );
                Ok(())
            }
            Err(spill_error) => Err(anyhow!(
                "stopping with {} records held that could not be written ({store_error}) nor saved ({spill_error}); the next start records their loss as a gap",
                self.store.held().records
            )),
        }
    }

    fn problem(&self) -> Option<StoreProblem> {
        let episode = self.outage.episode()?;
        let held = self.store.held();
        Some(StoreProblem {
            message: episode.problem.clone(),
            since_ms: episode.since_wall_ms,
            held_records: held.records,
            held_limit_per_stream: self.store.quotas().held_records,
            dropped_records: episode.dropped(held),
        })
    }

    fn tell(&self, notice: Option<Notice>) {
        match notice {
            None => {}
            Some(Notice::Began { .. }) => {
                if let Some(problem) = self.problem() {
                    tracing::error!("{}", problem.line());
                }
            }
            Some(Notice::Overflowing { dropped }) => tracing::warn!(
                "the store still cannot write and holds {} records per stream at most: the oldest now give way to gap markers ({dropped} so far)",
                self.store.quotas().held_records
            ),
            Some(Notice::Ended {
                lasted_ms,
                written_records,
                dropped,
            }) => tracing::warn!(
                "the store writes again after {} s: {written_records} held records written, {dropped} had given way to gap markers",
                lasted_ms / 1000
            ),
        }
    }
}

/// Replaces this process with a new run of the same command line (same
/// pid, so a supervisor sees nothing): the way out of a broken sled
/// database, whose file lock this process cannot release. What the store
/// held is saved in its `held.bin`, which the new run takes back. Returns
/// only if the exec failed.
fn restart() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    // The running binary, even if it was replaced on disk since.
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    command.args(args).exec()
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
    fn write(
        &self,
        policy: &Policy,
        last_sensor_error: Option<String>,
        backfilling: bool,
        store_problem: Option<StoreProblem>,
    ) {
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
            store_problem,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The `run` flags of `args`, as the settings layer they make.
    fn run_settings(args: &[&str]) -> Settings {
        let matches = Cli::command()
            .try_get_matches_from(["smarttracker-agent", "run"].iter().chain(args))
            .expect("valid command line");
        let cli = Cli::from_arg_matches(&matches).expect("parsed");
        let (_, run_matches) = matches.subcommand().expect("a subcommand");
        let Command::Run(flags) = cli.command else {
            panic!("run");
        };
        flags.settings(run_matches)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_left_out_leave_every_setting_to_the_file() {
        assert_eq!(run_settings(&[]), Settings::default());
    }

    #[test]
    fn every_flag_given_is_a_setting_even_at_its_default_value() {
        let settings = run_settings(&[
            "--data",
            "/tmp/agent",
            "--listen",
            "0.0.0.0:47100",
            "--sensors",
            "x11",
            "--no-mdns",
            "--demo-seed",
            "1",
            "--demo-history-days",
            "0",
            "--live-lease-secs",
            "15",
            "--max-connections",
            "5",
            "--max-connections-per-console",
            "6",
            "--max-handshakes-per-ip",
            "7",
            "--handshake-timeout-ms",
            "1001",
            "--first-request-timeout-ms",
            "1002",
            "--request-timeout-ms",
            "1003",
            "--response-timeout-ms",
            "1004",
            "--request-idle-timeout-ms",
            "1005",
        ]);
        assert_eq!(
            settings,
            Settings {
                data_dir: Some(PathBuf::from("/tmp/agent")),
                listen: Some(config::DEFAULT_LISTEN),
                sensors: Some(Sensors::X11),
                mdns: Some(false),
                live_lease_secs: Some(15),
                demo_seed: Some(1),
                demo_history_days: Some(0),
                demo_users: None,
                limits: LimitSettings {
                    max_connections: Some(5),
                    max_connections_per_console: Some(6),
                    max_handshakes_per_ip: Some(7),
                    handshake_timeout_ms: Some(1001),
                    first_request_timeout_ms: Some(1002),
                    request_timeout_ms: Some(1003),
                    response_timeout_ms: Some(1004),
                    request_idle_timeout_ms: Some(1005),
                },
            }
        );
    }

    #[test]
    fn flags_outside_the_shared_bounds_are_refused() {
        for (flag, bounds) in [
            ("--live-lease-secs", config::LIVE_LEASE_SECS),
            ("--demo-history-days", config::DEMO_HISTORY_DAYS),
            ("--max-connections", config::MAX_CONNECTIONS),
            (
                "--max-connections-per-console",
                config::MAX_CONNECTIONS_PER_CONSOLE,
            ),
            ("--max-handshakes-per-ip", config::MAX_HANDSHAKES_PER_IP),
            ("--handshake-timeout-ms", config::TIMEOUT_MS),
            ("--request-idle-timeout-ms", config::REQUEST_IDLE_TIMEOUT_MS),
        ] {
            for value in [bounds.min - 1, bounds.max + 1] {
                let refused = Cli::command().try_get_matches_from([
                    "smarttracker-agent",
                    "run",
                    flag,
                    &value.to_string(),
                ]);
                assert!(refused.is_err(), "{flag} {value} accepted");
            }
            for value in [bounds.min, bounds.max] {
                let settings = run_settings(&[flag, &value.to_string()]);
                assert_ne!(settings, Settings::default(), "{flag} {value}");
            }
        }
    }
}
