//! The agent's settings file `agent.toml`: parsing and validation (pure:
//! bytes in, settings or one error out), layering (command line over file
//! over built-in defaults) and the bounds every setting shares with the
//! command-line flags.
//!
//! [`parse`] never panics. Every problem it finds is one line naming the
//! file, the line and the fix ([`ConfigError::Invalid`]); the first in the
//! file is reported. [`load`] is the thin shell that reads the file.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use crate::admission::ServerLimits;

/// Where the agent looks for its settings when `--config` is not given.
/// A missing file there is fine: the defaults apply.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/smarttracker/agent.toml";

/// The commented example: every key, set to its default.
pub const EXAMPLE: &str = include_str!("../agent.toml");

/// The data directory's name under `$XDG_DATA_HOME` (or
/// `$HOME/.local/share`) when neither `--data` nor `data_dir` names one.
/// Not `smarttracker`: that is the console's, and both keep a `store/`.
pub const DATA_DIR_NAME: &str = "smarttracker-agent";

/// The address the agent listens on by default.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 47100));

/// The demo workstation's seed by default.
pub const DEFAULT_DEMO_SEED: u64 = 1;
/// Most OS users one simulated workstation has.
pub const MAX_DEMO_USERS: usize = 4;
/// Longest simulated OS user name, in bytes.
const MAX_DEMO_USER_BYTES: usize = 32;

/// The OS users of a simulated workstation, in the order they take the
/// seat each day (`[demo] users`, `--demo-users`): one signs in for the
/// whole day; two or more share it, each for a part of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUsers(Vec<String>);

/// Why a list of simulated users is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("use 1 to {MAX_DEMO_USERS} OS user names of lower-case letters, digits, '.', '_' or '-' (at most {MAX_DEMO_USER_BYTES} bytes, starting with a letter), separated by commas")]
pub struct BadDemoUsers;

impl Default for DemoUsers {
    fn default() -> Self {
        DemoUsers(vec![crate::demo::DEMO_USER.to_owned()])
    }
}

impl DemoUsers {
    /// `lucas,emma` → the two users, checked.
    pub fn parse(text: &str) -> Result<DemoUsers, BadDemoUsers> {
        let users: Vec<String> = text.split(',').map(|user| user.trim().to_owned()).collect();
        let valid = |user: &String| {
            user.len() <= MAX_DEMO_USER_BYTES
                && user.starts_with(|c: char| c.is_ascii_lowercase())
                && user.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        };
        if users.is_empty() || users.len() > MAX_DEMO_USERS || !users.iter().all(valid) {
            return Err(BadDemoUsers);
        }
        Ok(DemoUsers(users))
    }

    /// The names, at least one.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

impl std::str::FromStr for DemoUsers {
    type Err = BadDemoUsers;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DemoUsers::parse(text)
    }
}

/// The inclusive bounds of a numeric setting, shared by its command-line
/// flag (clap's `value_parser!(..).range(..)`) and the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min: i64,
    pub max: i64,
}

impl Bounds {
    /// For clap's signed ranged parsers (`u16`, `u32`).
    pub const fn range(self) -> RangeInclusive<i64> {
        self.min..=self.max
    }

    /// For clap's `u64` parser. Every minimum is at least zero.
    pub const fn range_u64(self) -> RangeInclusive<u64> {
        self.min.unsigned_abs()..=self.max.unsigned_abs()
    }
}

/// `live_lease_secs`, `--live-lease-secs`.
pub const LIVE_LEASE_SECS: Bounds = Bounds { min: 2, max: 300 };
/// `[demo] seed`, `--demo-seed` (TOML integers stop at `i64::MAX`).
pub const DEMO_SEED: Bounds = Bounds {
    min: 0,
    max: i64::MAX,
};
/// `[demo] history_days`, `--demo-history-days`: ten years at most.
pub const DEMO_HISTORY_DAYS: Bounds = Bounds { min: 0, max: 3650 };
/// `[limits] max_connections`, `--max-connections`.
pub const MAX_CONNECTIONS: Bounds = Bounds { min: 1, max: 1024 };
/// `[limits] max_connections_per_console`, `--max-connections-per-console`.
pub const MAX_CONNECTIONS_PER_CONSOLE: Bounds = Bounds { min: 1, max: 64 };
/// `[limits] max_handshakes_per_ip`, `--max-handshakes-per-ip`.
pub const MAX_HANDSHAKES_PER_IP: Bounds = Bounds { min: 1, max: 256 };
/// The handshake, first-request, request and response deadlines.
pub const TIMEOUT_MS: Bounds = Bounds {
    min: 100,
    max: 600_000,
};
/// `[limits] request_idle_timeout_ms`, `--request-idle-timeout-ms`.
pub const REQUEST_IDLE_TIMEOUT_MS: Bounds = Bounds {
    min: 100,
    max: 3_600_000,
};

