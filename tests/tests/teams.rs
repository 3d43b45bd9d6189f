//! Team-scoped viewers with the real binaries over real QUIC: a viewer
//! certificate limited to a team is served only by workstations whose own
//! certificate puts them in that team; the others refuse it at once with
//! a reason it can show; an unlimited console still syncs every one.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::{bin, run_ok, Agent, Site};

/// An agent of `team` (none: no team), enrolled and in the admin's inventory.
fn agent_in(site: &Site, name: &str, team: Option<&str>) -> PathBuf {
    let bundle = site.path(&format!("{name}.bundle"));
    let mut issue = Command::new(bin("smarttracker-certs"));
    issue
        .args(["agent", "--name", name, "--site"])
        .arg(site.path("site"))
        .arg("--out")
        .arg(&bundle);
    if let Some(team) = team {
        issue.args(["--team", team]);
    }
    run_ok(&mut issue);
    let data = site.path(name);
    run_ok(
        Command::new(bin("smarttracker-agent"))
            .args(["enroll", "--bundle"])
            .arg(&bundle)
            .arg("--data")
            .arg(&data),
    );
    run_ok(site.console(&["add-agent"]).arg(&bundle));
    data
}

fn console_at(data: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin("smarttracker-console"));
    command.arg("--data").arg(data).args(args);
    command
}

#[test]
fn a_team_viewer_gets_only_its_teams_workstations() {
    let site = Site::create();
    let salle1 = agent_in(&site, "pc-salle1", Some("Salle 1"));
    let salle2 = agent_in(&site, "pc-salle2", Some("Salle 2"));
    let office = agent_in(&site, "pc-office", None);
    let viewer = site.path("teacher");
    let issued = run_ok(
        Command::new(bin("smarttracker-certs"))
            .args([
                "console", "--role", "viewer", "--name", "Teacher", "--team", "Salle 1",
            ])
            .arg("--site")
            .arg(site.path("site"))
            .arg("--out")
            .arg(viewer.join("identity")),
    );
    assert!(String::from_utf8_lossy(&issued.stdout).contains("team:        Salle 1"));
    for name in ["pc-salle1", "pc-salle2", "pc-office"] {
        run_ok(console_at(&viewer, &["add-agent"]).arg(site.path(&format!("{name}.bundle"))));
    }
    let mut agents: Vec<Agent> = [&salle1, &salle2, &office]
        .into_iter()
        .map(|data| {
            // Five days always hold weekdays with usage.
            Agent::start(
                data,
                "127.0.0.1:0",
                &["--no-mdns", "--demo-history-days", "5"],
            )
        })
        .collect();
    let addrs: Vec<String> = agents
        .iter_mut()
        .map(|agent| agent.addr().to_string())
        .collect();

    let mut sync = console_at(&viewer, &["sync", "--once", "--no-mdns"]);
    for addr in &addrs {
        sync.args(["--peer", addr]);
    }
    let output = run_ok(&mut sync);
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(said.matches("synced ").count(), 1, "{said}");
    assert!(said.contains("(pc-salle1"), "{said}");
    assert_eq!(
        said.matches("this workstation is not in that team").count(),
        2,
        "{said}"
    );
    let export = run_ok(&mut console_at(
        &viewer,
        &["export", "usage", "--from", "2000-01-01"],
    ));
    let rows = String::from_utf8_lossy(&export.stdout);
    assert!(rows.contains("pc-salle1"), "{rows}");
    assert!(
        !rows.contains("pc-salle2") && !rows.contains("pc-office"),
        "{rows}"
    );

    // The site's consoles list says who is limited to what.
    let listed = run_ok(site.console(&["consoles", "--site"]).arg(site.path("site")));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("team Salle 1"));

    // An unlimited console still gets every workstation.
    let report = site.sync_once(&agents.iter_mut().map(Agent::addr).collect::<Vec<_>>());
    assert_eq!(report.matches("synced ").count(), 3, "{report}");
    for agent in agents {
        agent.stop();
    }
}

#[test]
fn hostile_team_names_are_refused_before_anything_is_issued() {
    let site = Site::create();
    for team in ["", " Salle", "Salle\n1", &"x".repeat(65)] {
        let out = site.path("bad-viewer");
        let output = Command::new(bin("smarttracker-certs"))
            .args(["console", "--role", "viewer", "--name", "V", "--team", team])
            .arg("--site")
            .arg(site.path("site"))
            .arg("--out")
            .arg(&out)
            .output()
            .expect("certs");
        assert!(!output.status.success(), "{team:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("team name"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!out.exists());
    }
}
