//! `smarttracker-console revoke agent` with two real demo agents over
//! loopback QUIC: a revoked agent is refused by the next `sync --once`
//! (reported as not in the inventory, its stored data not growing),
//! `--erase` leaves nothing of it in the CLI's exports nor in the store's
//! export of every raw record and rollup, and the audit log keeps the fact
//! and the counts; hostile agent names are refused with a line, never a
//! panic.

use std::process::Output;

use console_engine::model::DAY_MS;
use console_engine::store::{ConsoleStore, ExportKind};
use harness::{run_ok, Agent, Site};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every table but the audit log, as JSON lines.
fn exported_tables(site: &Site) -> String {
    ["usage", "sessions", "attendance", "health"]
        .into_iter()
        .map(|table| {
            stdout(&run_ok(
                &mut site.console(&["export", table, "--format", "jsonl"]),
            ))
        })
        .collect()
}

/// Lines of the store's export of every raw record and rollup naming
/// `agent` (no console process may run).
fn stored_lines(site: &Site, agent: &str) -> usize {
    let (clock, _) = console_engine::settings::site_clock("");
    let store = ConsoleStore::open(&site.console_data().join(console_engine::STORE_DIR), clock)
        .expect("store");
    let mut out = Vec::new();
    let to_ms = console_engine::clock::wall_now_ms() + DAY_MS;
    store
        .export_jsonl(&mut out, &ExportKind::ALL, 0, to_ms)
        .expect("export");
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|line| line.contains(agent))
        .count()
}

#[test]
fn a_revoked_agent_is_refused_by_sync_and_erasing_it_leaves_nothing_exported() {
    let site = Site::create();
    let mut agents: Vec<(Agent, String)> = (1..=2)
        .map(|n| {
            let name = format!("pc-{n}");
            let data = site.add_agent(&name);
            let seed = n.to_string();
            let mut agent = Agent::start(
                &data,
                "127.0.0.1:0",
                &[
                    "--no-mdns",
                    "--demo-history-days",
                    "2",
                    "--demo-seed",
                    &seed,
                ],
            );
            let id = agent.wait_live().agent_id;
            (agent, id)
        })
        .collect();
    let addrs: Vec<_> = agents.iter_mut().map(|(agent, _)| agent.addr()).collect();
    let (revoked, kept) = (agents[0].1.clone(), agents[1].1.clone());
    let report = site.sync_once(&addrs);
    assert_eq!(report.matches("synced ").count(), 2, "{report}");

    // Hostile names: refused with a line saying what to type, no panic.
    for bad in ["pc\u{1b}[2J\n-1", "", &"x".repeat(10 * 1024)] {
        let output = site
            .console(&["revoke", "agent", bad])
            .output()
            .expect("revoke");
        let stderr = stderr(&output);
        assert!(!output.status.success(), "{bad:?} accepted");
        assert!(
            stderr.contains("no agent") && stderr.contains("agents`"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.len() < 1024, "{} bytes", stderr.len());
        assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    }

    let revoked_before = stored_lines(&site, &revoked);
    assert!(
        revoked_before > 100,
        "two days of history: {revoked_before}"
    );
    let line = stdout(&run_ok(&mut site.console(&["revoke", "agent", "pc-1"])));
    assert!(
        line.starts_with(&format!("revoked agent {revoked} (\"pc-1\")")),
        "{line}"
    );
    let listed = stdout(&run_ok(&mut site.console(&["agents"])));
    assert!(
        !listed.contains(&revoked) && listed.contains(&kept),
        "{listed}"
    );

    // The next sync is offered both addresses: the revoked agent's
    // certificate is no longer pinned, so nothing of it is taken.
    let report = site.sync_once(&addrs);
    assert_eq!(report.matches("synced ").count(), 1, "{report}");
    assert!(report.contains(&format!("synced {kept}")), "{report}");
    assert!(
        report.contains(&format!("unknown agent at {}", addrs[0]))
            && report.contains("not in the inventory"),
        "{report}"
    );
    assert_eq!(
        stored_lines(&site, &revoked),
        revoked_before,
        "no new data of a revoked agent, and its data is kept"
    );
    // It is no longer found by name; its id still names its data.
    let output = site
        .console(&["revoke", "agent", "pc-1", "--erase"])
        .output()
        .expect("revoke");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no agent \"pc-1\""),
        "{}",
        stderr(&output)
    );

    let line = stdout(&run_ok(
        &mut site.console(&["revoke", "agent", &revoked, "--erase"]),
    ));
    let erased: u64 = line
        .strip_prefix(&format!(
            "revoked and erased what was left of agent {revoked}: "
        ))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("one summary line: {line}"));
    assert!(erased > 0, "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");

    let tables = exported_tables(&site);
    assert!(!tables.contains(&revoked), "erased agent exported");
    assert!(tables.contains(&kept), "the other agent is still there");
    assert_eq!(stored_lines(&site, &revoked), 0);
    assert!(stored_lines(&site, &kept) > 100);
    let audit = stdout(&run_ok(
        &mut site.console(&["export", "audit", "--format", "jsonl"]),
    ));
    let about: Vec<&str> = audit
        .lines()
        .filter(|line| line.contains(&revoked))
        .filter(|line| line.contains("revoke-agent") || line.contains("erase-agent"))
        .collect();
    assert_eq!(about.len(), 2, "{audit}");
    assert!(about[0].contains("pc-1"), "{}", about[0]);
    assert!(
        about[1].contains(&format!("erased {erased} records")),
        "{}",
        about[1]
    );

    // Nothing left: a second erasure is refused, saying so.
    let output = site
        .console(&["revoke", "agent", &revoked, "--erase"])
        .output()
        .expect("revoke");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("nothing to erase"),
        "{}",
        stderr(&output)
    );
    for (agent, _) in agents {
        agent.stop();
    }
}
