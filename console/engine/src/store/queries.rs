//! Raw queries: records of one agent in a time range, read block by
//! block and clipped to it.

use std::ops::Bound;

use crate::model::{ActivitySpan, AgentId, Gap, HealthPoint, SessionEvent, UsageSpan};

use super::block::{decode_block, decode_header, BlockRecord, NotedGap};
use super::keys::{block_prefix, block_start_bound, prefix_end};
use super::{ConsoleStore, StoreError};

/// Block records with a duration, which queries clip to their range.
trait ClippedSpan: BlockRecord {
    fn set_extent_ms(&mut self, start_ms: i64, end_ms: i64);
}

impl ClippedSpan for UsageSpan {
    fn set_extent_ms(&mut self, start_ms: i64, end_ms: i64) {
        (self.start_ms, self.end_ms) = (start_ms, end_ms);
    }
}

impl ClippedSpan for ActivitySpan {
    fn set_extent_ms(&mut self, start_ms: i64, end_ms: i64) {
        (self.start_ms, self.end_ms) = (start_ms, end_ms);
    }
}

/// `[start, end)` clipped to `[from_ms, to_ms)` if they overlap. Zero-length
/// (or reversed) spans are points at their start and are kept unchanged.
pub(super) fn clip(start_ms: i64, end_ms: i64, from_ms: i64, to_ms: i64) -> Option<(i64, i64)> {
    if start_ms < end_ms {
        (start_ms < to_ms && end_ms > from_ms).then(|| (start_ms.max(from_ms), end_ms.min(to_ms)))
    } else {
        within(start_ms, from_ms, to_ms).then_some((start_ms, end_ms))
    }
}

pub(super) fn within(at_ms: i64, from_ms: i64, to_ms: i64) -> bool {
    from_ms <= at_ms && at_ms < to_ms
}

impl ConsoleStore {
    /// Usage spans of `agent` overlapping `[from_ms, to_ms)`, clipped to
    /// it, in start order.
    pub fn usage_spans(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<UsageSpan>, StoreError> {
        self.clipped_spans(agent, from_ms, to_ms)
    }

    /// Presence spans of `agent` overlapping `[from_ms, to_ms)`, clipped to
    /// it, in start order.
    pub fn activity_spans(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ActivitySpan>, StoreError> {
        self.clipped_spans(agent, from_ms, to_ms)
    }

    /// Spans of `agent` overlapping `[from_ms, to_ms)`, clipped to it, in
    /// start order.
    fn clipped_spans<R: ClippedSpan>(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<R>, StoreError> {
        let mut spans = Vec::new();
        self.visit_range::<R>(agent, from_ms, to_ms, |block| {
            spans.extend(block.into_iter().filter_map(|mut span| {
                let (start_ms, end_ms) = span.extent_ms();
                let (start_ms, end_ms) = clip(start_ms, end_ms, from_ms, to_ms)?;
                span.set_extent_ms(start_ms, end_ms);
                Some(span)
            }));
            Ok(())
        })?;
        spans.sort_by_key(|span| span.extent_ms().0);
        Ok(spans)
    }

    /// Session events of `agent` in `[from_ms, to_ms)`, in time order.
    pub fn session_events(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<SessionEvent>, StoreError> {
        let mut events = Vec::new();
        self.visit_range::<SessionEvent>(agent, from_ms, to_ms, |block| {
            events.extend(
                block
                    .into_iter()
                    .filter(|event| within(event.at_ms, from_ms, to_ms)),
            );
            Ok(())
        })?;
        events.sort_by_key(|event| event.at_ms);
        Ok(events)
    }

    /// Health points of `agent` in `[from_ms, to_ms)`, in time order.
    pub fn health_points(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<HealthPoint>, StoreError> {
        let mut points = Vec::new();
        self.visit_range::<HealthPoint>(agent, from_ms, to_ms, |block| {
            points.extend(
                block
                    .into_iter()
                    .filter(|point| within(point.at_ms, from_ms, to_ms)),
            );
            Ok(())
        })?;
        points.sort_by_key(|point| point.at_ms);
        Ok(points)
    }

    /// Every gap marker of `agent` still retained, in the order received.
    pub fn gaps(&self, agent: AgentId) -> Result<Vec<Gap>, StoreError> {
        let mut gaps = Vec::new();
        self.visit_range::<NotedGap>(agent, i64::MIN, i64::MAX, |block| {
            gaps.extend(block);
            Ok(())
        })?;
        gaps.sort_by_key(|noted| noted.noted_ms);
        Ok(gaps.into_iter().map(|noted| noted.gap).collect())
    }

    /// Calls `visit` with every block of `agent` and kind `R` that may hold
    /// a record overlapping `[from_ms, to_ms)` (`to_ms == i64::MAX`: no
    /// upper bound), in key order.
    pub(super) fn visit_range<R: BlockRecord>(
        &self,
        agent: AgentId,
        from_ms: i64,
        to_ms: i64,
        mut visit: impl FnMut(Vec<R>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if from_ms >= to_ms {
            return Ok(());
        }
        let lookback_ms = self.kind_state(agent, R::KIND)?.max_extent_ms.max(0);
        let start = block_start_bound(R::KIND, agent, from_ms.saturating_sub(lookback_ms));
        let end = if to_ms == i64::MAX {
            prefix_end(&block_prefix(R::KIND, agent))
        } else {
            Bound::Excluded(block_start_bound(R::KIND, agent, to_ms))
        };
        for item in self.data.range((Bound::Included(start), end)) {
            let (key, value) = item.map_err(|source| self.sled_error(source))?;
            let start_ms = self.block_start(R::KIND, agent, &key)?;
            let corrupt = |source| self.corrupt_block(R::KIND, agent, start_ms, source);
            let header = decode_header(&value).map_err(corrupt)?;
            if header.max_end_ms < from_ms {
                continue;
            }
            let (_, records) = decode_block(agent, start_ms, &value).map_err(corrupt)?;
            visit(records)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_overlaps_and_points() {
        assert_eq!(clip(0, 10, 5, 20), Some((5, 10)));
        assert_eq!(clip(0, 10, 10, 20), None);
        assert_eq!(clip(5, 5, 5, 20), Some((5, 5)));
        assert_eq!(clip(20, 20, 5, 20), None);
        assert_eq!(clip(0, 100, 5, 20), Some((5, 20)));
        assert_eq!(clip(9, 3, 5, 20), Some((9, 3)));
    }
}
