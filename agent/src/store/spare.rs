//! Small files that can be rewritten on a full disk: the new content goes
//! into a spare next to the file, in place (over blocks it already holds),
//! and then the two are exchanged atomically (`renameat2` with
//! `RENAME_EXCHANGE`), so the old content becomes the next spare. Once both
//! exist at their size, a rewrite allocates nothing.
//!
//! The content is padded with spaces to the spare's size: JSON readers skip
//! trailing whitespace.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::fs::{renameat_with, RenameFlags, CWD};

/// Suffix of the spare next to each file.
pub const SPARE_SUFFIX: &str = ".spare";
/// Files grow in steps of this size, so small changes never need a block.
const SIZE_STEP_BYTES: u64 = 4096;
const SPACES: [u8; SIZE_STEP_BYTES as usize] = [b' '; SIZE_STEP_BYTES as usize];

/// The spare of `path`.
pub fn spare_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(SPARE_SUFFIX);
    PathBuf::from(name)
}

/// Makes `bytes` (then spaces) the content of `path`, atomically for
/// readers. `durable` syncs the new content before it replaces the old.
pub fn replace(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let spare = spare_path(path);
    write_padded(&spare, bytes, durable)?;
    match renameat_with(CWD, &spare, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        // No file yet (or a file system without exchange): a plain rename,
        // then a spare made now, while there is room for one.
        Err(_) => {
            std::fs::rename(&spare, path)?;
            write_padded(&spare, bytes, false)
        }
    }
}

/// Writes `bytes` over the start of `path` and pads it with spaces to its
/// current size, or to the next size step if `bytes` are longer.
fn write_padded(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let held_bytes = file.metadata()?.len();
    let content_bytes = bytes.len() as u64;
    let size_bytes = held_bytes.max(content_bytes.div_ceil(SIZE_STEP_BYTES) * SIZE_STEP_BYTES);
    file.write_all(bytes)?;
    let mut padding_bytes = size_bytes - content_bytes;
    while padding_bytes > 0 {
        let chunk_bytes = padding_bytes.min(SIZE_STEP_BYTES);
        file.write_all(&SPACES[..chunk_bytes as usize])?;
        padding_bytes -= chunk_bytes;
    }
    if durable {
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_keep_both_files_and_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("note.json");
        replace(&path, b"{\"a\":1}", true).unwrap();
        assert!(spare_path(&path).is_file(), "a spare is made at once");
        let long = vec![b'x'; 5000];
        replace(&path, &long, false).unwrap();
        replace(&path, b"[2]", false).unwrap();
        let read = std::fs::read(&path).unwrap();
        assert_eq!(read.len() % 4096, 0, "padded to whole size steps");
        assert_eq!(String::from_utf8(read).unwrap().trim_end(), "[2]");
        let spare_bytes = std::fs::metadata(spare_path(&path)).unwrap().len();
        assert_eq!(
            spare_bytes, 8192,
            "the long content's file is the spare now"
        );
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(value, serde_json::json!([2]));
    }
}