/// Where the agent's records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sensors {
    /// The real desktop: X11 window and idle sensors, system health.
    X11,
    /// A clearly labelled simulated workstation.
    Demo,
}

/// What one layer (the command line or the file) says; `None` leaves a
/// setting to the layer below.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub sensors: Option<Sensors>,
    pub mdns: Option<bool>,
    pub live_lease_secs: Option<u32>,
    pub demo_seed: Option<u64>,
    pub demo_history_days: Option<u32>,
    pub demo_users: Option<DemoUsers>,
    pub limits: LimitSettings,
}

/// What one layer says of [`ServerLimits`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitSettings {
    pub max_connections: Option<usize>,
    pub max_connections_per_console: Option<usize>,
    pub max_handshakes_per_ip: Option<usize>,
    pub handshake_timeout_ms: Option<u64>,
    pub first_request_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub response_timeout_ms: Option<u64>,
    pub request_idle_timeout_ms: Option<u64>,
}

/// The settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub sensors: Sensors,
    pub mdns: bool,
    pub live_lease_secs: u32,
    pub demo_seed: u64,
    pub demo_history_days: u32,
    pub demo_users: DemoUsers,
    pub limits: ServerLimits,
}

impl Settings {
    /// Every setting but the data directory at its built-in default (the
    /// data directory's depends on the environment: [`xdg_data_dir`]).
    pub fn defaults() -> Settings {
        let limits = ServerLimits::DEFAULT;
        Settings {
            data_dir: None,
            listen: Some(DEFAULT_LISTEN),
            sensors: Some(Sensors::X11),
            mdns: Some(true),
            live_lease_secs: Some(crate::live::DEFAULT_LEASE_SECS),
            demo_seed: Some(DEFAULT_DEMO_SEED),
            demo_history_days: Some(0),
            demo_users: Some(DemoUsers::default()),
            limits: LimitSettings {
                max_connections: Some(limits.max_connections),
                max_connections_per_console: Some(limits.max_connections_per_console),
                max_handshakes_per_ip: Some(limits.max_handshakes_per_ip),
                handshake_timeout_ms: Some(limits.handshake_timeout_ms),
                first_request_timeout_ms: Some(limits.first_request_timeout_ms),
                request_timeout_ms: Some(limits.request_timeout_ms),
                response_timeout_ms: Some(limits.response_timeout_ms),
                request_idle_timeout_ms: Some(limits.request_idle_timeout_ms),
            },
        }
    }

    /// This layer over `lower`: what this one says wins.
    pub fn over(self, lower: Settings) -> Settings {
        Settings {
            data_dir: self.data_dir.or(lower.data_dir),
            listen: self.listen.or(lower.listen),
            sensors: self.sensors.or(lower.sensors),
            mdns: self.mdns.or(lower.mdns),
            live_lease_secs: self.live_lease_secs.or(lower.live_lease_secs),
            demo_seed: self.demo_seed.or(lower.demo_seed),
            demo_history_days: self.demo_history_days.or(lower.demo_history_days),
            demo_users: self.demo_users.or(lower.demo_users),
            limits: self.limits.over(lower.limits),
        }
    }

