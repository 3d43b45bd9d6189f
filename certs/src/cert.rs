//! Reading certificates with x509-parser: fingerprints, SPKI pins, and the
//! SmartTracker identities (agent id, console id and role) carried in SANs.
//!
//! Names used in certificates:
//! - agent: exactly one DNS SAN `<uuid>.agent.smarttracker` ([`agent_server_name`]);
//! - console: exactly one URI SAN `urn:smarttracker:console:<role>:<uuid>` ([`console_uri`]).

use sha2::{Digest, Sha256};
use uuid::Uuid;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::role::Role;

/// DNS suffix of every agent certificate name.
const AGENT_NAME_SUFFIX: &str = ".agent.smarttracker";
/// Prefix of every console certificate URI, followed by `<role>:<uuid>`.
const CONSOLE_URI_PREFIX: &str = "urn:smarttracker:console:";
/// Prefix of the URI SAN naming the team a console or agent certificate
/// is limited to, followed by the team name percent-encoded.
const TEAM_URI_PREFIX: &str = "urn:smarttracker:team:";
/// Longest team name, in characters.
pub const MAX_TEAM_CHARS: usize = 64;

/// Bytes that are not one well-formed X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertParseError {
    #[error("not a valid X.509 certificate: {0}")]
    Der(String),
    #[error("trailing bytes after the X.509 certificate")]
    TrailingBytes,
    #[error("invalid or duplicated {extension} extension: {reason}")]
    Extension {
        extension: &'static str,
        reason: String,
    },
}

/// Lowercase hex SHA-256 of DER bytes (a certificate fingerprint).
pub fn fingerprint_der(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo: the key pin a console
/// keeps for each agent (it survives re-issuing a certificate for the same key).
pub fn spki_sha256(cert_der: &[u8]) -> Result<[u8; 32], CertParseError> {
    let cert = parse(cert_der)?;
    Ok(Sha256::digest(cert.public_key().raw).into())
}

/// The DNS name an agent's certificate carries, and the TLS server name a
/// console connects to: `<uuid>.agent.smarttracker`.
pub fn agent_server_name(agent_id: Uuid) -> String {
    format!("{agent_id}{AGENT_NAME_SUFFIX}")
}

/// The URI SAN of a console certificate: `urn:smarttracker:console:<role>:<uuid>`.
pub fn console_uri(role: Role, console_id: Uuid) -> String {
    format!("{CONSOLE_URI_PREFIX}{role}:{console_id}")
}

/// The URI SAN of a team: `urn:smarttracker:team:<name>`, the name
/// percent-encoded (RFC 3986 unreserved characters kept).
pub fn team_uri(team: &str) -> String {
    let mut uri = String::from(TEAM_URI_PREFIX);
    for byte in team.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// Why a team name cannot go in a certificate.
pub fn check_team(team: &str) -> Result<(), &'static str> {
    let chars = team.chars().count();
    if chars == 0 || chars > MAX_TEAM_CHARS {
        return Err("a team name has 1 to 64 characters");
    }
    if team.chars().any(char::is_control) || team.trim() != team {
        return Err("a team name has no control characters and no spaces at its ends");
    }
    Ok(())
}

fn parse_team_uri(uri: &str) -> Option<String> {
    let encoded = uri.strip_prefix(TEAM_URI_PREFIX)?;
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = tail.get(..2)?;
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    let team = String::from_utf8(bytes).ok()?;
    // Only the canonical spelling we issue, of a valid name, is accepted.
    (check_team(&team).is_ok() && team_uri(&team) == uri).then_some(team)
}

/// The subject alternative names other than a team URI, and the team
/// (at most one).
fn names_and_team<'a>(
    cert: &'a X509Certificate<'_>,
) -> Result<(Vec<&'a GeneralName<'a>>, Option<String>), String> {
    let mut names = Vec::new();
    let mut teams = Vec::new();
    for name in subject_alt_names(cert).map_err(|err| err.to_string())? {
        match name {
            GeneralName::URI(uri) if uri.starts_with(TEAM_URI_PREFIX) => teams.push(
                parse_team_uri(uri).ok_or_else(|| format!("its team URI {uri:?} is not valid"))?,
            ),
            other => names.push(other),
        }
    }
    if teams.len() > 1 {
        return Err(format!(
            "it names {} teams where at most one is allowed",
            teams.len()
        ));
    }
    Ok((names, teams.pop()))
}

/// The team a console or agent certificate is limited to, if any.
pub(crate) fn team_of(cert: &X509Certificate<'_>) -> Result<Option<String>, String> {
    Ok(names_and_team(cert)?.1)
}

/// Parses a DER certificate, refusing trailing bytes.
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertParseError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|err| CertParseError::Der(err.to_string()))?;
    if !rest.is_empty() {
        return Err(CertParseError::TrailingBytes);
    }
    Ok(cert)
}

/// The subject alternative names, empty when the extension is absent.
pub(crate) fn subject_alt_names<'a>(
    cert: &'a X509Certificate<'_>,
) -> Result<&'a [GeneralName<'a>], CertParseError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|err| CertParseError::Extension {
            extension: "subjectAltName",
            reason: err.to_string(),
        })?;
    Ok(san.map_or(&[][..], |ext| ext.value.general_names.as_slice()))
}

