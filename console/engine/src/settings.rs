//! The console's own settings, kept in the store's settings tree as JSON:
//! language, static peers, fleet display, agent groups, category rules and
//! labelled examples, the console's retention per data class, and the SMTP
//! placeholder for the alerts work.
//!
//! A setting that is missing or does not parse takes its default, so an old
//! or hand-edited store never stops the console from opening.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use protocol::{Policy, Retention};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::categories::Rule;
use crate::i18n::Lang;
use crate::model::AgentId;
use crate::store::{ConsoleStore, StoreError};

pub const LANGUAGE_KEY: &str = "language";
pub const STATIC_PEERS_KEY: &str = "static_peers";
pub const SHOW_CURRENT_APP_KEY: &str = "fleet_show_current_app";
pub const GROUPS_KEY: &str = "agent_groups";
pub const CATEGORY_RULES_KEY: &str = "category_rules";
pub const CATEGORY_LABELS_KEY: &str = "category_labels";
pub const SMTP_KEY: &str = "smtp";
pub const RETENTION_KEY: &str = "retention";

/// Where alert e-mails will go once the alerts feature sends them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub to: String,
    pub starttls: bool,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: String::new(),
            port: 587,
            from: String::new(),
            to: String::new(),
            starttls: true,
        }
    }
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
    pub category_rules: Vec<Rule>,
    /// `(app, category)` examples added to the model's training set.
    pub category_labels: Vec<(String, String)>,
    /// Days the console keeps each data class (screenshots: `frames_days`);
    /// older data is purged after sync passes. Defaults to the agents'
    /// default policy.
    pub retention: Retention,
    pub smtp: SmtpSettings,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            language: Lang::Fr,
            static_peers: Vec::new(),
            show_current_app: false,
            groups: BTreeMap::new(),
            category_rules: Vec::new(),
            category_labels: Vec::new(),
            retention: Policy::default().retention,
            smtp: SmtpSettings::default(),
        }
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

impl ConsoleSettings {
    /// Reads every setting, defaults for what is missing or unreadable.
    pub fn load(store: &ConsoleStore) -> Result<ConsoleSettings, StoreError> {
        let defaults = ConsoleSettings::default();
        Ok(ConsoleSettings {
            language: read::<String>(store, LANGUAGE_KEY)?
                .and_then(|code| Lang::from_code(&code))
                .unwrap_or(defaults.language),
            static_peers: read(store, STATIC_PEERS_KEY)?.unwrap_or_default(),
            show_current_app: read(store, SHOW_CURRENT_APP_KEY)?
                .unwrap_or(defaults.show_current_app),
            groups: read(store, GROUPS_KEY)?.unwrap_or_default(),
            category_rules: read(store, CATEGORY_RULES_KEY)?.unwrap_or_default(),
            category_labels: read(store, CATEGORY_LABELS_KEY)?.unwrap_or_default(),
            // A zero would purge a class at once: such a value is ignored.
            retention: read::<Retention>(store, RETENTION_KEY)?
                .filter(|retention| {
                    [
                        retention.usage_days,
                        retention.sessions_days,
                        retention.health_days,
                        retention.frames_days,
                    ]
                    .iter()
                    .all(|days| *days > 0)
                })
                .unwrap_or(defaults.retention),
            smtp: read(store, SMTP_KEY)?.unwrap_or_default(),
        })
    }

    /// Writes every setting that differs from `before`.
    pub fn save_changes(
        &self,
        before: &ConsoleSettings,
        store: &ConsoleStore,
    ) -> Result<Vec<&'static str>, StoreError> {
        let mut changed = Vec::new();
        if self.language != before.language {
            write(store, LANGUAGE_KEY, &self.language.code())?;
            changed.push(LANGUAGE_KEY);
        }
        if self.static_peers != before.static_peers {
            write(store, STATIC_PEERS_KEY, &self.static_peers)?;
            changed.push(STATIC_PEERS_KEY);
        }
        if self.show_current_app != before.show_current_app {
            write(store, SHOW_CURRENT_APP_KEY, &self.show_current_app)?;
            changed.push(SHOW_CURRENT_APP_KEY);
        }
        if self.groups != before.groups {
            write(store, GROUPS_KEY, &self.groups)?;
            changed.push(GROUPS_KEY);
        }
        if self.category_rules != before.category_rules {
            write(store, CATEGORY_RULES_KEY, &self.category_rules)?;
            changed.push(CATEGORY_RULES_KEY);
        }
        if self.category_labels != before.category_labels {
            write(store, CATEGORY_LABELS_KEY, &self.category_labels)?;
            changed.push(CATEGORY_LABELS_KEY);
        }
        if self.retention != before.retention {
            write(store, RETENTION_KEY, &self.retention)?;
            changed.push(RETENTION_KEY);
        }
        if self.smtp != before.smtp {
            write(store, SMTP_KEY, &self.smtp)?;
            changed.push(SMTP_KEY);
        }
        Ok(changed)
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
    fn settings_round_trip_through_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConsoleStore::open(&dir.path().join("store"), crate::model::DayClock::UTC)
            .expect("store");
        let loaded = ConsoleSettings::load(&store).expect("load");
        assert_eq!(loaded, ConsoleSettings::default());
        let changed = ConsoleSettings {
            language: Lang::En,
            static_peers: vec!["127.0.0.1:47100".into()],
            show_current_app: true,
            category_rules: vec![Rule::exact(1, "Slack", "Communication")],
            retention: Retention {
                frames_days: 3,
                ..loaded.retention
            },
            ..loaded.clone()
        };
        let keys = changed.save_changes(&loaded, &store).expect("save");
        assert_eq!(
            keys,
            vec![
                LANGUAGE_KEY,
                STATIC_PEERS_KEY,
                SHOW_CURRENT_APP_KEY,
                CATEGORY_RULES_KEY,
                RETENTION_KEY
            ]
        );
        assert_eq!(ConsoleSettings::load(&store).expect("reload"), changed);
        store
            .put_setting(LANGUAGE_KEY, &serde_json::json!(42))
            .expect("put");
        assert_eq!(
            ConsoleSettings::load(&store).expect("load").language,
            Lang::Fr,
            "an unreadable setting takes its default"
        );
        let zero = Retention {
            health_days: 0,
            ..changed.retention
        };
        store
            .put_setting(RETENTION_KEY, &serde_json::to_value(zero).expect("json"))
            .expect("put");
        assert_eq!(
            ConsoleSettings::load(&store).expect("load").retention,
            Policy::default().retention,
            "a zero retention is ignored"
        );
    }
}
