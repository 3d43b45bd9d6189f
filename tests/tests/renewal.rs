//! Certificate renewal with the real binaries over real QUIC: an agent
//! whose certificate has less than a third of its validity left (issued
//! as if the clock had moved forward) gets a new key and certificate over
//! the authenticated channel; the console re-pins it and syncs on; an
//! agent not due is left alone; the renewed identity survives a restart.
//! A certificate for another key, another id, or none asked for is
//! refused and nothing is written.

use std::process::Command;

use certs::{AgentIdentity, SiteCa, Validity};
use harness::{bin, run_ok, Agent, Site};
use time::{Duration, OffsetDateTime};

fn renew(site: &Site, addr: std::net::SocketAddr) -> String {
    let output = run_ok(
        site.console(&["renew", "--no-mdns", "--peer", &addr.to_string(), "--site"])
            .arg(site.path("site")),
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_agent_near_expiry_is_renewed_with_a_new_key_and_keeps_syncing() {
    let site = Site::create();
    let ca = SiteCa::open(&site.path("site"), None).expect("site CA");
    let now = OffsetDateTime::now_utc();
    // 70 days of validity, 60 of them gone: as if the clock had moved on.
    let old = ca
        .issue_agent(
            Some("pc-01"),
            Validity {
                not_before: now - Duration::days(60),
                not_after: now + Duration::days(10),
            },
        )
        .expect("agent");
    let bundle = site.path("pc-01.bundle");
    old.write_bundle(&bundle).expect("bundle");
    let data = site.path("pc-01");
    run_ok(
        Command::new(bin("smarttracker-agent"))
            .args(["enroll", "--bundle"])
            .arg(&bundle)
            .arg("--data")
            .arg(&data),
    );
    run_ok(site.console(&["add-agent"]).arg(&bundle));
    let mut agent = Agent::start(&data, "127.0.0.1:0", &["--no-mdns"]);
    let addr = agent.addr();
    site.sync_once(&[addr]);

    let said = renew(&site, addr);
    assert!(said.contains("pc-01: renewed"), "{said}");
    let renewed =
        AgentIdentity::read_bundle(&data.join(agent::IDENTITY_FILE)).expect("renewed identity");
    assert_eq!(renewed.agent_id, old.agent_id);
    assert_ne!(
        renewed.key_der.secret_pkcs8_der(),
        old.key_der.secret_pkcs8_der()
    );
    let summary = certs::inspect::summarize(&renewed.cert_der).expect("summary");
    assert!(summary.not_after > now + Duration::days(700), "{summary:?}");

    // The console pinned the new key: sync goes on, now and after a restart.
    let report = site.sync_once(&[addr]);
    assert!(report.contains("synced "), "{report}");
    let again = renew(&site, addr);
    assert!(again.contains("0 certificate(s) renewed"), "{again}");
    agent.stop();
    let mut agent = Agent::start(&data, "127.0.0.1:0", &["--no-mdns"]);
    let report = site.sync_once(&[agent.addr()]);
    assert!(report.contains("synced "), "{report}");
    let audit = run_ok(&mut site.console(&["export", "audit"]));
    assert!(String::from_utf8_lossy(&audit.stdout).contains("renew-agent"));
    agent.stop();
}

#[test]
fn renewal_with_another_sites_ca_or_a_viewer_console_is_refused() {
    let site = Site::create();
    let other = Site::create();
    let data = site.add_agent("pc-01");
    let mut agent = Agent::start(&data, "127.0.0.1:0", &["--no-mdns"]);
    let addr = agent.addr();
    let before = std::fs::read(data.join(agent::IDENTITY_FILE)).expect("identity");
    let foreign = site
        .console(&[
            "renew",
            "--force",
            "--no-mdns",
            "--peer",
            &addr.to_string(),
            "--site",
        ])
        .arg(other.path("site"))
        .output()
        .expect("renew");
    assert!(!foreign.status.success());
    assert!(
        String::from_utf8_lossy(&foreign.stderr).contains("not the one this console belongs to")
    );
    let viewer = site.issue_console("viewer", "Salle 2");
    let viewer_data = site.path("viewer-data");
    std::fs::create_dir_all(&viewer_data).expect("dir");
    std::fs::rename(&viewer, viewer_data.join("identity")).expect("identity");
    run_ok(
        Command::new(bin("smarttracker-console"))
            .arg("--data")
            .arg(&viewer_data)
            .arg("add-agent")
            .arg(site.path("pc-01.bundle")),
    );
    let refused = Command::new(bin("smarttracker-console"))
        .arg("--data")
        .arg(&viewer_data)
        .args([
            "renew",
            "--force",
            "--no-mdns",
            "--peer",
            &addr.to_string(),
            "--site",
        ])
        .arg(site.path("site"))
        .output()
        .expect("renew");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs an admin console"));
    assert_eq!(
        std::fs::read(data.join(agent::IDENTITY_FILE)).expect("identity"),
        before
    );
    agent.stop();
}

#[test]
fn an_admin_console_cannot_install_a_certificate_for_another_key_or_id() {
    use console_engine::model::{AgentId, DayClock};
    use console_engine::store::ConsoleStore;
    use console_engine::sync::{SyncConfig, Syncer};
    use protocol::{ErrorCode, Request, Response};

    let site = Site::create();
    let data = site.add_agent("pc-01");
    let mut agent = Agent::start(&data, "127.0.0.1:0", &["--no-mdns"]);
    let agent_id: AgentId = agent.wait_live().agent_id.parse().expect("agent id");
    let addr = agent.addr();
    let before = std::fs::read(data.join(agent::IDENTITY_FILE)).expect("identity");
    let console_data = site.console_data();
    let store = std::sync::Arc::new(
        ConsoleStore::open(
            &console_data.join(console_engine::STORE_DIR),
            DayClock::utc(),
        )
        .expect("console store"),
    );
    let identity = certs::ConsoleIdentity::read(&console_data.join(console_engine::IDENTITY_DIR))
        .expect("console identity");
    let syncer = Syncer::new(identity, store.clone(), SyncConfig::default());
    let ca = SiteCa::open(&site.path("site"), None).expect("site CA");
    let validity = ca.leaf_validity(OffsetDateTime::now_utc(), certs::AGENT_VALIDITY_DAYS);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let refused =
        |answer: Result<Response, console_engine::sync::SyncError>, says: &str| match answer {
            Err(console_engine::sync::SyncError::Agent(ErrorCode::BadRequest, message)) => {
                assert!(message.contains(says), "{message}");
            }
            other => panic!("expected a refusal saying {says:?}, got {other:?}"),
        };
    runtime.block_on(async {
        // A certificate for a key the agent never made, under its id.
        let for_another_key = || {
            ca.renew_agent_request(
                &certs::enrol::AgentKeyRequest::generate()
                    .expect("key")
                    .csr_der,
                agent_id,
                (Some("pc-01"), None),
                validity,
            )
            .expect("signed")
            .to_vec()
        };
        let install = |cert_der: Vec<u8>| {
            let syncer = &syncer;
            async move {
                syncer
                    .request_agent(agent_id, addr, &Request::InstallCertificate(cert_der))
                    .await
            }
        };
        let new_key = || async {
            match syncer.request_agent(agent_id, addr, &Request::NewKey).await {
                Ok(Response::KeyRequest(csr)) => csr,
                other => panic!("new-key failed: {other:?}"),
            }
        };
        // No new key was asked for: nothing to install.
        refused(install(for_another_key()).await, "no new key is waiting");
        // A new key, then a certificate for another key under its id.
        new_key().await;
        refused(
            install(for_another_key()).await,
            "not for this agent's new key",
        );
        // Its own new key under another agent's id.
        let csr = new_key().await;
        let (_, other_id) = ca
            .sign_agent_request(&csr, Some("pc-01"), None, validity)
            .expect("signed");
        refused(
            install(other_id.to_vec()).await,
            "not for this agent's new key",
        );
        // Garbage.
        new_key().await;
        refused(
            install(vec![0x30; 60_000]).await,
            "not for this agent's new key",
        );
    });
    // Nothing was written, and it still serves its own certificate.
    assert_eq!(
        std::fs::read(data.join(agent::IDENTITY_FILE)).expect("identity"),
        before
    );
    drop(syncer);
    drop(store);
    let synced = String::from_utf8_lossy(
        &run_ok(&mut site.console(&["sync", "--once", "--no-mdns", "--peer", &addr.to_string()]))
            .stdout,
    )
    .into_owned();
    assert!(synced.contains("synced "), "{synced}");
    agent.stop();
}
