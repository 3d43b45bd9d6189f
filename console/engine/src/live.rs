//! The live view's client. A pure core, [`LiveBoard`]: which agents are
//! watched, in which [`LiveMode`], each one's [`LiveState`] and newest
//! frame. A thin async shell, [`LiveClient`]: one tokio task per watched
//! agent that opens a session, asks frame after frame (the agent paces
//! them), starts a new session when the old one lapsed, backs off on
//! errors, and ends the session (`LiveStop`, then close) when the agent is
//! no longer watched. Frames are decoded off the UI thread; the newest
//! replaces the older, nothing is ever queued.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protocol::{
    CaptureSpec, CapturedImage, ErrorCode, LiveSession, LiveStart, Request, Response, UnixMillis,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::model::AgentId;
use crate::reach::Addresses;
use crate::store::ConsoleStore;
use crate::sync::{SyncError, Syncer};

/// Largest side of a decoded image handed to the GUI (a texture's limit).
pub const MAX_TEXTURE_SIDE_PX: u32 = 2048;
/// Largest side of an image the decoder accepts from a peer.
pub const MAX_DECODED_SIDE_PX: u32 = 16_384;
/// Most memory the decoder may take for one image.
pub const MAX_DECODE_ALLOC_BYTES: u64 = 512 * 1024 * 1024;
/// A frame is late when no answer came for twice the interval plus this.
pub const STALE_GRACE_MS: i64 = 5_000;
/// How long a stopping task waits for the agent to confirm `LiveStop`.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// First wait after an error; doubles up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// Lapsed sessions restarted in a row without a frame before the client
/// reconnects instead.
const MAX_RESTARTS_WITHOUT_FRAME: u32 = 3;
/// Least time between two frame requests to one agent: an honest agent
/// answers after its interval (≥ 250 ms), so this only holds back one
/// that answers at once, which would otherwise be asked in a tight loop.
pub const MIN_FRAME_ASK_GAP: Duration = Duration::from_millis(250);

/// How an agent is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LiveMode {
    /// One large view (1280x720, about one frame a second).
    Single,
    /// Thumbnails of several agents (320x180, a frame every 5 s each).
    Grid,
}

impl LiveMode {
    /// What the agent captures in this mode.
    pub fn spec(self) -> CaptureSpec {
        match self {
            LiveMode::Single => CaptureSpec {
                monitor: None,
                max_width: 1280,
                max_height: 720,
                quality: 70,
            },
            LiveMode::Grid => CaptureSpec {
                monitor: None,
                max_width: 320,
                max_height: 180,
                quality: 60,
            },
        }
    }

    /// Wished time between two frames.
    pub fn interval_ms(self) -> u32 {
        match self {
            LiveMode::Single => 1_000,
            LiveMode::Grid => 5_000,
        }
    }
}

/// What a screenshot taken on demand captures: the full resolution (the
/// agent clamps to its own limits and never upscales).
pub const SCREENSHOT_SPEC: CaptureSpec = CaptureSpec {
    monitor: None,
    max_width: u16::MAX,
    max_height: u16::MAX,
    quality: 85,
};

/// Names one watch of one agent, so that late news of an earlier watch
/// (another mode, a watch already stopped) is recognised and dropped.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct WatchId(u64);

/// The agents to watch and how; empty = watch nobody.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LiveWatch {
    pub mode: LiveMode,
    pub agents: Vec<(AgentId, WatchId)>,
}

/// A decoded image, 8-bit RGBA (not premultiplied) row by row: what the
/// window turns into a texture.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RgbaImage {
    pub width_px: u32,
    pub height_px: u32,
    pub rgba: Vec<u8>,
}

impl RgbaImage {
    /// `[width, height]` in pixels, as texture APIs take it.
    pub fn size(&self) -> [usize; 2] {
        [self.width_px as usize, self.height_px as usize]
    }
}

impl std::fmt::Debug for RgbaImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbaImage({}x{})", self.width_px, self.height_px)
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveFrame {
    /// When the agent captured it (the agent's clock).
    pub at_ms: UnixMillis,
    /// Size of the image as the agent sent it.
    pub width_px: u32,
    pub height_px: u32,
    pub blurred: bool,
    /// Ready for a texture (downscaled if it exceeded [`MAX_TEXTURE_SIDE_PX`]).
    pub image: Arc<RgbaImage>,
}

