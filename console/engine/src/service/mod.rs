//! The GUI's engine: a tokio runtime (two workers) that owns the store, the
//! syncer, the categoriser and the live-view client, syncs in the
//! background (every [`EngineConfig::sync_interval`], else the settings'
//! `sync_interval_secs`, and on demand),
//! computes each screen's [`ViewData`] off the UI thread, takes and opens
//! screenshots (decrypted and decoded here), and talks to the window only
//! through channels: [`Command`]s in, [`Event`]s out, with a wake-up
//! request each time an event lands. Nothing here draws; nothing in the UI
//! does I/O.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use certs::{ConsoleIdentity, Role};
use protocol::{Policy, Request, Response, UnixMillis};
use tokio::sync::mpsc;

use crate::categories::{self, Categorisation, Categoriser, RulePattern};
use crate::commands::{self, CliOutput, CliRequest, CommandContext, Output};
use crate::discovery;
use crate::export::Format;
use crate::live::{LiveClient, LiveMode, LiveUpdate, LiveWatch, WatchChanges};
use crate::model::{AgentId, DayClock};
use crate::reach::Addresses;
use crate::settings::{ConsoleSettings, SettingsError};
use crate::store::{AuditEntry, ConsoleStore, ScreenshotKey, ScreenshotMeta, ShotSource};
use crate::sync::{AgentSession, Backoff, Outcome, SyncConfig, SyncError, Syncer};
use crate::views::{self, Period, ViewContext, ViewData, ViewRequest};

mod enrolment;
pub mod socket;

pub use enrolment::{
    DoneEnrolment, EnrolmentCommand, EnrolmentEnd, EnrolmentOpen, EnrolmentStatus, OpenEnrolment,
    PendingRequest, APPROVAL_WAIT,
};

/// How long one mDNS browse of a sync pass lasts.
pub const MDNS_BROWSE: Duration = Duration::from_secs(2);
/// A cached view is recomputed after this long even without new data
/// (online states and "ago" texts move with time).
pub const VIEW_MAX_AGE: Duration = Duration::from_secs(30);
/// How long closing the window waits for live sessions to end (so each
/// workstation's notice goes away at once rather than at its time-out).
pub const LIVE_STOP_WAIT: Duration = Duration::from_secs(3);

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the engine's runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The settings cannot be read (`console.toml` names its bad line).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("the engine has stopped")]
    Stopped,
}

/// How the engine runs.
#[derive(Debug)]
pub struct EngineConfig {
    pub store: Arc<ConsoleStore>,
    /// Without an identity the console shows what it stored but cannot sync.
    pub identity: Option<ConsoleIdentity>,
    /// Browse mDNS on each sync pass.
    pub mdns: bool,
    /// Whether the engine syncs in the background (a window, `serve`),
    /// or only runs what it is asked (a command line in its own process).
    pub background: bool,
    /// A command-line flag's pause between background syncs; `None`: the
    /// settings' `sync_interval_secs`.
    pub sync_interval: Option<Duration>,
    /// Shown in messages (e.g. where the identity is expected).
    pub data_dir: PathBuf,
}

/// Where the engine's events go: to the window of this process (see
/// [`Engine::try_recv`]) or, in `serve`, to every attached window.
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// What the window (and the command line) asks of the engine.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// Runs a sync pass now (unless one is running).
    Sync,
    /// Computes (or returns the cached) data of a screen.
    View(ViewRequest),
    /// Stores the settings that changed, audited; rebuilds the categoriser
    /// if its rules or labels changed.
    SaveSettings(Box<ConsoleSettings>),
    /// Adds the exact rules to the labelled examples and retrains.
    Retrain,
    /// Tells how an app name is categorised and by what.
    Categorise(String),
    /// Reads an agent's current policy over QUIC.
    FetchPolicy(AgentId),
    /// Sends `policy` (with the next revision of each) to every target.
    ApplyPolicy {
        targets: Vec<AgentId>,
        policy: Policy,
    },
    /// Writes the attendance lines to `path` (the window asks where).
    ExportAttendance {
        agent: Option<AgentId>,
        period: Period,
        path: PathBuf,
    },
    /// Watches exactly these agents live (empty: nobody); ignored without
    /// an identity.
    Live(LiveWatch),
    /// Captures the agent's screen at full resolution and stores it
    /// (encrypted, on demand).
    TakeScreenshot(AgentId),
    /// Decrypts and decodes a stored screenshot for display.
    OpenScreenshot(ScreenshotKey),
    /// Runs a command of the command line: [`Event::Output`]s, then one
    /// [`Event::Finished`].
    Run(CliRequest),
    /// Opens, decides on or closes the enrolment this engine hosts.
    Enrolment(EnrolmentCommand),
}

