//! Issued identities and their files: a console's identity directory and an
//! agent's single-file bundle.
//!
//! Console identity directory (created with mode 0700 if missing):
//! - `console.cert.pem`: the console certificate (0644);
//! - `console.key.pem`: its PKCS#8 key, `PRIVATE KEY` PEM (0600);
//! - `ca.cert.pem`: the site CA certificate (0644).
//!
//! Agent bundle, one file with mode 0600, in this order:
//! ```text
//! # SmartTracker agent identity: certificate, site CA certificate, private key.
//! # Keep this file secret (mode 0600).
//! # smarttracker-agent-bundle/1 {"agent_id":"<uuid>","name":"<host>"|null}
//! -----BEGIN CERTIFICATE-----      the agent certificate
//! -----BEGIN CERTIFICATE-----      the site CA certificate
//! -----BEGIN PRIVATE KEY-----      the agent's PKCS#8 key
//! ```
//! The header line is compact JSON (never more than one line). On reading,
//! the agent id in the header must match the certificate's DNS SAN.
//!
//! Reading either form checks that the certificate was issued by the CA
//! stored with it and that the key belongs to the certificate, and refuses
//! key files that group or others may access. Writing never overwrites.

use std::path::Path;

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use x509_parser::certificate::X509Certificate;
use zeroize::Zeroizing;

use crate::ca::check_name;
use crate::cert;
use crate::files::{self, FileError, NewFiles, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE};
use crate::role::Role;

/// Console certificate file name inside a console identity directory.
pub const CONSOLE_CERT_FILE: &str = "console.cert.pem";
/// Console key file name inside a console identity directory.
pub const CONSOLE_KEY_FILE: &str = "console.key.pem";
/// Site CA certificate file name inside a console identity directory.
pub const CONSOLE_CA_CERT_FILE: &str = "ca.cert.pem";
/// Marks the JSON header line of an agent bundle.
pub const BUNDLE_HEADER_PREFIX: &str = "# smarttracker-agent-bundle/1 ";

const REISSUE_HINT: &str = "issue a new identity with smarttracker-certs";

/// Why an identity could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum IdentityFileError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot encode {what} as PEM: {reason}")]
    Encode { what: &'static str, reason: String },
}

/// A console's certificate, key and the site CA certificate.
#[derive(Debug)]
pub struct ConsoleIdentity {
    pub console_id: Uuid,
    pub role: Role,
    pub name: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: PrivatePkcs8KeyDer<'static>,
    pub ca_cert_der: CertificateDer<'static>,
}

/// An agent's certificate, key and the site CA certificate.
#[derive(Debug)]
pub struct AgentIdentity {
    pub agent_id: Uuid,
    pub name: Option<String>,
    pub cert_der: CertificateDer<'static>,
    pub key_der: PrivatePkcs8KeyDer<'static>,
    pub ca_cert_der: CertificateDer<'static>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleHeader {
    agent_id: Uuid,
    name: Option<String>,
}

impl ConsoleIdentity {
    /// Writes the three files into `dir`; refuses if any already exists.
    pub fn write(&self, dir: &Path) -> Result<(), IdentityFileError> {
        let cert_path = dir.join(CONSOLE_CERT_FILE);
        let key_path = dir.join(CONSOLE_KEY_FILE);
        let ca_path = dir.join(CONSOLE_CA_CERT_FILE);
        files::refuse_existing(&cert_path, "console certificate")?;
        files::refuse_existing(&key_path, "console key")?;
        files::refuse_existing(&ca_path, "site CA certificate")?;
        let cert_pem = encode_cert(&self.cert_der, "console certificate")?;
        let ca_pem = encode_cert(&self.ca_cert_der, "site CA certificate")?;
        let key_pem =
            files::pkcs8_key_pem(&self.key_der).map_err(|err| IdentityFileError::Encode {
                what: "console key",
                reason: err.to_string(),
            })?;

        files::ensure_dir(dir, "console identity directory")?;
        let mut written = NewFiles::default();
        written.write(
            &key_path,
            "console key",
            key_pem.as_bytes(),
            PRIVATE_FILE_MODE,
        )?;
        written.write(
            &cert_path,
            "console certificate",
            cert_pem.as_bytes(),
            PUBLIC_FILE_MODE,
        )?;
        written.write(
            &ca_path,
            "site CA certificate",
            ca_pem.as_bytes(),
            PUBLIC_FILE_MODE,
        )?;
        written.commit();
        Ok(())
    }

