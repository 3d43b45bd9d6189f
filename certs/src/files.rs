//! File plumbing shared by the site CA and identity files: private modes,
//! create-only writes that roll back together, bounded reads, and PEM
//! decoding whose errors name the file and say what to do.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

/// Mode of files holding a private key.
pub(crate) const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of files holding only certificates or public metadata.
pub(crate) const PUBLIC_FILE_MODE: u32 = 0o644;
/// Mode of directories this crate creates.
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;
/// No certificate, key or bundle we write comes near this; anything larger
/// is not ours and is refused before it is read into memory.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What went wrong with one file.
#[derive(Debug)]
pub enum FileProblem {
    /// The file or directory does not exist.
    Missing,
    /// The file exists and we refuse to overwrite it.
    AlreadyExists,
    /// Reading, writing or creating failed.
    Io(io::Error),
    /// The contents are not what this file must hold.
    Invalid(String),
    /// A file holding a private key is readable by other users.
    TooOpen { mode: u32 },
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileProblem::Missing => f.write_str("does not exist"),
            FileProblem::AlreadyExists => f.write_str("already exists, nothing was overwritten"),
            FileProblem::Io(err) => write!(f, "{err}"),
            FileProblem::Invalid(reason) => f.write_str(reason),
            FileProblem::TooOpen { mode } => {
                write!(f, "holds a private key but has mode {mode:04o}")
            }
        }
    }
}

/// A file-level failure: which file (and what it is for), what went wrong,
/// and what the user should do about it.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {problem}; {hint}", path.display())]
pub struct FileError {
    /// What the file is for, e.g. "site CA key".
    pub what: &'static str,
    pub path: PathBuf,
    pub problem: FileProblem,
    /// What to do about it.
    pub hint: String,
}

impl FileError {
    pub(crate) fn new(
        what: &'static str,
        path: &Path,
        problem: FileProblem,
        hint: impl Into<String>,
    ) -> Self {
        FileError {
            what,
            path: path.to_path_buf(),
            problem,
            hint: hint.into(),
        }
    }

    pub(crate) fn invalid(
        what: &'static str,
        path: &Path,
        reason: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(what, path, FileProblem::Invalid(reason.into()), hint)
    }

    pub(crate) fn io(what: &'static str, path: &Path, err: io::Error, hint: &str) -> Self {
        let problem = match err.kind() {
            io::ErrorKind::NotFound => FileProblem::Missing,
            io::ErrorKind::AlreadyExists => FileProblem::AlreadyExists,
            _ => FileProblem::Io(err),
        };
        let hint = match problem {
            FileProblem::AlreadyExists => {
                "choose another path or move the existing file away yourself"
            }
            _ => hint,
        };
        Self::new(what, path, problem, hint)
    }
}

const READ_HINT: &str = "check the path and that this user may read it";
const WRITE_HINT: &str = "check that the directory is writable by this user";

/// Reads a whole file, refusing anything larger than any file we write.
pub(crate) fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, FileError> {
    let file = File::open(path).map_err(|err| FileError::io(what, path, err, READ_HINT))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| FileError::io(what, path, err, READ_HINT))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::invalid(
            what,
            path,
            format!("larger than {MAX_FILE_BYTES} bytes, not a SmartTracker file"),
            "check the path",
        ));
    }
    Ok(bytes)
}

/// Reads a file that holds a private key; refuses it if group or others may
/// access it, as ssh does.
pub(crate) fn read_private(path: &Path, what: &'static str) -> Result<Vec<u8>, FileError> {
    let meta = fs::metadata(path).map_err(|err| FileError::io(what, path, err, READ_HINT))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileError::new(
            what,
            path,
            FileProblem::TooOpen { mode },
            format!("run `chmod 600 {}`", path.display()),
        ));
    }
    read(path, what)
}

/// Reads a file as UTF-8 text.
pub(crate) fn read_text(
    bytes: Vec<u8>,
    path: &Path,
    what: &'static str,
) -> Result<String, FileError> {
    String::from_utf8(bytes).map_err(|_| {
        FileError::invalid(what, path, "not a text (UTF-8 PEM) file", "check the path")
    })
}

