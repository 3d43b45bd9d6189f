//! Live-view sessions and the notice to the employee while one runs.
//!
//! [`LiveSessions`] is the pure core: sessions, their leases, frame pacing
//! and the adaptive interval, with time passed in. The server drives it;
//! [`run_desktop_notice`] turns the list of watchers into a desktop
//! notification, and the status snapshot shows the same list.

use std::collections::{BTreeMap, HashMap};

use protocol::{CaptureSpec, LiveLease, LiveStart, UnixMillis};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// A session ends this long after the last request naming it.
pub const DEFAULT_LEASE_SECS: u32 = 15;
/// Live views open at once on one workstation.
pub const MAX_SESSIONS: usize = 8;
/// Fastest frame pace the agent keeps, whatever the console asks.
pub const MIN_INTERVAL_MS: u32 = 250;
/// Slowest pace: a frame request is answered well within a console's
/// request timeout.
pub const MAX_INTERVAL_MS: u32 = 10_000;
/// Capturing may take at most one tenth of the interval: a costly capture
/// slows the pace instead of loading the workstation.
const COST_FACTOR: u64 = 10;

/// One console watching the screen, as the employee is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveWatcher {
    pub session_id: u64,
    pub console_id: String,
    pub console_name: String,
    pub since_ms: UnixMillis,
    pub interval_ms: u32,
}

impl LiveWatcher {
    /// The console's name from its hello, else its id.
    pub fn display_name(&self) -> &str {
        if self.console_name.is_empty() {
            &self.console_id
        } else {
            &self.console_name
        }
    }
}

/// Why a live-view request cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    #[error("{MAX_SESSIONS} live views are already open on this workstation; stop one first")]
    TooMany,
    #[error("live-view session {0} does not exist or has lapsed; start a new one")]
    NotFound(u64),
}

/// What the server needs to take a session's next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePlan {
    pub spec: CaptureSpec,
    /// Pixel hash of the last frame sent; an equal capture is not sent.
    pub previous_hash: Option<u64>,
    /// How long to wait before capturing, to keep the pace.
    pub wait_ms: u64,
}

/// A session that ended, for the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub watcher: LiveWatcher,
    pub frames_sent: u64,
    /// True when it lapsed (no renewal), false when stopped.
    pub lapsed: bool,
}

#[derive(Debug)]
struct Session {
    watcher: LiveWatcher,
    spec: CaptureSpec,
    requested_interval_ms: u32,
    renewed_steady_ms: u64,
    last_frame_steady_ms: Option<u64>,
    last_hash: Option<u64>,
    frames_sent: u64,
}

/// Every open live-view session of this agent.
#[derive(Debug)]
pub struct LiveSessions {
    lease_secs: u32,
    sessions: BTreeMap<u64, Session>,
}

/// Who asks, as the certificate and hello named them.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub console_id: &'a str,
    pub console_name: &'a str,
}

impl LiveSessions {
    pub fn new(lease_secs: u32) -> Self {
        LiveSessions {
            lease_secs: lease_secs.max(1),
            sessions: BTreeMap::new(),
        }
    }

    /// Opens a session under `session_id` (random, chosen by the caller).
    pub fn start(
        &mut self,
        session_id: u64,
        asker: Asker<'_>,
        start: &LiveStart,
        wall_ms: UnixMillis,
        steady_ms: u64,
    ) -> Result<LiveLease, LiveError> {
        if self.sessions.len() >= MAX_SESSIONS {
            return Err(LiveError::TooMany);
        }
        let interval_ms = start.interval_ms.clamp(MIN_INTERVAL_MS, MAX_INTERVAL_MS);
        self.sessions.insert(
            session_id,
            Session {
                watcher: LiveWatcher {
                    session_id,
                    console_id: asker.console_id.to_owned(),
                    console_name: asker.console_name.to_owned(),
                    since_ms: wall_ms,
                    interval_ms,
                },
                spec: start.spec,
                requested_interval_ms: interval_ms,
                renewed_steady_ms: steady_ms,
                last_frame_steady_ms: None,
                last_hash: None,
                frames_sent: 0,
            },
        );
        Ok(LiveLease {
            session_id,
            interval_ms,
            lease_secs: self.lease_secs,
        })
    }

