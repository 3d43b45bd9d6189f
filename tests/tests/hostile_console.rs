//! Hostile consoles against a real agent: `smarttracker-agent run --sensors
//! demo` over real QUIC, and quinn clients written here holding real console
//! certificates of the site. They hold idle connections, half-send requests,
//! send them a byte a second, never take a response, keep connections alive
//! without asking anything, and flood the agent with handshakes that never
//! finish. The agent must close or reset each within its configured limits,
//! stay small, store nothing of them, and keep serving an honest console's
//! `sync --once` meanwhile.
//!
//! Hostile peers connect from 127.0.0.2 and the honest console from
//! 127.0.0.1 (both loopback on Linux), so per-address limits are exercised
//! deterministically.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certs::tls::{agent_server_name, console_client_config, AgentPin};
use certs::transport::{
    client_config, connect, request, Limits, TransportError, CLOSE_QUIET, CLOSE_REFUSED,
    STREAM_ERROR_CODE,
};
use certs::{spki_sha256, AgentIdentity, ConsoleIdentity};
use harness::{bin, run_ok, Agent, Site};
use protocol::{
    encode_frame, Cursor, Hello, Pull, Request, Response, StreamKind, MAX_VERSION, MIN_VERSION,
};

/// Where every hostile peer connects from.
const HOSTILE_IP: &str = "127.0.0.2";

/// A real agent of a fresh site with one day of demo history, and the
/// runtime the hostile clients run on.
struct Lab {
    site: Site,
    agent: Agent,
    addr: SocketAddr,
    agent_identity: AgentIdentity,
    runtime: tokio::runtime::Runtime,
}

impl Lab {
    /// Starts the agent with `limit_flags` added to its command line.
    fn start(limit_flags: &[&str]) -> Lab {
        let site = Site::create();
        let data = site.add_agent("pc-1");
        let agent_identity =
            AgentIdentity::read_bundle(&site.path("pc-1.bundle")).expect("agent bundle");
        let mut args = vec!["--no-mdns", "--demo-history-days", "1"];
        args.extend_from_slice(limit_flags);
        let mut agent = Agent::start(&data, "127.0.0.1:0", &args);
        let addr = agent.wait_live().listen.parse().expect("listen address");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        Lab {
            site,
            agent,
            addr,
            agent_identity,
            runtime,
        }
    }

    /// A client on [`HOSTILE_IP`] holding a fresh console certificate of
    /// `role`, with the transport `limits` it chose.
    fn hostile(&self, role: &str, name: &str, limits: Limits) -> Hostile {
        let identity =
            ConsoleIdentity::read(&self.site.issue_console(role, name)).expect("console identity");
        let pin = AgentPin {
            agent_id: self.agent_identity.agent_id,
            spki_sha256: spki_sha256(&self.agent_identity.cert_der).expect("agent certificate"),
        };
        let config = client_config(
            console_client_config(&identity, pin).expect("client TLS"),
            &limits,
        )
        .expect("client config");
        let _runtime = self.runtime.enter();
        let endpoint = quinn::Endpoint::client(hostile_bind()).expect("bind 127.0.0.2");
        Hostile {
            console_id: identity.console_id.to_string(),
            endpoint,
            config,
            agent: self.addr,
            server_name: agent_server_name(self.agent_identity.agent_id),
        }
    }

    /// `sync --once` of the site's admin console, from 127.0.0.1.
    fn honest_sync(&self) -> Command {
        self.site.console(&[
            "sync",
            "--once",
            "--no-mdns",
            "--peer",
            &self.addr.to_string(),
        ])
    }

