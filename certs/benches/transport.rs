//! Transport benchmark on loopback with real certificates: full mTLS
//! handshake plus one request (p50/p99), and 1 MiB of framed records through
//! one stream as a ratio to a bare quinn stream measured in the same run.
//!
//! `cargo bench -p smarttracker-certs --bench transport [-- --runs N]`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certs::tls::{
    agent_server_config, agent_server_name, console_client_config, console_peer, AgentPin,
};
use certs::transport::{
    client_config, client_endpoint, connect, read_message, request, server_config, server_endpoint,
    write_message, Limits,
};
use certs::{spki_sha256, Role, SiteCa, Validity};
use protocol::{
    Hello, HelloReply, Record, RecordBatch, Request, Response, SeqRecord, StreamKind, UsageSpan,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

const PAYLOAD_BYTES: usize = 1024 * 1024;

fn records_batch() -> Response {
    let mut records = Vec::new();
    let mut seq = 0;
    // Grow until the encoded batch is about 1 MiB.
    while protocol::encode_frame(&Response::Records(RecordBatch {
        stream: StreamKind::Usage,
        epoch: 1,
        records: records.clone(),
        more: false,
    }))
    .map(|frame| frame.len())
    .unwrap_or(0)
        < PAYLOAD_BYTES
    {
        for _ in 0..256 {
            seq += 1;
            records.push(SeqRecord {
                seq,
                record: Record::Usage(UsageSpan {
                    start_ms: 1_700_000_000_000 + seq as i64 * 1000,
                    end_ms: 1_700_000_000_000 + seq as i64 * 1000 + 900,
                    app: "Visual Studio Code".into(),
                    raw_app: "code".into(),
                    title: None,
                }),
            });
        }
    }
    Response::Records(RecordBatch {
        stream: StreamKind::Usage,
        epoch: 1,
        records,
        more: false,
    })
}

fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * pct / 100.0).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    // `cargo nextest --all-targets` lists every target with `--list`: a
    // bench binary holds no tests, so it lists none.
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let runs: usize = std::env::args()
        .skip_while(|arg| arg != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(bench(runs))
}

