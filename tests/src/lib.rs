//! Harness for the workspace integration tests: the real binaries of this
//! workspace, a throw-away site (CA, console identity, enrolled agents),
//! agent processes with the demo sensor source, and console commands.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use agent::status::StatusSnapshot;

pub mod fake_agent;

/// Path of a workspace binary next to the running test (`target/<profile>/`).
/// The test runner builds every binary of the workspace before the tests.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace binaries first (`cargo build --bins`, or run scripts/test.sh)",
        path.display()
    );
    path
}

/// Runs a command to completion and insists it succeeded.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("spawn");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A site in a temporary directory: CA, an admin console, agents.
#[derive(Debug)]
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn create() -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        run_ok(
            Command::new(bin("smarttracker-certs"))
                .args(["init", "--name", "Test site", "--site"])
                .arg(dir.path().join("site")),
        );
        let site = Site { dir };
        run_ok(
            Command::new(bin("smarttracker-certs"))
                .args([
                    "console",
                    "--role",
                    "admin",
                    "--name",
                    "Test console",
                    "--site",
                ])
                .arg(site.path("site"))
                .arg("--out")
                .arg(site.console_data().join("identity")),
        );
        site
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn console_data(&self) -> PathBuf {
        self.path("console")
    }

    /// Issues an agent, enrols it into its data directory and adds it to
    /// the console's inventory; returns the data directory.
    pub fn add_agent(&self, name: &str) -> PathBuf {
        let bundle = self.path(&format!("{name}.bundle"));
        run_ok(
            Command::new(bin("smarttracker-certs"))
                .args(["agent", "--name", name, "--site"])
                .arg(self.path("site"))
                .arg("--out")
                .arg(&bundle),
        );
        let data = self.path(name);
        run_ok(
            Command::new(bin("smarttracker-agent"))
                .args(["enroll", "--bundle"])
                .arg(&bundle)
                .arg("--data")
                .arg(&data),
        );
        run_ok(self.console(&["add-agent"]).arg(&bundle));
        data
    }

    /// Issues another console certificate of this site into a directory of
    /// its own (`smarttracker-certs console`); returns that directory, which
    /// `certs::ConsoleIdentity::read` loads.
    pub fn issue_console(&self, role: &str, name: &str) -> PathBuf {
        let out = self.path(&format!("console-{name}"));
        run_ok(
            Command::new(bin("smarttracker-certs"))
                .args(["console", "--role", role, "--name", name, "--site"])
                .arg(self.path("site"))
                .arg("--out")
                .arg(&out),
        );
        out
    }

    /// A `smarttracker-console --data <console dir> ARGS` command.
    pub fn console(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin("smarttracker-console"));
        command
            .arg("--data")
            .arg(self.console_data())
            .args(args)
            .env("SMARTTRACKER_LOG", "warn");
        command
    }
}

/// A running demo agent; killed on drop.
#[derive(Debug)]
pub struct Agent {
    pub child: Child,
    pub data: PathBuf,
}

impl Agent {
    /// Starts `smarttracker-agent run --sensors demo` on `listen`.
    pub fn start(data: &Path, listen: &str, extra: &[&str]) -> Agent {
        Agent::start_with(Command::new(bin("smarttracker-agent")), data, listen, extra)
    }

    /// Starts the agent through `launcher` (e.g. `ip netns exec NS`
    /// followed by the agent binary).
    pub fn start_with(mut launcher: Command, data: &Path, listen: &str, extra: &[&str]) -> Agent {
        let _ = std::fs::remove_file(data.join(agent::status::STATUS_FILE));
        let child = launcher
            .args(["run", "--sensors", "demo", "--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            .env("SMARTTRACKER_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn agent");
        Agent {
            child,
            data: data.to_path_buf(),
        }
    }

    /// Waits until the agent has flushed at least once and returns its
    /// status (listen address, heads).
    pub fn ready(&mut self) -> StatusSnapshot {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(snapshot) = StatusSnapshot::read(&self.data) {
                return snapshot;
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("agent {} exited early: {exit}", self.data.display());
            }
            assert!(Instant::now() < deadline, "agent never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until any simulated history is recorded and the agent records
    /// live.
    pub fn wait_live(&mut self) -> StatusSnapshot {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let snapshot = self.ready();
            if !snapshot.backfilling {
                return snapshot;
            }
            assert!(Instant::now() < deadline, "history never finished");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn addr(&mut self) -> SocketAddr {
        self.ready().listen.parse().expect("listen address")
    }

    /// SIGTERM and wait for a clean exit (spans closed, store flushed).
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        run_ok(Command::new("kill").args(["-TERM", &pid]));
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "agent exit: {exit}");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every record of one stream of a stopped agent's store, in order.
pub fn agent_records(data: &Path, stream: protocol::StreamKind) -> Vec<protocol::SeqRecord> {
    let store = agent::store::Store::open(
        &data.join(agent::STORE_DIR),
        agent::store::Quotas::default(),
    )
    .expect("agent store opens");
    let mut cursor = protocol::Cursor {
        epoch: store.epoch(),
        seq: 0,
    };
    let mut records = Vec::new();
    loop {
        let batch = store.pull(stream, cursor, 4096).expect("pull");
        if let Some(last) = batch.records.last() {
            cursor.seq = last.seq;
        }
        let more = batch.more;
        records.extend(batch.records);
        if !more {
            return records;
        }
    }
}

/// A usage span as compared across agent and console: (start, end, app).
pub type Span = (i64, i64, String);

/// Every usage span of a stopped agent's store, sorted.
pub fn recorded_usage(data: &Path) -> Vec<Span> {
    let mut spans: Vec<Span> = agent_records(data, protocol::StreamKind::Usage)
        .into_iter()
        .filter_map(|record| match record.record {
            protocol::Record::Usage(span) => Some((span.start_ms, span.end_ms, span.app)),
            _ => None,
        })
        .collect();
    spans.sort();
    spans
}

/// Runs `export usage --format jsonl` and returns the spans per agent id,
/// sorted.
pub fn exported_usage(export: &mut Command) -> BTreeMap<String, Vec<Span>> {
    let output = run_ok(export.args(["export", "usage", "--format", "jsonl"]));
    let mut by_agent: BTreeMap<String, Vec<Span>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("one JSON object a line");
        by_agent
            .entry(row["agent"].as_str().expect("agent").to_owned())
            .or_default()
            .push((
                row["start_ms"].as_i64().expect("start_ms"),
                row["end_ms"].as_i64().expect("end_ms"),
                row["app"].as_str().expect("app").to_owned(),
            ));
    }
    for spans in by_agent.values_mut() {
        spans.sort();
    }
    by_agent
}