    /// The settings in force: this layer over the built-in defaults, the
    /// data directory falling back to `default_data_dir`.
    pub fn resolve(self, default_data_dir: Option<PathBuf>) -> Result<Config, ConfigError> {
        let all = self.over(Settings::defaults());
        let defaults = ServerLimits::DEFAULT;
        let limits = all.limits;
        Ok(Config {
            data_dir: all
                .data_dir
                .or(default_data_dir)
                .ok_or(ConfigError::NoDataDir)?,
            listen: all.listen.unwrap_or(DEFAULT_LISTEN),
            sensors: all.sensors.unwrap_or(Sensors::X11),
            mdns: all.mdns.unwrap_or(true),
            live_lease_secs: all
                .live_lease_secs
                .unwrap_or(crate::live::DEFAULT_LEASE_SECS),
            demo_seed: all.demo_seed.unwrap_or(DEFAULT_DEMO_SEED),
            demo_history_days: all.demo_history_days.unwrap_or(0),
            demo_users: all.demo_users.unwrap_or_default(),
            limits: ServerLimits {
                max_connections: limits.max_connections.unwrap_or(defaults.max_connections),
                max_connections_per_console: limits
                    .max_connections_per_console
                    .unwrap_or(defaults.max_connections_per_console),
                max_handshakes_per_ip: limits
                    .max_handshakes_per_ip
                    .unwrap_or(defaults.max_handshakes_per_ip),
                handshake_timeout_ms: limits
                    .handshake_timeout_ms
                    .unwrap_or(defaults.handshake_timeout_ms),
                first_request_timeout_ms: limits
                    .first_request_timeout_ms
                    .unwrap_or(defaults.first_request_timeout_ms),
                request_timeout_ms: limits
                    .request_timeout_ms
                    .unwrap_or(defaults.request_timeout_ms),
                response_timeout_ms: limits
                    .response_timeout_ms
                    .unwrap_or(defaults.response_timeout_ms),
                request_idle_timeout_ms: limits
                    .request_idle_timeout_ms
                    .unwrap_or(defaults.request_idle_timeout_ms),
            },
        })
    }
}

impl LimitSettings {
    fn over(self, lower: LimitSettings) -> LimitSettings {
        LimitSettings {
            max_connections: self.max_connections.or(lower.max_connections),
            max_connections_per_console: self
                .max_connections_per_console
                .or(lower.max_connections_per_console),
            max_handshakes_per_ip: self.max_handshakes_per_ip.or(lower.max_handshakes_per_ip),
            handshake_timeout_ms: self.handshake_timeout_ms.or(lower.handshake_timeout_ms),
            first_request_timeout_ms: self
                .first_request_timeout_ms
                .or(lower.first_request_timeout_ms),
            request_timeout_ms: self.request_timeout_ms.or(lower.request_timeout_ms),
            response_timeout_ms: self.response_timeout_ms.or(lower.response_timeout_ms),
            request_idle_timeout_ms: self
                .request_idle_timeout_ms
                .or(lower.request_idle_timeout_ms),
        }
    }
}

/// The default data directory, after the XDG base directory spec:
/// `$XDG_DATA_HOME/smarttracker-agent` when that variable is an absolute
/// path, else `$HOME/.local/share/smarttracker-agent`; `None` without
/// either.
pub fn xdg_data_dir(xdg_data_home: Option<&OsStr>, home: Option<&OsStr>) -> Option<PathBuf> {
    if let Some(data_home) = absolute(xdg_data_home) {
        return Some(data_home.join(DATA_DIR_NAME));
    }
    absolute(home).map(|home| home.join(".local/share").join(DATA_DIR_NAME))
}

/// `value` as a path if it is an absolute one (the XDG spec ignores the
/// others, and so the empty string).
fn absolute(value: Option<&OsStr>) -> Option<&Path> {
    value.map(Path::new).filter(|path| path.is_absolute())
}

/// Why the settings cannot be used. Each is one line that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: no such file: check the --config path (`smarttracker-agent config --print-default` prints an example)", path.display())]
    Missing { path: PathBuf },
    #[error("{}: cannot read it ({reason}): make it readable by the agent's user", path.display())]
    Unreadable {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{}:{line}: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        problem: Problem,
    },
    #[error("no data directory: pass --data DIR, set data_dir in the config file, or set HOME")]
    NoDataDir,
}

