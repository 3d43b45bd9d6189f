//! One stream's pulls within one sync pass, as a pure state machine: the
//! bounds every pass keeps whatever an agent answers (no I/O, no clock;
//! the shell checks the pass deadline before each request).
//!
//! - A batch may not hold more records than were asked for.
//! - A batch of the stored epoch with no records ends the stream.
//! - A batch of another epoch is followed at most once per pass, and only
//!   when it brings records: an agent whose store was reset is followed,
//!   one that keeps changing epochs is not.
//! - Each ingested batch must move the cursor; one that does not while
//!   saying `more` would loop for ever and is a fault.
//! - At most `budget_records` records per pass: the rest waits for the
//!   next pass, which resumes from the durable cursor.

use protocol::Cursor;

use crate::store::FaultKind;

/// Why a stream stopped before its end this pass; the next pass resumes
/// from the stored cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Incomplete {
    /// The pass's deadline for this agent came.
    Deadline,
    /// The pass's record budget for this stream was used.
    Budget,
    /// What was pulled is stored here, but the agent cannot record the
    /// ack for now (its disk is full): acked again next pass.
    AckDeferred,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Store the batch (then report it with [`StreamPass::ingested`]).
    Ingest,
    /// Ask for the next batch.
    Pull,
    /// Everything the agent had is stored.
    Done,
    /// Stop this stream for this pass; what is stored stays.
    Stop(Incomplete),
    /// The agent broke a rule: stop this agent, note the fault.
    Fault(FaultKind, String),
}

/// The pulls of one stream of one agent within one pass.
#[derive(Debug, Clone)]
pub(crate) struct StreamPass {
    /// The durable cursor: where the next pull continues.
    cursor: Cursor,
    asked_records: u32,
    budget_records: u64,
    followed_epoch: bool,
    /// The batch being ingested said more records are ready.
    more: bool,
}

/// The parts of a pulled batch the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchShape {
    pub(crate) epoch: u64,
    pub(crate) records: usize,
    pub(crate) more: bool,
}

impl StreamPass {
    /// Pulls after `cursor` (`epoch 0`: nothing stored yet), `asked_records`
    /// at a time, at most `budget_records` this pass.
    pub(crate) fn new(cursor: Cursor, asked_records: u32, budget_records: u64) -> Self {
        StreamPass {
            cursor,
            asked_records,
            budget_records,
            followed_epoch: false,
            more: false,
        }
    }

    /// Where the next pull continues.
    pub(crate) fn cursor(&self) -> Cursor {
        self.cursor
    }

    pub(crate) fn asked_records(&self) -> u32 {
        self.asked_records
    }

    /// Judges a pulled batch before anything of it is stored.
    pub(crate) fn pulled(&mut self, batch: BatchShape) -> Step {
        let asked = usize::try_from(self.asked_records).unwrap_or(usize::MAX);
        if batch.records > asked {
            return Step::Fault(
                FaultKind::ProtocolViolation,
                format!(
                    "it sent {} records where {asked} were asked for",
                    batch.records
                ),
            );
        }
        if batch.epoch == self.cursor.epoch {
            if batch.records == 0 {
                return Step::Done;
            }
        } else {
            if batch.records == 0 {
                // A store reset with nothing in this stream yet: nothing
                // to follow; the next pass asks again.
                return Step::Done;
            }
            if self.followed_epoch {
                return Step::Fault(
                    FaultKind::EpochFlapping,
                    format!(
                        "its store changed epoch again within one pass (to {:#018x}); not followed",
                        batch.epoch
                    ),
                );
            }
            self.followed_epoch = true;
        }
        self.more = batch.more;
        Step::Ingest
    }

