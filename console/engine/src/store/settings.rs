//! Console settings kept in the store (tree `settings`): UTF-8 key →
//! JSON text. What they mean is `crate::settings`'s business.

use super::{ConsoleStore, StoreError};

impl ConsoleStore {
    /// Stores a console setting (static peers, category rules, language…),
    /// flushed.
    pub fn put_setting(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        let text = serde_json::to_vec(value).map_err(|source| StoreError::Setting {
            path: self.path.clone(),
            key: key.to_owned(),
            source,
        })?;
        self.settings
            .insert(key.as_bytes(), text)
            .map_err(|source| self.sled_error(source))?;
        self.sync()
    }

    pub fn get_setting(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.settings
            .get(key.as_bytes())
            .map_err(|source| self.sled_error(source))?
            .map(|text| {
                serde_json::from_slice(&text).map_err(|source| StoreError::Setting {
                    path: self.path.clone(),
                    key: key.to_owned(),
                    source,
                })
            })
            .transpose()
    }
}
