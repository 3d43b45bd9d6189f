//! Exactly-once sync: for each agent, pull every record stream by cursor,
//! write the records *and* the new cursor in one atomic store batch, flush,
//! and only then acknowledge, so nothing is lost or duplicated across
//! console crashes, agent restarts, agent store resets and network loss.
//! Admin consoles also pull the frames stream, fetching each periodic
//! screenshot's image into that same batch; after a pass, data past the
//! console's retention is purged.
//!
//! Nothing an agent says about itself is believed over its certificate:
//! the agent id everything is stored under is the one in the certificate
//! the handshake verified, and a hello naming another agent is refused,
//! audited and noted as a fault. Every pass is bounded whatever an agent
//! answers (see `pass.rs`): a deadline per agent, a record budget per
//! stream, at most one epoch change per stream and never one without
//! records; a pass that stops early keeps what was durably stored and the
//! next one resumes from the stored cursor. Store work runs on the
//! blocking pool ([`Syncer::on_store`]), never on async workers.

mod pass;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use certs::handshake::HandshakeFailure;
use certs::tls::{console_inventory_config, PinLookup, Refusal, RefusalSlot};
use certs::transport::{
    client_config, client_endpoint, connect, peer_chain, request, Limits, TransportError,
};
use certs::{ConsoleIdentity, Role};
use protocol::{
    Ack, Cursor, ErrorCode, ErrorReply, Hello, HelloReply, Pull, Record, RecordBatch, Request,
    Response, StreamKind, MAX_VERSION, MIN_VERSION,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::discovery::{Candidate, CandidateSource};
use crate::model::{AgentId, DayClock};
use crate::settings::{ConsoleSettings, SettingsError};
use crate::store::{
    AgentRecord, AuditEntry, ConsoleStore, FaultKind, FetchedFrame, IngestReport, PruneReport,
    StoreError,
};
use crate::validate::{self, cap_text, MAX_HOSTNAME_BYTES, MAX_TIME_ZONE_BYTES};

pub use self::pass::Incomplete;
use self::pass::{BatchShape, Step, StreamPass};

/// Streams every console pulls, in order.
pub const SYNCED_STREAMS: [StreamKind; 3] =
    [StreamKind::Usage, StreamKind::Sessions, StreamKind::Health];
/// Streams only admin consoles pull, after [`SYNCED_STREAMS`]: an agent
/// refuses (and logs) a viewer asking for them, so viewers never ask.
pub const ADMIN_STREAMS: [StreamKind; 1] = [StreamKind::Frames];
/// Frame records asked for per pull: each brings an image of up to
/// [`crate::store::MAX_SCREENSHOT_BYTES`], held in memory until the batch
/// is stored.
pub const FRAMES_PER_PULL: u32 = 8;
/// Retention is enforced after a sync pass at most this often.
pub const PURGE_INTERVAL_MS: i64 = 3_600_000;

/// The streams a console of `role` pulls, in order.
pub fn streams_for(role: Role) -> Vec<StreamKind> {
    let mut streams = SYNCED_STREAMS.to_vec();
    if role == Role::Admin {
        streams.extend(ADMIN_STREAMS);
    }
    streams
}

/// Tuning of a sync run.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Records asked for per pull.
    pub batch_records: u32,
    /// Agents synced at once.
    pub fan_out: usize,
    /// A connection attempt is abandoned after this long.
    pub connect_timeout: Duration,
    /// One request is abandoned after this long.
    pub request_timeout: Duration,
    /// Everything one agent gets in one pass (connect included): past
    /// it the pass stops cleanly and the next one resumes.
    pub agent_deadline: Duration,
    /// Most records one stream of one agent brings in one pass.
    pub budget_records: u64,
    pub limits: Limits,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            batch_records: 2_000,
            fan_out: 8,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            agent_deadline: Duration::from_secs(120),
            budget_records: 200_000,
            limits: Limits::default(),
        }
    }
}

/// What one stream contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    pub stream: StreamKind,
    pub stored_records: u64,
    pub skipped_duplicates: u64,
    /// Frames whose image the workstation had already dropped (quota or
    /// retention): stored as metadata only.
    pub dropped_images: u64,
    /// Records refused as invalid (see [`validate::check`]): not stored,
    /// a gap marker says which.
    pub refused_records: u64,
    /// The first refused record's seq and why.
    pub first_refusal: Option<String>,
    /// Why the stream stopped before its end this pass.
    pub incomplete: Option<Incomplete>,
    pub cursor: Cursor,
}

impl StreamReport {
    fn new(stream: StreamKind, cursor: Cursor) -> Self {
        StreamReport {
            stream,
            stored_records: 0,
            skipped_duplicates: 0,
            dropped_images: 0,
            refused_records: 0,
            first_refusal: None,
            incomplete: None,
            cursor,
        }
    }

    fn add(&mut self, ingested: IngestReport) {
        self.stored_records += ingested.stored_records;
        self.skipped_duplicates += ingested.skipped_duplicates;
        self.refused_records += ingested.refused_records;
        if self.first_refusal.is_none() {
            self.first_refusal = ingested
                .first_refusal
                .map(|(seq, invalid)| format!("seq {seq}: {invalid}"));
        }
        self.cursor = ingested.new_cursor;
    }

