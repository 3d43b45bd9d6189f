//! Enrolment by code with the real binaries over real QUIC: a 2-use code
//! enrols two workstations and no third; wrong, mistyped and expired codes
//! and a console of another site are refused with a clear line and nothing
//! written; the agents' private keys exist only in their own data
//! directories; enrolled agents sync with no bundle and no `add-agent`.
//! Idle connections hold one of the 32 slots for 30 s at most, a 33rd is
//! turned away, and none of it takes a use of the code.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use certs::enrol::EnrolmentCode;
use certs::SiteCa;
use harness::{bin, run_ok, Agent, Site};

/// A running `enrolment open`: its code and address.
struct Open {
    child: Child,
    code: String,
    addr: SocketAddr,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Open {
    fn start(site: &Site, args: &[&str]) -> Open {
        Open::start_answering(site, args, None)
    }

    /// With `answers` written to its standard input (for --approve-each).
    fn start_answering(site: &Site, args: &[&str], answers: Option<&str>) -> Open {
        let mut child = site
            .console(&["enrolment", "open", "--no-mdns", "--listen", "127.0.0.1:0"])
            .arg("--site")
            .arg(site.path("site"))
            .args(args)
            .stdin(if answers.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .spawn()
            .expect("enrolment open");
        if let Some(answers) = answers {
            let mut stdin = child.stdin.take().expect("stdin");
            std::io::Write::write_all(&mut stdin, answers.as_bytes()).expect("answers");
        }
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut code, mut addr) = (None, None);
        while addr.is_none() {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("enrolment open prints its code and address");
            if let Some(text) = line.strip_prefix("code: ") {
                code = Some(text.to_owned());
            }
            if let Some(text) = line.strip_prefix("listening on ") {
                addr = Some(text.parse().expect("address"));
            }
        }
        Open {
            child,
            code: code.expect("code printed before the address"),
            addr: addr.expect("address"),
            lines,
        }
    }

    /// Waits for the command to end by itself; its remaining output.
    fn finish(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "enrolment open did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(self.child.wait().expect("wait").success());
        self.lines.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn enroll(code: &str, console: SocketAddr, data: &Path, name: &str) -> Output {
    Command::new(bin("smarttracker-agent"))
        .args(["enroll", "--code", code, "--console", &console.to_string()])
        .args(["--name", name, "--data"])
        .arg(data)
        .output()
        .expect("smarttracker-agent enroll")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.map_while(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The base64 body of the private key PEM in an agent identity file.
fn private_key_body(identity: &Path) -> String {
    let text = std::fs::read_to_string(identity).expect("identity");
    let begin = text
        .find("-----BEGIN PRIVATE KEY-----")
        .expect("a private key");
    let body = &text[begin + "-----BEGIN PRIVATE KEY-----".len()..];
    let end = body.find("-----END").expect("end of key");
    body[..end].split_whitespace().collect()
}

#[test]
fn a_two_use_code_enrols_two_workstations_that_then_sync_and_refuses_a_third() {
    let site = Site::create();
    let open = Open::start(&site, &["--uses", "2", "--group", "Accueil"]);
    let pc1 = site.path("pc-01");
    let pc2 = site.path("pc-02");
    for (data, name) in [(&pc1, "pc-01"), (&pc2, "pc-02")] {
        let output = enroll(&open.code, open.addr, data, name);
        assert!(output.status.success(), "{}", stderr(&output));
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(said.contains(&format!("({name})")), "{said}");
    }
    let (code, addr) = (open.code.clone(), open.addr);
    let rest = open.finish();
    assert!(
        rest.contains("every use of the code was taken): 2 workstations enrolled"),
        "{rest}"
    );

    // The third finds the enrolment closed; nothing is written.
    let pc3 = site.path("pc-03");
    let refused = enroll(&code, addr, &pc3, "pc-03");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("the enrolment may be closed"),
        "{}",
        stderr(&refused)
    );
    assert!(!pc3.exists(), "a refused enrolment wrote {}", pc3.display());

    // The keys made on the workstations are nowhere else on the site.
    for data in [&pc1, &pc2] {
        let key = private_key_body(&data.join(agent::IDENTITY_FILE));
        let der = base64_decode(&key);
        for file in files_under(site.dir.path()) {
            if file.starts_with(data) {
                continue;
            }
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !contains(&bytes, key.as_bytes()) && !contains(&bytes, &der),
                "{} holds the private key of {}",
                file.display(),
                data.display()
            );
        }
    }

    // Enrolled agents sync: no bundle, no add-agent.
    let agents = run_ok(&mut site.console(&["agents"]));
    let listed = String::from_utf8_lossy(&agents.stdout);
    assert!(
        listed.contains("pc-01") && listed.contains("pc-02"),
        "{listed}"
    );
    let mut a1 = Agent::start(&pc1, "127.0.0.1:0", &["--no-mdns"]);
    let mut a2 = Agent::start(&pc2, "127.0.0.1:0", &["--no-mdns"]);
    let report = site.sync_once(&[a1.addr(), a2.addr()]);
    assert_eq!(report.matches("synced ").count(), 2, "{report}");
    assert!(
        report.contains("(pc-01") && report.contains("(pc-02"),
        "{report}"
    );
    let audit = run_ok(&mut site.console(&["export", "audit"]));
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.contains("enrolment from") && audit.contains("group Accueil"),
        "{audit}"
    );
    a1.stop();
    a2.stop();
}

#[test]
fn wrong_mistyped_foreign_and_expired_codes_are_refused_and_nothing_is_written() {
    let site = Site::create();
    let open = Open::start(&site, &["--uses", "5", "--expires", "4s"]);
    let data = site.path("pc-01");

    // A code of this site that this console did not open.
    let ca = SiteCa::open(&site.path("site"), None).expect("site CA");
    let other_code = EnrolmentCode::generate(&ca.cert_der())
        .expect("code")
        .to_string();
    let wrong = enroll(&other_code, open.addr, &data, "pc-01");
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("refused the code"),
        "{}",
        stderr(&wrong)
    );

    // A typo is caught before anything is sent.
    let mut typo: Vec<char> = open.code.chars().collect();
    typo[2] = if typo[2] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let mistyped = enroll(&typo, open.addr, &data, "pc-01");
    assert!(stderr(&mistyped).contains("typo"), "{}", stderr(&mistyped));

    // The right code at a console of another site.
    let foreign = Site::create();
    let foreign_open = Open::start(&foreign, &["--uses", "1"]);
    let at_foreign = enroll(&open.code, foreign_open.addr, &data, "pc-01");
    assert!(
        stderr(&at_foreign).contains("belongs to another site"),
        "{}",
        stderr(&at_foreign)
    );

    // Junk on the command line, then the code after it expired.
    let junk = enroll(&"é".repeat(10_000), open.addr, &data, "pc-01");
    assert!(!junk.status.success());
    let (code, addr) = (open.code.clone(), open.addr);
    let rest = open.finish();
    assert!(rest.contains("the code expired): 0 workstations"), "{rest}");
    let expired = enroll(&code, addr, &data, "pc-01");
    assert!(stderr(&expired).contains("expired"), "{}", stderr(&expired));

    assert!(
        !data.exists(),
        "a refused enrolment wrote {}",
        data.display()
    );
    let agents = run_ok(&mut site.console(&["agents"]));
    let listed = String::from_utf8_lossy(&agents.stdout);
    assert!(listed.starts_with("no agents yet"), "{listed}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut bits, mut held) = (0u32, 0u32);
    for byte in text.bytes().filter(|byte| *byte != b'=') {
        let Some(value) = ALPHABET.iter().position(|known| *known == byte) else {
            continue;
        };
        bits = (bits << 6) | value as u32;
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
        }
    }
    out
}

/// A hostile workstation that knows the code's CA prefix but not its
/// secret, connecting with the real enrolment TLS config.
async fn hostile_connection(
    code: &EnrolmentCode,
    addr: SocketAddr,
) -> (quinn::Endpoint, quinn::Connection) {
    let (endpoint, connecting) = enrolment_connect(code, addr);
    let connection = connecting.await.expect("handshake");
    (endpoint, connection)
}

/// A runtime for the tests' own QUIC clients.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A connection attempt to the enrolment at `addr` with the real
/// enrolment TLS config for `code`.
fn enrolment_connect(
    code: &EnrolmentCode,
    addr: SocketAddr,
) -> (quinn::Endpoint, quinn::Connecting) {
    let tls = certs::enrol::enrolment_client_config(code, certs::enrol::PinnedCa::default())
        .expect("tls");
    let config =
        certs::transport::client_config(tls, &certs::transport::Limits::default()).expect("config");
    let endpoint = certs::transport::client_endpoint(addr).expect("endpoint");
    let connecting = endpoint
        .connect_with(config, addr, certs::enrol::ENROLMENT_SERVER_NAME)
        .expect("connect");
    (endpoint, connecting)
}

#[test]
fn hostile_enrolment_requests_are_refused_and_an_honest_one_still_enrols() {
    let site = Site::create();
    let open = Open::start(&site, &["--uses", "1"]);
    let code: EnrolmentCode = open.code.parse().expect("code");
    let runtime = runtime();
    runtime.block_on(async {
        // 1. A length prefix of 4 GiB: refused before any allocation.
        let (_endpoint, connection) = hostile_connection(&code, open.addr).await;
        let (mut send, mut recv) = connection.open_bi().await.expect("stream");
        send.write_all(&u32::MAX.to_be_bytes())
            .await
            .expect("write");
        let _ = send.finish();
        let answer = certs::transport::read_message::<protocol::enrol::EnrolReply>(&mut recv).await;
        assert!(
            matches!(
                answer,
                Ok(protocol::enrol::EnrolReply::Refused(
                    protocol::enrol::EnrolRefusal::BadRequest
                )) | Err(_)
            ),
            "{answer:?}"
        );

        // 2. A well-formed request with a forged proof: the code is refused.
        let (_endpoint, connection) = hostile_connection(&code, open.addr).await;
        let (mut send, mut recv) = connection.open_bi().await.expect("stream");
        let key = certs::enrol::AgentKeyRequest::generate().expect("key");
        let forged = protocol::enrol::EnrolRequest {
            csr_der: key.csr_der.clone(),
            proof: vec![0; certs::enrol::PROOF_BYTES],
            hostname: "intruder".to_owned(),
        };
        certs::transport::write_message(&mut send, &forged)
            .await
            .expect("write");
        let answer = certs::transport::read_message::<protocol::enrol::EnrolReply>(&mut recv)
            .await
            .expect("answer");
        assert_eq!(
            answer,
            protocol::enrol::EnrolReply::Refused(protocol::enrol::EnrolRefusal::WrongCode)
        );

        // 3. A proof replayed from another channel: refused too.
        let (_endpoint, connection) = hostile_connection(&code, open.addr).await;
        let (mut send, mut recv) = connection.open_bi().await.expect("stream");
        let replayed = protocol::enrol::EnrolRequest {
            proof: code
                .proof(&[7; certs::enrol::PROOF_BYTES], &key.csr_der)
                .to_vec(),
            ..forged
        };
        certs::transport::write_message(&mut send, &replayed)
            .await
            .expect("write");
        let answer = certs::transport::read_message::<protocol::enrol::EnrolReply>(&mut recv)
            .await
            .expect("answer");
        assert_eq!(
            answer,
            protocol::enrol::EnrolReply::Refused(protocol::enrol::EnrolRefusal::WrongCode)
        );
    });

    // None of it used the code: the honest workstation enrols.
    let data = site.path("pc-01");
    let output = enroll(&open.code, open.addr, &data, "pc-01");
    assert!(output.status.success(), "{}", stderr(&output));
    let rest = open.finish();
    assert!(rest.contains("1 workstation enrolled"), "{rest}");
    let agents = run_ok(&mut site.console(&["agents"]));
    let listed = String::from_utf8_lossy(&agents.stdout);
    assert!(
        listed.contains("pc-01") && !listed.contains("intruder"),
        "{listed}"
    );
}

#[test]
fn idle_connections_hold_a_slot_for_30_s_at_most_and_past_32_are_turned_away() {
    let site = Site::create();
    let open = Open::start(&site, &["--uses", "1"]);
    let code: EnrolmentCode = open.code.parse().expect("code");
    let runtime = runtime();
    let started = Instant::now();
    let idle = runtime.block_on(async {
        // 32 workstations that connect and never ask anything.
        let mut idle = Vec::new();
        for _ in 0..console_engine::enrolment::MAX_CONNECTIONS {
            idle.push(hostile_connection(&code, open.addr).await);
        }
        // The 33rd is turned away at once, not queued.
        let (_endpoint, connecting) = enrolment_connect(&code, open.addr);
        let refused = tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .expect("an answer within 10 s");
        assert!(refused.is_err(), "a 33rd connection is refused");
        idle
    });
    // The listener drops each idle one by its 30 s deadline…
    runtime.block_on(async {
        for (_endpoint, connection) in &idle {
            let closed = tokio::time::timeout(Duration::from_secs(60), connection.closed())
                .await
                .expect("closed by the console");
            assert!(
                !matches!(closed, quinn::ConnectionError::LocallyClosed),
                "{closed:?}"
            );
        }
    });
    let held = started.elapsed();
    assert!(
        held >= console_engine::enrolment::REQUEST_DEADLINE - Duration::from_secs(1),
        "{held:?}"
    );
    drop(idle);
    // …and an honest workstation then enrols: the code's use was never taken.
    let output = enroll(&open.code, open.addr, &site.path("pc-01"), "pc-01");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(open.finish().contains("1 workstation enrolled"));
}

#[test]
fn approve_each_asks_the_manager_and_a_declined_workstation_gets_nothing() {
    let site = Site::create();
    // The first workstation is declined, the second approved.
    let open = Open::start_answering(&site, &["--uses", "1", "--approve-each"], Some("n\ny\n"));
    let declined = site.path("pc-01");
    let output = enroll(&open.code, open.addr, &declined, "pc-01");
    assert!(!output.status.success());
    assert!(stderr(&output).contains("declined"), "{}", stderr(&output));
    assert!(!declined.exists());
    let approved = site.path("pc-02");
    let output = enroll(&open.code, open.addr, &approved, "pc-02");
    assert!(output.status.success(), "{}", stderr(&output));
    let rest = open.finish();
    assert!(rest.contains("1 workstation enrolled"), "{rest}");
    let agents = run_ok(&mut site.console(&["agents"]));
    let listed = String::from_utf8_lossy(&agents.stdout);
    assert!(
        listed.contains("pc-02") && !listed.contains("pc-01"),
        "{listed}"
    );
}

#[test]
fn an_enrolment_while_serve_holds_the_store_goes_into_its_inventory() {
    let site = Site::create();
    let mut serve = site
        .console(&["serve", "--no-mdns"])
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let socket = site.console_data().join("console.sock");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "serve never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let open = Open::start(&site, &["--uses", "1"]);
    let data = site.path("pc-01");
    let output = enroll(&open.code, open.addr, &data, "pc-01");
    assert!(output.status.success(), "{}", stderr(&output));
    let rest = open.finish();
    assert!(
        rest.contains("added agent") && rest.contains("(pc-01)"),
        "{rest}"
    );
    // `agents` attaches to serve, which holds the store.
    let agents = run_ok(&mut site.console(&["agents"]));
    assert!(String::from_utf8_lossy(&agents.stdout).contains("pc-01"));
    let _ = serve.kill();
    let _ = serve.wait();
}
