//! The recording loop: polls the sensors on their schedules, normalises and
//! redacts, feeds the tracker and appends its records to the store.
//!
//! `Recorder::step` takes the time as an argument, so the same code records
//! live (one step a second) and backfills simulated demo history.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use protocol::{
    cap_text, Policy, Presence, Record, SessionEventKind, StreamKind, UnixMillis, MAX_APP_BYTES,
    MAX_TITLE_BYTES, MAX_USER_BYTES,
};

use crate::access::Redactor;
use crate::apps::AppNames;
use crate::demo::DemoWorkstation;
use crate::health::{score, HealthSensor, Reading, SysinfoHealth, Thresholds};
use crate::sensors::session::{SessionSensor, UserSession, UtmpSessions};
use crate::sensors::x11::X11Sensors;
use crate::sensors::{IdleReading, IdleSensor, SensorError, WindowSample, WindowSensor};
use crate::store::{Store, StoreError};
use crate::tracker::{AppSample, Now, Tracker, TrackerConfig};

/// How often the front window is sampled.
pub const WINDOW_POLL_MS: u64 = 1_000;
/// How often idle and lock state are sampled while the user is active.
pub const IDLE_POLL_MS: u64 = 5_000;
/// How often while idle or locked, so the return of input is dated to
/// within a second.
pub const AWAY_IDLE_POLL_MS: u64 = 1_000;
/// How often login sessions are listed.
pub const SESSION_POLL_MS: u64 = 10_000;

/// Where samples come from: the real desktop or the labelled demo.
pub trait Source: Send {
    /// Simulated sources follow this time; real ones ignore it.
    fn set_time(&mut self, _now_ms: UnixMillis) {}
    /// Whether window titles may be read at all (policy).
    fn set_read_titles(&mut self, _enabled: bool) {}
    fn window(&mut self) -> Result<Option<WindowSample>, SensorError>;
    fn idle(&mut self) -> Result<IdleReading, SensorError>;
    fn health(&mut self, at_ms: UnixMillis) -> Reading;
    /// User sessions open now (login records).
    fn sessions(&mut self) -> Result<Vec<UserSession>, SensorError>;
    /// True for simulated data.
    fn is_demo(&self) -> bool;
}

/// The real workstation: X11 for windows and idle, sysinfo for health.
#[derive(Debug)]
pub struct DesktopSource {
    pub x11: X11Sensors,
    pub health: SysinfoHealth,
    pub sessions: UtmpSessions,
}

impl DesktopSource {
    /// After the X server went away (logout, restart), connects again.
    fn reconnect_after<T>(&mut self, result: Result<T, SensorError>) -> Result<T, SensorError> {
        if let Err(SensorError::Disconnected { .. }) = &result {
            let read_titles = self.x11.read_titles();
            let mut x11 = X11Sensors::connect(Some(self.x11.display()))?;
            x11.set_read_titles(read_titles);
            self.x11 = x11;
        }
        result
    }
}

impl Source for DesktopSource {
    fn set_read_titles(&mut self, enabled: bool) {
        self.x11.set_read_titles(enabled);
    }
    fn window(&mut self) -> Result<Option<WindowSample>, SensorError> {
        let result = self.x11.active_window();
        self.reconnect_after(result)
    }
    fn idle(&mut self) -> Result<IdleReading, SensorError> {
        let result = self.x11.idle();
        self.reconnect_after(result)
    }
    fn health(&mut self, at_ms: UnixMillis) -> Reading {
        self.health.read(at_ms)
    }
    fn sessions(&mut self) -> Result<Vec<UserSession>, SensorError> {
        self.sessions.sessions()
    }
    fn is_demo(&self) -> bool {
        false
    }
}

