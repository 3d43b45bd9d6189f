//! The agent's settings file end to end: a real `smarttracker-agent run
//! --config FILE` takes its data directory, sensors, address and a server
//! limit from the file while a flag given beside it wins over the file;
//! `status --config FILE` finds the same data directory; and a bad file
//! (or a missing one that was asked for) stops `run` at once with one line
//! on stderr naming the file, the line and the fix.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use certs::tls::{agent_server_name, console_client_config, AgentPin};
use certs::transport::{client_config, connect, request, Limits, TransportError, CLOSE_REFUSED};
use certs::{spki_sha256, AgentIdentity, ConsoleIdentity};
use harness::{bin, run_ok, Agent, Site};
use protocol::{CaptureSpec, LiveStart, Request, Response};

/// The site's admin console connecting to `agent` at `addr`.
struct Console {
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    addr: SocketAddr,
    server_name: String,
}

impl Console {
    fn new(site: &Site, agent: &AgentIdentity, addr: SocketAddr) -> Console {
        let identity =
            ConsoleIdentity::read(&site.console_data().join("identity")).expect("console identity");
        let pin = AgentPin {
            agent_id: agent.agent_id,
            spki_sha256: spki_sha256(&agent.cert_der).expect("agent certificate"),
        };
        let config = client_config(
            console_client_config(&identity, pin).expect("client TLS"),
            &Limits::default(),
        )
        .expect("client config");
        let endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("address")).expect("bind");
        Console {
            endpoint,
            config,
            addr,
            server_name: agent_server_name(agent.agent_id),
        }
    }

    async fn connect(&self) -> Result<quinn::Connection, TransportError> {
        connect(
            &self.endpoint,
            self.config.clone(),
            self.addr,
            &self.server_name,
        )
        .await
    }
}

#[test]
fn run_takes_its_settings_from_the_file_and_a_flag_wins_over_it() {
    let site = Site::create();
    let data = site.add_agent("pc-1");
    let agent_identity =
        AgentIdentity::read_bundle(&site.path("pc-1.bundle")).expect("agent bundle");
    let config = site.path("agent.toml");
    std::fs::write(
        &config,
        format!(
            "# written by the test\n\
             data_dir = \"{}\"\n\
             listen = \"127.0.0.1:0\"\n\
             sensors = \"demo\"\n\
             mdns = false\n\
             live_lease_secs = 7\n\
             \n\
             [limits]\n\
             max_connections_per_console = 1\n",
            data.display()
        ),
    )
    .expect("write agent.toml");

    // No --data, --sensors nor --listen: the file gives them.
    let mut agent = Agent::start_configured(&config, &data, &["--live-lease-secs", "9"]);
    let status = agent.ready();
    assert!(status.demo, "sensors = \"demo\" from the file");
    let addr: SocketAddr = status.listen.parse().expect("listen address");
    assert!(addr.ip().is_loopback(), "listen from the file: {addr}");

    // `status` finds the same data directory through the file.
    let output = run_ok(
        Command::new(bin("smarttracker-agent"))
            .args(["status", "--json", "--config"])
            .arg(&config),
    );
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).expect("status JSON");
    assert_eq!(shown["agent_id"], agent_identity.agent_id.to_string());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let console = Console::new(&site, &agent_identity, addr);
        let first = console.connect().await.expect("the first connection");
        // The flag's lease (9 s), not the file's (7 s).
        let start = Request::LiveStart(LiveStart {
            spec: CaptureSpec {
                monitor: None,
                max_width: 320,
                max_height: 200,
                quality: 60,
            },
            interval_ms: 1000,
        });
        match request(&first, &start).await {
            Ok(Response::LiveStarted(lease)) => assert_eq!(lease.lease_secs, 9),
            other => panic!("live start: {other:?}"),
        }
        // The file's one connection per console (the default is 4).
        let refused = match console.connect().await {
            Ok(second) => tokio::time::timeout(Duration::from_secs(10), second.closed())
                .await
                .expect("the second connection is refused at once"),
            Err(TransportError::Connection(error)) => error,
            Err(other) => panic!("second connection: {other}"),
        };
        let quinn::ConnectionError::ApplicationClosed(close) = refused else {
            panic!("the agent refuses with a reason, not {refused}");
        };
        assert_eq!(close.error_code.into_inner(), u64::from(CLOSE_REFUSED));
        assert_eq!(
            String::from_utf8_lossy(&close.reason),
            "too many connections from this console (at most 1 at once)"
        );
        assert!(first.close_reason().is_none(), "the first connection stays");
    });
    agent.stop();
}

/// Runs `run --config CONFIG` (nothing else on the command line) and
/// returns its stderr once it exits, insisting it failed quickly.
fn failed_run(config: &Path) -> String {
    let mut child = Command::new(bin("smarttracker-agent"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("SMARTTRACKER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn agent");
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("run with {} did not stop", config.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("stderr");
    assert!(!exit.success(), "run with {} succeeded", config.display());
    String::from_utf8(output.stderr).expect("UTF-8 stderr")
}

#[test]
fn a_bad_settings_file_stops_run_with_one_line_naming_file_line_and_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "# the agent's settings\nsensors = \"demo\"\nlive_lease_secs = 900\n",
            "3: live_lease_secs = 900 is out of range: use 2 to 300",
        ),
        (
            "sensors = \"demo\"\n\n[limits]\nmax_conections = 2\n",
            "4: unknown key `max_conections` in [limits]: did you mean `max_connections`?",
        ),
        (
            "mdns = off\n",
            "1: not valid TOML (string values must be quoted, expected literal string): fix the syntax on this line",
        ),
    ];
    for (index, (text, message)) in cases.iter().enumerate() {
        let config = dir.path().join(format!("agent-{index}.toml"));
        std::fs::write(&config, text).expect("write");
        assert_eq!(
            failed_run(&config),
            format!("error: {}:{message}\n", config.display())
        );
    }
    let missing = dir.path().join("missing.toml");
    assert_eq!(
        failed_run(&missing),
        format!(
            "error: {}: no such file: check the --config path (`smarttracker-agent config --print-default` prints an example)\n",
            missing.display()
        )
    );
}
