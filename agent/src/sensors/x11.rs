//! Real X11 sensors: the application window in front (EWMH `_NET_ACTIVE_WINDOW`,
//! else the input focus) and user idleness / screen lock (MIT-SCREEN-SAVER).
//!
//! One [`X11Sensors`] holds one connection and answers both
//! [`WindowSensor`] and [`IdleSensor`]. Atoms are interned once at connect;
//! each poll pipelines its requests (a few round trips on a local socket).
//!
//! Every X failure becomes a [`SensorError`]; a window that is destroyed
//! while it is being inspected is not a failure, it reads as "no window".
//!
//! **Screen lock** is `true` when any of these holds (checked in this order,
//! all cheap):
//! - the MIT-SCREEN-SAVER state is `On` (server screen saver or blanking
//!   active);
//! - XScreenSaver reports `BLANK` or `LOCK` in its `_SCREENSAVER_STATUS` root
//!   property;
//! - a stand-alone locker that only runs while the screen is locked
//!   ([`LOCKER_PROCESSES`]: i3lock, slock, xsecurelock, …) is running with
//!   `DISPLAY` naming this display. `/proc` is scanned at most once every
//!   [`LOCKER_SCAN_INTERVAL`]; only the `comm` of each process is read, and
//!   the environment only of processes whose name is a locker's.
//!
//! Desktop lockers that report only over D-Bus (GNOME, KDE, Cinnamon, MATE)
//! are not seen by this sensor.

use std::fs::{self, File};
use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use x11rb::connection::{Connection as _, RequestConnection as _};
use x11rb::errors::{ConnectionError, ReplyError};
use x11rb::protocol::screensaver::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, GetPropertyReply, InputFocus, Window};
use x11rb::protocol::ErrorKind;
use x11rb::reexports::x11rb_protocol::parse_display::parse_display;
use x11rb::rust_connection::RustConnection;

use super::{IdleReading, IdleSensor, SensorError, WindowSample, WindowSensor};

/// Screen lockers that run only while the screen is locked, by process name.
pub const LOCKER_PROCESSES: &[&str] = &[
    "i3lock",
    "slock",
    "xsecurelock",
    "xtrlock",
    "physlock",
    "xlock",
    "alock",
    "sflock",
];

/// How often `/proc` is scanned for [`LOCKER_PROCESSES`].
pub const LOCKER_SCAN_INTERVAL: Duration = Duration::from_secs(5);

/// How far up the window tree the input-focus fallback looks for the
/// client window (real trees are 2–4 deep).
const MAX_TREE_DEPTH: usize = 64;
/// Longest title read, in 32-bit units (4 KiB).
const TITLE_MAX_UNITS: u32 = 1024;
/// Longest `WM_CLASS` / `WM_CLIENT_MACHINE` read, in 32-bit units (1 KiB).
const SHORT_STRING_MAX_UNITS: u32 = 256;
/// Longest environment read when checking a locker's `DISPLAY`.
const ENVIRON_MAX_BYTES: u64 = 256 * 1024;
/// TCP port of display 0.
const X_TCP_PORT: u16 = 6000;
/// The kernel truncates `/proc/PID/comm` to this many bytes.
const COMM_MAX_BYTES: usize = 15;

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        _NET_ACTIVE_WINDOW,
        _NET_SUPPORTING_WM_CHECK,
        _NET_WM_PID,
        _NET_WM_NAME,
        UTF8_STRING,
        _SCREENSAVER_STATUS,
        BLANK,
        LOCK,
    }
}

/// Window and idle sensors over one X11 connection.
#[derive(Debug)]
pub struct X11Sensors {
    conn: RustConnection,
    display: String,
    root: Window,
    atoms: Atoms,
    has_screensaver: bool,
    /// This machine's name, to tell local clients (whose `_NET_WM_PID` is
    /// ours to look up) from remote ones.
    hostname: Option<Vec<u8>>,
    read_titles: bool,
    lockers: LockerScan,
}