/// What is wrong on one line of the file, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not UTF-8 text: save the file as UTF-8")]
    NotUtf8,
    #[error("not valid TOML ({message}): fix the syntax on this line")]
    Syntax { message: String },
    #[error("unknown key `{key}`{}: {}", in_table(*table), unknown_key_fix(suggestion.as_ref(), *table))]
    UnknownKey {
        key: String,
        /// The table it is in; `None` for the top level.
        table: Option<&'static str>,
        suggestion: Option<Suggestion>,
    },
    #[error("{key} = {value} is {}: use {expected}", with_article(found))]
    WrongType {
        key: &'static str,
        value: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("{key} = {value} is out of range: use {} to {}", bounds.min, bounds.max)]
    OutOfRange {
        key: &'static str,
        value: String,
        bounds: Bounds,
    },
    #[error("listen = {value} is not an address: use IP:PORT, e.g. \"{DEFAULT_LISTEN}\"")]
    NotAnAddress { value: String },
    #[error("sensors = {value} is not a sensor source: use {}", sensor_names())]
    UnknownSensors { value: String },
    #[error("users = {value} is not a list of OS user names: use 1 to {MAX_DEMO_USERS} names of lower-case letters, digits, '.', '_' or '-' separated by commas, e.g. \"lucas,emma\"")]
    BadDemoUsers { value: String },
    #[error("data_dir = {value} is a relative path: use an absolute path, e.g. \"/var/lib/smarttracker-agent\"")]
    RelativeDataDir { value: String },
}

/// A known key close to an unknown one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub key: &'static str,
    /// The table it belongs in; `None` for the top level.
    pub table: Option<&'static str>,
}

fn in_table(table: Option<&'static str>) -> String {
    table
        .map(|name| format!(" in [{name}]"))
        .unwrap_or_default()
}

/// The fix for an unknown key in `table`: the suggestion (naming its table
/// when that is another one), or removing it.
fn unknown_key_fix(suggestion: Option<&Suggestion>, table: Option<&'static str>) -> String {
    match suggestion {
        Some(Suggestion {
            key,
            table: suggested,
        }) if *suggested == table => format!("did you mean `{key}`?"),
        Some(Suggestion {
            key,
            table: suggested,
        }) => format!("did you mean `{key}`{}?", in_table(*suggested)),
        None => "remove it (`smarttracker-agent config --print-default` lists every key)".into(),
    }
}

fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

/// The names `--sensors` takes, quoted: `"x11" or "demo"`.
fn sensor_names() -> String {
    Sensors::value_variants()
        .iter()
        .filter_map(ValueEnum::to_possible_value)
        .map(|name| format!("\"{}\"", name.get_name()))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Reads the settings file at `path`. A missing file is an error when it
/// was asked for (`explicit`, i.e. `--config`), and `None` otherwise.
pub fn load(path: &Path, explicit: bool) -> Result<Option<Settings>, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => parse(path, &bytes).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(None),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::Missing {
            path: path.to_path_buf(),
        }),
        Err(reason) => Err(ConfigError::Unreadable {
            path: path.to_path_buf(),
            reason,
        }),
    }
}

/// Parses and checks the contents of a settings file; `path` only names
/// it in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Settings, ConfigError> {
    let invalid = |offset: usize, problem: Problem| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: line_at(bytes, offset),
        problem,
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|error| invalid(error.valid_up_to(), Problem::NotUtf8))?;
    let document = DeTable::parse(text).map_err(|error| {
        let offset = error.span().map_or(text.len(), |span| span.start);
        invalid(
            offset,
            Problem::Syntax {
                message: one_line(error.message(), 200),
            },
        )
    })?;
    let mut reader = Reader {
        text,
        settings: Settings::default(),
        problems: Vec::new(),
    };
    reader.top(document.get_ref());
    // The first problem in the file, whatever order the keys were read in.
    match reader
        .problems
        .into_iter()
        .min_by_key(|(offset, _)| *offset)
    {
        Some((offset, problem)) => Err(invalid(offset, problem)),
        None => Ok(reader.settings),
    }
}

/// The 1-based line of the byte at `offset`.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    let before = bytes.get(..offset).unwrap_or(bytes);
    before.iter().filter(|byte| **byte == b'\n').count() + 1
}

/// `text` on one line (control characters as spaces), cut to about
/// `max_chars`.
fn one_line(text: &str, max_chars: usize) -> String {
    let mut line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    if text.trim().chars().nth(max_chars).is_some() {
        line.push('…');
    }
    line
}

/// Keys at the top level, in [demo] and in [limits].
const TOP_KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "sensors",
    "mdns",
    "live_lease_secs",
    "demo",
    "limits",
];
const DEMO_KEYS: &[&str] = &["seed", "history_days"];
const LIMIT_KEYS: &[&str] = &[
    "max_connections",
    "max_connections_per_console",
    "max_handshakes_per_ip",
    "handshake_timeout_ms",
    "first_request_timeout_ms",
    "request_timeout_ms",
    "response_timeout_ms",
    "request_idle_timeout_ms",
];
const TABLES: &[(Option<&str>, &[&str])] = &[
    (None, TOP_KEYS),
    (Some("demo"), DEMO_KEYS),
    (Some("limits"), LIMIT_KEYS),
];

