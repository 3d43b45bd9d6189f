//! The agent service end to end: a real agent process (demo sensors) and a
//! console client over real QUIC with real site certificates.

mod harness;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use agent::status::StatusSnapshot;
use certs::Role;
use harness::{block_on, AgentProcess, Console, Site, AGENT_BIN};
use protocol::{Cursor, ErrorCode, Policy, Request, Response, StreamKind};

fn seqs(records: &[protocol::SeqRecord]) -> Vec<u64> {
    records.iter().map(|record| record.seq).collect()
}

#[test]
fn records_come_back_in_order_once_and_acks_survive_restart() {
    let site = Site::new();
    let (identity, data) = site.enrolled_agent("pc-01");
    let admin = site.console(Role::Admin);

    // Five days always hold two whole weekdays (the demo rests at weekends),
    // whatever day the test runs.
    let mut agent = AgentProcess::start(&data, &["--demo-history-days", "5"]);
    agent.wait_history();
    let addr = agent.addr();
    let (usage_before, usage_cursor, sessions_before, epoch) = block_on(async {
        let console = Console::connect(&admin, &identity, addr).await;
        let hello = console.hello().await;
        assert!(hello.demo, "demo data is labelled on the wire");
        assert_eq!(hello.agent_id, identity.agent_id);
        let start = Cursor { epoch: 0, seq: 0 };
        let (usage, usage_cursor) = console.pull_all(StreamKind::Usage, start).await;
        let (sessions, _) = console.pull_all(StreamKind::Sessions, start).await;
        let response = console.ack(StreamKind::Usage, usage_cursor).await;
        assert!(matches!(response, Response::Acked(_)), "{response:?}");
        (usage, usage_cursor, sessions, usage_cursor.epoch)
    });
    // In order, once: consecutive sequence numbers from 1.
    assert!(
        usage_before.len() > 100,
        "5 days of history: {}",
        usage_before.len()
    );
    let expected: Vec<u64> = (1..=usage_before.len() as u64).collect();
    assert_eq!(seqs(&usage_before), expected);
    assert_eq!(
        seqs(&sessions_before),
        (1..=sessions_before.len() as u64).collect::<Vec<_>>()
    );
    agent.stop();

    let mut agent = AgentProcess::start(&data, &[]);
    let addr = agent.addr();
    block_on(async {
        let console = Console::connect(&admin, &identity, addr).await;
        let hello = console.hello().await;
        let usage_head = hello
            .heads
            .iter()
            .find(|(stream, _)| *stream == StreamKind::Usage)
            .map(|(_, cursor)| *cursor)
            .expect("usage head");
        assert_eq!(usage_head.epoch, epoch, "same store, same epoch");
        // Acked records are not served again after the acked cursor.
        let (usage_after, _) = console.pull_all(StreamKind::Usage, usage_cursor).await;
        assert!(usage_after
            .iter()
            .all(|record| record.seq > usage_cursor.seq));
        // Unacked sessions are all still there, unchanged.
        let (sessions_again, _) = console
            .pull_all(StreamKind::Sessions, Cursor { epoch, seq: 0 })
            .await;
        assert!(sessions_again.len() >= sessions_before.len());
        assert_eq!(
            &sessions_again[..sessions_before.len()],
            &sessions_before[..]
        );
        // A foreign epoch (a console that knew another store) starts over.
        let (from_foreign, _) = console
            .pull_all(
                StreamKind::Sessions,
                Cursor {
                    epoch: epoch ^ 1,
                    seq: 5,
                },
            )
            .await;
        assert_eq!(from_foreign.first().map(|record| record.seq), Some(1));
        // An ack beyond what exists is refused.
        let response = console
            .ack(
                StreamKind::Usage,
                Cursor {
                    epoch,
                    seq: u64::MAX,
                },
            )
            .await;
        assert!(
            matches!(response, Response::Error(ref error) if error.code == ErrorCode::BadRequest),
            "{response:?}"
        );
    });
    agent.stop();
}