    /// Reads and checks a console identity directory.
    pub fn read(dir: &Path) -> Result<Self, IdentityFileError> {
        let cert_path = dir.join(CONSOLE_CERT_FILE);
        let key_path = dir.join(CONSOLE_KEY_FILE);
        let ca_path = dir.join(CONSOLE_CA_CERT_FILE);

        let cert_bytes = files::read(&cert_path, "console certificate")?;
        let cert_der = files::pem_single_certificate(
            &cert_bytes,
            &cert_path,
            "console certificate",
            REISSUE_HINT,
        )?;
        let ca_bytes = files::read(&ca_path, "site CA certificate")?;
        let ca_cert_der = files::pem_single_certificate(
            &ca_bytes,
            &ca_path,
            "site CA certificate",
            REISSUE_HINT,
        )?;
        let key_bytes = files::read_private(&key_path, "console key")?;
        let key_der =
            files::pem_single_pkcs8_key(&key_bytes, &key_path, "console key", REISSUE_HINT)?;

        let leaf = parse_cert(&cert_der, &cert_path, "console certificate")?;
        let (role, console_id) = cert::console_identity_of(&leaf).map_err(|reason| {
            FileError::invalid(
                "console certificate",
                &cert_path,
                format!("not a console certificate: {reason}"),
                REISSUE_HINT,
            )
        })?;
        let name = cert::common_name(&leaf)
            .ok_or_else(|| {
                FileError::invalid(
                    "console certificate",
                    &cert_path,
                    "has no readable common name",
                    REISSUE_HINT,
                )
            })?
            .to_owned();
        check_chain(&leaf, &cert_path, &ca_cert_der, &ca_path)?;
        check_key(&key_der, &key_path, &leaf, "console key")?;

        Ok(ConsoleIdentity {
            console_id,
            role,
            name,
            cert_der,
            key_der,
            ca_cert_der,
        })
    }
}

impl AgentIdentity {
    /// Writes the bundle to `file` (mode 0600), creating its directory
    /// (0700) if missing; refuses if `file` exists.
    pub fn write_bundle(&self, file: &Path) -> Result<(), IdentityFileError> {
        files::refuse_existing(file, "agent bundle")?;
        let header = serde_json::to_string(&BundleHeader {
            agent_id: self.agent_id,
            name: self.name.clone(),
        })
        .map_err(|err| IdentityFileError::Encode {
            what: "agent bundle header",
            reason: err.to_string(),
        })?;
        let cert_pem = encode_cert(&self.cert_der, "agent certificate")?;
        let ca_pem = encode_cert(&self.ca_cert_der, "site CA certificate")?;
        let key_pem =
            files::pkcs8_key_pem(&self.key_der).map_err(|err| IdentityFileError::Encode {
                what: "agent key",
                reason: err.to_string(),
            })?;
        // Holds the private key: wiped when dropped.
        let mut contents = Zeroizing::new(String::new());
        contents.push_str(
            "# SmartTracker agent identity: certificate, site CA certificate, private key.\n",
        );
        contents.push_str("# Keep this file secret (mode 0600).\n");
        contents.push_str(BUNDLE_HEADER_PREFIX);
        contents.push_str(&header);
        contents.push('\n');
        contents.push_str(&cert_pem);
        contents.push_str(&ca_pem);
        contents.push_str(&key_pem);

        if let Some(parent) = file.parent() {
            files::ensure_dir(parent, "agent bundle directory")?;
        }
        let mut written = NewFiles::default();
        written.write(file, "agent bundle", contents.as_bytes(), PRIVATE_FILE_MODE)?;
        written.commit();
        Ok(())
    }

    /// Replaces the bundle at `file` with this identity atomically: the new
    /// file is written beside it, made durable, then renamed over it, so a
    /// crash leaves the old identity or the new one, never half of either.
    pub fn replace_bundle(&self, file: &Path) -> Result<(), IdentityFileError> {
        let mut name = file.file_name().unwrap_or_default().to_owned();
        name.push(".new");
        let staged = file.with_file_name(name);
        // A stale one from an interrupted renewal.
        let _ = std::fs::remove_file(&staged);
        self.write_bundle(&staged)?;
        let renamed = std::fs::rename(&staged, file).and_then(|()| {
            match file
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
            {
                Some(parent) => std::fs::File::open(parent)?.sync_all(),
                None => Ok(()),
            }
        });
        renamed.map_err(|err| {
            let _ = std::fs::remove_file(&staged);
            IdentityFileError::from(FileError::io(
                "agent bundle",
                file,
                err,
                "check that the data directory is writable by this user",
            ))
        })
    }

