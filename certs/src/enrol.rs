//! Enrolment by code: the agent makes its own key and gets it certified by a
//! console that holds the site CA, without any private key changing hands.
//!
//! - [`EnrolmentCode`]: what a person types or a script passes. 20 bytes in
//!   Crockford base32 (32 characters in groups of four): a 9-byte one-time
//!   secret, the first 9 bytes of the site CA certificate's SHA-256 (the
//!   agent pins the CA with it) and a 2-byte check that catches typos.
//! - The channel: TLS 1.3 over QUIC, ALPN [`ENROL_ALPN`]. The console serves
//!   a short-lived certificate for [`ENROLMENT_SERVER_NAME`] signed by the
//!   site CA, and sends the CA certificate in its chain; the agent accepts
//!   the chain only if that CA's fingerprint starts with the code's prefix
//!   (`enrolment_client_config`). The agent presents no certificate.
//! - The proof: HMAC-SHA256 keyed by the secret over the channel's TLS
//!   exporter and the SHA-256 of the CSR ([`proof`]). The code itself never
//!   travels, and a proof is worth nothing on another channel or for
//!   another key.
//! - The certificate: [`SiteCa::sign_agent_request`] takes only the public
//!   key from the CSR (whose signature must verify) and signs it with the
//!   agent extensions chosen here: serverAuth, a fresh agent UUID in the
//!   DNS SAN, the host name in the CN.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use rand::rngs::OsRng;
use rand::RngCore;
use rcgen::string::Ia5String;
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, ExtendedKeyUsagePurpose, KeyPair,
    PublicKeyData, SanType, PKCS_ECDSA_P256_SHA256,
};
use ring::hmac;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{
    CertificateDer, CertificateSigningRequestDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
    UnixTime,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ca::{agent_sans, check_name, IssueError, SiteCa, Validity};
use crate::cert;
use crate::tls::{provider, site_roots, AgentPin, TlsConfigError};

/// ALPN of the enrolment channel (never the data protocol's).
pub const ENROL_ALPN: &[u8] = b"smarttracker-enrol/1";
/// The DNS name of a console's enrolment certificate.
pub const ENROLMENT_SERVER_NAME: &str = "enrolment.smarttracker";
/// Label of the TLS exporter the proof is bound to.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-smarttracker-enrolment";
/// Bytes of the exporter output and of a proof.
pub const PROOF_BYTES: usize = 32;
/// Bytes of the one-time secret in a code.
pub const SECRET_BYTES: usize = 9;
/// Bytes of the CA fingerprint prefix in a code.
pub const CA_PREFIX_BYTES: usize = 9;
/// DNS-SD service type of a console's open enrolment; its TXT `ca` is
/// the hex CA prefix of the code it takes.
pub const ENROL_SERVICE_TYPE: &str = "_st-enrol._udp.local.";
/// TXT key of the CA prefix in an enrolment advert.
pub const ENROL_TXT_CA: &str = "ca";
/// The largest CSR a console reads (DER).
pub const MAX_CSR_BYTES: usize = 4096;

const CHECK_BYTES: usize = 2;
const CODE_BYTES: usize = SECRET_BYTES + CA_PREFIX_BYTES + CHECK_BYTES;
const CODE_CHARS: usize = CODE_BYTES * 8 / 5;
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CHECK_DOMAIN: &[u8] = b"smarttracker enrolment code v1";
const PROOF_DOMAIN: &[u8] = b"smarttracker enrolment proof v1";

/// A one-time enrolment code.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrolmentCode {
    secret: [u8; SECRET_BYTES],
    ca_prefix: [u8; CA_PREFIX_BYTES],
}

impl fmt::Debug for EnrolmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrolmentCode")
            .field("ca_prefix", &hex::encode(self.ca_prefix))
            .finish_non_exhaustive()
    }
}

/// Why a typed code is not an enrolment code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("an enrolment code has {CODE_CHARS} letters and digits (dashes and spaces do not count); this one has {found}: copy it again from the console")]
    Length { found: usize },
    #[error("{0:?} cannot be in an enrolment code (it uses digits and the letters A-Z without I, L, O, U): copy it again from the console")]
    Character(char),
    #[error(
        "this enrolment code has a typo (its check does not match): copy it again from the console"
    )]
    Check,
}

