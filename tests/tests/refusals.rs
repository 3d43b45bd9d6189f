//! Why a sync did not happen, said plainly: a console whose certificate
//! expired or was revoked is told so, with the fix, and not "connection
//! lost"; `sync --once` exits non-zero when no agent of the inventory
//! could be synced, naming each one and why.

use std::process::Command;
use std::sync::Arc;

use certs::{ConsoleIdentity, Role, SiteCa, Validity};
use console_engine::discovery::{Candidate, CandidateSource};
use console_engine::model::DayClock;
use console_engine::store::ConsoleStore;
use console_engine::sync::{Outcome, SyncConfig, Syncer};
use harness::fake_agent::{Answer, FakeAgent};
use harness::{Agent, Site};
use time::OffsetDateTime;

/// A console identity of the site, valid only in the past.
fn expired_console(site: &Site) -> ConsoleIdentity {
    let ca = SiteCa::open(&site.path("site"), None).expect("site CA");
    let now = OffsetDateTime::now_utc();
    ca.issue_console(
        Role::Admin,
        "Old console",
        Validity {
            not_before: now - time::Duration::days(30),
            not_after: now - time::Duration::days(1),
        },
    )
    .expect("issue")
}

fn open_store(site: &Site) -> Arc<ConsoleStore> {
    Arc::new(
        ConsoleStore::open(
            &site.console_data().join(console_engine::STORE_DIR),
            DayClock::utc(),
        )
        .expect("store"),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn an_expired_console_certificate_is_named_with_the_fix() {
    let site = Site::create();
    let data = site.add_agent("pc-01");
    let mut agent = Agent::start(&data, "127.0.0.1:0", &["--no-mdns"]);
    let addr = agent.addr();

    // The CLI checks its own certificate first.
    let old = site.path("old-console");
    expired_console(&site)
        .write(&old.join(console_engine::IDENTITY_DIR))
        .expect("write identity");
    std::fs::create_dir_all(old.join(console_engine::STORE_DIR)).expect("store dir");
    let output = Command::new(harness::bin("smarttracker-console"))
        .arg("--data")
        .arg(&old)
        .args(["sync", "--once", "--no-mdns", "--peer", &addr.to_string()])
        .output()
        .expect("sync");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("certificate expired on"), "{stderr}");
    assert!(stderr.contains("smarttracker-certs console"), "{stderr}");

    // The engine tries anyway and reads the agent's refusal (a TLS alert),
    // not a lost connection.
    let store = open_store(&site);
    let syncer = Syncer::new(expired_console(&site), store, SyncConfig::default());
    assert!(syncer
        .certificate_problem(console_engine::clock::wall_now_ms())
        .is_some_and(|problem| problem.contains("expired")));
    let outcome = runtime().block_on(syncer.sync_candidate(&Candidate {
        addr,
        claimed_agent: None,
        source: CandidateSource::Static,
    }));
    match outcome {
        Outcome::Refused { reason, .. } => {
            assert!(reason.contains("has expired"), "{reason}");
            assert!(reason.contains("smarttracker-certs console"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    agent.stop();
}

#[test]
fn a_revoked_console_is_told_it_is_revoked() {
    let site = Site::create();
    let data = site.add_agent("pc-02");
    let identity =
        certs::AgentIdentity::read_bundle(&data.join(agent::IDENTITY_FILE)).expect("bundle");
    let console_identity =
        ConsoleIdentity::read(&site.console_data().join(console_engine::IDENTITY_DIR))
            .expect("identity");
    let fingerprint = certs::fingerprint_der(&console_identity.cert_der);
    let fake = FakeAgent::start_denying(identity, vec![fingerprint], || {
        Box::new(|_| Answer::Silence)
    });
    let output = site
        .console(&[
            "sync",
            "--once",
            "--no-mdns",
            "--peer",
            &fake.addr.to_string(),
        ])
        .output()
        .expect("sync");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "nothing synced: {stdout}");
    assert!(stdout.contains("has been revoked"), "{stdout}");
    assert!(!stdout.contains("connection lost"), "{stdout}");
    assert_eq!(fake.requests(), 0, "a refused console is never served");
}

#[test]
fn sync_once_fails_when_no_agent_could_be_synced_and_says_why_for_each() {
    let site = Site::create();
    let first = site.add_agent("pc-03");
    let _second = site.add_agent("pc-04");
    let mut agent = Agent::start(&first, "127.0.0.1:0", &["--no-mdns"]);
    let addr = agent.addr();
    // One agent reachable: success, and the other is named.
    let output = site
        .console(&["sync", "--once", "--no-mdns", "--peer", &addr.to_string()])
        .output()
        .expect("sync");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("no sync for pc-04"), "{stdout}");
    assert!(stdout.contains("no address known"), "{stdout}");
    agent.stop();
    // Nobody reachable: exit 1, each agent with its reason.
    let output = site
        .console(&["sync", "--once", "--no-mdns"])
        .output()
        .expect("sync");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stderr.contains("no agent of the inventory could be synced"),
        "{stderr}"
    );
    assert!(
        stdout.contains("no sync for pc-03") && stdout.contains(&addr.to_string()),
        "{stdout}"
    );
    assert!(stdout.contains("no sync for pc-04"), "{stdout}");
}
