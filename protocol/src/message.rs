//! Requests a console sends, responses an agent returns, the collection
//! policy, and protocol version negotiation.
//!
//! One request and one response travel on one bidirectional QUIC stream.
//! New variants are only ever appended, so older peers fail with a decode
//! error on the stream instead of misreading a message.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::record::{Cursor, FrameMeta, SeqRecord, StreamKind};

/// Lowest protocol version this build speaks. Version 2 added
/// [`HelloReply::time_zone`]; a hello reply's layout is fixed before the
/// version is known, so a build speaks only the one layout it has.
pub const MIN_VERSION: u16 = 2;
/// Highest protocol version this build speaks.
pub const MAX_VERSION: u16 = 2;

/// Chooses the highest version both ranges contain, if any.
pub fn negotiate_version(
    ours: (u16, u16),
    theirs_min: u16,
    theirs_max: u16,
) -> Result<u16, VersionMismatch> {
    let low = ours.0.max(theirs_min);
    let high = ours.1.min(theirs_max);
    if low <= high {
        Ok(high)
    } else {
        Err(VersionMismatch {
            ours_min: ours.0,
            ours_max: ours.1,
            theirs_min,
            theirs_max,
        })
    }
}

/// The two sides share no protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no common protocol version: we speak {ours_min}..={ours_max}, the peer {theirs_min}..={theirs_max}; upgrade the older side")]
pub struct VersionMismatch {
    pub ours_min: u16,
    pub ours_max: u16,
    pub theirs_min: u16,
    pub theirs_max: u16,
}

/// What a console asks of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum Request {
    Hello(Hello),
    Pull(Pull),
    Ack(Ack),
    GetPolicy,
    SetPolicy(Policy),
    /// One screen capture now (admin only).
    Screenshot(CaptureSpec),
    /// Opens a live-view session (admin only); it lapses unless renewed.
    LiveStart(LiveStart),
    /// The session's next frame; also renews its lease.
    LiveFrame(LiveSession),
    /// Ends a live-view session at once.
    LiveStop(LiveSession),
    /// The image of a periodic screenshot whose [`FrameMeta`] was pulled
    /// from the frames stream (admin only).
    FetchFrame(Cursor),
    /// The site's newest deny-list of revoked consoles, signed by the
    /// site CA; the agent keeps it if it verifies and is newer.
    DenyList(SignedDenyList),
    /// Renewal, first step (admin only): the agent makes a new key and
    /// answers [`Response::KeyRequest`] with its CSR.
    NewKey,
    /// Renewal, second step (admin only): the certificate for the key of
    /// the last [`Request::NewKey`]; the agent installs it and serves it
    /// from its next handshake.
    InstallCertificate(Vec<u8>),
    /// GDPR erasure (admin only): drop every record of these OS accounts
    /// (their presence and session records, and the usage spans and
    /// screenshots taken while they were signed in), whether or not a
    /// console took them already. Each erased record becomes a gap marker
    /// with [`crate::GapReason::Erased`], so no sequence number is reused.
    EraseUsers(EraseUsers),
}

impl Request {
    /// Short stable name for logs and the access log.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Hello(_) => "hello",
            Request::Pull(_) => "pull",
            Request::Ack(_) => "ack",
            Request::GetPolicy => "get-policy",
            Request::SetPolicy(_) => "set-policy",
            Request::Screenshot(_) => "screenshot",
            Request::LiveStart(_) => "live-start",
            Request::LiveFrame(_) => "live-frame",
            Request::LiveStop(_) => "live-stop",
            Request::FetchFrame(_) => "fetch-frame",
            Request::DenyList(_) => "deny-list",
            Request::NewKey => "new-key",
            Request::InstallCertificate(_) => "install-certificate",
            Request::EraseUsers(_) => "erase-users",
        }
    }
}

/// What an agent answers; exactly one per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum Response {
    Hello(HelloReply),
    Records(RecordBatch),
    Acked(AckReply),
    Policy(Policy),
    Error(ErrorReply),
    /// Answers [`Request::Screenshot`] and [`Request::FetchFrame`].
    Image(CapturedImage),
    /// Answers [`Request::LiveStart`].
    LiveStarted(LiveLease),
    /// Answers [`Request::LiveFrame`].
    LiveFrame(LiveFrameReply),
    /// Answers [`Request::LiveStop`]; also sent when the session had
    /// already ended.
    LiveStopped(LiveSession),
    /// Answers [`Request::DenyList`]: the serial of the list the agent
    /// now holds.
    DenyList(DenyListReply),
    /// Answers [`Request::NewKey`]: a PKCS#10 request (DER) for the new key.
    KeyRequest(Vec<u8>),
    /// Answers [`Request::InstallCertificate`]: installed and durable.
    CertificateInstalled,
    /// Answers [`Request::EraseUsers`]: done and durable.
    Erased(ErasedReply),
}

/// Most OS accounts one [`Request::EraseUsers`] names.
pub const MAX_ERASE_USERS: usize = 16;

/// The OS accounts whose records an agent must drop: at most
/// [`MAX_ERASE_USERS`], each at most [`crate::MAX_USER_BYTES`] and not
/// empty (the agent refuses anything else as a bad request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct EraseUsers {
    pub users: Vec<String>,
}

/// What an agent dropped for a [`Request::EraseUsers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct ErasedReply {
    /// Records replaced by gap markers, in every stream.
    pub records: u64,
    /// Screenshot images deleted.
    pub images: u64,
}

/// A deny-list as the site CA signed it: the JSON body and the CA's
/// signature over it (see `certs::deny`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct SignedDenyList {
    pub body: Vec<u8>,
    pub signature: Vec<u8>,
}

