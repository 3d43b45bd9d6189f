//! Retention: pruning raw records and screenshots past their data
//! class's days. Rollups are aggregates and are kept.

use protocol::Retention;

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
    /// Where keeping `days` days ends at `now_ms`: the site's midnight
    /// `days` local days before today's, so days are kept whole, in local
    /// days, daylight saving included.
    pub(crate) fn retention_cutoff_ms(&self, now_ms: i64, days: u16) -> i64 {
        let clock = self.day_clock();
        clock.day_start_ms(clock.day_of(now_ms).saturating_sub(i32::from(days)))
    }

    /// Deletes raw blocks whose newest record is older than its class's
    /// retention at `now_ms` (counted in the site's local days, see
    /// [`Self::retention_cutoff_ms`]), and screenshots (index entry and
    /// encrypted image) taken before `frames_days`, flushed. Rollups are
    /// kept.
    pub fn prune(&self, now_ms: i64, retention: &Retention) -> Result<PruneReport, StoreError> {
        let writer = self.write_guard();
        let mut report = PruneReport {
            screenshots: self.prune_screenshots(now_ms, retention.frames_days)?,
            ..PruneReport::default()
        };
        for kind in RecordKind::ALL {
            let cutoff_ms = self.retention_cutoff_ms(now_ms, kind.retention_days(retention));
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

#[cfg(test)]
mod tests {
    use crate::model::DayClock;
    use crate::store::ConsoleStore;

    #[test]
    fn retention_keeps_whole_local_days() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paris = DayClock::from_name("Europe/Paris").expect("zone");
        let store = ConsoleStore::open(dir.path(), paris).expect("store");
        // Monday 2026-03-30 09:00 CEST, keeping one day: from Sunday's
        // midnight (Saturday 23:00 UTC, the clocks changed that night),
        // not from Sunday 09:00 as a 24-hour window would.
        assert_eq!(
            store.retention_cutoff_ms(1_774_854_000_000, 1),
            1_774_738_800_000
        );
        // Seven days from Monday 2026-11-02 08:00 CET: Monday 2026-10-26
        // 00:00 CET.
        assert_eq!(
            store.retention_cutoff_ms(1_793_602_800_000, 7),
            1_792_969_200_000
        );
    }
}
