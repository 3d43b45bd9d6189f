//! The site's deny-list as this console keeps and hands it out: the newest
//! list signed by the site CA (`certs::deny`), kept in the store's settings
//! tree, given to every agent at each sync so agents refuse revoked
//! consoles from their next handshake on.

use certs::deny::{DenyList, DenyListError};
use protocol::SignedDenyList;

use crate::store::{ConsoleStore, StoreError};

/// Settings key of the signed deny-list.
pub const DENY_LIST_KEY: &str = "deny_list";

/// Why a deny-list was not kept.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the deny-list was refused: {0}")]
    Refused(#[from] DenyListError),
    #[error("this console already holds a newer deny-list (serial {held}, offered {offered}): run the command again")]
    Older { held: u64, offered: u64 },
}

/// The signed list this console holds, if any.
pub fn held(store: &ConsoleStore) -> Result<Option<SignedDenyList>, StoreError> {
    store
        .get_setting(DENY_LIST_KEY)?
        .map(|value| {
            serde_json::from_value(value).map_err(|source| StoreError::Setting {
                path: store.path().to_owned(),
                key: DENY_LIST_KEY.to_owned(),
                source,
            })
        })
        .transpose()
}

/// Keeps `signed` if the site CA `ca_cert_der` signed it and it is newer
/// than the list held; the list it holds.
pub fn keep(
    store: &ConsoleStore,
    ca_cert_der: &[u8],
    signed: &SignedDenyList,
) -> Result<DenyList, RevocationError> {
    let list = DenyList::verify(signed, ca_cert_der)?;
    if let Some(held) = held(store)? {
        if let Ok(held) = DenyList::verify(&held, ca_cert_der) {
            if held.serial >= list.serial {
                return Err(RevocationError::Older {
                    held: held.serial,
                    offered: list.serial,
                });
            }
        }
    }
    // Two byte vectors always serialise.
    let value = serde_json::to_value(signed).unwrap_or_default();
    store.put_setting(DENY_LIST_KEY, &value)?;
    Ok(list)
}
