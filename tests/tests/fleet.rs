//! Three real demo agents and one console over loopback QUIC: after
//! `sync --once`, the console's exported usage is exactly what each agent
//! recorded (compared record by record against the agent's own store).

use std::collections::BTreeMap;

use harness::{exported_usage, recorded_usage, run_ok, Agent, Site};

/// (start_ms, end_ms, app) of every exported usage span, per agent id.
#[test]
fn sync_once_stores_exactly_what_three_agents_recorded() {
    let site = Site::create();
    let agents: Vec<_> = (1..=3)
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
                    "4",
                    "--demo-seed",
                    &seed,
                ],
            );
            agent.wait_live();
            (agent, data)
        })
        .collect();
    let mut sync = site.console(&["sync", "--once", "--no-mdns"]);
    let mut ids = BTreeMap::new();
    let mut running = Vec::new();
    for (mut agent, data) in agents {
        let status = agent.ready();
        sync.arg("--peer").arg(&status.listen);
        ids.insert(status.agent_id.clone(), data.clone());
        running.push(agent);
    }
    let output = run_ok(&mut sync);
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(report.matches("synced ").count(), 3, "{report}");
    // Stop the agents: their stores are final, and what the console took
    // must be exactly their records up to the moment of the sync.
    for agent in running {
        agent.stop();
    }

    let exported = exported_usage(&mut site.console(&[]));
    assert_eq!(exported.len(), 3, "usage from every agent");
    for (agent_id, data) in &ids {
        let recorded = recorded_usage(data);
        let got = exported.get(agent_id).expect("agent exported");
        assert!(got.len() > 100, "four days of history: {}", got.len());
        // The agents went on recording after the sync; everything the
        // console has is what the agent recorded, once, and nothing before
        // the sync is missing.
        assert!(got.len() <= recorded.len());
        assert_eq!(got[..], recorded[..got.len()], "agent {agent_id}");
        let mut unique = got.clone();
        unique.dedup();
        assert_eq!(unique.len(), got.len(), "no duplicates");
    }
}