/// Whether the certificate says it is a CA (basicConstraints CA:TRUE).
pub(crate) fn is_ca(cert: &X509Certificate<'_>) -> Result<bool, CertParseError> {
    let constraints = cert
        .basic_constraints()
        .map_err(|err| CertParseError::Extension {
            extension: "basicConstraints",
            reason: err.to_string(),
        })?;
    Ok(constraints.is_some_and(|ext| ext.value.ca))
}

/// The console id and role of a console certificate: its SAN extension must
/// hold exactly one name, a URI in the console form, and it must not be a CA.
pub(crate) fn console_identity_of(cert: &X509Certificate<'_>) -> Result<(Role, Uuid), String> {
    if is_ca(cert).map_err(|err| err.to_string())? {
        return Err("it is a CA certificate".to_owned());
    }
    let (names, _team) = names_and_team(cert)?;
    let uri = match names.as_slice() {
        [GeneralName::URI(uri)] => *uri,
        [] => return Err("it has no subject alternative name".to_owned()),
        [_] => return Err("its subject alternative name is not a URI".to_owned()),
        names => {
            return Err(format!(
                "it has {} subject alternative names where one is expected",
                names.len()
            ))
        }
    };
    parse_console_uri(uri).ok_or_else(|| format!("its URI {uri:?} is not a console URI"))
}

fn parse_console_uri(uri: &str) -> Option<(Role, Uuid)> {
    let (role, id) = uri.strip_prefix(CONSOLE_URI_PREFIX)?.split_once(':')?;
    let role: Role = role.parse().ok()?;
    let id = Uuid::try_parse(id).ok()?;
    // Only the canonical spelling we issue is accepted.
    (console_uri(role, id) == uri).then_some((role, id))
}

/// The agent id of an agent certificate: its SAN extension must hold exactly
/// one name, a DNS name in the agent form, and it must not be a CA.
pub(crate) fn agent_id_of(cert: &X509Certificate<'_>) -> Result<Uuid, String> {
    if is_ca(cert).map_err(|err| err.to_string())? {
        return Err("it is a CA certificate".to_owned());
    }
    let (names, _team) = names_and_team(cert)?;
    let dns = match names.as_slice() {
        [GeneralName::DNSName(dns)] => *dns,
        [] => return Err("it has no subject alternative name".to_owned()),
        [_] => return Err("its subject alternative name is not a DNS name".to_owned()),
        names => {
            return Err(format!(
                "it has {} subject alternative names where one is expected",
                names.len()
            ))
        }
    };
    parse_agent_server_name(dns).ok_or_else(|| format!("its DNS name {dns:?} is not an agent name"))
}

fn parse_agent_server_name(dns: &str) -> Option<Uuid> {
    let id = Uuid::try_parse(dns.strip_suffix(AGENT_NAME_SUFFIX)?).ok()?;
    (agent_server_name(id) == dns).then_some(id)
}

/// The first common name of the subject, if it is a readable string.
pub(crate) fn common_name<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a str> {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
}

/// Whether `cert` carries a signature by `issuer`'s key.
pub(crate) fn is_signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Whether the DER certificate `cert_der` is signed by the key of the DER
/// certificate `issuer_der` (false when either does not parse).
pub fn is_issued_by(cert_der: &[u8], issuer_der: &[u8]) -> bool {
    match (parse(cert_der), parse(issuer_der)) {
        (Ok(cert), Ok(issuer)) => is_signed_by(&cert, &issuer),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_names_round_trip_through_their_uri_and_variants_are_refused() {
        for team in ["Salle 2", "Comptabilité", "a", "x-y_z.~"] {
            assert_eq!(
                parse_team_uri(&team_uri(team)),
                Some(team.to_owned()),
                "{team}"
            );
        }
        assert_eq!(team_uri("Salle 2"), "urn:smarttracker:team:Salle%202");
        assert_eq!(
            parse_team_uri("urn:smarttracker:team:a%2fb"),
            None,
            "canonical form only"
        );
        assert_eq!(
            parse_team_uri("urn:smarttracker:team:%41"),
            None,
            "canonical form only"
        );
        assert_eq!(parse_team_uri("urn:smarttracker:team:"), None);
        assert_eq!(parse_team_uri("urn:smarttracker:team:%0A"), None);
        assert_eq!(parse_team_uri("urn:smarttracker:team:%ff"), None);
        assert_eq!(parse_team_uri("urn:smarttracker:team:%4"), None);
        assert!(check_team(&"é".repeat(65)).is_err());
        assert!(check_team(" padded").is_err());
    }

    #[test]
    fn names_round_trip_and_refuse_variants() {
        let id = Uuid::new_v4();
        assert_eq!(parse_agent_server_name(&agent_server_name(id)), Some(id));
        assert_eq!(
            parse_console_uri(&console_uri(Role::Viewer, id)),
            Some((Role::Viewer, id))
        );
        let upper = agent_server_name(id).to_uppercase();
        assert_eq!(parse_agent_server_name(&upper), None);
        let simple = format!("{}{AGENT_NAME_SUFFIX}", id.simple());
        assert_eq!(parse_agent_server_name(&simple), None);
        assert_eq!(
            parse_console_uri(&format!("{CONSOLE_URI_PREFIX}root:{id}")),
            None
        );
        assert_eq!(
            parse_console_uri(&format!("{CONSOLE_URI_PREFIX}admin:{id}:extra")),
            None
        );
    }
}
