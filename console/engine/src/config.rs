//! `DATA/console.toml`, the console's site configuration, as pure text work:
//! [`parse`] checks every key and value and names the file, the line and
//! the fix of the first problem; [`update`] writes changed values into an
//! existing document in place (comments, order and layout kept); [`render`]
//! fills the commented [`TEMPLATE`] (the shipped `console/console.toml`).
//! Reading and writing the file is the settings module's job.
//!
//! Every key has one rule ([`KEYS`]) that checks a value read from the file
//! and a value about to be written alike, so the console never writes a
//! file it would refuse.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use protocol::{Policy, Retention};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::i18n::Lang;

/// The file's name in the console's data directory.
pub const CONFIG_FILE: &str = "console.toml";

/// The commented file written when there is none; parses to
/// [`ConsoleConfig::default`].
pub const TEMPLATE: &str = include_str!("../../console.toml");

/// Pause between background sync passes.
pub const SYNC_INTERVAL_SECS: RangeInclusive<u64> = 10..=3600;
pub const DEFAULT_SYNC_INTERVAL_SECS: u64 = 30;
/// Days the console keeps a data class.
pub const RETENTION_DAYS: RangeInclusive<u64> = 1..=3650;
pub const SMTP_PORTS: RangeInclusive<u64> = 1..=65_535;
pub const DEFAULT_SMTP_PORT: u16 = 587;
/// Least time between two webhook posts.
pub const WEBHOOK_MIN_INTERVAL_SECS: RangeInclusive<u64> = 10..=86_400;
pub const DEFAULT_WEBHOOK_MIN_INTERVAL_SECS: u64 = 300;

/// The key naming the site's time zone.
pub const TIME_ZONE_KEY: &str = "site.time_zone";

/// Tables of the file; every other key sits at the top.
const TABLES: [&str; 4] = ["retention", "site", "smtp", "webhook"];

/// How alert e-mails reach the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption: only on a trusted network.
    Plain,
}

impl SmtpSecurity {
    pub const ALL: [SmtpSecurity; 3] = [
        SmtpSecurity::Starttls,
        SmtpSecurity::Tls,
        SmtpSecurity::Plain,
    ];

    /// The value written in the file.
    pub fn name(self) -> &'static str {
        match self {
            SmtpSecurity::Starttls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::Plain => "plain",
        }
    }

    pub fn from_name(name: &str) -> Option<SmtpSecurity> {
        SmtpSecurity::ALL
            .into_iter()
            .find(|security| security.name() == name)
    }
}

/// Where alert e-mails will go once the alerts feature sends them. The
/// password is never here: only the path of a file that holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SmtpSettings {
    /// Empty: no e-mail.
    pub host: String,
    pub port: u16,
    pub from: String,
    pub to: String,
    pub security: SmtpSecurity,
    pub user: String,
    pub password_file: Option<PathBuf>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: String::new(),
            port: DEFAULT_SMTP_PORT,
            from: String::new(),
            to: String::new(),
            security: SmtpSecurity::default(),
            user: String::new(),
            password_file: None,
        }
    }
}

/// Where alerts will be posted once the alerts feature posts them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookSettings {
    /// Empty: no posts.
    pub url: String,
    pub min_interval_secs: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            url: String::new(),
            min_interval_secs: DEFAULT_WEBHOOK_MIN_INTERVAL_SECS,
        }
    }
}

/// Everything `console.toml` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub language: Lang,
    /// `IP:port` texts, tried besides mDNS and remembered addresses.
    pub static_peers: Vec<String>,
    pub sync_interval_secs: u64,
    /// Whether the fleet view shows each person's current application
    /// (off by default: privacy first).
    pub show_current_app: bool,
    /// Days the console keeps each data class.
    pub retention: Retention,
    /// IANA name of the site's time zone; empty: this machine's zone.
    pub time_zone: String,
    pub smtp: SmtpSettings,
    pub webhook: WebhookSettings,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            language: Lang::Fr,
            static_peers: Vec::new(),
            sync_interval_secs: DEFAULT_SYNC_INTERVAL_SECS,
            show_current_app: false,
            retention: Policy::default().retention,
            time_zone: String::new(),
            smtp: SmtpSettings::default(),
            webhook: WebhookSettings::default(),
        }
    }
}

