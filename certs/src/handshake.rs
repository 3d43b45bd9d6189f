//! Why a connection attempt failed, read from the typed QUIC close it
//! ended with: TLS alerts travel as CRYPTO_ERROR codes (0x100 + alert),
//! so "the agent refused our certificate as expired" is told apart from
//! "nobody answered" without reading any error text.

use quinn::{ConnectionError, ReadError, ReadExactError, TransportErrorCode, VarInt, WriteError};
use rustls::AlertDescription;

use crate::transport::{TransportError, CLOSE_OTHER_TEAM, CLOSE_QUIET, CLOSE_REFUSED};

/// Which side ended a failed handshake, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The peer refused our certificate: expired or not valid yet.
    OurCertificateExpired,
    /// The peer refused our certificate as revoked (its deny-list).
    OurCertificateRevoked,
    /// The peer does not know our certificate's issuer: another site.
    OurCertificateUnknownCa,
    /// The peer refused our certificate for another reason (its alert).
    OurCertificateRefused(AlertDescription),
    /// We refused the peer's certificate (our verifier's alert).
    PeerCertificateRefused(AlertDescription),
    /// The two sides share no application protocol (ALPN).
    NoCommonProtocol,
    /// The agent closed the connection as over one of its limits
    /// ([`CLOSE_REFUSED`]: too many connections from this console).
    AgentBusy,
    /// The agent is not in the team this console's certificate limits it
    /// to ([`CLOSE_OTHER_TEAM`]).
    OtherTeam,
    /// The agent closed a connection that sent no request for too long
    /// ([`CLOSE_QUIET`]).
    ClosedQuiet,
    /// Nobody answered within the idle timeout.
    TimedOut,
    /// Anything else (network, reset, local shutdown).
    Other,
}

impl HandshakeFailure {
    /// Reads a connection error. `Closed by peer` with a crypto code is
    /// the peer's alert; a local transport error with one is ours.
    pub fn of(error: &ConnectionError) -> HandshakeFailure {
        match error {
            ConnectionError::ConnectionClosed(close) => match alert_of(close.error_code) {
                Some(AlertDescription::CertificateExpired) => {
                    HandshakeFailure::OurCertificateExpired
                }
                Some(AlertDescription::CertificateRevoked) => {
                    HandshakeFailure::OurCertificateRevoked
                }
                Some(AlertDescription::UnknownCA) => HandshakeFailure::OurCertificateUnknownCa,
                Some(AlertDescription::NoApplicationProtocol) => HandshakeFailure::NoCommonProtocol,
                Some(alert) => HandshakeFailure::OurCertificateRefused(alert),
                None => HandshakeFailure::Other,
            },
            ConnectionError::TransportError(local) => match alert_of(local.code) {
                Some(AlertDescription::NoApplicationProtocol) => HandshakeFailure::NoCommonProtocol,
                Some(alert) => HandshakeFailure::PeerCertificateRefused(alert),
                None => HandshakeFailure::Other,
            },
            ConnectionError::ApplicationClosed(close)
                if close.error_code == VarInt::from_u32(CLOSE_REFUSED) =>
            {
                HandshakeFailure::AgentBusy
            }
            ConnectionError::ApplicationClosed(close)
                if close.error_code == VarInt::from_u32(CLOSE_OTHER_TEAM) =>
            {
                HandshakeFailure::OtherTeam
            }
            ConnectionError::ApplicationClosed(close)
                if close.error_code == VarInt::from_u32(CLOSE_QUIET) =>
            {
                HandshakeFailure::ClosedQuiet
            }
            ConnectionError::TimedOut => HandshakeFailure::TimedOut,
            _ => HandshakeFailure::Other,
        }
    }

    /// Reads whatever a connect or a request failed with: with TLS 1.3 a
    /// client can finish its side of the handshake before the agent has
    /// checked its certificate, so a refusal may come with the first
    /// request. `None` when the connection itself did not fail.
    pub fn of_transport(error: &TransportError) -> Option<HandshakeFailure> {
        let connection = match error {
            TransportError::Connection(connection)
            | TransportError::Write(WriteError::ConnectionLost(connection))
            | TransportError::Read(ReadExactError::ReadError(ReadError::ConnectionLost(
                connection,
            ))) => connection,
            _ => return None,
        };
        Some(HandshakeFailure::of(connection))
    }

    /// The refusal in words, with what to do about it; `None` for
    /// failures that are not refusals (timeouts, network).
    pub fn advice(self) -> Option<&'static str> {
        Some(match self {
            HandshakeFailure::OurCertificateExpired => {
                "the agent refused this console's certificate: it has expired (or is not valid \
                 yet); issue a new one with `smarttracker-certs console --site SITE --role ROLE \
                 --name NAME --out DATA/identity` (move the old identity directory aside first) \
                 and check this computer's clock"
            }
            HandshakeFailure::OurCertificateRevoked => {
                "the agent refused this console's certificate: it has been revoked; ask the \
                 site's administrator for a new console certificate"
            }
            HandshakeFailure::OurCertificateUnknownCa => {
                "the agent does not trust this console's certificate: it belongs to another \
                 site; use a console identity issued by this site's CA"
            }
            HandshakeFailure::OurCertificateRefused(_) => {
                "the agent refused this console's certificate; check it with `smarttracker-certs \
                 inspect DATA/identity/console.crt`"
            }
            HandshakeFailure::PeerCertificateRefused(_) => {
                "this console refused the agent's certificate: not an agent of this site's \
                 inventory, or not the key pinned there"
            }
            HandshakeFailure::NoCommonProtocol => {
                "the peer does not speak the SmartTracker protocol: another program on that \
                 port, or an incompatible version"
            }
            HandshakeFailure::AgentBusy => {
                "the agent refused the connection: this console (or this address) already holds \
                 as many connections as it allows; close other windows or syncs of this console, \
                 the next pass tries again"
            }
            HandshakeFailure::OtherTeam => {
                "the agent refused this console: its certificate limits it to a team and this \
                 workstation is not in that team; use a console of the workstation's team, or \
                 one without a team"
            }
            HandshakeFailure::ClosedQuiet
            | HandshakeFailure::TimedOut
            | HandshakeFailure::Other => return None,
        })
    }
}

/// The TLS alert a QUIC CRYPTO_ERROR code carries.
fn alert_of(code: TransportErrorCode) -> Option<AlertDescription> {
    let base = u64::from(TransportErrorCode::crypto(0));
    let alert = u64::from(code).checked_sub(base)?;
    u8::try_from(alert).ok().map(AlertDescription::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypto_codes_carry_their_alert() {
        let code = |alert: AlertDescription| TransportErrorCode::crypto(u8::from(alert));
        assert_eq!(
            alert_of(code(AlertDescription::CertificateExpired)),
            Some(AlertDescription::CertificateExpired)
        );
        assert_eq!(
            alert_of(code(AlertDescription::CertificateRevoked)),
            Some(AlertDescription::CertificateRevoked)
        );
        assert_eq!(alert_of(TransportErrorCode::PROTOCOL_VIOLATION), None);
    }
}
