//! Finding agents: mDNS browsing of `_smarttracker._udp.local.` plus the
//! static peers of the console's settings. An advert is only an address;
//! identity comes later, from the certificate and the inventory's pin.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent};
use uuid::Uuid;

use crate::store::AgentRecord;

/// DNS-SD service type every agent advertises.
pub const SERVICE_TYPE: &str = "_smarttracker._udp.local.";

/// Somewhere an agent may answer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    pub addr: SocketAddr,
    /// The id the advert claims; a hint for display, never trusted.
    pub claimed_agent: Option<Uuid>,
    pub source: CandidateSource,
}

/// Where a candidate address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CandidateSource {
    Static,
    Mdns,
    /// Last address an inventoried agent answered on.
    Remembered,
}

/// mDNS could not be used (no multicast, no interface).
#[derive(Debug, thiserror::Error)]
#[error("mDNS browsing unavailable ({0}); add agents as static peers (--peer HOST:PORT)")]
pub struct DiscoveryError(#[from] mdns_sd::Error);

/// Browses for `duration` and returns every address advertised, sorted.
/// Blocking: run it on a blocking thread.
pub fn browse(duration: Duration) -> Result<Vec<Candidate>, DiscoveryError> {
    let daemon = ServiceDaemon::new()?;
    let events = daemon.browse(SERVICE_TYPE)?;
    let deadline = Instant::now() + duration;
    let mut found = BTreeSet::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(ServiceEvent::ServiceResolved(service)) => {
                let claimed_agent = service
                    .get_property_val_str("id")
                    .and_then(|id| Uuid::parse_str(id).ok());
                // Link-local IPv6 needs the interface scope to be usable;
                // agents on a LAN also advertise a routable address.
                let usable = service
                    .get_addresses()
                    .iter()
                    .filter(|ip| match ip.to_ip_addr() {
                        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
                        IpAddr::V4(_) => true,
                    });
                for ip in usable {
                    found.insert(Candidate {
                        addr: SocketAddr::new(ip.to_ip_addr(), service.get_port()),
                        claimed_agent,
                        source: CandidateSource::Mdns,
                    });
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = daemon.stop_browse(SERVICE_TYPE);
    let _ = daemon.shutdown();
    Ok(found.into_iter().collect())
}

/// [`browse`] through [`crate::blocking`]; the problem in words.
pub async fn browse_off_thread(duration: Duration) -> Result<Vec<Candidate>, String> {
    crate::blocking::blocking(
        move || browse(duration).map_err(|error| error.to_string()),
        |join_error| format!("mDNS browsing failed: {join_error}"),
    )
    .await
}

/// The candidates a console knows without browsing: static peers (no
/// claim), then each inventoried agent's remembered addresses (claiming
/// that agent). Unparsable remembered addresses are skipped.
pub fn known_candidates(peers: &[SocketAddr], agents: &[AgentRecord]) -> Vec<Candidate> {
    let statics = peers.iter().map(|addr| Candidate {
        addr: *addr,
        claimed_agent: None,
        source: CandidateSource::Static,
    });
    let remembered = agents.iter().flat_map(|agent| {
        agent
            .addresses
            .iter()
            .filter_map(|addr| addr.parse::<SocketAddr>().ok())
            .map(|addr| Candidate {
                addr,
                claimed_agent: Some(agent.agent),
                source: CandidateSource::Remembered,
            })
    });
    statics.chain(remembered).collect()
}

/// Merges candidates from every source: one per address (static first,
/// keeping any claim). Addresses that claim the same agent all stay: an
/// advert is not trusted to name an agent, so a forged advert cannot
/// hide the real one; sync tries them in turn until the agent's
/// certificate answers (see `sync::Syncer::sync_all`).
pub fn merge(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.sort_by_key(|candidate| (candidate.addr, candidate.source));
    candidates.dedup_by(|later, earlier| {
        if later.addr == earlier.addr {
            earlier.claimed_agent = earlier.claimed_agent.or(later.claimed_agent);
            true
        } else {
            false
        }
    });
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_every_address_an_advert_claims() {
        let id = Uuid::from_u128(9);
        let advert = |addr: &str| Candidate {
            addr: addr.parse().expect("addr"),
            claimed_agent: Some(id),
            source: CandidateSource::Mdns,
        };
        // A forged advert at a lower address does not hide the real one.
        let merged = merge(vec![
            advert("[2001:db8::7]:47100"),
            advert("10.0.0.9:47100"),
            advert("10.0.0.2:47100"),
        ]);
        assert_eq!(
            merged,
            vec![
                advert("10.0.0.2:47100"),
                advert("10.0.0.9:47100"),
                advert("[2001:db8::7]:47100")
            ]
        );
    }

    #[test]
    fn merge_keeps_one_candidate_per_address() {
        let addr: SocketAddr = "10.0.0.7:47100".parse().expect("addr");
        let id = Uuid::from_u128(7);
        let merged = merge(vec![
            Candidate {
                addr,
                claimed_agent: Some(id),
                source: CandidateSource::Mdns,
            },
            Candidate {
                addr,
                claimed_agent: None,
                source: CandidateSource::Static,
            },
        ]);
        assert_eq!(
            merged,
            vec![Candidate {
                addr,
                claimed_agent: Some(id),
                source: CandidateSource::Static
            }]
        );
    }
}
