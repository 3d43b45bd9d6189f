//! Time as a set of sorted, disjoint `[start_ms, end_ms)` intervals merged
//! from spans (pure): when some accounts were signed in, the one place
//! that merges and looks such time up.

/// Sorted, disjoint intervals; touching ones are merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals {
    spans_ms: Vec<(i64, i64)>,
}

impl Intervals {
    /// The union of `spans` (`(start_ms, end_ms)`, start before end).
    pub fn merge(spans: impl IntoIterator<Item = (i64, i64)>) -> Intervals {
        let mut spans: Vec<(i64, i64)> = spans.into_iter().collect();
        spans.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
        for (start_ms, end_ms) in spans {
            match merged.last_mut() {
                Some((_, last_end_ms)) if start_ms <= *last_end_ms => {
                    *last_end_ms = (*last_end_ms).max(end_ms);
                }
                _ => merged.push((start_ms, end_ms)),
            }
        }
        Intervals { spans_ms: merged }
    }

    /// Every interval, in time order.
    pub fn as_slice(&self) -> &[(i64, i64)] {
        &self.spans_ms
    }

    /// The intervals from the first one ending after `at_ms` on: the only
    /// ones a span starting at `at_ms` can meet.
    pub fn from(&self, at_ms: i64) -> &[(i64, i64)] {
        let first = self
            .spans_ms
            .partition_point(|(_, end_ms)| *end_ms <= at_ms);
        &self.spans_ms[first..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_and_touching_spans_merge_and_lookups_start_at_the_right_one() {
        let intervals = Intervals::merge([(50, 60), (10, 20), (15, 30), (30, 35)]);
        assert_eq!(intervals.as_slice(), [(10, 35), (50, 60)]);
        assert_eq!(intervals.from(35), [(50, 60)]);
        assert_eq!(intervals.from(34), [(10, 35), (50, 60)]);
        assert!(intervals.from(60).is_empty());
        assert!(Intervals::default().from(i64::MIN).is_empty());
    }
}
