//! Screenshots at rest: metadata in clear in an index (so listing needs no
//! key), each image encrypted with XChaCha20-Poly1305 under the console's
//! screenshot key and bound to its agent and key, in the same sled tree
//! and atomic batches as records and cursors.
//!
//! # Layout (tree `data`)
//!
//! - `['S'][agent][at_ms: i64][serial: u64]` → index value, format 1:
//!   `[1][width: u32][height: u32][size_bytes: u32][flags: u8]
//!   [source: u8][sha256: 32 bytes]`; flags bit 0: blurred, bit 1: the
//!   image is stored (clear when the workstation dropped it before the
//!   console fetched it); source 0: periodic, 1: on demand.
//! - `['I'][agent][at_ms][serial]` → `[1][nonce: 24 bytes][ciphertext +
//!   16-byte tag]` of the JPEG bytes, with a random nonce per image and
//!   the associated data [`IMAGE_AAD_DOMAIN`] ‖ this `'I'` key, so a value
//!   moved under another key (agent, time or serial) does not decrypt.
//! - `['N'][agent]` → the agent's next serial (u64), which keeps two
//!   screenshots of the same millisecond apart.
//!
//! Default tree: `screenshot_key_check` → SHA-256 of
//! [`KEY_CHECK_DOMAIN`] ‖ key, written when the key is first used, so a
//! wrong key file is told apart from an altered value.
//!
//! # The key
//!
//! 32 bytes from the operating system's CSPRNG, made on first use and
//! kept in `DATA/identity/screenshots.key` (mode 0600, text:
//! [`KEY_FILE_HEADER`] then 64 hex digits), next to the console's TLS key:
//! it is as secret as that key and is backed up with it, while a copy of
//! `DATA/store` alone (a backup, a disk image) shows no screen. Plain image
//! bytes never reach sled: they are encrypted before any write.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use protocol::{CapturedImage, FrameMeta, ImageFormat, UnixMillis};
use sha2::{Digest, Sha256};

use crate::model::AgentId;

use super::keys::{
    parse_shot_key, shot_key, shot_serial_key, shot_time_bound, SHOT_IMAGE_PREFIX,
    SHOT_INDEX_PREFIX,
};
use super::{AuditEntry, ConsoleStore, PrunedKind, StoreError};

/// The key file inside the console's identity directory.
pub const SCREENSHOT_KEY_FILE: &str = "screenshots.key";
/// First line of a key file.
pub const KEY_FILE_HEADER: &str = "smarttracker-console screenshot key v1";
/// Domain of the key check kept in the store.
pub const KEY_CHECK_DOMAIN: &[u8] = b"smarttracker-console-screenshot-key-check-v1\0";
/// Domain of the associated data of every encrypted image.
pub const IMAGE_AAD_DOMAIN: &[u8] = b"smarttracker-console-screenshot-v1\0";
/// Largest screenshot kept, in bytes (a 4K desktop at high quality is a
/// few MiB; the wire caps a response at 16 MiB).
pub const MAX_SCREENSHOT_BYTES: usize = 12 * 1024 * 1024;
/// Widest or tallest screenshot decoded, in pixels.
pub const MAX_SCREENSHOT_SIDE_PX: u32 = 16_384;
/// Most memory one JPEG decode may take, in bytes.
const MAX_DECODE_ALLOC_BYTES: u64 = 1024 * 1024 * 1024;

const KEY_BYTES: usize = 32;
const KEY_CHECK_KEY: &[u8] = b"screenshot_key_check";
/// Longest key file read (the real one is 104 bytes).
const MAX_KEY_FILE_BYTES: u64 = 4096;
const IMAGE_FORMAT_V1: u8 = 1;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
const INDEX_FORMAT_V1: u8 = 1;
const INDEX_BYTES: usize = 1 + 4 + 4 + 4 + 1 + 1 + 32;
const FLAG_BLURRED: u8 = 1;
const FLAG_AVAILABLE: u8 = 2;
const KEY_FILE_MODE: u32 = 0o600;
const KEY_DIR_MODE: u32 = 0o700;
const JPEG_MAGIC: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// How a screenshot came to the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ShotSource {
    /// Taken by the agent on its policy's schedule, pulled by sync.
    Periodic,
    /// Asked for by an operator (CLI `screenshot`, the GUI).
    OnDemand,
}

