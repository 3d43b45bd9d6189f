//! Pure tracker core: sensor samples in, closed records out, time passed in.
//!
//! Shaped like quinn-proto: `handle_*` methods take the current time and a
//! sample, `poll_record` drains what became final. No clock reads, no I/O,
//! so every behaviour (heartbeat merge, idle, locks, suspend gaps, clock
//! steps) is tested with injected time.
//!
//! Time comes as [`Now`]: the wall clock (labels for people) and a clock
//! that keeps counting across suspend but never steps (Linux
//! `CLOCK_BOOTTIME`). Their disagreement is a clock step; a large advance of
//! the steady clock between samples is a gap (suspend, agent stopped).

use std::collections::VecDeque;

use protocol::{
    ActivitySpan, Presence, Record, SessionEvent, SessionEventKind, UnixMillis, UsageSpan,
};

/// One instant as two clocks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Wall clock, Unix milliseconds.
    pub wall_ms: UnixMillis,
    /// Steady clock (boot time) in milliseconds; never steps.
    pub steady_ms: u64,
}

/// The application in front, already normalised and redacted by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSample {
    pub app: String,
    pub raw_app: String,
    /// Only present when policy enables titles; already redacted.
    pub title: Option<String>,
}

/// Tuning of the tracker; from policy and the sensor poll rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerConfig {
    /// No input for this long makes the user idle.
    pub idle_threshold_ms: u64,
    /// Two samples further apart than this (steady clock) are not merged:
    /// the time between them is a gap, not usage.
    pub pulse_ms: u64,
    /// Wall and steady clocks may disagree by this much before a step is
    /// recorded.
    pub clock_tolerance_ms: u64,
    /// Open spans are closed and reopened at this length, bounding what a
    /// crash can lose and letting consoles see the current hour.
    pub max_span_ms: u64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            idle_threshold_ms: 180_000,
            pulse_ms: 15_000,
            clock_tolerance_ms: 2_000,
            max_span_ms: 300_000,
        }
    }
}

#[derive(Debug, Clone)]
struct OpenUsage {
    sample: AppSample,
    start_ms: UnixMillis,
}

#[derive(Debug, Clone, Copy)]
struct OpenPresence {
    presence: Presence,
    start_ms: UnixMillis,
}

/// Turns samples into closed usage spans, activity spans and session events.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    user: String,
    last: Now,
    usage: Option<OpenUsage>,
    presence: OpenPresence,
    /// Last app seen, kept while idle so usage resumes when input returns.
    front_app: Option<AppSample>,
    locked: bool,
    /// False between the user's logout and next login: nothing is present.
    signed_in: bool,
    /// Closed usage spans younger than the idle threshold: idle is only
    /// noticed a threshold after the last input, and is then backdated, so
    /// these may still be trimmed.
    pending_usage: VecDeque<UsageSpan>,
    ready: VecDeque<Record>,
}

impl Tracker {
    /// Starts tracking `user`; records the agent start.
    pub fn new(config: TrackerConfig, user: &str, now: Now) -> Self {
        let mut tracker = Tracker {
            config,
            user: user.to_owned(),
            last: now,
            usage: None,
            presence: OpenPresence {
                presence: Presence::Active,
                start_ms: now.wall_ms,
            },
            front_app: None,
            locked: false,
            signed_in: true,
            pending_usage: VecDeque::new(),
            ready: VecDeque::new(),
        };
        tracker.event(now.wall_ms, SessionEventKind::AgentStart);
        tracker
    }

    /// Changes thresholds (policy update) without closing anything.
    pub fn set_config(&mut self, config: TrackerConfig) {
        self.config = config;
    }

    /// Current presence state.
    pub fn presence(&self) -> Presence {
        self.presence.presence
    }

    /// The next closed record, oldest first.
    pub fn poll_record(&mut self) -> Option<Record> {
        self.ready.pop_front()
    }

    /// A window sample: `None` means no window has the focus.
    pub fn handle_window(&mut self, now: Now, sample: Option<AppSample>) {
        let now_ms = self.advance(now);
        self.front_app = sample;
        if !self.signed_in || self.presence.presence != Presence::Active {
            return;
        }
        let unchanged = match (&self.usage, &self.front_app) {
            (Some(open), Some(sample)) => open.sample == *sample,
            (None, None) => true,
            _ => false,
        };
        if !unchanged {
            self.close_usage(now_ms);
            self.open_usage(now_ms);
        }
    }

