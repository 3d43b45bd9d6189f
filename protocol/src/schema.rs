//! The schema-version rule both sled stores follow (pure: no I/O, no sled).
//!
//! The agent's store and the console's store each keep a `u32` big-endian
//! schema version under a key of their own in sled's default tree, write
//! it when they create a store, and refuse a store whose version they do
//! not read. Opening sled, the lock file and what counts as "data" stay
//! with each store: this crate does no I/O and does not depend on sled.
//! Each store maps [`SchemaError`] into its own typed error, whose text
//! says what to do on that side.

/// Bytes of a stored schema version.
pub const SCHEMA_VERSION_BYTES: usize = 4;

/// The text sled (0.34) gives the I/O error it returns when another
/// process holds its file lock: it has no error kind of its own.
pub const SLED_LOCK_ERROR_TEXT: &str = "could not acquire lock";

/// What a store's stored schema version says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaState {
    /// No version is stored: a new store if it holds no data yet (write
    /// [`encode_schema_version`]), else a foreign or damaged one.
    Missing,
    /// The version this build reads and writes.
    Current,
}

/// Why a stored schema version is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The value is not [`SCHEMA_VERSION_BYTES`] long.
    #[error("the schema version is {len} bytes, not {SCHEMA_VERSION_BYTES}")]
    Malformed { len: usize },
    /// Another version than the one this build reads.
    #[error("schema version {found}, this build reads version {supported}")]
    Unknown { found: u32, supported: u32 },
}

/// The stored form of `version`.
pub fn encode_schema_version(version: u32) -> [u8; SCHEMA_VERSION_BYTES] {
    version.to_be_bytes()
}

/// Checks the value stored under a store's schema key (`None`: absent)
/// against the version this build reads.
pub fn check_schema_version(
    stored: Option<&[u8]>,
    supported: u32,
) -> Result<SchemaState, SchemaError> {
    let Some(stored) = stored else {
        return Ok(SchemaState::Missing);
    };
    let found = <[u8; SCHEMA_VERSION_BYTES]>::try_from(stored)
        .map(u32::from_be_bytes)
        .map_err(|_| SchemaError::Malformed { len: stored.len() })?;
    if found == supported {
        Ok(SchemaState::Current)
    } else {
        Err(SchemaError::Unknown { found, supported })
    }
}

/// Whether `error`, returned by sled while opening a database, means
/// another process holds the database's file lock.
pub fn is_sled_lock_error(error: &std::io::Error) -> bool {
    error.to_string().contains(SLED_LOCK_ERROR_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked() {
        assert_eq!(check_schema_version(None, 1), Ok(SchemaState::Missing));
        assert_eq!(
            check_schema_version(Some(&encode_schema_version(1)), 1),
            Ok(SchemaState::Current)
        );
        assert_eq!(
            check_schema_version(Some(&99_u32.to_be_bytes()), 1),
            Err(SchemaError::Unknown {
                found: 99,
                supported: 1
            })
        );
        assert_eq!(
            check_schema_version(Some(&[0, 1]), 1),
            Err(SchemaError::Malformed { len: 2 })
        );
        assert_eq!(encode_schema_version(1), [0, 0, 0, 1]);
    }

    #[test]
    fn sled_lock_errors_are_recognised() {
        let locked = std::io::Error::other(format!("{SLED_LOCK_ERROR_TEXT}: Resource busy"));
        assert!(is_sled_lock_error(&locked));
        assert!(!is_sled_lock_error(&std::io::Error::other("disk full")));
    }
}
