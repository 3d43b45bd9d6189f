//! Faults of agents: what an inventoried agent did that this console
//! refused (invalid records, a hello naming another agent, epochs that
//! keep changing, answers outside the protocol). The fleet screen and
//! `agents` show them; the audit log keeps each occurrence.
//!
//! # Layout (tree `faults`)
//!
//! `[agent: 16 bytes][kind: u8]` → bincode [`AgentFault`] (capped at
//! [`MAX_FAULT_RECORD_BYTES`]): one entry per agent and kind, counting
//! occurrences from the first to the last.

use serde::{Deserialize, Serialize};

use crate::model::AgentId;
use crate::validate::cap_text;

use super::keys::{agent_at, AGENT_BYTES};
use super::{ConsoleStore, StoreError};

/// Longest encoded fault record.
const MAX_FAULT_RECORD_BYTES: usize = 4 * 1024;
/// Longest detail kept with a fault, in bytes.
pub const MAX_FAULT_DETAIL_BYTES: usize = 1024;
/// A fault is shown on the fleet screen this long after it last
/// happened (a week: a manager back on Monday still sees Friday's).
pub const FAULT_SHOWN_FOR_MS: i64 = 7 * crate::model::DAY_MS;

/// What an agent did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FaultKind {
    /// It sent records that cannot be true; they were not stored.
    InvalidData,
    /// Its hello named another agent than its certificate: nothing of
    /// that connection was stored.
    Impersonation,
    /// It changed its store's epoch again within one pass: not followed.
    EpochFlapping,
    /// It answered outside the protocol (more records than asked, the
    /// same records again, another stream, an unknown version).
    ProtocolViolation,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::InvalidData,
        FaultKind::Impersonation,
        FaultKind::EpochFlapping,
        FaultKind::ProtocolViolation,
    ];

    /// Stable lower-case name, for the audit log and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::InvalidData => "invalid-data",
            FaultKind::Impersonation => "impersonation",
            FaultKind::EpochFlapping => "epoch-flapping",
            FaultKind::ProtocolViolation => "protocol-violation",
        }
    }

    /// What the manager reads, in English (the GUI translates by kind).
    pub fn describe(self) -> &'static str {
        match self {
            FaultKind::InvalidData => "sending invalid data",
            FaultKind::Impersonation => "claimed to be another workstation",
            FaultKind::EpochFlapping => "its store keeps resetting",
            FaultKind::ProtocolViolation => "answered outside the protocol",
        }
    }

    fn tag(self) -> u8 {
        match self {
            FaultKind::InvalidData => 1,
            FaultKind::Impersonation => 2,
            FaultKind::EpochFlapping => 3,
            FaultKind::ProtocolViolation => 4,
        }
    }
}

/// One kind of fault of one agent, from its first to its last occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFault {
    pub agent: AgentId,
    pub kind: FaultKind,
    pub first_ms: i64,
    pub last_ms: i64,
    pub count: u64,
    /// The last occurrence, in words.
    pub detail: String,
}

impl AgentFault {
    /// Whether the fleet screen still shows it at `now_ms`.
    pub fn is_recent(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_ms) < FAULT_SHOWN_FOR_MS
    }
}

fn fault_key(agent: AgentId, kind: FaultKind) -> [u8; AGENT_BYTES + 1] {
    let mut key = [0; AGENT_BYTES + 1];
    key[..AGENT_BYTES].copy_from_slice(agent.as_bytes());
    key[AGENT_BYTES] = kind.tag();
    key
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FAULT_RECORD_BYTES>()
}

impl ConsoleStore {
    /// Counts one occurrence of `kind` for `agent` at `at_ms`, with what
    /// happened (capped at [`MAX_FAULT_DETAIL_BYTES`]), flushed.
    pub fn note_fault(
        &self,
        agent: AgentId,
        kind: FaultKind,
        at_ms: i64,
        detail: &str,
    ) -> Result<AgentFault, StoreError> {
        let key = fault_key(agent, kind);
        let detail = cap_text(detail, MAX_FAULT_DETAIL_BYTES).into_owned();
        let fault = match self.decode_fault(&key)? {
            Some(old) => AgentFault {
                first_ms: old.first_ms.min(at_ms),
                last_ms: old.last_ms.max(at_ms),
                count: old.count.saturating_add(1),
                detail,
                ..old
            },
            None => AgentFault {
                agent,
                kind,
                first_ms: at_ms,
                last_ms: at_ms,
                count: 1,
                detail,
            },
        };
        let value = bincode::serde::encode_to_vec(&fault, config()).map_err(|source| {
            StoreError::Encode {
                path: self.path.clone(),
                what: format!("the {} fault of agent {agent}", kind.name()),
                source,
            }
        })?;
        self.faults
            .insert(key, value)
            .map_err(|source| self.sled_error(source))?;
        self.sync()?;
        Ok(fault)
    }

    /// Every fault of `agent`, or of every agent with `None`, ordered by
    /// agent then kind.
    pub fn faults(&self, agent: Option<AgentId>) -> Result<Vec<AgentFault>, StoreError> {
        let prefix: &[u8] = match &agent {
            Some(agent) => agent.as_bytes(),
            None => &[],
        };
        let mut faults = Vec::new();
        for item in self.faults.scan_prefix(prefix) {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            faults.push(self.decode_fault_value(&key, &value)?);
        }
        Ok(faults)
    }

    fn decode_fault(&self, key: &[u8]) -> Result<Option<AgentFault>, StoreError> {
        self.faults
            .get(key)
            .map_err(|source| self.sled_error(source))?
            .map(|value| self.decode_fault_value(key, &value))
            .transpose()
    }

    fn decode_fault_value(&self, key: &[u8], value: &[u8]) -> Result<AgentFault, StoreError> {
        let agent = agent_at(key, 0).filter(|_| key.len() == AGENT_BYTES + 1);
        match (
            agent,
            bincode::serde::decode_from_slice::<AgentFault, _>(value, config()),
        ) {
            (Some(agent), Ok((fault, _)))
                if fault.agent == agent && fault_key(agent, fault.kind)[..] == *key =>
            {
                Ok(fault)
            }
            (_, Ok(_)) => {
                Err(self.corrupt(format!("the fault under key {key:02x?} names another key")))
            }
            (_, Err(error)) => Err(self.corrupt(format!(
                "the fault under key {key:02x?} does not decode: {error}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_tags_and_names() {
        let mut tags: Vec<u8> = FaultKind::ALL.iter().map(|kind| kind.tag()).collect();
        tags.dedup();
        assert_eq!(tags.len(), FaultKind::ALL.len());
        let mut names: Vec<&str> = FaultKind::ALL.iter().map(|kind| kind.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FaultKind::ALL.len());
    }
}