impl ShotSource {
    /// Stable lower-case name for messages and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            ShotSource::Periodic => "periodic",
            ShotSource::OnDemand => "on-demand",
        }
    }

    fn tag(self) -> u8 {
        match self {
            ShotSource::Periodic => 0,
            ShotSource::OnDemand => 1,
        }
    }

    fn from_tag(tag: u8) -> Option<ShotSource> {
        match tag {
            0 => Some(ShotSource::Periodic),
            1 => Some(ShotSource::OnDemand),
            _ => None,
        }
    }
}

/// Names one stored screenshot; orders by agent, then time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ScreenshotKey {
    pub agent: AgentId,
    /// Capture time on the workstation's clock.
    pub at_ms: UnixMillis,
    /// Per-agent number keeping screenshots of the same millisecond apart.
    pub serial: u64,
}

/// What the index says of one screenshot (no decryption needed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScreenshotMeta {
    pub key: ScreenshotKey,
    pub width: u32,
    pub height: u32,
    pub size_bytes: u32,
    /// Blurred on the workstation before it left it.
    pub blurred: bool,
    pub source: ShotSource,
    /// The image is stored; `false` when the workstation dropped it (quota
    /// or retention) before the console fetched it.
    pub available: bool,
}

/// What an agent answered for the image of one frame record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchedFrame {
    Image(CapturedImage),
    /// The agent no longer has it (`ErrorCode::NotFound`).
    Dropped,
}

/// Why an image is not a screenshot this console keeps.
#[derive(Debug, thiserror::Error)]
pub enum ImageCheckError {
    #[error("the image is {size_bytes} bytes, more than the {MAX_SCREENSHOT_BYTES} a screenshot may have")]
    TooLarge { size_bytes: usize },
    #[error("the image is {size_bytes} bytes but its metadata says {expected_bytes}")]
    SizeMismatch {
        size_bytes: usize,
        expected_bytes: u32,
    },
    #[error("the image's SHA-256 does not match its metadata (altered or damaged in transit)")]
    HashMismatch,
    #[error("the image is {format:?}; this console keeps JPEG screenshots only")]
    NotJpegFormat { format: ImageFormat },
    #[error("the bytes are not a JPEG (they do not start with FF D8 FF)")]
    NoJpegMagic,
    #[error("the JPEG does not decode: {reason}")]
    Undecodable { reason: String },
    #[error(
        "the JPEG is {width}x{height} pixels but its metadata says {meta_width}x{meta_height}"
    )]
    DimensionMismatch {
        width: u32,
        height: u32,
        meta_width: u32,
        meta_height: u32,
    },
}

/// What is wrong with the screenshot key file; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ScreenshotKeyError {
    #[error(
        "the screenshot key {key_file} is missing, but this store's screenshots were encrypted \
         with it: put the file back from the backup of the console's identity directory \
         (without it they cannot be read)"
    )]
    Missing { key_file: PathBuf },
    #[error(
        "the screenshot key {key_file} is not the key this store's screenshots were encrypted \
         with (another console's key, or a replaced file): put back this console's own key \
         file from the backup of its identity directory"
    )]
    WrongKey { key_file: PathBuf },
    #[error(
        "{key_file} is not a screenshot key ({reason}): put back the file from the backup of \
         the console's identity directory"
    )]
    Malformed { key_file: PathBuf, reason: String },
    #[error(
        "{key_file} holds the screenshot key but has mode {mode:04o}: run `chmod 600 {key_file}`"
    )]
    TooOpen { key_file: PathBuf, mode: u32 },
    #[error(
        "cannot {action} the screenshot key {key_file}: {source}; check the permissions of the \
         console's identity directory"
    )]
    Io {
        key_file: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
}