impl EnrolmentCode {
    /// A fresh code for the site whose CA certificate is `ca_cert_der`.
    pub fn generate(ca_cert_der: &[u8]) -> Result<EnrolmentCode, rand::Error> {
        let mut secret = [0u8; SECRET_BYTES];
        OsRng.try_fill_bytes(&mut secret)?;
        Ok(EnrolmentCode {
            secret,
            ca_prefix: ca_prefix_of(ca_cert_der),
        })
    }

    /// The first bytes of the pinned CA's certificate fingerprint.
    pub fn ca_prefix(&self) -> [u8; CA_PREFIX_BYTES] {
        self.ca_prefix
    }

    /// Whether `ca_cert_der` is the CA this code pins.
    pub fn pins(&self, ca_cert_der: &[u8]) -> bool {
        ca_prefix_of(ca_cert_der) == self.ca_prefix
    }

    /// The proof an agent sends on a channel whose exporter output is
    /// `exporter`, for the CSR `csr_der`.
    pub fn proof(&self, exporter: &[u8; PROOF_BYTES], csr_der: &[u8]) -> [u8; PROOF_BYTES] {
        let tag = hmac::sign(&self.proof_key(), &proof_message(exporter, csr_der));
        let mut proof = [0u8; PROOF_BYTES];
        proof.copy_from_slice(tag.as_ref());
        proof
    }

    /// Whether `proof` was made with this code on this channel for this
    /// CSR (constant time).
    pub fn verify(&self, exporter: &[u8; PROOF_BYTES], csr_der: &[u8], proof: &[u8]) -> bool {
        hmac::verify(&self.proof_key(), &proof_message(exporter, csr_der), proof).is_ok()
    }

    fn proof_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.secret)
    }

    fn bytes(&self) -> [u8; CODE_BYTES] {
        let mut bytes = [0u8; CODE_BYTES];
        bytes[..SECRET_BYTES].copy_from_slice(&self.secret);
        bytes[SECRET_BYTES..SECRET_BYTES + CA_PREFIX_BYTES].copy_from_slice(&self.ca_prefix);
        let check = check_of(&bytes[..SECRET_BYTES + CA_PREFIX_BYTES]);
        bytes[SECRET_BYTES + CA_PREFIX_BYTES..].copy_from_slice(&check);
        bytes
    }
}

fn ca_prefix_of(ca_cert_der: &[u8]) -> [u8; CA_PREFIX_BYTES] {
    let digest = Sha256::digest(ca_cert_der);
    let mut prefix = [0u8; CA_PREFIX_BYTES];
    prefix.copy_from_slice(&digest[..CA_PREFIX_BYTES]);
    prefix
}

fn check_of(payload: &[u8]) -> [u8; CHECK_BYTES] {
    let digest = Sha256::new()
        .chain_update(CHECK_DOMAIN)
        .chain_update(payload)
        .finalize();
    [digest[0], digest[1]]
}

fn proof_message(exporter: &[u8; PROOF_BYTES], csr_der: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(PROOF_DOMAIN.len() + PROOF_BYTES * 2);
    message.extend_from_slice(PROOF_DOMAIN);
    message.extend_from_slice(exporter);
    message.extend_from_slice(&Sha256::digest(csr_der));
    message
}

/// Groups of four characters joined by dashes.
impl fmt::Display for EnrolmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.bytes();
        let mut bits = 0u32;
        let mut held = 0u32;
        let mut written = 0usize;
        for byte in bytes {
            bits = (bits << 8) | u32::from(byte);
            held += 8;
            while held >= 5 {
                held -= 5;
                if written > 0 && written.is_multiple_of(4) {
                    f.write_str("-")?;
                }
                let index = ((bits >> held) & 31) as usize;
                write!(f, "{}", char::from(CROCKFORD[index]))?;
                written += 1;
            }
        }
        Ok(())
    }
}