    /// `frames +3 (1 image dropped on the workstation)`, for the CLI and
    /// the audit log.
    pub fn summary(&self) -> String {
        let mut notes = Vec::new();
        match self.dropped_images {
            0 => {}
            1 => notes.push("1 image dropped on the workstation".to_owned()),
            many => notes.push(format!("{many} images dropped on the workstation")),
        }
        if self.refused_records > 0 {
            notes.push(format!(
                "{} refused as invalid, first {}",
                self.refused_records,
                self.first_refusal.as_deref().unwrap_or("?")
            ));
        }
        match self.incomplete {
            None => {}
            Some(Incomplete::Budget) => notes.push("more next pass: record budget used".into()),
            Some(Incomplete::Deadline) => notes.push("more next pass: time is up".into()),
            Some(Incomplete::AckDeferred) => notes.push(
                "stored here; the agent cannot record the ack now (its disk may be full), \
                 acked again next pass"
                    .into(),
            ),
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        format!("{} +{}{notes}", self.stream.name(), self.stored_records)
    }
}

/// The result of syncing one address.
#[derive(Debug)]
pub enum Outcome {
    /// An inventoried agent answered and what it sent is stored; all of
    /// it unless `incomplete` says why the pass stopped early.
    Synced {
        addr: SocketAddr,
        agent: AgentId,
        hostname: String,
        demo: bool,
        streams: Vec<StreamReport>,
        incomplete: Option<Incomplete>,
    },
    /// An inventoried agent broke a rule: the fault is noted and audited,
    /// the pass for it stopped; what was stored before stays.
    Faulty {
        addr: SocketAddr,
        agent: AgentId,
        fault: FaultKind,
        reason: String,
        streams: Vec<StreamReport>,
    },
    /// An agent of this site that is not in the inventory (or whose key
    /// does not match its pin): nothing was ingested.
    Unknown {
        addr: SocketAddr,
        claimed_agent: Option<Uuid>,
        reason: String,
    },
    /// The handshake was refused (another site's CA, this console's
    /// certificate expired or revoked, wrong protocol): nothing was
    /// ingested. `agent`: the one expected there, if this console
    /// remembered the address for it.
    Refused {
        addr: SocketAddr,
        agent: Option<AgentId>,
        reason: String,
    },
    /// Nobody answered, or the connection broke; records already stored
    /// stay stored and the next sync resumes from the stored cursor.
    /// `agent`: the one expected there (a remembered address) or met
    /// there (its certificate).
    Unreachable {
        addr: SocketAddr,
        agent: Option<AgentId>,
        reason: String,
    },
}

impl Outcome {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Outcome::Synced { addr, .. }
            | Outcome::Faulty { addr, .. }
            | Outcome::Unknown { addr, .. }
            | Outcome::Refused { addr, .. }
            | Outcome::Unreachable { addr, .. } => *addr,
        }
    }

    /// The inventoried agent this outcome is about, when known for sure
    /// (a certificate, or an address this console remembered for it).
    pub fn agent(&self) -> Option<AgentId> {
        match self {
            Outcome::Synced { agent, .. } | Outcome::Faulty { agent, .. } => Some(*agent),
            Outcome::Unreachable { agent, .. } | Outcome::Refused { agent, .. } => *agent,
            Outcome::Unknown { .. } => None,
        }
    }

    /// Records stored by this outcome.
    pub fn stored_records(&self) -> u64 {
        match self {
            Outcome::Synced { streams, .. } | Outcome::Faulty { streams, .. } => {
                streams.iter().map(|report| report.stored_records).sum()
            }
            _ => 0,
        }
    }
}

/// Why a sync of a known agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("{0}")]
    Handshake(&'static str),
    #[error("the agent did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the agent refused: {0:?} {1}")]
    Agent(ErrorCode, String),
    #[error("unexpected answer to {0}")]
    Unexpected(&'static str),
    #[error("console store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] certs::tls::TlsConfigError),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("agent {found} answered where {expected} was expected")]
    WrongAgent { expected: AgentId, found: AgentId },
    #[error("the agent's certificate names no agent")]
    NoAgentCertificate,
    #[error("the agent {}: {}; refused", .0.describe(), .1)]
    Fault(FaultKind, String),
    #[error(
        "the agent sent an image for frame seq {seq} that does not match the frame's record \
         ({reason}); nothing of this batch was stored or acknowledged"
    )]
    BadFrame { seq: u64, reason: String },
    #[error("a store task failed: {0}")]
    Task(String),
}

impl SyncError {
    /// A transport error, with the refusal it carries in words when the
    /// connection ended in one (see [`HandshakeFailure`]).
    fn from_transport(error: TransportError) -> SyncError {
        match HandshakeFailure::of_transport(&error).and_then(HandshakeFailure::advice) {
            Some(advice) => SyncError::Handshake(advice),
            None => SyncError::Transport(error),
        }
    }
}

/// How one pass stopped for one agent.
enum PassEnd {
    Done(Option<Incomplete>),
    Fault(FaultKind, String),
    Failed(SyncError),
}

/// The time left for one agent this pass.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    request_timeout: Duration,
}

impl Deadline {
    /// The timeout of the next request, and whether the deadline (not the
    /// request timeout) sets it; `None` when no time is left.
    fn next_request(self) -> Option<(Duration, bool)> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            None
        } else if left < self.request_timeout {
            Some((left, true))
        } else {
            Some((self.request_timeout, false))
        }
    }
}

/// A request's failure, or the pass's deadline.
enum Asked {
    Answer(Response),
    DeadlinePassed,
}

/// Syncs agents into the store with one identity and one UDP endpoint.
#[derive(Debug)]
pub struct Syncer {
    identity: Arc<ConsoleIdentity>,
    console_name: String,
    store: Arc<ConsoleStore>,
    config: SyncConfig,
    /// When retention was last enforced (`i64::MIN`: not yet).
    last_purge_ms: AtomicI64,
}