/// The result of one sync pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncSummary {
    pub finished_ms: UnixMillis,
    pub synced_agents: usize,
    pub stored_records: u64,
    /// One line per address that did not sync.
    pub problems: Vec<String>,
    /// This console's own certificate: expired, not yet valid, or
    /// expiring within 30 days, with what to do.
    pub certificate: Option<String>,
}

/// What the engine tells the window (and the command line).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// The settings as stored (at start and after each save).
    Settings(Box<ConsoleSettings>),
    /// Categories the categoriser can give.
    Categories(Vec<String>),
    /// Sync cannot run: no identity.
    SyncUnavailable(String),
    SyncStarted,
    SyncFinished(SyncSummary),
    /// Stored data or settings changed: views shown are stale.
    DataChanged,
    /// The site's clock: at start and after a zone change (once its day
    /// totals are regrouped). `warning` says why it is UTC when the
    /// machine's zone could not be read.
    Clock {
        clock: DayClock,
        warning: Option<String>,
    },
    /// Day totals are being regrouped in a new zone: `done` of `total`
    /// workstations.
    Regrouping {
        done: usize,
        total: usize,
    },
    View {
        request: ViewRequest,
        data: Arc<ViewData>,
    },
    Policy {
        agent: AgentId,
        result: Result<Policy, String>,
    },
    PolicyApplied {
        agent: AgentId,
        name: String,
        result: Result<u64, String>,
    },
    Exported {
        path: PathBuf,
        rows: u64,
    },
    Retrained {
        labelled_rows: usize,
    },
    Categorised {
        app: String,
        result: Categorisation,
    },
    /// News of a live watch.
    Live(LiveUpdate),
    /// A screenshot taken on demand is stored.
    ScreenshotTaken {
        name: String,
        meta: ScreenshotMeta,
    },
    ScreenshotFailed {
        agent: AgentId,
        name: String,
        error: String,
    },
    /// A stored screenshot, decoded (downscaled to a texture's limit).
    ScreenshotImage {
        key: ScreenshotKey,
        result: Result<Arc<crate::live::RgbaImage>, String>,
    },
    Error(String),
    /// A piece of the output of a [`Command::Run`].
    Output(CliOutput),
    /// The [`Command::Run`] ended: `Err` holds what the person reads.
    Finished(Result<(), String>),
    /// The enrolment this engine hosts: open (code, pending, enrolled) or
    /// how the last one ended.
    Enrolment(Box<EnrolmentStatus>),
    /// After each sync pass: the alerts nobody acknowledged or muted, and
    /// those that just opened (not muted ones only) with their
    /// workstation's name.
    Alerts {
        unread: usize,
        opened: Vec<(crate::alerts::Alert, String)>,
    },
}

/// Called after each event lands (the window repaints).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Whom to wake when an event lands.
#[derive(Default)]
struct Repaint(Mutex<Option<Waker>>);

impl std::fmt::Debug for Repaint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Repaint")
    }
}

impl Repaint {
    fn request(&self) {
        let waker = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(waker) = waker {
            waker();
        }
    }
}

/// The engine: owns the runtime; dropping it stops everything.
#[derive(Debug)]
pub struct Engine {
    runtime: Option<tokio::runtime::Runtime>,
    handle: EngineHandle,
    /// `None` when events go to another sink ([`Engine::start_with_sink`]).
    events: Option<Mutex<std::sync::mpsc::Receiver<Event>>>,
    repaint: Arc<Repaint>,
    live: Option<Arc<LiveClient>>,
}

/// What talks to a running engine: sends commands, runs the command
/// line's requests. Cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct EngineHandle {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineHandle")
    }
}

impl EngineHandle {
    pub fn send(&self, command: Command) {
        // The loop lives as long as the runtime.
        let _ = self.commands.send(command);
    }

    /// The console's role, `None` without an identity.
    pub fn role(&self) -> Option<Role> {
        self.shared.syncer.as_ref().map(|syncer| syncer.role())
    }

    /// The site calendar of the store.
    pub fn day_clock(&self) -> DayClock {
        self.shared.store.day_clock()
    }

    /// The settings as the engine holds them.
    pub fn settings(&self) -> ConsoleSettings {
        self.shared.settings()
    }

    /// The pause between background syncs; `None` without background work.
    pub fn sync_interval(&self) -> Option<Duration> {
        self.shared.sync_interval
    }

    /// Runs a command of the command line; its output goes to `output`.
    pub async fn execute(&self, request: CliRequest, output: Output) -> Result<(), String> {
        execute(&self.shared, request, output).await
    }
}

