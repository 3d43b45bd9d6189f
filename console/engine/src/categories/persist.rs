//! The trained category model kept in the console's store: a console
//! process loads it in milliseconds instead of training it (about half a
//! second in a release build), and trains again only when what the model
//! depends on changed. [`load_or_train`] is the one way the console builds
//! its [`Categoriser`].
//!
//! # Key
//!
//! A stored model is valid for one SHA-256 key over: this format, the
//! build (`env!("CARGO_PKG_VERSION")`), the classifier with its
//! parameters and the vectoriser's settings ([`Model::fingerprint`]), and
//! every training row after de-duplication: the built-in CSV plus the
//! manager's labelled examples. The manager's rules are not part of it:
//! they are applied over the model, never trained on, so a rule change
//! takes effect without training.
//!
//! # Blob (store tree `models`, key `category`)
//!
//! `["STcm"][format: u8 = 1][key: 32][body length: u32 BE][body SHA-256: 32]`
//! then the body: bincode (standard) [`StoredModel`]. A blob is used only if
//! every check passes: magic, format, key, a length that is at most
//! [`MAX_MODEL_BLOB_BYTES`] and exactly what follows (checked before
//! decoding anything), the digest, bincode under the same limit, and the
//! model's own shape checks. Anything else — damaged, truncated, written
//! by another build or for other rows — is discarded, the model trained and
//! the fresh blob written over it; nothing on this path panics.

use sha2::{Digest, Sha256};

use super::model::{ClassifierKind, Model, StoredModel};
use super::rules::{Rule, RuleSet};
use super::{
    parse_training_csv, training_rows, CategoriesError, Categoriser, BUILTIN_TRAINING_CSV,
    BUILTIN_TRAINING_SOURCE,
};
use crate::store::{ConsoleStore, MAX_MODEL_BLOB_BYTES};

/// First bytes of a category model blob.
const MAGIC: [u8; 4] = *b"STcm";
/// Version of the blob layout (module doc).
const FORMAT: u8 = 1;
const KEY_BYTES: usize = 32;
const DIGEST_BYTES: usize = 32;
/// Offset of the body length in a blob (module doc).
pub const MODEL_BLOB_LENGTH_OFFSET: usize = MAGIC.len() + 1 + KEY_BYTES;
/// Bytes before the body.
const HEADER_BYTES: usize = MODEL_BLOB_LENGTH_OFFSET + 4 + DIGEST_BYTES;
/// Largest body: a blob never exceeds what the store keeps.
const MAX_BODY_BYTES: usize = MAX_MODEL_BLOB_BYTES - HEADER_BYTES;

/// Where the categoriser's model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Read back from the store: nothing was trained.
    Loaded,
    /// Trained by this process (and stored for the next), for this reason.
    Trained(Retrain),
}

/// Why the model was trained rather than loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retrain {
    /// The store held no model.
    NoneStored,
    /// The stored model was made by another build, another classifier
    /// configuration or from other training rows.
    Outdated,
    /// The stored model, or the store, could not be read (damaged,
    /// truncated, not a model): it was discarded.
    Unreadable,
}

/// What the model is trained on, and for which build.
#[derive(Debug, Clone, Copy)]
pub struct ModelInputs<'a> {
    /// The base training rows (the built-in CSV in the console).
    pub base_rows: &'a [(String, String)],
    /// The manager's labelled examples; they win over base rows naming the
    /// same app.
    pub labels: &'a [(String, String)],
    /// The build; a model stored by another is trained again.
    pub build: &'a str,
}

/// The console's categoriser: the model trained on the built-in CSV plus
/// `labels`, loaded from `store` when it was stored for exactly these rows
/// by this build, else trained and stored; `rules` over it. Blocks on the
/// store (and on training): call it off async workers.
pub fn load_or_train(
    store: &ConsoleStore,
    rules: Vec<Rule>,
    labels: &[(String, String)],
) -> Result<(Categoriser, Provenance), CategoriesError> {
    let builtin = parse_training_csv(BUILTIN_TRAINING_CSV, BUILTIN_TRAINING_SOURCE)?;
    load_or_train_from(
        store,
        ModelInputs {
            base_rows: &builtin,
            labels,
            build: env!("CARGO_PKG_VERSION"),
        },
        rules,
    )
}