#[test]
fn viewer_cannot_change_policy_and_every_pull_is_in_status() {
    let site = Site::new();
    let (identity, data) = site.enrolled_agent("pc-02");
    let admin = site.console(Role::Admin);
    let viewer = site.console(Role::Viewer);
    let mut agent = AgentProcess::start(&data, &["--demo-history-days", "1"]);
    let addr = agent.addr();
    block_on(async {
        let as_viewer = Console::connect(&viewer, &identity, addr).await;
        let refused = as_viewer
            .ask(Request::SetPolicy(Policy {
                revision: 5,
                collect_titles: true,
                ..Policy::default()
            }))
            .await;
        assert!(
            matches!(refused, Response::Error(ref error) if error.code == ErrorCode::Forbidden),
            "{refused:?}"
        );
        as_viewer
            .pull_all(StreamKind::Health, Cursor { epoch: 0, seq: 0 })
            .await;
        let Response::Policy(policy) = as_viewer.ask(Request::GetPolicy).await else {
            panic!("viewer may read the policy")
        };
        assert!(!policy.collect_titles, "the refused change did not apply");

        let as_admin = Console::connect(&admin, &identity, addr).await;
        let new_policy = Policy {
            revision: 1,
            idle_threshold_secs: 300,
            ..Policy::default()
        };
        let applied = as_admin.ask(Request::SetPolicy(new_policy.clone())).await;
        assert_eq!(applied, Response::Policy(new_policy.clone()));
        let stale = as_admin.ask(Request::SetPolicy(new_policy)).await;
        assert!(
            matches!(stale, Response::Error(ref error) if error.code == ErrorCode::BadRequest),
            "same revision again is refused: {stale:?}"
        );
    });

    // The transparency view shows the refused attempt and the pull, by whom.
    let viewer_id = viewer.console_id.to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let snapshot = loop {
        let snapshot = StatusSnapshot::read(&data).expect("status");
        let requests: BTreeSet<(String, bool)> = snapshot
            .recent_access
            .iter()
            .filter(|entry| entry.console_id == viewer_id)
            .map(|entry| (entry.request.clone(), entry.allowed))
            .collect();
        if requests.contains(&("pull".to_owned(), true))
            && requests.contains(&("set-policy".to_owned(), false))
            && snapshot.policy.idle_threshold_secs == 300
        {
            break snapshot;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed the accesses: {:#?}",
            snapshot.recent_access
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(snapshot
        .collected()
        .iter()
        .any(|line| line.contains("idle after 300 s")));

    // The text report says the same through the real CLI.
    let output = std::process::Command::new(AGENT_BIN)
        .args(["status", "--data"])
        .arg(&data)
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(text.contains("SIMULATED"), "{text}");
    assert!(text.contains("set-policy REFUSED"), "{text}");
    assert!(text.contains("window titles: not collected"), "{text}");
    agent.stop();
}

#[test]
fn the_hello_states_the_machines_time_zone() {
    let site = Site::new();
    let (identity, data) = site.enrolled_agent("pc-01");
    let admin = site.console(Role::Admin);
    // As the demo starts one of its agents.
    let mut agent = AgentProcess::start_with(
        &data,
        "demo",
        &["--demo-history-days", "1"],
        &[("TZ", "America/Montreal")],
    );
    let addr = agent.addr();
    let time_zone = block_on(async {
        let console = Console::connect(&admin, &identity, addr).await;
        console.hello().await.time_zone
    });
    assert_eq!(time_zone, "America/Montreal");
    agent.stop();
}

/// Erased markers and the records of `user` among `records`.
fn erased_and_left(records: &[protocol::SeqRecord], user: &str) -> (usize, usize) {
    let erased = records
        .iter()
        .filter(|record| {
            matches!(&record.record, protocol::Record::Gap(gap)
                if gap.reason == protocol::GapReason::Erased
                    && (gap.first_seq, gap.last_seq) == (record.seq, record.seq))
        })
        .count();
    let left = records
        .iter()
        .filter(|record| match &record.record {
            protocol::Record::Activity(span) => span.user == user,
            protocol::Record::Session(event) => event.user == user,
            _ => false,
        })
        .count();
    (erased, left)
}

#[test]
fn only_an_admin_erases_and_only_a_well_formed_request() {
    let site = Site::new();
    let (identity, data) = site.enrolled_agent("pc-03");
    let admin = site.console(Role::Admin);
    let viewer = site.console(Role::Viewer);
    let mut agent = AgentProcess::start(&data, &["--demo-history-days", "1"]);
    agent.wait_history();
    let addr = agent.addr();
    let user = agent::demo::DEMO_USER.to_owned();
    let oversized = "x".repeat(protocol::MAX_USER_BYTES + 1);
    block_on(async {
        let start = Cursor { epoch: 0, seq: 0 };
        let as_viewer = Console::connect(&viewer, &identity, addr).await;
        let refused = as_viewer
            .ask(Request::EraseUsers(protocol::EraseUsers {
                users: vec![user.clone()],
            }))
            .await;
        assert!(
            matches!(refused, Response::Error(ref error) if error.code == ErrorCode::Forbidden),
            "{refused:?}"
        );

        let as_admin = Console::connect(&admin, &identity, addr).await;
        let seventeen: Vec<String> = (0..=protocol::MAX_ERASE_USERS)
            .map(|i| {
                if i == 0 {
                    user.clone()
                } else {
                    format!("u{i}")
                }
            })
            .collect();
        for users in [
            Vec::new(),
            seventeen,
            vec![user.clone(), String::new()],
            vec![user.clone(), oversized.clone()],
        ] {
            let count = users.len();
            let response = as_admin
                .ask(Request::EraseUsers(protocol::EraseUsers { users }))
                .await;
            assert!(
                matches!(response, Response::Error(ref error) if error.code == ErrorCode::BadRequest),
                "{count} users: {response:?}"
            );
        }
        // Nothing was erased by the refused requests.
        let (sessions, _) = as_admin.pull_all(StreamKind::Sessions, start).await;
        let (erased, left) = erased_and_left(&sessions, &user);
        assert_eq!(erased, 0);
        assert!(left > 0, "the demo history has the demo user's sessions");

        // An admin's well-formed erasure does it, durably, before answering.
        let response = as_admin
            .ask(Request::EraseUsers(protocol::EraseUsers {
                users: vec![user.clone(), "nobody-here".to_owned()],
            }))
            .await;
        let Response::Erased(reply) = response else {
            panic!("erase: {response:?}")
        };
        assert!(reply.records >= left as u64, "{reply:?}");
        let (after, _) = as_admin.pull_all(StreamKind::Sessions, start).await;
        let before_erasure = &after[..sessions.len()];
        let (erased, left_after) = erased_and_left(before_erasure, &user);
        assert_eq!(left_after, 0, "none of the demo user's records is served");
        assert_eq!(erased, left);
        assert_eq!(seqs(before_erasure), seqs(&sessions), "numbers are kept");
    });

    // The access log counts the accounts and never names them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snapshot = StatusSnapshot::read(&data).expect("status");
        let erasures: Vec<_> = snapshot
            .recent_access
            .iter()
            .filter(|entry| entry.request == "erase-users")
            .collect();
        if erasures.len() == 6 {
            assert!(erasures.iter().any(|entry| entry.allowed
                && entry.detail.starts_with("erased 2 accounts: ")
                && entry.detail.ends_with(" images")));
            assert_eq!(erasures.iter().filter(|entry| !entry.allowed).count(), 1);
            for entry in erasures {
                assert!(!entry.detail.contains(&user), "{}", entry.detail);
                assert!(!entry.detail.contains(&oversized), "{}", entry.detail);
                assert!(!entry.detail.contains("nobody-here"), "{}", entry.detail);
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed the erasures: {:#?}",
            snapshot.recent_access
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    agent.stop();
}