    /// Reads and checks an agent bundle.
    pub fn read_bundle(file: &Path) -> Result<Self, IdentityFileError> {
        const WHAT: &str = "agent bundle";
        let bytes = files::read_private(file, WHAT)?;
        let header = bundle_header(&bytes).ok_or_else(|| {
            FileError::invalid(
                WHAT,
                file,
                format!("no valid `{}` header line", BUNDLE_HEADER_PREFIX.trim()),
                REISSUE_HINT,
            )
        })?;
        if let Some(name) = &header.name {
            check_name("agent name", name).map_err(|err| {
                FileError::invalid(WHAT, file, format!("header: {err}"), REISSUE_HINT)
            })?;
        }
        let mut certs = files::pem_certificates(&bytes, file, WHAT, REISSUE_HINT)?;
        if certs.len() != 2 {
            return Err(FileError::invalid(
                WHAT,
                file,
                format!(
                    "holds {} certificates; expected the agent's then the site CA's",
                    certs.len()
                ),
                REISSUE_HINT,
            )
            .into());
        }
        let ca_cert_der = certs.remove(1);
        let cert_der = certs.remove(0);
        let key_der = files::pem_single_pkcs8_key(&bytes, file, WHAT, REISSUE_HINT)?;

        let leaf = parse_cert(&cert_der, file, WHAT)?;
        let agent_id = cert::agent_id_of(&leaf).map_err(|reason| {
            FileError::invalid(
                WHAT,
                file,
                format!("first certificate is not an agent certificate: {reason}"),
                REISSUE_HINT,
            )
        })?;
        if agent_id != header.agent_id {
            return Err(FileError::invalid(
                WHAT,
                file,
                format!(
                    "header names agent {} but the certificate is for agent {agent_id}",
                    header.agent_id
                ),
                REISSUE_HINT,
            )
            .into());
        }
        check_chain(&leaf, file, &ca_cert_der, file)?;
        check_key(&key_der, file, &leaf, WHAT)?;

        Ok(AgentIdentity {
            agent_id,
            name: header.name,
            cert_der,
            key_der,
            ca_cert_der,
        })
    }
}

/// Whether a PEM file carries the agent bundle header.
pub(crate) fn is_bundle(bytes: &[u8]) -> bool {
    header_line(bytes).is_some()
}

fn header_line(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .take_while(|line| !line.starts_with("-----BEGIN"))
        .find_map(|line| line.strip_prefix(BUNDLE_HEADER_PREFIX))
}

fn bundle_header(bytes: &[u8]) -> Option<BundleHeader> {
    serde_json::from_str(header_line(bytes)?).ok()
}

fn encode_cert(der: &CertificateDer<'_>, what: &'static str) -> Result<String, IdentityFileError> {
    files::certificate_pem(der).map_err(|err| IdentityFileError::Encode {
        what,
        reason: err.to_string(),
    })
}

fn parse_cert<'a>(
    der: &'a CertificateDer<'_>,
    path: &Path,
    what: &'static str,
) -> Result<X509Certificate<'a>, FileError> {
    cert::parse(der).map_err(|err| FileError::invalid(what, path, err.to_string(), REISSUE_HINT))
}

/// The CA certificate must be a CA and must have signed `leaf`.
fn check_chain(
    leaf: &X509Certificate<'_>,
    leaf_path: &Path,
    ca_der: &CertificateDer<'_>,
    ca_path: &Path,
) -> Result<(), FileError> {
    let ca = parse_cert(ca_der, ca_path, "site CA certificate")?;
    if !cert::is_ca(&ca).unwrap_or(false) {
        return Err(FileError::invalid(
            "site CA certificate",
            ca_path,
            "not a CA certificate",
            REISSUE_HINT,
        ));
    }
    if !cert::is_signed_by(leaf, &ca) {
        return Err(FileError::invalid(
            "certificate",
            leaf_path,
            format!(
                "was not issued by the site CA in {}; the files come from different sites",
                ca_path.display()
            ),
            REISSUE_HINT,
        ));
    }
    Ok(())
}

/// The key must be a P-256 PKCS#8 key whose public half is in `leaf`.
fn check_key(
    key_der: &PrivatePkcs8KeyDer<'_>,
    key_path: &Path,
    leaf: &X509Certificate<'_>,
    what: &'static str,
) -> Result<(), FileError> {
    let key =
        KeyPair::from_pkcs8_der_and_sign_algo(key_der, &PKCS_ECDSA_P256_SHA256).map_err(|_| {
            FileError::invalid(
                what,
                key_path,
                "not an ECDSA P-256 private key",
                REISSUE_HINT,
            )
        })?;
    if key.public_key_raw() != leaf.public_key().subject_public_key.data.as_ref() {
        return Err(FileError::invalid(
            what,
            key_path,
            "the private key does not belong to the certificate",
            REISSUE_HINT,
        ));
    }
    Ok(())
}
