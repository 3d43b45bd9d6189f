//! SmartTracker wire protocol: records, messages, version negotiation and the
//! length-prefixed bincode frame codec.
//!
//! Pure by design: no sockets, no async runtime, no clock. Transports and
//! stores on both sides build on these types and functions.

#[cfg(any(test, feature = "arbitrary"))]
pub mod arbitrary;
pub mod codec;
pub mod enrol;
pub mod message;
pub mod record;
pub mod schema;
pub mod text;

#[cfg(test)]
mod tests;

pub use codec::{
    body_len, decode_frame, encode_frame, DecodeError, EncodeError, WireMessage, HEADER_BYTES,
    MAX_REQUEST_BODY_BYTES, MAX_RESPONSE_BODY_BYTES,
};
pub use message::{
    negotiate_version, Ack, AckReply, CaptureSpec, CapturedImage, DenyListReply, EraseUsers,
    ErasedReply, ErrorCode, ErrorReply, Hello, HelloReply, LiveFrameReply, LiveLease, LiveSession,
    LiveStart, Policy, Pull, RecordBatch, RedactionRule, Request, Response, Retention,
    ScreenshotPolicy, SignedDenyList, VersionMismatch, MAX_ERASE_USERS, MAX_VERSION, MIN_VERSION,
};
pub use record::{
    ActivitySpan, Cursor, DiskUsage, FrameMeta, GapMarker, GapReason, HealthLevel, HealthSample,
    ImageFormat, Presence, ProcessUsage, Record, SeqRecord, SessionEvent, SessionEventKind,
    StreamKind, UnixMillis, UsageSpan,
};
pub use text::{
    cap_text, MAX_APP_BYTES, MAX_HOSTNAME_BYTES, MAX_TIME_ZONE_BYTES, MAX_TITLE_BYTES,
    MAX_USER_BYTES,
};

/// TLS application protocol name; a peer offering anything else is refused.
pub const ALPN: &[u8] = b"smarttracker/1";