/// Where the watch of one agent stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveState {
    /// Opening the connection and the session.
    Connecting,
    /// Frames arrive; the newest was captured at `at_ms`.
    Live { at_ms: UnixMillis },
    /// The agent answers that the screen has not changed since the frame
    /// shown, captured at `at_ms`.
    Unchanged { at_ms: UnixMillis },
    /// The session ended (agent unreachable, connection lost, bad
    /// answer); the client tries again after a pause.
    Lost { reason: String },
    /// The agent refused (a viewer console, a wrong identity); no retry.
    Refused { reason: String },
}

/// What a watch task reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum UpdateKind {
    Connecting,
    /// A session is open; frames follow every `interval_ms`.
    Started {
        interval_ms: u32,
    },
    Frame {
        frame: LiveFrame,
        interval_ms: u32,
    },
    Unchanged {
        interval_ms: u32,
    },
    Lost(String),
    Refused(String),
}

/// News of one watch of one agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveUpdate {
    pub agent: AgentId,
    pub watch: WatchId,
    /// When the console received it (the console's clock).
    pub received_ms: UnixMillis,
    pub kind: UpdateKind,
}

/// The watch of one agent as the board knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentLive {
    pub watch: WatchId,
    pub state: LiveState,
    /// The newest frame; kept through unchanged answers, errors and mode
    /// changes (its capture time is always shown with it).
    pub frame: Option<LiveFrame>,
    /// Counts frames received, so a texture knows when to refresh.
    pub frame_serial: u64,
    /// Time between frames the agent keeps to.
    pub interval_ms: u32,
    /// When the last answer (frame or "unchanged") arrived.
    pub last_reply_ms: Option<UnixMillis>,
}

impl AgentLive {
    fn new(watch: WatchId, mode: LiveMode) -> AgentLive {
        AgentLive {
            watch,
            state: LiveState::Connecting,
            frame: None,
            frame_serial: 0,
            interval_ms: mode.interval_ms(),
            last_reply_ms: None,
        }
    }

    /// Whether the agent should have answered by `now_ms` and did not: the
    /// frame shown may be old.
    pub fn is_stale(&self, now_ms: UnixMillis) -> bool {
        let live = matches!(
            self.state,
            LiveState::Live { .. } | LiveState::Unchanged { .. }
        );
        let late_after_ms = 2 * i64::from(self.interval_ms) + STALE_GRACE_MS;
        live && self
            .last_reply_ms
            .is_none_or(|reply_ms| now_ms - reply_ms > late_after_ms)
    }
}

/// The pure core of the live view: who is watched, how, and what came
/// back. No I/O, no clock: times come with the updates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveBoard {
    mode: Option<LiveMode>,
    agents: BTreeMap<AgentId, AgentLive>,
    next_watch: u64,
}

impl LiveBoard {
    /// Watches exactly `agents` in `mode`. Returns the watch to hand to the
    /// client when it changed, `None` when it is already so. An agent kept
    /// in the same mode keeps its watch; a mode change starts new watches
    /// (new capture settings) but keeps the last frames on screen.
    pub fn want(&mut self, mode: LiveMode, agents: &[AgentId]) -> Option<LiveWatch> {
        let unchanged = self.mode == Some(mode)
            && agents.len() == self.agents.len()
            && agents.iter().all(|agent| self.agents.contains_key(agent));
        if unchanged {
            return None;
        }
        let mode_changed = self.mode != Some(mode);
        self.mode = Some(mode);
        let mut previous = std::mem::take(&mut self.agents);
        for &agent in agents {
            if self.agents.contains_key(&agent) {
                continue;
            }
            let entry = match previous.remove(&agent) {
                Some(entry) if !mode_changed => entry,
                Some(entry) => AgentLive {
                    frame: entry.frame,
                    frame_serial: entry.frame_serial,
                    ..AgentLive::new(self.next_watch(), mode)
                },
                None => AgentLive::new(self.next_watch(), mode),
            };
            self.agents.insert(agent, entry);
        }
        Some(self.watch())
    }

    /// Stops every watch. Returns the (empty) watch to hand to the client
    /// when something was watched.
    pub fn stop(&mut self) -> Option<LiveWatch> {
        let mode = self.mode.take()?;
        self.agents.clear();
        Some(LiveWatch {
            mode,
            agents: Vec::new(),
        })
    }