/// Why a configuration cannot be used; each is one line that says what to
/// write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file says something the console does not accept.
    #[error("{}:{line}: {message}", path.display())]
    Bad {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A value to be written would make the file unacceptable.
    #[error("{message} (not written to {})", path.display())]
    Value { path: PathBuf, message: String },
}

/// Reads a configuration; a key left out takes its default.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<ConsoleConfig, ConfigError> {
    let source = Source::decode(path, bytes)?;
    let (table, errors) = DeTable::parse_recoverable(source.text);
    // The parser reads on after an error: the first in the file is named.
    if let Some(error) = errors
        .iter()
        .min_by_key(|error| error.span().map_or(0, |span| span.start))
    {
        return Err(source.syntax(error));
    }
    let mut config = ConsoleConfig::default();
    source.read_table(table.get_ref(), None, &mut config)?;
    Ok(config)
}

/// The keys whose values differ, by their names in the file
/// (`"sync_interval_secs"`, `"retention.frames_days"`, …).
pub fn changed(before: &ConsoleConfig, after: &ConsoleConfig) -> Vec<&'static str> {
    KEYS.iter()
        .filter(|key| get(before, key.id) != get(after, key.id))
        .map(|key| key.name)
        .collect()
}

/// The first value of `config` the file would not accept.
pub fn check(path: &Path, config: &ConsoleConfig) -> Result<(), ConfigError> {
    match problems(config).next() {
        Some((_, message)) => Err(ConfigError::Value {
            path: path.to_path_buf(),
            message,
        }),
        None => Ok(()),
    }
}

/// `config` with every value the file would not accept replaced by its
/// default, and what was replaced, one line each.
pub fn repair(config: &ConsoleConfig) -> (ConsoleConfig, Vec<String>) {
    let defaults = ConsoleConfig::default();
    let mut repaired = config.clone();
    let mut replaced = Vec::new();
    for (key, message) in problems(config) {
        set(&mut repaired, key.id, get(&defaults, key.id));
        replaced.push(message);
    }
    (repaired, replaced)
}

/// `current` (a file as it is) with the values that differ between
/// `before` and `after` written in place: comments, order and the other
/// values stay as they are. A file that does not parse, or a value it
/// would not accept, is an error and nothing is written.
pub fn update(
    path: &Path,
    current: &[u8],
    before: &ConsoleConfig,
    after: &ConsoleConfig,
) -> Result<String, ConfigError> {
    check(path, after)?;
    parse(path, current)?;
    let source = Source::decode(path, current)?;
    let mut document: toml_edit::DocumentMut =
        source.text.parse().map_err(|error: toml_edit::TomlError| {
            source.error(error.span(), format!("{}: fix this line", error.message()))
        })?;
    for key in KEYS
        .iter()
        .filter(|key| get(before, key.id) != get(after, key.id))
    {
        write_value(&mut document, key, &get(after, key.id));
    }
    let updated = document.to_string();
    parse(path, updated.as_bytes())?;
    Ok(updated)
}

/// The commented template with `config`'s values.
pub fn render(path: &Path, config: &ConsoleConfig) -> Result<String, ConfigError> {
    update(path, TEMPLATE.as_bytes(), &ConsoleConfig::default(), config)
}

/// Line (from 1) of the byte at `offset`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|byte| **byte == b'\n')
        .count()
        + 1
}

/// Which setting a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id {
    Language,
    StaticPeers,
    SyncIntervalSecs,
    ShowCurrentApp,
    UsageDays,
    SessionsDays,
    HealthDays,
    FramesDays,
    TimeZone,
    SmtpHost,
    SmtpPort,
    SmtpFrom,
    SmtpTo,
    SmtpSecurity,
    SmtpUser,
    SmtpPasswordFile,
    WebhookUrl,
    WebhookMinIntervalSecs,
}

/// What a text must be, and what to write instead.
struct TextRule {
    accepts: fn(&str) -> bool,
    /// Follows the value in a message: "is not a language".
    problem: &'static str,
    fix: &'static str,
}

enum Rule {
    Integer(RangeInclusive<u64>),
    Bool,
    Text(TextRule),
    TextList(TextRule),
}