impl Syncer {
    pub fn new(identity: ConsoleIdentity, store: Arc<ConsoleStore>, config: SyncConfig) -> Self {
        let console_name = identity.name.clone();
        Syncer {
            identity: Arc::new(identity),
            console_name,
            store,
            config,
            last_purge_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// The same console on the same store, with other limits (a
    /// `sync --once` with its own deadline and budget).
    pub fn with_config(&self, config: SyncConfig) -> Syncer {
        Syncer {
            identity: self.identity.clone(),
            console_name: self.console_name.clone(),
            store: self.store.clone(),
            config,
            last_purge_ms: AtomicI64::new(self.last_purge_ms.load(Ordering::SeqCst)),
        }
    }

    /// Why this console's certificate cannot be used now, with the fix
    /// (see [`own_certificate_problem`]).
    pub fn certificate_problem(&self, now_ms: i64) -> Option<String> {
        own_certificate_problem(&self.identity, now_ms)
    }

    /// That this console's certificate expires soon, with how to renew it
    /// (see [`own_certificate_warning`]).
    pub fn certificate_warning(&self, now_ms: i64) -> Option<String> {
        own_certificate_warning(&self.identity, now_ms)
    }

    /// The site CA certificate this console trusts (DER).
    pub fn site_ca_der(&self) -> &[u8] {
        &self.identity.ca_cert_der
    }

    /// What this console may ask of agents.
    pub fn role(&self) -> Role {
        self.identity.role
    }

    /// How this console signs audit entries: its name and id.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.console_name, self.identity.console_id)
    }

    /// Runs `work` on the store through [`crate::blocking`]: the one
    /// place sync touches the disk.
    async fn on_store<T: Send + 'static>(
        &self,
        work: impl FnOnce(&ConsoleStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, SyncError> {
        let store = self.store.clone();
        crate::blocking::blocking(
            move || work(&store).map_err(SyncError::from),
            |join_error| SyncError::Task(join_error.to_string()),
        )
        .await
    }

    async fn pins(&self) -> Result<PinLookup, SyncError> {
        let pins: HashMap<Uuid, [u8; 32]> = self
            .on_store(|store| store.agents())
            .await?
            .into_iter()
            .map(|agent| (agent.agent, agent.spki_sha256))
            .collect();
        Ok(Arc::new(move |agent_id| pins.get(&agent_id).copied()))
    }

    /// Syncs every candidate, at most `fan_out` agents at once, then
    /// enforces the console's retention (at most every
    /// [`PURGE_INTERVAL_MS`]); outcomes sorted by address.
    ///
    /// Candidates that claim the same agent (its remembered addresses,
    /// its adverts) are tried in turn until one of them syncs it: a claim
    /// only orders the tries, the certificate decides who answered.
    pub async fn sync_all(self: &Arc<Self>, candidates: Vec<Candidate>) -> Vec<Outcome> {
        let outcomes = self.sync_candidates(candidates).await;
        self.purge_if_due().await;
        outcomes
    }

    /// Enforces retention if the last purge is older than
    /// [`PURGE_INTERVAL_MS`]; a failure is logged, the next pass retries.
    async fn purge_if_due(&self) {
        let now_ms = crate::clock::wall_now_ms();
        let last_ms = self.last_purge_ms.load(Ordering::SeqCst);
        if last_ms != i64::MIN && now_ms.saturating_sub(last_ms) < PURGE_INTERVAL_MS {
            return;
        }
        let actor = self.actor();
        match self
            .on_store(move |store| Ok(purge(store, now_ms, &actor)))
            .await
        {
            Ok(Ok(_)) => self.last_purge_ms.store(now_ms, Ordering::SeqCst),
            Ok(Err(settings_error)) => tracing::warn!(%settings_error, "retention purge failed"),
            Err(sync_error) => tracing::warn!(%sync_error, "retention purge failed"),
        }
    }

    async fn sync_candidates(self: &Arc<Self>, candidates: Vec<Candidate>) -> Vec<Outcome> {
        // One inventory read for the whole pass (and the TLS config
        // checked once); each connection attempt gets a config of its own.
        let pins = match self.pins().await.map_err(|error| error.to_string()) {
            Ok(pins) => self.client_config(&pins).map(|_| pins),
            Err(reason) => Err(reason),
        };
        let pins = match pins {
            Ok(pins) => pins,
            Err(reason) => {
                return candidates
                    .into_iter()
                    .map(|candidate| Outcome::Unreachable {
                        addr: candidate.addr,
                        agent: trusted_claim(&candidate),
                        reason: reason.clone(),
                    })
                    .collect()
            }
        };
        let slots = Arc::new(Semaphore::new(self.config.fan_out.max(1)));
        let mut tasks = JoinSet::new();
        for group in group_by_claim(candidates) {
            let syncer = self.clone();
            let slots = slots.clone();
            let pins = pins.clone();
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let mut outcomes = Vec::new();
                for candidate in group {
                    let outcome = syncer.sync_candidate_with(&candidate, &pins).await;
                    let reached = matches!(
                        &outcome,
                        Outcome::Synced { agent, .. } | Outcome::Faulty { agent, .. }
                            if Some(*agent) == candidate.claimed_agent
                    );
                    outcomes.push(outcome);
                    if reached {
                        break;
                    }
                }
                outcomes
            });
        }
        let mut outcomes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(group) => outcomes.extend(group),
                Err(join_error) => tracing::error!(%join_error, "sync task failed"),
            }
        }
        outcomes.sort_by_key(Outcome::addr);
        outcomes
    }

    /// Connects to `addr` with the same TLS, pins and timeouts as a sync,
    /// checks that `agent` answers there, and sends one `request` (policy
    /// get or set).
    pub async fn request_agent(
        &self,
        agent: AgentId,
        addr: SocketAddr,
        req: &Request,
    ) -> Result<Response, SyncError> {
        let session = self.open_agent(agent, addr).await?;
        let result = session.ask(req).await;
        session.close(b"request done");
        result
    }

    /// Connects to `addr` with the same TLS, pins and timeouts as a sync
    /// and checks that `agent` answers there (by its certificate, and a
    /// hello that agrees); the session then carries any number of
    /// requests (live view, screenshots).
    pub async fn open_agent(
        &self,
        agent: AgentId,
        addr: SocketAddr,
    ) -> Result<AgentSession, SyncError> {
        let pins = self
            .pins()
            .await
            .map_err(|error| SyncError::Connect(error.to_string()))?;
        let connection = self
            .connect_with(&pins, addr)
            .await
            .map_err(|failed| SyncError::Connect(failed.reason))?;
        let session = AgentSession {
            connection,
            request_timeout: self.config.request_timeout,
        };
        let deadline = Deadline {
            at: Instant::now() + self.config.request_timeout,
            request_timeout: self.config.request_timeout,
        };
        let checked = match self.hello(&session.connection, deadline).await {
            Ok((found, _)) if found == agent => Ok(()),
            Ok((found, _)) => Err(SyncError::WrongAgent {
                expected: agent,
                found,
            }),
            Err(HelloError::Fault {
                agent,
                kind,
                reason,
            }) => {
                self.record_fault(agent, kind, &reason, "refused; nothing asked")
                    .await;
                Err(SyncError::Fault(kind, reason))
            }
            Err(HelloError::Sync(error)) => Err(error),
        };
        match checked {
            Ok(()) => Ok(session),
            Err(error) => {
                session.close(b"wrong agent");
                Err(error)
            }
        }
    }

    /// Connects to one address and, if an inventoried agent answers there,
    /// pulls everything it has (within this pass's bounds).
    pub async fn sync_candidate(&self, candidate: &Candidate) -> Outcome {
        match self.pins().await {
            Ok(pins) => self.sync_candidate_with(candidate, &pins).await,
            Err(error) => Outcome::Unreachable {
                addr: candidate.addr,
                agent: trusted_claim(candidate),
                reason: error.to_string(),
            },
        }
    }

    async fn sync_candidate_with(&self, candidate: &Candidate, pins: &PinLookup) -> Outcome {
        let addr = candidate.addr;
        let deadline = Deadline {
            at: Instant::now() + self.config.agent_deadline,
            request_timeout: self.config.request_timeout,
        };
        let connection = match self.connect_with(pins, addr).await {
            Ok(connection) => connection,
            Err(failed) => return self.classify_failure(candidate, failed).await,
        };
        let outcome = self.sync_connection(&connection, candidate, deadline).await;
        connection.close(0u32.into(), b"sync done");
        outcome
    }

    /// Hello (checked against the certificate), then every stream.
    async fn sync_connection(
        &self,
        connection: &quinn::Connection,
        candidate: &Candidate,
        deadline: Deadline,
    ) -> Outcome {
        let addr = candidate.addr;
        let (agent, reply) = match self.hello(connection, deadline).await {
            Ok(hello) => hello,
            Err(HelloError::Fault {
                agent,
                kind,
                reason,
            }) => {
                self.record_fault(agent, kind, &reason, "refused; nothing stored")
                    .await;
                return Outcome::Faulty {
                    addr,
                    agent,
                    fault: kind,
                    reason,
                    streams: Vec::new(),
                };
            }
            Err(HelloError::Sync(error)) => {
                return self
                    .failed(addr, trusted_claim(candidate), error, candidate)
                    .await
            }
        };
        self.hand_deny_list(connection, agent, deadline).await;
        if self.identity.role == Role::Admin {
            self.hand_erasures(connection, agent, deadline).await;
        }
        let mut streams = Vec::new();
        let mut end = PassEnd::Done(None);
        for stream in streams_for(self.identity.role) {
            let (report, stream_end) = self.pull_stream(connection, agent, stream, deadline).await;
            streams.push(report);
            match stream_end {
                PassEnd::Done(None) => {}
                PassEnd::Done(Some(kept @ (Incomplete::Budget | Incomplete::AckDeferred))) => {
                    end = PassEnd::Done(Some(kept))
                }
                other => {
                    end = other;
                    break;
                }
            }
        }
        if let Err(error) = self.note_pass(agent, addr, &reply, &streams).await {
            return self.failed(addr, Some(agent), error, candidate).await;
        }
        match end {
            PassEnd::Done(incomplete) => Outcome::Synced {
                addr,
                agent,
                hostname: capped_hostname(&reply.hostname),
                demo: reply.demo,
                streams,
                incomplete,
            },
            PassEnd::Fault(kind, reason) => {
                self.record_fault(
                    agent,
                    kind,
                    &reason,
                    "not followed; what was stored before stays",
                )
                .await;
                Outcome::Faulty {
                    addr,
                    agent,
                    fault: kind,
                    reason,
                    streams,
                }
            }
            PassEnd::Failed(error) => self.failed(addr, Some(agent), error, candidate).await,
        }
    }

    /// Records a failed sync on the agent it concerns and builds the
    /// outcome.
    async fn failed(
        &self,
        addr: SocketAddr,
        agent: Option<AgentId>,
        error: SyncError,
        candidate: &Candidate,
    ) -> Outcome {
        let reason = error.to_string();
        if let SyncError::Handshake(_) = error {
            return Outcome::Refused {
                addr,
                agent: agent.or_else(|| trusted_claim(candidate)),
                reason,
            };
        }
        if let Some(agent) = agent.or_else(|| trusted_claim(candidate)) {
            self.note_error(agent, &reason).await;
        }
        Outcome::Unreachable {
            addr,
            agent,
            reason,
        }
    }

    /// Updates the inventory record after a pass (last seen, address,
    /// host name as the agent states it, capped, its time zone when
    /// known) and audits the pull.
    async fn note_pass(
        &self,
        agent: AgentId,
        addr: SocketAddr,
        reply: &HelloReply,
        streams: &[StreamReport],
    ) -> Result<(), SyncError> {
        let now_ms = crate::clock::wall_now_ms();
        let stored: u64 = streams.iter().map(|report| report.stored_records).sum();
        let refused: u64 = streams.iter().map(|report| report.refused_records).sum();
        let hostname = capped_hostname(&reply.hostname);
        let demo = reply.demo;
        let time_zone = known_zone(&reply.time_zone);
        let actor = self.actor();
        let detail = format!(
            "{stored} records ({})",
            streams
                .iter()
                .map(StreamReport::summary)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let invalid = streams
            .iter()
            .filter(|report| report.refused_records > 0)
            .map(StreamReport::summary)
            .collect::<Vec<_>>()
            .join(", ");
        self.on_store(move |store| {
            // Never written back if it was revoked during the pass.
            store.update_agent(agent, |record| {
                record.last_seen_ms = Some(now_ms);
                record.hostname = Some(hostname.clone());
                record.demo = demo;
                record.time_zone = time_zone.clone();
                record.last_error = None;
                let addr_text = addr.to_string();
                if !record.addresses.contains(&addr_text) {
                    record.addresses.insert(0, addr_text);
                    record.addresses.truncate(4);
                }
            })?;
            store.audit(AuditEntry {
                at_ms: now_ms,
                actor: actor.clone(),
                action: "pull".to_owned(),
                target: agent.to_string(),
                detail,
            })?;
            if refused > 0 {
                let reason = format!("{refused} records refused as invalid: {invalid}");
                store.note_fault(agent, FaultKind::InvalidData, now_ms, &reason)?;
                store.audit(AuditEntry {
                    at_ms: now_ms,
                    actor,
                    action: FaultKind::InvalidData.name().to_owned(),
                    target: agent.to_string(),
                    detail: format!("{reason}; stored without them, a gap marker says which"),
                })?;
            }
            Ok(())
        })
        .await
    }

    /// Notes a fault of `agent` and audits it with what was done.
    async fn record_fault(&self, agent: AgentId, kind: FaultKind, reason: &str, done: &str) {
        tracing::warn!(%agent, fault = kind.name(), reason, "agent fault");
        let now_ms = crate::clock::wall_now_ms();
        let actor = self.actor();
        let reason = reason.to_owned();
        let done = done.to_owned();
        let noted = self
            .on_store(move |store| {
                store.note_fault(agent, kind, now_ms, &reason)?;
                store.audit(AuditEntry {
                    at_ms: now_ms,
                    actor,
                    action: kind.name().to_owned(),
                    target: agent.to_string(),
                    detail: format!("{reason}; {done}"),
                })
            })
            .await;
        if let Err(store_error) = noted {
            tracing::error!(%store_error, "cannot record an agent fault");
        }
    }

    /// A client config admitting the agents of `pins`, for one connection
    /// attempt: its verifier leaves any refusal in the slot returned.
    fn client_config(
        &self,
        pins: &PinLookup,
    ) -> Result<(quinn::ClientConfig, RefusalSlot), String> {
        let refusals = RefusalSlot::default();
        let tls = console_inventory_config(&self.identity, pins.clone(), refusals.clone())
            .map_err(|error| error.to_string())?;
        let config = client_config(tls, &self.config.limits).map_err(|error| error.to_string())?;
        Ok((config, refusals))
    }

    async fn connect_with(
        &self,
        pins: &PinLookup,
        addr: SocketAddr,
    ) -> Result<quinn::Connection, ConnectFailed> {
        let untyped = |reason: String| ConnectFailed {
            failure: HandshakeFailure::Other,
            refusal: None,
            reason,
        };
        let (config, refusals) = self.client_config(pins).map_err(untyped)?;
        let endpoint = client_endpoint(addr).map_err(|error| untyped(error.to_string()))?;
        // Identity is checked by the verifier against the inventory, not
        // by this name.
        let attempt = connect(&endpoint, config, addr, "agent.smarttracker");
        match tokio::time::timeout(self.config.connect_timeout, attempt).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(ConnectFailed {
                failure: HandshakeFailure::of_transport(&error).unwrap_or(HandshakeFailure::Other),
                refusal: refusals.take(),
                reason: format!("{error:?}"),
            }),
            Err(_) => Err(ConnectFailed {
                failure: HandshakeFailure::TimedOut,
                refusal: refusals.take(),
                reason: format!("no answer within {:?}", self.config.connect_timeout),
            }),
        }
    }

    async fn classify_failure(&self, candidate: &Candidate, failed: ConnectFailed) -> Outcome {
        let addr = candidate.addr;
        let ConnectFailed {
            failure,
            refusal,
            reason,
        } = failed;
        match refusal {
            // Our own verifier's refusal of an agent of this site that is
            // not (or not with this key) in the inventory.
            Some(refusal) if refusal.is_unknown_agent() => Outcome::Unknown {
                addr,
                claimed_agent: candidate.claimed_agent,
                reason,
            },
            _ => match failure.advice() {
                Some(advice) => Outcome::Refused {
                    addr,
                    agent: trusted_claim(candidate),
                    reason: advice.to_owned(),
                },
                None => {
                    let agent = trusted_claim(candidate);
                    if let Some(agent) = agent {
                        self.note_error(agent, &reason).await;
                    }
                    Outcome::Unreachable {
                        addr,
                        agent,
                        reason,
                    }
                }
            },
        }
    }

    async fn note_error(&self, agent: AgentId, reason: &str) {
        let reason = reason.to_owned();
        let noted = self
            .on_store(move |store| {
                store.update_agent(agent, |record| {
                    record.last_error = Some(reason.clone());
                })?;
                Ok(())
            })
            .await;
        if let Err(store_error) = noted {
            tracing::warn!(%store_error, "cannot note a sync error");
        }
    }

    /// Sends `req` within the pass's deadline.
    async fn ask(
        &self,
        connection: &quinn::Connection,
        req: &Request,
        deadline: Deadline,
    ) -> Result<Asked, SyncError> {
        let Some((timeout, by_deadline)) = deadline.next_request() else {
            return Ok(Asked::DeadlinePassed);
        };
        match ask_with_timeout(connection, timeout, req).await {
            Err(SyncError::Timeout(_)) if by_deadline => Ok(Asked::DeadlinePassed),
            Ok(response) => Ok(Asked::Answer(response)),
            Err(error) => Err(error),
        }
    }

    /// The hello, checked: the agent id is the certificate's, and a reply
    /// naming another agent (or a version we do not speak) is a fault.
    async fn hello(
        &self,
        connection: &quinn::Connection,
        deadline: Deadline,
    ) -> Result<(AgentId, HelloReply), HelloError> {
        let agent = peer_chain(connection)
            .and_then(|chain| certs::tls::agent_peer(&chain).ok())
            .ok_or(HelloError::Sync(SyncError::NoAgentCertificate))?;
        let hello = Request::Hello(Hello {
            min_version: MIN_VERSION,
            max_version: MAX_VERSION,
            console_name: self.console_name.clone(),
        });
        let reply = match self.ask(connection, &hello, deadline).await {
            Ok(Asked::Answer(Response::Hello(reply))) => reply,
            Ok(Asked::Answer(_)) => {
                return Err(HelloError::Fault {
                    agent,
                    kind: FaultKind::ProtocolViolation,
                    reason: "it answered the hello with something else".to_owned(),
                })
            }
            Ok(Asked::DeadlinePassed) => {
                return Err(HelloError::Sync(SyncError::Timeout(
                    self.config.agent_deadline,
                )))
            }
            Err(error) => return Err(HelloError::Sync(error)),
        };
        if reply.agent_id != agent {
            return Err(HelloError::Fault {
                agent,
                kind: FaultKind::Impersonation,
                reason: format!(
                    "its hello claimed to be agent {} while its certificate is agent {agent}",
                    reply.agent_id
                ),
            });
        }
        if !(MIN_VERSION..=MAX_VERSION).contains(&reply.version) {
            return Err(HelloError::Fault {
                agent,
                kind: FaultKind::ProtocolViolation,
                reason: format!(
                    "it chose protocol version {}, outside the {MIN_VERSION}..={MAX_VERSION} offered",
                    reply.version
                ),
            });
        }
        Ok((agent, reply))
    }

    /// Gives the agent the site's deny-list this console holds (one
    /// request; the agent keeps it if it is newer than its own). A failure
    /// is logged and does not stop the pass.
    async fn hand_deny_list(
        &self,
        connection: &quinn::Connection,
        agent: AgentId,
        deadline: Deadline,
    ) {
        let held = match self.on_store(crate::revocation::held).await {
            Ok(Some(held)) => held,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%agent, %error, "the deny-list this console holds cannot be read");
                return;
            }
        };
        match self
            .ask(connection, &Request::DenyList(held), deadline)
            .await
        {
            Ok(Asked::Answer(Response::DenyList(reply))) => {
                if reply.taken {
                    tracing::info!(%agent, serial = reply.serial, "agent took the site's deny-list");
                }
            }
            Ok(Asked::Answer(Response::Error(refused))) => {
                tracing::warn!(%agent, reason = %refused.message, "agent refused the site's deny-list");
            }
            Ok(_) => tracing::warn!(%agent, "agent answered the deny-list with something else"),
            Err(error) => tracing::warn!(%agent, %error, "cannot give the agent the deny-list"),
        }
    }

    /// Hands the agent the GDPR erasures it has not confirmed yet, before
    /// anything is pulled; once it confirms, erases here again what a sync
    /// may have stored in between, and forgets the erasure. A refusal or
    /// failure is logged and retried at the next pass.
    async fn hand_erasures(
        &self,
        connection: &quinn::Connection,
        agent: AgentId,
        deadline: Deadline,
    ) {
        let pending = match self
            .on_store(move |store| crate::people::erasure::pending_for(store, agent))
            .await
        {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(%agent, %error, "the pending erasures cannot be read");
                return;
            }
        };
        for erasure in pending {
            let request = Request::EraseUsers(protocol::EraseUsers {
                users: erasure.users.clone(),
            });
            let reply = match self.ask(connection, &request, deadline).await {
                Ok(Asked::Answer(Response::Erased(reply))) => reply,
                Ok(Asked::Answer(Response::Error(refused))) => {
                    tracing::warn!(%agent, reason = %refused.message, "agent refused an erasure");
                    return;
                }
                Ok(_) => {
                    tracing::warn!(%agent, "agent answered an erasure with something else");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%agent, %error, "cannot hand the agent an erasure");
                    return;
                }
            };
            let actor = self.actor();
            let done = self
                .on_store(move |store| {
                    crate::people::erasure::confirmed(store, &erasure, reply, &actor)
                })
                .await;
            if let Err(error) = done {
                tracing::warn!(%agent, %error, "an erasure the agent confirmed is not noted");
                return;
            }
        }
    }

    /// Pulls one stream within the pass's bounds: store (atomically with
    /// the cursor, and for frames with their encrypted images), flush,
    /// then ack, batch after batch.
    async fn pull_stream(
        &self,
        connection: &quinn::Connection,
        agent: AgentId,
        stream: StreamKind,
        deadline: Deadline,
    ) -> (StreamReport, PassEnd) {
        let cursor = match self
            .on_store(move |store| store.cursor(agent, stream))
            .await
        {
            Ok(cursor) => cursor.unwrap_or(Cursor { epoch: 0, seq: 0 }),
            Err(error) => {
                return (
                    StreamReport::new(stream, Cursor { epoch: 0, seq: 0 }),
                    PassEnd::Failed(error),
                )
            }
        };
        let mut report = StreamReport::new(stream, cursor);
        let asked = match stream {
            StreamKind::Frames => FRAMES_PER_PULL.min(self.config.batch_records),
            _ => self.config.batch_records,
        };
        let mut pass = StreamPass::new(cursor, asked, self.config.budget_records);
        let end = loop {
            match self
                .pull_once(connection, agent, stream, deadline, &mut pass, &mut report)
                .await
            {
                Ok(Step::Pull) => continue,
                Ok(Step::Done) => break PassEnd::Done(None),
                Ok(Step::Stop(incomplete)) => break PassEnd::Done(Some(incomplete)),
                Ok(Step::Fault(kind, reason)) => {
                    break PassEnd::Fault(kind, format!("{} stream: {reason}", stream.name()))
                }
                Ok(Step::Ingest) => break unreachable_step(),
                Err(error) => break PassEnd::Failed(error),
            }
        };
        if let PassEnd::Done(incomplete) = end {
            report.incomplete = incomplete;
        }
        (report, end)
    }

    /// One pull, its ingest and its ack; returns what to do next.
    async fn pull_once(
        &self,
        connection: &quinn::Connection,
        agent: AgentId,
        stream: StreamKind,
        deadline: Deadline,
        pass: &mut StreamPass,
        report: &mut StreamReport,
    ) -> Result<Step, SyncError> {
        let pull = Request::Pull(Pull {
            stream,
            after: pass.cursor(),
            max_records: pass.asked_records(),
        });
        let batch = match self.ask(connection, &pull, deadline).await? {
            Asked::DeadlinePassed => return Ok(Step::Stop(Incomplete::Deadline)),
            Asked::Answer(Response::Records(batch)) if batch.stream == stream => batch,
            Asked::Answer(_) => {
                return Ok(Step::Fault(
                    FaultKind::ProtocolViolation,
                    "it answered a pull with something else than that stream's records".to_owned(),
                ))
            }
        };
        let step = pass.pulled(BatchShape {
            epoch: batch.epoch,
            records: batch.records.len(),
            more: batch.more,
        });
        if step != Step::Ingest {
            return Ok(step);
        }
        let frames = match self
            .fetch_frames(connection, &batch, pass.cursor(), deadline)
            .await?
        {
            Some(frames) => frames,
            None => return Ok(Step::Stop(Incomplete::Deadline)),
        };
        report.dropped_images += frames
            .values()
            .filter(|fetched| matches!(fetched, FetchedFrame::Dropped))
            .count() as u64;
        let records = batch.records.len();
        let ingested = self
            .on_store(move |store| {
                store.ingest_inventoried(agent, &batch, &frames, crate::clock::wall_now_ms())
            })
            .await?;
        let new_cursor = ingested.new_cursor;
        report.add(ingested);
        // Durable on our side: now the agent may forget it.
        let ack = Request::Ack(Ack {
            stream,
            upto: new_cursor,
        });
        match self.ask(connection, &ack, deadline).await {
            Ok(Asked::Answer(Response::Acked(_))) => {}
            // Stored; the agent learns of it with the next pass's ack.
            Ok(Asked::DeadlinePassed) => return Ok(Step::Stop(Incomplete::Deadline)),
            // The agent's store was reset between pull and ack: our
            // records are stored; the next pull starts the new epoch.
            Err(SyncError::Agent(ErrorCode::StaleEpoch, _)) => return Ok(Step::Done),
            // Stored here; the agent cannot write the ack now.
            Err(SyncError::Agent(ErrorCode::Busy, _)) => {
                return Ok(Step::Stop(Incomplete::AckDeferred))
            }
            Ok(Asked::Answer(_)) => return Err(SyncError::Unexpected("ack")),
            Err(error) => return Err(error),
        }
        Ok(pass.ingested(records, new_cursor))
    }

    /// The image of every valid frame record of `batch` the store does
    /// not hold yet (after `stored` in the same epoch), checked against
    /// its record: an image that does not match is an error for the whole
    /// batch; one the agent no longer has is [`FetchedFrame::Dropped`].
    /// `None` when the deadline came first.
    async fn fetch_frames(
        &self,
        connection: &quinn::Connection,
        batch: &RecordBatch,
        stored: Cursor,
        deadline: Deadline,
    ) -> Result<Option<HashMap<u64, FetchedFrame>>, SyncError> {
        let mut frames = HashMap::new();
        let now_ms = crate::clock::wall_now_ms();
        for record in &batch.records {
            let Record::Frame(meta) = &record.record else {
                continue;
            };
            if batch.epoch == stored.epoch && record.seq <= stored.seq {
                continue;
            }
            // The store refuses an invalid record: its image is not asked.
            if validate::check(batch.stream, record, now_ms).is_err() {
                continue;
            }
            let at = Cursor {
                epoch: batch.epoch,
                seq: record.seq,
            };
            let fetched = match self
                .ask(connection, &Request::FetchFrame(at), deadline)
                .await
            {
                Ok(Asked::DeadlinePassed) => return Ok(None),
                Ok(Asked::Answer(Response::Image(image))) => {
                    if image.meta != *meta {
                        return Err(SyncError::BadFrame {
                            seq: record.seq,
                            reason: "its metadata differs from the record's".to_owned(),
                        });
                    }
                    // The store decodes the JPEG before it keeps it.
                    crate::store::check_digest(meta, &image.bytes).map_err(|error| {
                        SyncError::BadFrame {
                            seq: record.seq,
                            reason: error.to_string(),
                        }
                    })?;
                    FetchedFrame::Image(image)
                }
                Ok(Asked::Answer(_)) => return Err(SyncError::Unexpected("fetch-frame")),
                Err(SyncError::Agent(ErrorCode::NotFound, _)) => FetchedFrame::Dropped,
                Err(error) => return Err(error),
            };
            frames.insert(record.seq, fetched);
        }
        Ok(Some(frames))
    }
}

