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
    /// them, so adding it back resumes sync where it stopped.
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
        let decoded = bincode::serde::decode_from_slice::<AgentRecord, _>(value, agent_config());
        let name = agent.map_or_else(|| format!("key {key:02x?}"), |agent| agent.to_string());
        match (agent, decoded) {
            (Some(agent), Ok((record, _))) if record.agent == agent => Ok(record),
            (_, Ok(_)) => Err(self.corrupt(format!(
                "the inventory record under {name} names another agent"
            ))),
            (_, Err(error)) => Err(self.corrupt(format!(
                "the inventory record of {name} does not decode: {error}"
            ))),
        }
    }
}