/// Case-insensitive; dashes and spaces are ignored; O reads as 0, I and L
/// as 1 (Crockford).
impl FromStr for EnrolmentCode {
    type Err = CodeError;

    fn from_str(text: &str) -> Result<EnrolmentCode, CodeError> {
        let mut values = Vec::with_capacity(CODE_CHARS);
        for c in text.chars().filter(|c| !matches!(c, '-' | ' ' | '\t')) {
            let value = match c.to_ascii_uppercase() {
                'O' => 0,
                'I' | 'L' => 1,
                upper => CROCKFORD
                    .iter()
                    .position(|&known| char::from(known) == upper)
                    .ok_or(CodeError::Character(c))?,
            };
            if values.len() == CODE_CHARS {
                return Err(CodeError::Length {
                    found: values.len() + 1,
                });
            }
            values.push(value as u32);
        }
        if values.len() != CODE_CHARS {
            return Err(CodeError::Length {
                found: values.len(),
            });
        }
        let mut bytes = [0u8; CODE_BYTES];
        let mut bits = 0u32;
        let mut held = 0u32;
        let mut at = 0usize;
        for value in values {
            bits = (bits << 5) | value;
            held += 5;
            if held >= 8 {
                held -= 8;
                bytes[at] = ((bits >> held) & 0xff) as u8;
                at += 1;
            }
        }
        let payload = SECRET_BYTES + CA_PREFIX_BYTES;
        if check_of(&bytes[..payload]) != bytes[payload..] {
            return Err(CodeError::Check);
        }
        let mut secret = [0u8; SECRET_BYTES];
        let mut ca_prefix = [0u8; CA_PREFIX_BYTES];
        secret.copy_from_slice(&bytes[..SECRET_BYTES]);
        ca_prefix.copy_from_slice(&bytes[SECRET_BYTES..payload]);
        Ok(EnrolmentCode { secret, ca_prefix })
    }
}

/// Why a CSR was not signed.
#[derive(Debug, thiserror::Error)]
pub enum SignRequestError {
    #[error("the certificate request is larger than {MAX_CSR_BYTES} bytes")]
    TooLarge,
    #[error("the certificate request is not a valid, self-signed PKCS#10 request: {0}")]
    Invalid(rcgen::Error),
    #[error("the certificate request's key is not ECDSA P-256")]
    KeyAlgorithm,
    #[error(transparent)]
    Issue(#[from] IssueError),
}

/// An agent's new key and the request that carries its public half.
pub struct AgentKeyRequest {
    pub key_der: PrivatePkcs8KeyDer<'static>,
    pub csr_der: Vec<u8>,
    /// SHA-256 of the public key (what the certificate must carry).
    pub spki_sha256: [u8; 32],
}

impl fmt::Debug for AgentKeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentKeyRequest")
            .field("spki_sha256", &hex::encode(self.spki_sha256))
            .finish_non_exhaustive()
    }
}

impl AgentKeyRequest {
    /// A fresh P-256 key and a CSR signed with it (its subject is ignored
    /// by consoles).
    pub fn generate() -> Result<AgentKeyRequest, rcgen::Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let csr = CertificateParams::default().serialize_request(&key)?;
        Ok(AgentKeyRequest {
            spki_sha256: Sha256::digest(key.subject_public_key_info()).into(),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
            csr_der: csr.der().to_vec(),
        })
    }

    /// Whether `cert_der` is an agent certificate for this key; its agent id.
    pub fn accepts(&self, cert_der: &[u8]) -> Option<Uuid> {
        let pin = AgentPin::of_certificate(cert_der).ok()?;
        let parsed = cert::parse(cert_der).ok()?;
        let spki: [u8; 32] = Sha256::digest(parsed.public_key().raw).into();
        (spki == self.spki_sha256).then_some(pin.agent_id)
    }
}

