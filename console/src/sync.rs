//! Exactly-once sync: for each agent, pull every record stream by cursor,
//! write the records *and* the new cursor in one atomic store batch, flush,
//! and only then acknowledge, so nothing is lost or duplicated across
//! console crashes, agent restarts, agent store resets and network loss.
//! Admin consoles also pull the frames stream, fetching each periodic
//! screenshot's image into that same batch; after a pass, data past the
//! console's retention is purged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use certs::tls::{console_inventory_config, PinLookup, UNKNOWN_AGENT_MARKER};
use certs::transport::{client_config, client_endpoint, connect, request, Limits, TransportError};
use certs::{ConsoleIdentity, Role};
use protocol::{
    Ack, Cursor, ErrorCode, ErrorReply, Hello, HelloReply, Pull, Record, RecordBatch, Request,
    Response, StreamKind, MAX_VERSION, MIN_VERSION,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::discovery::Candidate;
use crate::model::AgentId;
use crate::settings::ConsoleSettings;
use crate::store::{AgentRecord, AuditEntry, ConsoleStore, FetchedFrame, PruneReport, StoreError};

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
    pub limits: Limits,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            batch_records: 2_000,
            fan_out: 8,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            limits: Limits::default(),
        }
    }
}

/// What one stream contributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamReport {
    pub stream: StreamKind,
    pub stored_records: u64,
    pub skipped_duplicates: u64,
    /// Frames whose image the workstation had already dropped (quota or
    /// retention): stored as metadata only.
    pub dropped_images: u64,
    pub cursor: Cursor,
}

impl StreamReport {
    /// `frames +3 (1 image dropped on the workstation)`, for the CLI and
    /// the audit log.
    pub fn summary(&self) -> String {
        let dropped = match self.dropped_images {
            0 => String::new(),
            1 => " (1 image dropped on the workstation)".to_owned(),
            many => format!(" ({many} images dropped on the workstation)"),
        };
        format!("{} +{}{dropped}", self.stream.name(), self.stored_records)
    }
}

/// The result of syncing one address.
#[derive(Debug)]
pub enum Outcome {
    /// An inventoried agent answered and everything it had is stored.
    Synced {
        addr: SocketAddr,
        agent: AgentId,
        hostname: String,
        demo: bool,
        streams: Vec<StreamReport>,
    },
    /// An agent of this site that is not in the inventory (or whose key
    /// does not match its pin): nothing was ingested.
    Unknown {
        addr: SocketAddr,
        claimed_agent: Option<Uuid>,
        reason: String,
    },
    /// The handshake failed for another reason (another site's CA, an
    /// expired certificate, wrong protocol): nothing was ingested.
    Refused { addr: SocketAddr, reason: String },
    /// Nobody answered, or the connection broke; records already stored
    /// stay stored and the next sync resumes from the stored cursor.
    Unreachable { addr: SocketAddr, reason: String },
}

impl Outcome {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Outcome::Synced { addr, .. }
            | Outcome::Unknown { addr, .. }
            | Outcome::Refused { addr, .. }
            | Outcome::Unreachable { addr, .. } => *addr,
        }
    }
}

/// Why a sync of a known agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
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
    #[error(
        "the agent sent an image for frame seq {seq} that does not match the frame's record \
         ({reason}); nothing of this batch was stored or acknowledged"
    )]
    BadFrame { seq: u64, reason: String },
}