/// Runs a command of the command line against the engine's store, syncer
/// and categoriser.
async fn execute(shared: &Arc<Shared>, request: CliRequest, output: Output) -> Result<(), String> {
    let shared = shared.clone();
    let context = CommandContext {
        store: shared.store.clone(),
        syncer: shared
            .syncer
            .clone()
            .ok_or_else(|| missing_identity(&shared.data_dir)),
        settings: shared.settings(),
        data_dir: shared.data_dir.clone(),
        actor: shared.actor.clone(),
    };
    let changes_data = request.changes_data();
    let ready = shared.clone();
    let categoriser = async move { ready.categoriser_ready().await };
    let result = commands::execute(context, categoriser, request, output)
        .await
        .map_err(|error| error.to_string());
    // Windows show the change at once, whoever made it.
    if changes_data {
        shared.data_changed();
    }
    result
}

/// The engine a window talks to: in this process, or a running `serve`.
#[derive(Debug)]
pub enum Link {
    InProcess(Engine),
    Attached(socket::RemoteEngine),
}

impl Link {
    pub fn send(&self, command: Command) {
        match self {
            Link::InProcess(engine) => engine.send(command),
            Link::Attached(remote) => remote.send(command),
        }
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        match self {
            Link::InProcess(engine) => engine.try_recv(),
            Link::Attached(remote) => remote.try_recv(),
        }
    }

    /// Calls `waker` whenever an event lands.
    pub fn set_waker(&self, waker: Waker) {
        match self {
            Link::InProcess(engine) => engine.set_waker(waker),
            Link::Attached(remote) => remote.set_waker(waker),
        }
    }

    /// The console's role, `None` without an identity.
    pub fn role(&self) -> Option<Role> {
        match self {
            Link::InProcess(engine) => engine.role(),
            Link::Attached(remote) => remote.welcome().role,
        }
    }

    /// The site calendar of the store.
    pub fn day_clock(&self) -> DayClock {
        match self {
            Link::InProcess(engine) => engine.handle.day_clock(),
            Link::Attached(remote) => remote.welcome().day_clock.clone(),
        }
    }
}

/// What a console without an identity is told.
pub fn missing_identity(data_dir: &std::path::Path) -> String {
    let dir = data_dir.join(crate::IDENTITY_DIR);
    format!(
        "no console identity in {}: create one with `smarttracker-certs console --site SITE --role admin --name NAME --out {}`",
        dir.display(),
        dir.display()
    )
}

struct CachedView {
    generation: u64,
    computed: Instant,
    data: Arc<ViewData>,
}

struct Shared {
    store: Arc<ConsoleStore>,
    syncer: Option<Arc<Syncer>>,
    live: Option<Arc<LiveClient>>,
    actor: String,
    mdns: bool,
    sync_interval: Option<Duration>,
    data_dir: PathBuf,
    categoriser: RwLock<Option<Arc<Categoriser>>>,
    settings: Mutex<ConsoleSettings>,
    events: EventSink,
    generation: AtomicU64,
    syncing: AtomicBool,
    /// Addresses that failed are retried later and later (periodic passes
    /// only; "Sync now" tries everything).
    backoff: Mutex<Backoff>,
    cache: Mutex<HashMap<ViewRequest, CachedView>>,
    enrolments: enrolment::Enrolments,
}