/// The loaded key, ready to seal and open images.
pub(crate) struct ShotCipher {
    cipher: XChaCha20Poly1305,
    key_file: PathBuf,
}

impl std::fmt::Debug for ShotCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShotCipher")
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// Where the store in `store_dir` keeps its screenshot key: the identity
/// directory of the same console data directory.
pub(crate) fn key_file_for(store_dir: &Path) -> PathBuf {
    let data_dir = store_dir.parent().unwrap_or(store_dir);
    data_dir.join(crate::IDENTITY_DIR).join(SCREENSHOT_KEY_FILE)
}

/// Checks `bytes` against `meta`: size cap, size, SHA-256, JPEG, and that
/// it decodes whole to the stated dimensions.
pub fn check_image(meta: &FrameMeta, bytes: &[u8]) -> Result<(), ImageCheckError> {
    check_digest(meta, bytes)?;
    if meta.format != ImageFormat::Jpeg {
        return Err(ImageCheckError::NotJpegFormat {
            format: meta.format,
        });
    }
    let (width, height) = jpeg_dimensions(bytes)?;
    if (width, height) != (meta.width, meta.height) {
        return Err(ImageCheckError::DimensionMismatch {
            width,
            height,
            meta_width: meta.width,
            meta_height: meta.height,
        });
    }
    Ok(())
}

/// The cheap part of [`check_image`]: size cap, size and SHA-256.
pub fn check_digest(meta: &FrameMeta, bytes: &[u8]) -> Result<(), ImageCheckError> {
    if bytes.len() > MAX_SCREENSHOT_BYTES {
        return Err(ImageCheckError::TooLarge {
            size_bytes: bytes.len(),
        });
    }
    if u32::try_from(bytes.len()).ok() != Some(meta.size_bytes) {
        return Err(ImageCheckError::SizeMismatch {
            size_bytes: bytes.len(),
            expected_bytes: meta.size_bytes,
        });
    }
    if <[u8; 32]>::from(Sha256::digest(bytes)) != meta.sha256 {
        return Err(ImageCheckError::HashMismatch);
    }
    Ok(())
}

/// Decodes `bytes` whole as a JPEG (bounded in size and memory) and
/// returns its width and height in pixels.
pub fn jpeg_dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageCheckError> {
    if bytes.len() > MAX_SCREENSHOT_BYTES {
        return Err(ImageCheckError::TooLarge {
            size_bytes: bytes.len(),
        });
    }
    if !bytes.starts_with(&JPEG_MAGIC) {
        return Err(ImageCheckError::NoJpegMagic);
    }
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Jpeg);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SCREENSHOT_SIDE_PX);
    limits.max_image_height = Some(MAX_SCREENSHOT_SIDE_PX);
    limits.max_alloc = Some(MAX_DECODE_ALLOC_BYTES);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|error| ImageCheckError::Undecodable {
            reason: error.to_string(),
        })?;
    Ok((decoded.width(), decoded.height()))
}

fn key_check(key: &[u8; KEY_BYTES]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(KEY_CHECK_DOMAIN);
    hasher.update(key);
    hasher.finalize().into()
}

fn key_file_text(key: &[u8; KEY_BYTES]) -> String {
    format!("{KEY_FILE_HEADER}\n{}\n", hex::encode(key))
}

fn parse_key_file(text: &[u8]) -> Result<[u8; KEY_BYTES], String> {
    let text = std::str::from_utf8(text).map_err(|_| "it is not text".to_owned())?;
    let mut lines = text.lines();
    if lines.next() != Some(KEY_FILE_HEADER) {
        return Err(format!("its first line is not {KEY_FILE_HEADER:?}"));
    }
    let digits = lines.next().unwrap_or("").trim();
    if lines.any(|line| !line.trim().is_empty()) {
        return Err("it has lines after the key".to_owned());
    }
    let mut key = [0_u8; KEY_BYTES];
    hex::decode_to_slice(digits, &mut key)
        .map_err(|_| format!("its second line is not {} hex digits", KEY_BYTES * 2))?;
    Ok(key)
}