impl Source for DemoWorkstation {
    fn set_time(&mut self, now_ms: UnixMillis) {
        DemoWorkstation::set_time(self, now_ms);
    }
    fn window(&mut self) -> Result<Option<WindowSample>, SensorError> {
        self.active_window()
    }
    fn idle(&mut self) -> Result<IdleReading, SensorError> {
        IdleSensor::idle(self)
    }
    fn health(&mut self, at_ms: UnixMillis) -> Reading {
        self.read(at_ms)
    }
    fn sessions(&mut self) -> Result<Vec<UserSession>, SensorError> {
        SessionSensor::sessions(self)
    }
    fn is_demo(&self) -> bool {
        true
    }
}

/// Tracker configuration that follows from a policy.
pub fn tracker_config(policy: &Policy) -> TrackerConfig {
    TrackerConfig {
        idle_threshold_ms: u64::from(policy.idle_threshold_secs) * 1000,
        ..TrackerConfig::default()
    }
}

/// Which stream a record belongs to.
pub fn stream_of(record: &Record) -> StreamKind {
    match record {
        Record::Usage(_) => StreamKind::Usage,
        Record::Activity(_) | Record::Session(_) => StreamKind::Sessions,
        Record::Health(_) => StreamKind::Health,
        Record::Frame(_) => StreamKind::Frames,
        Record::Gap(gap) => gap.stream,
    }
}

/// Sensor schedules, tracker and policy of one recording agent.
#[derive(Debug)]
pub struct Recorder {
    tracker: Tracker,
    /// The user whose sessions decide presence.
    user: String,
    apps: AppNames,
    redactor: Redactor,
    policy: Policy,
    thresholds: Thresholds,
    store: Arc<Store>,
    next_window_ms: u64,
    next_idle_ms: u64,
    next_health_ms: u64,
    next_sessions_ms: u64,
    /// Sessions seen at the last poll (user, line); `None` before the
    /// first poll, whose sessions were opened before the agent started.
    open_sessions: Option<BTreeSet<(String, String)>>,
    /// Last sensor error, shown by `status`; cleared by a good read.
    pub last_sensor_error: Option<String>,
}

