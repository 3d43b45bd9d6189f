//! People with real demo agents over loopback QUIC: Camille works on two
//! workstations, Lucas and Emma share a third. After one sync the console
//! proposes them from the accounts the agents reported; once Camille is a
//! person, `export attendance` has one line per day for her across both
//! workstations, and the shared workstation splits by OS user. Hostile
//! input to `people` is refused with a short line, never a panic.
//! `people erase` leaves no record of Camille in the console's store (no
//! live key or value about her workstations, in the settings, the audit
//! log or the inventory contains "camille"), the audit log keeps the fact
//! and the counts but not her name, the next sync has both workstations
//! drop her records (gap markers in their place), and the others' records
//! are untouched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

use console_engine::store::ConsoleStore;
use harness::{agent_records, run_ok, Agent, Site};
use protocol::{GapReason, Record, StreamKind};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `export attendance` as JSON lines.
fn attendance(site: &Site) -> Vec<serde_json::Value> {
    stdout(&run_ok(&mut site.console(&[
        "export",
        "attendance",
        "--format",
        "jsonl",
    ])))
    .lines()
    .map(|line| serde_json::from_str(line).expect("a JSON line"))
    .collect()
}

/// Users of the presence and session records of a stopped agent that
/// ended before `before_ms`, and its erased gap markers.
fn agent_users(data: &Path, before_ms: i64) -> (BTreeSet<String>, usize) {
    let mut users = BTreeSet::new();
    let mut erased = 0;
    for stream in StreamKind::ALL {
        for record in agent_records(data, stream) {
            match record.record {
                Record::Activity(span) if span.end_ms < before_ms => {
                    users.insert(span.user);
                }
                Record::Session(event) if event.at_ms < before_ms => {
                    users.insert(event.user);
                }
                Record::Gap(gap) if gap.reason == GapReason::Erased => erased += 1,
                _ => {}
            }
        }
    }
    (users, erased)
}

