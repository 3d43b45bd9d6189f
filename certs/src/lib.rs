//! SmartTracker identity and trust: the offline site CA, console and agent
//! identities and their files, rustls configurations for both ends of a
//! QUIC connection, and the framed transport over it.
//!
//! See `ca` for the site directory layout, `identity` for the console
//! directory and agent bundle formats, and `tls` for the handshake policy.

pub mod ca;
mod cert;
pub mod deny;
pub mod enrol;
mod files;
pub mod handshake;
pub mod identity;
pub mod inspect;
pub mod registry;
mod role;
pub mod tls;
pub mod transport;

pub use ca::{
    InitError, IssueError, NameError, OpenError, SiteCa, Validity, ValidityError,
    AGENT_VALIDITY_DAYS, CA_VALIDITY_DAYS, CONSOLE_VALIDITY_DAYS, PASSPHRASE_ENV,
};
pub use cert::{
    agent_server_name, check_team, console_uri, fingerprint_der, is_issued_by, spki_sha256,
    CertParseError, MAX_TEAM_CHARS,
};
pub use files::{FileError, FileProblem};
pub use identity::{AgentIdentity, ConsoleIdentity, IdentityFileError};
pub use role::{ParseRoleError, Role};
pub use rustls;