struct Key {
    id: Id,
    /// Dotted for a key of a table: `smtp.port`.
    name: &'static str,
    rule: Rule,
}

const LANGUAGE: TextRule = TextRule {
    accepts: |text| Lang::from_code(text).is_some(),
    problem: "is not a language of the console",
    fix: "use \"fr\", \"en\", \"es\" or \"ru\"",
};
const PEER: TextRule = TextRule {
    accepts: |text| text.trim().parse::<SocketAddr>().is_ok(),
    problem: "is not an IP address and port",
    fix: "write each as \"IP:port\", such as \"192.168.1.20:47100\"",
};
const TIME_ZONE: TextRule = TextRule {
    accepts: |text| text.is_empty() || crate::model::DayClock::from_name(text).is_ok(),
    problem: "is not a time zone name",
    fix: "use an IANA name such as \"Europe/Paris\", or \"\" for this machine's zone",
};
const HOST: TextRule = TextRule {
    accepts: host_is_plausible,
    problem: "is not a host name",
    fix: "write the server's name or address alone, such as \"smtp.example.com\" (the port goes in port), or \"\" for no e-mail",
};
const ADDRESS: TextRule = TextRule {
    accepts: |text| text.is_empty() || address_is_plausible(text),
    problem: "is not an e-mail address",
    fix: "write one address such as \"alerts@example.com\", or \"\"",
};
const SECURITY: TextRule = TextRule {
    accepts: |text| SmtpSecurity::from_name(text).is_some(),
    problem: "is not a security mode",
    fix: "use \"starttls\", \"tls\" or \"plain\"",
};
const USER: TextRule = TextRule {
    accepts: |text| !text.chars().any(char::is_control),
    problem: "holds control characters",
    fix: "write the user name alone, or \"\"",
};
const PASSWORD_FILE: TextRule = TextRule {
    accepts: |text| {
        text.is_empty() || (text.starts_with('/') && !text.chars().any(char::is_control))
    },
    problem: "is not a full path",
    fix: "write the full path of a file holding only the password, such as \"/etc/smarttracker/smtp-password\", or \"\"",
};
const URL: TextRule = TextRule {
    accepts: url_is_plausible,
    problem: "is not an http:// or https:// address",
    fix: "write a full address such as \"https://alerts.example.com/hook\", or \"\" for no posts",
};

const KEYS: [Key; 18] = [
    Key {
        id: Id::Language,
        name: "language",
        rule: Rule::Text(LANGUAGE),
    },
    Key {
        id: Id::StaticPeers,
        name: "static_peers",
        rule: Rule::TextList(PEER),
    },
    Key {
        id: Id::SyncIntervalSecs,
        name: "sync_interval_secs",
        rule: Rule::Integer(SYNC_INTERVAL_SECS),
    },
    Key {
        id: Id::ShowCurrentApp,
        name: "show_current_app",
        rule: Rule::Bool,
    },
    Key {
        id: Id::UsageDays,
        name: "retention.usage_days",
        rule: Rule::Integer(RETENTION_DAYS),
    },
    Key {
        id: Id::SessionsDays,
        name: "retention.sessions_days",
        rule: Rule::Integer(RETENTION_DAYS),
    },
    Key {
        id: Id::HealthDays,
        name: "retention.health_days",
        rule: Rule::Integer(RETENTION_DAYS),
    },
    Key {
        id: Id::FramesDays,
        name: "retention.frames_days",
        rule: Rule::Integer(RETENTION_DAYS),
    },
    Key {
        id: Id::TimeZone,
        name: TIME_ZONE_KEY,
        rule: Rule::Text(TIME_ZONE),
    },
    Key {
        id: Id::SmtpHost,
        name: "smtp.host",
        rule: Rule::Text(HOST),
    },
    Key {
        id: Id::SmtpPort,
        name: "smtp.port",
        rule: Rule::Integer(SMTP_PORTS),
    },
    Key {
        id: Id::SmtpFrom,
        name: "smtp.from",
        rule: Rule::Text(ADDRESS),
    },
    Key {
        id: Id::SmtpTo,
        name: "smtp.to",
        rule: Rule::Text(ADDRESS),
    },
    Key {
        id: Id::SmtpSecurity,
        name: "smtp.security",
        rule: Rule::Text(SECURITY),
    },
    Key {
        id: Id::SmtpUser,
        name: "smtp.user",
        rule: Rule::Text(USER),
    },
    Key {
        id: Id::SmtpPasswordFile,
        name: "smtp.password_file",
        rule: Rule::Text(PASSWORD_FILE),
    },
    Key {
        id: Id::WebhookUrl,
        name: "webhook.url",
        rule: Rule::Text(URL),
    },
    Key {
        id: Id::WebhookMinIntervalSecs,
        name: "webhook.min_interval_secs",
        rule: Rule::Integer(WEBHOOK_MIN_INTERVAL_SECS),
    },
];