impl Engine {
    /// Starts the runtime and the background loop; events wait for
    /// [`Engine::try_recv`].
    pub fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        let (event_tx, event_rx) = std::sync::mpsc::channel();
        let repaint = Arc::new(Repaint::default());
        let wake = repaint.clone();
        let sink: EventSink = Arc::new(move |event| {
            let _ = event_tx.send(event);
            wake.request();
        });
        let mut engine = Engine::start_with_sink(config, sink)?;
        engine.events = Some(Mutex::new(event_rx));
        engine.repaint = repaint;
        Ok(engine)
    }

    /// Starts the runtime and the background loop; events go to `sink`.
    pub fn start_with_sink(config: EngineConfig, sink: EventSink) -> Result<Engine, EngineError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("console-engine")
            .enable_all()
            .build()?;
        let settings = ConsoleSettings::load(&config.store)?;
        let sync_interval = config.background.then(|| {
            config
                .sync_interval
                .unwrap_or(Duration::from_secs(settings.sync_interval_secs))
        });
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (actor, syncer) = match config.identity {
            Some(identity) => {
                let actor = format!("{} ({})", identity.name, identity.console_id);
                let syncer = Syncer::new(identity, config.store.clone(), SyncConfig::default());
                (actor, Some(Arc::new(syncer)))
            }
            None => ("console".to_owned(), None),
        };
        let live = syncer.as_ref().map(|syncer| {
            let events = sink.clone();
            Arc::new(LiveClient::new(
                syncer.clone(),
                config.store.clone(),
                Arc::new(move |update| events(Event::Live(update))),
                crate::clock::wall_now_ms,
            ))
        });
        let shared = Arc::new(Shared {
            store: config.store,
            syncer,
            live: live.clone(),
            actor,
            mdns: config.mdns,
            sync_interval,
            data_dir: config.data_dir,
            categoriser: RwLock::new(None),
            settings: Mutex::new(settings),
            events: sink,
            generation: AtomicU64::new(0),
            syncing: AtomicBool::new(false),
            backoff: Mutex::new(Backoff::default()),
            cache: Mutex::new(HashMap::new()),
            enrolments: enrolment::Enrolments::default(),
        });
        if config.background && shared.syncer.is_none() {
            shared.emit(Event::SyncUnavailable(
                shared
                    .data_dir
                    .join(crate::IDENTITY_DIR)
                    .display()
                    .to_string(),
            ));
        }
        let handle = EngineHandle {
            commands: command_tx,
            shared: shared.clone(),
        };
        runtime.spawn(run(shared, command_rx, sync_interval));
        Ok(Engine {
            runtime: Some(runtime),
            handle,
            events: None,
            repaint: Arc::new(Repaint::default()),
            live,
        })
    }

    /// The console's role, `None` without an identity.
    pub fn role(&self) -> Option<Role> {
        self.handle.role()
    }

    /// What talks to this engine from other threads and tasks.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Runs a command of the command line to its end, from a thread
    /// outside the engine's runtime.
    pub fn run_command(&self, request: CliRequest, output: Output) -> Result<(), String> {
        self.block_on(self.handle.execute(request, output))
            .unwrap_or_else(|error| Err(error.to_string()))
    }

    /// Runs `future` to its end on the engine's runtime, from a thread
    /// outside it (`serve`'s main thread).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> Result<F::Output, EngineError> {
        match &self.runtime {
            Some(runtime) => Ok(runtime.block_on(future)),
            None => Err(EngineError::Stopped),
        }
    }

    /// Calls `waker` whenever an event lands (the first waker set stays).
    pub fn set_waker(&self, waker: Waker) {
        let mut slot = self
            .repaint
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(waker);
        }
    }

    pub fn send(&self, command: Command) {
        self.handle.send(command);
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        let events = self.events.as_ref()?;
        events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_recv()
            .ok()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // block_on cannot run inside another runtime (a tokio test).
            let outside_runtime = tokio::runtime::Handle::try_current().is_err();
            if let Some(live) = self.live.as_ref().filter(|_| outside_runtime) {
                let ending = live.stop_all();
                runtime.block_on(async {
                    let _ = tokio::time::timeout(LIVE_STOP_WAIT, async {
                        for task in ending {
                            let _ = task.await;
                        }
                    })
                    .await;
                });
            }
            // Agents waiting on the pending list are declined at once.
            self.handle.shared.enrolments.close();
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Shared {
    fn emit(&self, event: Event) {
        (self.events)(event);
    }

    /// The categoriser, trained (or loaded) now if it is not yet.
    async fn categoriser_ready(self: &Arc<Self>) -> Result<Arc<Categoriser>, String> {
        if let Some(categoriser) = self.categoriser() {
            return Ok(categoriser);
        }
        rebuild_categoriser(self).await?;
        self.categoriser()
            .ok_or_else(|| "the categories could not be loaded".to_owned())
    }

    fn settings(&self) -> ConsoleSettings {
        self.settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn categoriser(&self) -> Option<Arc<Categoriser>> {
        self.categoriser
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks every cached view stale and tells the window.
    /// Tells the window the store's clock, and why it is UTC if the
    /// machine's zone could not be read.
    fn emit_clock(&self) {
        let (_, source) = crate::settings::site_clock(&self.settings().time_zone);
        let warning = match source {
            crate::model::ZoneSource::Fallback { reason } => Some(reason),
            crate::model::ZoneSource::Configured | crate::model::ZoneSource::System => None,
        };
        self.emit(Event::Clock {
            clock: self.store.day_clock(),
            warning,
        });
    }

    fn data_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.emit(Event::DataChanged);
    }

    fn audit(&self, action: &str, target: &str, detail: String) {
        let entry = AuditEntry {
            at_ms: crate::clock::wall_now_ms(),
            actor: self.actor.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
        };
        if let Err(error) = self.store.audit(entry) {
            self.emit(Event::Error(format!("cannot write the audit log: {error}")));
        }
    }
}

async fn run(
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    sync_interval: Option<Duration>,
) {
    let background = sync_interval.is_some();
    if background {
        shared.emit(Event::Settings(Box::new(shared.settings())));
        shared.emit_clock();
        let _ = rebuild_categoriser(&shared).await;
    }
    let period = sync_interval.unwrap_or(Duration::from_secs(3600));
    let mut ticker = tokio::time::interval(period.max(Duration::from_secs(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let can_sync = background && shared.syncer.is_some();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => handle(&shared, command),
                None => break,
            },
            _ = ticker.tick(), if can_sync => start_sync(&shared, true),
        }
    }
}

fn handle(shared: &Arc<Shared>, command: Command) {
    let shared = shared.clone();
    match command {
        Command::Enrolment(command) => {
            tokio::spawn(enrolment::handle(shared, command));
        }
        Command::Sync => start_sync(&shared, false),
        Command::View(request) => {
            tokio::spawn(async move { view(&shared, request).await });
        }
        Command::SaveSettings(settings) => {
            tokio::spawn(async move { save_settings(&shared, *settings).await });
        }
        Command::Retrain => {
            tokio::spawn(async move {
                let mut settings = shared.settings();
                for rule in &settings.category_rules {
                    if let RulePattern::Exact(app) = &rule.pattern {
                        let label = (app.clone(), rule.category.clone());
                        if !settings.category_labels.contains(&label) {
                            settings.category_labels.push(label);
                        }
                    }
                }
                let labelled_rows = settings.category_labels.len();
                save_settings(&shared, settings).await;
                let _ = rebuild_categoriser(&shared).await;
                shared.emit(Event::Retrained { labelled_rows });
            });
        }
        Command::Categorise(app) => {
            if let Some(categoriser) = shared.categoriser() {
                let result = categoriser.categorise(&app);
                shared.emit(Event::Categorised { app, result });
            }
        }
        Command::FetchPolicy(agent) => {
            tokio::spawn(async move {
                let result = fetch_policy(&shared, agent).await;
                shared.emit(Event::Policy { agent, result });
            });
        }
        Command::ApplyPolicy { targets, policy } => {
            tokio::spawn(async move {
                for agent in targets {
                    apply_policy(&shared, agent, policy.clone()).await;
                }
                shared.data_changed();
            });
        }
        Command::ExportAttendance {
            agent,
            period,
            path,
        } => {
            tokio::spawn(async move { export_attendance(&shared, agent, period, path).await });
        }
        Command::Live(watch) => {
            if let Some(live) = &shared.live {
                let changes = live.set(&watch);
                audit_live(&shared, &changes);
            }
        }
        Command::TakeScreenshot(agent) => {
            tokio::spawn(async move { take_screenshot(&shared, agent).await });
        }
        Command::Run(request) => {
            tokio::spawn(async move {
                let sink = shared.clone();
                let output: Output = Arc::new(move |piece| sink.emit(Event::Output(piece)));
                let result = execute(&shared, request, output).await;
                shared.emit(Event::Finished(result));
            });
        }
        Command::OpenScreenshot(key) => {
            tokio::spawn(async move {
                let store = shared.store.clone();
                let result = blocking(move || {
                    let jpeg = store
                        .screenshot_jpeg(key)
                        .map_err(|error| error.to_string())?;
                    crate::live::decode_image(&jpeg, crate::live::MAX_TEXTURE_SIDE_PX)
                        .map(Arc::new)
                        .map_err(|error| error.to_string())
                })
                .await;
                shared.emit(Event::ScreenshotImage { key, result });
            });
        }
    }
}

fn mode_text(mode: LiveMode) -> String {
    let spec = mode.spec();
    let name = match mode {
        LiveMode::Single => "single view",
        LiveMode::Grid => "grid",
    };
    format!(
        "{name}, up to {}x{}, a frame every {} ms",
        spec.max_width,
        spec.max_height,
        mode.interval_ms()
    )
}

/// One audit entry per watch started or stopped.
fn audit_live(shared: &Shared, changes: &WatchChanges) {
    for (agent, mode) in &changes.started {
        shared.audit("live-view-start", &agent.to_string(), mode_text(*mode));
    }
    for (agent, mode) in &changes.stopped {
        shared.audit("live-view-stop", &agent.to_string(), mode_text(*mode));
    }
}

/// The inventory name of `agent` (its id if unknown).
async fn agent_name(shared: &Arc<Shared>, agent: AgentId) -> String {
    let store = shared.store.clone();
    blocking(move || store.agent(agent).map_err(|error| error.to_string()))
        .await
        .ok()
        .flatten()
        .map_or_else(|| agent.to_string(), |record| record.name)
}

/// Captures the agent's screen at full resolution and stores it.
async fn take_screenshot(shared: &Arc<Shared>, agent: AgentId) {
    let name = agent_name(shared, agent).await;
    let result = async {
        let Some(syncer) = shared.syncer.clone() else {
            return Err("no console identity: screenshots cannot be taken".to_owned());
        };
        let session = open_session(shared, &syncer, agent).await?;
        let request = Request::Screenshot(crate::live::SCREENSHOT_SPEC);
        let answer = session.ask(&request).await;
        session.close(b"request done");
        match answer {
            Ok(Response::Image(image)) => {
                let store = shared.store.clone();
                blocking(move || {
                    store
                        .put_screenshot(agent, ShotSource::OnDemand, &image)
                        .map_err(|error| error.to_string())
                })
                .await
            }
            Ok(_) => Err(SyncError::Unexpected("screenshot").to_string()),
            Err(error) => Err(error.to_string()),
        }
    }
    .await;
    match result {
        Ok(meta) => {
            shared.emit(Event::ScreenshotTaken { name, meta });
            shared.data_changed();
        }
        Err(error) => {
            shared.audit(
                "screenshot",
                &agent.to_string(),
                format!("on demand, not taken: {error}"),
            );
            shared.emit(Event::ScreenshotFailed { agent, name, error });
        }
    }
}

/// Runs `work` through [`crate::blocking`]; a panic there becomes an
/// error text.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    crate::blocking::blocking(work, |join_error| {
        format!("background task failed: {join_error}")
    })
    .await
}