impl X11Sensors {
    /// Connects to `display` (e.g. `":0"`), or to `$DISPLAY` when `None`.
    ///
    /// Titles are not read until [`X11Sensors::set_read_titles`] turns them
    /// on (privacy by default).
    pub fn connect(display: Option<&str>) -> Result<Self, SensorError> {
        let display_name = display
            .map(str::to_owned)
            .or_else(|| std::env::var("DISPLAY").ok())
            .unwrap_or_default();
        let connect_error = |reason: String| SensorError::Connect {
            display: display_name.clone(),
            reason,
        };
        // x11rb computes the TCP port as `6000 + display` in a u16, which
        // overflows (a panic in debug builds) past display 59535.
        let parsed = parse_display(display).map_err(|err| connect_error(err.to_string()))?;
        if parsed.display > u16::MAX - X_TCP_PORT {
            return Err(connect_error(format!(
                "display number {} is out of range",
                parsed.display
            )));
        }
        let (conn, screen_num) =
            RustConnection::connect(display).map_err(|err| connect_error(err.to_string()))?;
        let root = conn
            .setup()
            .roots
            .get(screen_num)
            .map(|screen| screen.root)
            .ok_or_else(|| connect_error(format!("the server has no screen {screen_num}")))?;
        let atoms = Atoms::new(&conn)
            .map_err(|err| connect_error(err.to_string()))?
            .reply()
            .map_err(|err| connect_error(err.to_string()))?;
        let has_screensaver = conn
            .extension_information(screensaver::X11_EXTENSION_NAME)
            .map_err(|err| connect_error(err.to_string()))?
            .is_some();
        let hostname = fs::read("/proc/sys/kernel/hostname")
            .ok()
            .map(|mut name| {
                name.truncate(name.trim_ascii_end().len());
                name
            })
            .filter(|name| !name.is_empty());
        let lockers = LockerScan::new(&display_name);
        Ok(X11Sensors {
            conn,
            display: display_name,
            root,
            atoms,
            has_screensaver,
            hostname,
            read_titles: false,
            lockers,
        })
    }

    /// Whether window titles are read at all. Off by default; turn on only
    /// when policy enables titles, so a disabled title is never even read.
    pub fn set_read_titles(&mut self, enabled: bool) {
        self.read_titles = enabled;
    }

    /// Whether titles are read (see [`X11Sensors::set_read_titles`]).
    pub fn read_titles(&self) -> bool {
        self.read_titles
    }

    /// The display this sensor is connected to, as given or from `$DISPLAY`.
    pub fn display(&self) -> &str {
        &self.display
    }

    fn lost(&self, err: ConnectionError) -> SensorError {
        SensorError::Disconnected {
            display: self.display.clone(),
            reason: err.to_string(),
        }
    }

    /// A reply; `Ok(None)` when the window it was about no longer exists.
    fn unless_gone<R>(&self, reply: Result<R, ReplyError>) -> Result<Option<R>, SensorError> {
        match reply {
            Ok(reply) => Ok(Some(reply)),
            Err(ReplyError::X11Error(err)) if err.error_kind == ErrorKind::Window => Ok(None),
            Err(err) => Err(self.reply_error(err)),
        }
    }

    fn reply_error(&self, err: ReplyError) -> SensorError {
        match err {
            ReplyError::ConnectionError(err) => self.lost(err),
            ReplyError::X11Error(err) => SensorError::X11(format!(
                "{:?} error in {}",
                err.error_kind,
                err.request_name.unwrap_or("an unnamed request")
            )),
        }
    }

    /// The top-level client window in front, if any.
    fn front_client(&self) -> Result<Option<Window>, SensorError> {
        let active = self
            .conn
            .get_property(
                false,
                self.root,
                self.atoms._NET_ACTIVE_WINDOW,
                AtomEnum::WINDOW,
                0,
                1,
            )
            .map_err(|err| self.lost(err))?;
        let check = self
            .conn
            .get_property(
                false,
                self.root,
                self.atoms._NET_SUPPORTING_WM_CHECK,
                AtomEnum::WINDOW,
                0,
                1,
            )
            .map_err(|err| self.lost(err))?;
        let focus = self.conn.get_input_focus().map_err(|err| self.lost(err))?;
        let active = first_u32(&active.reply().map_err(|err| self.reply_error(err))?);
        let check = first_u32(&check.reply().map_err(|err| self.reply_error(err))?);
        let focus = focus.reply().map_err(|err| self.reply_error(err))?.focus;

        if let (Some(active), Some(check)) = (active, check) {
            if active != x11rb::NONE && check != x11rb::NONE && self.wm_alive(check)? {
                return Ok(Some(active));
            }
        }
        self.client_from_focus(focus)
    }

