//! A LAN of network namespaces: three agent hosts, one console host and one
//! host with another site's certificate, on one bridge. The console finds
//! the agents over mDNS, refuses the foreign host, and with 10 % of packets
//! dropped still syncs every record exactly once.
//!
//! Needs root and iproute2 + nftables (scripts/install-deps.sh); CI runs as
//! root, so a missing prerequisite fails the test instead of skipping it.
//! Packet loss uses nftables (`numgen random mod 10 0 drop`) because this
//! kernel has no netem qdisc.

use std::path::Path;
use std::process::Command;

use harness::{bin, exported_usage, recorded_usage, run_ok, Agent, Site};

/// Namespaces and links made by this test; removed on drop.
struct Lan {
    prefix: String,
    namespaces: Vec<String>,
}

fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run `ip` ({error}): run scripts/install-deps.sh"));
    assert!(
        output.status.success(),
        "ip {args:?} failed: {}; the LAN test needs root (CI runs as root)",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Lan {
    /// A switch namespace with a bridge, and one host namespace per name,
    /// each with address 10.77.0.<n>/24.
    fn new(hosts: &[&str]) -> Lan {
        static LANS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let lan = LANS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let prefix = format!("st{}l{lan}", std::process::id() % 100_000);
        let switch = format!("{prefix}sw");
        let mut lan = Lan {
            prefix: prefix.clone(),
            namespaces: Vec::new(),
        };
        ip(&["netns", "add", &switch]);
        lan.namespaces.push(switch.clone());
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        for (index, host) in hosts.iter().enumerate() {
            let ns = lan.ns(host);
            ip(&["netns", "add", &ns]);
            lan.namespaces.push(ns.clone());
            let port = format!("p{index}");
            ip(&[
                "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"]);
            let address = format!("10.77.0.{}/24", index + 10);
            ip(&["-n", &ns, "addr", "add", &address, "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up", "multicast", "on"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            // mDNS goes out of eth0, the only route.
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"]);
        }
        lan
    }

    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn exec(&self, host: &str, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns(host)]).arg(program);
        command
    }

    /// Drops `one_in` of every 10 packets entering and leaving `host`.
    fn lose_packets(&self, host: &str, tenths: u32) {
        let ns = self.ns(host);
        let nft = |args: &[&str]| {
            let output = Command::new("ip")
                .args(["netns", "exec", &ns, "nft"])
                .args(args)
                .output()
                .unwrap_or_else(|error| {
                    panic!("cannot run nft ({error}): run scripts/install-deps.sh")
                });
            assert!(
                output.status.success(),
                "nft {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        nft(&["add", "table", "inet", "lossy"]);
        for (chain, hook) in [("in", "input"), ("out", "output")] {
            nft(&[
                "add",
                "chain",
                "inet",
                "lossy",
                chain,
                &format!("{{ type filter hook {hook} priority 0; }}"),
            ]);
            nft(&[
                "add",
                "rule",
                "inet",
                "lossy",
                chain,
                "numgen",
                "random",
                "mod",
                "10",
                "<",
                &tenths.to_string(),
                "drop",
            ]);
        }
    }
}

impl Lan {
    /// Stops dropping packets at `host`.
    fn lossless(&self, host: &str) {
        let status = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(host),
                "nft",
                "delete",
                "table",
                "inet",
                "lossy",
            ])
            .status()
            .expect("nft");
        assert!(status.success(), "nft delete table");
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn mdns_discovery_foreign_site_refusal_and_lossy_exactly_once() {
    let hosts = ["a1", "a2", "a3", "foreign", "console"];
    let lan = Lan::new(&hosts);
    let site = Site::create();
    let other_site = Site::create();
    let agent_bin = bin("smarttracker-agent");

    let mut agents = Vec::new();
    let mut datas = Vec::new();
    for (index, host) in ["a1", "a2", "a3"].iter().enumerate() {
        let data = site.add_agent(host);
        let seed = (index + 1).to_string();
        let mut agent = Agent::start_with(
            lan.exec(host, &agent_bin),
            &data,
            "0.0.0.0:47100",
            // Five days always hold two whole weekdays.
            &["--demo-history-days", "5", "--demo-seed", &seed],
        );
        agent.wait_live();
        agents.push(agent);
        datas.push(data);
    }
    // A host of another organisation advertising the same service.
    let foreign_data = other_site.add_agent("intruder");
    let mut foreign = Agent::start_with(
        lan.exec("foreign", &agent_bin),
        &foreign_data,
        "0.0.0.0:47100",
        &[],
    );
    foreign.wait_live();

    // 1. 10 % of packets lost both ways at the console while it pulls
    //    three days of history from each agent (static peers): syncs still
    //    converge, and (checked at the end) every record is stored once.
    let console_bin = bin("smarttracker-console");
    lan.lose_packets("console", 1);
    let mut converged = false;
    for _ in 0..10 {
        let mut sync = lan.exec("console", &console_bin);
        sync.arg("--data")
            .arg(site.console_data())
            .args(["sync", "--once", "--no-mdns"])
            .env("SMARTTRACKER_LOG", "warn");
        for index in 0..3 {
            sync.args(["--peer", &format!("10.77.0.{}:47100", index + 10)]);
        }
        // A pass that reached nobody exits non-zero: try again.
        let output = sync.output().expect("spawn sync");
        let report = String::from_utf8_lossy(&output.stdout);
        eprintln!("sync with 10 % loss:\n{report}");
        if report.matches("synced ").count() == 3 {
            converged = true;
            break;
        }
    }
    assert!(converged, "syncs over a lossy link never completed");
    lan.lossless("console");

    // 2. Discovery over mDNS only: all three found and synced; the foreign
    //    host is refused and nothing of it is stored.
    let mut sync = lan.exec("console", &console_bin);
    sync.arg("--data")
        .arg(site.console_data())
        .args(["sync", "--once", "--browse-secs", "6"])
        .env("SMARTTRACKER_LOG", "warn");
    let output = run_ok(&mut sync);
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("sync over mDNS:\n{report}");
    assert_eq!(report.matches("synced ").count(), 3, "{report}");
    assert!(report.contains("refused 10.77.0.13:47100"), "{report}");
    assert!(!report.contains("unreachable"), "{report}");

    let ids: Vec<String> = agents
        .iter_mut()
        .map(|agent| agent.ready().agent_id)
        .collect();
    for agent in agents {
        agent.stop();
    }
    foreign.stop();

    let mut export = lan.exec("console", &bin("smarttracker-console"));
    export.arg("--data").arg(site.console_data());
    let exported = exported_usage(&mut export);
    assert_eq!(
        exported.len(),
        3,
        "only this site's agents: {:?}",
        exported.keys()
    );
    for (id, data) in ids.iter().zip(&datas) {
        let recorded = recorded_usage(data);
        let held = exported.get(id).expect("agent synced");
        assert!(held.len() > 100, "five days of history: {}", held.len());
        assert_eq!(
            held[..],
            recorded[..held.len()],
            "agent {id}: exactly what it recorded"
        );
    }
}

/// Enrolment without `--console`: the workstation finds the console's
/// enrolment advert over mDNS (the one whose CA the code pins) on another
/// host of the LAN, enrols, and the console then syncs it.
#[test]
fn a_workstation_finds_the_enrolment_over_mdns_and_is_synced() {
    let lan = Lan::new(&["pc", "console"]);
    let site = Site::create();
    let console_bin = bin("smarttracker-console");
    let mut open = lan.exec("console", &console_bin);
    open.arg("--data")
        .arg(site.console_data())
        .args([
            "enrolment",
            "open",
            "--uses",
            "1",
            "--listen",
            "0.0.0.0:47200",
            "--site",
        ])
        .arg(site.path("site"))
        .stdout(std::process::Stdio::piped());
    let mut open = KillOnDrop(open.spawn().expect("enrolment open"));
    let open = &mut open.0;
    // The rest of its output is not read: a closed standard output must
    // not stop the enrolment.
    let stdout = std::io::BufReader::new(open.stdout.take().expect("stdout"));
    let code = std::io::BufRead::lines(stdout)
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("code: ").map(str::to_owned))
        .expect("a code");
    let data = site.path("pc");
    let enrolled = run_ok(
        lan.exec("pc", &bin("smarttracker-agent"))
            .args([
                "enroll",
                "--code",
                &code,
                "--mdns-secs",
                "30",
                "--name",
                "pc-mdns",
                "--data",
            ])
            .arg(&data),
    );
    assert!(
        String::from_utf8_lossy(&enrolled.stdout).contains("(pc-mdns)"),
        "{}",
        String::from_utf8_lossy(&enrolled.stdout)
    );
    assert!(open.wait().expect("wait").success());

    let mut agent = Agent::start_with(
        lan.exec("pc", &bin("smarttracker-agent")),
        &data,
        "0.0.0.0:47100",
        &["--demo-history-days", "1"],
    );
    agent.wait_live();
    let synced = run_ok(
        lan.exec("console", &console_bin)
            .arg("--data")
            .arg(site.console_data())
            .args(["sync", "--once", "--no-mdns", "--peer", "10.77.0.10:47100"]),
    );
    let report = String::from_utf8_lossy(&synced.stdout);
    assert!(report.contains("(pc-mdns"), "{report}");
    agent.stop();
}

/// A child process killed if the test ends early.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