/// Loads (or trains) the categoriser the settings call for; the error is
/// also told to the window.
async fn rebuild_categoriser(shared: &Arc<Shared>) -> Result<(), String> {
    let settings = shared.settings();
    let store = shared.store.clone();
    let built = blocking(move || {
        categories::load_or_train(&store, settings.category_rules, &settings.category_labels)
            .map_err(|error| error.to_string())
    })
    .await;
    match built {
        Ok((categoriser, _provenance)) => {
            shared.emit(Event::Categories(categoriser.categories()));
            *shared
                .categoriser
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(categoriser));
            shared.data_changed();
        }
        Err(error) => {
            let error = format!("categories: {error}");
            shared.emit(Event::Error(error.clone()));
            return Err(error);
        }
    }
    Ok(())
}

async fn view(shared: &Arc<Shared>, request: ViewRequest) {
    let generation = shared.generation.load(Ordering::SeqCst);
    let cached = shared
        .cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&request)
        .filter(|cached| {
            cached.generation == generation && cached.computed.elapsed() < VIEW_MAX_AGE
        })
        .map(|cached| cached.data.clone());
    if let Some(data) = cached {
        shared.emit(Event::View { request, data });
        return;
    }
    // Views wait for the categoriser (trained once at start).
    let Some(categoriser) = shared.categoriser() else {
        return;
    };
    let settings = shared.settings();
    let store = shared.store.clone();
    let task_request = request.clone();
    let computed = blocking(move || {
        let context = ViewContext {
            categoriser: &categoriser,
            settings: &settings,
            now_ms: crate::clock::wall_now_ms(),
        };
        views::compute(&store, &task_request, context).map_err(|error| error.to_string())
    })
    .await;
    match computed {
        Ok(data) => {
            let data = Arc::new(data);
            shared
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    request.clone(),
                    CachedView {
                        generation,
                        computed: Instant::now(),
                        data: data.clone(),
                    },
                );
            shared.emit(Event::View { request, data });
        }
        Err(error) => shared.emit(Event::Error(error)),
    }
}

