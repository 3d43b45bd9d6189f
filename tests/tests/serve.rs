//! `smarttracker-console serve` in a real process with three real demo
//! agents: records arrive with no window and no command asking; `sync
//! --once`, `agents`, `report` and `export usage` attach to it and see its
//! store; SIGKILL leaves nothing that blocks the next `serve`; a second
//! `serve` is refused; a socket other users could reach, a socket of
//! another user and a connection from another user are all refused.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use console_engine::service::socket::{self, FromServe, ToServe};
use harness::{bin, exported_usage, run_ok, Agent, Site};

/// A running `serve`; killed on drop.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    /// Starts `serve` on the site's console and waits until it answers.
    fn start(site: &Site, name: &str) -> Serve {
        let log = site.path(&format!("{name}.log"));
        let child = site
            .console(&["serve", "--no-mdns", "--sync-interval-secs", "1"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn serve");
        let mut serve = Serve { child, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = socket::attach(&site.console_data(), false) {
                return serve;
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("serve exited ({status}): {}", serve.log_text());
            }
            assert!(Instant::now() < deadline, "serve never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM; the process must end within `deadline`.
    fn terminate_within(mut self, deadline: Duration) -> std::process::ExitStatus {
        run_ok(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < until, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The newest `last_seen_ms` of every agent `agents --json` lists.
fn last_seen(site: &Site) -> Vec<(String, Option<i64>)> {
    let output = run_ok(&mut site.console(&["agents", "--json"]));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let mut seen: Vec<(String, Option<i64>)> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|agent| {
            (
                agent["agent"].as_str().expect("id").to_owned(),
                agent["last_seen_ms"].as_i64(),
            )
        })
        .collect();
    seen.sort();
    seen
}

fn three_agents(site: &Site) -> Vec<Agent> {
    (1..=3)
        .map(|n| {
            let data = site.add_agent(&format!("pc-{n}"));
            let seed = n.to_string();
            let mut agent = Agent::start(
                &data,
                "127.0.0.1:0",
                // Four days always hold a whole weekday (the demo rests at
                // weekends), whatever day the test runs.
                &[
                    "--no-mdns",
                    "--demo-history-days",
                    "4",
                    "--demo-seed",
                    &seed,
                ],
            );
            agent.wait_live();
            agent
        })
        .collect()
}

#[test]
fn serve_syncs_without_a_window_and_every_command_attaches_to_it() {
    let site = Site::create();
    let mut agents = three_agents(&site);
    let serve = Serve::start(&site, "serve");

    // "Sync now" through serve (it holds the store: a command that opened
    // it itself would be refused by the store's lock).
    let mut sync = site.console(&["sync", "--once", "--no-mdns"]);
    for agent in &mut agents {
        sync.arg("--peer").arg(agent.addr().to_string());
    }
    let report = String::from_utf8_lossy(&run_ok(&mut sync).stdout).into_owned();
    assert_eq!(report.matches("synced ").count(), 3, "{report}");
    let first = last_seen(&site);
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|(_, seen)| seen.is_some()), "{first:?}");

    // Nothing asks again: serve's background passes keep the agents
    // seen (their addresses were remembered by the first pass).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = last_seen(&site);
        let advanced = now
            .iter()
            .zip(&first)
            .all(|((_, later), (_, earlier))| later > earlier);
        if advanced {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no background sync: {first:?} then {now:?}\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The same data for every command.
    let report = run_ok(&mut site.console(&["report", "--range", "7d"]));
    let report = String::from_utf8_lossy(&report.stdout);
    for n in 1..=3 {
        assert!(report.contains(&format!("pc-{n}")), "{report}");
    }
    let exported = exported_usage(&mut site.console(&[]));
    assert_eq!(exported.len(), 3, "usage of every agent");
    assert!(exported.values().all(|spans| spans.len() > 50));
    let out = site.path("usage.csv");
    let written = run_ok(site.console(&["export", "usage", "--out"]).arg(&out));
    assert!(
        String::from_utf8_lossy(&written.stderr).contains(&format!("to {}", out.display())),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let lines = std::fs::read_to_string(&out)
        .expect("export file")
        .lines()
        .count();
    let spans: usize = exported.values().map(Vec::len).sum();
    assert!(
        lines > spans,
        "{lines} lines for {spans} spans and a header"
    );

    // A second serve on the same data is refused, naming the first.
    let second = run_second(&site);
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("already runs") && said.contains(&serve.child.id().to_string()),
        "{said}"
    );

    // SIGKILL: no stale lock or socket blocks the next serve.
    serve.kill9();
    assert!(site.console_data().join(socket::SOCKET_FILE).exists());
    let serve = Serve::start(&site, "serve-again");
    assert_eq!(last_seen(&site).len(), 3);
    let status = serve.terminate_within(Duration::from_secs(10));
    assert!(status.success(), "SIGTERM ends serve cleanly: {status}");
    assert!(!site.console_data().join(socket::SOCKET_FILE).exists());

    // Without serve, commands open the store themselves.
    assert_eq!(last_seen(&site).len(), 3);
    for agent in agents {
        agent.stop();
    }
}

fn run_second(site: &Site) -> std::process::Output {
    site.console(&["serve", "--no-mdns"])
        .output()
        .expect("spawn")
}

/// Lets user `nobody` walk down to `dir` (the test's directories are 0700).
fn open_path_to(dir: &Path) {
    for ancestor in dir.ancestors() {
        if ancestor == Path::new("/") {
            break;
        }
        let mode = std::fs::metadata(ancestor)
            .expect("dir")
            .permissions()
            .mode();
        std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode | 0o711))
            .expect("chmod");
    }
}

#[test]
fn other_users_and_unsafe_sockets_are_refused() {
    let site = Site::create();
    let serve = Serve::start(&site, "serve");
    let data = site.console_data();
    let socket_path = data.join(socket::SOCKET_FILE);
    let mode = std::fs::metadata(&socket_path)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "serve makes its socket 0600");

    // A socket other users could connect to is not trusted.
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let output = site.console(&["agents"]).output().expect("spawn");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("lets other users connect"), "{said}");

    // Another user: the command line refuses a socket that is not its own.
    open_path_to(&data);
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin("smarttracker-console"))
        .arg("--data")
        .arg(&data)
        .arg("agents")
        .output()
        .expect("setpriv (util-linux) runs a command as nobody");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("not by you"), "{said}");

    // And serve refuses a connection from another user, whatever the
    // client checked: a hello sent as nobody over the (now reachable)
    // socket gets a refusal naming the user.
    let hello = socket::encode(&ToServe::Hello {
        version: socket::PROTOCOL_VERSION,
        subscribe: true,
    })
    .expect("hello");
    let hello_file = site.path("hello.bin");
    std::fs::File::create(&hello_file)
        .and_then(|mut file| file.write_all(&hello))
        .expect("hello file");
    std::fs::set_permissions(&hello_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let client = r#"
        use IO::Socket::UNIX;
        $SIG{PIPE} = 'IGNORE';
        my ($path, $hello) = @ARGV;
        my $socket = IO::Socket::UNIX->new(Peer => $path) or die "connect: $!";
        open(my $in, '<:raw', $hello) or die "hello: $!";
        local $/; my $bytes = <$in>;
        syswrite($socket, $bytes);
        binmode STDOUT;
        while (sysread($socket, my $buffer, 65536)) { print $buffer; }
    "#;
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "perl",
            "-e",
            client,
        ])
        .arg(&socket_path)
        .arg(&hello_file)
        .output()
        .expect("perl runs as nobody");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body = &output.stdout.get(4..).expect("a frame");
    match socket::decode::<FromServe>(body).expect("a frame from serve") {
        FromServe::Refused(why) => assert!(why.contains("uid 65534"), "{why}"),
        other => panic!("nobody was let in: {other:?}"),
    }
    drop(serve);
}