/// Creates `dir` (and missing parents) with mode 0700; an existing
/// directory is left as it is.
pub(crate) fn ensure_dir(dir: &Path, what: &'static str) -> Result<(), FileError> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .map_err(|err| {
            FileError::io(
                what,
                dir,
                err,
                "check that the parent directory exists and is writable",
            )
        })?;
    if dir.is_dir() {
        Ok(())
    } else {
        Err(FileError::invalid(
            what,
            dir,
            "is not a directory",
            "choose another path",
        ))
    }
}

/// Fails if `path` exists (as anything, even a dangling symlink).
pub(crate) fn refuse_existing(path: &Path, what: &'static str) -> Result<(), FileError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Err(FileError::new(
            what,
            path,
            FileProblem::AlreadyExists,
            "choose another path or move the existing file away yourself",
        )),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(FileError::io(what, path, err, READ_HINT)),
    }
}

/// A set of files written together: each is created (never overwritten);
/// if the set is dropped before `commit`, the files it created are removed
/// so a failure leaves nothing half-written behind.
#[derive(Debug, Default)]
pub(crate) struct NewFiles {
    created: Vec<PathBuf>,
}

impl NewFiles {
    pub(crate) fn write(
        &mut self,
        path: &Path,
        what: &'static str,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), FileError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|err| FileError::io(what, path, err, WRITE_HINT))?;
        self.created.push(path.to_path_buf());
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|err| FileError::io(what, path, err, WRITE_HINT))
    }

    pub(crate) fn commit(mut self) {
        self.created.clear();
    }
}

impl Drop for NewFiles {
    fn drop(&mut self) {
        for path in &self.created {
            // Best effort: we are already reporting the error that got us here.
            let _ = fs::remove_file(path);
        }
    }
}

fn pem_problem(err: &pem::Error) -> String {
    match err {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_owned(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".to_owned(),
        pem::Error::SectionTooLarge => "a PEM block is too large".to_owned(),
        other => format!("unreadable PEM ({other})"),
    }
}

/// All `CERTIFICATE` blocks of a PEM file, in file order.
pub(crate) fn pem_certificates(
    bytes: &[u8],
    path: &Path,
    what: &'static str,
    hint: &str,
) -> Result<Vec<CertificateDer<'static>>, FileError> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| FileError::invalid(what, path, pem_problem(&err), hint))
}

/// Exactly one `CERTIFICATE` block.
pub(crate) fn pem_single_certificate(
    bytes: &[u8],
    path: &Path,
    what: &'static str,
    hint: &str,
) -> Result<CertificateDer<'static>, FileError> {
    let mut certs = pem_certificates(bytes, path, what, hint)?;
    match certs.len() {
        1 => Ok(certs.remove(0)),
        0 => Err(FileError::invalid(
            what,
            path,
            "corrupt PEM: no certificate found",
            hint,
        )),
        n => Err(FileError::invalid(
            what,
            path,
            format!("holds {n} certificates where one is expected"),
            hint,
        )),
    }
}

/// Exactly one unencrypted PKCS#8 `PRIVATE KEY` block.
pub(crate) fn pem_single_pkcs8_key(
    bytes: &[u8],
    path: &Path,
    what: &'static str,
    hint: &str,
) -> Result<PrivatePkcs8KeyDer<'static>, FileError> {
    let mut keys = PrivatePkcs8KeyDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| FileError::invalid(what, path, pem_problem(&err), hint))?;
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 => Err(FileError::invalid(
            what,
            path,
            "corrupt PEM: no PKCS#8 private key found",
            hint,
        )),
        n => Err(FileError::invalid(
            what,
            path,
            format!("holds {n} private keys where one is expected"),
            hint,
        )),
    }
}

/// PEM text of a certificate.
pub(crate) fn certificate_pem(der: &CertificateDer<'_>) -> Result<String, pkcs8::der::Error> {
    pkcs8::Document::try_from(der.as_ref())?.to_pem("CERTIFICATE", pkcs8::LineEnding::LF)
}

/// PEM text of an unencrypted PKCS#8 key; the returned buffer is wiped on drop.
pub(crate) fn pkcs8_key_pem(
    der: &PrivatePkcs8KeyDer<'_>,
) -> Result<impl std::ops::Deref<Target = String>, pkcs8::der::Error> {
    pkcs8::SecretDocument::try_from(der.secret_pkcs8_der())?
        .to_pem("PRIVATE KEY", pkcs8::LineEnding::LF)
}
