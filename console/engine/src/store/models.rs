//! Trained models kept so that a console process loads them instead of
//! training them again. The store keeps opaque, size-capped blobs; their
//! format, and when one is stale or damaged, is the owner's business
//! (`categories/persist.rs` for the category model).
//!
//! # Layout (tree `models`)
//!
//! `category` → the category model's blob, at most
//! [`MAX_MODEL_BLOB_BYTES`], replaced whole on each write.

use super::{ConsoleStore, StoreError};

/// Largest model blob the store writes or hands back (the built-in
/// category model takes well under a megabyte).
pub const MAX_MODEL_BLOB_BYTES: usize = 64 * 1024 * 1024;

/// Key of the category model's blob.
const CATEGORY_MODEL_KEY: &[u8] = b"category";

impl ConsoleStore {
    /// The stored category model blob, if any. One larger than
    /// [`MAX_MODEL_BLOB_BYTES`] is reported corrupt, never handed on.
    pub fn category_model_blob(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(blob) = self
            .models
            .get(CATEGORY_MODEL_KEY)
            .map_err(|source| self.sled_error(source))?
        else {
            return Ok(None);
        };
        if blob.len() > MAX_MODEL_BLOB_BYTES {
            return Err(self.corrupt(format!(
                "the category model is {} bytes, more than the {MAX_MODEL_BLOB_BYTES} a model \
                 may take",
                blob.len()
            )));
        }
        Ok(Some(blob.to_vec()))
    }

    /// Replaces the category model blob, flushed. Only the `models` tree is
    /// written: nothing else in the store changes.
    pub fn put_category_model_blob(&self, blob: &[u8]) -> Result<(), StoreError> {
        if blob.len() > MAX_MODEL_BLOB_BYTES {
            return Err(StoreError::ModelTooLarge {
                path: self.path.clone(),
                bytes: blob.len(),
            });
        }
        self.models
            .insert(CATEGORY_MODEL_KEY, blob)
            .map_err(|source| self.sled_error(source))?;
        self.sync()
    }
}
