//! The agent's QUIC service: a listener, a handler per connection and per
//! stream, and a shutdown signal (the mini-redis skeleton).
//!
//! Every connection is mutually authenticated before any byte of it is read
//! (the TLS config requires a site-CA client certificate); every request is
//! authorised by the console's role and written to the access log.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use certs::tls::{console_peer, ConsolePeer};
use certs::transport::{peer_chain, read_message, reject_stream, write_message};
use protocol::{
    negotiate_version, AckReply, CaptureSpec, CapturedImage, Cursor, ErrorCode, ErrorReply,
    HelloReply, LiveFrameReply, LiveSession, LiveStart, Policy, Record, Request, Response,
    StreamKind, MAX_VERSION, MIN_VERSION,
};
use quinn::{Endpoint, Incoming};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::access::{authorize, validate_policy};
use crate::capture::Capture;
use crate::clock::{steady_now_ms, wall_now_ms};
use crate::live::{Asker, Ended, LiveError, LiveSessions, LiveWatcher};
use crate::screen::Screen;
use crate::settings::save_policy;
use crate::store::{AccessEntry, Store, StoreError};

/// Most records one pull returns, whatever the console asks for.
pub const MAX_PULL_RECORDS: u32 = 5_000;
/// Consoles connected at once; more are refused at the handshake.
pub const MAX_CONNECTIONS: usize = 32;
/// How often lapsed live views are ended.
const LIVE_EXPIRY_TICK: Duration = Duration::from_secs(1);
/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the agent says about itself in the hello reply.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub agent_id: Uuid,
    pub hostname: String,
    pub demo: bool,
}

/// State shared by every connection handler.
#[derive(Debug)]
pub struct Service {
    pub info: AgentInfo,
    pub store: Arc<Store>,
    /// Current policy; the recorder watches it.
    pub policy: watch::Sender<Policy>,
    /// The screen, for screenshots and live view.
    pub screen: Arc<Screen>,
    pub live: Mutex<LiveSessions>,
    /// Who watches the screen now; the notice and the status follow it.
    pub watchers: watch::Sender<Vec<LiveWatcher>>,
}

/// The console behind one connection, as its certificate and its hello
/// named it.
#[derive(Debug)]
pub struct Caller {
    pub peer: ConsolePeer,
    /// From the hello; empty before it.
    pub console_name: Mutex<String>,
}

impl Caller {
    pub fn new(peer: ConsolePeer) -> Self {
        Caller {
            peer,
            console_name: Mutex::new(String::new()),
        }
    }