    /// Resident memory of the agent process.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.agent.child.id()))
            .expect("/proc/PID/status of the agent");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in kB")
    }

    /// The request kinds of the agent's access log made by `console_id`,
    /// from `smarttracker-agent status --json` once the status was written
    /// after this call began (so it holds everything asked until then).
    fn access_by(&self, console_id: &str) -> Vec<String> {
        let since_ms = wall_now_ms();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = run_ok(
                Command::new(bin("smarttracker-agent"))
                    .args(["status", "--json", "--data"])
                    .arg(&self.agent.data),
            );
            let status: serde_json::Value =
                serde_json::from_slice(&output.stdout).expect("status is JSON");
            if status["written_at_ms"].as_i64().expect("written_at_ms") > since_ms {
                return status["recent_access"]
                    .as_array()
                    .expect("recent_access")
                    .iter()
                    .filter(|entry| entry["console_id"] == console_id)
                    .map(|entry| entry["request"].as_str().expect("request").to_owned())
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "the agent stopped writing its status"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The agent is still running: no panic, no exit.
    fn assert_alive(&mut self) {
        assert!(
            self.agent.child.try_wait().expect("agent state").is_none(),
            "the agent exited under hostile consoles"
        );
    }
}

/// A hostile console's client.
struct Hostile {
    console_id: String,
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    agent: SocketAddr,
    server_name: String,
}

impl Hostile {
    async fn connect(&self) -> Result<quinn::Connection, TransportError> {
        connect(
            &self.endpoint,
            self.config.clone(),
            self.agent,
            &self.server_name,
        )
        .await
    }
}

/// A console's usual limits with keep-alives every `interval`.
fn keep_alive(interval: Duration) -> Limits {
    Limits {
        keep_alive_interval: interval,
        ..Limits::default()
    }
}

fn hostile_bind() -> SocketAddr {
    SocketAddr::new(HOSTILE_IP.parse().expect("address"), 0)
}

fn wall_now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("milliseconds fit")
}

fn hello(console_name: &str) -> Request {
    Request::Hello(Hello {
        min_version: MIN_VERSION,
        max_version: MAX_VERSION,
        console_name: console_name.to_owned(),
    })
}

async fn say_hello(conn: &quinn::Connection) {
    match request(conn, &hello("hostile")).await {
        Ok(Response::Hello(_)) => {}
        other => panic!("hello on a hostile connection: {other:?}"),
    }
}

/// The application close code and reason the agent closed `error` with.
fn agent_close(error: quinn::ConnectionError) -> (u64, String) {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => (
            close.error_code.into_inner(),
            String::from_utf8_lossy(&close.reason).into_owned(),
        ),
        other => panic!("the agent should close with a reason a console can read, not {other}"),
    }
}

/// Waits (at most `bound`) for the agent to close `conn`.
async fn closed_within(conn: &quinn::Connection, bound: Duration) -> (u64, String) {
    match tokio::time::timeout(bound, conn.closed()).await {
        Ok(error) => agent_close(error),
        Err(_) => panic!("the agent did not close the connection within {bound:?}"),
    }
}