    /// Applies a task's news; returns false (and changes nothing) when it
    /// is about a watch that is no longer current.
    pub fn apply(&mut self, update: LiveUpdate) -> bool {
        let Some(entry) = self.agents.get_mut(&update.agent) else {
            return false;
        };
        if entry.watch != update.watch {
            return false;
        }
        match update.kind {
            UpdateKind::Connecting => entry.state = LiveState::Connecting,
            UpdateKind::Started { interval_ms } => {
                entry.interval_ms = interval_ms;
                entry.last_reply_ms = Some(update.received_ms);
                entry.state = match &entry.frame {
                    Some(frame) => LiveState::Unchanged { at_ms: frame.at_ms },
                    None => LiveState::Connecting,
                };
            }
            UpdateKind::Frame { frame, interval_ms } => {
                entry.interval_ms = interval_ms;
                entry.last_reply_ms = Some(update.received_ms);
                entry.state = LiveState::Live { at_ms: frame.at_ms };
                entry.frame = Some(frame);
                entry.frame_serial += 1;
            }
            UpdateKind::Unchanged { interval_ms } => {
                entry.interval_ms = interval_ms;
                entry.last_reply_ms = Some(update.received_ms);
                if let Some(frame) = &entry.frame {
                    entry.state = LiveState::Unchanged { at_ms: frame.at_ms };
                }
            }
            UpdateKind::Lost(reason) => entry.state = LiveState::Lost { reason },
            UpdateKind::Refused(reason) => entry.state = LiveState::Refused { reason },
        }
        true
    }

    /// The current mode; `None` when nobody is watched.
    pub fn mode(&self) -> Option<LiveMode> {
        self.mode
    }

    pub fn get(&self, agent: AgentId) -> Option<&AgentLive> {
        self.agents.get(&agent)
    }

    /// Every watched agent.
    pub fn agents(&self) -> impl Iterator<Item = (AgentId, &AgentLive)> {
        self.agents.iter().map(|(agent, entry)| (*agent, entry))
    }

    /// The watch as the client should run it.
    pub fn watch(&self) -> LiveWatch {
        LiveWatch {
            mode: self.mode.unwrap_or(LiveMode::Grid),
            agents: self
                .agents
                .iter()
                .map(|(agent, entry)| (*agent, entry.watch))
                .collect(),
        }
    }

    fn next_watch(&mut self) -> WatchId {
        self.next_watch += 1;
        WatchId(self.next_watch)
    }
}

/// What a watch task does after an agent's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// The session lapsed: start a new one on the same connection.
    Restart,
    /// The agent will not show its screen to this console: stop.
    GiveUp,
    /// Anything else: close, wait, connect again.
    Retry,
}

/// How a watch task reacts to `error`.
pub fn reaction(error: &SyncError) -> Reaction {
    match error {
        SyncError::Agent(ErrorCode::NotFound, _) => Reaction::Restart,
        SyncError::Agent(
            ErrorCode::Forbidden | ErrorCode::BadRequest | ErrorCode::UnsupportedVersion,
            _,
        )
        | SyncError::WrongAgent { .. } => Reaction::GiveUp,
        _ => Reaction::Retry,
    }
}

/// Waits between attempts: [`RETRY_FIRST`], doubling to [`RETRY_MAX`],
/// back to the start after a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryDelay {
    failures: u32,
}

impl RetryDelay {
    /// The wait before the next attempt, counting one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let delay = RETRY_FIRST
            .saturating_mul(1u32 << self.failures.min(16))
            .min(RETRY_MAX);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Why an image could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read the image: {0}")]
    Image(#[from] image::ImageError),
    #[error("cannot read the image: {0}")]
    Io(#[from] std::io::Error),
}

/// Decodes a JPEG (or any format the `image` crate was built with) under
/// size and memory limits, downscaled to fit `max_side_px`. Blocking:
/// call it off the UI thread.
pub fn decode_image(bytes: &[u8], max_side_px: u32) -> Result<RgbaImage, DecodeError> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE_PX);
    limits.max_image_height = Some(MAX_DECODED_SIDE_PX);
    limits.max_alloc = Some(MAX_DECODE_ALLOC_BYTES);
    reader.limits(limits);
    let mut decoded = reader.decode()?;
    if decoded.width() > max_side_px || decoded.height() > max_side_px {
        decoded = decoded.resize(
            max_side_px,
            max_side_px,
            image::imageops::FilterType::Triangle,
        );
    }
    let rgba = decoded.to_rgba8();
    Ok(RgbaImage {
        width_px: rgba.width(),
        height_px: rgba.height(),
        rgba: rgba.into_raw(),
    })
}