/// Regroups the store's day totals in the zone `time_zone` names (the
/// window shows the progress), then tells the window the new clock; views
/// reflow with the data-changed signal that follows.
async fn regroup(shared: &Arc<Shared>, time_zone: &str) {
    let (clock, _) = crate::settings::site_clock(time_zone);
    let store = shared.store.clone();
    let events = shared.events.clone();
    let zone = clock.name().to_owned();
    let regrouped = blocking(move || {
        store
            .set_day_clock(clock, |done, total| {
                events(Event::Regrouping { done, total });
            })
            .map_err(|error| error.to_string())
    })
    .await;
    match regrouped {
        Ok(()) => shared.audit("regroup-days", &zone, "day totals regrouped".to_owned()),
        Err(error) => shared.emit(Event::Error(error)),
    }
    shared.emit_clock();
}

async fn save_settings(shared: &Arc<Shared>, settings: ConsoleSettings) {
    let before = shared.settings();
    let store = shared.store.clone();
    let to_save = settings.clone();
    let saved = blocking(move || {
        to_save
            .save_changes(&before, &store)
            .map_err(|error| error.to_string())
    })
    .await;
    match saved {
        Ok(changed) => {
            *shared
                .settings
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = settings.clone();
            if changed.is_empty() {
                return;
            }
            shared.audit("settings", &changed.join(","), "changed".to_owned());
            let zone_changed = changed.contains(&crate::config::TIME_ZONE_KEY);
            shared.emit(Event::Settings(Box::new(settings.clone())));
            if zone_changed {
                regroup(shared, &settings.time_zone).await;
            }
            if changed.iter().any(|key| {
                *key == crate::settings::CATEGORY_RULES_KEY
                    || *key == crate::settings::CATEGORY_LABELS_KEY
            }) {
                let _ = rebuild_categoriser(shared).await;
            } else {
                shared.data_changed();
            }
        }
        Err(error) => {
            shared.emit(Event::Error(error));
            // The window shows what is saved, not what was refused.
            shared.emit(Event::Settings(Box::new(shared.settings())));
        }
    }
}