/// A connection attempt that failed, typed: how the handshake ended and,
/// when our verifier refused the agent, why.
#[derive(Debug)]
struct ConnectFailed {
    failure: HandshakeFailure,
    refusal: Option<Refusal>,
    reason: String,
}

/// Why a hello did not open a pass.
enum HelloError {
    Fault {
        agent: AgentId,
        kind: FaultKind,
        reason: String,
    },
    Sync(SyncError),
}

/// [`StreamPass::pulled`] returns `Ingest` only to the caller that
/// ingests; the loop never sees it.
fn unreachable_step() -> PassEnd {
    PassEnd::Failed(SyncError::Unexpected("an internal sync step"))
}

/// A host name as the agent states it, capped for display.
fn capped_hostname(hostname: &str) -> String {
    cap_text(hostname, MAX_HOSTNAME_BYTES).into_owned()
}

/// The time zone an agent states, as the tz database names it; `None`
/// when it is empty, too long or unknown (nothing else is kept).
fn known_zone(time_zone: &str) -> Option<String> {
    if time_zone.len() > MAX_TIME_ZONE_BYTES {
        return None;
    }
    DayClock::from_name(time_zone)
        .ok()
        .map(|clock| clock.name().to_owned())
}

/// The agent a candidate is expected to be, when the claim is this
/// console's own (a remembered address); an advert's claim is not.
fn trusted_claim(candidate: &Candidate) -> Option<AgentId> {
    match candidate.source {
        CandidateSource::Remembered => candidate.claimed_agent,
        CandidateSource::Static | CandidateSource::Mdns => None,
    }
}

