//! The agent's QUIC service: a listener, a handler per connection and per
//! stream, and a shutdown signal (the mini-redis skeleton).
//!
//! Every connection is mutually authenticated before any byte of it is read
//! (the TLS config requires a site-CA client certificate); every request is
//! authorised by the console's role and written to the access log.
//!
//! Against misbehaving consoles (see [`ServerLimits`]): a source address
//! proves itself with a stateless retry before it counts; handshakes are
//! bounded per address and in time; connections are bounded per console
//! (the id in its certificate) and in total, refused ones closed with a
//! reason the console can read; a request frame must be whole, and a
//! response taken, within a deadline, or the stream is reset; a connection
//! without requests is closed. Store work runs on the blocking pool, so
//! these timers keep running when requests are heavy.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use certs::deny::DenySet;
use certs::enrol::AgentKeyRequest;
use certs::tls::{console_peer, ConsolePeer};
use certs::transport::{
    peer_chain, read_message, reject_stream, write_message, CLOSE_NORMAL, CLOSE_OTHER_TEAM,
    CLOSE_QUIET, CLOSE_REFUSED,
};
use certs::AgentIdentity;
use protocol::{
    negotiate_version, AckReply, CaptureSpec, CapturedImage, Cursor, DenyListReply, EraseUsers,
    ErasedReply, ErrorCode, ErrorReply, HelloReply, LiveFrameReply, LiveSession, LiveStart, Policy,
    Record, Request, Response, SignedDenyList, StreamKind, MAX_ERASE_USERS, MAX_USER_BYTES,
    MAX_VERSION, MIN_VERSION,
};
use quinn::{Connection, Endpoint, Incoming, RecvStream, SendStream, VarInt};
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinError, JoinSet};
use uuid::Uuid;

use crate::access::{authorize, team_allows, validate_policy};
use crate::admission::{Activity, Admission, Refusal, ServerLimits};
use crate::capture::Capture;
use crate::clock::{steady_now_ms, wall_now_ms};
use crate::live::{Asker, Ended, LiveError, LiveSessions, LiveWatcher};
use crate::screen::Screen;
use crate::settings::{save_policy, take_deny_list, TakeDenyListError};
use crate::store::{AccessEntry, Store, StoreError};

/// Most records one pull returns, whatever the console asks for.
pub const MAX_PULL_RECORDS: u32 = 5_000;
/// Store calls running at once on the blocking pool; more requests wait
/// (asleep, not on a thread) for their turn.
pub const MAX_STORE_TASKS: usize = 4;
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
    /// IANA name of the machine's time zone, empty when unknown (see
    /// [`system_time_zone`]).
    pub time_zone: String,
    /// The team its certificate puts this workstation in: consoles
    /// limited to another team are refused.
    pub team: Option<String>,
}

