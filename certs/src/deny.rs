//! The site's deny-list: console certificates revoked by the site CA.
//!
//! A [`DenyList`] names revoked consoles by the id their certificate
//! carries (`urn:smarttracker:console:<role>:<id>`), and by certificate
//! fingerprint. It is signed by the site CA key (ECDSA P-256 / SHA-256
//! over its JSON body), so any console can carry it to agents and none
//! can forge or shorten it: an agent takes a list only if the signature
//! verifies with its own site CA and the serial is newer than the one it
//! holds. Agents check it on every handshake through a [`DenySet`] shared
//! with their TLS verifier (there is no session resumption, so a
//! revocation applies at the revoked console's next connection).

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use protocol::SignedDenyList;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ca::{IssueError, SiteCa};
use crate::cert::{self, fingerprint_der};

/// The most consoles a list names.
pub const MAX_DENIED_CONSOLES: usize = 1024;
/// The largest signed body (JSON) an agent reads.
pub const MAX_DENY_LIST_BODY_BYTES: usize = 48 * 1024;
/// The largest signature (an ASN.1 ECDSA P-256 signature is at most 72).
pub const MAX_SIGNATURE_BYTES: usize = 128;

/// Revoked consoles, as the site CA signed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyList {
    /// Hex SHA-256 of the site CA certificate that signed it.
    pub site_ca_sha256: String,
    /// Grows with every new list; an agent keeps the highest it verified.
    pub serial: u64,
    /// When it was signed, UTC milliseconds.
    pub issued_ms: i64,
    /// Revoked console ids, sorted.
    pub consoles: BTreeSet<Uuid>,
    /// Revoked console certificate fingerprints (lowercase hex), sorted.
    pub fingerprints: BTreeSet<String>,
}

/// Why a signed list was not taken.
#[derive(Debug, thiserror::Error)]
pub enum DenyListError {
    #[error("the deny-list is larger than {MAX_DENY_LIST_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the deny-list names more than {MAX_DENIED_CONSOLES} consoles")]
    TooMany,
    #[error("the deny-list is not signed by this site's CA")]
    BadSignature,
    #[error("the deny-list does not decode: {0}")]
    Malformed(serde_json::Error),
    #[error("the deny-list is for another site (CA {0})")]
    OtherSite(String),
    #[error("the site CA certificate cannot be read: {0}")]
    Ca(cert::CertParseError),
    #[error("cannot sign the deny-list: {0}")]
    Sign(#[from] IssueError),
    #[error("cannot encode the deny-list: {0}")]
    Encode(serde_json::Error),
}

impl DenyList {
    /// An empty list of this site.
    pub fn empty(ca: &SiteCa) -> DenyList {
        DenyList {
            site_ca_sha256: ca.fingerprint(),
            serial: 0,
            issued_ms: 0,
            consoles: BTreeSet::new(),
            fingerprints: BTreeSet::new(),
        }
    }

    /// Whether the console with this id and certificate is revoked.
    pub fn denies(&self, console_id: Uuid, cert_der: &[u8]) -> bool {
        self.consoles.contains(&console_id)
            || self.fingerprints.contains(&fingerprint_der(cert_der))
    }

    /// Signs the list with the site CA, with serial `max(serial + 1,
    /// issued_ms)` so serials grow even if the clock went back.
    pub fn sign(mut self, ca: &SiteCa, issued_ms: i64) -> Result<SignedDenyList, DenyListError> {
        if self.consoles.len() + self.fingerprints.len() > MAX_DENIED_CONSOLES {
            return Err(DenyListError::TooMany);
        }
        self.site_ca_sha256 = ca.fingerprint();
        self.issued_ms = issued_ms;
        self.serial = self
            .serial
            .saturating_add(1)
            .max(u64::try_from(issued_ms).unwrap_or(0));
        let body = serde_json::to_vec(&self).map_err(DenyListError::Encode)?;
        if body.len() > MAX_DENY_LIST_BODY_BYTES {
            return Err(DenyListError::TooLarge);
        }
        let signature = ca.sign(&body)?;
        Ok(SignedDenyList { body, signature })
    }

    /// The list in `signed` if the CA `ca_cert_der` signed it for its site.
    /// Sizes are checked before anything is decoded.
    pub fn verify(signed: &SignedDenyList, ca_cert_der: &[u8]) -> Result<DenyList, DenyListError> {
        if signed.body.len() > MAX_DENY_LIST_BODY_BYTES
            || signed.signature.len() > MAX_SIGNATURE_BYTES
        {
            return Err(DenyListError::TooLarge);
        }
        let ca = cert::parse(ca_cert_der).map_err(DenyListError::Ca)?;
        let key = UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_ASN1,
            ca.public_key().subject_public_key.data.as_ref(),
        );
        key.verify(&signed.body, &signed.signature)
            .map_err(|_| DenyListError::BadSignature)?;
        let list: DenyList =
            serde_json::from_slice(&signed.body).map_err(DenyListError::Malformed)?;
        if list.site_ca_sha256 != fingerprint_der(ca_cert_der) {
            return Err(DenyListError::OtherSite(list.site_ca_sha256));
        }
        if list.consoles.len() + list.fingerprints.len() > MAX_DENIED_CONSOLES {
            return Err(DenyListError::TooMany);
        }
        Ok(list)
    }
}

