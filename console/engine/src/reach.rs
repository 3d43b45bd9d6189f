//! One way to reach an agent on request (live view, screenshots,
//! policies): its candidate addresses in one order (addresses given for
//! this call, the ones it answered on before, the static peers, then, if
//! asked and none of those answered, the mDNS adverts claiming it), tried
//! in turn until a verified session opens with that agent: its
//! certificate, and a hello that agrees (see [`Syncer::open_agent`]). An
//! address or an advert only orders the tries; the certificate decides.

use std::net::SocketAddr;
use std::time::Duration;

use crate::discovery;
use crate::model::AgentId;
use crate::store::AgentRecord;
use crate::sync::{AgentSession, SyncError, Syncer};

/// Where to look for an agent besides the addresses it answered on before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    /// Addresses given for this call (`--peer`): tried first.
    pub given: Vec<SocketAddr>,
    /// The settings' static peers: any agent may answer there.
    pub static_peers: Vec<SocketAddr>,
    /// How long to browse mDNS when no other address answered; `None`:
    /// no mDNS.
    pub mdns_browse: Option<Duration>,
}

/// One address tried, and why no session opened there.
#[derive(Debug)]
pub struct Failure {
    pub addr: SocketAddr,
    pub error: SyncError,
    /// Whether the address was this agent's (given for it, remembered for
    /// it, or an advert claiming it) rather than a static peer any agent
    /// may answer on.
    pub claimed: bool,
}

/// No address answered as the agent.
#[derive(Debug)]
pub struct Unreached {
    /// Every address tried, in order.
    pub failures: Vec<Failure>,
    /// Why mDNS could not be browsed, when it was asked and failed.
    pub mdns_problem: Option<String>,
}

impl Unreached {
    /// Nothing was tried: no address of the agent is known.
    pub fn nothing_tried(&self) -> bool {
        self.failures.is_empty()
    }

    /// Every failure as `ADDR: why`, then the mDNS problem, in order.
    pub fn reasons(&self) -> Vec<String> {
        self.failures
            .iter()
            .map(|failure| format!("{}: {}", failure.addr, failure.error))
            .chain(
                self.mdns_problem
                    .iter()
                    .map(|problem| format!("mDNS: {problem}")),
            )
            .collect()
    }

    /// The failure that says most about the agent: the last one, except
    /// that another agent answering at a static peer says nothing about
    /// this one; `None` when nothing was tried.
    pub fn into_error(mut self) -> Option<SyncError> {
        let telling = self.failures.iter().rposition(|failure| {
            failure.claimed || !matches!(failure.error, SyncError::WrongAgent { .. })
        });
        let at = telling.or_else(|| self.failures.len().checked_sub(1))?;
        Some(self.failures.swap_remove(at).error)
    }
}

/// The addresses of `record` known without browsing, in the order they
/// are tried: `given`, then the remembered ones, then the static peers;
/// each once. `true`: the address is the agent's own (given or
/// remembered).
pub fn known_addresses(record: &AgentRecord, addresses: &Addresses) -> Vec<(SocketAddr, bool)> {
    let remembered = record
        .addresses
        .iter()
        .filter_map(|addr| addr.parse::<SocketAddr>().ok());
    let mut known: Vec<(SocketAddr, bool)> = Vec::new();
    let ordered = addresses
        .given
        .iter()
        .copied()
        .chain(remembered)
        .map(|addr| (addr, true))
        .chain(addresses.static_peers.iter().map(|addr| (*addr, false)));
    for (addr, claimed) in ordered {
        if !known.iter().any(|(seen, _)| *seen == addr) {
            known.push((addr, claimed));
        }
    }
    known
}