/// Decodes a captured image into a frame. Blocking.
pub fn decode_frame(image: &CapturedImage) -> Result<LiveFrame, DecodeError> {
    let decoded = decode_image(&image.bytes, MAX_TEXTURE_SIDE_PX)?;
    Ok(LiveFrame {
        at_ms: image.meta.at_ms,
        width_px: image.meta.width,
        height_px: image.meta.height,
        blurred: image.meta.blurred,
        image: Arc::new(decoded),
    })
}

/// Where the client's news goes (the engine forwards it to the window).
pub type UpdateSink = Arc<dyn Fn(LiveUpdate) + Send + Sync>;

struct WatchTask {
    watch: WatchId,
    mode: LiveMode,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// What [`LiveClient::set`] changed, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchChanges {
    pub started: Vec<(AgentId, LiveMode)>,
    pub stopped: Vec<(AgentId, LiveMode)>,
}

/// Runs one task per watched agent.
pub struct LiveClient {
    syncer: Arc<Syncer>,
    store: Arc<ConsoleStore>,
    sink: UpdateSink,
    clock: fn() -> UnixMillis,
    tasks: Mutex<HashMap<AgentId, WatchTask>>,
}

impl std::fmt::Debug for LiveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let watched = self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("LiveClient")
            .field("watched", &watched)
            .finish_non_exhaustive()
    }
}