    fn name(&self) -> String {
        self.console_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Service {
    /// A service with nobody watching; subscribe to `policy` and
    /// `watchers` for the recorder, the notice and the status.
    pub fn new(
        info: AgentInfo,
        store: Arc<Store>,
        policy: Policy,
        screen: Arc<Screen>,
        live_lease_secs: u32,
    ) -> Service {
        Service {
            info,
            store,
            policy: watch::channel(policy).0,
            screen,
            live: Mutex::new(LiveSessions::new(live_lease_secs)),
            watchers: watch::channel(Vec::new()).0,
        }
    }

    /// Answers one authenticated, well-formed request and writes it to the
    /// access log. Store work is small (a pull is capped) and runs inline;
    /// captures run on the blocking pool.
    pub async fn handle(&self, caller: &Caller, request: Request) -> Response {
        let peer = &caller.peer;
        let kind = request.kind();
        let (response, detail) = match authorize(peer.role, &request) {
            Err(reason) => (error(ErrorCode::Forbidden, reason.clone()), reason),
            Ok(()) => self.dispatch(caller, request).await,
        };
        let allowed = !matches!(
            response,
            Response::Error(ErrorReply {
                code: ErrorCode::Forbidden,
                ..
            })
        );
        let entry = AccessEntry {
            at_ms: wall_now_ms(),
            console_id: peer.console_id.to_string(),
            console_name: caller.name(),
            role: peer.role.to_string(),
            request: kind.to_owned(),
            detail,
            allowed,
        };
        if let Err(store_error) = self.store.log_access(&entry) {
            tracing::error!(%store_error, "cannot write the access log");
            return error(
                ErrorCode::Internal,
                "the agent cannot write its access log".to_owned(),
            );
        }
        response
    }

    async fn dispatch(&self, caller: &Caller, request: Request) -> (Response, String) {
        let peer = &caller.peer;
        match request {
            Request::Hello(hello) => {
                match negotiate_version(
                    (MIN_VERSION, MAX_VERSION),
                    hello.min_version,
                    hello.max_version,
                ) {
                    Err(mismatch) => (
                        error(ErrorCode::UnsupportedVersion, mismatch.to_string()),
                        mismatch.to_string(),
                    ),
                    Ok(version) => {
                        *caller
                            .console_name
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) =
                            hello.console_name.chars().take(64).collect();
                        let reply = HelloReply {
                            version,
                            agent_id: self.info.agent_id,
                            hostname: self.info.hostname.clone(),
                            demo: self.info.demo,
                            heads: self.store.heads().to_wire(),
                        };
                        (
                            Response::Hello(reply),
                            format!("console {:?} v{version}", hello.console_name),
                        )
                    }
                }
            }
            Request::Pull(pull) => {
                let max_records = pull.max_records.clamp(1, MAX_PULL_RECORDS);
                match self.store.pull(pull.stream, pull.after, max_records) {
                    Ok(batch) => {
                        let detail = format!(
                            "{} after {} → {} records",
                            pull.stream.name(),
                            pull.after.seq,
                            batch.records.len()
                        );
                        (Response::Records(batch), detail)
                    }
                    Err(store_error) => internal(&store_error),
                }
            }
            Request::Ack(ack) => {
                match self
                    .store
                    .ack(ack.stream, ack.upto, &peer.console_id.to_string())
                {
                    Ok(acked) => (
                        Response::Acked(AckReply {
                            stream: ack.stream,
                            acked,
                        }),
                        format!("{} up to {}", ack.stream.name(), ack.upto.seq),
                    ),
                    Err(store_error @ StoreError::StaleEpoch { .. }) => (
                        error(ErrorCode::StaleEpoch, store_error.to_string()),
                        store_error.to_string(),
                    ),
                    Err(
                        store_error @ (StoreError::AckBeyondHead { .. }
                        | StoreError::ConsoleNameTooLong { .. }),
                    ) => (
                        error(ErrorCode::BadRequest, store_error.to_string()),
                        store_error.to_string(),
                    ),
                    Err(store_error) => internal(&store_error),
                }
            }
            Request::GetPolicy => (
                Response::Policy(self.policy.borrow().clone()),
                String::new(),
            ),
            Request::SetPolicy(policy) => {
                let current_revision = self.policy.borrow().revision;
                if let Err(reason) = validate_policy(&policy, current_revision) {
                    return (error(ErrorCode::BadRequest, reason.clone()), reason);
                }
                if let Err(store_error) = save_policy(&self.store, &policy) {
                    return internal(&store_error);
                }
                let detail = format!("revision {}", policy.revision);
                self.policy.send_replace(policy.clone());
                (Response::Policy(policy), detail)
            }
            Request::Screenshot(spec) => self.screenshot(spec).await,
            Request::LiveStart(start) => self.live_start(caller, &start),
            Request::LiveFrame(session) => self.live_frame(caller, session).await,
            Request::LiveStop(session) => self.live_stop(caller, session),
            Request::FetchFrame(cursor) => self.fetch_frame(cursor),
        }
    }

    async fn screenshot(&self, spec: CaptureSpec) -> (Response, String) {
        match self.capture(spec, None).await {
            Ok(Some((capture, _))) => {
                let detail = image_detail(&spec, &capture.image);
                (Response::Image(capture.image), detail)
            }
            Ok(None) => unreachable_unchanged(),
            Err(reason) => (error(ErrorCode::CaptureUnavailable, reason.clone()), reason),
        }
    }

    fn live_start(&self, caller: &Caller, start: &LiveStart) -> (Response, String) {
        let console_id = caller.peer.console_id.to_string();
        let console_name = caller.name();
        let asker = Asker {
            console_id: &console_id,
            console_name: &console_name,
        };
        let session_id = loop {
            let id: u64 = rand::random();
            if id != 0 {
                break id;
            }
        };
        let started =
            self.live_lock()
                .start(session_id, asker, start, wall_now_ms(), steady_now_ms());
        self.publish_watchers();
        match started {
            Ok(lease) => (
                Response::LiveStarted(lease),
                format!(
                    "session {session_id:016x}, every {} ms, monitor {:?}, {}x{}",
                    lease.interval_ms,
                    start.spec.monitor,
                    start.spec.max_width,
                    start.spec.max_height
                ),
            ),
            Err(live_error) => live_failure(&live_error),
        }
    }

    async fn live_frame(&self, caller: &Caller, session: LiveSession) -> (Response, String) {
        let console_id = caller.peer.console_id.to_string();
        let plan =
            match self
                .live_lock()
                .next_frame(session.session_id, &console_id, steady_now_ms())
            {
                Ok(plan) => plan,
                Err(live_error) => return live_failure(&live_error),
            };
        tokio::time::sleep(Duration::from_millis(plan.wait_ms)).await;
        let captured = self.capture(plan.spec, plan.previous_hash).await;
        let taken_ms = steady_now_ms();
        let (frame, new_hash, cost_ms) = match captured {
            Ok(Some((capture, cost_ms))) => {
                let hash = capture.pixel_hash;
                (Some(capture.image), Some(hash), cost_ms)
            }
            Ok(None) => (None, None, 0),
            Err(reason) => return (error(ErrorCode::CaptureUnavailable, reason.clone()), reason),
        };
        let interval =
            self.live_lock()
                .frame_taken(session.session_id, taken_ms, new_hash, cost_ms);
        let Some(interval_ms) = interval else {
            // Stopped or lapsed while this frame was taken.
            return live_failure(&LiveError::NotFound(session.session_id));
        };
        let detail = match &frame {
            Some(image) => format!(
                "session {:016x}: {}x{}, {} bytes",
                session.session_id, image.meta.width, image.meta.height, image.meta.size_bytes
            ),
            None => format!("session {:016x}: unchanged", session.session_id),
        };
        (
            Response::LiveFrame(LiveFrameReply {
                session_id: session.session_id,
                frame,
                interval_ms,
            }),
            detail,
        )
    }

    fn live_stop(&self, caller: &Caller, session: LiveSession) -> (Response, String) {
        let console_id = caller.peer.console_id.to_string();
        let stopped = self.live_lock().stop(session.session_id, &console_id);
        self.publish_watchers();
        match stopped {
            Ok(ended) => (
                Response::LiveStopped(session),
                format!(
                    "session {:016x} after {} frames",
                    session.session_id, ended.frames_sent
                ),
            ),
            // Already over: stopping is idempotent for the console.
            Err(LiveError::NotFound(_)) => (
                Response::LiveStopped(session),
                format!("session {:016x} had already ended", session.session_id),
            ),
            Err(live_error) => live_failure(&live_error),
        }
    }

    fn fetch_frame(&self, cursor: Cursor) -> (Response, String) {
        let detail = format!("frames seq {}", cursor.seq);
        let image = match self.store.frame_image(cursor) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let reason = format!(
                    "no screenshot image at frames seq {} of epoch {:016x}: dropped by retention or quota, or never taken",
                    cursor.seq, cursor.epoch
                );
                return (error(ErrorCode::NotFound, reason), detail);
            }
            Err(store_error) => return internal(&store_error),
        };
        let before = Cursor {
            epoch: cursor.epoch,
            seq: cursor.seq - 1,
        };
        let record = match self.store.pull(StreamKind::Frames, before, 1) {
            Ok(mut batch) => batch.records.pop(),
            Err(store_error) => return internal(&store_error),
        };
        match record {
            Some(seq_record) if seq_record.seq == cursor.seq => match seq_record.record {
                Record::Frame(meta) => (
                    Response::Image(CapturedImage { meta, bytes: image }),
                    detail,
                ),
                _ => (
                    error(
                        ErrorCode::NotFound,
                        format!("frames seq {} is not a screenshot", cursor.seq),
                    ),
                    detail,
                ),
            },
            _ => (
                error(
                    ErrorCode::NotFound,
                    format!("frames seq {} is no longer held", cursor.seq),
                ),
                detail,
            ),
        }
    }

    /// Captures on the blocking pool; returns the capture and its cost in
    /// milliseconds, or `None` when the pixels equal `previous_hash`.
    async fn capture(
        &self,
        spec: CaptureSpec,
        previous_hash: Option<u64>,
    ) -> Result<Option<(Capture, u64)>, String> {
        let screen = self.screen.clone();
        let at_ms = wall_now_ms();
        let task = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = screen.capture(&spec, false, previous_hash, at_ms);
            let cost_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            result.map(|capture| capture.map(|capture| (capture, cost_ms)))
        });
        match task.await {
            Ok(Ok(capture)) => Ok(capture),
            Ok(Err(capture_error)) => {
                tracing::warn!(%capture_error, "screen capture failed");
                Err(format!("screen capture failed: {capture_error}"))
            }
            Err(join_error) => {
                tracing::error!(%join_error, "screen capture task failed");
                Err("screen capture failed inside the agent; its log says why".to_owned())
            }
        }
    }

    /// Ends lapsed live views, logs them, and updates the notice.
    pub fn expire_live(&self) {
        let ended = self.live_lock().expire(steady_now_ms());
        if ended.is_empty() {
            return;
        }
        for session in &ended {
            self.log_live_end(session);
        }
        self.publish_watchers();
    }

    fn log_live_end(&self, ended: &Ended) {
        let entry = AccessEntry {
            at_ms: wall_now_ms(),
            console_id: ended.watcher.console_id.clone(),
            console_name: ended.watcher.console_name.clone(),
            role: "admin".to_owned(),
            request: "live-end".to_owned(),
            detail: format!(
                "session {:016x} lapsed (not renewed) after {} frames",
                ended.watcher.session_id, ended.frames_sent
            ),
            allowed: true,
        };
        if let Err(store_error) = self.store.log_access(&entry) {
            tracing::error!(%store_error, "cannot write the access log");
        }
    }

    fn publish_watchers(&self) {
        let watchers = self.live_lock().watchers();
        self.watchers.send_if_modified(|current| {
            let changed = *current != watchers;
            *current = watchers;
            changed
        });
    }

    fn live_lock(&self) -> MutexGuard<'_, LiveSessions> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A capture without a previous hash always returns an image.
