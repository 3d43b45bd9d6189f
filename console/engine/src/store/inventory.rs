//! The agent inventory (tree `agents`): the agents this console knows,
//! with the key each one's certificate must carry.

use serde::{Deserialize, Serialize};

use crate::model::AgentId;

use super::keys::agent_at;
use super::{ConsoleStore, StoreError};

/// Largest encoded agent record.
const MAX_AGENT_RECORD_BYTES: usize = 64 * 1024;

/// An agent the console knows about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub agent: AgentId,
    /// Name the manager gave it (or its hostname when enrolled).
    pub name: String,
    /// SHA-256 of the agent certificate's SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
    pub added_ms: i64,
    /// `host:port` addresses to try, from mDNS or static configuration.
    pub addresses: Vec<String>,
    pub last_seen_ms: Option<i64>,
    pub last_error: Option<String>,
    pub hostname: Option<String>,
    /// The agent serves simulated demo data.
    pub demo: bool,
    /// IANA name of the workstation's time zone as its last hello told
    /// it, when the tz database knows it.
    pub time_zone: Option<String>,
}

/// An inventory record as consoles before time zones stored it; bincode
/// has no defaults, so these are read by their own layout.
#[derive(Debug, Deserialize)]
struct AgentRecordWithoutZone {
    agent: AgentId,
    name: String,
    spki_sha256: [u8; 32],
    added_ms: i64,
    addresses: Vec<String>,
    last_seen_ms: Option<i64>,
    last_error: Option<String>,
    hostname: Option<String>,
    demo: bool,
}

impl From<AgentRecordWithoutZone> for AgentRecord {
    fn from(old: AgentRecordWithoutZone) -> AgentRecord {
        AgentRecord {
            agent: old.agent,
            name: old.name,
            spki_sha256: old.spki_sha256,
            added_ms: old.added_ms,
            addresses: old.addresses,
            last_seen_ms: old.last_seen_ms,
            last_error: old.last_error,
            hostname: old.hostname,
            demo: old.demo,
            time_zone: None,
        }
    }
}

/// Decodes a record of either layout: the current one must be read
/// whole; an older one ends where its `demo` flag does.
fn decode_record(value: &[u8]) -> Result<AgentRecord, bincode::error::DecodeError> {
    match bincode::serde::decode_from_slice::<AgentRecord, _>(value, agent_config()) {
        Ok((record, read_bytes)) if read_bytes == value.len() => Ok(record),
        current => {
            match bincode::serde::decode_from_slice::<AgentRecordWithoutZone, _>(
                value,
                agent_config(),
            ) {
                Ok((old, read_bytes)) if read_bytes == value.len() => Ok(old.into()),
                _ => current.map(|(record, _)| record),
            }
        }
    }
}

fn agent_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_AGENT_RECORD_BYTES>()
}

impl ConsoleStore {
    /// Adds or replaces the inventory record of `record.agent`, flushed.
    pub fn upsert_agent(&self, record: &AgentRecord) -> Result<(), StoreError> {
        let value = bincode::serde::encode_to_vec(record, agent_config()).map_err(|source| {
            StoreError::Encode {
                path: self.path.clone(),
                what: format!("the inventory record of agent {}", record.agent),
                source,
            }
        })?;
        self.agents
            .insert(record.agent.as_bytes(), value)
            .map_err(|source| self.sled_error(source))?;
        self.sync()
    }

    /// Changes the inventory record of `agent` with `change`, flushed, only
    /// if it is (still) there: a record removed meanwhile (a revoked
    /// agent) is never written back. `change` may run more than once when
    /// another writer changed the record between read and write. Returns
    /// whether the agent was in the inventory.
    pub fn update_agent(
        &self,
        agent: AgentId,
        mut change: impl FnMut(&mut AgentRecord),
    ) -> Result<bool, StoreError> {
        loop {
            let Some(old) = self
                .agents
                .get(agent.as_bytes())
                .map_err(|source| self.sled_error(source))?
            else {
                return Ok(false);
            };
            let mut record = self.decode_agent(agent.as_bytes(), &old)?;
            change(&mut record);
            let new = bincode::serde::encode_to_vec(&record, agent_config()).map_err(|source| {
                StoreError::Encode {
                    path: self.path.clone(),
                    what: format!("the inventory record of agent {agent}"),
                    source,
                }
            })?;
            let swapped = self
                .agents
                .compare_and_swap(agent.as_bytes(), Some(old), Some(new))
                .map_err(|source| self.sled_error(source))?;
            if swapped.is_ok() {
                self.sync()?;
                return Ok(true);
            }
        }
    }

    pub fn agent(&self, agent: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        self.agents
            .get(agent.as_bytes())
            .map_err(|source| self.sled_error(source))?
            .map(|value| self.decode_agent(agent.as_bytes(), &value))
            .transpose()
    }

    /// Every known agent, sorted by name, then id.
    pub fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let mut records = Vec::new();
        for item in self.agents.iter() {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            records.push(self.decode_agent(&key, &value)?);
        }
        records.sort_by(|a, b| a.name.cmp(&b.name).then(a.agent.cmp(&b.agent)));
        Ok(records)
    }

    /// Removes an agent from the inventory, flushed, and returns what it
    /// was. Its records, rollups and cursors stay until retention prunes
    /// them (or [`ConsoleStore::erase_agent`] deletes them), so adding it
    /// back resumes sync where it stopped.
    pub fn remove_agent(&self, agent: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        let removed = self
            .agents
            .remove(agent.as_bytes())
            .map_err(|source| self.sled_error(source))?;
        self.sync()?;
        removed
            .map(|value| self.decode_agent(agent.as_bytes(), &value))
            .transpose()
    }

    fn decode_agent(&self, key: &[u8], value: &[u8]) -> Result<AgentRecord, StoreError> {
        let agent = agent_at(key, 0).filter(|_| key.len() == 16);
        let decoded = decode_record(value);
        let name = agent.map_or_else(|| format!("key {key:02x?}"), |agent| agent.to_string());
        match (agent, decoded) {
            (Some(agent), Ok(record)) if record.agent == agent => Ok(record),
            (_, Ok(_)) => Err(self.corrupt(format!(
                "the inventory record under {name} names another agent"
            ))),
            (_, Err(error)) => Err(self.corrupt(format!(
                "the inventory record of {name} does not decode: {error}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stored_before_time_zones_still_load() {
        let agent = AgentId::from_u128(7);
        let old_layout = (
            agent,
            "pc-7".to_owned(),
            [3u8; 32],
            1_000i64,
            vec!["10.0.0.7:47100".to_owned()],
            Some(2_000i64),
            None::<String>,
            Some("pc-7".to_owned()),
            true,
        );
        let bytes = bincode::serde::encode_to_vec(&old_layout, agent_config()).expect("encode");
        let record = decode_record(&bytes).expect("decode");
        assert_eq!(
            (record.agent, record.demo, record.time_zone),
            (agent, true, None)
        );
        let current = AgentRecord {
            time_zone: Some("America/Montreal".to_owned()),
            ..record
        };
        let bytes = bincode::serde::encode_to_vec(&current, agent_config()).expect("encode");
        assert_eq!(decode_record(&bytes).expect("decode"), current);
    }
}
