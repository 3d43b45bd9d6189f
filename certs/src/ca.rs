//! The site certificate authority: creating it, opening it, and issuing
//! console and agent certificates.
//!
//! A site directory holds three files:
//! - `ca.cert.pem`: the CA certificate (mode 0644);
//! - `ca.key.pem`: the CA key as PKCS#8 PEM (`PRIVATE KEY`), or, when a
//!   passphrase is given, encrypted PKCS#8 PEM (`ENCRYPTED PRIVATE KEY`,
//!   PBES2 with scrypt N=2^14 r=8 p=1 and AES-256-CBC) (mode 0600);
//! - `site.json`: `{"name", "created" (RFC 3339), "ca_fingerprint_sha256"}`.
//!
//! Certificates are ECDSA P-256 with random 128-bit serial numbers, explicit
//! validity, explicit key usage and extended key usage; nothing is copied
//! from a request.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::RngCore;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SigningKey,
    PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::cert::{self, agent_server_name, console_uri, fingerprint_der};
use crate::files::{self, FileError, FileProblem, NewFiles, PRIVATE_FILE_MODE, PUBLIC_FILE_MODE};
use crate::identity::{AgentIdentity, ConsoleIdentity};
use crate::role::Role;

/// File name of the CA certificate inside a site directory.
pub const CA_CERT_FILE: &str = "ca.cert.pem";
/// File name of the CA key inside a site directory.
pub const CA_KEY_FILE: &str = "ca.key.pem";
/// File name of the site description inside a site directory.
pub const SITE_FILE: &str = "site.json";
/// Environment variable the command-line tool reads the CA passphrase from.
pub const PASSPHRASE_ENV: &str = "SMARTTRACKER_CA_PASSPHRASE";

/// Default lifetime of a site CA.
pub const CA_VALIDITY_DAYS: u32 = 3650;
/// Default lifetime of an agent certificate.
pub const AGENT_VALIDITY_DAYS: u32 = 730;
/// Default lifetime of a console certificate.
pub const CONSOLE_VALIDITY_DAYS: u32 = 365;
/// Certificates start this long before "now" so a peer whose clock is a
/// little behind still accepts them.
pub const CLOCK_SKEW_ALLOWANCE_MINUTES: i64 = 5;
/// Longest site, console or agent name, in characters (X.520 ub-common-name).
pub const MAX_NAME_CHARS: usize = 64;

const ENCRYPTED_KEY_LABEL: &str = "ENCRYPTED PRIVATE KEY";
const PLAIN_KEY_LABEL: &str = "PRIVATE KEY";
const RESTORE_HINT: &str = "restore it from a backup of the site directory";

/// When a certificate is valid, both ends inclusive, at second precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from `now` minus the clock-skew allowance until `days` after
    /// `now`, in UTC and truncated to whole seconds (what X.509 can hold).
    /// An end beyond year 9999 is clamped to the last second of 9999.
    pub fn days_from(now: OffsetDateTime, days: u32) -> Self {
        let now = whole_seconds(now.to_offset(UtcOffset::UTC));
        let latest = whole_seconds(PrimitiveDateTime::MAX.assume_utc());
        Validity {
            not_before: now
                .checked_sub(Duration::minutes(CLOCK_SKEW_ALLOWANCE_MINUTES))
                .unwrap_or(now),
            not_after: now
                .checked_add(Duration::days(i64::from(days)))
                .map_or(latest, |end| end.min(latest)),
        }
    }

    fn check(&self) -> Result<(), ValidityError> {
        if self.not_after <= self.not_before {
            return Err(ValidityError::Empty {
                not_before: self.not_before,
                not_after: self.not_after,
            });
        }
        Ok(())
    }
}

fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at - Duration::nanoseconds(i64::from(at.nanosecond()))
}

/// A validity period that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidityError {
    #[error(
        "validity ends ({not_after}) before it starts ({not_before}); ask for at least one day"
    )]
    Empty {
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    },
    #[error("validity would end ({not_after}) after the site CA expires ({ca_not_after}); ask for fewer days or create a new site")]
    OutlivesCa {
        not_after: OffsetDateTime,
        ca_not_after: OffsetDateTime,
    },
}

/// A site, console or agent name that cannot go in a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {name:?}: {reason}; use 1 to {MAX_NAME_CHARS} printable characters")]
pub struct NameError {
    pub what: &'static str,
    pub name: String,
    pub reason: &'static str,
}

pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    let reason = if name.trim().is_empty() {
        Some("it is empty")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some("it is too long")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else if name.trim() != name {
        Some("it starts or ends with white space")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(NameError {
            what,
            name: name.to_owned(),
            reason,
        }),
    }
}

/// Why a site CA could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Validity(#[from] ValidityError),
    #[error("a site already exists here, {}: refusing to overwrite it; choose another --site directory", path.display())]
    SiteExists { path: PathBuf },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot generate the site CA: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read the system random generator: {0}")]
    Random(#[from] rand::Error),
    #[error("cannot encode the site CA key: {0}")]
    Encode(String),
}

/// Why an existing site CA could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no site at {}: the directory does not exist; run `smarttracker-certs init --site {} --name NAME` or pass the right --site", dir.display(), dir.display())]
    NoSite { dir: PathBuf },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("site CA key {}: it is encrypted and no passphrase was given; set {PASSPHRASE_ENV}", path.display())]
    PassphraseRequired { path: PathBuf },
    #[error("site CA key {}: wrong passphrase or corrupt PEM; check {PASSPHRASE_ENV}", path.display())]
    WrongPassphrase { path: PathBuf },
    #[error("site CA key {} does not belong to certificate {}: the files come from different sites; {RESTORE_HINT}", key.display(), cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("site file {} records CA fingerprint {recorded} but {} has {actual}: the files come from different sites; {RESTORE_HINT}", site.display(), cert.display())]
    FingerprintMismatch {
        site: PathBuf,
        cert: PathBuf,
        recorded: String,
        actual: String,
    },
    #[error("site CA certificate {}: cannot be used to issue ({reason}); {RESTORE_HINT}", path.display())]
    Issuer { path: PathBuf, reason: String },
}