fn unreachable_unchanged() -> (Response, String) {
    let reason = "the capturer reported an unchanged screen for a fresh capture".to_owned();
    tracing::error!(%reason);
    (error(ErrorCode::Internal, reason.clone()), reason)
}

fn image_detail(spec: &CaptureSpec, image: &CapturedImage) -> String {
    format!(
        "monitor {:?}: {}x{} JPEG q{}, {} bytes",
        spec.monitor, image.meta.width, image.meta.height, spec.quality, image.meta.size_bytes
    )
}

fn live_failure(live_error: &LiveError) -> (Response, String) {
    let code = match live_error {
        LiveError::TooMany => ErrorCode::Busy,
        LiveError::NotFound(_) => ErrorCode::NotFound,
    };
    (error(code, live_error.to_string()), live_error.to_string())
}

fn error(code: ErrorCode, message: String) -> Response {
    Response::Error(ErrorReply { code, message })
}

fn internal(store_error: &dyn std::error::Error) -> (Response, String) {
    tracing::error!(%store_error, "request failed");
    (
        error(ErrorCode::Internal, "the agent's store failed".to_owned()),
        store_error.to_string(),
    )
}

/// Accepts connections until `shutdown` turns true, then closes the
/// endpoint and waits (bounded) for in-flight requests.
pub async fn serve(endpoint: Endpoint, service: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    let connection_slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut live_ticks = tokio::time::interval(LIVE_EXPIRY_TICK);
    loop {
        tokio::select! {
            _ = live_ticks.tick() => service.expire_live(),
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                match connection_slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let service = service.clone();
                        let shutdown = shutdown.clone();
                        connections.spawn(async move {
                            handle_connection(incoming, service, shutdown).await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(remote = %incoming.remote_address(), "connection limit reached; refusing");
                        incoming.refuse();
                    }
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    endpoint.close(quinn::VarInt::from_u32(0), b"agent shutting down");
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
        endpoint.wait_idle().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown: connections did not drain in time");
        connections.abort_all();
    }
}

async fn handle_connection(
    incoming: Incoming,
    service: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(handshake_error) => {
            tracing::info!(%remote, %handshake_error, "handshake refused");
            return;
        }
    };
    let peer = match peer_chain(&conn).map(|chain| console_peer(&chain)) {
        Some(Ok(peer)) => peer,
        Some(Err(peer_error)) => {
            tracing::warn!(%remote, %peer_error, "console certificate not usable");
            conn.close(
                quinn::VarInt::from_u32(1),
                b"console identity not recognised",
            );
            return;
        }
        None => {
            conn.close(quinn::VarInt::from_u32(1), b"no client certificate");
            return;
        }
    };
    tracing::info!(%remote, console = %peer.console_id, role = %peer.role, "console connected");
    let caller = Arc::new(Caller::new(peer));
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            stream = conn.accept_bi() => match stream {
                Ok((mut send, mut recv)) => {
                    let service = service.clone();
                    let caller = caller.clone();
                    streams.spawn(async move {
                        let request = match read_message::<Request>(&mut recv).await {
                            Ok(request) => request,
                            Err(bad_frame) => {
                                tracing::warn!(%bad_frame, "bad request frame; stream reset");
                                reject_stream(&mut send, &mut recv);
                                return;
                            }
                        };
                        let response = service.handle(&caller, request).await;
                        if let Err(write_error) = write_message(&mut send, &response).await {
                            tracing::debug!(%write_error, "console went away before the response");
                        }
                    });
                }
                Err(closed) => {
                    tracing::info!(%remote, %closed, "console disconnected");
                    break;
                }
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            _ = shutdown.changed() => {
                while streams.join_next().await.is_some() {}
                conn.close(quinn::VarInt::from_u32(0), b"agent shutting down");
                break;
            }
        }
    }
}
