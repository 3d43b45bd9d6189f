//! Crash safety: the real agent process is killed with SIGKILL at random
//! points while recording; the store must always reopen, and every record
//! the agent reported stored (its status snapshot, written after each
//! flush) must still be there, once, in order.
//!
//! `SMARTTRACKER_CRASH_ITERATIONS` sets the number of kills (default 50;
//! `scripts/crash-soak.sh` runs more).

mod harness;

use std::time::Duration;

use agent::status::StatusSnapshot;
use agent::store::{Quotas, Store};
use harness::{AgentProcess, Site};
use protocol::{Cursor, StreamKind};

/// Every record of a stream, checked to be numbered 1, 2, 3, … with no gap
/// and no repeat; returns the last sequence number.
fn check_stream(store: &Store, stream: StreamKind) -> u64 {
    let mut cursor = Cursor {
        epoch: store.epoch(),
        seq: 0,
    };
    loop {
        let batch = store.pull(stream, cursor, 4096).expect("pull");
        for record in &batch.records {
            assert_eq!(record.seq, cursor.seq + 1, "{stream:?} is contiguous");
            cursor.seq = record.seq;
        }
        if !batch.more {
            return cursor.seq;
        }
    }
}

#[test]
fn sigkill_never_loses_what_was_reported_stored() {
    let iterations: u64 = std::env::var("SMARTTRACKER_CRASH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let site = Site::new();
    let (_identity, data) = site.enrolled_agent("crash-pc");
    let store_dir = data.join(agent::STORE_DIR);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let mut checked_reports = 0;
    for iteration in 0..iterations {
        // Even rounds: a fresh store recording weeks of history (heavy
        // writes). Odd rounds: restart on the store just killed.
        if iteration % 2 == 0 {
            let _ = std::fs::remove_dir_all(&store_dir);
        }
        let seed = iteration.to_string();
        let agent =
            AgentProcess::start(&data, &["--demo-history-days", "20", "--demo-seed", &seed]);
        let pid = agent.child.id();
        std::thread::sleep(Duration::from_millis(150 + random(1200)));
        let reported = StatusSnapshot::read(&data)
            .ok()
            .filter(|snapshot| snapshot.pid == pid);
        agent.kill9();

        let store = Store::open(&store_dir, Quotas::default())
            .unwrap_or_else(|error| panic!("round {iteration}: store does not reopen: {error}"));
        for stream in StreamKind::ALL {
            let last_seq = check_stream(&store, stream);
            if let Some(reported) = &reported {
                let reported_seq = reported
                    .streams
                    .iter()
                    .find(|status| status.stream == stream.name())
                    .map_or(0, |status| status.durable_seq);
                assert!(
                    last_seq >= reported_seq,
                    "round {iteration}: {stream:?} reported stored up to {reported_seq}, store has {last_seq}"
                );
            }
        }
        if reported.is_some() {
            checked_reports += 1;
        }
    }
    assert!(
        checked_reports * 2 >= iterations,
        "too few rounds lived long enough to report anything: {checked_reports}/{iterations}"
    );
}
