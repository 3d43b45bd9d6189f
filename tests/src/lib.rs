//! Harness for the workspace integration tests: the real binaries of this
//! workspace, a throw-away site (CA, console identity, enrolled agents),
//! agent processes with the demo sensor source, console commands, small
//! tmpfs mounts to fill, and the numbering checks of an agent's streams.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
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
        let data = self.path(name);
        self.add_agent_in(name, &data);
        data
    }

    /// [`Site::add_agent`] with the data directory at `data`.
    pub fn add_agent_in(&self, name: &str, data: &Path) {
        let bundle = self.path(&format!("{name}.bundle"));
        run_ok(
            Command::new(bin("smarttracker-certs"))
                .args(["agent", "--name", name, "--site"])
                .arg(self.path("site"))
                .arg("--out")
                .arg(&bundle),
        );
        run_ok(
            Command::new(bin("smarttracker-agent"))
                .args(["enroll", "--bundle"])
                .arg(&bundle)
                .arg("--data")
                .arg(data),
        );
        run_ok(self.console(&["add-agent"]).arg(&bundle));
    }

    /// Runs `sync --once` against `addrs` (no mDNS) and returns its report.
    pub fn sync_once(&self, addrs: &[SocketAddr]) -> String {
        let mut command = self.console(&["sync", "--once", "--no-mdns"]);
        for addr in addrs {
            command.arg("--peer").arg(addr.to_string());
        }
        String::from_utf8_lossy(&run_ok(&mut command).stdout).into_owned()
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
    pub fn start_with(launcher: Command, data: &Path, listen: &str, extra: &[&str]) -> Agent {
        Agent::spawn(launcher, data, listen, extra, Stdio::inherit())
    }

    /// [`Agent::start`] with the agent's log (stderr) appended to `log`.
    pub fn start_logged(data: &Path, listen: &str, extra: &[&str], log: &Path) -> Agent {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("agent log file");
        Agent::spawn(
            Command::new(bin("smarttracker-agent")),
            data,
            listen,
            extra,
            Stdio::from(log_file),
        )
    }

    /// Starts `smarttracker-agent run --config CONFIG EXTRA`: the file
    /// names the data directory `data`, the sensors and the address.
    pub fn start_configured(config: &Path, data: &Path, extra: &[&str]) -> Agent {
        let mut command = Command::new(bin("smarttracker-agent"));
        command.arg("run").arg("--config").arg(config).args(extra);
        Agent::spawn_run(command, data, Stdio::inherit())
    }

    fn spawn(
        mut launcher: Command,
        data: &Path,
        listen: &str,
        extra: &[&str],
        stderr: Stdio,
    ) -> Agent {
        launcher
            .args(["run", "--sensors", "demo", "--listen", listen, "--data"])
            .arg(data)
            .args(extra);
        Agent::spawn_run(launcher, data, stderr)
    }

    /// Spawns `run`, a complete agent command line whose data directory
    /// is `data`.
    fn spawn_run(mut run: Command, data: &Path, stderr: Stdio) -> Agent {
        let _ = std::fs::remove_file(data.join(agent::status::STATUS_FILE));
        let child = run
            .env("SMARTTRACKER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
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

    /// SIGTERM, and insists the process is gone within `deadline`, however
    /// it exits; returns how.
    pub fn terminate_within(mut self, deadline: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        run_ok(Command::new("kill").args(["-TERM", &pid]));
        let signalled = Instant::now();
        loop {
            if let Some(exit) = self.child.try_wait().expect("wait") {
                return exit;
            }
            assert!(
                signalled.elapsed() < deadline,
                "agent {} still runs {deadline:?} after SIGTERM",
                self.data.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    /// SIGKILL: no chance to flush.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One stream of a stopped agent's store.
#[derive(Debug)]
pub struct StoredStream {
    pub stream: protocol::StreamKind,
    /// Every record, in order.
    pub records: Vec<protocol::SeqRecord>,
    pub durable_seq: u64,
    pub acked_seq: u64,
}

/// What a stopped agent's store holds, read through the store itself.
#[derive(Debug)]
pub struct AgentStore {
    pub epoch: u64,
    pub streams: Vec<StoredStream>,
}

impl AgentStore {
    pub fn stream(&self, stream: protocol::StreamKind) -> &StoredStream {
        self.streams
            .iter()
            .find(|stored| stored.stream == stream)
            .expect("every stream is read")
    }
}

/// Opens a stopped agent's store and reads every stream.
pub fn agent_store(data: &Path) -> AgentStore {
    let store = agent::store::Store::open(
        &data.join(agent::STORE_DIR),
        agent::store::Quotas::default(),
    )
    .expect("agent store opens");
    let heads = store.heads();
    let counts = store.counts();
    let streams = protocol::StreamKind::ALL
        .into_iter()
        .map(|stream| {
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
                    break;
                }
            }
            StoredStream {
                stream,
                records,
                durable_seq: *heads.seqs.get(stream),
                acked_seq: counts.get(stream).acked_seq,
            }
        })
        .collect();
    AgentStore {
        epoch: store.epoch(),
        streams,
    }
}

/// Every record of one stream of a stopped agent's store, in order.
pub fn agent_records(data: &Path, stream: protocol::StreamKind) -> Vec<protocol::SeqRecord> {
    agent_store(data)
        .streams
        .into_iter()
        .find(|stored| stored.stream == stream)
        .map(|stored| stored.records)
        .unwrap_or_default()
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

/// Asserts that `records` (one stream of an agent, in pull order) number
/// each record once, in order, and that every missing number is named by
/// one of the stream's gap markers or was acked by a console (and pruned
/// past retention): nothing duplicated, nothing lost silently.
pub fn assert_numbering(what: &str, records: &[protocol::SeqRecord], acked_seq: u64) {
    let named: Vec<(u64, u64)> = records
        .iter()
        .filter_map(|record| match &record.record {
            protocol::Record::Gap(gap) => Some((gap.first_seq, gap.last_seq)),
            _ => None,
        })
        .collect();
    let is_named = |seq: u64| {
        named
            .iter()
            .any(|(first_seq, last_seq)| (*first_seq..=*last_seq).contains(&seq))
    };
    let mut expected_seq = 1;
    for record in records {
        assert!(
            record.seq >= expected_seq,
            "{what}: seq {} comes again or out of order",
            record.seq
        );
        for missing_seq in expected_seq..record.seq {
            assert!(
                missing_seq <= acked_seq || is_named(missing_seq),
                "{what}: seq {missing_seq} is missing and no gap marker names it \
                 (next present: {}; gap markers name {named:?})",
                record.seq
            );
        }
        expected_seq = record.seq + 1;
    }
}

/// A tmpfs mounted on a temporary directory, unmounted on drop. Needs
/// root: CI runs as root, so a missing prerequisite fails the test (with
/// what is missing) instead of skipping it.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size_bytes: u64) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_bytes}"))
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .unwrap_or_else(|error| panic!("cannot run `mount` ({error}): this test needs root and util-linux (CI runs as root)"));
        assert!(
            output.status.success(),
            "cannot mount a {size_bytes}-byte tmpfs on {}: {}; this test needs root (CI runs as root)",
            dir.path().display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Tmpfs { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fills the file system with a file of zeros until it is full;
    /// returns the file, which [`Tmpfs::free`] removes.
    pub fn fill(&self) -> PathBuf {
        let filler = self.path("filler");
        fill_with(&filler);
        filler
    }

    /// Writes `size_bytes` of ballast, to be freed later.
    pub fn ballast(&self, size_bytes: usize) -> PathBuf {
        let ballast = self.path("ballast");
        std::fs::write(&ballast, vec![0_u8; size_bytes]).expect("ballast file");
        ballast
    }

    /// Removes a file made by [`Tmpfs::fill`] or [`Tmpfs::ballast`].
    pub fn free(&self, file: &Path) {
        std::fs::remove_file(file).expect("free the filler");
    }
}

/// Writes zeros to `filler` until its file system is full.
pub fn fill_with(filler: &Path) {
    let mut file = std::fs::File::create(filler).expect("filler file");
    let chunk = vec![0_u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => return,
            Err(error) => panic!("filling {}: {error}", filler.display()),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process still holding a file open cannot keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
