//! Framed request/response over QUIC: endpoints with explicit limits, and one
//! bidirectional stream per request carrying one frame each way.
//!
//! The frame format and its caps live in the pure `protocol` codec; this
//! module only moves bytes. A length over the cap is refused after reading
//! its 4-byte prefix, before the body is allocated.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::{body_len, encode_frame, Request, Response, WireMessage, HEADER_BYTES};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, IdleTimeout, RecvStream, SendStream, TransportConfig, VarInt};
use rustls_pki_types::CertificateDer;

/// Application error code sent when a stream is abandoned because the peer's
/// frame was bad (too large, malformed) or the handler failed.
pub const STREAM_ERROR_CODE: u32 = 1;
/// Application close code for a normal, orderly close.
pub const CLOSE_NORMAL: u32 = 0;
/// Application close code of an agent refusing a console or one of its
/// connections; the close reason says why (identity not recognised, too
/// many connections from this console).
pub const CLOSE_REFUSED: u32 = 1;
/// Application close code of an agent closing a connection that carried no
/// request for too long; the close reason says how long.
pub const CLOSE_QUIET: u32 = 2;
/// Application close code of an agent refusing a console limited to a
/// team the workstation is not in.
pub const CLOSE_OTHER_TEAM: u32 = 3;
/// Most bytes a frame body buffer grows by per read: the buffer follows the
/// bytes received, so a peer announcing a large body and sending little
/// costs little memory.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Connection limits, set explicitly on both sides instead of quinn's defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests one peer may have in flight at once (bidirectional streams).
    pub max_concurrent_requests: u32,
    /// Flow-control window of one stream.
    pub stream_receive_window_bytes: u32,
    /// Flow-control window of a whole connection.
    pub connection_receive_window_bytes: u32,
    /// Bytes we may have in flight towards the peer.
    pub send_window_bytes: u64,
    /// A silent connection is closed after this long.
    pub idle_timeout: Duration,
    /// Keep-alive pings so an idle but healthy connection survives.
    pub keep_alive_interval: Duration,
    /// Handshakes the server holds at once before refusing new ones.
    pub max_incoming_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrent_requests: 16,
            stream_receive_window_bytes: 4 * 1024 * 1024,
            connection_receive_window_bytes: 16 * 1024 * 1024,
            send_window_bytes: 16 * 1024 * 1024,
            idle_timeout: Duration::from_secs(30),
            keep_alive_interval: Duration::from_secs(10),
            max_incoming_connections: 64,
        }
    }
}

impl Limits {
    /// An agent's limits: it only ever receives requests (one frame of at
    /// most 64 KiB per stream), so its receive windows hold a few request
    /// frames instead of the 16 MiB responses a console receives.
    pub fn agent() -> Limits {
        Limits {
            stream_receive_window_bytes: 128 * 1024,
            connection_receive_window_bytes: 2 * 1024 * 1024,
            ..Limits::default()
        }
    }

    fn transport_config(&self) -> Result<TransportConfig, TransportError> {
        let mut transport = TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_concurrent_requests))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window_bytes))
            .receive_window(VarInt::from_u32(self.connection_receive_window_bytes))
            .send_window(self.send_window_bytes)
            .max_idle_timeout(Some(
                IdleTimeout::try_from(self.idle_timeout)
                    .map_err(|_| TransportError::BadLimits("idle timeout too long"))?,
            ))
            .keep_alive_interval(Some(self.keep_alive_interval));
        Ok(transport)
    }
}