/// Candidates grouped by the agent they claim (each unclaimed one on its
/// own), remembered addresses first within a group; groups in address
/// order.
fn group_by_claim(candidates: Vec<Candidate>) -> Vec<Vec<Candidate>> {
    let mut claimed: HashMap<AgentId, Vec<Candidate>> = HashMap::new();
    let mut groups = Vec::new();
    for candidate in candidates {
        match candidate.claimed_agent {
            Some(agent) => claimed.entry(agent).or_default().push(candidate),
            None => groups.push(vec![candidate]),
        }
    }
    for (_, mut group) in claimed {
        group.sort_by_key(|candidate| {
            (
                candidate.source != CandidateSource::Remembered,
                candidate.addr,
            )
        });
        groups.push(group);
    }
    groups.sort_by_key(|group| group.first().map(|candidate| candidate.addr));
    groups
}

/// Why this console's own certificate cannot be used at `now_ms`
/// (expired, not valid yet, unreadable), with the fix; `None` when it can.
pub fn own_certificate_problem(identity: &ConsoleIdentity, now_ms: i64) -> Option<String> {
    let summary = match certs::inspect::summarize(&identity.cert_der) {
        Ok(summary) => summary,
        Err(error) => return Some(format!("this console's certificate does not read: {error}")),
    };
    let now_secs = now_ms.div_euclid(1000);
    let reissue = "issue a new one with `smarttracker-certs console --site SITE --role ROLE \
                   --name NAME --out DATA/identity` (move the old identity directory aside \
                   first), and check this computer's clock";
    if summary.not_after.unix_timestamp() < now_secs {
        Some(format!(
            "this console's certificate expired on {}: agents refuse it; {reissue}",
            summary.not_after.date()
        ))
    } else if summary.not_before.unix_timestamp() > now_secs {
        Some(format!(
            "this console's certificate is not valid before {}: agents refuse it; {reissue}",
            summary.not_before.date()
        ))
    } else {
        None
    }
}

