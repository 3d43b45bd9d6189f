//! The agent's QUIC service: a listener, a handler per connection and per
//! stream, and a shutdown signal (the mini-redis skeleton).
//!
//! Every connection is mutually authenticated before any byte of it is read
//! (the TLS config requires a site-CA client certificate); every request is
//! authorised by the console's role and written to the access log.

use std::sync::Arc;
use std::time::Duration;

use certs::tls::{console_peer, ConsolePeer};
use certs::transport::{read_message, reject_stream, write_message};
use protocol::{
    negotiate_version, AckReply, ErrorCode, ErrorReply, HelloReply, Policy, Request, Response,
    MAX_VERSION, MIN_VERSION,
};
use quinn::{Connection, Endpoint, Incoming};
use rustls_pki_types::CertificateDer;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::access::{authorize, validate_policy};
use crate::clock::wall_now_ms;
use crate::settings::save_policy;
use crate::store::{AccessEntry, Store, StoreError};

/// Most records one pull returns, whatever the console asks for.
pub const MAX_PULL_RECORDS: u32 = 5_000;
/// Consoles connected at once; more are refused at the handshake.
pub const MAX_CONNECTIONS: usize = 32;
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
}

impl Service {
    /// Answers one authenticated, well-formed request. Blocking store work
    /// is small (a pull is capped), so it runs inline.
    pub fn handle(&self, peer: &ConsolePeer, request: Request) -> Response {
        let kind = request.kind();
        let (response, detail) = match authorize(peer.role, &request) {
            Err(reason) => (error(ErrorCode::Forbidden, reason.clone()), reason),
            Ok(()) => self.dispatch(peer, request),
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
            console_name: String::new(),
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

    fn dispatch(&self, peer: &ConsolePeer, request: Request) -> (Response, String) {
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
            Request::Screenshot(_)
            | Request::LiveStart(_)
            | Request::LiveFrame(_)
            | Request::LiveStop(_)
            | Request::FetchFrame(_) => (
                error(ErrorCode::CaptureUnavailable, "not wired yet".to_owned()),
                String::new(),
            ),
        }
    }
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
    loop {
        tokio::select! {
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

/// The console's certificate chain as rustls verified it.
fn peer_certificates(conn: &Connection) -> Option<Vec<CertificateDer<'static>>> {
    conn.peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()
        .map(|certs| *certs)
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
    let peer = match peer_certificates(&conn).map(|chain| console_peer(&chain)) {
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
    let peer = Arc::new(peer);
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            stream = conn.accept_bi() => match stream {
                Ok((mut send, mut recv)) => {
                    let service = service.clone();
                    let peer = peer.clone();
                    streams.spawn(async move {
                        let request = match read_message::<Request>(&mut recv).await {
                            Ok(request) => request,
                            Err(bad_frame) => {
                                tracing::warn!(%bad_frame, "bad request frame; stream reset");
                                reject_stream(&mut send, &mut recv);
                                return;
                            }
                        };
                        let response = service.handle(&peer, request);
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