    /// An EWMH window manager is running: its check window exists and points
    /// to itself. A crashed manager leaves a stale `_NET_ACTIVE_WINDOW`.
    fn wm_alive(&self, check: Window) -> Result<bool, SensorError> {
        let reply = self
            .conn
            .get_property(
                false,
                check,
                self.atoms._NET_SUPPORTING_WM_CHECK,
                AtomEnum::WINDOW,
                0,
                1,
            )
            .map_err(|err| self.lost(err))?
            .reply();
        Ok(self.unless_gone(reply)?.and_then(|reply| first_u32(&reply)) == Some(check))
    }

    /// Fallback without a window manager: the focused window, walked up to
    /// the ancestor that carries `WM_CLASS`.
    fn client_from_focus(&self, focus: Window) -> Result<Option<Window>, SensorError> {
        let start = if focus == u32::from(InputFocus::POINTER_ROOT) {
            // Focus follows the pointer: the top-level window under it.
            let pointer = self
                .conn
                .query_pointer(self.root)
                .map_err(|err| self.lost(err))?
                .reply()
                .map_err(|err| self.reply_error(err))?;
            pointer.child
        } else {
            focus
        };
        if start == x11rb::NONE || start == self.root {
            return Ok(None);
        }
        let mut window = start;
        for _ in 0..MAX_TREE_DEPTH {
            let class = self
                .conn
                .get_property(false, window, AtomEnum::WM_CLASS, AtomEnum::ANY, 0, 0)
                .map_err(|err| self.lost(err))?;
            let tree = self.conn.query_tree(window).map_err(|err| self.lost(err))?;
            let Some(class) = self.unless_gone(class.reply())? else {
                return Ok(None);
            };
            if class.type_ != x11rb::NONE {
                return Ok(Some(window));
            }
            let Some(tree) = self.unless_gone(tree.reply())? else {
                return Ok(None);
            };
            if tree.parent == x11rb::NONE || tree.parent == self.root {
                return Ok(None);
            }
            window = tree.parent;
        }
        Ok(None)
    }

    /// Reads what identifies `window`; `Ok(None)` when it vanished meanwhile.
    fn describe(&self, window: Window) -> Result<Option<WindowSample>, SensorError> {
        let property = |atom: u32, type_: u32, max_units: u32| {
            self.conn
                .get_property(false, window, atom, type_, 0, max_units)
                .map_err(|err| self.lost(err))
        };
        let any = u32::from(AtomEnum::ANY);
        let pid = property(self.atoms._NET_WM_PID, AtomEnum::CARDINAL.into(), 1)?;
        let class = property(AtomEnum::WM_CLASS.into(), any, SHORT_STRING_MAX_UNITS)?;
        let machine = property(
            AtomEnum::WM_CLIENT_MACHINE.into(),
            any,
            SHORT_STRING_MAX_UNITS,
        )?;
        let titles = if self.read_titles {
            Some((
                property(
                    self.atoms._NET_WM_NAME,
                    self.atoms.UTF8_STRING,
                    TITLE_MAX_UNITS,
                )?,
                property(AtomEnum::WM_NAME.into(), any, TITLE_MAX_UNITS)?,
            ))
        } else {
            None
        };

        let Some(pid) = self.unless_gone(pid.reply())? else {
            return Ok(None);
        };
        let Some(class) = self.unless_gone(class.reply())? else {
            return Ok(None);
        };
        let Some(machine) = self.unless_gone(machine.reply())? else {
            return Ok(None);
        };
        let title = match titles {
            Some((net_name, wm_name)) => {
                let Some(net_name) = self.unless_gone(net_name.reply())? else {
                    return Ok(None);
                };
                let Some(wm_name) = self.unless_gone(wm_name.reply())? else {
                    return Ok(None);
                };
                utf8_text(&net_name, self.atoms.UTF8_STRING)
                    .or_else(|| legacy_text(&wm_name, self.atoms.UTF8_STRING))
            }
            None => None,
        };

        let local = match (&self.hostname, machine.type_ != x11rb::NONE) {
            (Some(hostname), true) => same_host(&machine.value, hostname),
            _ => true,
        };
        let process_name = first_u32(&pid)
            .filter(|&pid| local && pid > 0)
            .and_then(read_process_name);
        Ok(Some(WindowSample {
            process_name,
            wm_class: wm_class(&class),
            title,
        }))
    }
}