/// That this console's certificate expires within
/// [`OWN_EXPIRY_WARNING_DAYS`], with how to renew it (it still works).
pub fn own_certificate_warning(identity: &ConsoleIdentity, now_ms: i64) -> Option<String> {
    let summary = certs::inspect::summarize(&identity.cert_der).ok()?;
    let left_secs = summary.not_after.unix_timestamp() - now_ms.div_euclid(1000);
    (0..OWN_EXPIRY_WARNING_DAYS * 86_400)
        .contains(&left_secs)
        .then(|| {
            format!(
                "this console's certificate expires on {} (in {} days): before then, issue a new one \
                 with `smarttracker-certs console --site SITE --role {} --name NAME --out NEW-DIR` \
                 and put NEW-DIR in place of DATA/identity",
                summary.not_after.date(),
                left_secs / 86_400,
                identity.role
            )
        })
}

/// Days before its certificate expires that a console starts to warn.
pub const OWN_EXPIRY_WARNING_DAYS: i64 = 30;

/// The inventoried agents no outcome of a pass synced, each with why
/// (the reasons met for it, else its last error), in inventory order.
pub fn unsynced_agents<'a>(
    inventory: &'a [AgentRecord],
    outcomes: &[Outcome],
) -> Vec<(&'a AgentRecord, String)> {
    inventory
        .iter()
        .filter_map(|record| {
            let mine: Vec<&Outcome> = outcomes
                .iter()
                .filter(|outcome| outcome.agent() == Some(record.agent))
                .collect();
            if mine
                .iter()
                .any(|outcome| matches!(outcome, Outcome::Synced { .. }))
            {
                return None;
            }
            let reasons: Vec<String> = mine
                .iter()
                .filter_map(|outcome| match outcome {
                    Outcome::Faulty {
                        addr,
                        fault,
                        reason,
                        ..
                    } => Some(format!("{addr}: {}: {reason}", fault.describe())),
                    Outcome::Unreachable { addr, reason, .. }
                    | Outcome::Refused { addr, reason, .. } => Some(format!("{addr}: {reason}")),
                    _ => None,
                })
                .collect();
            let why = if !reasons.is_empty() {
                reasons.join("; ")
            } else if record.addresses.is_empty() {
                "no address known: not found over mDNS and never seen; give --peer HOST:PORT"
                    .to_owned()
            } else {
                match &record.last_error {
                    Some(error) => format!("did not answer (last error: {error})"),
                    None => "did not answer at any known address".to_owned(),
                }
            };
            Some((record, why))
        })
        .collect()
}

