//! Who is online now, who left recently, who is offline: the fleet view and
//! the session tracker's "recently disconnected".

use protocol::UnixMillis;

use super::HOUR_MS;
use crate::model::{AgentId, Presence};

/// An agent that left at most this long ago "left recently".
pub const RECENTLY_MS: i64 = 2 * HOUR_MS;

/// What the console knows about one enrolled agent right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSeen {
    pub agent: AgentId,
    /// Display name (label or host name).
    pub name: String,
    /// Last time the console heard from it; `None` if never.
    pub last_seen_ms: Option<UnixMillis>,
    /// Whether the console holds a live connection to it.
    pub connected: bool,
    /// Presence of its last activity span, if any.
    pub last_activity: Option<Presence>,
}

/// One agent in a presence bucket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeenAgent {
    pub agent: AgentId,
    pub name: String,
    pub last_seen_ms: Option<UnixMillis>,
    /// `now_ms - last_seen_ms`, never negative; `None` if never seen.
    pub ago_ms: Option<i64>,
    /// Active, idle or locked, as last reported (shown as such).
    pub last_activity: Option<Presence>,
}

/// The fleet split into three buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FleetPresence {
    /// Connected now; by name, then id.
    pub online: Vec<SeenAgent>,
    /// Not connected, seen within [`RECENTLY_MS`]; most recent first.
    pub left_recently: Vec<SeenAgent>,
    /// The rest; most recently seen first, never seen last.
    pub offline: Vec<SeenAgent>,
}

/// Sorts agents into online (connected), left recently (seen within
/// [`RECENTLY_MS`] of `now_ms`, bound included) and offline.
pub fn presence_now(agents: &[AgentSeen], now_ms: UnixMillis) -> FleetPresence {
    let mut fleet = FleetPresence::default();
    for seen in agents {
        let ago_ms = seen.last_seen_ms.map(|at_ms| (now_ms - at_ms).max(0));
        let entry = SeenAgent {
            agent: seen.agent,
            name: seen.name.clone(),
            last_seen_ms: seen.last_seen_ms,
            ago_ms,
            last_activity: seen.last_activity,
        };
        if seen.connected {
            fleet.online.push(entry);
        } else if ago_ms.is_some_and(|ago_ms| ago_ms <= RECENTLY_MS) {
            fleet.left_recently.push(entry);
        } else {
            fleet.offline.push(entry);
        }
    }
    fleet
        .online
        .sort_by(|a, b| (&a.name, a.agent).cmp(&(&b.name, b.agent)));
    for bucket in [&mut fleet.left_recently, &mut fleet.offline] {
        // Option orders None first: reversed, never-seen agents come last.
        bucket.sort_by(|a, b| {
            b.last_seen_ms
                .cmp(&a.last_seen_ms)
                .then_with(|| (&a.name, a.agent).cmp(&(&b.name, b.agent)))
        });
    }
    fleet
}
