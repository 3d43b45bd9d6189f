//! Agent test harness: a site CA in a temporary directory, real agent processes
//! (`smarttracker-agent run --sensors demo`), and a console-side client over
//! real QUIC.

#![allow(dead_code)] // each test file uses its own subset

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent::status::StatusSnapshot;
use certs::tls::{agent_server_name, console_client_config, AgentPin};
use certs::transport::{client_config, client_endpoint, connect, request, Limits};
use certs::{spki_sha256, AgentIdentity, ConsoleIdentity, Role, SiteCa, Validity};
use protocol::{
    Ack, Cursor, Hello, HelloReply, Pull, Request, Response, SeqRecord, StreamKind, MAX_VERSION,
    MIN_VERSION,
};
use time::OffsetDateTime;

pub const AGENT_BIN: &str = env!("CARGO_BIN_EXE_smarttracker-agent");

pub struct Site {
    pub dir: tempfile::TempDir,
    pub ca: SiteCa,
    /// One validity for every certificate of the site: a certificate may
    /// not outlive the CA, even by the second between two `now()` reads.
    pub validity: Validity,
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let validity = validity();
        let ca =
            SiteCa::init(&dir.path().join("site"), "Test site", None, validity).expect("site CA");
        Site { dir, ca, validity }
    }

    /// Issues an agent and enrols it into a fresh data directory.
    pub fn enrolled_agent(&self, name: &str) -> (AgentIdentity, PathBuf) {
        let identity = self
            .ca
            .issue_agent(Some(name), self.validity)
            .expect("agent");
        let bundle = self.dir.path().join(format!("{name}.bundle"));
        identity.write_bundle(&bundle).expect("bundle");
        let data = self.dir.path().join(name);
        let output = Command::new(AGENT_BIN)
            .args(["enroll", "--bundle"])
            .arg(&bundle)
            .arg("--data")
            .arg(&data)
            .output()
            .expect("run enroll");
        assert!(output.status.success(), "enroll: {output:?}");
        (identity, data)
    }

    pub fn console(&self, role: Role) -> ConsoleIdentity {
        self.ca
            .issue_console(role, &format!("{role} console"), self.validity)
            .expect("console")
    }
}

pub fn validity() -> Validity {
    Validity::days_from(OffsetDateTime::now_utc(), 30)
}

/// A running `smarttracker-agent run` process; killed on drop.
pub struct AgentProcess {
    pub child: Child,
    pub data: PathBuf,
}

impl AgentProcess {
    /// Starts the demo agent on an ephemeral loopback port.
    pub fn start(data: &Path, extra_args: &[&str]) -> AgentProcess {
        Self::start_with(data, "demo", extra_args, &[])
    }

    /// Starts an agent with the given `--sensors` and extra environment
    /// (e.g. `DISPLAY`, `DBUS_SESSION_BUS_ADDRESS`).
    pub fn start_with(
        data: &Path,
        sensors: &str,
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> AgentProcess {
        let _ = std::fs::remove_file(data.join(agent::status::STATUS_FILE));
        let child = Command::new(AGENT_BIN)
            .args([
                "run",
                "--listen",
                "127.0.0.1:0",
                "--sensors",
                sensors,
                "--no-mdns",
            ])
            .arg("--data")
            .arg(data)
            .args(extra_args)
            .env("SMARTTRACKER_LOG", "warn")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn agent");
        AgentProcess {
            child,
            data: data.to_path_buf(),
        }
    }

    pub fn wait_ready(&mut self) -> StatusSnapshot {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(snapshot) = StatusSnapshot::read(&self.data) {
                if snapshot.pid == self.child.id() {
                    return snapshot;
                }
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("agent exited early: {exit}");
            }
            assert!(Instant::now() < deadline, "agent never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&mut self) -> SocketAddr {
        self.wait_ready().listen.parse().expect("listen address")
    }

    /// Waits until the simulated history is all recorded (the agent
    /// serves while it backfills, so a pull before that sees part of it).
    pub fn wait_history(&mut self) -> StatusSnapshot {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let snapshot = self.wait_ready();
            if !snapshot.backfilling {
                return snapshot;
            }
            assert!(Instant::now() < deadline, "history never finished");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM and wait: the agent closes its spans and flushes.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "agent exit after SIGTERM: {exit}");
    }

    /// SIGKILL: no chance to flush.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A console-side client connected to one agent.
pub struct Console {
    pub conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

impl Console {
    pub async fn connect(
        identity: &ConsoleIdentity,
        agent: &AgentIdentity,
        addr: SocketAddr,
    ) -> Console {
        let pin = AgentPin {
            agent_id: agent.agent_id,
            spki_sha256: spki_sha256(&agent.cert_der).expect("agent cert"),
        };
        let tls = console_client_config(identity, pin).expect("client tls");
        let endpoint = client_endpoint(addr).expect("endpoint");
        let config = client_config(tls, &Limits::default()).expect("config");
        let conn = connect(&endpoint, config, addr, &agent_server_name(agent.agent_id))
            .await
            .expect("connect");
        Console {
            conn,
            _endpoint: endpoint,
        }
    }

    pub async fn ask(&self, req: Request) -> Response {
        request(&self.conn, &req).await.expect("request")
    }

    pub async fn hello(&self) -> HelloReply {
        match self
            .ask(Request::Hello(Hello {
                min_version: MIN_VERSION,
                max_version: MAX_VERSION,
                console_name: "test".into(),
            }))
            .await
        {
            Response::Hello(reply) => reply,
            other => panic!("hello: {other:?}"),
        }
    }

    /// Pulls a stream to its end from `after`; returns the records and the
    /// cursor of the last one.
    pub async fn pull_all(&self, stream: StreamKind, after: Cursor) -> (Vec<SeqRecord>, Cursor) {
        let mut records = Vec::new();
        let mut cursor = after;
        loop {
            let response = self
                .ask(Request::Pull(Pull {
                    stream,
                    after: cursor,
                    max_records: 500,
                }))
                .await;
            let Response::Records(batch) = response else {
                panic!("pull: {response:?}")
            };
            if batch.epoch != cursor.epoch {
                cursor = Cursor {
                    epoch: batch.epoch,
                    seq: 0,
                };
            }
            if let Some(last) = batch.records.last() {
                cursor.seq = last.seq;
            }
            let more = batch.more;
            records.extend(batch.records);
            if !more {
                return (records, cursor);
            }
        }
    }

    pub async fn ack(&self, stream: StreamKind, upto: Cursor) -> Response {
        self.ask(Request::Ack(Ack { stream, upto })).await
    }
}

/// Runs a future on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}