fn key_io(
    key_file: &Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> ScreenshotKeyError {
    let key_file = key_file.to_path_buf();
    move |source| ScreenshotKeyError::Io {
        key_file,
        action,
        source,
    }
}

/// Reads the key file; `None` if there is none.
fn read_key_file(key_file: &Path) -> Result<Option<[u8; KEY_BYTES]>, ScreenshotKeyError> {
    let file = match std::fs::File::open(key_file) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(key_io(key_file, "open")(error)),
    };
    let mode = file
        .metadata()
        .map_err(key_io(key_file, "read"))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(ScreenshotKeyError::TooOpen {
            key_file: key_file.to_path_buf(),
            mode,
        });
    }
    let mut text = Vec::new();
    file.take(MAX_KEY_FILE_BYTES)
        .read_to_end(&mut text)
        .map_err(key_io(key_file, "read"))?;
    parse_key_file(&text)
        .map(Some)
        .map_err(|reason| ScreenshotKeyError::Malformed {
            key_file: key_file.to_path_buf(),
            reason,
        })
}

/// Makes a new key and writes it to `key_file` (mode 0600, never over an
/// existing file), durably, before anything is encrypted with it.
fn create_key_file(key_file: &Path) -> Result<[u8; KEY_BYTES], ScreenshotKeyError> {
    let key: [u8; KEY_BYTES] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
    let dir = key_file.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(KEY_DIR_MODE)
        .create(dir)
        .map_err(key_io(dir, "create the directory of"))?;
    let temp = dir.join(format!(".{SCREENSHOT_KEY_FILE}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(KEY_FILE_MODE)
            .open(&temp)?;
        file.write_all(key_file_text(&key).as_bytes())?;
        file.sync_all()?;
        // A link never replaces an existing key.
        std::fs::hard_link(&temp, key_file)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    let _ = std::fs::remove_file(&temp);
    written.map_err(key_io(key_file, "create"))?;
    Ok(key)
}

impl ShotCipher {
    fn new(key: &[u8; KEY_BYTES], key_file: &Path) -> ShotCipher {
        ShotCipher {
            cipher: XChaCha20Poly1305::new(key.into()),
            key_file: key_file.to_path_buf(),
        }
    }

    /// `[1][nonce][ciphertext + tag]` of `plain`, bound to `image_key`.
    fn seal(&self, image_key: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = aad(image_key);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .ok()?;
        let mut value = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
        value.push(IMAGE_FORMAT_V1);
        value.extend_from_slice(&nonce);
        value.extend_from_slice(&sealed);
        Some(value)
    }

    /// The plain bytes of a value made by [`Self::seal`] for `image_key`;
    /// `None` if it was altered, moved or made with another key.
    fn open(&self, image_key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        if value.len() < 1 + NONCE_BYTES + TAG_BYTES
            || value.len() > 1 + NONCE_BYTES + MAX_SCREENSHOT_BYTES + TAG_BYTES
            || value[0] != IMAGE_FORMAT_V1
        {
            return None;
        }
        let nonce = XNonce::from_slice(&value[1..1 + NONCE_BYTES]);
        let aad = aad(image_key);
        self.cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &value[1 + NONCE_BYTES..],
                    aad: &aad,
                },
            )
            .ok()
    }
}

fn aad(image_key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(IMAGE_AAD_DOMAIN.len() + image_key.len());
    aad.extend_from_slice(IMAGE_AAD_DOMAIN);
    aad.extend_from_slice(image_key);
    aad
}

/// One index entry as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexEntry {
    width: u32,
    height: u32,
    size_bytes: u32,
    blurred: bool,
    available: bool,
    source: ShotSource,
    sha256: [u8; 32],
}

impl IndexEntry {
    fn of(meta: &FrameMeta, source: ShotSource, available: bool) -> IndexEntry {
        IndexEntry {
            width: meta.width,
            height: meta.height,
            size_bytes: meta.size_bytes,
            blurred: meta.blurred,
            available,
            source,
            sha256: meta.sha256,
        }
    }