    /// Renews the session and says when and how to capture its next frame.
    /// Only the console that opened a session may use it.
    pub fn next_frame(
        &mut self,
        session_id: u64,
        console_id: &str,
        steady_ms: u64,
    ) -> Result<FramePlan, LiveError> {
        let session = self.owned_mut(session_id, console_id)?;
        session.renewed_steady_ms = steady_ms;
        let due_ms = session.last_frame_steady_ms.map_or(steady_ms, |last| {
            last + u64::from(session.watcher.interval_ms)
        });
        Ok(FramePlan {
            spec: session.spec,
            previous_hash: session.last_hash,
            wait_ms: due_ms.saturating_sub(steady_ms),
        })
    }

    /// Records a capture at `steady_ms` that cost `cost_ms`; `new_hash` is
    /// set when a changed frame was sent. Returns the adapted interval.
    pub fn frame_taken(
        &mut self,
        session_id: u64,
        steady_ms: u64,
        new_hash: Option<u64>,
        cost_ms: u64,
    ) -> Option<u32> {
        let session = self.sessions.get_mut(&session_id)?;
        session.renewed_steady_ms = session.renewed_steady_ms.max(steady_ms);
        session.last_frame_steady_ms = Some(steady_ms);
        if let Some(hash) = new_hash {
            session.last_hash = Some(hash);
            session.frames_sent += 1;
        }
        let paced_ms = u32::try_from(cost_ms.saturating_mul(COST_FACTOR)).unwrap_or(u32::MAX);
        session.watcher.interval_ms = paced_ms
            .max(session.requested_interval_ms)
            .clamp(MIN_INTERVAL_MS, MAX_INTERVAL_MS);
        Some(session.watcher.interval_ms)
    }

    /// Ends a session at its console's request.
    pub fn stop(&mut self, session_id: u64, console_id: &str) -> Result<Ended, LiveError> {
        self.owned_mut(session_id, console_id)?;
        let session = self
            .sessions
            .remove(&session_id)
            .ok_or(LiveError::NotFound(session_id))?;
        Ok(ended(session, false))
    }

    /// Ends every session not renewed within the lease.
    pub fn expire(&mut self, steady_ms: u64) -> Vec<Ended> {
        let lease_ms = u64::from(self.lease_secs) * 1000;
        let lapsed: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, session)| steady_ms.saturating_sub(session.renewed_steady_ms) > lease_ms)
            .map(|(id, _)| *id)
            .collect();
        lapsed
            .into_iter()
            .filter_map(|id| self.sessions.remove(&id))
            .map(|session| ended(session, true))
            .collect()
    }

    /// Who is watching, oldest session first.
    pub fn watchers(&self) -> Vec<LiveWatcher> {
        let mut watchers: Vec<LiveWatcher> = self
            .sessions
            .values()
            .map(|session| session.watcher.clone())
            .collect();
        watchers.sort_by_key(|watcher| (watcher.since_ms, watcher.session_id));
        watchers
    }

    fn owned_mut(&mut self, session_id: u64, console_id: &str) -> Result<&mut Session, LiveError> {
        self.sessions
            .get_mut(&session_id)
            .filter(|session| session.watcher.console_id == console_id)
            .ok_or(LiveError::NotFound(session_id))
    }
}

fn ended(session: Session, lapsed: bool) -> Ended {
    Ended {
        watcher: session.watcher,
        frames_sent: session.frames_sent,
        lapsed,
    }
}