/// Values shown in messages are cut to this many characters.
const SHOWN_VALUE_CHARS: usize = 40;

/// Walks the parsed document, filling `settings` and noting each problem
/// at its byte offset.
struct Reader<'t> {
    text: &'t str,
    settings: Settings,
    problems: Vec<(usize, Problem)>,
}

/// One `key = value` of a table.
type Entry<'a, 'i> = (&'a Spanned<DeString<'i>>, &'a Spanned<DeValue<'i>>);

impl Reader<'_> {
    fn top(&mut self, table: &DeTable<'_>) {
        for entry @ (key, _) in table.iter() {
            match key.get_ref().as_ref() {
                "data_dir" => {
                    self.settings.data_dir = self.data_dir(entry);
                }
                "listen" => {
                    self.settings.listen = self.parsed(entry, "listen", |text, value| {
                        text.parse().map_err(|_| Problem::NotAnAddress { value })
                    });
                }
                "sensors" => {
                    self.settings.sensors = self.parsed(entry, "sensors", |text, value| {
                        Sensors::from_str(text, false)
                            .map_err(|_| Problem::UnknownSensors { value })
                    });
                }
                "mdns" => self.settings.mdns = self.boolean(entry, "mdns"),
                "live_lease_secs" => {
                    self.settings.live_lease_secs =
                        self.integer(entry, "live_lease_secs", LIVE_LEASE_SECS);
                }
                "demo" => {
                    if let Some(demo) = self.table(entry, "demo", "a [demo] table") {
                        self.demo(demo);
                    }
                }
                "limits" => {
                    if let Some(limits) = self.table(entry, "limits", "a [limits] table") {
                        self.limits(limits);
                    }
                }
                _ => self.unknown(key, None),
            }
        }
    }

    fn demo(&mut self, table: &DeTable<'_>) {
        for entry @ (key, _) in table.iter() {
            match key.get_ref().as_ref() {
                "seed" => self.settings.demo_seed = self.integer(entry, "seed", DEMO_SEED),
                "history_days" => {
                    self.settings.demo_history_days =
                        self.integer(entry, "history_days", DEMO_HISTORY_DAYS);
                }
                "users" => {
                    self.settings.demo_users = self.parsed(entry, "users", |text, value| {
                        DemoUsers::parse(text).map_err(|_| Problem::BadDemoUsers { value })
                    });
                }
                _ => self.unknown(key, Some("demo")),
            }
        }
    }

    fn limits(&mut self, table: &DeTable<'_>) {
        let mut limits = self.settings.limits;
        for entry @ (key, _) in table.iter() {
            match key.get_ref().as_ref() {
                "max_connections" => {
                    limits.max_connections =
                        self.integer(entry, "max_connections", MAX_CONNECTIONS);
                }
                "max_connections_per_console" => {
                    limits.max_connections_per_console = self.integer(
                        entry,
                        "max_connections_per_console",
                        MAX_CONNECTIONS_PER_CONSOLE,
                    );
                }
                "max_handshakes_per_ip" => {
                    limits.max_handshakes_per_ip =
                        self.integer(entry, "max_handshakes_per_ip", MAX_HANDSHAKES_PER_IP);
                }
                "handshake_timeout_ms" => {
                    limits.handshake_timeout_ms =
                        self.integer(entry, "handshake_timeout_ms", TIMEOUT_MS);
                }
                "first_request_timeout_ms" => {
                    limits.first_request_timeout_ms =
                        self.integer(entry, "first_request_timeout_ms", TIMEOUT_MS);
                }
                "request_timeout_ms" => {
                    limits.request_timeout_ms =
                        self.integer(entry, "request_timeout_ms", TIMEOUT_MS);
                }
                "response_timeout_ms" => {
                    limits.response_timeout_ms =
                        self.integer(entry, "response_timeout_ms", TIMEOUT_MS);
                }
                "request_idle_timeout_ms" => {
                    limits.request_idle_timeout_ms =
                        self.integer(entry, "request_idle_timeout_ms", REQUEST_IDLE_TIMEOUT_MS);
                }
                _ => self.unknown(key, Some("limits")),
            }
        }
        self.settings.limits = limits;
    }

    /// The value as it is written in the file, on one line.
    fn shown(&self, span: Range<usize>) -> String {
        one_line(self.text.get(span).unwrap_or_default(), SHOWN_VALUE_CHARS)
    }

    fn problem(&mut self, (key, _): Entry<'_, '_>, problem: Problem) {
        self.problems.push((key.span().start, problem));
    }

    fn wrong_type(&mut self, entry: Entry<'_, '_>, key: &'static str, expected: &'static str) {
        let value = self.shown(entry.1.span());
        let found = entry.1.get_ref().type_str();
        self.problem(
            entry,
            Problem::WrongType {
                key,
                value,
                found,
                expected,
            },
        );
    }

    fn integer<T: TryFrom<i64>>(
        &mut self,
        entry: Entry<'_, '_>,
        key: &'static str,
        bounds: Bounds,
    ) -> Option<T> {
        let DeValue::Integer(integer) = entry.1.get_ref() else {
            self.wrong_type(entry, key, "a whole number without quotes");
            return None;
        };
        let in_range = i64::from_str_radix(integer.as_str(), integer.radix())
            .ok()
            .filter(|number| bounds.range().contains(number))
            .and_then(|number| T::try_from(number).ok());
        if in_range.is_none() {
            let value = self.shown(entry.1.span());
            self.problem(entry, Problem::OutOfRange { key, value, bounds });
        }
        in_range
    }

    fn boolean(&mut self, entry: Entry<'_, '_>, key: &'static str) -> Option<bool> {
        let DeValue::Boolean(value) = entry.1.get_ref() else {
            self.wrong_type(entry, key, "true or false");
            return None;
        };
        Some(*value)
    }

    /// A string value read by `read`, which is given the string and the
    /// value as written in the file (for its message).
    fn parsed<T>(
        &mut self,
        entry: Entry<'_, '_>,
        key: &'static str,
        read: impl FnOnce(&str, String) -> Result<T, Problem>,
    ) -> Option<T> {
        let DeValue::String(text) = entry.1.get_ref() else {
            self.wrong_type(entry, key, "a quoted string");
            return None;
        };
        match read(text, self.shown(entry.1.span())) {
            Ok(value) => Some(value),
            Err(problem) => {
                self.problem(entry, problem);
                None
            }
        }
    }

    fn data_dir(&mut self, entry: Entry<'_, '_>) -> Option<PathBuf> {
        self.parsed(entry, "data_dir", |text, value| {
            let path = PathBuf::from(text);
            if path.is_absolute() {
                Ok(path)
            } else {
                Err(Problem::RelativeDataDir { value })
            }
        })
    }

    fn table<'a, 'i>(
        &mut self,
        entry: Entry<'a, 'i>,
        key: &'static str,
        expected: &'static str,
    ) -> Option<&'a DeTable<'i>> {
        let DeValue::Table(table) = entry.1.get_ref() else {
            self.wrong_type(entry, key, expected);
            return None;
        };
        Some(table)
    }

    fn unknown(&mut self, key: &Spanned<DeString<'_>>, table: Option<&'static str>) {
        let name = key.get_ref().as_ref();
        self.problems.push((
            key.span().start,
            Problem::UnknownKey {
                key: one_line(name, SHOWN_VALUE_CHARS),
                table,
                suggestion: suggest(name, table),
            },
        ));
    }
}

/// The known key closest to `unknown`: the same key in another table, or
/// one a couple of typos away.
fn suggest(unknown: &str, table: Option<&'static str>) -> Option<Suggestion> {
    // Longer keys are no typo of a known one; also bounds the work.
    if unknown.chars().count() > 64 {
        return None;
    }
    let candidates = TABLES.iter().flat_map(|(in_table, keys)| {
        keys.iter().map(move |key| Suggestion {
            key,
            table: *in_table,
        })
    });
    let mut best: Option<(usize, Suggestion)> = None;
    for candidate in candidates {
        let distance = edit_distance(unknown, candidate.key);
        // The same name in this table would have been known.
        let elsewhere = distance == 0 && candidate.table != table;
        let close = distance > 0 && distance <= 2.max(candidate.key.len() / 5);
        if (elsewhere || close) && best.as_ref().is_none_or(|(best, _)| distance < *best) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, suggestion)| suggestion)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
