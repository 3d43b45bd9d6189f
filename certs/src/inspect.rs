//! Describing certificates as they are on disk, parsed with x509-parser:
//! a PEM certificate file, a console identity directory, a site directory or
//! an agent bundle. Private keys are never read here.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};

use crate::ca::CA_CERT_FILE;
use crate::cert::{self, fingerprint_der, CertParseError};
use crate::files::{self, FileError};
use crate::identity::{self, CONSOLE_CA_CERT_FILE, CONSOLE_CERT_FILE};
use crate::role::Role;

const INSPECT_HINT: &str =
    "pass a PEM certificate file, a console identity directory, a site directory or an agent bundle";

/// What a certificate is for, judged from its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertKind {
    /// basicConstraints CA:TRUE.
    SiteCa,
    /// One DNS SAN `<uuid>.agent.smarttracker`.
    Agent,
    /// One URI SAN `urn:smarttracker:console:<role>:<uuid>`.
    Console,
    /// Anything else.
    Other,
}

impl fmt::Display for CertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertKind::SiteCa => "site CA certificate",
            CertKind::Agent => "agent certificate",
            CertKind::Console => "console certificate",
            CertKind::Other => "certificate",
        })
    }
}

/// What one certificate says, read from its DER.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    pub kind: CertKind,
    pub subject: String,
    pub issuer: String,
    /// Colon-separated hex.
    pub serial: String,
    /// `DNS:…`, `URI:…`, `IP:…`, `email:…` or `other`.
    pub subject_alt_names: Vec<String>,
    /// `serverAuth`, `clientAuth`, … or dotted OIDs.
    pub extended_key_usage: Vec<String>,
    pub key_usage: Vec<String>,
    pub is_ca: bool,
    pub path_len_constraint: Option<u32>,
    pub role: Option<Role>,
    pub console_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub key_algorithm: String,
    pub fingerprint_sha256: String,
    /// The key pin a console keeps for an agent.
    pub spki_sha256: String,
}

/// Describes one DER certificate.
pub fn summarize(der: &[u8]) -> Result<CertSummary, CertParseError> {
    let parsed = cert::parse(der)?;
    let constraints = parsed
        .basic_constraints()
        .map_err(|err| CertParseError::Extension {
            extension: "basicConstraints",
            reason: err.to_string(),
        })?;
    let is_ca = constraints.as_ref().is_some_and(|ext| ext.value.ca);
    let console = cert::console_identity_of(&parsed).ok();
    let agent_id = cert::agent_id_of(&parsed).ok();
    let kind = match (is_ca, console, agent_id) {
        (true, _, _) => CertKind::SiteCa,
        (false, Some(_), _) => CertKind::Console,
        (false, None, Some(_)) => CertKind::Agent,
        (false, None, None) => CertKind::Other,
    };
    Ok(CertSummary {
        kind,
        subject: parsed.subject().to_string(),
        issuer: parsed.issuer().to_string(),
        serial: parsed.raw_serial_as_string(),
        subject_alt_names: cert::subject_alt_names(&parsed)?
            .iter()
            .map(describe_name)
            .collect(),
        extended_key_usage: extended_key_usage(&parsed)?,
        key_usage: key_usage(&parsed)?,
        is_ca,
        path_len_constraint: constraints.and_then(|ext| ext.value.path_len_constraint),
        role: console.map(|(role, _)| role),
        console_id: console.map(|(_, id)| id),
        agent_id,
        not_before: parsed.validity().not_before.to_datetime(),
        not_after: parsed.validity().not_after.to_datetime(),
        key_algorithm: key_algorithm(&parsed),
        fingerprint_sha256: fingerprint_der(der),
        spki_sha256: hex::encode(cert::spki_sha256(der)?),
    })
}

fn describe_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::URI(uri) => format!("URI:{uri}"),
        GeneralName::RFC822Name(email) => format!("email:{email}"),
        GeneralName::IPAddress(bytes) => match <[u8; 4]>::try_from(*bytes) {
            Ok(v4) => format!("IP:{}", std::net::Ipv4Addr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*bytes) {
                Ok(v6) => format!("IP:{}", std::net::Ipv6Addr::from(v6)),
                Err(_) => format!("IP:{}", hex::encode(bytes)),
            },
        },
        _ => "other".to_owned(),
    }
}