    fn encode(&self) -> [u8; INDEX_BYTES] {
        let mut value = [0_u8; INDEX_BYTES];
        value[0] = INDEX_FORMAT_V1;
        value[1..5].copy_from_slice(&self.width.to_be_bytes());
        value[5..9].copy_from_slice(&self.height.to_be_bytes());
        value[9..13].copy_from_slice(&self.size_bytes.to_be_bytes());
        if self.blurred {
            value[13] |= FLAG_BLURRED;
        }
        if self.available {
            value[13] |= FLAG_AVAILABLE;
        }
        value[14] = self.source.tag();
        value[15..].copy_from_slice(&self.sha256);
        value
    }

    fn decode(value: &[u8]) -> Option<IndexEntry> {
        let value = <&[u8; INDEX_BYTES]>::try_from(value).ok()?;
        if value[0] != INDEX_FORMAT_V1 || value[13] & !(FLAG_BLURRED | FLAG_AVAILABLE) != 0 {
            return None;
        }
        let u32_at = |at: usize| value[at..at + 4].try_into().ok().map(u32::from_be_bytes);
        Some(IndexEntry {
            width: u32_at(1)?,
            height: u32_at(5)?,
            size_bytes: u32_at(9)?,
            blurred: value[13] & FLAG_BLURRED != 0,
            available: value[13] & FLAG_AVAILABLE != 0,
            source: ShotSource::from_tag(value[14])?,
            sha256: value[15..].try_into().ok()?,
        })
    }

    fn meta(&self, key: ScreenshotKey) -> ScreenshotMeta {
        ScreenshotMeta {
            key,
            width: self.width,
            height: self.height,
            size_bytes: self.size_bytes,
            blurred: self.blurred,
            source: self.source,
            available: self.available,
        }
    }
}

/// A screenshot ready to join an atomic batch: its index entry and, when
/// available, its encrypted image.
pub(crate) struct SealedShot {
    pub(crate) meta: ScreenshotMeta,
    index_key: Vec<u8>,
    index_value: [u8; INDEX_BYTES],
    image: Option<(Vec<u8>, Vec<u8>)>,
}

impl SealedShot {
    pub(crate) fn stage(self, writes: &mut sled::Batch) {
        writes.insert(self.index_key, &self.index_value[..]);
        if let Some((image_key, sealed)) = self.image {
            writes.insert(image_key, sealed);
        }
    }
}

/// Hands out serials of one agent inside one writer turn.
pub(crate) struct Serials {
    agent: AgentId,
    next: u64,
}

impl Serials {
    fn take(&mut self) -> u64 {
        let serial = self.next;
        self.next = self.next.saturating_add(1);
        serial
    }

    pub(crate) fn stage(&self, writes: &mut sled::Batch) {
        writes.insert(shot_serial_key(self.agent), &self.next.to_be_bytes()[..]);
    }
}

impl ConsoleStore {
    /// Where this store's screenshot key lives.
    pub fn screenshot_key_file(&self) -> &Path {
        &self.screenshot_key_file
    }

    /// Stores a screenshot the caller obtained (an on-demand capture),
    /// encrypted, after checking it (size, SHA-256, a whole JPEG of the
    /// stated dimensions); flushed, then audited.
    pub fn put_screenshot(
        &self,
        agent: AgentId,
        source: ShotSource,
        image: &CapturedImage,
    ) -> Result<ScreenshotMeta, StoreError> {
        let now_ms = crate::clock::wall_now_ms();
        crate::validate::check_frame_meta(&image.meta, now_ms).map_err(|reason| {
            StoreError::InvalidScreenshot {
                path: self.path.clone(),
                agent,
                reason,
            }
        })?;
        let writer = self.write_guard();
        let mut serials = self.serials(agent)?;
        let sealed =
            self.seal_shot(agent, source, &mut serials, &image.meta, Some(&image.bytes))?;
        let meta = sealed.meta.clone();
        let mut writes = sled::Batch::default();
        sealed.stage(&mut writes);
        serials.stage(&mut writes);
        self.data
            .apply_batch(writes)
            .map_err(|source| self.sled_error(source))?;
        drop(writer);
        self.sync()?;
        self.audit(AuditEntry {
            at_ms: now_ms,
            actor: "console".to_owned(),
            action: "screenshot-store".to_owned(),
            target: agent.to_string(),
            detail: format!(
                "{} {}x{} JPEG, {} bytes, captured at {} ms (serial {})",
                source.name(),
                meta.width,
                meta.height,
                meta.size_bytes,
                meta.key.at_ms,
                meta.key.serial
            ),
        })?;
        Ok(meta)
    }

