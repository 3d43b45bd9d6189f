//! Store errors: each names the store directory and what to do about it.

use std::path::PathBuf;

use protocol::StreamKind;

use crate::model::AgentId;

use super::block::BlockError;
use super::screenshots::{ImageCheckError, ScreenshotKeyError};
use super::RecordKind;
use crate::validate::Invalid;

/// What to do when the store itself is damaged.
const CORRUPT_FIX: &str = "restore the directory from a backup, or run \
     `smarttracker-console export` to save what still reads and move the directory aside \
     (agents resend every record they still hold)";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is in use by another smarttracker-console; stop it first")]
    Locked { path: PathBuf },
    #[error(
        "store {path} has schema version {found}, this smarttracker-console reads version \
         {supported}; run the smarttracker-console that wrote it (or a newer one), or move \
         the directory aside to start an empty store"
    )]
    UnknownSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "{path} holds data but is not a smarttracker-console store (it may be an agent's \
         store); point the console at its own, empty or console-made, directory"
    )]
    NotAConsoleStore { path: PathBuf },
    #[error("store {path} is corrupt: {detail}; {CORRUPT_FIX}")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "store {path} is corrupt: the {} block of agent {agent} starting at {start_ms} ms: \
         {source}; {CORRUPT_FIX}",
        .kind.name()
    )]
    CorruptBlock {
        path: PathBuf,
        kind: RecordKind,
        agent: AgentId,
        start_ms: i64,
        source: BlockError,
    },
    #[error("store {path}: {source}; check that the directory exists, is writable and has space")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store {path}: database error: {source}; check disk space and permissions")]
    Sled { path: PathBuf, source: sled::Error },
    #[error("store {path}: cannot encode {what}: {source}; shorten it")]
    Encode {
        path: PathBuf,
        what: String,
        source: bincode::error::EncodeError,
    },
    #[error(
        "store {path}: agent {agent} is no longer in the inventory (revoked); nothing of its \
         batch was stored"
    )]
    NotInInventory { path: PathBuf, agent: AgentId },
    #[error(
        "store {path}: the {} batch of agent {agent} continues at seq {found_seq} of epoch \
         {epoch:#018x}, but the next record this store needs is seq {expected_seq}; nothing \
         was stored: pull again after seq {}",
        .stream.name(),
        .expected_seq.saturating_sub(1)
    )]
    Hole {
        path: PathBuf,
        agent: AgentId,
        stream: StreamKind,
        epoch: u64,
        expected_seq: u64,
        found_seq: u64,
    },
    #[error(
        "store {path}: the {} batch of agent {agent} is from epoch {epoch:#018x}, which this \
         store already left for a newer epoch; nothing was stored: pull again (if the agent's \
         store was restored from a backup, reset it so it starts a new epoch)",
        .stream.name()
    )]
    StaleEpoch {
        path: PathBuf,
        agent: AgentId,
        stream: StreamKind,
        epoch: u64,
    },
    #[error(
        "exporting store {path}: cannot write the output: {source}; check that the \
         destination is writable and has space"
    )]
    Export {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "store {path}: a model of {bytes} bytes is more than a store keeps ({} bytes); it was \
         not stored, and is trained again on the next start",
        super::MAX_MODEL_BLOB_BYTES
    )]
    ModelTooLarge { path: PathBuf, bytes: usize },
    #[error(
        "store {path}: setting {key:?} cannot be stored or read as JSON: {source}; set it again"
    )]
    Setting {
        path: PathBuf,
        key: String,
        source: serde_json::Error,
    },
    #[error("store {path}: {source}")]
    ScreenshotKey {
        path: PathBuf,
        source: ScreenshotKeyError,
    },
    #[error(
        "store {path} has no screenshot of agent {agent} taken at {at_ms} ms (serial \
         {serial}): retention deleted it, or it was never stored; list the screenshots again"
    )]
    ScreenshotNotFound {
        path: PathBuf,
        agent: AgentId,
        at_ms: i64,
        serial: u64,
    },
    #[error(
        "the image of agent {agent}'s screenshot at {at_ms} ms was dropped on the workstation \
         (quota or retention) before this console fetched it; only its time and size are known"
    )]
    ScreenshotDropped { agent: AgentId, at_ms: i64 },
    #[error(
        "store {path}: the screenshot of agent {agent} taken at {at_ms} ms (serial {serial}) \
         does not decrypt, or does not match its index, with the key in {key_file}, which is \
         this store's key: the stored value was altered or damaged; restore the store from a \
         backup"
    )]
    ScreenshotTampered {
        path: PathBuf,
        key_file: PathBuf,
        agent: AgentId,
        at_ms: i64,
        serial: u64,
    },
    #[error(
        "store {path}: the screenshot of agent {agent} taken at {at_ms} ms was refused: \
         {source}; nothing was stored (take it again, or check the agent)"
    )]
    BadImage {
        path: PathBuf,
        agent: AgentId,
        at_ms: i64,
        source: ImageCheckError,
    },
    #[error(
        "store {path}: the frames batch of agent {agent} has a frame record at seq {seq} \
         without its image; nothing was stored: fetch every new frame's image (FetchFrame) \
         before ingesting the batch"
    )]
    FrameImageMissing {
        path: PathBuf,
        agent: AgentId,
        seq: u64,
    },
    #[error(
        "store {path}: the screenshot of agent {agent} was refused: {reason}; nothing was \
         stored"
    )]
    InvalidScreenshot {
        path: PathBuf,
        agent: AgentId,
        reason: Invalid,
    },
}
