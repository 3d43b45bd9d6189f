//! Exactly once, the hard way: the console process is killed with SIGKILL
//! in the middle of syncs, agents are restarted, and one agent's store is
//! wiped (a new epoch). In the end the console holds every record the
//! agents recorded up to its last sync, each exactly once.

use std::process::Stdio;
use std::time::Duration;

use harness::{exported_usage, recorded_usage, run_ok, Agent, Site, Span};

/// What the console holds of one epoch's records `recorded` is exactly a
/// prefix of them (the agent went on recording after the last sync), with
/// no duplicate, and holds at least everything that ended before `synced_ms`
/// minus the time a span may be held back on the agent.
fn assert_exact_prefix(what: &str, held: &[Span], recorded: &[Span], synced_ms: i64) {
    assert!(held.len() <= recorded.len(), "{what}: more than recorded");
    assert_eq!(
        held,
        &recorded[..held.len()],
        "{what}: not the recorded records"
    );
    let must_have = recorded
        .iter()
        .filter(|span| span.1 < synced_ms - 300_000)
        .count();
    assert!(
        held.len() >= must_have,
        "{what}: {} held, {must_have} recorded before the sync",
        held.len()
    );
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("fits")
}

#[test]
fn kills_restarts_and_a_wiped_store_still_give_every_record_once() {
    let rounds: u64 = std::env::var("SMARTTRACKER_SYNC_KILL_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let site = Site::create();
    let datas: Vec<_> = (1..=3)
        .map(|n| site.add_agent(&format!("pc-{n}")))
        .collect();
    let start = |index: usize, history_days: &str| {
        let seed = (index + 1).to_string();
        let mut agent = Agent::start(
            &datas[index],
            "127.0.0.1:0",
            &[
                "--no-mdns",
                "--demo-history-days",
                history_days,
                "--demo-seed",
                &seed,
            ],
        );
        agent.wait_live();
        agent
    };
    let mut agents: Vec<Agent> = (0..3).map(|index| start(index, "6")).collect();
    let sync_command = |agents: &mut Vec<Agent>| {
        let mut command = site.console(&["sync", "--once", "--no-mdns"]);
        for agent in agents.iter_mut() {
            command.arg("--peer").arg(agent.addr().to_string());
        }
        command
    };

    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let mut wiped_epoch: Option<(Vec<Span>, i64, i64)> = None;
    let mut killed_mid_sync = 0;
    for round in 0..rounds {
        let mut console = sync_command(&mut agents)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn console");
        std::thread::sleep(Duration::from_millis(30 + random(700)));
        if console.try_wait().expect("console state").is_none() {
            killed_mid_sync += 1;
        }
        let _ = console.kill();
        let _ = console.wait();

        if round % 4 == 3 {
            // An agent restarts (new port, same store, same epoch).
            let index = usize::try_from(random(3)).expect("small");
            agents.remove(index).stop();
            agents.insert(index, start(index, "0"));
        }
        if round == rounds / 2 {
            // Agent 2's store is wiped after a complete sync of it: what
            // the console took stays; the agent starts a new epoch.
            run_ok(&mut sync_command(&mut agents));
            let synced_ms = now_ms();
            agents.remove(1).stop();
            let old_epoch = recorded_usage(&datas[1]);
            std::fs::remove_dir_all(datas[1].join("store")).expect("wipe store");
            let wiped_ms = now_ms();
            agents.insert(1, start(1, "0"));
            wiped_epoch = Some((old_epoch, synced_ms, wiped_ms));
        }
    }
    eprintln!("console killed mid-sync in {killed_mid_sync} of {rounds} rounds");
    assert!(
        killed_mid_sync * 4 >= rounds,
        "too few kills landed during a sync: {killed_mid_sync}/{rounds}"
    );
    run_ok(&mut sync_command(&mut agents));
    let final_sync_ms = now_ms();
    let ids: Vec<String> = agents
        .iter_mut()
        .map(|agent| agent.ready().agent_id)
        .collect();
    for agent in agents {
        agent.stop();
    }

    let exported = exported_usage(&mut site.console(&[]));
    let (old_epoch, old_synced_ms, wiped_ms) = wiped_epoch.expect("the wipe round ran");
    for (index, id) in ids.iter().enumerate() {
        let held = exported.get(id).cloned().unwrap_or_default();
        let current = recorded_usage(&datas[index]);
        if index == 1 {
            let (before, after): (Vec<Span>, Vec<Span>) =
                held.into_iter().partition(|span| span.0 < wiped_ms);
            assert_exact_prefix("old epoch", &before, &old_epoch, old_synced_ms);
            assert_exact_prefix("new epoch", &after, &current, final_sync_ms);
        } else {
            assert_exact_prefix(&format!("agent {index}"), &held, &current, final_sync_ms);
        }
    }
}