/// The records an honest `sync --once` stored, from its report.
fn synced_records(command: &mut Command) -> u64 {
    let output = run_ok(command);
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        report.starts_with("synced "),
        "the honest console must be served: {report}"
    );
    report
        .split(['+', ','])
        .skip(1)
        .filter_map(|part| part.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn idle_connections_beyond_every_limit_are_closed_while_an_honest_console_syncs() {
    const PER_CONSOLE: usize = 4;
    const FIRST_REQUEST_MS: u64 = 8_000;
    let mut lab = Lab::start(&[
        "--max-connections-per-console",
        "4",
        "--first-request-timeout-ms",
        "8000",
    ]);
    let honest_id = ConsoleIdentity::read(&lab.site.console_data().join("identity"))
        .expect("honest console")
        .console_id
        .to_string();
    let rss_before_kib = lab.rss_kib();
    // A viewer is enough to try it.
    let hostile = lab.hostile("viewer", "idler", keep_alive(Duration::from_secs(1)));

    // 40 connections, more than the agent's 32 in all, never asking
    // anything: the console's share is held, the rest refused at once.
    let held = lab.runtime.block_on(async {
        let mut held = Vec::new();
        for _ in 0..PER_CONSOLE {
            let conn = hostile
                .connect()
                .await
                .expect("the first connections are admitted");
            held.push((conn, Instant::now()));
        }
        for attempt in PER_CONSOLE..40 {
            let error = match hostile.connect().await {
                Ok(conn) => {
                    let at_once = Duration::from_millis(FIRST_REQUEST_MS / 2);
                    match tokio::time::timeout(at_once, conn.closed()).await {
                        Ok(error) => error,
                        Err(_) => panic!(
                            "connection {attempt} was not refused within {at_once:?} \
                             ({} of the held connections had lapsed already)",
                            held.iter()
                                .filter(|(conn, _): &&(quinn::Connection, Instant)| {
                                    conn.close_reason().is_some()
                                })
                                .count()
                        ),
                    }
                }
                Err(TransportError::Connection(error)) => error,
                Err(other) => panic!("connection {attempt}: {other}"),
            };
            let (code, reason) = agent_close(error);
            assert_eq!(
                code,
                u64::from(CLOSE_REFUSED),
                "connection {attempt}: {reason}"
            );
            assert_eq!(
                reason, "too many connections from this console (at most 4 at once)",
                "connection {attempt}"
            );
        }
        held
    });

    // Meanwhile another console syncs and gets records.
    let stored = synced_records(&mut lab.honest_sync());
    assert!(stored > 0, "the honest console got records");

    // The held connections are closed after the first-request deadline,
    // though the client keeps them alive.
    lab.runtime.block_on(async {
        for (conn, connected) in &held {
            let (code, reason) =
                closed_within(conn, Duration::from_millis(3 * FIRST_REQUEST_MS)).await;
            assert_eq!(code, u64::from(CLOSE_QUIET), "{reason}");
            assert_eq!(reason, "no request within 8000 ms of the handshake");
            assert!(
                connected.elapsed() >= Duration::from_millis(FIRST_REQUEST_MS),
                "closed before its deadline: {:?}",
                connected.elapsed()
            );
        }
    });

    let rss_after_kib = lab.rss_kib();
    assert!(
        rss_after_kib < rss_before_kib + 64 * 1024,
        "agent RSS grew from {rss_before_kib} kB to {rss_after_kib} kB"
    );
    lab.assert_alive();
    // The hostile console asked nothing and nothing of it is logged; the
    // honest console's requests are.
    let honest = lab.access_by(&honest_id);
    assert!(honest.iter().any(|kind| kind == "hello"), "{honest:?}");
    assert!(honest.iter().any(|kind| kind == "pull"), "{honest:?}");
    assert_eq!(lab.access_by(&hostile.console_id), Vec::<String>::new());
    lab.agent.stop();
}

/// Opens a stream, writes `bytes` (less than a whole request frame) and
/// waits for the agent to reset it; returns how long that took.
async fn stalled_stream(conn: quinn::Connection, bytes: &'static [u8]) -> Duration {
    let (mut send, mut recv) = conn.open_bi().await.expect("stream");
    send.write_all(bytes).await.expect("write");
    let started = Instant::now();
    let mut buf = [0u8; 64];
    match recv.read(&mut buf).await {
        Err(quinn::ReadError::Reset(code)) => {
            assert_eq!(code.into_inner(), u64::from(STREAM_ERROR_CODE))
        }
        other => panic!("the agent should reset a half-sent request, not answer {other:?}"),
    }
    started.elapsed()
}

/// Sends a whole, valid request frame one byte a second, and waits for the
/// agent to reset the stream first; returns how long that took.
async fn slowloris(conn: quinn::Connection) -> Duration {
    let frame = encode_frame(&hello("slow")).expect("frame");
    let (mut send, mut recv) = conn.open_bi().await.expect("stream");
    let started = Instant::now();
    let trickle = async {
        for byte in frame {
            if send.write_all(&[byte]).await.is_err() {
                // The agent stopped reading: wait for the reset below.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let mut buf = [0u8; 64];
    tokio::select! {
        () = trickle => panic!("a request sent a byte a second was waited for to the end"),
        read = recv.read(&mut buf) => match read {
            Err(quinn::ReadError::Reset(code)) => {
                assert_eq!(code.into_inner(), u64::from(STREAM_ERROR_CODE))
            }
            other => panic!("the agent should reset a slowloris request, not {other:?}"),
        },
    }
    started.elapsed()
}

#[test]
fn half_sent_and_slowloris_requests_are_reset_in_time_and_nothing_of_them_is_stored() {
    const REQUEST_MS: u64 = 1_500;
    let mut lab = Lab::start(&[
        "--request-timeout-ms",
        "1500",
        "--first-request-timeout-ms",
        "60000",
        "--request-idle-timeout-ms",
        "60000",
    ]);
    let hostile = lab.hostile("viewer", "trickler", keep_alive(Duration::from_secs(1)));
    let conn = lab.runtime.block_on(async {
        let conn = hostile.connect().await.expect("connect");
        say_hello(&conn).await;
        conn
    });

    let mut stalled = tokio::task::JoinSet::new();
    {
        let _runtime = lab.runtime.enter();
        for _ in 0..5 {
            // A length prefix announcing 100 bytes, then 3 of them.
            stalled.spawn(stalled_stream(conn.clone(), &[0, 0, 0, 100, 1, 2, 3]));
            // Half a length prefix.
            stalled.spawn(stalled_stream(conn.clone(), &[0, 0]));
        }
        for _ in 0..3 {
            stalled.spawn(slowloris(conn.clone()));
        }
    }
    // Meanwhile an honest console syncs.
    let stored = synced_records(&mut lab.honest_sync());
    assert!(stored > 0, "the honest console got records");

    lab.runtime.block_on(async {
        let mut streams = 0;
        while let Some(joined) = stalled.join_next().await {
            let took = joined.expect("stream task");
            assert!(
                took >= Duration::from_millis(REQUEST_MS)
                    && took < Duration::from_millis(3 * REQUEST_MS),
                "stream reset after {took:?}, deadline {REQUEST_MS} ms"
            );
            streams += 1;
        }
        assert_eq!(streams, 13);
        // The connection itself stays usable.
        say_hello(&conn).await;
    });

    lab.assert_alive();
    // Only the two whole hellos are in the access log.
    assert_eq!(lab.access_by(&hostile.console_id), ["hello", "hello"]);
    lab.agent.stop();
}

#[test]
fn a_response_the_console_never_takes_is_abandoned_in_time() {
    const RESPONSE_MS: u64 = 1_500;
    let mut lab = Lab::start(&[
        "--response-timeout-ms",
        "1500",
        "--request-idle-timeout-ms",
        "60000",
    ]);
    // A console that lets the agent send it 1 KiB and never reads: a day
    // of health samples cannot be handed over.
    let hostile = lab.hostile(
        "viewer",
        "sponge",
        Limits {
            stream_receive_window_bytes: 1024,
            connection_receive_window_bytes: 1024,
            ..Limits::default()
        },
    );
    lab.runtime.block_on(async {
        let conn = hostile.connect().await.expect("connect");
        let (mut send, mut recv) = conn.open_bi().await.expect("stream");
        let pull = Request::Pull(Pull {
            stream: StreamKind::Health,
            after: Cursor { epoch: 0, seq: 0 },
            max_records: 5_000,
        });
        send.write_all(&encode_frame(&pull).expect("frame"))
            .await
            .expect("write");
        send.finish().expect("finish");
        // Not reading for twice the deadline; then the stream turns out
        // reset rather than answered.
        tokio::time::sleep(Duration::from_millis(2 * RESPONSE_MS)).await;
        let mut received_bytes = 0;
        let mut buf = vec![0u8; 4096];
        loop {
            match recv.read(&mut buf).await {
                Ok(Some(read)) => received_bytes += read,
                Ok(None) => panic!("the whole response arrived ({received_bytes} bytes)"),
                Err(quinn::ReadError::Reset(code)) => {
                    assert_eq!(code.into_inner(), u64::from(STREAM_ERROR_CODE));
                    break;
                }
                Err(other) => panic!("{other}"),
            }
        }
        assert!(
            received_bytes <= 1024,
            "{received_bytes} bytes past the window"
        );
        // The connection goes on.
        say_hello(&conn).await;
    });
    lab.assert_alive();
    // The pull was a whole request: it is logged, and so is the hello.
    assert_eq!(lab.access_by(&hostile.console_id), ["pull", "hello"]);
    lab.agent.stop();
}

#[test]
fn connections_kept_alive_without_requests_are_closed_and_busy_ones_are_not() {
    const FIRST_REQUEST_MS: u64 = 2_000;
    const IDLE_MS: u64 = 3_000;
    let mut lab = Lab::start(&[
        "--first-request-timeout-ms",
        "2000",
        "--request-idle-timeout-ms",
        "3000",
    ]);
    // Keep-alives far more often than the agent's limits.
    let hostile = lab.hostile("viewer", "lingerer", keep_alive(Duration::from_millis(300)));
    lab.runtime.block_on(async {
        let silent = hostile.connect().await.expect("connect");
        let silent_since = Instant::now();
        let idle = hostile.connect().await.expect("connect");
        say_hello(&idle).await;
        let idle_since = Instant::now();
        let busy = hostile.connect().await.expect("connect");

        // A console that keeps asking (a live view) keeps its connection
        // for well over the idle limit.
        let busy_since = Instant::now();
        while busy_since.elapsed() < Duration::from_millis(2 * IDLE_MS) {
            say_hello(&busy).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            busy.close_reason().is_none(),
            "a busy connection was closed"
        );

        let (code, reason) =
            closed_within(&silent, Duration::from_millis(3 * FIRST_REQUEST_MS)).await;
        assert_eq!(code, u64::from(CLOSE_QUIET));
        assert_eq!(reason, "no request within 2000 ms of the handshake");
        assert!(silent_since.elapsed() >= Duration::from_millis(FIRST_REQUEST_MS));

        let (code, reason) = closed_within(&idle, Duration::from_millis(3 * IDLE_MS)).await;
        assert_eq!(code, u64::from(CLOSE_QUIET));
        assert_eq!(reason, "no request for 3000 ms");
        assert!(idle_since.elapsed() >= Duration::from_millis(IDLE_MS));
        // Keep-alives flowed all along: only the agent's rule closed it.
        assert!(
            idle.stats().frame_tx.ping > 0,
            "the client sent keep-alives"
        );

        // Once the busy console stops asking, it is closed as well.
        let (code, reason) = closed_within(&busy, Duration::from_millis(3 * IDLE_MS)).await;
        assert_eq!(
            (code, reason.as_str()),
            (u64::from(CLOSE_QUIET), "no request for 3000 ms")
        );
    });
    lab.assert_alive();
    lab.agent.stop();
}

/// Datagram relay for handshakes that never finish: the hostile client
/// sends to `front`, the relay forwards from `back` (on [`HOSTILE_IP`]) to
/// the agent, and hands back only the agent's Retry packets, so clients
/// prove their address and then never learn the handshake keys. Notes the
/// connections the agent answered past the retry (in flight or refused).
struct Relay {
    front: SocketAddr,
    answered: Arc<Mutex<HashSet<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(agent: SocketAddr) -> Relay {
        let front = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("relay front");
        let back = tokio::net::UdpSocket::bind(hostile_bind())
            .await
            .expect("relay back");
        let front_addr = front.local_addr().expect("relay address");
        let answered = Arc::new(Mutex::new(HashSet::new()));
        let noted = answered.clone();
        let task = tokio::spawn(async move {
            let mut client = None;
            let mut from_client = [0u8; 2048];
            let mut from_agent = [0u8; 2048];
            loop {
                tokio::select! {
                    received = front.recv_from(&mut from_client) => {
                        let Ok((len, sender)) = received else { return };
                        client = Some(sender);
                        let _ = back.send_to(&from_client[..len], agent).await;
                    }
                    received = back.recv(&mut from_agent) => {
                        let Ok(len) = received else { return };
                        let datagram = &from_agent[..len];
                        match (datagram.first(), client) {
                            // Long header, type Retry.
                            (Some(first), Some(client)) if first & 0xf0 == 0xf0 => {
                                let _ = front.send_to(datagram, client).await;
                            }
                            // Any other long-header packet: the agent took
                            // up (or refused) the handshake of the
                            // connection it names.
                            (Some(first), _) if first & 0x80 != 0 => {
                                if let Some(dcid) = destination_cid(datagram) {
                                    noted.lock().expect("lock").insert(dcid.to_vec());
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        });
        Relay {
            front: front_addr,
            answered,
            task,
        }
    }

    fn answered(&self) -> usize {
        self.answered.lock().expect("lock").len()
    }
}

/// The destination connection id of a QUIC long-header packet.
fn destination_cid(datagram: &[u8]) -> Option<&[u8]> {
    let len = usize::from(*datagram.get(5)?);
    datagram.get(6..6 + len)
}

#[test]
fn a_handshake_flood_from_one_address_is_bounded_and_others_get_through() {
    const PER_IP: usize = 3;
    const FLOOD: usize = 10;
    const HANDSHAKE_MS: u64 = 5_000;
    let mut lab = Lab::start(&[
        "--max-handshakes-per-ip",
        "3",
        "--handshake-timeout-ms",
        "5000",
    ]);
    let flooder = lab.hostile("viewer", "flooder", keep_alive(Duration::from_secs(1)));
    let prober = lab.hostile("viewer", "prober", keep_alive(Duration::from_secs(1)));
    let agent = lab.addr;

    let (relay, flood, flood_endpoint) = lab.runtime.block_on(async {
        let relay = Relay::start(agent).await;
        let endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("flood endpoint");
        let flood: Vec<quinn::Connecting> = (0..FLOOD)
            .map(|_| {
                endpoint
                    .connect_with(flooder.config.clone(), relay.front, &flooder.server_name)
                    .expect("connect")
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while relay.answered() < FLOOD {
            assert!(
                Instant::now() < deadline,
                "the agent answered {} of {FLOOD} handshakes",
                relay.answered()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // All ten reached the agent past the retry: three are in flight and
        // hang, the others were refused. One more from the same address is
        // refused too…
        match prober.connect().await {
            Err(TransportError::Connection(quinn::ConnectionError::ConnectionClosed(close))) => {
                assert_eq!(
                    close.error_code,
                    quinn::TransportErrorCode::CONNECTION_REFUSED,
                    "{close}"
                )
            }
            other => panic!(
                "{PER_IP} hanging handshakes from {HOSTILE_IP} should refuse another: {other:?}"
            ),
        }
        (relay, flood, endpoint)
    });
    // …while a console on another address is served.
    let stored = synced_records(&mut lab.honest_sync());
    assert!(stored > 0, "the honest console got records");

    // The flood stops; its handshakes end at their deadline and the
    // address is served again.
    let stopped = Instant::now();
    relay.task.abort();
    drop(flood);
    flood_endpoint.close(0u32.into(), b"");
    lab.runtime.block_on(async {
        loop {
            match prober.connect().await {
                Ok(conn) => {
                    say_hello(&conn).await;
                    break;
                }
                Err(refused) => assert!(
                    stopped.elapsed() < Duration::from_millis(3 * HANDSHAKE_MS),
                    "{HOSTILE_IP} still refused {:?} after the flood stopped: {refused}",
                    stopped.elapsed()
                ),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    lab.assert_alive();
    assert_eq!(lab.access_by(&flooder.console_id), Vec::<String>::new());
    assert_eq!(lab.access_by(&prober.console_id), ["hello"]);
    lab.agent.stop();
}