    /// Screenshots of `agent` taken in `[from_ms, to_ms)`, in time order,
    /// from the index alone.
    pub fn screenshots(
        &self,
        agent: AgentId,
        from_ms: UnixMillis,
        to_ms: UnixMillis,
    ) -> Result<Vec<ScreenshotMeta>, StoreError> {
        let mut found = Vec::new();
        if from_ms >= to_ms {
            return Ok(found);
        }
        let range = shot_time_bound(SHOT_INDEX_PREFIX, agent, from_ms)
            ..shot_time_bound(SHOT_INDEX_PREFIX, agent, to_ms);
        for item in self.data.range(range) {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            let shot = self.parse_index_key(&key)?;
            found.push(self.decode_index(shot, &value)?.meta(shot));
        }
        Ok(found)
    }

    /// The JPEG bytes of one screenshot, decrypted and checked against the
    /// index (size and SHA-256); every call is audited.
    pub fn screenshot_jpeg(&self, key: ScreenshotKey) -> Result<Vec<u8>, StoreError> {
        let index_key = shot_key(SHOT_INDEX_PREFIX, key.agent, key.at_ms, key.serial);
        let Some(index) = self.get_data(&index_key)? else {
            return Err(StoreError::ScreenshotNotFound {
                path: self.path.clone(),
                agent: key.agent,
                at_ms: key.at_ms,
                serial: key.serial,
            });
        };
        let entry = self.decode_index(key, &index)?;
        if !entry.available {
            return Err(StoreError::ScreenshotDropped {
                agent: key.agent,
                at_ms: key.at_ms,
            });
        }
        let image_key = shot_key(SHOT_IMAGE_PREFIX, key.agent, key.at_ms, key.serial);
        let sealed = self.get_data(&image_key)?.ok_or_else(|| {
            self.corrupt(format!(
                "the index lists a stored image of agent {} at {} ms (serial {}) that is \
                 missing",
                key.agent, key.at_ms, key.serial
            ))
        })?;
        let cipher = self.screenshot_cipher()?;
        let plain = cipher
            .open(&image_key, &sealed)
            .filter(|plain| {
                u32::try_from(plain.len()).ok() == Some(entry.size_bytes)
                    && <[u8; 32]>::from(Sha256::digest(plain)) == entry.sha256
            })
            .ok_or_else(|| StoreError::ScreenshotTampered {
                path: self.path.clone(),
                key_file: cipher.key_file.clone(),
                agent: key.agent,
                at_ms: key.at_ms,
                serial: key.serial,
            })?;
        self.audit(AuditEntry {
            at_ms: crate::clock::wall_now_ms(),
            actor: "console".to_owned(),
            action: "screenshot-view".to_owned(),
            target: key.agent.to_string(),
            detail: format!(
                "{} {}x{} JPEG captured at {} ms (serial {})",
                entry.source.name(),
                entry.width,
                entry.height,
                key.at_ms,
                key.serial
            ),
        })?;
        Ok(plain)
    }

    /// The next serials of `agent`; the caller holds the writer lock and
    /// stages [`Serials::stage`] in its batch.
    pub(crate) fn serials(&self, agent: AgentId) -> Result<Serials, StoreError> {
        let next = match self.get_data(&shot_serial_key(agent))? {
            Some(value) => super::u64_value(&value).ok_or_else(|| {
                self.corrupt(format!(
                    "the screenshot serial of agent {agent} is not 8 bytes"
                ))
            })?,
            None => 0,
        };
        Ok(Serials { agent, next })
    }

