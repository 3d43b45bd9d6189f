//! The kill -9 loop: a real demo agent starts, records for a random short
//! time (now and then pulled and acked by a real console), and is killed
//! with SIGKILL; then its store must open and be consistent: no record
//! numbered twice, every hole named by a gap marker or acked by a console,
//! durable heads and acks never going back within an epoch, everything the
//! agent reported stored before the kill (its status, what `status --json`
//! shows) still there unless a console acked it, and everything a console
//! synced acked. Every tenth round starts a fresh store that records weeks
//! of history (heavy writes).
//!
//! `SMARTTRACKER_KILL9_ITERATIONS` sets the rounds (default 20);
//! `scripts/agent-kill9.sh 1000` runs a thousand.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use agent::status::StatusSnapshot;
use console_engine::model::{AgentId, DayClock};
use console_engine::store::ConsoleStore;
use harness::{agent_store, assert_numbering, Agent, AgentStore, Site};
use protocol::StreamKind;

/// The console's cursor seq of each stream of `agent`, in one epoch.
fn console_cursors(site: &Site, agent: AgentId) -> Vec<(StreamKind, u64, u64)> {
    let store = ConsoleStore::open(
        &site.console_data().join(console_engine::STORE_DIR),
        DayClock::utc(),
    )
    .expect("console store");
    StreamKind::ALL
        .into_iter()
        .filter_map(|stream| {
            let cursor = store.cursor(agent, stream).expect("cursor")?;
            Some((stream, cursor.epoch, cursor.seq))
        })
        .collect()
}

/// Checks one killed agent's store against what came before.
fn check(
    round: u64,
    stored: &AgentStore,
    previous: Option<&AgentStore>,
    reported: Option<&StatusSnapshot>,
    synced: &[(StreamKind, u64, u64)],
) {
    for stream in StreamKind::ALL {
        let now = stored.stream(stream);
        let what = format!("round {round}, {}", stream.name());
        assert_numbering(&what, &now.records, now.acked_seq);
        if let Some(before) = previous.filter(|before| before.epoch == stored.epoch) {
            let before = before.stream(stream);
            assert!(
                now.durable_seq >= before.durable_seq,
                "{what}: durable head went back from {} to {}",
                before.durable_seq,
                now.durable_seq
            );
            assert!(now.acked_seq >= before.acked_seq, "{what}: ack went back");
        }
        if let Some(reported) = reported.filter(|status| status.epoch == stored.epoch) {
            let reported_seq = reported
                .streams
                .iter()
                .find(|status| status.stream == stream.name())
                .map_or(0, |status| status.durable_seq);
            assert!(
                now.durable_seq >= reported_seq,
                "{what}: reported stored up to {reported_seq}, the store has {}",
                now.durable_seq
            );
            let present: BTreeSet<u64> = now.records.iter().map(|record| record.seq).collect();
            for seq in now.acked_seq + 1..=reported_seq {
                assert!(
                    present.contains(&seq),
                    "{what}: seq {seq} was reported stored and is gone"
                );
            }
        }
        for (_, epoch, seq) in synced.iter().filter(|(synced, _, _)| *synced == stream) {
            if *epoch == stored.epoch {
                assert!(
                    now.acked_seq >= *seq,
                    "{what}: the console synced up to {seq}, the agent keeps an ack of {}",
                    now.acked_seq
                );
            }
        }
    }
}

#[test]
fn sigkill_never_loses_or_repeats_what_was_reported_stored() {
    let rounds: u64 = std::env::var("SMARTTRACKER_KILL9_ITERATIONS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(20);
    let site = Site::create();
    let data = site.add_agent("kill9-pc");
    let store_dir = data.join(agent::STORE_DIR);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let started = Instant::now();
    let mut previous: Option<AgentStore> = None;
    let mut checked_reports = 0;
    let mut syncs = 0;
    for round in 0..rounds {
        let seed = round.to_string();
        let mut args = vec!["--no-mdns", "--demo-seed", &seed];
        if round % 10 == 0 {
            let _ = std::fs::remove_dir_all(&store_dir);
            args.extend(["--demo-history-days", "20"]);
        }
        let agent = Agent::start(&data, "127.0.0.1:0", &args);
        std::thread::sleep(Duration::from_millis(150 + random(1200)));
        let pid = agent.child.id();
        let mut synced = Vec::new();
        if round % 5 == 3 {
            if let Some(status) = StatusSnapshot::read(&data)
                .ok()
                .filter(|status| status.pid == pid)
            {
                let listen = status.listen.parse().expect("listen address");
                let report = site.sync_once(&[listen]);
                // Addresses of earlier rounds, remembered by the console,
                // are reported unreachable on lines of their own.
                if report.lines().any(|line| line.starts_with("synced")) {
                    let agent_id: AgentId = status.agent_id.parse().expect("agent id");
                    synced = console_cursors(&site, agent_id);
                    syncs += 1;
                }
            }
        }
        let reported = StatusSnapshot::read(&data)
            .ok()
            .filter(|status| status.pid == pid);
        agent.kill9();
        let stored = agent_store(&data);
        check(
            round,
            &stored,
            previous.as_ref(),
            reported.as_ref(),
            &synced,
        );
        checked_reports += u64::from(reported.is_some());
        previous = Some(stored);
    }
    println!(
        "{rounds} kill -9 rounds in {:.0} s: {checked_reports} checked against the agent's report, {syncs} after a console sync; no inconsistency",
        started.elapsed().as_secs_f64()
    );
    assert!(
        checked_reports * 2 >= rounds,
        "too few rounds lived long enough to report anything: {checked_reports}/{rounds}"
    );
}