impl Recorder {
    pub fn new(store: Arc<Store>, policy: Policy, user: &str, now: Now) -> Self {
        let user = cap_text(user, MAX_USER_BYTES).into_owned();
        Recorder {
            tracker: Tracker::new(tracker_config(&policy), &user, now),
            user,
            apps: AppNames::builtin(),
            redactor: Redactor::new(&policy),
            policy,
            thresholds: Thresholds::default(),
            store,
            next_window_ms: now.steady_ms,
            next_idle_ms: now.steady_ms,
            next_health_ms: now.steady_ms,
            next_sessions_ms: now.steady_ms,
            open_sessions: None,
            last_sensor_error: None,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Applies a new (validated) policy from the next sample on.
    pub fn apply_policy(&mut self, policy: Policy) {
        self.tracker.set_config(tracker_config(&policy));
        self.redactor = Redactor::new(&policy);
        self.policy = policy;
    }

    /// Polls whatever is due at `now` and appends closed records to the
    /// store's buffer (durable at the next flush).
    pub fn step(&mut self, now: Now, source: &mut dyn Source) {
        source.set_time(now.wall_ms);
        source.set_read_titles(self.policy.collect_titles);
        if now.steady_ms >= self.next_idle_ms {
            match source.idle() {
                Ok(reading) => {
                    self.tracker
                        .handle_idle(now, reading.idle_ms, reading.locked);
                    self.last_sensor_error = None;
                }
                Err(sensor_error) => self.sensor_failed(&sensor_error),
            }
            let interval_ms = match self.tracker.presence() {
                Presence::Active => IDLE_POLL_MS,
                Presence::Idle | Presence::Locked => AWAY_IDLE_POLL_MS,
            };
            self.next_idle_ms = now.steady_ms + interval_ms;
        }
        if now.steady_ms >= self.next_window_ms {
            self.next_window_ms = now.steady_ms + WINDOW_POLL_MS;
            match source.window() {
                Ok(window) => {
                    let sample = window.and_then(|window| self.app_sample(&window));
                    self.tracker.handle_window(now, sample);
                }
                Err(sensor_error) => self.sensor_failed(&sensor_error),
            }
        }
        if now.steady_ms >= self.next_health_ms {
            self.next_health_ms =
                now.steady_ms + u64::from(self.policy.health_interval_secs) * 1000;
            let sample = score(source.health(now.wall_ms), &self.thresholds);
            self.store
                .append(StreamKind::Health, Record::Health(sample), now.wall_ms);
        }
        if now.steady_ms >= self.next_sessions_ms {
            self.next_sessions_ms = now.steady_ms + SESSION_POLL_MS;
            match source.sessions() {
                Ok(sessions) => self.handle_sessions(now, sessions),
                Err(sensor_error) => self.sensor_failed(&sensor_error),
            }
        }
        self.tracker.handle_tick(now);
        self.drain();
    }

    /// Logins and logouts since the last poll; sessions open before the
    /// agent started are a baseline, not logins.
    fn handle_sessions(&mut self, now: Now, sessions: Vec<UserSession>) {
        let current: BTreeSet<(String, String)> = sessions
            .into_iter()
            .map(|session| {
                let user = cap_text(&session.user, MAX_USER_BYTES).into_owned();
                (user, session.line)
            })
            .collect();
        if let Some(previous) = &self.open_sessions {
            for (user, _) in current.difference(previous) {
                self.tracker
                    .handle_session(now, SessionEventKind::Login, user);
            }
            for (user, _) in previous.difference(&current) {
                self.tracker
                    .handle_session(now, SessionEventKind::Logout, user);
            }
            // Presence follows the tracked user's own sessions, but only once
            // one was seen: desktops that write no login records are never
            // taken for signed out.
            let had_session = previous.iter().any(|(user, _)| *user == self.user);
            let has_session = current.iter().any(|(user, _)| *user == self.user);
            if had_session != has_session {
                self.tracker.handle_signed_in(now, has_session);
            }
            // The tracked user left the seat and another signed in on a
            // local display (a shared PC): presence follows the new one.
            if !has_session {
                let next = current
                    .iter()
                    .find(|(user, line)| line.starts_with(':') && *user != self.user);
                if let Some((next, _)) = next {
                    self.user.clone_from(next);
                    self.tracker.switch_user(now, next);
                    self.tracker.handle_signed_in(now, true);
                }
            }
        }
        self.open_sessions = Some(current);
    }

    /// Closes open spans and records the agent stop.
    pub fn finish(&mut self, now: Now) {
        self.tracker.shutdown(now);
        self.drain();
    }

    /// What is in front, redacted and capped to the protocol's text
    /// limits before anything is stored.
    fn app_sample(&self, window: &WindowSample) -> Option<AppSample> {
        let raw_app = cap_text(window.raw_app()?, MAX_APP_BYTES).into_owned();
        let app = cap_text(&self.apps.normalise(window)?, MAX_APP_BYTES).into_owned();
        let title = if self.policy.collect_titles {
            window
                .title
                .as_deref()
                .map(|title| cap_text(&self.redactor.apply(title), MAX_TITLE_BYTES).into_owned())
        } else {
            None
        };
        Some(AppSample {
            app,
            raw_app,
            title,
        })
    }

    fn sensor_failed(&mut self, sensor_error: &SensorError) {
        let message = sensor_error.to_string();
        if self.last_sensor_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(%sensor_error, "sensor read failed");
        }
        self.last_sensor_error = Some(message);
    }

    fn drain(&mut self) {
        while let Some(record) = self.tracker.poll_record() {
            let at_ms = record_time_ms(&record);
            self.store.append(stream_of(&record), record, at_ms);
        }
    }
}

fn record_time_ms(record: &Record) -> UnixMillis {
    match record {
        Record::Usage(span) => span.end_ms,
        Record::Activity(span) => span.end_ms,
        Record::Session(event) => event.at_ms,
        Record::Health(sample) => sample.at_ms,
        Record::Frame(frame) => frame.at_ms,
        Record::Gap(_) => 0,
    }
}

/// Records `days` of simulated history ending at `end_ms` into the store,
/// stepping simulated time by 10 s, and calls `after_day` after each
/// simulated day (to write what was recorded and to say whether to go on).
/// On [`ControlFlow::Break`] it stops early: open spans are closed at the
/// simulated time reached. Whatever happens, what was recorded is held in
/// the store for the caller's next flush.
pub fn record_demo_history(
    store: &Arc<Store>,
    demo: &mut DemoWorkstation,
    policy: &Policy,
    user: &str,
    days: u32,
    end_ms: UnixMillis,
    after_day: &mut dyn FnMut() -> ControlFlow<()>,
) -> ControlFlow<()> {
    const STEP_MS: i64 = 10_000;
    const DAY_MS: i64 = 86_400_000;
    let start_ms = end_ms - i64::from(days) * DAY_MS;
    let at = |wall_ms: i64| Now {
        wall_ms,
        steady_ms: u64::try_from(wall_ms - start_ms).unwrap_or(0),
    };
    let mut recorder = Recorder::new(store.clone(), policy.clone(), user, at(start_ms));
    let mut wall_ms = start_ms;
    let mut next_day_ms = start_ms + DAY_MS;
    while wall_ms < end_ms {
        recorder.step(at(wall_ms), demo);
        if wall_ms >= next_day_ms {
            if after_day().is_break() {
                recorder.finish(at(wall_ms));
                return ControlFlow::Break(());
            }
            next_day_ms += DAY_MS;
        }
        wall_ms += STEP_MS;
    }
    recorder.finish(at(end_ms));
    ControlFlow::Continue(())
}

/// [`record_demo_history`] flushing after each simulated day and at the
/// end, telling `on_flush` what became durable; stops at the first failed
/// flush.
pub fn backfill_demo(
    store: &Arc<Store>,
    demo: &mut DemoWorkstation,
    policy: &Policy,
    user: &str,
    days: u32,
    end_ms: UnixMillis,
    on_flush: &mut dyn FnMut(),
) -> Result<(), StoreError> {
    let mut failure = None;
    let mut flush = || match store.flush() {
        Ok(_) => {
            on_flush();
            ControlFlow::Continue(())
        }
        Err(store_error) => {
            failure = Some(store_error);
            ControlFlow::Break(())
        }
    };
    if record_demo_history(store, demo, policy, user, days, end_ms, &mut flush).is_continue() {
        // A failure of the final flush lands in `failure` like the others.
        let _ = flush();
    }
    match failure {
        Some(store_error) => Err(store_error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Quotas;
    use protocol::Cursor;

    /// A desktop whose front window has absurdly long names and a title
    /// with control characters.
    struct Oversized;

    impl Source for Oversized {
        fn window(&mut self) -> Result<Option<WindowSample>, SensorError> {
            Ok(Some(WindowSample {
                process_name: None,
                wm_class: Some("w".repeat(10_000)),
                title: Some(format!("{}\u{1b}[2J", "t".repeat(5_000))),
            }))
        }
        fn idle(&mut self) -> Result<IdleReading, SensorError> {
            Ok(IdleReading {
                idle_ms: 0,
                locked: false,
            })
        }
        fn health(&mut self, at_ms: UnixMillis) -> Reading {
            Reading {
                at_ms,
                cpu_pct: 1.0,
                mem_used_bytes: 1,
                mem_total_bytes: 2,
                swap_used_bytes: 0,
                swap_total_bytes: 0,
                disks: Vec::new(),
                uptime_secs: 1,
                load_avg: [0.0; 3],
                top_processes: Vec::new(),
            }
        }
        fn sessions(&mut self) -> Result<Vec<UserSession>, SensorError> {
            Ok(Vec::new())
        }
        fn is_demo(&self) -> bool {
            false
        }
    }

    #[test]
    fn names_and_titles_are_capped_before_they_are_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path(), Quotas::default()).expect("store"));
        let policy = Policy {
            collect_titles: true,
            ..Policy::default()
        };
        let start = Now {
            wall_ms: 1_795_000_000_000,
            steady_ms: 0,
        };
        let user = "u".repeat(1_000);
        let mut recorder = Recorder::new(store.clone(), policy, &user, start);
        for second in 0..10 {
            let now = Now {
                wall_ms: start.wall_ms + second * 1_000,
                steady_ms: u64::try_from(second).expect("positive") * 1_000,
            };
            recorder.step(now, &mut Oversized);
        }
        recorder.finish(Now {
            wall_ms: start.wall_ms + 10_000,
            steady_ms: 10_000,
        });
        store.flush().expect("flush");
        let from_start = Cursor {
            epoch: store.epoch(),
            seq: 0,
        };
        let usage = store
            .pull(StreamKind::Usage, from_start, 100)
            .expect("pull");
        let spans: Vec<_> = usage
            .records
            .iter()
            .filter_map(|record| match &record.record {
                Record::Usage(span) => Some(span),
                _ => None,
            })
            .collect();
        assert!(!spans.is_empty());
        for span in spans {
            assert!(span.app.len() <= MAX_APP_BYTES, "{}", span.app.len());
            assert!(span.raw_app.len() <= MAX_APP_BYTES);
            let title = span.title.as_deref().expect("titles on");
            assert_eq!(title.len(), MAX_TITLE_BYTES);
            assert!(!title.contains('\u{1b}'));
        }
        let sessions = store
            .pull(StreamKind::Sessions, from_start, 100)
            .expect("pull");
        let users: Vec<&String> = sessions
            .records
            .iter()
            .filter_map(|record| match &record.record {
                Record::Activity(span) => Some(&span.user),
                Record::Session(event) => Some(&event.user),
                _ => None,
            })
            .collect();
        assert!(!users.is_empty());
        assert!(users.iter().all(|user| user.len() == MAX_USER_BYTES));
    }