    /// Checks and encrypts one screenshot (`bytes: None`: the workstation
    /// dropped it, only the metadata is kept).
    pub(crate) fn seal_shot(
        &self,
        agent: AgentId,
        source: ShotSource,
        serials: &mut Serials,
        meta: &FrameMeta,
        bytes: Option<&[u8]>,
    ) -> Result<SealedShot, StoreError> {
        if let Some(bytes) = bytes {
            check_image(meta, bytes).map_err(|source| StoreError::BadImage {
                path: self.path.clone(),
                agent,
                at_ms: meta.at_ms,
                source,
            })?;
        }
        let serial = serials.take();
        let key = ScreenshotKey {
            agent,
            at_ms: meta.at_ms,
            serial,
        };
        let entry = IndexEntry::of(meta, source, bytes.is_some());
        let image = match bytes {
            Some(bytes) => {
                let image_key = shot_key(SHOT_IMAGE_PREFIX, agent, meta.at_ms, serial);
                let sealed = self
                    .screenshot_cipher()?
                    .seal(&image_key, bytes)
                    .ok_or_else(|| StoreError::BadImage {
                        path: self.path.clone(),
                        agent,
                        at_ms: meta.at_ms,
                        source: ImageCheckError::TooLarge {
                            size_bytes: bytes.len(),
                        },
                    })?;
                Some((image_key, sealed))
            }
            None => None,
        };
        Ok(SealedShot {
            meta: entry.meta(key),
            index_key: shot_key(SHOT_INDEX_PREFIX, agent, meta.at_ms, serial),
            index_value: entry.encode(),
            image,
        })
    }

    /// Deletes the index entries and images of screenshots taken before
    /// `now_ms - frames_days`; the caller holds the writer lock and flushes.
    pub(crate) fn prune_screenshots(
        &self,
        now_ms: UnixMillis,
        frames_days: u16,
    ) -> Result<PrunedKind, StoreError> {
        let cutoff_ms = self.retention_cutoff_ms(now_ms, frames_days);
        let mut pruned = PrunedKind::default();
        self.for_each_agent(SHOT_INDEX_PREFIX, None, |agent| {
            let mut deletes = sled::Batch::default();
            let range = shot_time_bound(SHOT_INDEX_PREFIX, agent, i64::MIN)
                ..shot_time_bound(SHOT_INDEX_PREFIX, agent, cutoff_ms);
            for item in self.data.range(range) {
                let (key, value) = item.map_err(|source| self.sled_error(source))?;
                let shot = self.parse_index_key(&key)?;
                let image_key = shot_key(SHOT_IMAGE_PREFIX, agent, shot.at_ms, shot.serial);
                if let Some(image) = self.get_data(&image_key)? {
                    pruned.bytes += image.len() as u64;
                    deletes.remove(image_key);
                }
                pruned.bytes += value.len() as u64;
                pruned.records += 1;
                deletes.remove(key);
            }
            self.data
                .apply_batch(deletes)
                .map_err(|source| self.sled_error(source))
        })?;
        Ok(pruned)
    }