impl LiveClient {
    /// `clock` stamps updates with their arrival time.
    pub fn new(
        syncer: Arc<Syncer>,
        store: Arc<ConsoleStore>,
        sink: UpdateSink,
        clock: fn() -> UnixMillis,
    ) -> LiveClient {
        LiveClient {
            syncer,
            store,
            sink,
            clock,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Runs exactly the watches of `wanted`: stops the others (each ends
    /// its session), starts the missing ones. Call within the runtime.
    pub fn set(&self, wanted: &LiveWatch) -> WatchChanges {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changes = WatchChanges::default();
        tasks.retain(|agent, task| {
            let keep = wanted
                .agents
                .iter()
                .any(|(wanted_agent, watch)| wanted_agent == agent && *watch == task.watch);
            if !keep {
                task.stop.send_replace(true);
                changes.stopped.push((*agent, task.mode));
            }
            keep
        });
        for &(agent, watch) in &wanted.agents {
            if tasks.contains_key(&agent) {
                continue;
            }
            let (stop, stopped) = watch::channel(false);
            let context = TaskContext {
                syncer: self.syncer.clone(),
                store: self.store.clone(),
                sink: self.sink.clone(),
                clock: self.clock,
                agent,
                watch,
                mode: wanted.mode,
            };
            let handle = tokio::spawn(run_watch(context, stopped));
            tasks.insert(
                agent,
                WatchTask {
                    watch,
                    mode: wanted.mode,
                    stop,
                    handle,
                },
            );
            changes.started.push((agent, wanted.mode));
        }
        changes
    }

    /// Stops every watch; the handles finish once each session has ended
    /// (bounded by [`STOP_TIMEOUT`] per agent).
    pub fn stop_all(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks
            .drain()
            .map(|(_, task)| {
                task.stop.send_replace(true);
                task.handle
            })
            .collect()
    }
}

impl Drop for LiveClient {
    fn drop(&mut self) {
        // Signals every task; each ends its session if the runtime runs on.
        self.stop_all();
    }
}

struct TaskContext {
    syncer: Arc<Syncer>,
    store: Arc<ConsoleStore>,
    sink: UpdateSink,
    clock: fn() -> UnixMillis,
    agent: AgentId,
    watch: WatchId,
    mode: LiveMode,
}

impl TaskContext {
    fn emit(&self, kind: UpdateKind) {
        (self.sink)(LiveUpdate {
            agent: self.agent,
            watch: self.watch,
            received_ms: (self.clock)(),
            kind,
        });
    }
}

/// Resolves once `stop` turned true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// How a session ended.
enum SessionEnd {
    Stopped,
    GaveUp(String),
    Lost(String),
    /// The session answered at least one frame before it was lost.
    LostAfterFrames(String),
}

async fn run_watch(context: TaskContext, mut stop: watch::Receiver<bool>) {
    let mut delay = RetryDelay::default();
    loop {
        context.emit(UpdateKind::Connecting);
        let opened = tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            opened = open(&context) => opened,
        };
        let end = match opened {
            Ok(session) => {
                let end = run_session(&context, &session, &mut stop).await;
                session.close(b"live view over");
                end
            }
            Err(error) if reaction(&error) == Reaction::GiveUp => {
                SessionEnd::GaveUp(error.to_string())
            }
            Err(error) => SessionEnd::Lost(error.to_string()),
        };
        match end {
            SessionEnd::Stopped => return,
            SessionEnd::GaveUp(reason) => {
                context.emit(UpdateKind::Refused(reason));
                return;
            }
            SessionEnd::Lost(reason) => context.emit(UpdateKind::Lost(reason)),
            SessionEnd::LostAfterFrames(reason) => {
                delay.reset();
                context.emit(UpdateKind::Lost(reason));
            }
        }
        let pause = delay.next_delay();
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Connects to the agent at one of its known addresses (see
/// [`crate::reach`]); the telling failure otherwise.
async fn open(context: &TaskContext) -> Result<crate::sync::AgentSession, SyncError> {
    let store = context.store.clone();
    let agent = context.agent;
    let record = crate::blocking::blocking(
        move || store.agent(agent).map_err(SyncError::from),
        |join_error| SyncError::Connect(join_error.to_string()),
    )
    .await?;
    let Some(record) = record else {
        return Err(SyncError::Connect(format!(
            "agent {agent} is not in the inventory"
        )));
    };
    match crate::reach::open_session(&context.syncer, &record, &Addresses::default()).await {
        Ok((session, _)) => Ok(session),
        Err(unreached) => Err(unreached.into_error().unwrap_or_else(|| {
            SyncError::Connect("no known address yet: wait for a sync".to_owned())
        })),
    }
}

/// Starts a session on `session` and asks frames until stopped or lost.
async fn run_session(
    context: &TaskContext,
    session: &crate::sync::AgentSession,
    stop: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let start = Request::LiveStart(LiveStart {
        spec: context.mode.spec(),
        interval_ms: context.mode.interval_ms(),
    });
    let mut answered = false;
    let lost = |answered: bool, reason: String| {
        if answered {
            SessionEnd::LostAfterFrames(reason)
        } else {
            SessionEnd::Lost(reason)
        }
    };
    let mut restarts_without_frame = 0u32;
    'session: loop {
        let started = tokio::select! {
            biased;
            () = stopped(stop) => return SessionEnd::Stopped,
            started = session.ask(&start) => started,
        };
        let session_id = match started {
            Ok(Response::LiveStarted(lease)) => {
                context.emit(UpdateKind::Started {
                    interval_ms: lease.interval_ms,
                });
                lease.session_id
            }
            Ok(_) => return lost(answered, SyncError::Unexpected("live-start").to_string()),
            Err(error) => match reaction(&error) {
                Reaction::GiveUp => return SessionEnd::GaveUp(error.to_string()),
                Reaction::Restart | Reaction::Retry => return lost(answered, error.to_string()),
            },
        };
        let next = Request::LiveFrame(LiveSession { session_id });
        let mut last_ask: Option<tokio::time::Instant> = None;
        loop {
            if let Some(asked) = last_ask {
                tokio::time::sleep_until(asked + MIN_FRAME_ASK_GAP).await;
            }
            last_ask = Some(tokio::time::Instant::now());
            let reply = tokio::select! {
                biased;
                () = stopped(stop) => {
                    end_session(session, session_id).await;
                    return SessionEnd::Stopped;
                }
                reply = session.ask(&next) => reply,
            };
            match reply {
                Ok(Response::LiveFrame(reply)) if reply.session_id == session_id => {
                    answered = true;
                    restarts_without_frame = 0;
                    let interval_ms = reply.interval_ms;
                    let Some(image) = reply.frame else {
                        context.emit(UpdateKind::Unchanged { interval_ms });
                        continue;
                    };
                    let decoded = crate::blocking::blocking(
                        move || decode_frame(&image).map_err(|error| error.to_string()),
                        |join_error| join_error.to_string(),
                    )
                    .await;
                    match decoded {
                        Ok(frame) => context.emit(UpdateKind::Frame { frame, interval_ms }),
                        Err(error) => context.emit(UpdateKind::Lost(error)),
                    }
                }
                Ok(_) => {
                    end_session(session, session_id).await;
                    return lost(answered, SyncError::Unexpected("live-frame").to_string());
                }
                Err(error) => match reaction(&error) {
                    Reaction::Restart if restarts_without_frame < MAX_RESTARTS_WITHOUT_FRAME => {
                        restarts_without_frame += 1;
                        continue 'session;
                    }
                    Reaction::Restart | Reaction::Retry => {
                        return lost(answered, error.to_string())
                    }
                    Reaction::GiveUp => return SessionEnd::GaveUp(error.to_string()),
                },
            }
        }
    }
}

/// Tells the agent the session is over (its notice goes away at once),
/// waiting at most [`STOP_TIMEOUT`].
async fn end_session(session: &crate::sync::AgentSession, session_id: u64) {
    let stop = Request::LiveStop(LiveSession { session_id });
    if let Err(error) = tokio::time::timeout(STOP_TIMEOUT, session.ask(&stop)).await {
        tracing::debug!(%error, "live-stop not confirmed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(n: u128) -> AgentId {
        AgentId::from_u128(n)
    }

    fn frame(at_ms: UnixMillis) -> LiveFrame {
        LiveFrame {
            at_ms,
            width_px: 4,
            height_px: 2,
            blurred: false,
            image: Arc::new(RgbaImage {
                width_px: 4,
                height_px: 2,
                rgba: vec![0; 4 * 2 * 4],
            }),
        }
    }

    fn update(board: &LiveBoard, who: AgentId, received_ms: i64, kind: UpdateKind) -> LiveUpdate {
        LiveUpdate {
            agent: who,
            watch: board.get(who).map_or(WatchId(0), |entry| entry.watch),
            received_ms,
            kind,
        }
    }

    #[test]
    fn wanting_the_same_watch_twice_changes_nothing() {
        let mut board = LiveBoard::default();
        let first = board.want(LiveMode::Grid, &[agent(1), agent(2)]);
        assert_eq!(first.map(|watch| watch.agents.len()), Some(2));
        assert_eq!(board.want(LiveMode::Grid, &[agent(2), agent(1)]), None);
        // One more agent: the two kept their watches.
        let before = board.get(agent(1)).map(|entry| entry.watch);
        let grown = board
            .want(LiveMode::Grid, &[agent(1), agent(2), agent(3)])
            .expect("changed");
        assert_eq!(grown.agents.len(), 3);
        assert_eq!(board.get(agent(1)).map(|entry| entry.watch), before);
    }

    #[test]
    fn a_mode_change_starts_new_watches_but_keeps_the_frame() {
        let mut board = LiveBoard::default();
        board.want(LiveMode::Grid, &[agent(1), agent(2)]);
        let grid_watch = board.get(agent(1)).expect("watched").watch;
        let news = update(
            &board,
            agent(1),
            10,
            UpdateKind::Frame {
                frame: frame(5),
                interval_ms: 5_000,
            },
        );
        assert!(board.apply(news));
        let single = board.want(LiveMode::Single, &[agent(1)]).expect("changed");
        assert_eq!(single.mode, LiveMode::Single);
        let entry = board.get(agent(1)).expect("watched");
        assert_ne!(entry.watch, grid_watch);
        assert_eq!(entry.state, LiveState::Connecting);
        assert_eq!(entry.frame.as_ref().map(|frame| frame.at_ms), Some(5));
        assert!(board.get(agent(2)).is_none());
        // Late news of the grid watch is dropped.
        let late = LiveUpdate {
            agent: agent(1),
            watch: grid_watch,
            received_ms: 20,
            kind: UpdateKind::Frame {
                frame: frame(6),
                interval_ms: 5_000,
            },
        };
        assert!(!board.apply(late));
        assert_eq!(
            board
                .get(agent(1))
                .and_then(|entry| entry.frame.as_ref().map(|f| f.at_ms)),
            Some(5)
        );
    }

    #[test]
    fn states_follow_the_agent_s_answers() {
        let mut board = LiveBoard::default();
        board.want(LiveMode::Single, &[agent(1)]);
        let steps = [
            (
                UpdateKind::Started { interval_ms: 1_000 },
                LiveState::Connecting,
            ),
            (
                UpdateKind::Frame {
                    frame: frame(100),
                    interval_ms: 1_000,
                },
                LiveState::Live { at_ms: 100 },
            ),
            (
                UpdateKind::Unchanged { interval_ms: 2_000 },
                LiveState::Unchanged { at_ms: 100 },
            ),
            (
                UpdateKind::Lost("timed out".to_owned()),
                LiveState::Lost {
                    reason: "timed out".to_owned(),
                },
            ),
            (UpdateKind::Connecting, LiveState::Connecting),
            // A new session after a loss: the old frame stays, marked as
            // not new.
            (
                UpdateKind::Started { interval_ms: 1_000 },
                LiveState::Unchanged { at_ms: 100 },
            ),
            (
                UpdateKind::Refused("viewer console".to_owned()),
                LiveState::Refused {
                    reason: "viewer console".to_owned(),
                },
            ),
        ];
        for (received_ms, (kind, expected)) in (1_000..).step_by(1_000).zip(steps) {
            let news = update(&board, agent(1), received_ms, kind);
            assert!(board.apply(news));
            assert_eq!(
                board.get(agent(1)).map(|entry| &entry.state),
                Some(&expected)
            );
        }
        assert_eq!(board.get(agent(1)).map(|entry| entry.frame_serial), Some(1));
    }

    #[test]
    fn a_frame_is_stale_when_the_agent_stops_answering() {
        let mut board = LiveBoard::default();
        board.want(LiveMode::Single, &[agent(1)]);
        let news = update(
            &board,
            agent(1),
            10_000,
            UpdateKind::Frame {
                frame: frame(9_900),
                interval_ms: 1_000,
            },
        );
        board.apply(news);
        let entry = board.get(agent(1)).expect("watched");
        assert!(!entry.is_stale(10_000 + 2_000 + STALE_GRACE_MS));
        assert!(entry.is_stale(10_000 + 2_001 + STALE_GRACE_MS));
    }

    #[test]
    fn stop_forgets_everyone_once() {
        let mut board = LiveBoard::default();
        assert_eq!(board.stop(), None);
        board.want(LiveMode::Grid, &[agent(1)]);
        let stop = board.stop().expect("something was watched");
        assert!(stop.agents.is_empty());
        assert_eq!(board.stop(), None);
        assert_eq!(board.mode(), None);
        // News of a stopped watch is dropped.
        let late = LiveUpdate {
            agent: agent(1),
            watch: WatchId(1),
            received_ms: 1,
            kind: UpdateKind::Connecting,
        };
        assert!(!board.apply(late));
    }

    #[test]
    fn errors_restart_give_up_or_retry() {
        let cases = [
            (ErrorCode::NotFound, Reaction::Restart),
            (ErrorCode::Forbidden, Reaction::GiveUp),
            (ErrorCode::BadRequest, Reaction::GiveUp),
            (ErrorCode::Busy, Reaction::Retry),
            (ErrorCode::CaptureUnavailable, Reaction::Retry),
            (ErrorCode::Internal, Reaction::Retry),
        ];
        for (code, expected) in cases {
            let error = SyncError::Agent(code, String::new());
            assert_eq!(reaction(&error), expected, "{code:?}");
        }
        assert_eq!(
            reaction(&SyncError::Timeout(Duration::from_secs(1))),
            Reaction::Retry
        );
    }

    #[test]
    fn retries_back_off_to_a_ceiling_and_reset() {
        let mut delay = RetryDelay::default();
        let waits: Vec<u64> = (0..8).map(|_| delay.next_delay().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        delay.reset();
        assert_eq!(delay.next_delay(), RETRY_FIRST);
    }

    #[test]
    fn images_decode_downscaled_and_garbage_is_an_error() {
        let mut jpeg = Vec::new();
        let source = image::RgbImage::from_pixel(400, 100, image::Rgb([200, 10, 10]));
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
            .encode_image(&source)
            .expect("encode");
        let full = decode_image(&jpeg, 1_000).expect("decodes");
        assert_eq!(full.size(), [400, 100]);
        let small = decode_image(&jpeg, 200).expect("decodes");
        assert_eq!(small.size(), [200, 50]);
        assert!(decode_image(b"not an image", 100).is_err());
        assert!(decode_image(&jpeg[..jpeg.len() / 3], 100).is_err());
    }
}