impl WindowSensor for X11Sensors {
    fn active_window(&mut self) -> Result<Option<WindowSample>, SensorError> {
        match self.front_client()? {
            Some(window) => self.describe(window),
            None => Ok(None),
        }
    }
}

impl IdleSensor for X11Sensors {
    fn idle(&mut self) -> Result<IdleReading, SensorError> {
        if !self.has_screensaver {
            return Err(SensorError::MissingExtension(
                screensaver::X11_EXTENSION_NAME,
            ));
        }
        let info = self
            .conn
            .screensaver_query_info(self.root)
            .map_err(|err| self.lost(err))?;
        let status = self
            .conn
            .get_property(
                false,
                self.root,
                self.atoms._SCREENSAVER_STATUS,
                AtomEnum::ANY,
                0,
                1,
            )
            .map_err(|err| self.lost(err))?;
        let info = info.reply().map_err(|err| self.reply_error(err))?;
        let status = status.reply().map_err(|err| self.reply_error(err))?;

        let saver_on = info.state == u8::from(screensaver::State::ON);
        let xscreensaver_on = first_u32(&status)
            .is_some_and(|state| state == self.atoms.BLANK || state == self.atoms.LOCK);
        let locked = saver_on || xscreensaver_on || self.lockers.active(Instant::now());
        Ok(IdleReading {
            idle_ms: u64::from(info.ms_since_user_input),
            locked,
        })
    }
}

/// First 32-bit value of a property, if it has one.
fn first_u32(reply: &GetPropertyReply) -> Option<u32> {
    reply.value32().and_then(|mut values| values.next())
}

/// `WM_CLIENT_MACHINE` names this machine: same host name up to the first
/// dot or NUL (clients give the short name or the FQDN), `localhost`, or
/// empty (no information, like an absent property).
fn same_host(machine: &[u8], hostname: &[u8]) -> bool {
    fn short(name: &[u8]) -> &[u8] {
        let name = name.split(|&byte| byte == 0).next().unwrap_or(name);
        let name = name.trim_ascii();
        name.split(|&byte| byte == b'.').next().unwrap_or(name)
    }
    let machine = short(machine);
    machine.is_empty()
        || machine.eq_ignore_ascii_case(b"localhost")
        || machine.eq_ignore_ascii_case(short(hostname))
}

/// The class part of `WM_CLASS` (`instance\0class\0`).
fn wm_class(reply: &GetPropertyReply) -> Option<String> {
    let class = reply.value.split(|&byte| byte == 0).nth(1)?;
    (!class.is_empty()).then(|| String::from_utf8_lossy(class).into_owned())
}

/// A property known to be UTF-8 (`_NET_WM_NAME`).
fn utf8_text(reply: &GetPropertyReply, utf8_string: u32) -> Option<String> {
    (reply.type_ == utf8_string && !reply.value.is_empty())
        .then(|| String::from_utf8_lossy(&reply.value).into_owned())
}

/// `WM_NAME`: Latin-1 `STRING`, or UTF-8; compound text is read as UTF-8,
/// which is right for its ASCII part.
fn legacy_text(reply: &GetPropertyReply, utf8_string: u32) -> Option<String> {
    if reply.type_ == x11rb::NONE || reply.value.is_empty() {
        return None;
    }
    if reply.type_ == u32::from(AtomEnum::STRING) {
        Some(reply.value.iter().map(|&byte| char::from(byte)).collect())
    } else {
        utf8_text(reply, utf8_string).or_else(|| Some(String::from_utf8_lossy(&reply.value).into()))
    }
}