/// Why a certificate could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Validity(#[from] ValidityError),
    #[error("cannot build the certificate: {0}")]
    Build(#[from] rcgen::Error),
    #[error("cannot read the system random generator: {0}")]
    Random(#[from] rand::Error),
    #[error(transparent)]
    Registry(#[from] FileError),
}

/// `site.json`.
#[derive(Debug, Serialize, Deserialize)]
struct SiteFile {
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    ca_fingerprint_sha256: String,
}

/// An open site CA, able to issue certificates.
pub struct SiteCa {
    dir: PathBuf,
    name: String,
    cert_der: CertificateDer<'static>,
    not_after: OffsetDateTime,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for SiteCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteCa")
            .field("name", &self.name)
            .field("fingerprint", &self.fingerprint())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl SiteCa {
    /// Creates a new site in `dir` (created with mode 0700 if missing):
    /// a self-signed P-256 CA (pathlen 0, keyCertSign + cRLSign), its key
    /// (encrypted when `passphrase` is non-empty) and `site.json`.
    /// Refuses if `dir` already holds any site file; on failure nothing is
    /// left behind.
    pub fn init(
        dir: &Path,
        name: &str,
        passphrase: Option<&str>,
        validity: Validity,
    ) -> Result<SiteCa, InitError> {
        check_name("site name", name)?;
        validity.check()?;
        let key_path = dir.join(CA_KEY_FILE);
        let cert_path = dir.join(CA_CERT_FILE);
        let site_path = dir.join(SITE_FILE);
        for path in [&key_path, &cert_path, &site_path] {
            match files::refuse_existing(path, "site file") {
                Ok(()) => {}
                Err(FileError {
                    problem: FileProblem::AlreadyExists,
                    ..
                }) => return Err(InitError::SiteExists { path: path.clone() }),
                Err(err) => return Err(err.into()),
            }
        }

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&format!("{name} site CA"), name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.extended_key_usages = Vec::new();
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key)?;
        let cert_der = cert.der().clone();

        let key_pem = match passphrase.filter(|p| !p.is_empty()) {
            Some(passphrase) => Zeroizing::new(encrypt_key(&key, passphrase)?),
            None => Zeroizing::new(key.serialize_pem()),
        };
        let site = SiteFile {
            name: name.to_owned(),
            created: OffsetDateTime::now_utc(),
            ca_fingerprint_sha256: fingerprint_der(&cert_der),
        };
        let mut site_json = serde_json::to_string_pretty(&site)
            .map_err(|err| InitError::Encode(err.to_string()))?;
        site_json.push('\n');

        files::ensure_dir(dir, "site directory")?;
        let mut written = NewFiles::default();
        written.write(
            &key_path,
            "site CA key",
            key_pem.as_bytes(),
            PRIVATE_FILE_MODE,
        )?;
        written.write(
            &cert_path,
            "site CA certificate",
            cert.pem().as_bytes(),
            PUBLIC_FILE_MODE,
        )?;
        // Written last: a directory with site.json is a complete site.
        written.write(
            &site_path,
            "site file",
            site_json.as_bytes(),
            PUBLIC_FILE_MODE,
        )?;
        written.commit();

        Ok(SiteCa {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            cert_der,
            not_after: validity.not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// Opens the site in `dir`. `passphrase` is needed when the key is
    /// encrypted; an empty passphrase counts as none. Checks that the key,
    /// certificate and `site.json` belong together.
    pub fn open(dir: &Path, passphrase: Option<&str>) -> Result<SiteCa, OpenError> {
        if !dir.is_dir() {
            return Err(OpenError::NoSite {
                dir: dir.to_path_buf(),
            });
        }
        let site_path = dir.join(SITE_FILE);
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);

        let site_bytes = files::read(&site_path, "site file")?;
        let site: SiteFile = serde_json::from_slice(&site_bytes).map_err(|err| {
            FileError::invalid(
                "site file",
                &site_path,
                format!("not a valid site.json ({err})"),
                RESTORE_HINT,
            )
        })?;

        let cert_bytes = files::read(&cert_path, "site CA certificate")?;
        let cert_der = files::pem_single_certificate(
            &cert_bytes,
            &cert_path,
            "site CA certificate",
            RESTORE_HINT,
        )?;
        let parsed = cert::parse(&cert_der).map_err(|err| {
            FileError::invalid(
                "site CA certificate",
                &cert_path,
                err.to_string(),
                RESTORE_HINT,
            )
        })?;
        if !cert::is_ca(&parsed).unwrap_or(false) {
            return Err(FileError::invalid(
                "site CA certificate",
                &cert_path,
                "not a CA certificate",
                RESTORE_HINT,
            )
            .into());
        }
        let actual = fingerprint_der(&cert_der);
        if !site.ca_fingerprint_sha256.eq_ignore_ascii_case(&actual) {
            return Err(OpenError::FingerprintMismatch {
                site: site_path,
                cert: cert_path,
                recorded: site.ca_fingerprint_sha256,
                actual,
            });
        }

        let key_bytes = files::read_private(&key_path, "site CA key")?;
        let key_text = files::read_text(key_bytes, &key_path, "site CA key")?;
        let key = decode_ca_key(&key_text, &key_path, passphrase.filter(|p| !p.is_empty()))?;
        if key.public_key_raw() != parsed.public_key().subject_public_key.data.as_ref() {
            return Err(OpenError::KeyMismatch {
                key: key_path,
                cert: cert_path,
            });
        }
        let not_after = parsed.validity().not_after.to_datetime();

        let issuer = Issuer::from_ca_cert_der(&cert_der, key).map_err(|err| OpenError::Issuer {
            path: cert_path,
            reason: err.to_string(),
        })?;
        Ok(SiteCa {
            dir: dir.to_path_buf(),
            name: site.name,
            cert_der,
            not_after,
            issuer,
        })
    }

    /// The site name given at `init`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert_der.clone()
    }

    /// Hex SHA-256 of the CA certificate DER.
    pub fn fingerprint(&self) -> String {
        fingerprint_der(&self.cert_der)
    }

    /// When the CA certificate expires; no certificate it issues outlives it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// A leaf's validity: `days` from `now` ([`Validity::days_from`]),
    /// ending no later than this CA does.
    pub fn leaf_validity(&self, now: OffsetDateTime, days: u32) -> Validity {
        let validity = Validity::days_from(now, days);
        Validity {
            not_after: validity.not_after.min(self.not_after),
            ..validity
        }
    }

    /// Issues a console certificate with a fresh key and a fresh console id:
    /// EKU clientAuth only, one URI SAN `urn:smarttracker:console:<role>:<id>`,
    /// subject CN = `name`.
    pub fn issue_console(
        &self,
        role: Role,
        name: &str,
        validity: Validity,
    ) -> Result<ConsoleIdentity, IssueError> {
        self.issue_console_in_team(role, name, None, validity)
    }

    /// [`SiteCa::issue_console`] limited to `team` when given: a second
    /// URI SAN `urn:smarttracker:team:<team>`; agents then serve it only
    /// if their own certificate names the same team.
    pub fn issue_console_in_team(
        &self,
        role: Role,
        name: &str,
        team: Option<&str>,
        validity: Validity,
    ) -> Result<ConsoleIdentity, IssueError> {
        check_name("console name", name)?;
        let console_id = Uuid::new_v4();
        let mut sans = vec![SanType::URI(Ia5String::try_from(console_uri(
            role, console_id,
        ))?)];
        sans.extend(team_san(team)?);
        let (cert_der, key_der) =
            self.issue_leaf(name, sans, ExtendedKeyUsagePurpose::ClientAuth, validity)?;
        crate::registry::record(
            &self.dir,
            &crate::registry::IssuedConsole {
                console_id,
                role,
                name: name.to_owned(),
                team: team.map(str::to_owned),
                fingerprint: fingerprint_der(&cert_der),
                not_after: validity.not_after,
                issued: OffsetDateTime::now_utc(),
            },
        )?;
        Ok(ConsoleIdentity {
            console_id,
            role,
            name: name.to_owned(),
            cert_der,
            key_der,
            ca_cert_der: self.cert_der(),
        })
    }

    /// Issues an agent certificate with a fresh key and a fresh random agent
    /// id: EKU serverAuth only, one DNS SAN `<id>.agent.smarttracker`. The
    /// host `name`, if given, goes in the subject CN only.
    pub fn issue_agent(
        &self,
        name: Option<&str>,
        validity: Validity,
    ) -> Result<AgentIdentity, IssueError> {
        self.issue_agent_in_team(name, None, validity)
    }

    /// [`SiteCa::issue_agent`] with the workstation in `team` when given
    /// (a second URI SAN, see [`SiteCa::issue_console_in_team`]).
    pub fn issue_agent_in_team(
        &self,
        name: Option<&str>,
        team: Option<&str>,
        validity: Validity,
    ) -> Result<AgentIdentity, IssueError> {
        if let Some(name) = name {
            check_name("agent name", name)?;
        }
        let agent_id = Uuid::new_v4();
        let common_name = name.map_or_else(|| format!("agent {agent_id}"), str::to_owned);
        let (cert_der, key_der) = self.issue_leaf(
            &common_name,
            agent_sans(agent_id, team)?,
            ExtendedKeyUsagePurpose::ServerAuth,
            validity,
        )?;
        Ok(AgentIdentity {
            agent_id,
            name: name.map(str::to_owned),
            cert_der,
            key_der,
            ca_cert_der: self.cert_der(),
        })
    }

    fn issue_leaf(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> Result<(CertificateDer<'static>, PrivatePkcs8KeyDer<'static>), IssueError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert_der = self.sign_leaf(&key, common_name, sans, usage, validity)?;
        Ok((cert_der, PrivatePkcs8KeyDer::from(key.serialize_der())))
    }

    /// Signs a leaf certificate for `public_key` with only the names,
    /// usages and validity given here: nothing comes from a request.
    pub(crate) fn sign_leaf(
        &self,
        public_key: &impl PublicKeyData,
        common_name: &str,
        sans: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> Result<CertificateDer<'static>, IssueError> {
        validity.check()?;
        if validity.not_after > self.not_after {
            return Err(ValidityError::OutlivesCa {
                not_after: validity.not_after,
                ca_not_after: self.not_after,
            }
            .into());
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name, &self.name);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.serial_number = Some(random_serial()?);
        let cert = params.signed_by(public_key, &self.issuer)?;
        Ok(cert.der().clone())
    }

    /// Signs `message` with the site CA's key (ECDSA P-256, SHA-256, ASN.1
    /// DER signature): what agents check the deny-list with.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, IssueError> {
        Ok(self.issuer.key().sign(message)?)
    }
}

/// The names of an agent certificate: its id, and its team when given.
pub(crate) fn agent_sans(agent_id: Uuid, team: Option<&str>) -> Result<Vec<SanType>, IssueError> {
    let mut sans = vec![SanType::DnsName(Ia5String::try_from(agent_server_name(
        agent_id,
    ))?)];
    sans.extend(team_san(team)?);
    Ok(sans)
}

/// The team URI SAN, checked.
fn team_san(team: Option<&str>) -> Result<Option<SanType>, IssueError> {
    let Some(team) = team else {
        return Ok(None);
    };
    cert::check_team(team).map_err(|reason| NameError {
        what: "team name",
        name: team.to_owned(),
        reason,
    })?;
    Ok(Some(SanType::URI(Ia5String::try_from(cert::team_uri(
        team,
    ))?)))
}

/// The CA certificate of the site in `dir` (DER), without opening its key.
pub fn read_ca_certificate(dir: &Path) -> Result<CertificateDer<'static>, FileError> {
    let path = dir.join(CA_CERT_FILE);
    let bytes = files::read(&path, "site CA certificate")?;
    files::pem_single_certificate(&bytes, &path, "site CA certificate", RESTORE_HINT)
}

fn distinguished_name(common_name: &str, organization: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, organization);
    dn
}

