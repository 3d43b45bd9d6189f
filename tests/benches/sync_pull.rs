//! Pull N records (default 1,000,000) from a real agent service over
//! loopback QUIC with real certificates into the console store, and the
//! same pull into a naive store (one sled key per record, cursor written
//! per batch) in the same run; prints wall time, records/s and the ratio.
//!
//! `cargo bench -p smarttracker-tests --bench sync_pull [-- --records N]`

use std::sync::Arc;
use std::time::Instant;

use agent::admission::ServerLimits;
use agent::capture::ScreenSource;
use agent::screen::Screen;
use agent::server::{serve, AgentInfo, Service};
use agent::store::{Quotas, Store};
use certs::tls::{agent_server_config, console_client_config, AgentPin};
use certs::transport::{
    client_config, client_endpoint, connect, request, server_config, server_endpoint, Limits,
};
use certs::{spki_sha256, Role, SiteCa, Validity};
use console_engine::discovery::{Candidate, CandidateSource};
use console_engine::model::DayClock;
use console_engine::store::ConsoleStore;
use console_engine::sync::{inventory_record, Outcome, SyncConfig, Syncer};
use protocol::{Ack, Cursor, Pull, Record, Request, Response, StreamKind, UsageSpan};
use tokio::sync::watch;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn records_arg() -> u64 {
    std::env::args()
        .skip_while(|arg| arg != "--records")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

fn main() -> BenchResult<()> {
    // The test runner lists every target with `--list`: no tests here.
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let records = records_arg();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(bench(records))
}

async fn bench(records: u64) -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let validity = Validity::days_from(time::OffsetDateTime::now_utc(), 30);
    let ca = SiteCa::init(&dir.path().join("site"), "Bench", None, validity)?;
    let agent_identity = ca.issue_agent(Some("bench-agent"), validity)?;
    let console_identity = ca.issue_console(Role::Admin, "bench-console", validity)?;
    let naive_identity = ca.issue_console(Role::Admin, "bench-naive", validity)?;

    // An agent store with `records` usage spans.
    let agent_store = Arc::new(Store::open(&dir.path().join("agent"), Quotas::default())?);
    let t0_ms: i64 = 1_772_409_600_000;
    let apps = [
        "Firefox",
        "Visual Studio Code",
        "Slack",
        "LibreOffice Writer",
        "Terminal",
    ];
    for index in 0..records {
        let start_ms = t0_ms + i64::try_from(index)? * 30_000;
        let app = apps[usize::try_from(index % 5)?];
        agent_store.append(
            StreamKind::Usage,
            Record::Usage(UsageSpan {
                start_ms,
                end_ms: start_ms + 25_000,
                app: app.to_owned(),
                raw_app: app.to_lowercase(),
                title: None,
            }),
            start_ms,
        );
        if index % 10_000 == 9_999 {
            agent_store.flush()?;
        }
    }
    agent_store.flush()?;

    let endpoint = server_endpoint(
        "127.0.0.1:0".parse()?,
        server_config(
            agent_server_config(&agent_identity, certs::deny::DenySet::default())?,
            &Limits::default(),
        )?,
    )?;
    let addr = endpoint.local_addr()?;
    let screen = Arc::new(Screen::new(|| ScreenSource::Demo { seed: 1 }));
    let service = Arc::new(Service::new(
        AgentInfo {
            agent_id: agent_identity.agent_id,
            hostname: "bench".into(),
            demo: false,
            time_zone: "Europe/Paris".into(),
            team: None,
        },
        agent_store.clone(),
        protocol::Policy::default(),
        screen,
        agent::live::DEFAULT_LEASE_SECS,
    ));
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(serve(endpoint, service, ServerLimits::default(), shutdown));

    // 1. The console's sync into its block store.
    let console_store = Arc::new(ConsoleStore::open(
        &dir.path().join("console"),
        DayClock::utc(),
    )?);
    console_store.upsert_agent(&inventory_record("bench", &agent_identity.cert_der, 0)?)?;
    let syncer = Arc::new(Syncer::new(
        console_identity,
        console_store.clone(),
        SyncConfig::default(),
    ));
    let started = Instant::now();
    let outcome = syncer
        .sync_candidate(&Candidate {
            addr,
            claimed_agent: None,
            source: CandidateSource::Static,
        })
        .await;
    let store_secs = started.elapsed().as_secs_f64();
    let Outcome::Synced { streams, .. } = outcome else {
        return Err(format!("sync failed: {outcome:?}").into());
    };
    let stored: u64 = streams.iter().map(|stream| stream.stored_records).sum();

    // 2. Naive: the same pull, one sled key per record, cursor per batch.
    let naive = sled::Config::new()
        .path(dir.path().join("naive"))
        .cache_capacity(64 * 1024 * 1024)
        .open()?;
    let pin = AgentPin {
        agent_id: agent_identity.agent_id,
        spki_sha256: spki_sha256(&agent_identity.cert_der)?,
    };
    let client = client_endpoint(addr)?;
    let conn = connect(
        &client,
        client_config(
            console_client_config(&naive_identity, pin)?,
            &Limits::default(),
        )?,
        addr,
        &certs::tls::agent_server_name(agent_identity.agent_id),
    )
    .await?;
    let started = Instant::now();
    let mut cursor = Cursor { epoch: 0, seq: 0 };
    let mut naive_records = 0u64;
    loop {
        let response = request(
            &conn,
            &Request::Pull(Pull {
                stream: StreamKind::Usage,
                after: cursor,
                max_records: SyncConfig::default().batch_records,
            }),
        )
        .await?;
        let Response::Records(batch) = response else {
            return Err("pull refused".into());
        };
        for record in &batch.records {
            let mut key = agent_identity.agent_id.as_bytes().to_vec();
            key.extend_from_slice(&record.seq.to_be_bytes());
            let value = bincode::serde::encode_to_vec(&record.record, bincode::config::standard())?;
            naive.insert(key, value)?;
            naive_records += 1;
        }
        if let Some(last) = batch.records.last() {
            cursor = Cursor {
                epoch: batch.epoch,
                seq: last.seq,
            };
        }
        naive.insert(b"cursor", &cursor.seq.to_be_bytes())?;
        naive.flush_async().await?;
        request(
            &conn,
            &Request::Ack(Ack {
                stream: StreamKind::Usage,
                upto: cursor,
            }),
        )
        .await?;
        if !batch.more {
            break;
        }
    }
    let naive_secs = started.elapsed().as_secs_f64();

    println!("sync pull over loopback QUIC (real certificates), {records} usage records");
    println!(
        "  console store: {stored} records in {store_secs:.2} s = {:.0} records/s",
        stored as f64 / store_secs
    );
    println!(
        "  naive (one key per record): {naive_records} records in {naive_secs:.2} s = {:.0} records/s",
        naive_records as f64 / naive_secs
    );
    println!(
        "  ratio console/naive throughput: {:.2}",
        naive_secs / store_secs
    );
    Ok(())
}