/// Why the agent's QUIC server configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    #[error(transparent)]
    Tls(#[from] certs::tls::TlsConfigError),
    #[error(transparent)]
    Quic(#[from] certs::transport::TransportError),
}

/// The agent's QUIC server configuration for `identity`, refusing the
/// consoles `deny` names: what the endpoint serves at start and after a
/// renewal.
pub fn quic_server_config(
    identity: &AgentIdentity,
    deny: DenySet,
) -> Result<quinn::ServerConfig, ServerConfigError> {
    let tls = certs::tls::agent_server_config(identity, deny)?;
    Ok(certs::transport::server_config(
        tls,
        &certs::transport::Limits::agent(),
    )?)
}

/// This machine's time zone (`TZ`, else `/etc/localtime`), read once at
/// start; `None`, said in the log, when the machine does not tell one.
pub fn system_time_zone() -> Option<jiff::tz::TimeZone> {
    jiff::tz::TimeZone::try_system()
        .inspect_err(|error| {
            tracing::warn!(%error, "the machine's time zone cannot be read; the console is told none");
        })
        .ok()
}

/// The IANA name of `zone` as the hello tells it, capped; empty when it is
/// unknown or has no name.
pub fn time_zone_name(zone: Option<&jiff::tz::TimeZone>) -> String {
    zone.and_then(jiff::tz::TimeZone::iana_name)
        .map(|name| protocol::cap_text(name, protocol::MAX_TIME_ZONE_BYTES).into_owned())
        .unwrap_or_default()
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
    /// Turns on the blocking pool for store calls (see `on_store`).
    store_tasks: Semaphore,
    /// Revoked consoles, shared with the TLS verifier.
    deny: DenySet,
    /// The site CA certificate deny-lists must be signed by.
    site_ca_der: Arc<Vec<u8>>,
    /// Certificate renewal; `None`: refused (tests, benches).
    renewal: Option<Renewal>,
}

/// What renewing the agent's certificate needs: where its identity lives,
/// the endpoint serving it, and the key a `NewKey` made, waiting for its
/// certificate.
#[derive(Debug)]
pub struct Renewal {
    pub identity_file: PathBuf,
    pub name: Option<String>,
    pub endpoint: Endpoint,
    pending: Mutex<Option<AgentKeyRequest>>,
}

impl Renewal {
    pub fn new(identity_file: PathBuf, name: Option<String>, endpoint: Endpoint) -> Renewal {
        Renewal {
            identity_file,
            name,
            endpoint,
            pending: Mutex::new(None),
        }
    }
}

/// A store call that did not return (it panicked).
#[derive(Debug, thiserror::Error)]
#[error("a store task of the agent failed: {0}")]
struct StoreTaskError(#[from] JoinError);

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
            store_tasks: Semaphore::new(MAX_STORE_TASKS),
            deny: DenySet::default(),
            site_ca_der: Arc::new(Vec::new()),
            renewal: None,
        }
    }

    /// Lets admin consoles renew this agent's certificate (see [`Renewal`]).
    pub fn with_renewal(mut self, renewal: Renewal) -> Service {
        self.renewal = Some(renewal);
        self
    }

    /// Takes deny-lists signed by the site CA `site_ca_der` into `deny`
    /// (the set the TLS verifier checks); without it they are refused.
    pub fn with_revocation(mut self, site_ca_der: Vec<u8>, deny: DenySet) -> Service {
        self.site_ca_der = Arc::new(site_ca_der);
        self.deny = deny;
        self
    }

    /// The one blocking boundary of store work: `work` runs on the
    /// blocking pool (at most [`MAX_STORE_TASKS`] at once), never on an
    /// async worker, so the accept loop and the deadlines keep running
    /// while sled reads and flushes.
    async fn on_store<T, F>(&self, work: F) -> Result<T, StoreTaskError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> T + Send + 'static,
    {
        // The semaphore is never closed; were it, the work would still run.
        let _turn = self.store_tasks.acquire().await.ok();
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || work(&store)).await?)
    }

    /// Answers one authenticated, well-formed request and writes it to the
    /// access log. Store work and captures run on the blocking pool.
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
        let logged = self.on_store(move |store| store.log_access(&entry)).await;
        if let Err(log_error) = flatten(logged) {
            tracing::error!(%log_error, "cannot write the access log");
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
                        let heads = match self.on_store(|store| store.heads().to_wire()).await {
                            Ok(heads) => heads,
                            Err(task_error) => return internal(&task_error),
                        };
                        let reply = HelloReply {
                            version,
                            agent_id: self.info.agent_id,
                            hostname: self.info.hostname.clone(),
                            demo: self.info.demo,
                            heads,
                            time_zone: self.info.time_zone.clone(),
                        };
                        (
                            Response::Hello(reply),
                            format!("console {:?} v{version}", hello.console_name),
                        )
                    }
                }
            }
            Request::EraseUsers(erase) => self.erase_users(erase).await,
            Request::Pull(pull) => {
                let max_records = pull.max_records.clamp(1, MAX_PULL_RECORDS);
                let pulled = self
                    .on_store(move |store| store.pull(pull.stream, pull.after, max_records))
                    .await;
                match flatten(pulled) {
                    Ok(batch) => {
                        let detail = format!(
                            "{} after {} → {} records",
                            pull.stream.name(),
                            pull.after.seq,
                            batch.records.len()
                        );
                        (Response::Records(batch), detail)
                    }
                    Err(failure) => internal(&*failure),
                }
            }
            Request::Ack(ack) => {
                let console_id = peer.console_id.to_string();
                let acked = self
                    .on_store(move |store| store.ack(ack.stream, ack.upto, &console_id))
                    .await;
                let acked = match acked {
                    Ok(acked) => acked,
                    Err(task_error) => return internal(&task_error),
                };
                match acked {
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
                    // The disk is full (or was): the console keeps its
                    // records and acks again on its next pass.
                    Err(
                        store_error @ (StoreError::DiskFull { .. }
                        | StoreError::WriteFailed { .. }
                        | StoreError::NeedsRestart { .. }),
                    ) => (
                        error(ErrorCode::Busy, store_error.to_string()),
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
                let saved = {
                    let policy = policy.clone();
                    self.on_store(move |store| save_policy(store, &policy))
                        .await
                };
                if let Err(failure) = flatten(saved) {
                    return internal(&*failure);
                }
                let detail = format!("revision {}", policy.revision);
                self.policy.send_replace(policy.clone());
                (Response::Policy(policy), detail)
            }
            Request::Screenshot(spec) => self.screenshot(spec).await,
            Request::LiveStart(start) => self.live_start(caller, &start),
            Request::LiveFrame(session) => self.live_frame(caller, session).await,
            Request::LiveStop(session) => self.live_stop(caller, session),
            Request::FetchFrame(cursor) => self
                .on_store(move |store| fetch_frame(store, cursor))
                .await
                .unwrap_or_else(|task_error| internal(&task_error)),
            Request::DenyList(signed) => self.deny_list(signed).await,
            Request::NewKey => self.new_key(),
            Request::InstallCertificate(cert_der) => self.install_certificate(cert_der).await,
        }
    }

    /// GDPR erasure of OS accounts. The detail for the access log counts
    /// the accounts and never names them: the log must not keep them.
    async fn erase_users(&self, erase: EraseUsers) -> (Response, String) {
        if let Err(reason) = validate_erase_users(&erase) {
            return (error(ErrorCode::BadRequest, reason.clone()), reason);
        }
        let accounts = erase.users.len();
        let erased = self
            .on_store(move |store| store.erase_users(&erase.users))
            .await;
        let erased = match erased {
            Ok(erased) => erased,
            Err(task_error) => return internal(&task_error),
        };
        let failed = |code, store_error: &StoreError| {
            tracing::error!(%store_error, "erasure failed");
            (
                error(
                    code,
                    format!(
                        "erasure not finished ({store_error}); some records may be erased \
                         already: ask again to finish"
                    ),
                ),
                format!("erasure of {accounts} accounts failed: {store_error}"),
            )
        };
        match erased {
            Ok(report) => (
                Response::Erased(ErasedReply {
                    records: report.records,
                    images: report.images,
                }),
                format!(
                    "erased {accounts} account{}: {} records, {} images",
                    if accounts == 1 { "" } else { "s" },
                    report.records,
                    report.images
                ),
            ),
            // The disk is full (or was): the admin asks again later.
            Err(
                store_error @ (StoreError::DiskFull { .. }
                | StoreError::WriteFailed { .. }
                | StoreError::NeedsRestart { .. }),
            ) => failed(ErrorCode::Busy, &store_error),
            Err(store_error) => failed(ErrorCode::Internal, &store_error),
        }
    }

    fn new_key(&self) -> (Response, String) {
        let Some(renewal) = &self.renewal else {
            let reason = "this agent cannot renew its certificate".to_owned();
            return (error(ErrorCode::BadRequest, reason.clone()), reason);
        };
        match AgentKeyRequest::generate() {
            Ok(request) => {
                let csr_der = request.csr_der.clone();
                *renewal
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(request);
                (Response::KeyRequest(csr_der), "new key made".to_owned())
            }
            Err(key_error) => internal(&key_error),
        }
    }

    async fn install_certificate(&self, cert_der: Vec<u8>) -> (Response, String) {
        let refuse = |reason: String| (error(ErrorCode::BadRequest, reason.clone()), reason);
        let Some(renewal) = &self.renewal else {
            return refuse("this agent cannot renew its certificate".to_owned());
        };
        let Some(pending) = renewal
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return refuse("no new key is waiting for a certificate: ask for one first".to_owned());
        };
        if pending.accepts(&cert_der) != Some(self.info.agent_id) {
            return refuse("the certificate is not for this agent's new key".to_owned());
        }
        if !certs::is_issued_by(&cert_der, &self.site_ca_der) {
            return refuse("the certificate is not signed by the site CA".to_owned());
        }
        let now = time::OffsetDateTime::now_utc();
        match certs::inspect::summarize(&cert_der) {
            Ok(summary) if summary.not_before <= now && now < summary.not_after => {}
            _ => return refuse("the certificate is not valid now".to_owned()),
        }
        let identity = AgentIdentity {
            agent_id: self.info.agent_id,
            name: renewal.name.clone(),
            cert_der: cert_der.into(),
            key_der: pending.key_der.clone_key(),
            ca_cert_der: self.site_ca_der.to_vec().into(),
        };
        let file = renewal.identity_file.clone();
        let (identity, written) = match tokio::task::spawn_blocking(move || {
            let written = identity.replace_bundle(&file);
            (identity, written)
        })
        .await
        {
            Ok(done) => done,
            Err(task_error) => return internal(&task_error),
        };
        if let Err(write_error) = written {
            return internal(&write_error);
        }
        match quic_server_config(&identity, self.deny.clone()) {
            Ok(config) => {
                renewal.endpoint.set_server_config(Some(config));
                tracing::info!("renewed certificate installed; served from the next handshake");
                (
                    Response::CertificateInstalled,
                    "renewed certificate installed".to_owned(),
                )
            }
            Err(config_error) => {
                let reason = config_error.to_string();
                tracing::error!(%reason, "renewed certificate written but not served until restart");
                (error(ErrorCode::Internal, reason.clone()), reason)
            }
        }
    }

    async fn deny_list(&self, signed: SignedDenyList) -> (Response, String) {
        let deny = self.deny.clone();
        let ca = self.site_ca_der.clone();
        let taken = self
            .on_store(move |store| take_deny_list(store, &deny, &ca, &signed))
            .await;
        match taken {
            Err(task_error) => internal(&task_error),
            Ok(Err(TakeDenyListError::Refused(refused))) => {
                let reason = refused.to_string();
                (error(ErrorCode::BadRequest, reason.clone()), reason)
            }
            Ok(Err(TakeDenyListError::Store(store_error))) => internal(&store_error),
            Ok(Ok(taken)) => {
                let serial = self.deny.serial();
                if taken {
                    tracing::info!(serial, "a newer deny-list of revoked consoles is in force");
                }
                (
                    Response::DenyList(DenyListReply { serial, taken }),
                    format!("serial {serial}{}", if taken { ", taken" } else { "" }),
                )
            }
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

    /// Ends lapsed live views, updates the notice, and logs them.
    pub async fn expire_live(&self) {
        let ended = self.live_lock().expire(steady_now_ms());
        if ended.is_empty() {
            return;
        }
        self.publish_watchers();
        for session in &ended {
            self.log_live_end(session).await;
        }
    }

    async fn log_live_end(&self, ended: &Ended) {
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
        let logged = self.on_store(move |store| store.log_access(&entry)).await;
        if let Err(log_error) = flatten(logged) {
            tracing::error!(%log_error, "cannot write the access log");
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

/// Refuses an erasure that names no account, more than
/// [`MAX_ERASE_USERS`], or an empty or oversized name (whose text is not
/// repeated: it may be a person's account name).
fn validate_erase_users(erase: &EraseUsers) -> Result<(), String> {
    let count = erase.users.len();
    if count == 0 || count > MAX_ERASE_USERS {
        return Err(format!(
            "an erasure names 1 to {MAX_ERASE_USERS} accounts, this one names {count}"
        ));
    }
    for (index, user) in erase.users.iter().enumerate() {
        if user.is_empty() || user.len() > MAX_USER_BYTES {
            return Err(format!(
                "account {} of the erasure is {} bytes long; names are 1 to {MAX_USER_BYTES} bytes",
                index + 1,
                user.len()
            ));
        }
    }
    Ok(())
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

/// A store call's own error, or the failure of the task that ran it.
fn flatten<T, E>(
    result: Result<Result<T, E>, StoreTaskError>,
) -> Result<T, Box<dyn std::error::Error + Send + Sync>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(store_error)) => Err(Box::new(store_error)),
        Err(task_error) => Err(Box::new(task_error)),
    }
}

/// The image of a periodic screenshot with its record (runs on the store's
/// blocking boundary).
fn fetch_frame(store: &Store, cursor: Cursor) -> (Response, String) {
    let detail = format!("frames seq {}", cursor.seq);
    let image = match store.frame_image(cursor) {
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
    // Sequence numbers start at 1: seq 0 names no record.
    let Some(before_seq) = cursor.seq.checked_sub(1) else {
        return (
            error(
                ErrorCode::NotFound,
                "frames seq 0 names no record".to_owned(),
            ),
            detail,
        );
    };
    let before = Cursor {
        epoch: cursor.epoch,
        seq: before_seq,
    };
    let record = match store.pull(StreamKind::Frames, before, 1) {
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

/// Accepts connections until `shutdown` turns true, then closes the
/// endpoint and waits (bounded) for in-flight requests.
pub async fn serve(
    endpoint: Endpoint,
    service: Arc<Service>,
    limits: ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let admission = Arc::new(Mutex::new(Admission::new(&limits)));
    let mut tasks = JoinSet::new();
    let mut live_ticks = tokio::time::interval(LIVE_EXPIRY_TICK);
    loop {
        tokio::select! {
            _ = live_ticks.tick() => {
                let service = service.clone();
                tasks.spawn(async move { service.expire_live().await });
            }
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                if let Some((incoming, slot)) = admit(incoming, &admission) {
                    let service = service.clone();
                    let shutdown = shutdown.clone();
                    tasks.spawn(handle_connection(incoming, slot, service, limits, shutdown));
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    endpoint.close(VarInt::from_u32(CLOSE_NORMAL), b"agent shutting down");
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
        endpoint.wait_idle().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown: connections did not drain in time");
        tasks.abort_all();
    }
}

/// Decides on a connection attempt before any TLS work. A source address
/// not yet proven gets a stateless retry (the client must show it receives
/// what is sent to that address, so nobody fills another address's quota
/// by spoofing it); then the counts decide. `None`: answered here (retry
/// or refusal), nothing more to do.
fn admit(incoming: Incoming, admission: &Arc<Mutex<Admission>>) -> Option<(Incoming, Slot)> {
    let remote = incoming.remote_address();
    if !incoming.remote_address_validated() {
        if let Err(retry_error) = incoming.retry() {
            // Only an attempt that already carried a retry token cannot be
            // retried, and quinn validates such tokens itself.
            retry_error.into_incoming().refuse();
        }
        return None;
    }
    match Slot::handshake(admission.clone(), remote.ip()) {
        Ok(slot) => Some((incoming, slot)),
        Err(refusal) => {
            tracing::warn!(%remote, %refusal, "connection refused before its handshake");
            incoming.refuse();
            None
        }
    }
}

/// One counted connection; its counts are released when it drops, however
/// the connection ends.
#[derive(Debug)]
struct Slot {
    admission: Arc<Mutex<Admission>>,
    ip: IpAddr,
    handshaking: bool,
    console: Option<Uuid>,
}

impl Slot {
    fn handshake(admission: Arc<Mutex<Admission>>, ip: IpAddr) -> Result<Slot, Refusal> {
        lock(&admission).begin_handshake(ip)?;
        Ok(Slot {
            admission,
            ip,
            handshaking: true,
            console: None,
        })
    }

    fn handshake_over(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            lock(&self.admission).handshake_over(self.ip);
        }
    }

    /// Counts the connection for `console`; returns how many connections
    /// the agent holds now.
    fn establish(&mut self, console: Uuid) -> Result<usize, Refusal> {
        let mut admission = lock(&self.admission);
        admission.establish(console)?;
        self.console = Some(console);
        Ok(admission.open())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.handshake_over();
        lock(&self.admission).closed(self.console);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

async fn handle_connection(
    incoming: Incoming,
    mut slot: Slot,
    service: Arc<Service>,
    limits: ServerLimits,
    shutdown: watch::Receiver<bool>,
) {
    let remote = incoming.remote_address();
    let connecting = match incoming.accept() {
        Ok(connecting) => connecting,
        Err(handshake_error) => {
            tracing::info!(%remote, %handshake_error, "handshake refused");
            return;
        }
    };
    // On timeout the handshake is dropped, which closes it.
    let handshake = tokio::time::timeout(millis(limits.handshake_timeout_ms), connecting).await;
    slot.handshake_over();
    let conn = match handshake {
        Ok(Ok(conn)) => conn,
        Ok(Err(handshake_error)) => {
            tracing::info!(%remote, %handshake_error, "handshake refused");
            return;
        }
        Err(_) => {
            tracing::warn!(
                %remote,
                timeout_ms = limits.handshake_timeout_ms,
                "handshake not finished in time; dropped"
            );
            return;
        }
    };
    let peer = match peer_chain(&conn).map(|chain| console_peer(&chain)) {
        Some(Ok(peer)) => peer,
        Some(Err(peer_error)) => {
            tracing::warn!(%remote, %peer_error, "console certificate not usable");
            conn.close(
                VarInt::from_u32(CLOSE_REFUSED),
                b"console identity not recognised",
            );
            return;
        }
        None => {
            conn.close(VarInt::from_u32(CLOSE_REFUSED), b"no client certificate");
            return;
        }
    };
    if let Err(refusal) = team_allows(peer.team.as_deref(), service.info.team.as_deref()) {
        tracing::warn!(%remote, console = %peer.console_id, role = %peer.role, %refusal, "connection refused");
        conn.close(VarInt::from_u32(CLOSE_OTHER_TEAM), refusal.as_bytes());
        return;
    }
    let connections = match slot.establish(peer.console_id) {
        Ok(connections) => connections,
        Err(refusal) => {
            tracing::warn!(%remote, console = %peer.console_id, role = %peer.role, %refusal, "connection refused");
            conn.close(
                VarInt::from_u32(CLOSE_REFUSED),
                refusal.to_string().as_bytes(),
            );
            return;
        }
    };
    tracing::info!(%remote, console = %peer.console_id, role = %peer.role, connections, "console connected");
    serve_connection(conn, Arc::new(Caller::new(peer)), service, limits, shutdown).await;
}

/// Accepts the streams of one authenticated connection, each carrying one
/// request, until the console leaves, the connection goes quiet for too
/// long, or the agent shuts down.
async fn serve_connection(
    conn: Connection,
    caller: Arc<Caller>,
    service: Arc<Service>,
    limits: ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let remote = conn.remote_address();
    let console = caller.peer.console_id;
    let activity = Arc::new(Mutex::new(Activity::new(&limits, steady_now_ms())));
    let mut streams = JoinSet::new();
    loop {
        // Recomputed after every event: an answer moves the deadline later.
        let deadline_ms = lock(&activity).deadline_ms();
        let quiet = async {
            match deadline_ms {
                Some(deadline_ms) => {
                    tokio::time::sleep(millis(deadline_ms.saturating_sub(steady_now_ms()))).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => {
                    streams.spawn(answer_stream(
                        (send, recv),
                        remote,
                        service.clone(),
                        caller.clone(),
                        activity.clone(),
                        limits,
                    ));
                }
                Err(closed) => {
                    tracing::info!(%remote, %console, %closed, "console disconnected");
                    break;
                }
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            () = quiet => {
                let expired = lock(&activity).expired(steady_now_ms());
                if let Some(quiet) = expired {
                    tracing::info!(%remote, %console, %quiet, "closing a connection without requests");
                    conn.close(VarInt::from_u32(CLOSE_QUIET), quiet.to_string().as_bytes());
                    break;
                }
            }
            _ = shutdown.changed() => {
                // Requests in flight are answered first (bounded by their
                // deadlines and by the server's drain timeout).
                while streams.join_next().await.is_some() {}
                conn.close(VarInt::from_u32(CLOSE_NORMAL), b"agent shutting down");
                return;
            }
        }
    }
    // The connection is gone: requests already taken still end (each
    // within its deadlines) and are logged.
    while streams.join_next().await.is_some() {}
}

/// Reads one request (whole within the request deadline), answers it and
/// hands the response over (within the response deadline); a stream that
/// misses either deadline, or carries a bad frame, is reset.
async fn answer_stream(
    (mut send, mut recv): (SendStream, RecvStream),
    remote: SocketAddr,
    service: Arc<Service>,
    caller: Arc<Caller>,
    activity: Arc<Mutex<Activity>>,
    limits: ServerLimits,
) {
    let console = caller.peer.console_id;
    let read = tokio::time::timeout(
        millis(limits.request_timeout_ms),
        read_message::<Request>(&mut recv),
    )
    .await;
    let request = match read {
        Ok(Ok(request)) => request,
        Ok(Err(bad_frame)) => {
            tracing::warn!(%remote, %console, %bad_frame, "bad request frame; stream reset");
            reject_stream(&mut send, &mut recv);
            return;
        }
        Err(_) => {
            tracing::warn!(
                %remote,
                %console,
                timeout_ms = limits.request_timeout_ms,
                "request frame not whole in time; stream reset"
            );
            reject_stream(&mut send, &mut recv);
            return;
        }
    };
    // One frame per stream: whatever follows it is not kept.
    drop(recv);
    lock(&activity).request_received();
    let response = service.handle(&caller, request).await;
    let written = tokio::time::timeout(
        millis(limits.response_timeout_ms),
        write_message(&mut send, &response),
    )
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(write_error)) => {
            tracing::debug!(%remote, %console, %write_error, "console went away before the response");
        }
        Err(_) => {
            tracing::warn!(
                %remote,
                %console,
                timeout_ms = limits.response_timeout_ms,
                "response not taken in time; stream reset"
            );
            let _ = send.reset(VarInt::from_u32(certs::transport::STREAM_ERROR_CODE));
        }
    }
    lock(&activity).request_answered(steady_now_ms());
}