/// 128 random bits, positive, with the top byte non-zero so the encoded
/// length is always 16 bytes.
fn random_serial() -> Result<SerialNumber, rand::Error> {
    let mut bytes = [0u8; 16];
    OsRng.try_fill_bytes(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB), the interactive-use
/// parameters, and within OpenSSL's default scrypt memory limit so
/// `openssl pkey` can read the key too.
const SCRYPT_LOG_N: u8 = 14;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const AES_256_KEY_BYTES: usize = 32;

fn encrypt_key(key: &KeyPair, passphrase: &str) -> Result<String, InitError> {
    use pkcs8::pkcs5::{pbes2, scrypt};

    let encode = |err: &dyn fmt::Display| InitError::Encode(err.to_string());
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    OsRng.try_fill_bytes(&mut salt)?;
    OsRng.try_fill_bytes(&mut iv)?;
    let cost = scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, AES_256_KEY_BYTES)
        .map_err(|err| encode(&err))?;
    let params =
        pbes2::Parameters::scrypt_aes256cbc(cost, &salt, &iv).map_err(|err| encode(&err))?;
    let der = key.serialize_der();
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).map_err(|err| encode(&err))?;
    let encrypted = info
        .encrypt_with_params(params, passphrase.as_bytes())
        .map_err(|err| encode(&err))?;
    let pem = encrypted
        .to_pem(ENCRYPTED_KEY_LABEL, pkcs8::LineEnding::LF)
        .map_err(|err| encode(&err))?;
    Ok(pem.to_string())
}