#[test]
fn a_person_on_two_workstations_is_one_line_a_shared_one_splits_and_erase_leaves_nothing() {
    let site = Site::create();
    let seats = [
        ("pc-1", "camille", "11"),
        ("pc-2", "camille", "12"),
        ("pc-3", "lucas,emma", "13"),
    ];
    let mut agents: Vec<Agent> = seats
        .iter()
        .map(|(name, users, seed)| {
            let data = site.add_agent(name);
            let mut agent = Agent::start(
                &data,
                "127.0.0.1:0",
                &[
                    "--no-mdns",
                    "--demo-history-days",
                    "6",
                    "--demo-seed",
                    seed,
                    "--demo-users",
                    users,
                ],
            );
            agent.wait_live();
            agent
        })
        .collect();
    let addrs: Vec<_> = agents.iter_mut().map(Agent::addr).collect();
    let report = site.sync_once(&addrs);
    assert_eq!(report.matches("synced ").count(), 3, "{report}");

    // Proposed from what the agents reported.
    let listed: serde_json::Value = serde_json::from_str(&stdout(&run_ok(
        &mut site.console(&["people", "list", "--json"]),
    )))
    .expect("JSON");
    let proposals: BTreeMap<String, Vec<String>> = listed["proposals"]
        .as_array()
        .expect("proposals")
        .iter()
        .map(|proposal| {
            let seen_on = proposal["seen_on"]
                .as_array()
                .expect("seen_on")
                .iter()
                .map(|name| name.as_str().expect("a name").to_owned())
                .collect();
            (proposal["name"].as_str().expect("name").to_owned(), seen_on)
        })
        .collect();
    assert_eq!(
        proposals,
        BTreeMap::from([
            (
                "Camille".to_owned(),
                vec!["pc-1".to_owned(), "pc-2".to_owned()]
            ),
            ("Emma".to_owned(), vec!["pc-3".to_owned()]),
            ("Lucas".to_owned(), vec!["pc-3".to_owned()]),
        ])
    );

    // Hostile input: a clear short line, nothing added, no panic.
    let hostile: [&[&str]; 7] = [
        &["people", "add", ""],
        &["people", "add", "x\u{1b}[2J"],
        &["people", "add", "Mallory", "--email", "not-an-address"],
        &["people", "add", "Mallory", "--user", "eve@no-such-pc"],
        &["people", "map", "nobody", "--user", "eve"],
        &["people", "erase", "nobody"],
        &["people", "deactivate", "#99999999999999999999"],
    ];
    let huge = "é".repeat(50_000);
    let huge_user = format!("{}@pc-1", "u".repeat(5_000));
    for args in hostile.iter().copied().chain([
        &["people", "add", huge.as_str()][..],
        &["people", "add", "Mallory", "--user", huge_user.as_str()][..],
    ]) {
        let output = site.console(args).output().expect("people");
        let text = stderr(&output);
        assert!(!output.status.success(), "{args:?} accepted");
        assert!(!text.contains("panicked"), "{text}");
        assert!(text.len() < 1024, "{} bytes for {args:?}", text.len());
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }
    let listed = stdout(&run_ok(&mut site.console(&["people", "list", "--all"])));
    assert!(listed.starts_with("no persons yet"), "{listed}");

    let added = stderr(&run_ok(&mut site.console(&[
        "people",
        "add",
        "Camille Martin",
        "--email",
        "camille.martin@example.fr",
        "--team",
        "Comptabilité",
        "--user",
        "camille",
    ])));
    assert!(added.contains("added Camille Martin (#1)"), "{added}");
    let taken = site
        .console(&["people", "add", "Camille bis", "--user", "camille"])
        .output()
        .expect("people");
    assert!(
        stderr(&taken).contains("already belongs to Camille Martin (#1)"),
        "{}",
        stderr(&taken)
    );

    // One line per day for Camille, across both workstations; the shared
    // workstation splits by OS user.
    let rows = attendance(&site);
    let mut camille_days = BTreeMap::new();
    let mut shared: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in &rows {
        let day = row["day"].as_str().expect("day").to_owned();
        match row["person"].as_str().expect("person") {
            "Camille Martin" => {
                assert_eq!(row["person_id"], 1, "{row}");
                let previous = camille_days.insert(day.clone(), row["workstations"].clone());
                assert!(previous.is_none(), "two lines for Camille on {day}");
            }
            "lucas (pc-3)" | "emma (pc-3)" => {
                assert!(row["person_id"].is_null(), "{row}");
                let users = row["users"].as_str().expect("users").to_owned();
                assert!(users == "lucas" || users == "emma", "{row}");
                shared.entry(day).or_default().insert(users);
            }
            other => panic!("unexpected line {other}: {row}"),
        }
    }
    assert!(
        camille_days
            .values()
            .any(|workstations| workstations == "pc-1 pc-2"),
        "Camille worked on both on some day: {camille_days:?}"
    );
    assert!(
        shared.values().any(|users| users.len() == 2),
        "lucas and emma each have their line: {shared:?}"
    );

    // She may go on working: what the workstations record after the
    // erasure is new data, not hers to drop.
    let erased_at_ms = console_engine::clock::wall_now_ms();
    let erased_line = stderr(&run_ok(&mut site.console(&[
        "people",
        "erase",
        "camille martin",
    ])));
    assert!(
        erased_line.contains("Camille Martin (#1) erased:")
            && erased_line.contains("no live entry here names their accounts any more")
            && erased_line.contains("2 workstation(s)"),
        "{erased_line}"
    );
    let rows = attendance(&site);
    assert!(
        rows.iter()
            .all(|row| row["users"] != "camille" && row["person"] != "Camille Martin"),
        "nothing of Camille is exported"
    );
    assert!(rows.iter().any(|row| row["users"] == "lucas"));
    let audit = stdout(&run_ok(
        &mut site.console(&["export", "audit", "--format", "jsonl"]),
    ));
    assert!(audit.contains("person-erase"), "{audit}");
    assert!(
        !audit.contains("Camille") && !audit.contains("camille"),
        "the audit log keeps the fact and the counts only"
    );

    // The next sync hands the erasure to both workstations first.
    let report = site.sync_once(&addrs);
    assert_eq!(report.matches("synced ").count(), 3, "{report}");
    let audit = stdout(&run_ok(
        &mut site.console(&["export", "audit", "--format", "jsonl"]),
    ));
    assert_eq!(
        audit.matches("person-erase-agent").count(),
        2,
        "both workstations confirmed: {audit}"
    );
    for agent in agents.drain(..) {
        agent.stop();
    }
    // Every live entry about her workstations (records, rollups, accounts
    // seen, screenshots), the settings, the audit log and the inventory.
    let (clock, _) = console_engine::settings::site_clock("");
    let store = ConsoleStore::open(&site.console_data().join(console_engine::STORE_DIR), clock)
        .expect("store");
    for (name, _, _) in &seats {
        let agent = store
            .agents()
            .expect("agents")
            .into_iter()
            .find(|record| record.name == *name)
            .expect("inventoried")
            .agent;
        assert_eq!(
            store
                .count_mentions(&[agent], &[b"camille"], &[])
                .expect("scan"),
            0,
            "{name}"
        );
    }
    let pc3 = store.agents().expect("agents")[..]
        .iter()
        .find(|record| record.name == "pc-3")
        .map(|record| record.agent)
        .expect("pc-3");
    assert!(
        store
            .count_mentions(&[pc3], &[b"lucas"], &[])
            .expect("scan")
            > 0,
        "the others are kept"
    );
    assert!(store
        .accounts(None)
        .expect("accounts")
        .iter()
        .all(|account| account.user != "camille"));
    drop(store);
    for (name, _, _) in &seats[..2] {
        let (users, erased) = agent_users(&site.path(name), erased_at_ms);
        assert!(!users.contains("camille"), "{name} dropped hers: {users:?}");
        assert!(erased > 0, "{name}: her records became erased gap markers");
    }
    let (users, erased) = agent_users(&site.path("pc-3"), erased_at_ms);
    assert_eq!(
        users,
        BTreeSet::from(["emma".to_owned(), "lucas".to_owned()])
    );
    assert_eq!(erased, 0, "pc-3 held nothing of hers");
}