/// [`load_or_train`] on any training rows and build name. Errors are those
/// of bad rules or training rows; a store that cannot be read or written
/// only costs a training (logged).
pub fn load_or_train_from(
    store: &ConsoleStore,
    inputs: ModelInputs<'_>,
    rules: Vec<Rule>,
) -> Result<(Categoriser, Provenance), CategoriesError> {
    let rules = RuleSet::new(rules)?;
    let mut rows = inputs.base_rows.to_vec();
    rows.extend_from_slice(inputs.labels);
    let training_rows = training_rows(&rows)?;
    let kind = ClassifierKind::CHOSEN;
    let key = model_key(&training_rows, kind, inputs.build);
    let retrain = match store.category_model_blob() {
        Ok(None) => Retrain::NoneStored,
        Ok(Some(blob)) => match decode(&blob, &key) {
            Ok(model) => {
                tracing::info!(
                    rows = training_rows.len(),
                    bytes = blob.len(),
                    "category model loaded from the store"
                );
                let categoriser = Categoriser {
                    training_rows,
                    model,
                    rules,
                };
                return Ok((categoriser, Provenance::Loaded));
            }
            Err(BlobError::Outdated) => Retrain::Outdated,
            Err(BlobError::Unreadable(detail)) => {
                tracing::warn!(%detail, "stored category model discarded");
                Retrain::Unreadable
            }
        },
        Err(error) => {
            tracing::warn!(%error, "cannot read the stored category model");
            Retrain::Unreadable
        }
    };
    let model = Model::fit(&training_rows, kind)?;
    tracing::info!(
        rows = training_rows.len(),
        reason = ?retrain,
        "category model trained"
    );
    match encode(&model, &key) {
        Ok(blob) => {
            if let Err(error) = store.put_category_model_blob(&blob) {
                tracing::warn!(%error, "category model not stored; the next start trains it again");
            }
        }
        Err(detail) => {
            tracing::warn!(%detail, "category model not stored; the next start trains it again");
        }
    }
    let categoriser = Categoriser {
        training_rows,
        model,
        rules,
    };
    Ok((categoriser, Provenance::Trained(retrain)))
}

/// Why a stored blob is not used.
enum BlobError {
    /// A well-formed blob for another key.
    Outdated,
    /// Not a blob of this format, or damaged; what is wrong.
    Unreadable(String),
}

/// The key a model trained on `rows` (de-duplicated) by `kind` in `build`
/// is stored under (module doc).
fn model_key(rows: &[(String, String)], kind: ClassifierKind, build: &str) -> [u8; KEY_BYTES] {
    let mut hasher = Sha256::new();
    let mut field = |text: &str| {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    };
    field("smarttracker category model");
    field(&FORMAT.to_string());
    field(build);
    field(&Model::fingerprint(kind));
    for (app, category) in rows {
        field(app);
        field(category);
    }
    hasher.finalize().into()
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_BODY_BYTES>()
}

fn encode(model: &Model, key: &[u8; KEY_BYTES]) -> Result<Vec<u8>, String> {
    let stored = model
        .to_stored()
        .ok_or_else(|| format!("a {} model is not kept", model.kind()))?;
    let body = bincode::serde::encode_to_vec(&stored, bincode_config())
        .map_err(|error| error.to_string())?;
    let length =
        u32::try_from(body.len()).map_err(|_| format!("the model takes {} bytes", body.len()))?;
    let mut blob = Vec::with_capacity(HEADER_BYTES + body.len());
    blob.extend_from_slice(&MAGIC);
    blob.push(FORMAT);
    blob.extend_from_slice(key);
    blob.extend_from_slice(&length.to_be_bytes());
    blob.extend_from_slice(&Sha256::digest(&body));
    blob.extend_from_slice(&body);
    Ok(blob)
}

fn decode(blob: &[u8], key: &[u8; KEY_BYTES]) -> Result<Model, BlobError> {
    let unreadable = BlobError::Unreadable;
    let header = blob.get(..HEADER_BYTES).ok_or_else(|| {
        unreadable(format!(
            "{} bytes, shorter than the {HEADER_BYTES}-byte header",
            blob.len()
        ))
    })?;
    let (magic, rest) = header.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(unreadable("not a category model".to_owned()));
    }
    let (&format, rest) = rest
        .split_first()
        .ok_or_else(|| unreadable("no format byte".to_owned()))?;
    if format != FORMAT {
        // Another build's layout: what follows is not ours to read.
        return Err(BlobError::Outdated);
    }
    let (stored_key, rest) = rest.split_at(KEY_BYTES);
    if stored_key != key {
        return Err(BlobError::Outdated);
    }
    let (length, digest) = rest.split_at(4);
    let mut length_bytes = [0; 4];
    length_bytes.copy_from_slice(length);
    let length = u32::from_be_bytes(length_bytes) as usize;
    let body = &blob[HEADER_BYTES..];
    if length > MAX_BODY_BYTES || length != body.len() {
        return Err(unreadable(format!(
            "announces a {length}-byte body, {} bytes follow (at most {MAX_BODY_BYTES})",
            body.len()
        )));
    }
    if Sha256::digest(body).as_slice() != digest {
        return Err(unreadable("its body does not match its digest".to_owned()));
    }
    let (stored, read) =
        bincode::serde::decode_from_slice::<StoredModel, _>(body, bincode_config())
            .map_err(|error| unreadable(format!("its body does not decode: {error}")))?;
    if read != body.len() {
        return Err(unreadable(format!(
            "{} bytes after the model",
            body.len() - read
        )));
    }
    Model::from_stored(stored).map_err(unreadable)
}
