//! The console's settings, from two places: the site configuration in
//! `DATA/console.toml` (language, static peers, sync interval, fleet
//! display, retention per data class, the site's time zone, SMTP and
//! webhook; see [`crate::config`]), and what is edited in the window as
//! data, kept in the store's settings tree as JSON (agent groups, agents
//! whose attendance is shown in their own time zone, category rules,
//! labelled examples).
//!
//! `DATA` is the store directory's parent. When `console.toml` is missing
//! it is written once: from the settings an older console kept in its
//! store (values the file would refuse take their defaults, with a
//! warning), or from the commented template. From then on the file is the
//! truth: one that cannot be read stops the console with its line and is
//! never overwritten. Saving writes only the values that changed, in place.
//! A store setting that is missing or does not parse takes its default.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use protocol::Retention;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::categories::Rule;
use crate::config::{self, ConfigError, ConsoleConfig};
use crate::i18n::Lang;
use crate::model::{AgentId, DayClock, ZoneSource};
use crate::store::{ConsoleStore, StoreError};

pub use crate::config::{SmtpSecurity, SmtpSettings, WebhookSettings};

pub const GROUPS_KEY: &str = "agent_groups";
pub const OWN_ZONE_KEY: &str = "agent_attendance_own_zone";
pub const CATEGORY_RULES_KEY: &str = "category_rules";
pub const CATEGORY_LABELS_KEY: &str = "category_labels";
/// Set once `console.toml` has been written: a missing file is then made
/// from the template, not from the store's old settings again.
pub const CONFIG_WRITTEN_KEY: &str = "config_file_written";

/// Store keys of the settings that moved to `console.toml`, read once.
mod legacy {
    pub const LANGUAGE_KEY: &str = "language";
    pub const STATIC_PEERS_KEY: &str = "static_peers";
    pub const SHOW_CURRENT_APP_KEY: &str = "fleet_show_current_app";
    pub const SMTP_KEY: &str = "smtp";
    pub const RETENTION_KEY: &str = "retention";

    /// The SMTP settings as the store kept them.
    #[derive(Debug, serde::Deserialize)]
    pub struct Smtp {
        pub host: String,
        pub port: u16,
        pub from: String,
        pub to: String,
        pub starttls: bool,
    }
}

/// Why settings cannot be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything the console keeps about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsoleSettings {
    pub language: Lang,
    /// `host:port` texts, as the manager typed them (checked on entry).
    pub static_peers: Vec<String>,
    /// Whether the fleet view shows each person's current application
    /// (off by default: privacy first).
    pub show_current_app: bool,
    /// Group name of agents that have one.
    pub groups: BTreeMap<AgentId, String>,
    /// Agents whose attendance is shown in their workstation's time zone
    /// (when it is known) instead of the site's.
    pub own_zone_agents: BTreeSet<AgentId>,
    pub category_rules: Vec<Rule>,
    /// `(app, category)` examples added to the model's training set.
    pub category_labels: Vec<(String, String)>,
    /// Days the console keeps each data class (screenshots: `frames_days`);
    /// older data is purged after sync passes. Defaults to the agents'
    /// default policy.
    pub retention: Retention,
    pub smtp: SmtpSettings,
    /// Pause between background sync passes (read when the console starts;
    /// a command-line flag wins).
    pub sync_interval_secs: u64,
    /// IANA name of the site's time zone; empty: this machine's zone.
    pub time_zone: String,
    pub webhook: WebhookSettings,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings::from_parts(
            ConsoleConfig::default(),
            BTreeMap::new(),
            BTreeSet::new(),
            Vec::new(),
            Vec::new(),
        )
    }
}

fn read<T: DeserializeOwned>(store: &ConsoleStore, key: &str) -> Result<Option<T>, StoreError> {
    Ok(store.get_setting(key)?.and_then(|value| {
        serde_json::from_value(value)
            .map_err(|error| tracing::warn!(key, %error, "setting ignored"))
            .ok()
    }))
}

fn write<T: Serialize>(store: &ConsoleStore, key: &str, value: &T) -> Result<(), StoreError> {
    // Serialising these plain types cannot fail; a failure stores null.
    let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    store.put_setting(key, &json)
}

/// The clock of a `site.time_zone` value: the named zone, or this
/// machine's for `""` (UTC, with the reason, when the machine's cannot be
/// read).
pub fn site_clock(time_zone: &str) -> (DayClock, ZoneSource) {
    if time_zone.trim().is_empty() {
        return DayClock::system();
    }
    match DayClock::from_name(time_zone) {
        Ok(clock) => (clock, ZoneSource::Configured),
        // `config::parse` refuses unknown names; kept safe all the same.
        Err(error) => (
            DayClock::utc(),
            ZoneSource::Fallback {
                reason: error.to_string(),
            },
        ),
    }
}

