//! Retention: pruning raw records and screenshots past their data
//! class's days. Rollups are aggregates and are kept.

use protocol::Retention;

use crate::model::DAY_MS;

use super::block::decode_header;
use super::keys::{block_prefix, block_start_bound};
use super::{ConsoleStore, RecordKind, StoreError};

/// What a prune deleted of one kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrunedKind {
    pub blocks: u64,
    pub records: u64,
    pub bytes: u64,
}

/// What [`ConsoleStore::prune`] deleted, per kind, and of screenshots.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PruneReport {
    kinds: [PrunedKind; 5],
    screenshots: PrunedKind,
}

impl PruneReport {
    pub fn get(&self, kind: RecordKind) -> &PrunedKind {
        &self.kinds[kind.index()]
    }

    /// Records deleted of every kind (screenshots not included).
    pub fn records(&self) -> u64 {
        self.kinds.iter().map(|kind| kind.records).sum()
    }

    /// Screenshots deleted (`records`: how many; `blocks` stays 0;
    /// `bytes`: index entries and encrypted images).
    pub fn screenshots(&self) -> &PrunedKind {
        &self.screenshots
    }
}

impl ConsoleStore {
    /// Deletes raw blocks whose newest record is older than its class's
    /// retention at `now_ms`, and screenshots (index entry and encrypted
    /// image) taken before `frames_days`, flushed. Rollups are kept.
    pub fn prune(&self, now_ms: i64, retention: &Retention) -> Result<PruneReport, StoreError> {
        let writer = self.write_guard();
        let mut report = PruneReport {
            screenshots: self.prune_screenshots(now_ms, retention.frames_days)?,
            ..PruneReport::default()
        };
        for kind in RecordKind::ALL {
            let days = i64::from(kind.retention_days(retention));
            let cutoff_ms = now_ms.saturating_sub(days.saturating_mul(DAY_MS));
            let pruned = &mut report.kinds[kind.index()];
            self.for_each_agent(kind.tag(), None, |agent| {
                let mut deletes = sled::Batch::default();
                let range = block_prefix(kind, agent)..block_start_bound(kind, agent, cutoff_ms);
                for item in self.data.range(range) {
                    let (key, value) = item.map_err(|source| self.sled_error(source))?;
                    let start_ms = self.block_start(kind, agent, &key)?;
                    let header = decode_header(&value)
                        .map_err(|source| self.corrupt_block(kind, agent, start_ms, source))?;
                    if header.max_end_ms < cutoff_ms {
                        deletes.remove(key);
                        pruned.blocks += 1;
                        pruned.records += u64::from(header.count);
                        pruned.bytes += value.len() as u64;
                    }
                }
                self.data
                    .apply_batch(deletes)
                    .map_err(|source| self.sled_error(source))
            })?;
        }
        drop(writer);
        self.sync()?;
        Ok(report)
    }
}