/// Transport failures, by where they happened.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("TLS configuration is not usable for QUIC: {0}")]
    QuicTls(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    #[error("invalid transport limits: {0}")]
    BadLimits(&'static str),
    #[error("cannot bind UDP socket {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start connecting: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("write failed: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream already closed: {0}")]
    ClosedStream(#[from] quinn::ClosedStream),
    #[error("read failed: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("cannot encode message: {0}")]
    Encode(#[from] protocol::EncodeError),
    #[error("peer sent a bad frame: {0}")]
    Decode(#[from] protocol::DecodeError),
}

/// Builds a quinn server config from a rustls config (see `tls`), with limits.
pub fn server_config(
    tls: rustls::ServerConfig,
    limits: &Limits,
) -> Result<quinn::ServerConfig, TransportError> {
    let crypto = QuicServerConfig::try_from(tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config
        .transport_config(Arc::new(limits.transport_config()?))
        .max_incoming(limits.max_incoming_connections)
        .migration(false);
    Ok(config)
}

/// Builds a quinn client config from a rustls config (see `tls`), with limits.
pub fn client_config(
    tls: rustls::ClientConfig,
    limits: &Limits,
) -> Result<quinn::ClientConfig, TransportError> {
    let crypto = QuicClientConfig::try_from(tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(limits.transport_config()?));
    Ok(config)
}

/// Binds a server endpoint. Must run inside a tokio runtime.
pub fn server_endpoint(
    listen: SocketAddr,
    config: quinn::ServerConfig,
) -> Result<Endpoint, TransportError> {
    Endpoint::server(config, listen).map_err(|source| TransportError::Bind {
        addr: listen,
        source,
    })
}

/// Binds a client endpoint on an ephemeral port of the given family.
pub fn client_endpoint(peer: SocketAddr) -> Result<Endpoint, TransportError> {
    let bind: SocketAddr = if peer.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    Endpoint::client(bind).map_err(|source| TransportError::Bind { addr: bind, source })
}

/// Connects to an agent; `server_name` is the agent's certificate name
/// (`tls::agent_server_name`). The returned connection is fully
/// authenticated: no data flows before the handshake completes.
pub async fn connect(
    endpoint: &Endpoint,
    config: quinn::ClientConfig,
    peer: SocketAddr,
    server_name: &str,
) -> Result<Connection, TransportError> {
    Ok(endpoint.connect_with(config, peer, server_name)?.await?)
}

/// The certificate chain the peer presented, as rustls verified it during
/// the handshake (leaf first); `None` when it presented none. Identities
/// are read from this chain, never from what the peer says in a message.
pub fn peer_chain(conn: &Connection) -> Option<Vec<CertificateDer<'static>>> {
    conn.peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()
        .map(|chain| *chain)
}

/// Writes one frame and finishes the send side.
pub async fn write_message<M: WireMessage>(
    send: &mut SendStream,
    message: &M,
) -> Result<(), TransportError> {
    let frame = encode_frame(message)?;
    send.write_all(&frame).await?;
    send.finish()?;
    Ok(())
}

/// Reads one frame. The length prefix is checked against `M`'s cap before
/// anything is allocated, and the body buffer then grows with the bytes
/// that actually arrive (at most [`READ_CHUNK_BYTES`] per read, at most
/// doubling), never beyond the announced length.
pub async fn read_message<M: WireMessage>(recv: &mut RecvStream) -> Result<M, TransportError> {
    let mut header = [0u8; HEADER_BYTES];
    recv.read_exact(&mut header).await?;
    let len = body_len::<M>(header)?;
    let mut body = Vec::new();
    while body.len() < len {
        let wanted = (len - body.len()).min(READ_CHUNK_BYTES);
        let chunk = recv
            .read_chunk(wanted, true)
            .await
            .map_err(quinn::ReadExactError::ReadError)?
            .ok_or(quinn::ReadExactError::FinishedEarly(body.len()))?;
        let needed = body.len() + chunk.bytes.len();
        if needed > body.capacity() {
            let capacity = needed.max(body.capacity().saturating_mul(2)).min(len);
            body.reserve_exact(capacity - body.len());
        }
        body.extend_from_slice(&chunk.bytes);
    }
    Ok(M::decode_body(&body)?)
}

/// Sends one request on a new stream and waits for its response.
pub async fn request(conn: &Connection, request: &Request) -> Result<Response, TransportError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    write_message(&mut send, request).await?;
    let response = read_message::<Response>(&mut recv).await;
    if response.is_err() {
        // Tell the agent we gave up on this stream; harmless if already done.
        let _ = recv.stop(VarInt::from_u32(STREAM_ERROR_CODE));
    }
    response
}

/// Abandons a stream whose incoming frame was bad: the peer learns of it by
/// the error code, and nothing else on the connection is affected.
pub fn reject_stream(send: &mut SendStream, recv: &mut RecvStream) {
    let code = VarInt::from_u32(STREAM_ERROR_CODE);
    let _ = send.reset(code);
    let _ = recv.stop(code);
}