/// The notice text, French first (the users are francophone), then
/// English: who watches and since when (UTC).
pub fn notice_text(watchers: &[LiveWatcher]) -> (String, String) {
    let summary = "Affichage en direct de votre écran — Live view of your screen".to_owned();
    let names: Vec<String> = watchers
        .iter()
        .map(|watcher| {
            let name = watcher.display_name();
            format!("{name} ({})", hh_mm_utc(watcher.since_ms))
        })
        .collect();
    let body = format!(
        "Votre écran est visible par : {0}. Cela s'arrête dès que la console se ferme.\nYour screen is being viewed by: {0}. It stops when the console closes.",
        names.join(", ")
    );
    (summary, body)
}

fn hh_mm_utc(at_ms: UnixMillis) -> String {
    let minutes = at_ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02} UTC", minutes / 60, minutes % 60)
}

const NOTIFY_DEST: &str = "org.freedesktop.Notifications";
const NOTIFY_PATH: &str = "/org/freedesktop/Notifications";

/// Shows a desktop notification while anyone watches and closes it when
/// nobody does, through the session bus's notification service. Without
/// a session bus the notice is only in `smarttracker-agent status`.
pub async fn run_desktop_notice(mut watchers: watch::Receiver<Vec<LiveWatcher>>) {
    let connection = match zbus::Connection::session().await {
        Ok(connection) => connection,
        Err(bus_error) => {
            tracing::info!(%bus_error, "no session bus: the live-view notice is shown by `smarttracker-agent status` only");
            return;
        }
    };
    let mut shown_id: Option<u32> = None;
    loop {
        let current = watchers.borrow_and_update().clone();
        shown_id = if current.is_empty() {
            if let Some(id) = shown_id {
                close_notification(&connection, id).await;
            }
            None
        } else {
            show_notification(&connection, shown_id, &current).await
        };
        if watchers.changed().await.is_err() {
            break;
        }
    }
    if let Some(id) = shown_id {
        close_notification(&connection, id).await;
    }
}

async fn show_notification(
    connection: &zbus::Connection,
    replaces_id: Option<u32>,
    watchers: &[LiveWatcher],
) -> Option<u32> {
    let (summary, body) = notice_text(watchers);
    let mut hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
    // Critical: stays on screen until closed; resident: not hidden in a
    // history the employee never opens.
    hints.insert("urgency", zbus::zvariant::Value::U8(2));
    hints.insert("resident", zbus::zvariant::Value::Bool(true));
    let reply = connection
        .call_method(
            Some(NOTIFY_DEST),
            NOTIFY_PATH,
            Some(NOTIFY_DEST),
            "Notify",
            &(
                "SmartTracker",
                replaces_id.unwrap_or(0),
                "camera-web",
                summary.as_str(),
                body.as_str(),
                Vec::<&str>::new(),
                hints,
                0_i32,
            ),
        )
        .await;
    match reply.and_then(|message| message.body().deserialize::<u32>()) {
        Ok(id) => Some(id),
        Err(notify_error) => {
            tracing::warn!(%notify_error, "cannot show the live-view notification; `status` still shows it");
            replaces_id
        }
    }
}