impl SiteCa {
    /// Signs the public key of an agent's CSR: a fresh agent id, serverAuth
    /// only, DNS SAN `<id>.agent.smarttracker`, CN `name` when it is a
    /// valid name (else `agent <id>`). Nothing else of the CSR is used.
    pub fn sign_agent_request(
        &self,
        csr_der: &[u8],
        name: Option<&str>,
        team: Option<&str>,
        validity: Validity,
    ) -> Result<(Uuid, CertificateDer<'static>), SignRequestError> {
        self.sign_agent_key(csr_der, Uuid::new_v4(), (name, team), validity)
    }

    /// Renewal: signs the public key of `csr_der` for the enrolled agent
    /// `agent_id` (same extensions as [`SiteCa::sign_agent_request`]).
    pub fn renew_agent_request(
        &self,
        csr_der: &[u8],
        agent_id: Uuid,
        (name, team): (Option<&str>, Option<&str>),
        validity: Validity,
    ) -> Result<CertificateDer<'static>, SignRequestError> {
        Ok(self
            .sign_agent_key(csr_der, agent_id, (name, team), validity)?
            .1)
    }

    fn sign_agent_key(
        &self,
        csr_der: &[u8],
        agent_id: Uuid,
        (name, team): (Option<&str>, Option<&str>),
        validity: Validity,
    ) -> Result<(Uuid, CertificateDer<'static>), SignRequestError> {
        if csr_der.len() > MAX_CSR_BYTES {
            return Err(SignRequestError::TooLarge);
        }
        let request =
            CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
                .map_err(SignRequestError::Invalid)?;
        if request.public_key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(SignRequestError::KeyAlgorithm);
        }
        let sans = agent_sans(agent_id, team)?;
        let common_name = name
            .filter(|name| check_name("agent name", name).is_ok())
            .map_or_else(|| format!("agent {agent_id}"), str::to_owned);
        let cert_der = self.sign_leaf(
            &request.public_key,
            &common_name,
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
            validity,
        )?;
        Ok((agent_id, cert_der))
    }

    /// The certificate and key a console serves enrolments with:
    /// serverAuth, DNS SAN [`ENROLMENT_SERVER_NAME`], valid for `validity`.
    pub fn issue_enrolment_server(
        &self,
        validity: Validity,
    ) -> Result<(CertificateDer<'static>, PrivatePkcs8KeyDer<'static>), IssueError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let san = SanType::DnsName(Ia5String::try_from(ENROLMENT_SERVER_NAME)?);
        let cert_der = self.sign_leaf(
            &key,
            &format!("{} enrolment", self.name()),
            vec![san],
            ExtendedKeyUsagePurpose::ServerAuth,
            validity,
        )?;
        Ok((cert_der, PrivatePkcs8KeyDer::from(key.serialize_der())))
    }
}

/// Whether a certificate valid from `not_before` to `not_after` is due for
/// renewal at `now`: less than a third of its validity is left (or it
/// already expired, or its dates make no sense).
pub fn renewal_due(
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
    now: time::OffsetDateTime,
) -> bool {
    let total = not_after - not_before;
    let left = not_after - now;
    total <= time::Duration::ZERO || left * 3 < total
}

/// The console's enrolment server configuration: its enrolment
/// certificate with the CA certificate in the chain (the agent pins it by
/// fingerprint), no client certificate asked for.
pub fn enrolment_server_config(
    cert_der: CertificateDer<'static>,
    key_der: PrivatePkcs8KeyDer<'static>,
    ca_cert_der: CertificateDer<'static>,
) -> Result<ServerConfig, TlsConfigError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsConfigError::Versions)?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der, ca_cert_der], PrivateKeyDer::Pkcs8(key_der))
        .map_err(TlsConfigError::Identity)?;
    config.alpn_protocols = vec![ENROL_ALPN.to_vec()];
    config.max_early_data_size = 0;
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// Where the agent's verifier leaves what it found: the site CA
/// certificate it pinned, or that the console is of another site.
#[derive(Debug, Clone, Default)]
pub struct PinnedCa(Arc<Mutex<Option<Result<CertificateDer<'static>, OtherSite>>>>);

impl PinnedCa {
    /// What the last handshake's verifier found, if it ran.
    pub fn take(&self) -> Option<Result<CertificateDer<'static>, OtherSite>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn put(&self, found: Result<CertificateDer<'static>, OtherSite>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(found);
    }
}

