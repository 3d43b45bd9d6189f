//! The OS accounts each agent has reported: `['U'][agent][user]` →
//! `first_seen_ms, last_seen_ms` (2 × i64), kept up to date by ingest from
//! presence spans and session events, so the people screen can propose and
//! resolve persons without scanning raw records. A store from before the
//! index builds it once from its raw records when it opens.

use std::collections::BTreeMap;

use crate::model::{ActivitySpan, AgentId, SessionEvent};

use super::keys::{account_key, agent_prefix, parse_account_key, ACCOUNT_PREFIX};
use super::{ConsoleStore, StoreError};

/// Default-tree key set once the index covers every stored record.
pub(super) const ACCOUNTS_INDEXED_KEY: &[u8] = b"accounts_indexed";

/// One OS account seen on one workstation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct AccountSeen {
    pub agent: AgentId,
    pub user: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

/// First and last instants per user name in one ingest (pure).
#[derive(Debug, Default)]
pub(super) struct AccountDelta {
    seen: BTreeMap<String, (i64, i64)>,
}

impl AccountDelta {
    fn note(&mut self, user: &str, from_ms: i64, to_ms: i64) {
        if user.is_empty() {
            return;
        }
        let entry = self.seen.entry(user.to_owned()).or_insert((from_ms, to_ms));
        entry.0 = entry.0.min(from_ms);
        entry.1 = entry.1.max(to_ms);
    }

    pub(super) fn add_activity(&mut self, span: &ActivitySpan) {
        self.note(&span.user, span.start_ms, span.end_ms.max(span.start_ms));
    }

    pub(super) fn add_session(&mut self, event: &SessionEvent) {
        self.note(&event.user, event.at_ms, event.at_ms);
    }
}

fn encode(first_seen_ms: i64, last_seen_ms: i64) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..8].copy_from_slice(&first_seen_ms.to_be_bytes());
    value[8..].copy_from_slice(&last_seen_ms.to_be_bytes());
    value
}

fn decode(value: &[u8]) -> Option<(i64, i64)> {
    let value = <&[u8; 16]>::try_from(value).ok()?;
    let first = i64::from_be_bytes(value[..8].try_into().ok()?);
    let last = i64::from_be_bytes(value[8..].try_into().ok()?);
    Some((first, last))
}

impl ConsoleStore {
    /// Adds `delta`'s accounts of `agent` to `writes`, widening what is
    /// stored. Call under the writer lock.
    pub(super) fn stage_accounts(
        &self,
        writes: &mut sled::Batch,
        agent: AgentId,
        delta: &AccountDelta,
    ) -> Result<(), StoreError> {
        for (user, (from_ms, to_ms)) in &delta.seen {
            let key = account_key(agent, user);
            let (first_ms, last_ms) = match self.get_data(&key)?.as_deref().and_then(decode) {
                Some((first_ms, last_ms)) => (first_ms.min(*from_ms), last_ms.max(*to_ms)),
                None => (*from_ms, *to_ms),
            };
            writes.insert(key, &encode(first_ms, last_ms)[..]);
        }
        Ok(())
    }

    /// Every account seen, of `agent` or of every agent, sorted by agent
    /// then user.
    pub fn accounts(&self, agent: Option<AgentId>) -> Result<Vec<AccountSeen>, StoreError> {
        let prefix = match agent {
            Some(agent) => agent_prefix(ACCOUNT_PREFIX, agent),
            None => vec![ACCOUNT_PREFIX],
        };
        let mut accounts = Vec::new();
        for item in self.data.scan_prefix(prefix) {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            let parsed = parse_account_key(&key).zip(decode(&value));
            let Some(((agent, user), (first_seen_ms, last_seen_ms))) = parsed else {
                return Err(self.corrupt(format!("account entry {key:02x?} is damaged")));
            };
            accounts.push(AccountSeen {
                agent,
                user,
                first_seen_ms,
                last_seen_ms,
            });
        }
        Ok(accounts)
    }

    /// Builds the index from the stored presence spans and session events
    /// (a store from before it), then marks it built.
    pub(super) fn index_accounts_from_records(&self) -> Result<(), StoreError> {
        let _writer = self.write_guard();
        let mut agents = std::collections::BTreeSet::new();
        for kind in [super::RecordKind::Activity, super::RecordKind::Session] {
            self.for_each_agent(kind.tag(), None, |agent| {
                agents.insert(agent);
                Ok(())
            })?;
        }
        for agent in agents {
            let mut delta = AccountDelta::default();
            for span in self.activity_spans(agent, i64::MIN, i64::MAX)? {
                delta.add_activity(&span);
            }
            for event in self.session_events(agent, i64::MIN, i64::MAX)? {
                delta.add_session(&event);
            }
            let mut batch = sled::Batch::default();
            self.stage_accounts(&mut batch, agent, &delta)?;
            self.data
                .apply_batch(batch)
                .map_err(|source| self.sled_error(source))?;
        }
        self.db
            .insert(ACCOUNTS_INDEXED_KEY, &[1u8][..])
            .map_err(|source| self.sled_error(source))?;
        self.sync()
    }

    /// Whether [`Self::index_accounts_from_records`] is still to run.
    pub(super) fn accounts_unindexed(&self) -> Result<bool, StoreError> {
        Ok(self
            .db
            .get(ACCOUNTS_INDEXED_KEY)
            .map_err(|source| self.sled_error(source))?
            .is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_damage_is_refused() {
        assert_eq!(decode(&encode(-5, 7)), Some((-5, 7)));
        assert_eq!(decode(&[0u8; 15]), None);
        let agent = AgentId::from_bytes([7; 16]);
        assert_eq!(
            parse_account_key(&account_key(agent, "élodie")),
            Some((agent, "élodie".to_owned()))
        );
        assert_eq!(parse_account_key(&account_key(agent, "")), None);
    }
}