/// What an agent's TLS verifier refuses: shared, so a list taken from a
/// console applies from the next handshake on.
#[derive(Debug, Clone, Default)]
pub struct DenySet(Arc<RwLock<Denied>>);

#[derive(Debug, Default)]
struct Denied {
    serial: u64,
    consoles: HashSet<Uuid>,
    fingerprints: HashSet<String>,
}

impl DenySet {
    /// A set refusing these certificate fingerprints (hex, any case, with
    /// or without colons).
    pub fn of_fingerprints(fingerprints: impl IntoIterator<Item = String>) -> DenySet {
        let set = DenySet::default();
        set.write().fingerprints = fingerprints
            .into_iter()
            .map(|fingerprint| normalize_fingerprint(&fingerprint))
            .collect();
        set
    }

    /// The serial of the list in force (0: none).
    pub fn serial(&self) -> u64 {
        self.0.read().unwrap_or_else(PoisonError::into_inner).serial
    }

    /// Puts `list` in force if it is newer than the one in force; whether
    /// it was.
    pub fn replace_if_newer(&self, list: &DenyList) -> bool {
        let mut denied = self.write();
        if list.serial <= denied.serial {
            return false;
        }
        *denied = Denied {
            serial: list.serial,
            consoles: list.consoles.iter().copied().collect(),
            fingerprints: list
                .fingerprints
                .iter()
                .map(|fingerprint| normalize_fingerprint(fingerprint))
                .collect(),
        };
        true
    }

    /// Whether a console with this id and certificate fingerprint is refused.
    pub fn denies(&self, console_id: Uuid, fingerprint: &str) -> bool {
        let denied = self.0.read().unwrap_or_else(PoisonError::into_inner);
        denied.consoles.contains(&console_id) || denied.fingerprints.contains(fingerprint)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Denied> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Fingerprints compare as lowercase hex without separators, so
/// `AB:CD:…` and `abcd…` name the same certificate.
pub(crate) fn normalize_fingerprint(fingerprint: &str) -> String {
    fingerprint
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::ca::{test_site, Validity};
    use crate::role::Role;

    #[test]
    fn a_signed_list_verifies_only_with_its_own_site_and_unchanged() {
        let (_dir, ca) = test_site("Deny test");
        let (_other_dir, other) = test_site("Another site");
        let validity = Validity::days_from(OffsetDateTime::now_utc(), 10);
        let revoked = ca
            .issue_console(Role::Viewer, "revoked", validity)
            .expect("console");
        let mut list = DenyList::empty(&ca);
        list.consoles.insert(revoked.console_id);
        let signed = list.sign(&ca, 1_000).expect("signed");
        let taken = DenyList::verify(&signed, &ca.cert_der()).expect("verified");
        assert!(taken.denies(revoked.console_id, &revoked.cert_der));
        assert_eq!(taken.serial, 1_000);
        assert!(matches!(
            DenyList::verify(&signed, &other.cert_der()),
            Err(DenyListError::BadSignature)
        ));
        let mut tampered = signed.clone();
        tampered.body = String::from_utf8(tampered.body)
            .expect("json")
            .replace(&revoked.console_id.to_string(), &Uuid::nil().to_string())
            .into_bytes();
        assert!(matches!(
            DenyList::verify(&tampered, &ca.cert_der()),
            Err(DenyListError::BadSignature)
        ));
        let oversized = SignedDenyList {
            body: vec![b' '; MAX_DENY_LIST_BODY_BYTES + 1],
            signature: signed.signature.clone(),
        };
        assert!(matches!(
            DenyList::verify(&oversized, &ca.cert_der()),
            Err(DenyListError::TooLarge)
        ));
        // Serials grow even when the clock goes back.
        let again = taken.sign(&ca, 10).expect("signed");
        let again = DenyList::verify(&again, &ca.cert_der()).expect("verified");
        assert_eq!(again.serial, 1_001);
    }

    #[test]
    fn a_deny_set_takes_only_newer_lists() {
        let (_dir, ca) = test_site("Deny set");
        let id = Uuid::new_v4();
        let mut list = DenyList::empty(&ca);
        list.consoles.insert(id);
        list.serial = 5;
        let set = DenySet::default();
        assert!(!set.denies(id, "ab"));
        assert!(set.replace_if_newer(&list));
        assert!(set.denies(id, "ab"));
        let mut older = DenyList::empty(&ca);
        older.serial = 4;
        assert!(!set.replace_if_newer(&older));
        assert!(set.denies(id, "ab"));
        assert_eq!(set.serial(), 5);
        let by_fingerprint = DenySet::of_fingerprints(["AB:CD".to_owned()]);
        assert!(by_fingerprint.denies(Uuid::nil(), "abcd"));
    }
}
