//! User login sessions read from utmp (`/var/run/utmp`): who is logged in,
//! on which line, from where, since when.
//!
//! The file holds glibc `struct utmp` records (x86_64 and aarch64 layout,
//! native byte order, 384 bytes each). They are parsed by hand, field by
//! field, so a short, truncated or garbled file yields fewer sessions, never
//! a panic.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::SensorError;

/// Where glibc keeps the current logins.
pub const SYSTEM_UTMP: &str = "/var/run/utmp";

/// Size of one glibc `struct utmp` record on x86_64 and aarch64.
pub const UTMP_RECORD_BYTES: usize = 384;

/// `ut_type` of a normal user login.
const USER_PROCESS: i16 = 7;
/// A utmp file larger than this is not read past it (~43k records).
const UTMP_MAX_BYTES: u64 = 16 * 1024 * 1024;

// Field offsets within one record.
const TYPE_AT: usize = 0;
const LINE_AT: usize = 8;
const LINE_BYTES: usize = 32;
const USER_AT: usize = 44;
const USER_BYTES: usize = 32;
const HOST_AT: usize = 76;
const HOST_BYTES: usize = 256;
const TV_SEC_AT: usize = 340;
const TV_USEC_AT: usize = 344;

/// One logged-in user session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// Login name (`ut_user`).
    pub user: String,
    /// Terminal line (`ut_line`), e.g. `tty2`, `pts/0` or `:0`.
    pub line: String,
    /// Remote host or display (`ut_host`), when set.
    pub host: Option<String>,
    /// Login time, Unix milliseconds.
    pub login_ms: i64,
}

/// The user sessions currently open on this machine.
pub trait SessionSensor: Send {
    fn sessions(&mut self) -> Result<Vec<UserSession>, SensorError>;
}

/// [`SessionSensor`] reading a utmp file.
#[derive(Debug, Clone)]
pub struct UtmpSessions {
    path: PathBuf,
}

impl UtmpSessions {
    /// Reads the utmp file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UtmpSessions { path: path.into() }
    }

    /// Reads the system's utmp ([`SYSTEM_UTMP`]).
    pub fn system() -> Self {
        Self::new(SYSTEM_UTMP)
    }

    /// The file this sensor reads.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SessionSensor for UtmpSessions {
    fn sessions(&mut self) -> Result<Vec<UserSession>, SensorError> {
        let read_error = |err: std::io::Error| SensorError::Read {
            path: self.path.display().to_string(),
            reason: err.to_string(),
        };
        let mut bytes = Vec::new();
        File::open(&self.path)
            .map_err(read_error)?
            .take(UTMP_MAX_BYTES)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        Ok(parse_utmp(&bytes))
    }
}

/// The `USER_PROCESS` records of a utmp file, in file order. Records of
/// other types, with an empty user name, or cut short at the end of the
/// file are skipped. Names that are not UTF-8 are decoded lossily.
pub fn parse_utmp(bytes: &[u8]) -> Vec<UserSession> {
    bytes
        .chunks_exact(UTMP_RECORD_BYTES)
        .filter_map(parse_record)
        .collect()
}

fn parse_record(record: &[u8]) -> Option<UserSession> {
    let ut_type = i16::from_ne_bytes(record.get(TYPE_AT..TYPE_AT + 2)?.try_into().ok()?);
    if ut_type != USER_PROCESS {
        return None;
    }
    let user = c_string(record.get(USER_AT..USER_AT + USER_BYTES)?);
    if user.is_empty() {
        return None;
    }
    let line = c_string(record.get(LINE_AT..LINE_AT + LINE_BYTES)?);
    let host = c_string(record.get(HOST_AT..HOST_AT + HOST_BYTES)?);
    // glibc stores `ut_tv` as two int32 on 64-bit targets; seconds are read
    // unsigned so that logins after 2038 stay right.
    let seconds = u32::from_ne_bytes(record.get(TV_SEC_AT..TV_SEC_AT + 4)?.try_into().ok()?);
    let micros = i32::from_ne_bytes(record.get(TV_USEC_AT..TV_USEC_AT + 4)?.try_into().ok()?);
    let login_ms = i64::from(seconds) * 1000 + i64::from(micros.clamp(0, 999_999)) / 1000;
    Some(UserSession {
        user,
        line,
        host: (!host.is_empty()).then_some(host),
        login_ms,
    })
}