/// A DNS name or an IP address, or empty.
fn host_is_plausible(text: &str) -> bool {
    text.is_empty()
        || text.parse::<IpAddr>().is_ok()
        || (text.len() <= 253
            && text.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }))
}

/// `someone@somewhere`, loosely.
fn address_is_plausible(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && host_is_plausible(domain)
                && !domain.is_empty()
                && !local.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// `http://` or `https://` then a host, no spaces; or empty.
fn url_is_plausible(text: &str) -> bool {
    if text.is_empty() {
        return true;
    }
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            !host.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// A value as the rules see it, read from the file or from a config.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    /// Saturated at the ends of `i128` (such a number is out of range).
    Integer(i128),
    Bool(bool),
    Text(String),
    List(Vec<Field>),
    /// A float, a date, a table: never what a key takes.
    Other,
}

impl Field {
    fn number<T: TryFrom<i128>>(&self) -> Option<T> {
        match self {
            Field::Integer(number) => T::try_from(*number).ok(),
            _ => None,
        }
    }

    fn bool(&self) -> Option<bool> {
        match self {
            Field::Bool(value) => Some(*value),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Field::Text(text) => Some(text),
            _ => None,
        }
    }

    fn texts(&self) -> Option<Vec<String>> {
        match self {
            Field::List(items) => items
                .iter()
                .map(|item| item.text().map(str::to_owned))
                .collect(),
            _ => None,
        }
    }

    /// As it would be written in the file.
    fn shown(&self) -> String {
        match self {
            Field::Integer(number) => number.to_string(),
            Field::Bool(value) => value.to_string(),
            Field::Text(text) => toml_edit::Value::from(text.as_str()).to_string(),
            Field::List(items) => {
                let items: Vec<String> = items.iter().map(Field::shown).collect();
                format!("[{}]", items.join(", "))
            }
            Field::Other => "this value".to_owned(),
        }
    }

    fn of(value: &DeValue<'_>) -> Field {
        match value {
            DeValue::Array(items) => Field::List(
                items
                    .iter()
                    .map(|item| Field::of_scalar(item.get_ref()))
                    .collect(),
            ),
            scalar => Field::of_scalar(scalar),
        }
    }

    fn of_scalar(value: &DeValue<'_>) -> Field {
        match value {
            DeValue::Integer(integer) => Field::Integer(
                i128::from_str_radix(integer.as_str(), integer.radix()).unwrap_or(
                    if integer.as_str().starts_with('-') {
                        i128::MIN
                    } else {
                        i128::MAX
                    },
                ),
            ),
            DeValue::Boolean(value) => Field::Bool(*value),
            DeValue::String(text) => Field::Text(text.to_string()),
            _ => Field::Other,
        }
    }

    fn to_toml(&self) -> Option<toml_edit::Value> {
        match self {
            Field::Integer(number) => i64::try_from(*number).ok().map(toml_edit::Value::from),
            Field::Bool(value) => Some(toml_edit::Value::from(*value)),
            Field::Text(text) => Some(toml_edit::Value::from(text.as_str())),
            Field::List(items) => Some(toml_edit::Value::Array(
                items.iter().filter_map(Field::to_toml).collect(),
            )),
            Field::Other => None,
        }
    }
}

fn get(config: &ConsoleConfig, id: Id) -> Field {
    let text = |text: &str| Field::Text(text.to_owned());
    match id {
        Id::Language => text(config.language.code()),
        Id::StaticPeers => Field::List(config.static_peers.iter().map(|peer| text(peer)).collect()),
        Id::SyncIntervalSecs => Field::Integer(config.sync_interval_secs.into()),
        Id::ShowCurrentApp => Field::Bool(config.show_current_app),
        Id::UsageDays => Field::Integer(config.retention.usage_days.into()),
        Id::SessionsDays => Field::Integer(config.retention.sessions_days.into()),
        Id::HealthDays => Field::Integer(config.retention.health_days.into()),
        Id::FramesDays => Field::Integer(config.retention.frames_days.into()),
        Id::TimeZone => text(&config.time_zone),
        Id::SmtpHost => text(&config.smtp.host),
        Id::SmtpPort => Field::Integer(config.smtp.port.into()),
        Id::SmtpFrom => text(&config.smtp.from),
        Id::SmtpTo => text(&config.smtp.to),
        Id::SmtpSecurity => text(config.smtp.security.name()),
        Id::SmtpUser => text(&config.smtp.user),
        Id::SmtpPasswordFile => text(
            &config
                .smtp
                .password_file
                .as_deref()
                .map(Path::to_string_lossy)
                .unwrap_or_default(),
        ),
        Id::WebhookUrl => text(&config.webhook.url),
        Id::WebhookMinIntervalSecs => Field::Integer(config.webhook.min_interval_secs.into()),
    }
}

/// Sets a value its rule accepted (any other is left as it was).
fn set(config: &mut ConsoleConfig, id: Id, field: Field) {
    fn assign<T>(slot: &mut T, value: Option<T>) {
        if let Some(value) = value {
            *slot = value;
        }
    }
    let text = field.text().map(str::to_owned);
    match id {
        Id::Language => assign(&mut config.language, field.text().and_then(Lang::from_code)),
        Id::StaticPeers => assign(&mut config.static_peers, field.texts()),
        Id::SyncIntervalSecs => assign(&mut config.sync_interval_secs, field.number()),
        Id::ShowCurrentApp => assign(&mut config.show_current_app, field.bool()),
        Id::UsageDays => assign(&mut config.retention.usage_days, field.number()),
        Id::SessionsDays => assign(&mut config.retention.sessions_days, field.number()),
        Id::HealthDays => assign(&mut config.retention.health_days, field.number()),
        Id::FramesDays => assign(&mut config.retention.frames_days, field.number()),
        Id::TimeZone => assign(&mut config.time_zone, text),
        Id::SmtpHost => assign(&mut config.smtp.host, text),
        Id::SmtpPort => assign(&mut config.smtp.port, field.number()),
        Id::SmtpFrom => assign(&mut config.smtp.from, text),
        Id::SmtpTo => assign(&mut config.smtp.to, text),
        Id::SmtpSecurity => assign(
            &mut config.smtp.security,
            field.text().and_then(SmtpSecurity::from_name),
        ),
        Id::SmtpUser => assign(&mut config.smtp.user, text),
        Id::SmtpPasswordFile => assign(
            &mut config.smtp.password_file,
            text.map(|path| (!path.is_empty()).then(|| PathBuf::from(path))),
        ),
        Id::WebhookUrl => assign(&mut config.webhook.url, text),
        Id::WebhookMinIntervalSecs => assign(&mut config.webhook.min_interval_secs, field.number()),
    }
}

/// What is wrong with a value (or with one entry of a list).
struct Problem {
    entry: Option<usize>,
    problem: Cow<'static, str>,
}

impl Key {
    fn fix(&self) -> Cow<'static, str> {
        match &self.rule {
            Rule::Integer(range) => format!("use {} to {}", range.start(), range.end()).into(),
            Rule::Bool => "write true or false, without quotes".into(),
            Rule::Text(rule) | Rule::TextList(rule) => rule.fix.into(),
        }
    }

    fn check(&self, field: &Field) -> Result<(), Problem> {
        let whole = |problem: &'static str| Problem {
            entry: None,
            problem: problem.into(),
        };
        match (&self.rule, field) {
            (Rule::Integer(range), Field::Integer(number)) => {
                let (low, high) = (i128::from(*range.start()), i128::from(*range.end()));
                if (low..=high).contains(number) {
                    Ok(())
                } else {
                    Err(whole("is out of range"))
                }
            }
            (Rule::Integer(_), _) => Err(whole("is not a whole number")),
            (Rule::Bool, Field::Bool(_)) => Ok(()),
            (Rule::Bool, _) => Err(whole("is not true or false")),
            (Rule::Text(rule), Field::Text(text)) if (rule.accepts)(text) => Ok(()),
            (Rule::Text(rule), Field::Text(_)) => Err(whole(rule.problem)),
            (Rule::Text(_), _) => Err(whole("is not a text in quotes")),
            (Rule::TextList(rule), Field::List(items)) => {
                for (index, item) in items.iter().enumerate() {
                    let problem = match item {
                        Field::Text(text) if (rule.accepts)(text) => continue,
                        Field::Text(_) => rule.problem,
                        _ => "is not a text in quotes",
                    };
                    return Err(Problem {
                        entry: Some(index),
                        problem: problem.into(),
                    });
                }
                Ok(())
            }
            (Rule::TextList(_), _) => Err(whole("is not a list such as [\"a\", \"b\"]")),
        }
    }

    /// One line: the key, the value as written, what is wrong, the fix.
    fn message(&self, problem: &Problem, shown: &str) -> String {
        match problem.entry {
            None => format!(
                "{} = {shown} {}: {}",
                self.name,
                problem.problem,
                self.fix()
            ),
            Some(_) => format!(
                "{} entry {shown} {}: {}",
                self.name,
                problem.problem,
                self.fix()
            ),
        }
    }
}