/// The site's clock as `DATA/console.toml` sets it (see [`site_clock`]),
/// read before the store is opened, since the store groups its day totals
/// in that zone; no file yet means this machine's zone.
pub fn site_clock_of(data_dir: &Path) -> Result<(DayClock, ZoneSource), SettingsError> {
    let path = data_dir.join(config::CONFIG_FILE);
    let time_zone = match read_file(&path)? {
        Some(bytes) => config::parse(&path, &bytes)?.time_zone,
        None => String::new(),
    };
    Ok(site_clock(&time_zone))
}

/// The file's bytes, `None` when there is no file.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>, SettingsError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SettingsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Replaces the file with `text` atomically (a durable temporary file
/// renamed over it; a symbolic link is followed, the mode kept).
fn write_file(path: &Path, text: &str) -> Result<(), SettingsError> {
    let failed = |source| SettingsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut temporary = target.clone().into_os_string();
    temporary.push(".new");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary).map_err(failed)?;
    if let Ok(metadata) = std::fs::metadata(&target) {
        file.set_permissions(metadata.permissions())
            .map_err(failed)?;
    }
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    drop(file);
    std::fs::rename(&temporary, &target).map_err(failed)?;
    if let Some(dir) = target.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(failed)?;
    }
    Ok(())
}

/// The settings an older console kept in its store, as a configuration
/// the file accepts.
fn from_store(store: &ConsoleStore, path: &Path) -> Result<ConsoleConfig, StoreError> {
    let defaults = ConsoleConfig::default();
    let smtp = read::<legacy::Smtp>(store, legacy::SMTP_KEY)?.map(|smtp| SmtpSettings {
        security: match (smtp.starttls, smtp.port) {
            (true, _) => SmtpSecurity::Starttls,
            (false, 465) => SmtpSecurity::Tls,
            (false, _) => SmtpSecurity::Plain,
        },
        host: smtp.host,
        port: smtp.port,
        from: smtp.from,
        to: smtp.to,
        ..SmtpSettings::default()
    });
    let stored = ConsoleConfig {
        language: read::<String>(store, legacy::LANGUAGE_KEY)?
            .and_then(|code| Lang::from_code(&code))
            .unwrap_or(defaults.language),
        static_peers: read(store, legacy::STATIC_PEERS_KEY)?.unwrap_or_default(),
        show_current_app: read(store, legacy::SHOW_CURRENT_APP_KEY)?
            .unwrap_or(defaults.show_current_app),
        retention: read(store, legacy::RETENTION_KEY)?.unwrap_or(defaults.retention),
        smtp: smtp.unwrap_or_default(),
        ..defaults
    };
    let (config, replaced) = config::repair(&stored);
    for problem in replaced {
        tracing::warn!(path = %path.display(), %problem, "stored setting not carried over; the default is written instead");
    }
    Ok(config)
}

impl ConsoleSettings {
    /// `DATA/console.toml`, `DATA` being the store directory's parent.
    pub fn config_path(store: &ConsoleStore) -> PathBuf {
        let store_dir = store.path();
        store_dir
            .parent()
            .unwrap_or(store_dir)
            .join(config::CONFIG_FILE)
    }

    fn from_parts(
        config: ConsoleConfig,
        groups: BTreeMap<AgentId, String>,
        own_zone_agents: BTreeSet<AgentId>,
        category_rules: Vec<Rule>,
        category_labels: Vec<(String, String)>,
    ) -> ConsoleSettings {
        ConsoleSettings {
            language: config.language,
            static_peers: config.static_peers,
            show_current_app: config.show_current_app,
            groups,
            own_zone_agents,
            category_rules,
            category_labels,
            retention: config.retention,
            smtp: config.smtp,
            sync_interval_secs: config.sync_interval_secs,
            time_zone: config.time_zone,
            webhook: config.webhook,
        }
    }

    /// What `console.toml` holds.
    pub fn config(&self) -> ConsoleConfig {
        ConsoleConfig {
            language: self.language,
            static_peers: self.static_peers.clone(),
            sync_interval_secs: self.sync_interval_secs,
            show_current_app: self.show_current_app,
            retention: self.retention,
            time_zone: self.time_zone.clone(),
            smtp: self.smtp.clone(),
            webhook: self.webhook.clone(),
        }
    }

