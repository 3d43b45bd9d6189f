//! Wire records an agent serves: usage spans, activity spans, session events,
//! health samples, frame metadata and explicit gap markers.
//!
//! These are *wire* types. Stores on either side keep their own types and
//! convert at the edge, so a storage change never silently changes the wire.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. Wall-clock stamps are labels for
/// people; ordering and paging always use [`Cursor`] sequence numbers.
pub type UnixMillis = i64;

/// Position in one record stream of one agent store.
///
/// `epoch` is random per agent store (a wiped or reinstalled store gets a new
/// one); `seq` is the sequence number of the last record the holder has, so a
/// fresh consumer starts at `seq = 0` and the first record is `seq = 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Cursor {
    pub epoch: u64,
    pub seq: u64,
}

/// The independent record streams an agent keeps, each with its own sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum StreamKind {
    /// [`UsageSpan`]s: which application was in front and for how long.
    Usage,
    /// [`ActivitySpan`]s and [`SessionEvent`]s: presence, idle, login/logout.
    Sessions,
    /// [`HealthSample`]s.
    Health,
    /// [`FrameMeta`] of periodic screenshots.
    Frames,
}

impl StreamKind {
    /// Every stream, in wire order.
    pub const ALL: [StreamKind; 4] = [
        StreamKind::Usage,
        StreamKind::Sessions,
        StreamKind::Health,
        StreamKind::Frames,
    ];

    /// Stable lower-case name used in logs, file names and CLI arguments.
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Usage => "usage",
            StreamKind::Sessions => "sessions",
            StreamKind::Health => "health",
            StreamKind::Frames => "frames",
        }
    }
}

/// One record with its position in its stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct SeqRecord {
    pub seq: u64,
    pub record: Record,
}

/// Anything an agent records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum Record {
    Usage(UsageSpan),
    Activity(ActivitySpan),
    Session(SessionEvent),
    Health(HealthSample),
    Frame(FrameMeta),
    Gap(GapMarker),
}

/// A closed span during which one application was in front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct UsageSpan {
    pub start_ms: UnixMillis,
    pub end_ms: UnixMillis,
    /// Name a person uses ("Firefox", "Visual Studio Code").
    pub app: String,
    /// What the sensor saw before normalisation (`firefox-esr`, `code`).
    pub raw_app: String,
    /// Window title after the agent's redaction rules; `None` unless policy
    /// enables titles.
    pub title: Option<String>,
}

/// Presence state of the workstation over a closed span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum Presence {
    /// Input within the idle threshold.
    Active,
    /// No input for at least the idle threshold. Idle is shown as idle,
    /// never as "not working".
    Idle,
    /// Screen locked.
    Locked,
}

/// A closed span of one presence state within a user session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct ActivitySpan {
    pub start_ms: UnixMillis,
    pub end_ms: UnixMillis,
    pub presence: Presence,
    pub user: String,
}

/// What happened at a session boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum SessionEventKind {
    Login,
    Logout,
    Lock,
    Unlock,
    AgentStart,
    AgentStop,
    /// The machine was not observed for longer than expected (suspend,
    /// hibernate, agent killed): the gap is not counted as any presence.
    Suspended {
        gap_ms: u64,
    },
    /// The wall clock moved by `delta_ms` against the monotonic clock.
    ClockJump {
        delta_ms: i64,
    },
}

/// A point event in a user's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct SessionEvent {
    pub at_ms: UnixMillis,
    pub kind: SessionEventKind,
    pub user: String,
}

/// Health classification derived from thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum HealthLevel {
    Ok,
    Warn,
    Critical,
}

/// Use of one mounted file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct DiskUsage {
    pub mount: String,
    pub used_bytes: u64,
    pub total_bytes: u64,
}

/// One of the heaviest processes at sampling time (the list is bounded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct ProcessUsage {
    pub name: String,
    pub cpu_pct: f32,
    pub mem_bytes: u64,
}

/// One system health sample with its 0–100 score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct HealthSample {
    pub at_ms: UnixMillis,
    pub cpu_pct: f32,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub swap_total_bytes: u64,
    pub disks: Vec<DiskUsage>,
    pub uptime_secs: u64,
    pub load_avg: [f32; 3],
    pub top_processes: Vec<ProcessUsage>,
    pub score: u8,
    pub level: HealthLevel,
}

/// Image encoding of a captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum ImageFormat {
    Jpeg,
    WebP,
}

/// Metadata of one captured screen image; the bytes travel separately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct FrameMeta {
    pub at_ms: UnixMillis,
    pub width: u32,
    pub height: u32,
    pub format: ImageFormat,
    pub size_bytes: u32,
    pub sha256: [u8; 32],
    pub blurred: bool,
}

/// Why records are missing from a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum GapReason {
    /// The per-class quota was full; oldest low-value records were dropped.
    QuotaExceeded,
    /// Records passed local retention before any console took them.
    RetentionExpired,
    /// Records erased at a person's request (GDPR erasure).
    Erased,
}

/// An explicit statement that records `first_seq..=last_seq` were dropped,
/// so a loss is never silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct GapMarker {
    pub stream: StreamKind,
    pub first_seq: u64,
    pub last_seq: u64,
    pub reason: GapReason,
}
