//! The policy in force, persisted in the store's meta tree (JSON, so an
//! operator can read it in an export).

use protocol::Policy;

use crate::store::{Store, StoreError};

/// Meta key of the policy in force.
const POLICY_META: &str = "policy";

/// Why the stored policy could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the policy in the agent's store is unreadable ({0}); a console with the admin role can set it again")]
    Corrupt(serde_json::Error),
}

/// The stored policy, or the privacy-by-default one on a new store.
pub fn load_policy(store: &Store) -> Result<Policy, SettingsError> {
    match store.get_meta(POLICY_META)? {
        None => Ok(Policy::default()),
        Some(json) => serde_json::from_slice(&json).map_err(SettingsError::Corrupt),
    }
}

/// Stores a validated policy durably.
pub fn save_policy(store: &Store, policy: &Policy) -> Result<(), StoreError> {
    // Serialising a plain struct of numbers, strings and bools cannot fail.
    let json = serde_json::to_vec(policy).unwrap_or_default();
    store.put_meta(POLICY_META, &json)
}