    /// Reads `console.toml` (writing it first when missing, see the module
    /// doc) and the store's settings. A file the console cannot accept is
    /// an error naming its line and the fix.
    pub fn load(store: &ConsoleStore) -> Result<ConsoleSettings, SettingsError> {
        let path = ConsoleSettings::config_path(store);
        let config = match read_file(&path)? {
            Some(bytes) => config::parse(&path, &bytes)?,
            None => {
                let config = if store.get_setting(CONFIG_WRITTEN_KEY)?.is_some() {
                    ConsoleConfig::default()
                } else {
                    from_store(store, &path)?
                };
                write_file(&path, &config::render(&path, &config)?)?;
                store.put_setting(CONFIG_WRITTEN_KEY, &serde_json::Value::Bool(true))?;
                tracing::info!(path = %path.display(), "console configuration written");
                config
            }
        };
        Ok(ConsoleSettings::from_parts(
            config,
            read(store, GROUPS_KEY)?.unwrap_or_default(),
            read(store, OWN_ZONE_KEY)?.unwrap_or_default(),
            read(store, CATEGORY_RULES_KEY)?.unwrap_or_default(),
            read(store, CATEGORY_LABELS_KEY)?.unwrap_or_default(),
        ))
    }

    /// Writes every setting that differs from `before`: the file's values
    /// in place in `console.toml` (refused, and nothing saved, if the file
    /// as it now is cannot be read or a new value would not be accepted),
    /// then the store's. Returns the names of what changed.
    pub fn save_changes(
        &self,
        before: &ConsoleSettings,
        store: &ConsoleStore,
    ) -> Result<Vec<&'static str>, SettingsError> {
        let (old, new) = (before.config(), self.config());
        let mut changed = config::changed(&old, &new);
        if !changed.is_empty() {
            let path = ConsoleSettings::config_path(store);
            let text = match read_file(&path)? {
                Some(current) => config::update(&path, &current, &old, &new)?,
                // Removed while the console ran: written whole again.
                None => config::render(&path, &new)?,
            };
            write_file(&path, &text)?;
        }
        if self.groups != before.groups {
            write(store, GROUPS_KEY, &self.groups)?;
            changed.push(GROUPS_KEY);
        }
        if self.own_zone_agents != before.own_zone_agents {
            write(store, OWN_ZONE_KEY, &self.own_zone_agents)?;
            changed.push(OWN_ZONE_KEY);
        }
        if self.category_rules != before.category_rules {
            write(store, CATEGORY_RULES_KEY, &self.category_rules)?;
            changed.push(CATEGORY_RULES_KEY);
        }
        if self.category_labels != before.category_labels {
            write(store, CATEGORY_LABELS_KEY, &self.category_labels)?;
            changed.push(CATEGORY_LABELS_KEY);
        }
        Ok(changed)
    }

    /// Removes `agent` from the store's settings that name it (its group,
    /// the agents whose attendance is shown in their own zone), for an
    /// erased agent; says whether any named it. A setting that does not
    /// parse is left as it is (it is read as its default anyway).
    pub fn forget_agent(store: &ConsoleStore, agent: AgentId) -> Result<bool, StoreError> {
        let mut named = false;
        if let Some(mut groups) = read::<BTreeMap<AgentId, String>>(store, GROUPS_KEY)? {
            if groups.remove(&agent).is_some() {
                write(store, GROUPS_KEY, &groups)?;
                named = true;
            }
        }
        if let Some(mut own_zone) = read::<BTreeSet<AgentId>>(store, OWN_ZONE_KEY)? {
            if own_zone.remove(&agent) {
                write(store, OWN_ZONE_KEY, &own_zone)?;
                named = true;
            }
        }
        Ok(named)
    }

    /// The static peers that parse as socket addresses.
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.static_peers
            .iter()
            .filter_map(|peer| peer.trim().parse().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_edited_in_the_window_round_trips_through_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConsoleStore::open(&dir.path().join("store"), DayClock::utc()).expect("store");
        let loaded = ConsoleSettings::load(&store).expect("load");
        assert_eq!(loaded, ConsoleSettings::default());
        let group_member = AgentId::from_u128(7);
        let changed = ConsoleSettings {
            groups: BTreeMap::from([(group_member, "Accueil".to_owned())]),
            own_zone_agents: BTreeSet::from([group_member]),
            category_rules: vec![Rule::exact(1, "Slack", "Communication")],
            category_labels: vec![("Zed".to_owned(), "Development".to_owned())],
            ..loaded.clone()
        };
        let keys = changed.save_changes(&loaded, &store).expect("save");
        assert_eq!(
            keys,
            vec![
                GROUPS_KEY,
                OWN_ZONE_KEY,
                CATEGORY_RULES_KEY,
                CATEGORY_LABELS_KEY
            ]
        );
        assert_eq!(ConsoleSettings::load(&store).expect("reload"), changed);
        store
            .put_setting(GROUPS_KEY, &serde_json::json!(42))
            .expect("put");
        assert!(
            ConsoleSettings::load(&store)
                .expect("load")
                .groups
                .is_empty(),
            "an unreadable setting takes its default"
        );
    }
}