    /// An idle/lock reading.
    pub fn handle_idle(&mut self, now: Now, idle_ms: u64, locked: bool) {
        let now_ms = self.advance(now);
        if !self.signed_in {
            return;
        }
        if locked != self.locked {
            self.locked = locked;
            let kind = if locked {
                SessionEventKind::Lock
            } else {
                SessionEventKind::Unlock
            };
            self.event(now_ms, kind);
        }
        let (presence, since_ms) = if locked {
            (Presence::Locked, now_ms)
        } else if idle_ms >= self.config.idle_threshold_ms {
            // Idle began at the last input, not when we noticed it; never
            // before the current presence span began.
            let last_input_ms = now_ms.saturating_sub(to_signed(idle_ms));
            (Presence::Idle, last_input_ms.max(self.presence.start_ms))
        } else {
            // Input came back `idle_ms` ago: active from then on.
            let last_input_ms = now_ms.saturating_sub(to_signed(idle_ms));
            (Presence::Active, last_input_ms.max(self.presence.start_ms))
        };
        if presence == self.presence.presence {
            return;
        }
        self.close_usage(since_ms);
        self.trim_pending_usage(since_ms);
        self.close_presence(since_ms);
        self.presence = OpenPresence {
            presence,
            start_ms: since_ms,
        };
        if presence == Presence::Active {
            self.open_usage(since_ms);
        }
    }

    /// A user session boundary seen by the session sensor.
    pub fn handle_session(&mut self, now: Now, kind: SessionEventKind, user: &str) {
        let now_ms = self.advance(now);
        self.ready.push_back(Record::Session(SessionEvent {
            at_ms: now_ms,
            kind,
            user: user.to_owned(),
        }));
    }

    /// The seat passed to `user`: what is open is closed as the previous
    /// user's, and what follows is `user`'s. Another user's login alone
    /// (a remote session) changes nothing.
    pub fn switch_user(&mut self, now: Now, user: &str) {
        if self.user == user {
            return;
        }
        let now_ms = self.advance(now);
        if self.signed_in {
            self.close_usage(now_ms);
            self.release_usage(UnixMillis::MAX);
            self.close_presence(now_ms);
            user.clone_into(&mut self.user);
            self.presence = OpenPresence {
                presence: Presence::Active,
                start_ms: now_ms,
            };
            self.open_usage(now_ms);
        } else {
            user.clone_into(&mut self.user);
        }
    }

    /// The user's desktop session ended (`false`) or began (`true`): no
    /// presence at all is recorded while signed out, so a machine left on
    /// overnight after logout is not "idle" all night.
    pub fn handle_signed_in(&mut self, now: Now, signed_in: bool) {
        let now_ms = self.advance(now);
        if signed_in == self.signed_in {
            return;
        }
        self.signed_in = signed_in;
        if signed_in {
            self.presence = OpenPresence {
                presence: Presence::Active,
                start_ms: now_ms,
            };
            self.open_usage(now_ms);
        } else {
            self.close_usage(now_ms);
            self.release_usage(UnixMillis::MAX);
            self.close_presence(now_ms);
        }
    }

    /// A timer tick with no new sample: closes spans past `max_span_ms` and
    /// notices gaps and clock steps.
    pub fn handle_tick(&mut self, now: Now) {
        self.advance(now);
    }

    /// Closes everything open and records the agent stop.
    pub fn shutdown(&mut self, now: Now) {
        let now_ms = self.advance(now);
        self.close_usage(now_ms);
        self.release_usage(UnixMillis::MAX);
        self.close_presence(now_ms);
        self.event(now_ms, SessionEventKind::AgentStop);
    }

    /// Moves time forward, handling gaps, clock steps and span splitting;
    /// returns the wall time to use for this sample.
    fn advance(&mut self, now: Now) -> UnixMillis {
        let steady_delta_ms = now.steady_ms.saturating_sub(self.last.steady_ms);
        // Where the wall clock should be if it had not stepped.
        let expected_wall_ms = self.last.wall_ms + to_signed(steady_delta_ms);
        let step_ms = now.wall_ms - expected_wall_ms;

        if steady_delta_ms > self.config.pulse_ms {
            // Not observed for a while: spans end at the last observation
            // and the gap is recorded, never counted as any presence.
            let last_ms = self.last.wall_ms;
            self.close_usage(last_ms);
            self.release_usage(UnixMillis::MAX);
            self.close_presence(last_ms);
            self.event(
                last_ms,
                SessionEventKind::Suspended {
                    gap_ms: steady_delta_ms,
                },
            );
        }
        if step_ms.unsigned_abs() > self.config.clock_tolerance_ms {
            self.close_usage(expected_wall_ms);
            self.release_usage(UnixMillis::MAX);
            self.close_presence(expected_wall_ms);
            self.event(
                now.wall_ms,
                SessionEventKind::ClockJump { delta_ms: step_ms },
            );
        }
        self.reopen_after_break(now.wall_ms);
        self.split_long_spans(now.wall_ms);
        self.release_usage(self.settled_ms(now.wall_ms));
        self.last = now;
        now.wall_ms
    }