async fn close_notification(connection: &zbus::Connection, id: u32) {
    if let Err(notify_error) = connection
        .call_method(
            Some(NOTIFY_DEST),
            NOTIFY_PATH,
            Some(NOTIFY_DEST),
            "CloseNotification",
            &(id,),
        )
        .await
    {
        tracing::warn!(%notify_error, "cannot close the live-view notification");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: CaptureSpec = CaptureSpec {
        monitor: None,
        max_width: 320,
        max_height: 180,
        quality: 60,
    };
    const ADMIN: Asker<'static> = Asker {
        console_id: "c-1",
        console_name: "RH",
    };

    fn start(sessions: &mut LiveSessions, id: u64, interval_ms: u32, steady_ms: u64) -> LiveLease {
        sessions
            .start(
                id,
                ADMIN,
                &LiveStart {
                    spec: SPEC,
                    interval_ms,
                },
                1_700_000_000_000,
                steady_ms,
            )
            .expect("starts")
    }

    #[test]
    fn pacing_skips_and_adapts_to_capture_cost() {
        let mut sessions = LiveSessions::new(15);
        let lease = start(&mut sessions, 7, 1_000, 0);
        assert_eq!(lease.interval_ms, 1_000);
        assert_eq!(lease.lease_secs, 15);
        let first = sessions.next_frame(7, "c-1", 0).expect("open");
        assert_eq!(first.wait_ms, 0, "the first frame is immediate");
        assert_eq!(first.previous_hash, None);
        assert_eq!(sessions.frame_taken(7, 10, Some(42), 5), Some(1_000));
        let second = sessions.next_frame(7, "c-1", 300).expect("open");
        assert_eq!(second.wait_ms, 710, "paced one interval after the capture");
        assert_eq!(second.previous_hash, Some(42));
        // An unchanged frame keeps the hash; a costly capture slows down.
        assert_eq!(sessions.frame_taken(7, 1_010, None, 250), Some(2_500));
        assert_eq!(
            sessions.next_frame(7, "c-1", 1_010).expect("open").wait_ms,
            2_500
        );
        assert_eq!(
            sessions.frame_taken(7, 3_510, None, 1),
            Some(1_000),
            "cheap again"
        );
    }

    #[test]
    fn intervals_are_clamped() {
        let mut sessions = LiveSessions::new(15);
        assert_eq!(start(&mut sessions, 1, 10, 0).interval_ms, MIN_INTERVAL_MS);
        assert_eq!(
            start(&mut sessions, 2, 600_000, 0).interval_ms,
            MAX_INTERVAL_MS
        );
        assert_eq!(
            sessions.frame_taken(2, 0, None, 60_000),
            Some(MAX_INTERVAL_MS)
        );
    }

    #[test]
    fn leases_lapse_without_renewal_and_renewal_keeps_them() {
        let mut sessions = LiveSessions::new(15);
        start(&mut sessions, 1, 1_000, 0);
        start(&mut sessions, 2, 1_000, 0);
        sessions.next_frame(2, "c-1", 10_000).expect("renewed");
        assert!(sessions.expire(15_000).is_empty(), "exactly at the lease");
        let ended = sessions.expire(15_001);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].watcher.session_id, 1);
        assert!(ended[0].lapsed);
        assert_eq!(sessions.watchers().len(), 1);
        assert_eq!(sessions.expire(25_001).len(), 1);
        assert!(sessions.watchers().is_empty());
        assert_eq!(
            sessions.next_frame(2, "c-1", 25_002),
            Err(LiveError::NotFound(2))
        );
    }

    #[test]
    fn only_the_opening_console_uses_or_stops_a_session() {
        let mut sessions = LiveSessions::new(15);
        start(&mut sessions, 1, 1_000, 0);
        assert_eq!(
            sessions.next_frame(1, "c-2", 1),
            Err(LiveError::NotFound(1))
        );
        assert_eq!(
            sessions.stop(1, "c-2").map(|_| ()),
            Err(LiveError::NotFound(1))
        );
        let ended = sessions.stop(1, "c-1").expect("own session");
        assert!(!ended.lapsed);
        assert!(sessions.watchers().is_empty());
    }

    #[test]
    fn sessions_are_capped() {
        let mut sessions = LiveSessions::new(15);
        for id in 0..MAX_SESSIONS as u64 {
            start(&mut sessions, id, 1_000, 0);
        }
        let refused = sessions.start(
            99,
            ADMIN,
            &LiveStart {
                spec: SPEC,
                interval_ms: 1_000,
            },
            0,
            0,
        );
        assert_eq!(refused, Err(LiveError::TooMany));
    }

    #[test]
    fn notice_names_watchers_in_french_and_english() {
        let mut sessions = LiveSessions::new(15);
        start(&mut sessions, 1, 1_000, 0);
        let (summary, body) = notice_text(&sessions.watchers());
        assert!(summary.contains("Affichage en direct"), "{summary}");
        assert!(body.contains("RH (22:13 UTC)"), "{body}");
        assert!(body.contains("Your screen is being viewed by"), "{body}");
    }
}