/// Syncs agents into the store with one identity and one UDP endpoint.
#[derive(Debug)]
pub struct Syncer {
    identity: ConsoleIdentity,
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
            identity,
            console_name,
            store,
            config,
            last_purge_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// How this console signs audit entries: its name and id.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.console_name, self.identity.console_id)
    }

    fn pins(&self) -> Result<PinLookup, StoreError> {
        let pins: HashMap<Uuid, [u8; 32]> = self
            .store
            .agents()?
            .into_iter()
            .map(|agent| (agent.agent, agent.spki_sha256))
            .collect();
        Ok(Arc::new(move |agent_id| pins.get(&agent_id).copied()))
    }

    /// Syncs every candidate, at most `fan_out` at once, then enforces the
    /// console's retention (at most every [`PURGE_INTERVAL_MS`]); outcomes
    /// sorted by address.
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
        let store = self.store.clone();
        let actor = self.actor();
        let purged = tokio::task::spawn_blocking(move || purge(&store, now_ms, &actor)).await;
        match purged {
            Ok(Ok(_)) => self.last_purge_ms.store(now_ms, Ordering::SeqCst),
            Ok(Err(store_error)) => tracing::warn!(%store_error, "retention purge failed"),
            Err(join_error) => tracing::error!(%join_error, "retention purge failed"),
        }
    }

    async fn sync_candidates(self: &Arc<Self>, candidates: Vec<Candidate>) -> Vec<Outcome> {
        // One inventory read and one TLS config for the whole pass.
        let config = match self.client_config() {
            Ok(config) => config,
            Err(reason) => {
                return candidates
                    .into_iter()
                    .map(|candidate| Outcome::Unreachable {
                        addr: candidate.addr,
                        reason: reason.clone(),
                    })
                    .collect()
            }
        };
        let slots = Arc::new(Semaphore::new(self.config.fan_out.max(1)));
        let mut tasks = JoinSet::new();
        for candidate in candidates {
            let syncer = self.clone();
            let slots = slots.clone();
            let config = config.clone();
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                syncer.sync_candidate_with(&candidate, config).await
            });
        }
        let mut outcomes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(outcome) => outcomes.push(outcome),
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
    /// and checks that `agent` answers there; the session then carries any
    /// number of requests (live view, screenshots).
    pub async fn open_agent(
        &self,
        agent: AgentId,
        addr: SocketAddr,
    ) -> Result<AgentSession, SyncError> {
        let connection = self.connect(addr).await.map_err(SyncError::Connect)?;
        let session = AgentSession {
            connection,
            request_timeout: self.config.request_timeout,
        };
        let hello = Request::Hello(Hello {
            min_version: MIN_VERSION,
            max_version: MAX_VERSION,
            console_name: self.console_name.clone(),
        });
        let checked = match session.ask(&hello).await {
            Ok(Response::Hello(reply)) if reply.agent_id == agent => Ok(()),
            Ok(Response::Hello(reply)) => Err(SyncError::WrongAgent {
                expected: agent,
                found: reply.agent_id,
            }),
            Ok(_) => Err(SyncError::Unexpected("hello")),
            Err(error) => Err(error),
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
    /// pulls everything it has.
    pub async fn sync_candidate(&self, candidate: &Candidate) -> Outcome {
        match self.client_config() {
            Ok(config) => self.sync_candidate_with(candidate, config).await,
            Err(reason) => Outcome::Unreachable {
                addr: candidate.addr,
                reason,
            },
        }
    }

    async fn sync_candidate_with(
        &self,
        candidate: &Candidate,
        config: quinn::ClientConfig,
    ) -> Outcome {
        let addr = candidate.addr;
        let connection = match self.connect_with(config, addr).await {
            Ok(connection) => connection,
            Err(reason) => return self.classify_failure(candidate, reason),
        };
        let result = self.pull_everything(&connection, addr).await;
        connection.close(0u32.into(), b"sync done");
        match result {
            Ok(outcome) => outcome,
            Err((agent, sync_error)) => {
                let reason = sync_error.to_string();
                if let Some(agent) = agent {
                    self.note_error(agent, &reason);
                }
                Outcome::Unreachable { addr, reason }
            }
        }
    }

    /// The client config admitting the agents of the inventory as it is now.
    fn client_config(&self) -> Result<quinn::ClientConfig, String> {
        let pins = self.pins().map_err(|error| error.to_string())?;
        let tls =
            console_inventory_config(&self.identity, pins).map_err(|error| error.to_string())?;
        client_config(tls, &self.config.limits).map_err(|error| error.to_string())
    }

    async fn connect(&self, addr: SocketAddr) -> Result<quinn::Connection, String> {
        self.connect_with(self.client_config()?, addr).await
    }

    async fn connect_with(
        &self,
        config: quinn::ClientConfig,
        addr: SocketAddr,
    ) -> Result<quinn::Connection, String> {
        let endpoint = client_endpoint(addr).map_err(|error| error.to_string())?;
        // Identity is checked by the verifier against the inventory, not
        // by this name.
        let attempt = connect(&endpoint, config, addr, "agent.smarttracker");
        match tokio::time::timeout(self.config.connect_timeout, attempt).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(format!("{error:?}")),
            Err(_) => Err(format!(
                "no answer within {:?}",
                self.config.connect_timeout
            )),
        }
    }

    fn classify_failure(&self, candidate: &Candidate, reason: String) -> Outcome {
        let addr = candidate.addr;
        if reason.contains(UNKNOWN_AGENT_MARKER) || reason.contains("KeyNotPinned") {
            Outcome::Unknown {
                addr,
                claimed_agent: candidate.claimed_agent,
                reason,
            }
        } else if reason.contains("invalid peer certificate")
            || reason.contains("peer doesn't support any known protocol")
            || reason.contains("certificate")
        {
            Outcome::Refused { addr, reason }
        } else {
            if let Some(agent) = candidate.claimed_agent {
                self.note_error(agent, &reason);
            }
            Outcome::Unreachable { addr, reason }
        }
    }

    fn note_error(&self, agent: AgentId, reason: &str) {
        if let Ok(Some(mut record)) = self.store.agent(agent) {
            record.last_error = Some(reason.to_owned());
            let _ = self.store.upsert_agent(&record);
        }
    }

    async fn ask(
        &self,
        connection: &quinn::Connection,
        req: &Request,
    ) -> Result<Response, SyncError> {
        ask_with_timeout(connection, self.config.request_timeout, req).await
    }

    async fn pull_everything(
        &self,
        connection: &quinn::Connection,
        addr: SocketAddr,
    ) -> Result<Outcome, (Option<AgentId>, SyncError)> {
        let hello = Request::Hello(Hello {
            min_version: MIN_VERSION,
            max_version: MAX_VERSION,
            console_name: self.console_name.clone(),
        });
        let reply: HelloReply = match self.ask(connection, &hello).await {
            Ok(Response::Hello(reply)) => reply,
            Ok(_) => return Err((None, SyncError::Unexpected("hello"))),
            Err(error) => return Err((None, error)),
        };
        let agent = reply.agent_id;
        let mut streams = Vec::new();
        for stream in streams_for(self.identity.role) {
            let report = self
                .pull_stream(connection, agent, stream)
                .await
                .map_err(|error| (Some(agent), error))?;
            streams.push(report);
        }
        let now_ms = crate::clock::wall_now_ms();
        let stored: u64 = streams.iter().map(|report| report.stored_records).sum();
        let seen = self
            .store
            .agent(agent)
            .map_err(|error| (Some(agent), error.into()))?;
        if let Some(mut record) = seen {
            record.last_seen_ms = Some(now_ms);
            record.hostname = Some(reply.hostname.clone());
            record.demo = reply.demo;
            record.last_error = None;
            let addr_text = addr.to_string();
            if !record.addresses.contains(&addr_text) {
                record.addresses.insert(0, addr_text);
                record.addresses.truncate(4);
            }
            self.store
                .upsert_agent(&record)
                .map_err(|error| (Some(agent), error.into()))?;
        }
        self.store
            .audit(AuditEntry {
                at_ms: now_ms,
                actor: self.actor(),
                action: "pull".to_owned(),
                target: agent.to_string(),
                detail: format!(
                    "{stored} records ({})",
                    streams
                        .iter()
                        .map(StreamReport::summary)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .map_err(|error| (Some(agent), error.into()))?;
        Ok(Outcome::Synced {
            addr,
            agent,
            hostname: reply.hostname,
            demo: reply.demo,
            streams,
        })
    }

    /// Pulls one stream to its end: store (atomically with the cursor, and
    /// for frames with their encrypted images), flush, then ack, batch
    /// after batch.
    async fn pull_stream(
        &self,
        connection: &quinn::Connection,
        agent: AgentId,
        stream: StreamKind,
    ) -> Result<StreamReport, SyncError> {
        let mut cursor = self
            .store
            .cursor(agent, stream)?
            .unwrap_or(Cursor { epoch: 0, seq: 0 });
        let mut report = StreamReport {
            stream,
            stored_records: 0,
            skipped_duplicates: 0,
            dropped_images: 0,
            cursor,
        };
        let max_records = match stream {
            StreamKind::Frames => FRAMES_PER_PULL.min(self.config.batch_records),
            _ => self.config.batch_records,
        };
        loop {
            let pull = Request::Pull(Pull {
                stream,
                after: cursor,
                max_records,
            });
            let batch = match self.ask(connection, &pull).await? {
                Response::Records(batch) if batch.stream == stream => batch,
                _ => return Err(SyncError::Unexpected("pull")),
            };
            let more = batch.more;
            if batch.records.is_empty() && batch.epoch == cursor.epoch {
                break;
            }
            let frames = self.fetch_frames(connection, &batch, cursor).await?;
            report.dropped_images += frames
                .values()
                .filter(|fetched| matches!(fetched, FetchedFrame::Dropped))
                .count() as u64;
            let ingested = self.store.ingest_with_frames(
                agent,
                &batch,
                &frames,
                crate::clock::wall_now_ms(),
            )?;
            report.stored_records += ingested.stored_records;
            report.skipped_duplicates += ingested.skipped_duplicates;
            cursor = ingested.new_cursor;
            report.cursor = cursor;
            // Durable on our side: now the agent may forget it.
            let ack = Request::Ack(Ack {
                stream,
                upto: cursor,
            });
            match self.ask(connection, &ack).await {
                Ok(Response::Acked(_)) => {}
                // The agent's store was reset between pull and ack: our
                // records are stored; the next pull starts the new epoch.
                Err(SyncError::Agent(ErrorCode::StaleEpoch, _)) => break,
                Ok(_) => return Err(SyncError::Unexpected("ack")),
                Err(error) => return Err(error),
            }
            if !more {
                break;
            }
        }
        Ok(report)
    }

    /// The image of every frame record of `batch` the store does not hold
    /// yet (after `stored` in the same epoch), checked against its record:
    /// an image that does not match is an error for the whole batch; one
    /// the agent no longer has is [`FetchedFrame::Dropped`].
    async fn fetch_frames(
        &self,
        connection: &quinn::Connection,
        batch: &RecordBatch,
        stored: Cursor,
    ) -> Result<HashMap<u64, FetchedFrame>, SyncError> {
        let mut frames = HashMap::new();
        for record in &batch.records {
            let Record::Frame(meta) = &record.record else {
                continue;
            };
            if batch.epoch == stored.epoch && record.seq <= stored.seq {
                continue;
            }
            let at = Cursor {
                epoch: batch.epoch,
                seq: record.seq,
            };
            let fetched = match self.ask(connection, &Request::FetchFrame(at)).await {
                Ok(Response::Image(image)) => {
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
                Ok(_) => return Err(SyncError::Unexpected("fetch-frame")),
                Err(SyncError::Agent(ErrorCode::NotFound, _)) => FetchedFrame::Dropped,
                Err(error) => return Err(error),
            };
            frames.insert(record.seq, fetched);
        }
        Ok(frames)
    }
}

/// Deletes what is past the console's retention (its `retention` setting)
/// at `now_ms`, and audits what went.
pub fn purge(store: &ConsoleStore, now_ms: i64, actor: &str) -> Result<PruneReport, StoreError> {
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
        Ok(Err(error)) => Err(error.into()),
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
                Outcome::Unknown { .. } | Outcome::Refused { .. } | Outcome::Unreachable { .. } => {
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
    fn failing_addresses_back_off_and_recover() {
        let addr: SocketAddr = "10.0.0.5:47100".parse().expect("addr");
        let candidate = Candidate {
            addr,
            claimed_agent: None,
            source: CandidateSource::Static,
        };
        let unreachable = Outcome::Unreachable {
            addr,
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
