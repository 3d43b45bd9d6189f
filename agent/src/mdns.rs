//! mDNS advertisement of the agent's QUIC service. An advert only tells a
//! console where to knock; identity comes from the certificate. TXT records
//! are minimal: agent id, protocol version, enrolment state — no user names.

use mdns_sd::{ServiceDaemon, ServiceInfo};
use uuid::Uuid;

/// DNS-SD service type every agent advertises.
pub const SERVICE_TYPE: &str = "_smarttracker._udp.local.";

/// A running advertisement; withdrawn on drop.
pub struct Advert {
    daemon: ServiceDaemon,
    fullname: String,
}

/// Why the agent could not advertise; the agent keeps working without it.
#[derive(Debug, thiserror::Error)]
#[error("mDNS advertisement unavailable ({0}); consoles can still reach this agent through a static peer address")]
pub struct AdvertError(#[from] mdns_sd::Error);

impl Advert {
    /// Advertises `agent_id` on `port`, following address changes.
    pub fn start(agent_id: Uuid, port: u16, enrolled: bool) -> Result<Advert, AdvertError> {
        let daemon = ServiceDaemon::new()?;
        let instance = agent_id.simple().to_string();
        let host = format!("st-{instance}.local.");
        let version = protocol::MAX_VERSION.to_string();
        let state = if enrolled { "enrolled" } else { "new" };
        let id = agent_id.to_string();
        let properties = [
            ("id", id.as_str()),
            ("v", version.as_str()),
            ("state", state),
        ];
        let info = ServiceInfo::new(SERVICE_TYPE, &instance, &host, "", port, &properties[..])?
            .enable_addr_auto();
        let fullname = info.get_fullname().to_owned();
        daemon.register(info)?;
        Ok(Advert { daemon, fullname })
    }
}

impl std::fmt::Debug for Advert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advert")
            .field("fullname", &self.fullname)
            .finish_non_exhaustive()
    }
}

impl Drop for Advert {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}