fn decode_ca_key(text: &str, path: &Path, passphrase: Option<&str>) -> Result<KeyPair, OpenError> {
    let corrupt = |reason: String| {
        OpenError::from(FileError::invalid(
            "site CA key",
            path,
            reason,
            RESTORE_HINT,
        ))
    };
    let (label, document) = pkcs8::SecretDocument::from_pem(text)
        .map_err(|err| corrupt(format!("corrupt PEM ({err})")))?;
    let plain = match label {
        ENCRYPTED_KEY_LABEL => {
            let passphrase = passphrase.ok_or_else(|| OpenError::PassphraseRequired {
                path: path.to_path_buf(),
            })?;
            let wrong = || OpenError::WrongPassphrase {
                path: path.to_path_buf(),
            };
            pkcs8::EncryptedPrivateKeyInfo::try_from(document.as_bytes())
                .map_err(|_| wrong())?
                .decrypt(passphrase.as_bytes())
                .map_err(|_| wrong())?
        }
        PLAIN_KEY_LABEL => document,
        other => {
            return Err(corrupt(format!(
                "holds a {other:?} PEM block, not a PKCS#8 private key"
            )))
        }
    };
    // A wrong passphrase can, rarely, decrypt to bytes with valid padding;
    // they then fail here.
    pkcs8::PrivateKeyInfo::try_from(plain.as_bytes()).map_err(|_| match label {
        ENCRYPTED_KEY_LABEL => OpenError::WrongPassphrase {
            path: path.to_path_buf(),
        },
        _ => corrupt("not a PKCS#8 private key".to_owned()),
    })?;
    let der = PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec());
    KeyPair::from_pkcs8_der_and_sign_algo(&der, &PKCS_ECDSA_P256_SHA256).map_err(|_| match label {
        ENCRYPTED_KEY_LABEL => OpenError::WrongPassphrase {
            path: path.to_path_buf(),
        },
        _ => corrupt("not an ECDSA P-256 private key".to_owned()),
    })
}

/// A throw-away site for the unit tests of this crate.
#[cfg(test)]
pub(crate) fn test_site(name: &str) -> (tempfile::TempDir, SiteCa) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = SiteCa::init(
        &dir.path().join("site"),
        name,
        None,
        Validity::days_from(OffsetDateTime::now_utc(), 30),
    )
    .expect("site");
    (dir, ca)
}
