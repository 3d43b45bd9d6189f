//! When to retry a store that cannot write, and what to tell the user about
//! it (pure: no I/O, time is an argument).
//!
//! An outage runs from the first failed write to the next one that works.
//! It is told once when it begins, once when held records start giving way
//! to gap markers, and once when it ends: never every second. While it
//! lasts, writes are retried after [`FIRST_RETRY_MS`], doubling up to
//! [`MAX_RETRY_MS`]; while writes work, every step writes.

use protocol::UnixMillis;

use crate::tracker::Now;

/// First retry after a failed write.
pub const FIRST_RETRY_MS: u64 = 1_000;
/// Longest pause between retries: how late a recovery may be noticed.
pub const MAX_RETRY_MS: u64 = 15_000;

/// What the store holds in memory because it has not written it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeldCounts {
    /// Records (and gap markers) waiting to be written.
    pub records: u64,
    /// Records that gave way to gap markers, over the store's life.
    pub dropped: u64,
}

/// Something the user should be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The first failed write of an outage, and why.
    Began { problem: String, held: HeldCounts },
    /// Held records began to give way to gap markers.
    Overflowing { dropped: u64 },
    /// Writes work again: what was held is written.
    Ended {
        lasted_ms: u64,
        written_records: u64,
        dropped: u64,
    },
}

/// The outage going on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// The last failure, as the store said it.
    pub problem: String,
    pub since_wall_ms: UnixMillis,
    since_steady_ms: u64,
    dropped_before: u64,
    overflow_told: bool,
}

impl Episode {
    /// Records dropped since the outage began.
    pub fn dropped(&self, held: HeldCounts) -> u64 {
        held.dropped.saturating_sub(self.dropped_before)
    }
}

/// Retry schedule and reporting of store write failures.
#[derive(Debug, Default)]
pub struct Outage {
    episode: Option<Episode>,
    retry_ms: u64,
    next_attempt_ms: u64,
}

impl Outage {
    /// Whether to try writing at `now`.
    pub fn due(&self, now: Now) -> bool {
        self.episode.is_none() || now.steady_ms >= self.next_attempt_ms
    }

    /// The outage going on, if any.
    pub fn episode(&self) -> Option<&Episode> {
        self.episode.as_ref()
    }

    /// A write failed at `now` because of `problem`.
    pub fn failed(&mut self, now: Now, problem: String, held: HeldCounts) -> Option<Notice> {
        self.retry_ms = match self.episode {
            None => FIRST_RETRY_MS,
            Some(_) => (self.retry_ms * 2).min(MAX_RETRY_MS),
        };
        self.next_attempt_ms = now.steady_ms + self.retry_ms;
        match &mut self.episode {
            Some(episode) => {
                episode.problem = problem;
                self.held(held)
            }
            None => {
                self.episode = Some(Episode {
                    problem: problem.clone(),
                    since_wall_ms: now.wall_ms,
                    since_steady_ms: now.steady_ms,
                    dropped_before: held.dropped,
                    overflow_told: false,
                });
                Some(Notice::Began { problem, held })
            }
        }
    }

    /// What the store holds now; tells once when records begin to drop.
    pub fn held(&mut self, held: HeldCounts) -> Option<Notice> {
        let episode = self.episode.as_mut()?;
        let dropped = episode.dropped(held);
        if episode.overflow_told || dropped == 0 {
            return None;
        }
        episode.overflow_told = true;
        Some(Notice::Overflowing { dropped })
    }

    /// A write worked at `now`; `held` is what it had to write.
    pub fn succeeded(&mut self, now: Now, held: HeldCounts) -> Option<Notice> {
        let episode = self.episode.take()?;
        self.retry_ms = 0;
        Some(Notice::Ended {
            lasted_ms: now.steady_ms.saturating_sub(episode.since_steady_ms),
            written_records: held.records,
            dropped: episode.dropped(held),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(steady_ms: u64) -> Now {
        Now {
            wall_ms: 1_772_442_000_000 + steady_ms as i64,
            steady_ms,
        }
    }

    fn held(records: u64, dropped: u64) -> HeldCounts {
        HeldCounts { records, dropped }
    }

    #[test]
    fn writes_work_every_step_until_one_fails() {
        let outage = Outage::default();
        assert!(outage.due(at(0)));
        assert!(outage.due(at(1)));
        assert!(outage.episode().is_none());
    }

    #[test]
    fn retries_back_off_by_doubling_up_to_the_cap() {
        let mut outage = Outage::default();
        let mut now_ms = 10_000;
        let mut pauses_ms = Vec::new();
        for _ in 0..7 {
            outage.failed(at(now_ms), "full".into(), held(1, 0));
            let mut pause_ms = 0;
            while !outage.due(at(now_ms + pause_ms)) {
                pause_ms += 500;
            }
            pauses_ms.push(pause_ms);
            now_ms += pause_ms;
        }
        assert_eq!(
            pauses_ms,
            vec![1_000, 2_000, 4_000, 8_000, 15_000, 15_000, 15_000]
        );
        outage.succeeded(at(now_ms), held(1, 0));
        assert!(outage.due(at(now_ms + 1)));
        outage.failed(at(now_ms + 1), "full".into(), held(1, 0));
        assert!(!outage.due(at(now_ms + 1 + FIRST_RETRY_MS - 1)));
        assert!(
            outage.due(at(now_ms + 1 + FIRST_RETRY_MS)),
            "a new outage starts over"
        );
    }

    #[test]
    fn an_outage_is_told_once_when_it_begins_drops_and_ends() {
        let mut outage = Outage::default();
        assert_eq!(
            outage.failed(at(0), "disk full".into(), held(3, 5)),
            Some(Notice::Began {
                problem: "disk full".into(),
                held: held(3, 5)
            })
        );
        assert_eq!(
            outage.failed(at(1_000), "disk full".into(), held(4, 5)),
            None
        );
        assert_eq!(
            outage.held(held(6, 5)),
            None,
            "nothing dropped in this outage"
        );
        assert_eq!(
            outage.held(held(6, 7)),
            Some(Notice::Overflowing { dropped: 2 })
        );
        assert_eq!(outage.held(held(6, 9)), None);
        assert_eq!(
            outage.failed(at(3_000), "still full".into(), held(6, 9)),
            None
        );
        let episode = outage.episode().unwrap();
        assert_eq!(episode.problem, "still full");
        assert_eq!(episode.since_wall_ms, at(0).wall_ms);
        assert_eq!(
            outage.succeeded(at(7_000), held(6, 9)),
            Some(Notice::Ended {
                lasted_ms: 7_000,
                written_records: 6,
                dropped: 4
            })
        );
        assert_eq!(outage.succeeded(at(8_000), held(0, 9)), None);
        assert_eq!(outage.held(held(0, 12)), None, "no outage, nothing to tell");
    }
}