fn start_sync(shared: &Arc<Shared>, periodic: bool) {
    let Some(syncer) = shared.syncer.clone() else {
        return;
    };
    if shared.syncing.swap(true, Ordering::SeqCst) {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        shared.emit(Event::SyncStarted);
        let summary = sync_pass(&shared, &syncer, periodic).await;
        shared.syncing.store(false, Ordering::SeqCst);
        shared.emit(Event::SyncFinished(summary));
        evaluate_alerts(&shared).await;
        shared.data_changed();
    });
}

/// The alert rules over what the pass brought; tells the windows.
async fn evaluate_alerts(shared: &Arc<Shared>) {
    let (store, actor) = (shared.store.clone(), shared.actor.clone());
    let evaluated = blocking(move || {
        crate::alerts::run(
            &store,
            &crate::alerts::AlertRules::default(),
            crate::clock::wall_now_ms(),
            &actor,
        )
        .map_err(|error| error.to_string())
    })
    .await;
    match evaluated {
        Ok(evaluated) => {
            let opened = evaluated
                .transitions
                .iter()
                .filter_map(|transition| match transition {
                    crate::alerts::Transition::Opened(alert) if !alert.muted => {
                        Some((alert.clone(), evaluated.name_of(alert.agent)))
                    }
                    _ => None,
                })
                .collect();
            shared.emit(Event::Alerts {
                unread: evaluated.unread,
                opened,
            });
        }
        Err(error) => tracing::warn!(%error, "alert rules not evaluated"),
    }
}

async fn sync_pass(shared: &Arc<Shared>, syncer: &Arc<Syncer>, periodic: bool) -> SyncSummary {
    let settings = shared.settings();
    let mut problems = Vec::new();
    let now_ms = crate::clock::wall_now_ms();
    let certificate = syncer
        .certificate_problem(now_ms)
        .or_else(|| syncer.certificate_warning(now_ms));
    let store = shared.store.clone();
    let mut candidates =
        match blocking(move || store.agents().map_err(|error| error.to_string())).await {
            Ok(agents) => discovery::known_candidates(&settings.peer_addrs(), &agents),
            Err(error) => {
                problems.push(error);
                discovery::known_candidates(&settings.peer_addrs(), &[])
            }
        };
    if shared.mdns {
        match discovery::browse_off_thread(MDNS_BROWSE).await {
            Ok(found) => candidates.extend(found),
            Err(error) => problems.push(error),
        }
    }
    let mut candidates = discovery::merge(candidates);
    if periodic {
        let backoff = shared
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        candidates = backoff.due(candidates, crate::clock::wall_now_ms());
    }
    let outcomes = syncer.sync_all(candidates).await;
    shared
        .backoff
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .record(&outcomes, crate::clock::wall_now_ms());
    let mut summary = SyncSummary {
        finished_ms: crate::clock::wall_now_ms(),
        synced_agents: 0,
        stored_records: 0,
        problems,
        certificate,
    };
    for outcome in outcomes {
        match outcome {
            Outcome::Synced { .. } => {
                summary.synced_agents += 1;
                summary.stored_records += outcome.stored_records();
            }
            Outcome::Faulty { .. } => {
                summary.stored_records += outcome.stored_records();
                if let Outcome::Faulty {
                    addr,
                    fault,
                    reason,
                    ..
                } = outcome
                {
                    summary
                        .problems
                        .push(format!("{addr}: {}: {reason}", fault.describe()));
                }
            }
            Outcome::Unknown { addr, reason, .. }
            | Outcome::Refused { addr, reason, .. }
            | Outcome::Unreachable { addr, reason, .. } => {
                summary.problems.push(format!("{addr}: {reason}"));
            }
        }
    }
    summary
}

