//! The GDPR erasure of a person: every record of their accounts in this
//! console's store (presence, sessions, the applications and screenshots
//! of their signed-in time), the accounts forgotten, the person removed
//! from the book; and for each workstation that held their accounts, an
//! erasure the next sync hands it (before pulling anything) until it
//! confirms. The audit log keeps only the fact and the counts, never the
//! name or the account names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{BookError, PersonId};
use crate::model::AgentId;
use crate::store::{AuditEntry, ConsoleStore, StoreError};

/// Settings key of the erasures agents still have to confirm.
pub const PENDING_ERASURES_KEY: &str = "pending_erasures";

/// An erasure a workstation still has to confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingErasure {
    pub agent: AgentId,
    /// At most [`protocol::MAX_ERASE_USERS`], sorted.
    pub users: Vec<String>,
}

/// What erasing a person removed here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    pub records: u64,
    pub screenshots: u64,
    /// Workstations asked to drop their copies.
    pub workstations: usize,
    /// Live entries about those workstations that still contain one of
    /// the account names afterwards (window titles, application names,
    /// another person's name): 0 when nothing is left.
    pub mentions_left: u64,
}

/// The queue of erasures does not read.
fn damaged(store: &ConsoleStore, error: &serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        path: store.path().to_path_buf(),
        detail: format!("the pending erasures ({PENDING_ERASURES_KEY}) do not read: {error}"),
    }
}

/// The erasures still to hand to workstations.
pub fn pending(store: &ConsoleStore) -> Result<Vec<PendingErasure>, StoreError> {
    match store.get_setting(PENDING_ERASURES_KEY)? {
        None => Ok(Vec::new()),
        Some(value) => serde_json::from_value(value).map_err(|error| damaged(store, &error)),
    }
}

fn save_pending(store: &ConsoleStore, pending: &[PendingErasure]) -> Result<(), StoreError> {
    let value = serde_json::to_value(pending).map_err(|error| damaged(store, &error))?;
    store.put_setting(PENDING_ERASURES_KEY, &value)
}

/// The pending erasures of `agent`.
pub fn pending_for(
    store: &ConsoleStore,
    agent: AgentId,
) -> Result<Vec<PendingErasure>, StoreError> {
    Ok(pending(store)?
        .into_iter()
        .filter(|erasure| erasure.agent == agent)
        .collect())
}

/// Erases person `id` (see the module documentation): the store first,
/// then the book; the workstations' erasures are queued. Calling it again
/// after a crash part way finds the person still in the book and finishes.
pub fn erase_person(
    store: &ConsoleStore,
    id: PersonId,
    actor: &str,
) -> Result<ErasureReport, BookError> {
    let book = super::load(store)?;
    let seen = store.accounts(None)?;
    let mut by_agent: BTreeMap<AgentId, Vec<String>> = BTreeMap::new();
    for (agent, user) in book.seen_accounts(id, &seen) {
        by_agent.entry(agent).or_default().push(user);
    }
    let mut report = ErasureReport::default();
    {
        let _writer = super::BOOK_WRITER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut queued = pending(store)?;
        for (agent, users) in &by_agent {
            for chunk in users.chunks(protocol::MAX_ERASE_USERS) {
                let erasure = PendingErasure {
                    agent: *agent,
                    users: chunk.to_vec(),
                };
                if !queued.contains(&erasure) {
                    queued.push(erasure);
                }
            }
        }
        // Queued before anything is erased: a crash cannot leave records
        // on a workstation that nobody will ask to drop them.
        save_pending(store, &queued)?;
    }
    for (agent, users) in &by_agent {
        let erased = store.erase_accounts(*agent, users)?;
        report.records += erased.records;
        report.screenshots += erased.screenshots;
    }
    report.workstations = by_agent.len();
    super::update(store, |book| {
        book.remove(id);
        Ok(())
    })?;
    // Checked once the book no longer holds the person; the queued
    // erasures name the accounts until the workstations confirm them.
    let agents: Vec<AgentId> = by_agent.keys().copied().collect();
    let users: Vec<&[u8]> = by_agent
        .values()
        .flatten()
        .map(|user| user.as_bytes())
        .collect();
    report.mentions_left = store.count_mentions(&agents, &users, &[PENDING_ERASURES_KEY])?;
    store.audit(AuditEntry {
        at_ms: crate::clock::wall_now_ms(),
        actor: actor.to_owned(),
        action: "person-erase".to_owned(),
        target: format!("person {id}"),
        detail: format!(
            "{} record(s) and {} screenshot(s) erased; {} workstation(s) asked to drop theirs; {} live entr(ies) still name an account",
            report.records, report.screenshots, report.workstations, report.mentions_left
        ),
    })?;
    Ok(report)
}

/// The workstation confirmed `erasure`, dropping what `reply` counts:
/// erases again here whatever a sync stored between the first erasure and
/// the workstation's (idempotent), takes it off the queue and audits the
/// counts.
pub fn confirmed(
    store: &ConsoleStore,
    erasure: &PendingErasure,
    reply: protocol::ErasedReply,
    actor: &str,
) -> Result<(), StoreError> {
    let erased = store.erase_accounts(erasure.agent, &erasure.users)?;
    {
        let _writer = super::BOOK_WRITER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all = pending(store)?;
        all.retain(|held| held != erasure);
        save_pending(store, &all)?;
    }
    store.audit(AuditEntry {
        at_ms: crate::clock::wall_now_ms(),
        actor: actor.to_owned(),
        action: "person-erase-agent".to_owned(),
        target: erasure.agent.to_string(),
        detail: format!(
            "the workstation dropped {} record(s) and {} image(s); {} more erased here",
            reply.records,
            reply.images,
            erased.records + erased.screenshots
        ),
    })?;
    Ok(())
}