/// The process name of `pid`: `/proc/PID/comm`, completed from `argv[0]`
/// when the kernel truncated it to 15 bytes (`gnome-terminal-server`).
///
/// `None` for kernel threads (empty command line): a sandboxed client
/// (Flatpak) reports its PID inside its own namespace, often 2, which on
/// the host is `kthreadd`; better no name than a wrong one.
fn read_process_name(pid: u32) -> Option<String> {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let comm = fs::read(proc_dir.join("comm")).ok()?;
    let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
    let cmdline = fs::read(proc_dir.join("cmdline")).ok()?;
    if comm.is_empty() || cmdline.is_empty() {
        return None;
    }
    if comm.len() == COMM_MAX_BYTES {
        if let Some(full) = full_name_from_cmdline(&cmdline, comm) {
            return Some(full);
        }
    }
    Some(String::from_utf8_lossy(comm).into_owned())
}

/// The base name of `argv[0]`, if it extends the truncated `comm`.
fn full_name_from_cmdline(cmdline: &[u8], comm: &[u8]) -> Option<String> {
    let argv0 = cmdline.split(|&byte| byte == 0).next()?;
    let base = argv0.rsplit(|&byte| byte == b'/').next()?;
    (base.len() > comm.len() && base.starts_with(comm))
        .then(|| String::from_utf8_lossy(base).into_owned())
}

/// Rate-limited scan of `/proc` for a screen locker on one display.
#[derive(Debug)]
struct LockerScan {
    /// `(host, display number)` of the display being watched.
    display: Option<(String, u16)>,
    last_scan: Option<Instant>,
    found: bool,
    environ: Vec<u8>,
}

impl LockerScan {
    fn new(display: &str) -> Self {
        LockerScan {
            display: display_key(display),
            last_scan: None,
            found: false,
            environ: Vec::new(),
        }
    }

    /// Whether a locker runs on our display; rescans when the last scan is
    /// older than [`LOCKER_SCAN_INTERVAL`].
    fn active(&mut self, now: Instant) -> bool {
        let fresh = self
            .last_scan
            .is_some_and(|last| now.saturating_duration_since(last) < LOCKER_SCAN_INTERVAL);
        if !fresh {
            self.last_scan = Some(now);
            self.found = self.scan();
        }
        self.found
    }

    fn scan(&mut self) -> bool {
        let Some(display) = self.display.clone() else {
            return false;
        };
        let Ok(entries) = fs::read_dir("/proc") else {
            return false;
        };
        for entry in entries.flatten() {
            let is_pid = entry
                .file_name()
                .as_encoded_bytes()
                .iter()
                .all(u8::is_ascii_digit);
            if !is_pid {
                continue;
            }
            let dir = entry.path();
            let Ok(comm) = fs::read(dir.join("comm")) else {
                continue;
            };
            let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
            if !LOCKER_PROCESSES.iter().any(|name| name.as_bytes() == comm) {
                continue;
            }
            if self.environ_display(&dir).as_ref() == Some(&display) {
                return true;
            }
        }
        false
    }

    /// The display named by `DISPLAY` in a process's environment.
    fn environ_display(&mut self, dir: &Path) -> Option<(String, u16)> {
        self.environ.clear();
        File::open(dir.join("environ"))
            .ok()?
            .take(ENVIRON_MAX_BYTES)
            .read_to_end(&mut self.environ)
            .ok()?;
        let value = self
            .environ
            .split(|&byte| byte == 0)
            .find_map(|entry| entry.strip_prefix(b"DISPLAY="))?;
        display_key(std::str::from_utf8(value).ok()?)
    }
}