const NO_ADDRESS: &str = "no known address yet: wait for a sync";

/// A verified session with `agent` (see [`crate::reach`]): its remembered
/// addresses, then the static peers; the telling failure in words.
async fn open_session(
    shared: &Arc<Shared>,
    syncer: &Syncer,
    agent: AgentId,
) -> Result<AgentSession, String> {
    let store = shared.store.clone();
    let record = blocking(move || store.agent(agent).map_err(|error| error.to_string()))
        .await?
        .ok_or_else(|| format!("agent {agent} is not in the inventory"))?;
    let addresses = Addresses {
        static_peers: shared.settings().peer_addrs(),
        ..Addresses::default()
    };
    match crate::reach::open_session(syncer, &record, &addresses).await {
        Ok((session, _)) => Ok(session),
        Err(unreached) => Err(unreached
            .into_error()
            .map_or_else(|| NO_ADDRESS.to_owned(), |error| error.to_string())),
    }
}

/// The agent's policy, asked on `session`.
async fn get_policy(session: &AgentSession) -> Result<Policy, String> {
    match session.ask(&Request::GetPolicy).await {
        Ok(Response::Policy(policy)) => Ok(policy),
        Ok(_) => Err(SyncError::Unexpected("get-policy").to_string()),
        Err(error) => Err(error.to_string()),
    }
}

/// The agent's policy.
async fn fetch_policy(shared: &Arc<Shared>, agent: AgentId) -> Result<Policy, String> {
    let Some(syncer) = shared.syncer.clone() else {
        return Err("no console identity: policies cannot be read".to_owned());
    };
    let session = open_session(shared, &syncer, agent).await?;
    let policy = get_policy(&session).await;
    session.close(b"request done");
    policy
}

async fn apply_policy(shared: &Arc<Shared>, agent: AgentId, mut policy: Policy) {
    let name = agent_name(shared, agent).await;
    let result = async {
        let Some(syncer) = shared.syncer.clone() else {
            return Err("no console identity: policies cannot be read".to_owned());
        };
        // Read and written on one session: the revision follows the one
        // just read, from the same agent.
        let session = open_session(shared, &syncer, agent).await?;
        let applied = async {
            let current = get_policy(&session).await?;
            policy.revision = current.revision.saturating_add(1);
            match session.ask(&Request::SetPolicy(policy)).await {
                Ok(Response::Policy(applied)) => Ok(applied.revision),
                Ok(_) => Err(SyncError::Unexpected("set-policy").to_string()),
                Err(error) => Err(error.to_string()),
            }
        }
        .await;
        session.close(b"request done");
        applied
    }
    .await;
    let detail = match &result {
        Ok(revision) => format!("revision {revision}"),
        Err(error) => format!("refused: {error}"),
    };
    shared.audit("set-policy", &agent.to_string(), detail);
    shared.emit(Event::PolicyApplied {
        agent,
        name,
        result,
    });
}

async fn export_attendance(
    shared: &Arc<Shared>,
    agent: Option<AgentId>,
    period: Period,
    path: PathBuf,
) {
    let Some(categoriser) = shared.categoriser() else {
        shared.emit(Event::Error("categories are still loading".to_owned()));
        return;
    };
    let settings = shared.settings();
    let store = shared.store.clone();
    let out_path = path.clone();
    let written = blocking(move || {
        let context = ViewContext {
            categoriser: &categoriser,
            settings: &settings,
            now_ms: crate::clock::wall_now_ms(),
        };
        let request = ViewRequest::Attendance { agent, period };
        let ViewData::Attendance(view) =
            views::compute(&store, &request, context).map_err(|error| error.to_string())?
        else {
            return Err("attendance view expected".to_owned());
        };
        let file = std::fs::File::create(&out_path)
            .map_err(|error| format!("cannot create {}: {error}", out_path.display()))?;
        crate::export::write_attendance(&view.lines, Format::Csv, file)
            .map_err(|error| format!("cannot write {}: {error}", out_path.display()))
    })
    .await;
    match written {
        Ok(rows) => {
            shared.audit(
                "export",
                "attendance",
                format!("{rows} rows to {}", path.display()),
            );
            shared.emit(Event::Exported { path, rows });
            shared.data_changed();
        }
        Err(error) => shared.emit(Event::Error(error)),
    }
}
