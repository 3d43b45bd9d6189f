//! The hash-chained audit log (tree `audit`): its types and hashing
//! (pure), and the store's append, read and verify.
//!
//! Entry `n` stores the hash of entry `n - 1` (zeros for entry 0) and its
//! own hash: SHA-256 over [`AUDIT_HASH_DOMAIN`], then `index` (u64 BE),
//! `prev_hash`, `at_ms` (i64 BE) and `actor`, `action`, `target`, `detail`,
//! each as a u64 BE byte length followed by its UTF-8 bytes. Changing,
//! removing or reordering any stored entry breaks the chain at that entry.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{u64_value, ConsoleStore, StoreError};
use std::sync::PoisonError;

/// Domain separation for audit hashes.
pub const AUDIT_HASH_DOMAIN: &[u8] = b"smarttracker-console-audit-v1\0";
/// Largest encoded audit record.
pub(crate) const MAX_AUDIT_RECORD_BYTES: usize = 64 * 1024;

/// One audited action, as the caller describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    /// Who acted: an operator, or "sync", "cli".
    pub actor: String,
    /// What was done: "pull", "export", "live-view", "set-policy", …
    pub action: String,
    /// On what: an agent id, a file, a setting key.
    pub target: String,
    pub detail: String,
}

/// An entry as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub index: u64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
    pub entry: AuditEntry,
}

/// Why the audit log cannot be trusted, or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "the audit log is broken at entry {index}: {reason}; it was altered outside \
         smarttracker-console; keep the store as evidence and restore the log from a backup"
    )]
    Broken { index: u64, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn record_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_AUDIT_RECORD_BYTES>()
}

/// The chained hash of `entry` at `index` after `prev_hash`.
pub fn audit_hash(index: u64, prev_hash: &[u8; 32], entry: &AuditEntry) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(AUDIT_HASH_DOMAIN);
    hasher.update(index.to_be_bytes());
    hasher.update(prev_hash);
    hasher.update(entry.at_ms.to_be_bytes());
    for text in [&entry.actor, &entry.action, &entry.target, &entry.detail] {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    hasher.finalize().into()
}

/// Checks one stored record against its key and the previous hash.
pub(crate) fn check_link(
    key_index: u64,
    expected_index: u64,
    prev_hash: &[u8; 32],
    record: &AuditRecord,
) -> Result<(), String> {
    if key_index != expected_index {
        return Err(format!(
            "expected entry {expected_index}, found entry {key_index} (entries removed)"
        ));
    }
    if record.index != key_index {
        return Err(format!(
            "stored under {key_index} but says it is entry {}",
            record.index
        ));
    }
    if record.prev_hash != *prev_hash {
        return Err("its previous-hash does not match the entry before it".into());
    }
    if audit_hash(record.index, &record.prev_hash, &record.entry) != record.hash {
        return Err("its content does not match its hash".into());
    }
    Ok(())
}

impl ConsoleStore {
    /// Appends `entry` to the hash-chained audit log, flushed before it
    /// returns the stored record.
    pub fn audit(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        let auditor = self.auditor.lock().unwrap_or_else(PoisonError::into_inner);
        let (index, prev_hash) = match self
            .audit
            .last()
            .map_err(|source| self.sled_error(source))?
        {
            Some((key, value)) => {
                let last = self.decode_audit(&key, &value)?;
                (last.index.saturating_add(1), last.hash)
            }
            None => (0, [0; 32]),
        };
        let record = AuditRecord {
            index,
            prev_hash,
            hash: audit_hash(index, &prev_hash, &entry),
            entry,
        };
        let value = bincode::serde::encode_to_vec(&record, record_config()).map_err(|source| {
            StoreError::Encode {
                path: self.path.clone(),
                what: format!("audit entry {index}"),
                source,
            }
        })?;
        self.audit
            .insert(index.to_be_bytes(), value)
            .map_err(|source| self.sled_error(source))?;
        drop(auditor);
        self.sync()?;
        Ok(record)
    }

    /// Up to `limit` audit records from index `from_index` on, in order.
    pub fn audit_log(&self, from_index: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let mut records = Vec::with_capacity(limit.min(1024));
        for item in self.audit.range(from_index.to_be_bytes()..).take(limit) {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            records.push(self.decode_audit(&key, &value)?);
        }
        Ok(records)
    }

    /// Checks the whole chain; returns the number of entries.
    pub fn verify_audit(&self) -> Result<u64, AuditError> {
        let mut expected_index = 0_u64;
        let mut prev_hash = [0_u8; 32];
        for item in self.audit.iter() {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            let broken = |reason: String| AuditError::Broken {
                index: expected_index,
                reason,
            };
            let key_index = u64_value(&key)
                .ok_or_else(|| broken(format!("key {key:02x?} is not an entry number")))?;
            let (record, _): (AuditRecord, usize) =
                bincode::serde::decode_from_slice(&value, record_config())
                    .map_err(|error| broken(format!("it does not decode: {error}")))?;
            check_link(key_index, expected_index, &prev_hash, &record).map_err(broken)?;
            prev_hash = record.hash;
            expected_index += 1;
        }
        Ok(expected_index)
    }

    fn decode_audit(&self, key: &[u8], value: &[u8]) -> Result<AuditRecord, StoreError> {
        bincode::serde::decode_from_slice::<AuditRecord, _>(value, record_config())
            .map(|(record, _)| record)
            .map_err(|error| {
                self.corrupt(format!(
                    "audit entry {:?} does not decode: {error}",
                    u64_value(key)
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail: &str) -> AuditEntry {
        AuditEntry {
            at_ms: 1,
            actor: "admin".into(),
            action: "export".into(),
            target: "usage".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn field_boundaries_are_part_of_the_hash() {
        let a = AuditEntry {
            actor: "ab".into(),
            action: "c".into(),
            ..entry("")
        };
        let b = AuditEntry {
            actor: "a".into(),
            action: "bc".into(),
            ..entry("")
        };
        assert_ne!(audit_hash(0, &[0; 32], &a), audit_hash(0, &[0; 32], &b));
        assert_ne!(audit_hash(0, &[0; 32], &a), audit_hash(1, &[0; 32], &a));
    }

    #[test]
    fn links_are_checked() {
        let first = entry("x");
        let hash = audit_hash(0, &[0; 32], &first);
        let record = AuditRecord {
            index: 0,
            prev_hash: [0; 32],
            hash,
            entry: first,
        };
        assert!(check_link(0, 0, &[0; 32], &record).is_ok());
        assert!(check_link(1, 0, &[0; 32], &record).is_err());
        assert!(check_link(0, 0, &[1; 32], &record).is_err());
        let tampered = AuditRecord {
            entry: entry("y"),
            ..record
        };
        assert!(check_link(0, 0, &[0; 32], &tampered).is_err());
    }
}