    #[test]
    fn a_shared_demo_workstation_splits_its_day_between_its_users() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(dir.path(), Quotas::default()).expect("store"));
        let users = ["lucas".to_owned(), "emma".to_owned()];
        let mut demo = DemoWorkstation::new(5).with_users(&users);
        // Wednesday 2026-10-14 00:00 UTC to Thursday 00:00: a working day.
        let end_ms = 1_792_022_400_000;
        let policy = Policy::default();
        let flow = record_demo_history(&store, &mut demo, &policy, "lucas", 1, end_ms, &mut || {
            ControlFlow::Continue(())
        });
        assert!(flow.is_continue());
        store.flush().expect("flush");
        let from_start = Cursor {
            epoch: store.epoch(),
            seq: 0,
        };
        let sessions = store
            .pull(StreamKind::Sessions, from_start, 10_000)
            .expect("pull");
        let mut spans: Vec<(i64, i64, String)> = Vec::new();
        let mut logins: Vec<String> = Vec::new();
        for record in &sessions.records {
            match &record.record {
                Record::Activity(span) => {
                    spans.push((span.start_ms, span.end_ms, span.user.clone()))
                }
                Record::Session(event) if event.kind == SessionEventKind::Login => {
                    logins.push(event.user.clone());
                }
                _ => {}
            }
        }
        assert_eq!(
            logins,
            ["lucas", "emma"],
            "lucas arrives, emma takes the seat after him"
        );
        let last_lucas_ms = spans
            .iter()
            .filter(|span| span.2 == "lucas")
            .map(|span| span.1)
            .max()
            .expect("lucas worked");
        let first_emma_ms = spans
            .iter()
            .filter(|span| span.2 == "emma")
            .map(|span| span.0)
            .min()
            .expect("emma worked");
        assert!(
            last_lucas_ms <= first_emma_ms,
            "no presence of lucas after emma signed in"
        );
        let active_of = |user: &str| -> i64 {
            spans
                .iter()
                .filter(|span| span.2 == user)
                .map(|span| span.1 - span.0)
                .sum()
        };
        assert!(active_of("lucas") > 3_600_000 && active_of("emma") > 3_600_000);
    }
}
