//! Erasing one agent from the store: its inventory record (with its
//! remembered addresses), every key of the `data` tree that names it
//! (record blocks of every kind and their per-kind state, cursors,
//! retired epochs, day and quarter-hour rollups, screenshot index
//! entries, encrypted images and the serial) and its faults.
//!
//! Every key of the `data` tree is a one-byte prefix then the agent's 16
//! id bytes, so the erasure walks `[prefix][agent]` for every prefix byte:
//! a kind of key added later is erased too. Deletes go in batches of at
//! most [`ERASE_BATCH_KEYS`] keys, each applied under the writer lock and
//! flushed before the next, so a big agent never makes one giant batch and
//! ingest of other agents waits at most one batch. The inventory record
//! goes first (sync then refuses the agent's certificate); a crash part way
//! leaves keys that a second call, which needs no inventory record,
//! erases. Settings that name the agent are `crate::settings`'s business.

use crate::model::AgentId;

use super::block::decode_header;
use super::keys::{agent_prefix, parse_block_key, SHOT_INDEX_PREFIX};
use super::{ConsoleStore, RecordKind, StoreError};

/// Most keys deleted in one batch.
pub const ERASE_BATCH_KEYS: usize = 1024;

/// What [`ConsoleStore::erase_agent`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ErasedCounts {
    /// Records of every kind in the erased blocks (gap markers included).
    pub records: u64,
    /// Screenshots (index entries, with their images when stored).
    pub screenshots: u64,
    /// Keys deleted in every tree, the inventory record included.
    pub keys: u64,
}

impl ConsoleStore {
    /// Deletes everything the store holds about `agent` (see the module
    /// documentation), whether or not it is still in the inventory, in
    /// bounded flushed batches. Calling it again after a crash finishes
    /// the job; calling it on an agent with nothing left deletes nothing.
    pub fn erase_agent(&self, agent: AgentId) -> Result<ErasedCounts, StoreError> {
        let mut counts = ErasedCounts::default();
        if self.remove_agent(agent)?.is_some() {
            counts.keys += 1;
        }
        let (mut records, mut screenshots) = (0u64, 0u64);
        for prefix in 0..=u8::MAX {
            counts.keys +=
                self.erase_prefix(&self.data, &agent_prefix(prefix, agent), |key, value| {
                    if prefix == SHOT_INDEX_PREFIX {
                        screenshots += 1;
                    } else if RecordKind::ALL
                        .iter()
                        .any(|kind| parse_block_key(*kind, key).is_some())
                    {
                        // A damaged block is erased all the same, uncounted.
                        records += decode_header(value).map_or(0, |header| u64::from(header.count));
                    }
                })?;
        }
        counts.keys += self.erase_prefix(&self.faults, agent.as_bytes(), |_, _| {})?;
        counts.records = records;
        counts.screenshots = screenshots;
        Ok(counts)
    }

    /// Deletes every key of `tree` that starts with `prefix`, telling
    /// `tally` each key and value first; returns how many.
    fn erase_prefix(
        &self,
        tree: &sled::Tree,
        prefix: &[u8],
        mut tally: impl FnMut(&[u8], &[u8]),
    ) -> Result<u64, StoreError> {
        let mut erased_keys = 0u64;
        loop {
            let writer = self.write_guard();
            let mut deletes = sled::Batch::default();
            let mut batch_keys = 0usize;
            for item in tree.scan_prefix(prefix).take(ERASE_BATCH_KEYS) {
                let (key, value) = item.map_err(|source| self.sled_error(source))?;
                tally(&key, &value);
                deletes.remove(key);
                batch_keys += 1;
            }
            if batch_keys == 0 {
                return Ok(erased_keys);
            }
            tree.apply_batch(deletes)
                .map_err(|source| self.sled_error(source))?;
            drop(writer);
            self.sync()?;
            erased_keys += batch_keys as u64;
            if batch_keys < ERASE_BATCH_KEYS {
                return Ok(erased_keys);
            }
        }
    }
}