/// Deletes what is past the console's retention (`[retention]` in
/// `console.toml`) at `now_ms`, and audits what went.
pub fn purge(store: &ConsoleStore, now_ms: i64, actor: &str) -> Result<PruneReport, SettingsError> {
    let retention = ConsoleSettings::load(store)?.retention;
    let report = store.prune(now_ms, &retention)?;
    let screenshots = report.screenshots().records;
    if report.records() > 0 || screenshots > 0 {
        store.audit(AuditEntry {
            at_ms: now_ms,
            actor: actor.to_owned(),
            action: "purge".to_owned(),
            target: "retention".to_owned(),
            detail: format!(
                "{} records and {screenshots} screenshots past retention (usage {} d, sessions \
                 {} d, health {} d, screenshots {} d)",
                report.records(),
                retention.usage_days,
                retention.sessions_days,
                retention.health_days,
                retention.frames_days
            ),
        })?;
    }
    Ok(report)
}

/// An open, verified connection to one agent.
#[derive(Debug)]
pub struct AgentSession {
    connection: quinn::Connection,
    request_timeout: Duration,
}

impl AgentSession {
    /// Sends one request on its own stream; an agent's error reply comes
    /// back as [`SyncError::Agent`].
    pub async fn ask(&self, req: &Request) -> Result<Response, SyncError> {
        ask_with_timeout(&self.connection, self.request_timeout, req).await
    }