    /// After a gap or step closed everything, open fresh spans at `now_ms`.
    fn reopen_after_break(&mut self, now_ms: UnixMillis) {
        if self.signed_in && self.presence.start_ms == UnixMillis::MIN {
            self.presence.start_ms = now_ms;
            if self.presence.presence == Presence::Active {
                self.open_usage(now_ms);
            }
        }
    }

    fn split_long_spans(&mut self, now_ms: UnixMillis) {
        let max_ms = to_signed(self.config.max_span_ms);
        while let Some(open) = &self.usage {
            let cut_ms = open.start_ms + max_ms;
            if now_ms <= cut_ms {
                break;
            }
            self.close_usage(cut_ms);
            self.open_usage(cut_ms);
        }
        let settled_ms = self.settled_ms(now_ms);
        while self.presence.start_ms != UnixMillis::MIN
            && settled_ms >= self.presence.start_ms + max_ms
        {
            let cut_ms = self.presence.start_ms + max_ms;
            let presence = self.presence.presence;
            self.close_presence(cut_ms);
            self.presence = OpenPresence {
                presence,
                start_ms: cut_ms,
            };
        }
    }

    /// Before this instant nothing can change any more: idle is noticed at
    /// most a threshold plus one check interval (≤ pulse) after the last
    /// input, and is then backdated to it.
    fn settled_ms(&self, now_ms: UnixMillis) -> UnixMillis {
        now_ms - to_signed(self.config.idle_threshold_ms) - to_signed(self.config.pulse_ms)
    }

    fn open_usage(&mut self, start_ms: UnixMillis) {
        self.usage = self
            .front_app
            .clone()
            .map(|sample| OpenUsage { sample, start_ms });
    }

    fn close_usage(&mut self, end_ms: UnixMillis) {
        if let Some(open) = self.usage.take() {
            if end_ms > open.start_ms {
                self.pending_usage.push_back(UsageSpan {
                    start_ms: open.start_ms,
                    end_ms,
                    app: open.sample.app,
                    raw_app: open.sample.raw_app,
                    title: open.sample.title,
                });
            }
        }
    }

    /// Idle turned out to have begun at `idle_since_ms`: usage after that
    /// instant was not usage.
    fn trim_pending_usage(&mut self, idle_since_ms: UnixMillis) {
        self.pending_usage.retain_mut(|span| {
            span.end_ms = span.end_ms.min(idle_since_ms);
            span.end_ms > span.start_ms
        });
    }

    /// Moves usage spans that ended at or before `until_ms` to the output.
    fn release_usage(&mut self, until_ms: UnixMillis) {
        while let Some(span) = self.pending_usage.front() {
            if span.end_ms > until_ms {
                break;
            }
            if let Some(span) = self.pending_usage.pop_front() {
                self.ready.push_back(Record::Usage(span));
            }
        }
    }

    /// Closes the presence span; it is reopened by the caller or, after a
    /// break, by the next sample (marked by `start_ms == MIN`).
    fn close_presence(&mut self, end_ms: UnixMillis) {
        let open = self.presence;
        if open.start_ms == UnixMillis::MIN {
            return;
        }
        if end_ms > open.start_ms {
            self.ready.push_back(Record::Activity(ActivitySpan {
                start_ms: open.start_ms,
                end_ms,
                presence: open.presence,
                user: self.user.clone(),
            }));
        }
        self.presence.start_ms = UnixMillis::MIN;
    }

    fn event(&mut self, at_ms: UnixMillis, kind: SessionEventKind) {
        self.ready.push_back(Record::Session(SessionEvent {
            at_ms,
            kind,
            user: self.user.clone(),
        }));
    }
}

fn to_signed(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}
