//! The enrolment exchange: one request from an agent that holds a code,
//! one answer from the console, on a connection of its own (ALPN
//! `smarttracker-enrol/1`, see `certs::enrol`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The largest enrolment request body (a CSR is well under 1 KiB).
pub const MAX_ENROL_REQUEST_BYTES: usize = 8 * 1024;
/// The largest enrolment answer body (a certificate is under 1 KiB).
pub const MAX_ENROL_REPLY_BYTES: usize = 16 * 1024;

/// What an agent sends once the channel is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub struct EnrolRequest {
    /// PKCS#10 request (DER) for the agent's own new key.
    pub csr_der: Vec<u8>,
    /// HMAC-SHA256 keyed by the code's secret over the channel's TLS
    /// exporter and the CSR's SHA-256.
    pub proof: Vec<u8>,
    /// The workstation's host name, for the inventory (the console caps
    /// and checks it).
    pub hostname: String,
}

/// The console's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum EnrolReply {
    /// The agent's certificate (DER), signed by the site CA.
    Enrolled {
        #[cfg_attr(
            any(test, feature = "arbitrary"),
            proptest(strategy = "crate::arbitrary::any_uuid()")
        )]
        agent_id: Uuid,
        cert_der: Vec<u8>,
        /// The inventory name the console gave it.
        name: String,
    },
    Refused(EnrolRefusal),
}

/// Why a console did not enrol an agent; each says what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(proptest_derive::Arbitrary))]
pub enum EnrolRefusal {
    #[error("the console refused the code (wrong code, or a code of another enrolment): check the code, or ask for a new one")]
    WrongCode,
    #[error("the enrolment code has expired: ask the console for a new one")]
    Expired,
    #[error("the enrolment code has been used as many times as it allows: ask the console for a new one")]
    UsedUp,
    #[error("the console's manager declined this workstation")]
    Declined,
    #[error("the console could not read the request: update the agent to the console's version")]
    BadRequest,
    #[error("the console is busy: try again in a minute")]
    Busy,
    #[error("the console failed to enrol this workstation; its log says why")]
    Internal,
}