#[test]
fn hostile_clients_on_the_socket_are_cut_off_and_serve_goes_on() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let site = Site::create();
    let serve = Serve::start(&site, "serve");
    let path = site.console_data().join(socket::SOCKET_FILE);
    let connect = || {
        let stream = UnixStream::connect(&path).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream
    };
    // Ends when serve closes the connection; what it said, if anything.
    let answer = |mut stream: UnixStream| {
        let mut said = Vec::new();
        stream
            .read_to_end(&mut said)
            .expect("serve closes the connection");
        said
    };

    // Silent: no hello within the deadline, refused and closed.
    let silent = connect();
    // A length past the cap, announced and never sent.
    let mut huge = connect();
    huge.write_all(&u32::MAX.to_le_bytes()).expect("write");
    // Bytes that are no message at all.
    let mut garbage = connect();
    garbage
        .write_all(&[
            16, 0, 0, 0, 0xff, 0xfe, 0xfd, 0xfc, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ])
        .expect("write");
    // A welcome, then a lie about the frame's length.
    let mut liar = connect();
    let hello = socket::encode(&ToServe::Hello {
        version: socket::PROTOCOL_VERSION,
        subscribe: true,
    })
    .expect("hello");
    liar.write_all(&hello).expect("write");
    liar.write_all(&(64 * 1024 * 1024 + 1_u32).to_le_bytes())
        .expect("write");

    // The first frame of what serve said.
    let first = |said: &[u8]| {
        let length = u32::from_le_bytes(said.get(..4)?.try_into().ok()?) as usize;
        said.get(4..4 + length).map(socket::decode::<FromServe>)
    };
    for (what, stream) in [("silent", silent), ("huge", huge), ("garbage", garbage)] {
        let said = answer(stream);
        match first(&said) {
            Some(Ok(FromServe::Refused(_))) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    let said = answer(liar);
    assert!(
        matches!(
            said.get(4..).map(socket::decode::<FromServe>),
            Some(Ok(FromServe::Welcome(_)))
        ),
        "the liar was welcomed, then cut off"
    );
    // An honest command still goes through serve.
    run_ok(&mut site.console(&["agents"]));
    drop(serve);
}