    /// The key, loaded (or made, on first use) once per open store.
    fn screenshot_cipher(&self) -> Result<Arc<ShotCipher>, StoreError> {
        let mut slot = self
            .screenshot_cipher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cipher) = slot.as_ref() {
            return Ok(cipher.clone());
        }
        let key_file = self.screenshot_key_file.as_path();
        let key_error = |source| StoreError::ScreenshotKey {
            path: self.path.clone(),
            source,
        };
        let stored_check = self
            .db
            .get(KEY_CHECK_KEY)
            .map_err(|source| self.sled_error(source))?;
        let key = match (read_key_file(key_file).map_err(key_error)?, &stored_check) {
            (Some(key), _) => key,
            (None, Some(_)) => {
                return Err(key_error(ScreenshotKeyError::Missing {
                    key_file: key_file.to_path_buf(),
                }))
            }
            (None, None) => create_key_file(key_file).map_err(key_error)?,
        };
        let check = key_check(&key);
        match stored_check {
            Some(stored) if stored.as_ref() != check.as_slice() => {
                return Err(key_error(ScreenshotKeyError::WrongKey {
                    key_file: key_file.to_path_buf(),
                }))
            }
            Some(_) => {}
            None => {
                self.db
                    .insert(KEY_CHECK_KEY, &check[..])
                    .map_err(|source| self.sled_error(source))?;
                self.sync()?;
            }
        }
        let cipher = Arc::new(ShotCipher::new(&key, key_file));
        *slot = Some(cipher.clone());
        Ok(cipher)
    }

    fn parse_index_key(&self, key: &[u8]) -> Result<ScreenshotKey, StoreError> {
        parse_shot_key(SHOT_INDEX_PREFIX, key)
            .map(|(agent, at_ms, serial)| ScreenshotKey {
                agent,
                at_ms,
                serial,
            })
            .ok_or_else(|| self.corrupt(format!("screenshot index key {key:02x?} is malformed")))
    }

    fn decode_index(&self, key: ScreenshotKey, value: &[u8]) -> Result<IndexEntry, StoreError> {
        IndexEntry::decode(value).ok_or_else(|| {
            self.corrupt(format!(
                "the index entry of the screenshot of agent {} at {} ms (serial {}) is malformed",
                key.agent, key.at_ms, key.serial
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_round_trip_and_reject_junk() {
        let entry = IndexEntry {
            width: 1920,
            height: 1080,
            size_bytes: 183_000,
            blurred: true,
            available: false,
            source: ShotSource::OnDemand,
            sha256: [7; 32],
        };
        assert_eq!(IndexEntry::decode(&entry.encode()), Some(entry));
        let mut bad = entry.encode();
        bad[0] = 2;
        assert_eq!(IndexEntry::decode(&bad), None, "unknown format");
        let mut bad = entry.encode();
        bad[14] = 9;
        assert_eq!(IndexEntry::decode(&bad), None, "unknown source");
        assert_eq!(IndexEntry::decode(&entry.encode()[..20]), None);
    }

    #[test]
    fn sealed_images_open_only_under_their_key_and_with_their_key() {
        let key_a = [1_u8; KEY_BYTES];
        let cipher = ShotCipher::new(&key_a, Path::new("a.key"));
        let image_key = shot_key(SHOT_IMAGE_PREFIX, AgentId::from_u128(1), 5, 0);
        let other_key = shot_key(SHOT_IMAGE_PREFIX, AgentId::from_u128(1), 5, 1);
        let plain = b"\xFF\xD8\xFF\xE0 not really a jpeg".to_vec();
        let sealed = cipher.seal(&image_key, &plain).expect("seal");
        assert_eq!(cipher.open(&image_key, &sealed), Some(plain.clone()));
        assert_eq!(cipher.open(&other_key, &sealed), None, "moved value");
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(cipher.open(&image_key, &flipped), None, "altered value");
        let other = ShotCipher::new(&[2_u8; KEY_BYTES], Path::new("b.key"));
        assert_eq!(other.open(&image_key, &sealed), None, "other key");
        assert_ne!(
            cipher.seal(&image_key, &plain),
            Some(sealed),
            "a fresh nonce per image"
        );
    }

    #[test]
    fn key_files_parse_strictly() {
        let key = [0xAB_u8; KEY_BYTES];
        assert_eq!(parse_key_file(key_file_text(&key).as_bytes()), Ok(key));
        assert!(parse_key_file(b"abab").is_err());
        assert!(parse_key_file(format!("{KEY_FILE_HEADER}\nabcd\n").as_bytes()).is_err());
        let trailing = format!("{}junk\n", key_file_text(&key));
        assert!(parse_key_file(trailing.as_bytes()).is_err());
        assert_eq!(
            key_file_for(Path::new("/data/console/store")),
            Path::new("/data/console/identity/screenshots.key")
        );
    }
}