fn extended_key_usage(parsed: &X509Certificate<'_>) -> Result<Vec<String>, CertParseError> {
    let eku = parsed
        .extended_key_usage()
        .map_err(|err| CertParseError::Extension {
            extension: "extendedKeyUsage",
            reason: err.to_string(),
        })?;
    let Some(eku) = eku else {
        return Ok(Vec::new());
    };
    let eku = eku.value;
    let named = [
        (eku.any, "any"),
        (eku.server_auth, "serverAuth"),
        (eku.client_auth, "clientAuth"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
    ];
    Ok(named
        .into_iter()
        .filter(|(present, _)| *present)
        .map(|(_, name)| name.to_owned())
        .chain(eku.other.iter().map(|oid| oid.to_id_string()))
        .collect())
}

fn key_usage(parsed: &X509Certificate<'_>) -> Result<Vec<String>, CertParseError> {
    let ku = parsed
        .key_usage()
        .map_err(|err| CertParseError::Extension {
            extension: "keyUsage",
            reason: err.to_string(),
        })?;
    let Some(ku) = ku else {
        return Ok(Vec::new());
    };
    let ku = ku.value;
    let named = [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ];
    Ok(named
        .into_iter()
        .filter(|(present, _)| *present)
        .map(|(_, name)| name.to_owned())
        .collect())
}

fn key_algorithm(parsed: &X509Certificate<'_>) -> String {
    let algorithm = &parsed.public_key().algorithm;
    if algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return algorithm.algorithm.to_id_string();
    }
    match algorithm
        .parameters
        .as_ref()
        .and_then(|params| params.as_oid().ok())
    {
        Some(curve) if curve == OID_EC_P256 => "ECDSA P-256".to_owned(),
        Some(curve) => format!("EC curve {}", curve.to_id_string()),
        None => "EC, unknown curve".to_owned(),
    }
}

/// What kind of thing was inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InspectedKind {
    CertificateFile,
    AgentBundle,
    ConsoleIdentity,
    SiteDirectory,
}

impl fmt::Display for InspectedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InspectedKind::CertificateFile => "certificate file",
            InspectedKind::AgentBundle => "agent bundle",
            InspectedKind::ConsoleIdentity => "console identity directory",
            InspectedKind::SiteDirectory => "site directory",
        })
    }
}

/// One certificate found while inspecting, and the file it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectedCert {
    pub file: PathBuf,
    #[serde(flatten)]
    pub summary: CertSummary,
}

/// Everything `inspect` found at a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    pub path: PathBuf,
    pub kind: InspectedKind,
    pub certificates: Vec<InspectedCert>,
}

/// Why a path could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    File(#[from] FileError),
}

/// Describes every certificate at `path`: a PEM file (certificates or an
/// agent bundle), a console identity directory or a site directory.
pub fn inspect_path(path: &Path) -> Result<Inspection, InspectError> {
    if path.is_dir() {
        let console_cert = path.join(CONSOLE_CERT_FILE);
        let (kind, files) = if console_cert.exists() {
            (
                InspectedKind::ConsoleIdentity,
                vec![console_cert, path.join(CONSOLE_CA_CERT_FILE)],
            )
        } else if path.join(CA_CERT_FILE).exists() {
            (InspectedKind::SiteDirectory, vec![path.join(CA_CERT_FILE)])
        } else {
            return Err(FileError::invalid(
                "directory",
                path,
                format!("holds neither {CONSOLE_CERT_FILE} nor {CA_CERT_FILE}"),
                INSPECT_HINT,
            )
            .into());
        };
        let mut certificates = Vec::new();
        for file in files {
            let bytes = files::read(&file, "certificate file")?;
            certificates.extend(certificates_in(&bytes, &file)?);
        }
        return Ok(Inspection {
            path: path.to_path_buf(),
            kind,
            certificates,
        });
    }
    let bytes = files::read(path, "file")?;
    let kind = if identity::is_bundle(&bytes) {
        InspectedKind::AgentBundle
    } else {
        InspectedKind::CertificateFile
    };
    Ok(Inspection {
        path: path.to_path_buf(),
        kind,
        certificates: certificates_in(&bytes, path)?,
    })
}

fn certificates_in(bytes: &[u8], path: &Path) -> Result<Vec<InspectedCert>, FileError> {
    let ders = files::pem_certificates(bytes, path, "file", INSPECT_HINT)?;
    if ders.is_empty() {
        return Err(FileError::invalid(
            "file",
            path,
            "no PEM certificate found",
            INSPECT_HINT,
        ));
    }
    ders.iter()
        .enumerate()
        .map(|(index, der)| {
            summarize(der)
                .map(|summary| InspectedCert {
                    file: path.to_path_buf(),
                    summary,
                })
                .map_err(|err| {
                    FileError::invalid(
                        "file",
                        path,
                        format!("certificate {}: {err}", index + 1),
                        INSPECT_HINT,
                    )
                })
        })
        .collect()
}
