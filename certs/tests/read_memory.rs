//! `read_message` over real QUIC: a peer that announces the largest
//! response (16 MiB) and sends a few bytes costs a few bytes, not the
//! announced length (measured with a counting allocator), and bodies longer
//! than one read chunk still arrive whole.

#![allow(unsafe_code)] // the counting allocator below; nothing else

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use certs::tls::{agent_server_config, agent_server_name, console_client_config, AgentPin};
use certs::transport::{
    client_config, client_endpoint, connect, read_message, server_config, server_endpoint, Limits,
    TransportError, READ_CHUNK_BYTES,
};
use certs::{spki_sha256, Role, SiteCa, Validity};
use protocol::{encode_frame, ErrorCode, ErrorReply, Response, MAX_RESPONSE_BODY_BYTES};
use time::OffsetDateTime;

/// Records the largest single allocation made by the current thread.
struct LargestAllocation;

thread_local! {
    static LARGEST_BYTES: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the only
// extra work is a thread-local max over the requested size.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_BYTES.with(|largest| largest.set(largest.get().max(layout.size())));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_BYTES.with(|largest| largest.set(largest.get().max(new_size)));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// What the test agent sends on each stream the console opens, in order.
enum Reply {
    /// These bytes, and the stream is left open.
    Stall(Vec<u8>),
    /// These bytes, then the stream is finished.
    Finish(Vec<u8>),
}

/// A console connection to an agent that answers each stream with the
/// next of `replies` (raw bytes, whatever the console asked).
async fn connection_to(replies: Vec<Reply>) -> (quinn::Connection, quinn::Endpoint) {
    let dir = tempfile::tempdir().expect("tempdir");
    let validity = Validity::days_from(OffsetDateTime::now_utc(), 30);
    let ca = SiteCa::init(&dir.path().join("site"), "Memory", None, validity).expect("CA");
    let agent = ca.issue_agent(None, validity).expect("agent");
    let console = ca
        .issue_console(Role::Viewer, "reader", validity)
        .expect("console");
    let server = server_endpoint(
        "127.0.0.1:0".parse::<SocketAddr>().expect("addr"),
        server_config(
            agent_server_config(&agent, certs::deny::DenySet::default()).expect("server TLS"),
            &Limits::agent(),
        )
        .expect("server config"),
    )
    .expect("bind");
    let addr = server.local_addr().expect("address");
    tokio::spawn(async move {
        let Some(incoming) = server.accept().await else {
            return;
        };
        let Ok(conn) = incoming.await else { return };
        // Streams left open stay open until the console goes.
        let mut stalled = Vec::new();
        for reply in replies {
            let Ok((mut send, _recv)) = conn.accept_bi().await else {
                return;
            };
            match reply {
                Reply::Stall(bytes) => {
                    send.write_all(&bytes).await.expect("write");
                    stalled.push(send);
                }
                Reply::Finish(bytes) => {
                    send.write_all(&bytes).await.expect("write");
                    send.finish().expect("finish");
                }
            }
        }
        conn.closed().await;
    });
    let pin = AgentPin {
        agent_id: agent.agent_id,
        spki_sha256: spki_sha256(&agent.cert_der).expect("agent certificate"),
    };
    let endpoint = client_endpoint(addr).expect("client endpoint");
    let config = client_config(
        console_client_config(&console, pin).expect("client TLS"),
        &Limits::default(),
    )
    .expect("client config");
    let conn = connect(&endpoint, config, addr, &agent_server_name(agent.agent_id))
        .await
        .expect("connect");
    (conn, endpoint)
}

/// A length prefix announcing the largest response body, and 100 bytes.
fn announced_largest() -> Vec<u8> {
    let mut bytes = u32::try_from(MAX_RESPONSE_BODY_BYTES)
        .expect("cap fits a prefix")
        .to_be_bytes()
        .to_vec();
    bytes.extend_from_slice(&[7u8; 100]);
    bytes
}

/// Opens a stream, sends one byte (so the agent sees it) and reads one
/// response frame, for at most `wait`; returns the outcome and the largest
/// allocation made meanwhile on this thread (the runtime is
/// current-thread, so the QUIC driver's allocations count too).
async fn read_one(
    conn: &quinn::Connection,
    wait: std::time::Duration,
) -> (Option<Result<Response, TransportError>>, usize) {
    let (mut send, mut recv) = conn.open_bi().await.expect("stream");
    send.write_all(&[0]).await.expect("write");
    LARGEST_BYTES.with(|largest| largest.set(0));
    let read = tokio::time::timeout(wait, read_message::<Response>(&mut recv))
        .await
        .ok();
    (read, LARGEST_BYTES.with(Cell::get))
}

#[tokio::test]
async fn a_peer_announcing_16_mib_and_sending_little_costs_little() {
    let (conn, _endpoint) = connection_to(vec![
        Reply::Stall(announced_largest()),
        Reply::Finish(announced_largest()),
    ])
    .await;

    // Announced, never sent: the reader waits with a small buffer.
    let (read, largest_bytes) = read_one(&conn, std::time::Duration::from_millis(500)).await;
    assert!(read.is_none(), "nothing whole arrived: {read:?}");
    assert!(
        largest_bytes < 1024 * 1024,
        "waiting for an announced 16 MiB body allocated {largest_bytes} bytes"
    );

    // Announced, then the stream ends early: an error, still small.
    let (read, largest_bytes) = read_one(&conn, std::time::Duration::from_secs(10)).await;
    assert!(
        matches!(
            read,
            Some(Err(TransportError::Read(
                quinn::ReadExactError::FinishedEarly(100)
            )))
        ),
        "{read:?}"
    );
    assert!(
        largest_bytes < 1024 * 1024,
        "allocated {largest_bytes} bytes"
    );
}

#[tokio::test]
async fn bodies_longer_than_a_read_chunk_arrive_whole() {
    let long = Response::Error(ErrorReply {
        code: ErrorCode::Internal,
        message: "x".repeat(5 * READ_CHUNK_BYTES + 17),
    });
    let short = Response::Error(ErrorReply {
        code: ErrorCode::NotFound,
        message: String::new(),
    });
    let (conn, _endpoint) = connection_to(vec![
        Reply::Finish(encode_frame(&long).expect("frame")),
        Reply::Finish(encode_frame(&short).expect("frame")),
    ])
    .await;
    for expected in [long, short] {
        let (read, _) = read_one(&conn, std::time::Duration::from_secs(10)).await;
        let response = read.expect("in time").expect("a whole frame");
        assert_eq!(response, expected);
    }
}