/// The deny-list an agent holds after a [`Request::DenyList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct DenyListReply {
    /// Its serial (0: none).
    pub serial: u64,
    /// Whether the list sent replaced the one it held.
    pub taken: bool,
}

/// What to capture and how to encode it. The agent clamps every field to
/// its own limits and never upscales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct CaptureSpec {
    /// Index into the agent's monitors (left to right); `None` captures
    /// the whole desktop, every monitor side by side.
    pub monitor: Option<u16>,
    /// The image fits in `max_width` × `max_height`, aspect kept.
    pub max_width: u16,
    pub max_height: u16,
    /// JPEG quality, 1–95.
    pub quality: u8,
}

/// A captured screen image: its metadata and its encoded bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct CapturedImage {
    pub meta: FrameMeta,
    pub bytes: Vec<u8>,
}

/// Opens a live-view session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct LiveStart {
    pub spec: CaptureSpec,
    /// Wished time between frames (1000 for a single view, slower for a
    /// grid); the agent may slow down further.
    pub interval_ms: u32,
}

/// Names a live-view session the agent opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct LiveSession {
    pub session_id: u64,
}

/// The agent's terms for a live-view session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct LiveLease {
    pub session_id: u64,
    /// Time between frames the agent will keep to.
    pub interval_ms: u32,
    /// The session ends this long after the last request naming it.
    pub lease_secs: u32,
}

/// The next live frame, or `None` when the screen has not changed since
/// the last frame sent (the console keeps showing that one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct LiveFrameReply {
    pub session_id: u64,
    pub frame: Option<CapturedImage>,
    /// The current interval, which the agent adapts to its capture cost.
    pub interval_ms: u32,
}

/// Opens a conversation: the console's supported version range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Hello {
    pub min_version: u16,
    pub max_version: u16,
    /// Human-readable console name, for the agent's access log.
    pub console_name: String,
}

/// The agent's side of the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct HelloReply {
    pub version: u16,
    #[cfg_attr(
        any(test, feature = "arbitrary"),
        proptest(strategy = "crate::arbitrary::any_uuid()")
    )]
    pub agent_id: Uuid,
    pub hostname: String,
    /// True when the agent serves simulated demo data, never real data.
    pub demo: bool,
    /// Current epoch and last sequence of every stream, in
    /// [`StreamKind::ALL`] order.
    pub heads: Vec<(StreamKind, Cursor)>,
    /// IANA name of the workstation's time zone (`America/Montreal`), at
    /// most [`crate::text::MAX_TIME_ZONE_BYTES`]; empty when the agent
    /// cannot tell.
    pub time_zone: String,
}

/// Asks for records of one stream after a cursor.
///
/// If `after.epoch` is not the agent's current epoch (a fresh console, or a
/// wiped agent store), the agent answers from the start of its store and the
/// reply carries the new epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Pull {
    pub stream: StreamKind,
    pub after: Cursor,
    pub max_records: u32,
}

/// A batch of consecutive records of one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct RecordBatch {
    pub stream: StreamKind,
    pub epoch: u64,
    pub records: Vec<SeqRecord>,
    /// More records are ready after the last one in this batch.
    pub more: bool,
}

/// The console has durably stored everything up to and including `upto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Ack {
    pub stream: StreamKind,
    pub upto: Cursor,
}

/// Confirms an ack; `acked_seq` is what the agent now holds as taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct AckReply {
    pub stream: StreamKind,
    pub acked: Cursor,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum ErrorCode {
    /// No common protocol version.
    UnsupportedVersion,
    /// The console's role does not allow this request.
    Forbidden,
    /// The request was malformed or out of range.
    BadRequest,
    /// An ack named an epoch the agent does not have.
    StaleEpoch,
    /// The agent is at a connection or stream limit, or cannot write
    /// for now (its disk is full); retry later.
    Busy,
    /// The agent failed internally; its log says why.
    Internal,
    /// The thing asked for is gone: a live-view session that lapsed, a
    /// screenshot dropped by retention or quota.
    NotFound,
    /// The workstation cannot capture its screen (no display, a capture
    /// failure); the message says why.
    CaptureUnavailable,
}

/// A failed request: a machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
}

/// A redaction rule applied to window titles on the agent, before storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct RedactionRule {
    /// Regular expression matched against the title.
    pub pattern: String,
    /// Replacement text (regex replacement syntax).
    pub replacement: String,
}

/// Retention per data class, in days, enforced on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Retention {
    pub usage_days: u16,
    pub sessions_days: u16,
    pub health_days: u16,
    pub frames_days: u16,
}

/// Periodic screenshot settings; off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct ScreenshotPolicy {
    pub enabled: bool,
    /// Between 120 and 1200 seconds when enabled.
    pub interval_secs: u32,
    pub blur: bool,
}

/// What an agent collects and how long it keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct Policy {
    /// Monotonic revision; an agent ignores a policy older than its own.
    pub revision: u64,
    pub idle_threshold_secs: u32,
    pub collect_titles: bool,
    pub redaction_rules: Vec<RedactionRule>,
    pub retention: Retention,
    pub health_interval_secs: u32,
    pub screenshots: ScreenshotPolicy,
}

impl Default for Policy {
    /// Privacy by default: no titles, no screenshots, short retention.
    fn default() -> Self {
        Policy {
            revision: 0,
            idle_threshold_secs: 180,
            collect_titles: false,
            redaction_rules: Vec::new(),
            retention: Retention {
                usage_days: 30,
                sessions_days: 30,
                health_days: 14,
                frames_days: 7,
            },
            health_interval_secs: 30,
            screenshots: ScreenshotPolicy {
                enabled: false,
                interval_secs: 600,
                blur: false,
            },
        }
    }
}
