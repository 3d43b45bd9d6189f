//! The policy in force and the site's deny-list of revoked consoles,
//! persisted in the store's meta tree (JSON, so an operator can read them
//! in an export).

use certs::deny::{DenyList, DenySet};
use protocol::{Policy, SignedDenyList};

use crate::store::{Store, StoreError};

/// Meta key of the policy in force.
const POLICY_META: &str = "policy";
/// Meta key of the newest deny-list taken from a console.
const DENY_LIST_META: &str = "deny_list";

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

/// The deny-list kept in the store, put in force in a new [`DenySet`]. A
/// kept list that no longer verifies with the site CA `ca_cert_der` is
/// named in the log and not used (the next console sync brings it again).
pub fn load_deny_list(store: &Store, ca_cert_der: &[u8]) -> Result<DenySet, StoreError> {
    let set = DenySet::default();
    let Some(json) = store.get_meta(DENY_LIST_META)? else {
        return Ok(set);
    };
    let verified = serde_json::from_slice::<SignedDenyList>(&json)
        .map_err(|error| error.to_string())
        .and_then(|signed| DenyList::verify(&signed, ca_cert_der).map_err(|e| e.to_string()));
    match verified {
        Ok(list) => {
            set.replace_if_newer(&list);
            tracing::info!(
                serial = list.serial,
                consoles = list.consoles.len() + list.fingerprints.len(),
                "revoked consoles are refused"
            );
        }
        Err(error) => {
            tracing::warn!(%error, "the kept deny-list is not usable; a console will bring it again");
        }
    }
    Ok(set)
}

/// Takes `signed` if the site CA signed it and it is newer than the list in
/// force: stored durably first, then put in force. The reply says which
/// list the agent holds.
pub fn take_deny_list(
    store: &Store,
    deny: &DenySet,
    ca_cert_der: &[u8],
    signed: &SignedDenyList,
) -> Result<bool, TakeDenyListError> {
    let list = DenyList::verify(signed, ca_cert_der)?;
    if list.serial <= deny.serial() {
        return Ok(false);
    }
    // Serialising two byte vectors cannot fail.
    let json = serde_json::to_vec(signed).unwrap_or_default();
    store.put_meta(DENY_LIST_META, &json)?;
    Ok(deny.replace_if_newer(&list))
}

/// Why a deny-list from a console was not taken.
#[derive(Debug, thiserror::Error)]
pub enum TakeDenyListError {
    #[error(transparent)]
    Refused(#[from] certs::deny::DenyListError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