async fn bench(runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let validity = Validity::days_from(OffsetDateTime::now_utc(), 30);
    let ca = SiteCa::init(&dir.path().join("site"), "Bench", None, validity)?;
    let agent = ca.issue_agent(Some("bench-agent"), validity)?;
    let console = ca.issue_console(Role::Admin, "bench-console", validity)?;
    let pin = AgentPin {
        agent_id: agent.agent_id,
        spki_sha256: spki_sha256(&agent.cert_der)?,
    };
    let limits = Limits::default();
    let endpoint = server_endpoint(
        "127.0.0.1:0".parse()?,
        server_config(
            agent_server_config(&agent, certs::deny::DenySet::default())?,
            &limits,
        )?,
    )?;
    let addr: SocketAddr = endpoint.local_addr()?;
    let batch = Arc::new(records_batch());
    let codec_timing = codec_only(&batch)?;
    let server_batch = batch.clone();
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let batch = server_batch.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let chain = conn
                    .peer_identity()
                    .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok());
                if chain.map(|chain| console_peer(&chain).is_ok()) != Some(true) {
                    return;
                }
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let batch = batch.clone();
                    tokio::spawn(async move {
                        match read_message::<Request>(&mut recv).await {
                            Ok(Request::Hello(_)) => {
                                let reply = Response::Hello(HelloReply {
                                    version: protocol::MAX_VERSION,
                                    agent_id: uuid::Uuid::nil(),
                                    hostname: "bench".into(),
                                    demo: false,
                                    heads: Vec::new(),
                                    time_zone: "UTC".into(),
                                });
                                let _ = write_message(&mut send, &reply).await;
                            }
                            // Pull: the framed 1 MiB batch.
                            Ok(Request::Pull(_)) => {
                                let _ = write_message(&mut send, &*batch).await;
                            }
                            // Anything else: 1 MiB of bare bytes, no framing.
                            _ => {
                                let _ = send.write_all(&vec![7u8; PAYLOAD_BYTES]).await;
                                let _ = send.finish();
                            }
                        }
                    });
                }
            });
        }
    });

    let tls = console_client_config(&console, pin)?;
    let client = client_endpoint(addr)?;
    let server_name = agent_server_name(agent.agent_id);
    let hello = Request::Hello(Hello {
        min_version: 1,
        max_version: 1,
        console_name: "bench".into(),
    });

    // 1. Full handshake + one request, fresh connection each time.
    let mut handshakes = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let conn = connect(
            &client,
            client_config(tls.clone(), &limits)?,
            addr,
            &server_name,
        )
        .await?;
        let response = request(&conn, &hello).await?;
        handshakes.push(started.elapsed());
        anyhow::ensure!(matches!(response, Response::Hello(_)), "bad reply");
        conn.close(0u32.into(), b"");
    }
    handshakes.sort_unstable();

    // 2. 1 MiB framed records vs 1 MiB bare stream, interleaved on one
    // connection so both see the same conditions.
    let conn = connect(
        &client,
        client_config(tls.clone(), &limits)?,
        addr,
        &server_name,
    )
    .await?;
    let pull = Request::Pull(protocol::Pull {
        stream: StreamKind::Usage,
        after: protocol::Cursor { epoch: 1, seq: 0 },
        max_records: 1,
    });
    let rounds = 50;
    let (mut framed, mut bare) = (Duration::ZERO, Duration::ZERO);
    let mut framed_bytes = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        let response = request(&conn, &pull).await?;
        framed += started.elapsed();
        let Response::Records(records) = &response else {
            anyhow::bail!("bad reply")
        };
        framed_bytes = protocol::encode_frame(&response)?.len();
        anyhow::ensure!(!records.records.is_empty());

        let started = Instant::now();
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(&protocol::encode_frame(&Request::GetPolicy)?)
            .await?;
        send.finish()?;
        let bytes = recv.read_to_end(2 * PAYLOAD_BYTES).await?;
        bare += started.elapsed();
        anyhow::ensure!(bytes.len() == PAYLOAD_BYTES);
    }
    let mib = |bytes: usize, total: Duration| {
        (bytes * rounds) as f64 / (1024.0 * 1024.0) / total.as_secs_f64()
    };
    let framed_mib_s = mib(framed_bytes, framed);
    let bare_mib_s = mib(PAYLOAD_BYTES, bare);

    println!("transport bench (loopback, real certificates, {runs} handshakes, {rounds} x 1 MiB)");
    println!(
        "  handshake + 1 request: p50 {:.2} ms  p99 {:.2} ms  (min {:.2}, max {:.2})",
        percentile(&handshakes, 50.0).as_secs_f64() * 1e3,
        percentile(&handshakes, 99.0).as_secs_f64() * 1e3,
        handshakes[0].as_secs_f64() * 1e3,
        handshakes[handshakes.len() - 1].as_secs_f64() * 1e3,
    );
    println!(
        "  framed records: {framed_mib_s:.1} MiB/s ({framed_bytes} bytes/frame, decoded)\n  bare stream:    {bare_mib_s:.1} MiB/s\n  ratio framed/bare: {:.2}",
        framed_mib_s / bare_mib_s
    );
    println!(
        "  codec alone per 1 MiB frame: encode {:.2} ms, decode {:.2} ms",
        codec_timing.0.as_secs_f64() * 1e3,
        codec_timing.1.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Mean encode and decode time of the batch, without any network.
fn codec_only(batch: &Response) -> anyhow::Result<(Duration, Duration)> {
    let rounds = 20;
    let (mut encode, mut decode) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let started = Instant::now();
        let frame = protocol::encode_frame(batch)?;
        encode += started.elapsed();
        let started = Instant::now();
        let (decoded, _) = protocol::decode_frame::<Response>(&frame)?;
        decode += started.elapsed();
        anyhow::ensure!(&decoded == batch);
    }
    Ok((encode / rounds, decode / rounds))
}