/// The agent's enrolment client configuration: the console must present
/// [`ENROLMENT_SERVER_NAME`] chained to a CA in its chain whose
/// fingerprint starts with `code`'s prefix. No client certificate.
pub fn enrolment_client_config(
    code: &EnrolmentCode,
    pinned: PinnedCa,
) -> Result<ClientConfig, TlsConfigError> {
    let provider = provider();
    let verifier = Arc::new(CodePinnedVerifier {
        ca_prefix: code.ca_prefix(),
        pinned,
        provider: provider.clone(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsConfigError::Versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ENROL_ALPN.to_vec()];
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// The CA a console of another site presents is refused with this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the console's site CA is not the one the enrolment code names (a console of another site)"
)]
pub struct OtherSite;

struct CodePinnedVerifier {
    ca_prefix: [u8; CA_PREFIX_BYTES],
    pinned: PinnedCa,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl fmt::Debug for CodePinnedVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodePinnedVerifier")
            .field("ca_prefix", &hex::encode(self.ca_prefix))
            .finish_non_exhaustive()
    }
}

impl CodePinnedVerifier {
    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ServerCertVerifier for CodePinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let other_site = || {
            self.pinned.put(Err(OtherSite));
            rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                Arc::new(OtherSite),
            )))
        };
        let ca = intermediates
            .iter()
            .find(|candidate| ca_prefix_of(candidate) == self.ca_prefix)
            .ok_or_else(other_site)?;
        let ca = CertificateDer::from(ca.to_vec());
        let roots = site_roots(&ca).map_err(|_| other_site())?;
        let inner = WebPkiServerVerifier::builder_with_provider(roots, self.provider.clone())
            .build()
            .map_err(|_| other_site())?;
        let name = ServerName::try_from(ENROLMENT_SERVER_NAME)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        inner.verify_server_cert(end_entity, &[], &name, ocsp_response, now)?;
        self.pinned.put(Ok(ca));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn site() -> (tempfile::TempDir, SiteCa) {
        crate::ca::test_site("Enrolment test")
    }

    #[test]
    fn a_code_reads_back_as_typed_with_dashes_case_and_lookalikes() {
        let (_dir, ca) = site();
        let code = EnrolmentCode::generate(&ca.cert_der()).expect("code");
        let text = code.to_string();
        assert_eq!(text.len(), CODE_CHARS + CODE_CHARS / 4 - 1, "{text}");
        assert_eq!(text.parse::<EnrolmentCode>(), Ok(code.clone()));
        assert_eq!(
            text.to_lowercase().replace('-', " ").parse(),
            Ok(code.clone())
        );
        let lookalike = text.replace('0', "o").replace('1', "l");
        assert_eq!(lookalike.parse(), Ok(code.clone()));
        assert!(code.pins(&ca.cert_der()));
    }

    #[test]
    fn typos_and_junk_are_refused_with_what_to_do() {
        let (_dir, ca) = site();
        let text = EnrolmentCode::generate(&ca.cert_der())
            .expect("code")
            .to_string();
        let mut typo: Vec<char> = text.chars().collect();
        typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        assert_eq!(typo.parse::<EnrolmentCode>(), Err(CodeError::Check));
        assert_eq!(
            text[..10].parse::<EnrolmentCode>(),
            Err(CodeError::Length { found: 8 })
        );
        assert_eq!(
            format!("{text}0").parse::<EnrolmentCode>(),
            Err(CodeError::Length { found: 33 })
        );
        assert_eq!(
            text.replacen(|c: char| c.is_ascii_alphanumeric(), "U", 1)
                .parse::<EnrolmentCode>(),
            Err(CodeError::Character('U'))
        );
        assert!(matches!(
            "é".repeat(40).parse::<EnrolmentCode>(),
            Err(CodeError::Character('é'))
        ));
        assert!("x".repeat(100_000).parse::<EnrolmentCode>().is_err());
    }

    #[test]
    fn a_proof_holds_only_for_its_code_channel_and_request() {
        let (_dir, ca) = site();
        let code = EnrolmentCode::generate(&ca.cert_der()).expect("code");
        let other = EnrolmentCode::generate(&ca.cert_der()).expect("code");
        let exporter = [7u8; PROOF_BYTES];
        let proof = code.proof(&exporter, b"csr");
        assert!(code.verify(&exporter, b"csr", &proof));
        assert!(!other.verify(&exporter, b"csr", &proof));
        assert!(!code.verify(&[8u8; PROOF_BYTES], b"csr", &proof));
        assert!(!code.verify(&exporter, b"csr2", &proof));
        assert!(!code.verify(&exporter, b"csr", &proof[..31]));
    }

    #[test]
    fn renewal_is_due_when_less_than_a_third_is_left() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let end = start + time::Duration::days(30);
        assert!(!renewal_due(start, end, start));
        assert!(!renewal_due(start, end, start + time::Duration::days(19)));
        assert!(renewal_due(start, end, start + time::Duration::days(21)));
        assert!(renewal_due(start, end, end + time::Duration::days(1)));
        assert!(renewal_due(end, start, start), "inverted dates");
    }

    #[test]
    fn a_renewal_keeps_the_agent_id_and_takes_the_new_key() {
        let (_dir, ca) = site();
        let validity = Validity::days_from(OffsetDateTime::now_utc(), 10);
        let first = AgentKeyRequest::generate().expect("key");
        let (agent_id, _) = ca
            .sign_agent_request(&first.csr_der, Some("pc-07"), Some("Salle 2"), validity)
            .expect("signed");
        let fresh = AgentKeyRequest::generate().expect("key");
        let renewed = ca
            .renew_agent_request(
                &fresh.csr_der,
                agent_id,
                (Some("pc-07"), Some("Salle 2")),
                validity,
            )
            .expect("renewed");
        assert_eq!(fresh.accepts(&renewed), Some(agent_id));
        assert_eq!(
            crate::tls::agent_team(&renewed).expect("team"),
            Some("Salle 2".to_owned())
        );
        assert_eq!(first.accepts(&renewed), None);
    }

    #[test]
    fn only_the_public_key_of_a_request_is_signed() {
        let (_dir, ca) = site();
        let request = AgentKeyRequest::generate().expect("key");
        let validity = Validity::days_from(OffsetDateTime::now_utc(), 10);
        let (agent_id, cert_der) = ca
            .sign_agent_request(&request.csr_der, Some("pc-07"), None, validity)
            .expect("signed");
        assert_eq!(request.accepts(&cert_der), Some(agent_id));
        let parsed = cert::parse(&cert_der).expect("parse");
        assert_eq!(cert::common_name(&parsed), Some("pc-07"));
        assert_eq!(cert::agent_id_of(&parsed), Ok(agent_id));
        assert!(cert::is_signed_by(
            &parsed,
            &cert::parse(&ca.cert_der()).expect("ca")
        ));
        let another = AgentKeyRequest::generate().expect("key");
        assert_eq!(another.accepts(&cert_der), None);
        // A hostile name is not copied; a forged or oversized CSR is refused.
        let (agent_id, cert_der) = ca
            .sign_agent_request(&request.csr_der, Some("evil\u{0}name"), None, validity)
            .expect("signed");
        let parsed = cert::parse(&cert_der).expect("parse");
        assert_eq!(
            cert::common_name(&parsed),
            Some(format!("agent {agent_id}").as_str())
        );
        let mut forged = request.csr_der.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(matches!(
            ca.sign_agent_request(&forged, None, None, validity),
            Err(SignRequestError::Invalid(_))
        ));
        assert!(matches!(
            ca.sign_agent_request(&vec![0u8; MAX_CSR_BYTES + 1], None, None, validity),
            Err(SignRequestError::TooLarge)
        ));
        assert!(matches!(
            ca.sign_agent_request(b"junk", None, None, validity),
            Err(SignRequestError::Invalid(_))
        ));
    }
}
