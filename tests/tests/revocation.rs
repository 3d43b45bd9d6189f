//! Revoking a console with the real binaries over real QUIC: the site's
//! deny-list, signed by its CA, reaches the agent with an admin console's
//! next sync; from then on the agent refuses the revoked viewer at its
//! handshake, also after a restart. A list signed by another site's CA is
//! refused and changes nothing.

use std::path::Path;
use std::process::Command;

use harness::{bin, run_ok, Agent, Site};

/// A viewer console of the site with its own data directory, knowing the
/// agent `bundle` enrolled.
fn viewer(site: &Site, name: &str, bundle: &Path) -> std::path::PathBuf {
    let data = site.path(&format!("viewer-{name}"));
    run_ok(
        Command::new(bin("smarttracker-certs"))
            .args(["console", "--role", "viewer", "--name", name, "--site"])
            .arg(site.path("site"))
            .arg("--out")
            .arg(data.join("identity")),
    );
    run_ok(viewer_command(&data, &["add-agent"]).arg(bundle));
    data
}

fn viewer_command(data: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin("smarttracker-console"));
    command.arg("--data").arg(data).args(args);
    command
}

fn viewer_sync(data: &Path, addr: std::net::SocketAddr) -> std::process::Output {
    viewer_command(
        data,
        &["sync", "--once", "--no-mdns", "--peer", &addr.to_string()],
    )
    .output()
    .expect("sync")
}

fn consoles(site: &Site) -> Vec<serde_json::Value> {
    let output = run_ok(
        site.console(&["consoles", "--json", "--site"])
            .arg(site.path("site")),
    );
    serde_json::from_slice(&output.stdout).expect("json")
}

fn state_of(site: &Site, name: &str) -> String {
    consoles(site)
        .iter()
        .find(|console| console["name"] == name)
        .map(|console| console["state"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[test]
fn a_revoked_viewer_is_refused_once_an_admin_console_synced_even_after_a_restart() {
    let site = Site::create();
    let pc = site.add_agent("pc-01");
    let mut agent = Agent::start(&pc, "127.0.0.1:0", &["--no-mdns"]);
    let addr = agent.addr();
    let salle = viewer(&site, "Salle 2", &site.path("pc-01.bundle"));
    assert!(viewer_sync(&salle, addr).status.success());
    assert_eq!(state_of(&site, "Salle 2"), "valid");
    assert_eq!(state_of(&site, "Test console"), "valid");

    // This console cannot revoke itself; an unknown name is named.
    let own = site
        .console(&["revoke", "console", "Test console", "--site"])
        .arg(site.path("site"))
        .output()
        .expect("revoke");
    assert!(!own.status.success());
    assert!(String::from_utf8_lossy(&own.stderr).contains("this console's own identity"));
    let unknown = site
        .console(&["revoke", "console", "Salle\u{1b}[2J", "--site"])
        .arg(site.path("site"))
        .output()
        .expect("revoke");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no console named"));

    let revoked = run_ok(
        site.console(&["revoke", "console", "Salle 2", "--site"])
            .arg(site.path("site")),
    );
    assert!(
        String::from_utf8_lossy(&revoked.stderr).contains("agents refuse it"),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert_eq!(state_of(&site, "Salle 2"), "revoked");
    // The agent has not heard of it yet.
    assert!(viewer_sync(&salle, addr).status.success());

    site.sync_once(&[addr]);
    let refused = viewer_sync(&salle, addr);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stdout).into_owned()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("has been revoked"), "{said}");
    // The admin console still syncs.
    site.sync_once(&[addr]);

    // The agent kept the list.
    agent.stop();
    let mut agent = Agent::start(&pc, "127.0.0.1:0", &["--no-mdns"]);
    let addr = agent.addr();
    assert!(!viewer_sync(&salle, addr).status.success());
    site.sync_once(&[addr]);
    agent.stop();
}

#[test]
fn a_deny_list_signed_by_another_site_is_refused_and_changes_nothing() {
    let site = Site::create();
    let other = Site::create();
    let before = site
        .console(&["consoles", "--json", "--site"])
        .arg(site.path("site"))
        .output()
        .expect("consoles");
    let forged = site
        .console(&["revoke", "console", "Test console", "--site"])
        .arg(other.path("site"))
        .output()
        .expect("revoke");
    assert!(!forged.status.success());
    let said = String::from_utf8_lossy(&forged.stderr);
    assert!(said.contains("not signed by this site's CA"), "{said}");
    let after = site
        .console(&["consoles", "--json", "--site"])
        .arg(site.path("site"))
        .output()
        .expect("consoles");
    assert_eq!(before.stdout, after.stdout);
    assert_eq!(state_of(&site, "Test console"), "valid");
}