    /// The agent's certificate as the handshake verified it (DER).
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        peer_chain(&self.connection)?
            .into_iter()
            .next()
            .map(|cert| cert.to_vec())
    }

    /// Closes the connection at once; the agent sees the console go.
    pub fn close(self, reason: &[u8]) {
        self.connection.close(0u32.into(), reason);
    }
}

async fn ask_with_timeout(
    connection: &quinn::Connection,
    request_timeout: Duration,
    req: &Request,
) -> Result<Response, SyncError> {
    match tokio::time::timeout(request_timeout, request(connection, req)).await {
        Ok(Ok(Response::Error(ErrorReply { code, message }))) => {
            Err(SyncError::Agent(code, message))
        }
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => Err(SyncError::from_transport(error)),
        Err(_) => Err(SyncError::Timeout(request_timeout)),
    }
}

/// Adds an agent to the inventory from its certificate (bundle or PEM).
pub fn inventory_record(
    name: &str,
    cert_der: &[u8],
    now_ms: i64,
) -> Result<AgentRecord, certs::tls::PeerError> {
    let pin = certs::tls::AgentPin::of_certificate(cert_der)?;
    Ok(AgentRecord {
        agent: pin.agent_id,
        name: name.to_owned(),
        spki_sha256: pin.spki_sha256,
        added_ms: now_ms,
        addresses: Vec::new(),
        last_seen_ms: None,
        last_error: None,
        hostname: None,
        demo: false,
        time_zone: None,
    })
}

/// First retry delay after a failed address; doubles per failure.
pub const BACKOFF_FIRST_MS: i64 = 5_000;
/// Longest delay between retries of an address.
pub const BACKOFF_MAX_MS: i64 = 300_000;

/// Retry schedule of addresses whose last sync failed (pure; time passed
/// in): 5 s, 10 s, 20 s … up to 5 min, reset by a success.
#[derive(Debug, Default)]
pub struct Backoff {
    /// Consecutive failures and the earliest next attempt, per address.
    failing: HashMap<SocketAddr, (u32, i64)>,
}

impl Backoff {
    /// The candidates worth trying at `now_ms`.
    pub fn due(&self, candidates: Vec<Candidate>, now_ms: i64) -> Vec<Candidate> {
        candidates
            .into_iter()
            .filter(|candidate| {
                self.failing
                    .get(&candidate.addr)
                    .is_none_or(|(_, next_ms)| *next_ms <= now_ms)
            })
            .collect()
    }

    /// Learns from a pass: successes reset, failures push the address back.
    pub fn record(&mut self, outcomes: &[Outcome], now_ms: i64) {
        for outcome in outcomes {
            let addr = outcome.addr();
            match outcome {
                Outcome::Synced { .. } => {
                    self.failing.remove(&addr);
                }
                Outcome::Faulty { .. }
                | Outcome::Unknown { .. }
                | Outcome::Refused { .. }
                | Outcome::Unreachable { .. } => {
                    let failures = self.failing.get(&addr).map_or(0, |(count, _)| *count) + 1;
                    let delay_ms = BACKOFF_FIRST_MS
                        .saturating_mul(1 << failures.saturating_sub(1).min(16))
                        .min(BACKOFF_MAX_MS);
                    self.failing.insert(addr, (failures, now_ms + delay_ms));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::CandidateSource;

    #[test]
    fn only_zones_the_tz_database_knows_are_kept() {
        assert_eq!(
            known_zone("America/Montreal").as_deref(),
            Some("America/Montreal")
        );
        assert_eq!(known_zone("UTC").as_deref(), Some("UTC"));
        for hostile in [
            "",
            "   ",
            "Mars/Olympus_Mons",
            "../../etc/passwd",
            "Europe/Paris\u{1b}[2J",
            &"Europe/".repeat(1 << 16),
        ] {
            assert_eq!(
                known_zone(hostile),
                None,
                "{:?}",
                &hostile[..hostile.len().min(40)]
            );
        }
    }

    #[test]
    fn failing_addresses_back_off_and_recover() {
        let addr: SocketAddr = "10.0.0.5:47100".parse().expect("addr");
        let candidate = Candidate {
            addr,
            claimed_agent: None,
            source: CandidateSource::Static,
        };
        let unreachable = Outcome::Unreachable {
            addr,
            agent: None,
            reason: "timeout".into(),
        };
        let mut backoff = Backoff::default();
        assert_eq!(backoff.due(vec![candidate.clone()], 0).len(), 1);
        // Delays 5, 10, 20, 40 … seconds, capped at 5 minutes.
        let mut now_ms = 0;
        for expected_delay_ms in [
            5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000,
        ] {
            backoff.record(std::slice::from_ref(&unreachable), now_ms);
            assert!(backoff
                .due(vec![candidate.clone()], now_ms + expected_delay_ms - 1)
                .is_empty());
            now_ms += expected_delay_ms;
            assert_eq!(backoff.due(vec![candidate.clone()], now_ms).len(), 1);
        }
        backoff.record(
            &[Outcome::Synced {
                addr,
                agent: Uuid::nil(),
                hostname: String::new(),
                demo: false,
                streams: Vec::new(),
                incomplete: None,
            }],
            now_ms,
        );
        backoff.record(std::slice::from_ref(&unreachable), now_ms);
        assert_eq!(
            backoff.due(vec![candidate], now_ms + 5_000).len(),
            1,
            "reset by success"
        );
    }
}