    /// The batch judged by [`Self::pulled`] is durably stored and its
    /// `records` counted against the budget; `new_cursor` is what the
    /// store reported (ack it before following the step).
    pub(crate) fn ingested(&mut self, records: usize, new_cursor: Cursor) -> Step {
        let moved = new_cursor != self.cursor;
        self.cursor = new_cursor;
        self.budget_records = self
            .budget_records
            .saturating_sub(u64::try_from(records).unwrap_or(u64::MAX));
        if !self.more {
            return Step::Done;
        }
        if !moved {
            return Step::Fault(
                FaultKind::ProtocolViolation,
                "it sent only records this console already has, saying more were ready".to_owned(),
            );
        }
        if self.budget_records == 0 {
            return Step::Stop(Incomplete::Budget);
        }
        Step::Pull
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: u64 = 0xE;
    const F: u64 = 0xF;

    fn at(epoch: u64, seq: u64) -> Cursor {
        Cursor { epoch, seq }
    }

    fn shape(epoch: u64, records: usize, more: bool) -> BatchShape {
        BatchShape {
            epoch,
            records,
            more,
        }
    }

    /// Runs batches through a pass; each batch's records move the cursor
    /// by `advance` (0: the store skipped them all as duplicates).
    fn run(pass: &mut StreamPass, batches: &[(BatchShape, u64)]) -> Vec<Step> {
        let mut steps = Vec::new();
        for (batch, advance) in batches {
            let step = pass.pulled(*batch);
            let ingest = step == Step::Ingest;
            steps.push(step);
            if !ingest {
                break;
            }
            let cursor = if batch.epoch == pass.cursor().epoch {
                at(batch.epoch, pass.cursor().seq + advance)
            } else {
                at(batch.epoch, *advance)
            };
            let step = pass.ingested(batch.records, cursor);
            let go_on = step == Step::Pull;
            steps.push(step);
            if !go_on {
                break;
            }
        }
        steps
    }

    #[test]
    fn honest_agents_are_followed_to_the_end() {
        // Up to date.
        let mut pass = StreamPass::new(at(E, 9), 100, 1_000);
        assert_eq!(run(&mut pass, &[(shape(E, 0, false), 0)]), [Step::Done]);
        // Two batches, then the end.
        let mut pass = StreamPass::new(at(E, 9), 100, 1_000);
        assert_eq!(
            run(
                &mut pass,
                &[(shape(E, 100, true), 100), (shape(E, 40, false), 40)]
            ),
            [Step::Ingest, Step::Pull, Step::Ingest, Step::Done]
        );
        assert_eq!(pass.cursor(), at(E, 149));
        // First contact: the agent's epoch is followed once.
        let mut pass = StreamPass::new(at(0, 0), 100, 1_000);
        assert_eq!(
            run(
                &mut pass,
                &[(shape(E, 100, true), 100), (shape(E, 1, false), 1)]
            ),
            [Step::Ingest, Step::Pull, Step::Ingest, Step::Done]
        );
        // A reset store: the new epoch is followed once.
        let mut pass = StreamPass::new(at(E, 500), 100, 1_000);
        assert_eq!(
            run(&mut pass, &[(shape(F, 3, false), 3)]),
            [Step::Ingest, Step::Done]
        );
        assert_eq!(pass.cursor(), at(F, 3));
    }

    #[test]
    fn a_reset_store_with_nothing_yet_is_not_followed() {
        let mut pass = StreamPass::new(at(E, 500), 100, 1_000);
        assert_eq!(run(&mut pass, &[(shape(F, 0, true), 0)]), [Step::Done]);
        assert_eq!(pass.cursor(), at(E, 500), "the stored epoch stays");
    }

    #[test]
    fn every_pass_is_bounded() {
        // More records than asked for.
        let mut pass = StreamPass::new(at(E, 0), 10, 1_000);
        assert!(matches!(
            pass.pulled(shape(E, 11, true)),
            Step::Fault(FaultKind::ProtocolViolation, _)
        ));
        // One record each, always `more`: the budget stops it.
        let mut pass = StreamPass::new(at(E, 0), 10, 5);
        let batches = vec![(shape(E, 1, true), 1); 100];
        let steps = run(&mut pass, &batches);
        assert_eq!(steps.len(), 10, "{steps:?}");
        assert_eq!(steps.last(), Some(&Step::Stop(Incomplete::Budget)));
        assert_eq!(pass.cursor(), at(E, 5));
        // Only duplicates, always `more`: a fault at once.
        let mut pass = StreamPass::new(at(E, 9), 10, 1_000);
        let steps = run(&mut pass, &[(shape(E, 3, true), 0), (shape(E, 3, true), 0)]);
        assert!(
            matches!(
                steps.as_slice(),
                [Step::Ingest, Step::Fault(FaultKind::ProtocolViolation, _)]
            ),
            "{steps:?}"
        );
        // A new epoch with every batch: followed once, then a fault.
        let mut pass = StreamPass::new(at(E, 9), 10, 1_000);
        let steps = run(
            &mut pass,
            &[(shape(F, 1, true), 1), (shape(F + 1, 1, true), 1)],
        );
        assert!(
            matches!(
                steps.as_slice(),
                [
                    Step::Ingest,
                    Step::Pull,
                    Step::Fault(FaultKind::EpochFlapping, _)
                ]
            ),
            "{steps:?}"
        );
        assert_eq!(pass.cursor(), at(F, 1));
        // An empty batch of a new epoch saying `more`, again and again:
        // nothing is followed.
        let mut pass = StreamPass::new(at(E, 9), 10, 1_000);
        assert_eq!(pass.pulled(shape(F, 0, true)), Step::Done);
    }
}