/// `(host, display number)` of a display name; the screen does not matter.
fn display_key(display: &str) -> Option<(String, u16)> {
    let parsed = parse_display(Some(display)).ok()?;
    Some((parsed.host, parsed.display))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn property(type_: u32, format: u8, value: &[u8]) -> GetPropertyReply {
        GetPropertyReply {
            format,
            sequence: 0,
            length: 0,
            type_,
            bytes_after: 0,
            value_len: u32::try_from(value.len()).expect("small") / u32::from(format / 8).max(1),
            value: value.to_vec(),
        }
    }

    const UTF8_STRING: u32 = 300;

    #[test]
    fn wm_class_takes_the_class_part() {
        let string = AtomEnum::STRING.into();
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"xmessage\0Xmessage\0", Some("Xmessage")),
            (b"navigator\0firefox-esr", Some("firefox-esr")),
            (b"only-instance\0", None),
            (b"", None),
            (b"a\0\0", None),
        ];
        for (value, want) in cases {
            assert_eq!(
                wm_class(&property(string, 8, value)).as_deref(),
                *want,
                "{value:?}"
            );
        }
    }

    #[test]
    fn titles_decode_by_type() {
        let string = AtomEnum::STRING.into();
        assert_eq!(
            utf8_text(&property(UTF8_STRING, 8, "Été".as_bytes()), UTF8_STRING).as_deref(),
            Some("Été")
        );
        assert_eq!(utf8_text(&property(string, 8, b"x"), UTF8_STRING), None);
        assert_eq!(
            legacy_text(&property(string, 8, b"caf\xe9"), UTF8_STRING).as_deref(),
            Some("café")
        );
        assert_eq!(
            legacy_text(&property(UTF8_STRING, 8, b"ok \xff"), UTF8_STRING).as_deref(),
            Some("ok \u{fffd}")
        );
        assert_eq!(
            legacy_text(&property(x11rb::NONE, 0, b""), UTF8_STRING),
            None
        );
    }

    #[test]
    fn first_u32_reads_format_32_only() {
        let cardinal = AtomEnum::CARDINAL.into();
        assert_eq!(
            first_u32(&property(cardinal, 32, &42u32.to_ne_bytes())),
            Some(42)
        );
        assert_eq!(first_u32(&property(cardinal, 8, b"abcd")), None);
        assert_eq!(first_u32(&property(x11rb::NONE, 0, b"")), None);
    }

    #[test]
    fn client_machine_matches_short_or_full_host_names() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"vm", b"vm", true),
            (b"VM.example.org", b"vm", true),
            (b"vm", b"vm.example.org", true),
            (b"localhost", b"vm", true),
            (b"vm\0", b"vm", true),
            (b"other", b"vm", false),
            (b"other.example.org", b"vm.example.org", false),
            (b"", b"vm", true),
        ];
        for (machine, hostname, want) in cases {
            assert_eq!(
                same_host(machine, hostname),
                *want,
                "{machine:?} vs {hostname:?}"
            );
        }
    }

    #[test]
    fn display_keys_ignore_the_screen() {
        assert_eq!(display_key(":7"), Some((String::new(), 7)));
        assert_eq!(display_key(":7.1"), display_key(":7"));
        assert_ne!(display_key(":8"), display_key(":7"));
        assert_eq!(display_key("not a display"), None);
    }

    #[test]
    fn own_process_name_is_completed_past_the_comm_limit() {
        // The test binary's name (`agent-<hash>`) is longer than 15 bytes.
        let exe = std::env::current_exe().expect("own exe");
        let exe_name = exe.file_name().expect("file name").to_string_lossy();
        assert!(exe_name.len() > COMM_MAX_BYTES, "{exe_name}");
        assert_eq!(
            read_process_name(std::process::id()).as_deref(),
            Some(&*exe_name)
        );
        assert_eq!(read_process_name(0), None);
    }

    #[test]
    fn truncated_comm_is_completed_only_by_a_matching_argv0() {
        let comm = b"gnome-terminal-";
        let cases: &[(&[u8], Option<&str>)] = &[
            (
                b"/usr/libexec/gnome-terminal-server\0--flag\0",
                Some("gnome-terminal-server"),
            ),
            (b"gnome-terminal-server", Some("gnome-terminal-server")),
            (b"/usr/bin/something-else\0", None),
            (b"gnome-terminal-\0", None),
            (b"\0", None),
        ];
        for (cmdline, want) in cases {
            assert_eq!(
                full_name_from_cmdline(cmdline, comm).as_deref(),
                *want,
                "{cmdline:?}"
            );
        }
    }
}
