//! Which records of a pulled batch to store (pure): the exactly-once rules.

use protocol::{Cursor, RecordBatch, SeqRecord};

/// The records of a batch that are new, and the cursor after them.
#[derive(Debug)]
pub(crate) struct Accepted<'a> {
    pub(crate) records: Vec<&'a SeqRecord>,
    pub(crate) skipped_duplicates: u64,
    pub(crate) new_cursor: Cursor,
    /// `first..=last` were gone from the agent before this store took them
    /// (dropped over quota, or pruned before first contact).
    pub(crate) missed: Option<(u64, u64)>,
}

/// Why a batch is refused; nothing of it may be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The batch skips sequence numbers the store does not hold.
    Hole { expected_seq: u64, found_seq: u64 },
    /// The batch is from an epoch this store already replaced.
    StaleEpoch,
}

/// Applies the exactly-once rules to `batch`, given the stored cursor of
/// its stream and whether its epoch is one this store already left.
///
/// - Another epoch than the stored one means the agent's store was reset:
///   numbering restarts, from seq 1 (or, on first contact with the epoch,
///   from whatever the agent still holds, reported as `missed`).
/// - Records at or below the stored seq of the same epoch are duplicates:
///   counted, skipped.
/// - The rest must be contiguous; a hole before the first of them means
///   the agent dropped those records (quota, retention) and is reported as
///   `missed`.
pub(crate) fn accept(
    stored: Option<Cursor>,
    epoch_retired: bool,
    batch: &RecordBatch,
) -> Result<Accepted<'_>, Refusal> {
    let same_epoch = stored.is_some_and(|cursor| cursor.epoch == batch.epoch);
    if !same_epoch && epoch_retired {
        return Err(Refusal::StaleEpoch);
    }
    let base_seq = match stored {
        Some(cursor) if same_epoch => cursor.seq,
        _ => 0,
    };
    let mut last_seq = base_seq;
    let mut records = Vec::with_capacity(batch.records.len());
    let mut skipped_duplicates = 0;
    let mut missed = None;
    for record in &batch.records {
        if record.seq <= base_seq || record.seq == 0 {
            skipped_duplicates += 1;
            continue;
        }
        let expected_seq = last_seq.saturating_add(1);
        if record.seq != expected_seq {
            // Before the first new record, a hole is records the agent no
            // longer has (dropped over quota, or pruned before this store
            // first saw the epoch): recorded as missed, never hidden.
            // Inside a batch it can only be corruption.
            if !records.is_empty() {
                return Err(Refusal::Hole {
                    expected_seq,
                    found_seq: record.seq,
                });
            }
            missed = Some((expected_seq, record.seq - 1));
        }
        last_seq = record.seq;
        records.push(record);
    }
    Ok(Accepted {
        records,
        skipped_duplicates,
        new_cursor: Cursor {
            epoch: batch.epoch,
            seq: last_seq,
        },
        missed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{GapMarker, GapReason, Record, StreamKind};

    fn batch(epoch: u64, seqs: &[u64]) -> RecordBatch {
        RecordBatch {
            stream: StreamKind::Usage,
            epoch,
            records: seqs
                .iter()
                .map(|seq| SeqRecord {
                    seq: *seq,
                    record: Record::Gap(GapMarker {
                        stream: StreamKind::Usage,
                        first_seq: 0,
                        last_seq: 0,
                        reason: GapReason::QuotaExceeded,
                    }),
                })
                .collect(),
            more: false,
        }
    }

    fn seqs(accepted: &Accepted<'_>) -> Vec<u64> {
        accepted.records.iter().map(|record| record.seq).collect()
    }

    /// Stored cursor, batch epoch, batch seqs; then accepted seqs, skipped
    /// duplicates, new cursor seq, missed range.
    type Case = (
        Option<Cursor>,
        u64,
        &'static [u64],
        &'static [u64],
        u64,
        u64,
        Option<(u64, u64)>,
    );

    #[test]
    fn table() {
        let at = |epoch, seq| Some(Cursor { epoch, seq });
        let cases: &[Case] = &[
            (None, 7, &[1, 2, 3], &[1, 2, 3], 0, 3, None),
            (at(7, 3), 7, &[1, 2, 3], &[], 3, 3, None),
            (at(7, 2), 7, &[1, 2, 3, 4], &[3, 4], 2, 4, None),
            (at(7, 9), 8, &[1, 2], &[1, 2], 0, 2, None),
            (None, 7, &[5, 6], &[5, 6], 0, 6, Some((1, 4))),
            (at(7, 9), 8, &[3], &[3], 0, 3, Some((1, 2))),
            (at(7, 3), 7, &[5, 6], &[5, 6], 0, 6, Some((4, 4))),
            (at(7, 3), 7, &[2, 3, 9, 10], &[9, 10], 2, 10, Some((4, 8))),
            (at(7, 4), 7, &[], &[], 0, 4, None),
            (None, 7, &[], &[], 0, 0, None),
        ];
        for (stored, epoch, batch_seqs, want, skipped, cursor_seq, missed) in cases {
            let batch = batch(*epoch, batch_seqs);
            let accepted = accept(*stored, false, &batch).unwrap();
            let case = format!("{stored:?} {epoch} {batch_seqs:?}");
            assert_eq!(seqs(&accepted), *want, "{case}");
            assert_eq!(accepted.skipped_duplicates, *skipped, "{case}");
            assert_eq!(
                accepted.new_cursor,
                Cursor {
                    epoch: *epoch,
                    seq: *cursor_seq
                },
                "{case}"
            );
            assert_eq!(accepted.missed, *missed, "{case}");
        }
    }

    #[test]
    fn holes_and_stale_epochs_are_refused() {
        let stored = Some(Cursor { epoch: 7, seq: 3 });
        assert_eq!(
            accept(stored, false, &batch(7, &[4, 6])).unwrap_err(),
            Refusal::Hole {
                expected_seq: 5,
                found_seq: 6
            }
        );
        assert_eq!(
            accept(None, false, &batch(7, &[2, 4])).unwrap_err(),
            Refusal::Hole {
                expected_seq: 3,
                found_seq: 4
            }
        );
        assert_eq!(
            accept(stored, true, &batch(6, &[1])).unwrap_err(),
            Refusal::StaleEpoch
        );
        // A retired epoch that is also the stored one cannot happen, but the
        // stored cursor wins.
        assert!(accept(stored, true, &batch(7, &[4])).is_ok());
    }
}