/// Opens a verified session with `record`'s agent at the first of its
/// addresses (see [`known_addresses`], then mDNS adverts claiming it if
/// asked) that answers as that agent; the session and the address, or
/// every failure.
pub async fn open_session(
    syncer: &Syncer,
    record: &AgentRecord,
    addresses: &Addresses,
) -> Result<(AgentSession, SocketAddr), Unreached> {
    let agent = record.agent;
    let known = known_addresses(record, addresses);
    let mut failures = Vec::new();
    if let Some(opened) = first_answering(syncer, agent, &known, &mut failures).await {
        return Ok(opened);
    }
    let mut mdns_problem = None;
    if let Some(browse) = addresses.mdns_browse {
        match discovery::browse_off_thread(browse).await {
            Ok(found) => {
                let advertised: Vec<(SocketAddr, bool)> = found
                    .into_iter()
                    .filter(|candidate| candidate.claimed_agent == Some(agent))
                    .map(|candidate| (candidate.addr, true))
                    .filter(|(addr, _)| !known.iter().any(|(seen, _)| seen == addr))
                    .collect();
                if let Some(opened) =
                    first_answering(syncer, agent, &advertised, &mut failures).await
                {
                    return Ok(opened);
                }
            }
            Err(problem) => mdns_problem = Some(problem),
        }
    }
    Err(Unreached {
        failures,
        mdns_problem,
    })
}

async fn first_answering(
    syncer: &Syncer,
    agent: AgentId,
    addrs: &[(SocketAddr, bool)],
    failures: &mut Vec<Failure>,
) -> Option<(AgentSession, SocketAddr)> {
    for &(addr, claimed) in addrs {
        match syncer.open_agent(agent, addr).await {
            Ok(session) => return Some((session, addr)),
            Err(error) => failures.push(Failure {
                addr,
                error,
                claimed,
            }),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(addresses: &[&str]) -> AgentRecord {
        AgentRecord {
            agent: AgentId::from_u128(1),
            name: "a".to_owned(),
            spki_sha256: [0; 32],
            added_ms: 0,
            addresses: addresses.iter().map(|addr| (*addr).to_owned()).collect(),
            last_seen_ms: None,
            last_error: None,
            hostname: None,
            demo: false,
            time_zone: None,
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("addr")
    }

    #[test]
    fn given_then_remembered_then_static_each_once() {
        let record = record(&["10.0.0.2:1", "not an address", "10.0.0.1:1"]);
        let addresses = Addresses {
            given: vec![addr("10.0.0.1:1"), addr("10.0.0.9:1")],
            static_peers: vec![addr("10.0.0.3:1"), addr("10.0.0.2:1")],
            mdns_browse: None,
        };
        assert_eq!(
            known_addresses(&record, &addresses),
            vec![
                (addr("10.0.0.1:1"), true),
                (addr("10.0.0.9:1"), true),
                (addr("10.0.0.2:1"), true),
                (addr("10.0.0.3:1"), false),
            ]
        );
    }

    #[test]
    fn another_agent_at_a_static_peer_is_not_the_reason() {
        let failure = |at: &str, error: SyncError, claimed: bool| Failure {
            addr: addr(at),
            error,
            claimed,
        };
        let unreached = Unreached {
            failures: vec![
                failure("10.0.0.1:1", SyncError::Connect("timeout".into()), true),
                failure(
                    "10.0.0.3:1",
                    SyncError::WrongAgent {
                        expected: AgentId::from_u128(1),
                        found: AgentId::from_u128(2),
                    },
                    false,
                ),
            ],
            mdns_problem: Some("no multicast".into()),
        };
        assert_eq!(
            unreached.reasons(),
            vec![
                "10.0.0.1:1: cannot connect: timeout".to_owned(),
                format!(
                    "10.0.0.3:1: agent {} answered where {} was expected",
                    AgentId::from_u128(2),
                    AgentId::from_u128(1)
                ),
                "mDNS: no multicast".to_owned(),
            ]
        );
        assert!(matches!(
            unreached.into_error(),
            Some(SyncError::Connect(reason)) if reason == "timeout"
        ));
        let nothing = Unreached {
            failures: Vec::new(),
            mdns_problem: None,
        };
        assert!(nothing.nothing_tried());
        assert!(nothing.into_error().is_none());
    }
}