/// Every value of `config` its key's rule refuses, with the message.
fn problems(config: &ConsoleConfig) -> impl Iterator<Item = (&'static Key, String)> + '_ {
    KEYS.iter().filter_map(|key| {
        let field = get(config, key.id);
        key.check(&field).err().map(|problem| {
            let shown = match (problem.entry, &field) {
                (Some(index), Field::List(items)) => {
                    items.get(index).map(Field::shown).unwrap_or_default()
                }
                _ => field.shown(),
            };
            (key, key.message(&problem, &one_line(&shown)))
        })
    })
}

/// Writes one value into the document, keeping the comments around it
/// (and, in a list, the entries that stay with their layout).
fn write_value(document: &mut toml_edit::DocumentMut, key: &Key, field: &Field) {
    let Some(mut value) = field.to_toml() else {
        return;
    };
    let root = document.as_table_mut();
    let (table, name): (&mut dyn toml_edit::TableLike, &str) = match key.name.split_once('.') {
        None => (root, key.name),
        Some((table, name)) => {
            let item = root.entry(table).or_insert_with(toml_edit::table);
            if item.as_table_like().is_none() {
                *item = toml_edit::table();
            }
            match item.as_table_like_mut() {
                Some(table) => (table, name),
                None => return,
            }
        }
    };
    match table.get_mut(name).and_then(toml_edit::Item::as_value_mut) {
        Some(old) => {
            keep_layout(old, &mut value);
            *old = value;
        }
        None => {
            table.insert(name, toml_edit::Item::Value(value));
        }
    }
}

/// Gives `new` the decoration (comments, spaces) of `old`; a list keeps
/// the entries that stay as they were and lays new ones out like its last.
fn keep_layout(old: &toml_edit::Value, new: &mut toml_edit::Value) {
    if let (toml_edit::Value::Array(old_items), toml_edit::Value::Array(new_items)) =
        (old, &mut *new)
    {
        let mut kept = toml_edit::Array::new();
        let last_decor = old_items.iter().last().map(|item| item.decor().clone());
        for item in new_items.iter() {
            let same = old_items
                .iter()
                .find(|old_item| old_item.as_str().is_some() && old_item.as_str() == item.as_str());
            let mut item = same.unwrap_or(item).clone();
            if same.is_none() {
                if let Some(decor) = &last_decor {
                    *item.decor_mut() = decor.clone();
                }
            }
            kept.push_formatted(item);
        }
        kept.set_trailing(old_items.trailing().clone());
        kept.set_trailing_comma(old_items.trailing_comma());
        *new_items = kept;
    }
    *new.decor_mut() = old.decor().clone();
}

/// Longest value quoted in a message.
const SHOWN_CHARS: usize = 60;

/// A value's text fit for a one-line message.
fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let cut = first.chars().count() > SHOWN_CHARS || first.len() < text.trim_end().len();
    let mut shown: String = first
        .chars()
        .take(SHOWN_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cut {
        shown.push('…');
    }
    shown
}

/// The text being read, for messages with lines.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl<'a> Source<'a> {
    fn decode(path: &'a Path, bytes: &'a [u8]) -> Result<Source<'a>, ConfigError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Source { path, text }),
            Err(error) => {
                let valid = String::from_utf8_lossy(&bytes[..error.valid_up_to()]);
                Err(ConfigError::Bad {
                    path: path.to_path_buf(),
                    line: line_of(&valid, valid.len()),
                    message: "this line is not UTF-8 text: save the file as UTF-8".to_owned(),
                })
            }
        }
    }

    fn error(&self, span: Option<Range<usize>>, message: String) -> ConfigError {
        ConfigError::Bad {
            path: self.path.to_path_buf(),
            line: span.map_or(1, |span| line_of(self.text, span.start)),
            message: one_line_message(&message),
        }
    }

    fn syntax(&self, error: &toml::de::Error) -> ConfigError {
        let fix = if error.message().starts_with("duplicate key") {
            "give each key once (and each [table] once): remove or merge this one"
        } else {
            "fix this line's TOML syntax (texts in \"double quotes\", one key = value a line)"
        };
        self.error(error.span(), format!("{}: {fix}", error.message()))
    }

    fn shown(&self, span: Range<usize>) -> String {
        self.text
            .get(span)
            .map_or_else(|| "this value".to_owned(), one_line)
    }

    fn read_table(
        &self,
        table: &DeTable<'_>,
        prefix: Option<&'static str>,
        config: &mut ConsoleConfig,
    ) -> Result<(), ConfigError> {
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        for (key, value) in entries {
            let name: &str = key.get_ref();
            if prefix.is_none() {
                if let Some(table_name) = TABLES.into_iter().find(|table| *table == name) {
                    match value.get_ref() {
                        DeValue::Table(inner) => {
                            self.read_table(inner, Some(table_name), config)?;
                            continue;
                        }
                        _ => {
                            return Err(self.error(
                                Some(value.span()),
                                format!(
                                    "{name} is not a table here: write its values under one [{name}] line"
                                ),
                            ))
                        }
                    }
                }
            }
            let full = match prefix {
                Some(table) => format!("{table}.{name}"),
                None => name.to_owned(),
            };
            let Some(spec) = KEYS.iter().find(|spec| spec.name == full) else {
                return Err(self.error(Some(key.span()), unknown_key(prefix, &full)));
            };
            let field = Field::of(value.get_ref());
            if let Err(problem) = spec.check(&field) {
                let span = entry_span(value, problem.entry);
                return Err(self.error(
                    Some(span.clone()),
                    spec.message(&problem, &self.shown(span)),
                ));
            }
            set(config, spec.id, field);
        }
        Ok(())
    }
}

/// The span of a list's entry, or of the whole value.
fn entry_span(value: &Spanned<DeValue<'_>>, entry: Option<usize>) -> Range<usize> {
    match (value.get_ref(), entry) {
        (DeValue::Array(items), Some(index)) => {
            items.get(index).map_or_else(|| value.span(), Spanned::span)
        }
        _ => value.span(),
    }
}

fn unknown_key(table: Option<&str>, full: &str) -> String {
    if full == "smtp.password" {
        return "smtp.password: a password never goes in this file: put it alone in a file only \
                the console's user can read and set smtp.password_file to that file's full path"
            .to_owned();
    }
    let known: Vec<String> = KEYS
        .iter()
        .filter_map(|key| match (table, key.name.split_once('.')) {
            (None, None) => Some(key.name.to_owned()),
            (Some(table), Some((key_table, name))) if key_table == table => Some(name.to_owned()),
            _ => None,
        })
        .chain(
            table
                .is_none()
                .then(|| TABLES.map(|table| format!("[{table}]")))
                .into_iter()
                .flatten(),
        )
        .collect();
    format!(
        "unknown key {}: remove it, or use one of {}",
        one_line(full),
        known.join(", ")
    )
}

fn one_line_message(message: &str) -> String {
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