/// A fixed-size C char array: up to the first NUL (or all of it).
fn c_string(field: &[u8]) -> String {
    let end = field
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT_TIME: i16 = 2;
    const DEAD_PROCESS: i16 = 8;

    struct Entry<'a> {
        ut_type: i16,
        user: &'a [u8],
        line: &'a [u8],
        host: &'a [u8],
        seconds: u32,
        micros: i32,
    }

    fn record(entry: &Entry<'_>) -> Vec<u8> {
        let mut bytes = vec![0u8; UTMP_RECORD_BYTES];
        bytes[TYPE_AT..TYPE_AT + 2].copy_from_slice(&entry.ut_type.to_ne_bytes());
        bytes[4..8].copy_from_slice(&4242i32.to_ne_bytes());
        bytes[LINE_AT..LINE_AT + entry.line.len()].copy_from_slice(entry.line);
        bytes[USER_AT..USER_AT + entry.user.len()].copy_from_slice(entry.user);
        bytes[HOST_AT..HOST_AT + entry.host.len()].copy_from_slice(entry.host);
        bytes[TV_SEC_AT..TV_SEC_AT + 4].copy_from_slice(&entry.seconds.to_ne_bytes());
        bytes[TV_USEC_AT..TV_USEC_AT + 4].copy_from_slice(&entry.micros.to_ne_bytes());
        bytes
    }

    fn user(user: &'static [u8], line: &'static [u8], host: &'static [u8]) -> Entry<'static> {
        Entry {
            ut_type: USER_PROCESS,
            user,
            line,
            host,
            seconds: 1_700_000_000,
            micros: 123_456,
        }
    }

    #[test]
    fn user_processes_are_parsed_and_others_skipped() {
        let mut bytes = Vec::new();
        bytes.extend(record(&Entry {
            ut_type: BOOT_TIME,
            user: b"reboot",
            ..user(b"", b"~", b"6.1.0")
        }));
        bytes.extend(record(&user(b"alice", b"tty2", b"")));
        bytes.extend(record(&Entry {
            ut_type: DEAD_PROCESS,
            ..user(b"gone", b"pts/1", b"10.0.0.9")
        }));
        bytes.extend(record(&user(b"bob", b"pts/0", b"192.168.1.20")));
        bytes.extend(record(&user(b"", b"pts/3", b"")));

        assert_eq!(
            parse_utmp(&bytes),
            vec![
                UserSession {
                    user: "alice".into(),
                    line: "tty2".into(),
                    host: None,
                    login_ms: 1_700_000_000_123,
                },
                UserSession {
                    user: "bob".into(),
                    line: "pts/0".into(),
                    host: Some("192.168.1.20".into()),
                    login_ms: 1_700_000_000_123,
                },
            ]
        );
    }

    #[test]
    fn truncated_trailing_record_is_ignored() {
        let mut bytes = record(&user(b"alice", b"tty2", b""));
        let second = record(&user(b"bob", b"pts/0", b""));
        for cut in [1, 2, 100, UTMP_RECORD_BYTES - 1] {
            let mut file = bytes.clone();
            file.extend_from_slice(&second[..cut]);
            let sessions = parse_utmp(&file);
            assert_eq!(sessions.len(), 1, "cut at {cut}");
            assert_eq!(sessions[0].user, "alice");
        }
        bytes.truncate(10);
        assert!(parse_utmp(&bytes).is_empty());
        assert!(parse_utmp(&[]).is_empty());
    }

    #[test]
    fn non_utf8_and_full_width_fields_are_decoded_lossily() {
        let full_user = [b'u'; USER_BYTES];
        let full_line = [b'l'; LINE_BYTES];
        let sessions = parse_utmp(
            &[
                record(&user(b"j\xe9r\xf4me", b":0", b"h\xffst")),
                record(&Entry {
                    user: &full_user,
                    line: &full_line,
                    ..user(b"", b"", b"")
                }),
            ]
            .concat(),
        );
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].user, "j\u{fffd}r\u{fffd}me");
        assert_eq!(sessions[0].host.as_deref(), Some("h\u{fffd}st"));
        assert_eq!(sessions[1].user, "u".repeat(USER_BYTES));
        assert_eq!(sessions[1].line, "l".repeat(LINE_BYTES));
    }

    #[test]
    fn times_survive_2038_and_bad_microseconds() {
        let sessions = parse_utmp(
            &[
                record(&Entry {
                    seconds: 3_000_000_000,
                    micros: 999_999,
                    ..user(b"late", b"tty1", b"")
                }),
                record(&Entry {
                    seconds: 0,
                    micros: -5,
                    ..user(b"odd", b"tty1", b"")
                }),
            ]
            .concat(),
        );
        assert_eq!(sessions[0].login_ms, 3_000_000_000_999);
        assert_eq!(sessions[1].login_ms, 0);
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [0, 1, 383, 384, 385, 768, 5000] {
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            // Make every whole record a user login so the fields are parsed.
            for chunk in bytes.chunks_exact_mut(UTMP_RECORD_BYTES) {
                chunk[..2].copy_from_slice(&USER_PROCESS.to_ne_bytes());
                chunk[USER_AT] = b'x';
            }
            assert_eq!(parse_utmp(&bytes).len(), len / UTMP_RECORD_BYTES);
        }
    }

    #[test]
    fn sensor_reads_a_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("utmp");
        std::fs::write(&path, record(&user(b"alice", b"tty2", b""))).expect("write");
        let mut sensor = UtmpSessions::new(&path);
        assert_eq!(sensor.path(), path);
        assert_eq!(sensor.sessions().expect("sessions")[0].user, "alice");

        let mut missing = UtmpSessions::new(dir.path().join("nope"));
        match missing.sessions() {
            Err(SensorError::Read { path, .. }) => assert!(path.ends_with("nope"), "{path}"),
            other => panic!("expected a read error, got {other:?}"),
        }
    }
}
