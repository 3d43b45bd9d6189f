//! Streaming JSON Lines export of raw records and rollups, one block or
//! one rollup value in memory at a time.

use std::io::Write;

use serde::Serialize;

use crate::model::{ActivitySpan, AgentId, HealthPoint, SessionEvent, UsageSpan};

use super::block::{BlockRecord, NotedGap};
use super::queries::{clip, within};
use super::{ConsoleStore, RecordKind, StoreError};

/// What an export can contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportKind {
    /// Raw records of one kind overlapping the range (not clipped); gap
    /// markers have no time of their own and are all exported.
    Raw(RecordKind),
    /// Per (agent, day, app) active totals of the days the range touches.
    AppDayTotals,
    /// Per (agent, day) presence totals of the days the range touches.
    PresenceDayTotals,
}

impl ExportKind {
    /// Everything, in export order.
    pub const ALL: [ExportKind; 7] = [
        ExportKind::Raw(RecordKind::Usage),
        ExportKind::Raw(RecordKind::Activity),
        ExportKind::Raw(RecordKind::Session),
        ExportKind::Raw(RecordKind::Health),
        ExportKind::Raw(RecordKind::Gap),
        ExportKind::AppDayTotals,
        ExportKind::PresenceDayTotals,
    ];

    /// The `kind` field of exported lines, also the CLI's name for it.
    pub fn name(self) -> &'static str {
        match self {
            ExportKind::Raw(kind) => kind.name(),
            ExportKind::AppDayTotals => "app_day_total",
            ExportKind::PresenceDayTotals => "presence_day_total",
        }
    }

    /// The kind called `name` (see [`ExportKind::name`]).
    pub fn from_name(name: &str) -> Option<ExportKind> {
        ExportKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// One exported line: `{"kind": …, "agent": …, "record": {…}}`.
#[derive(Serialize)]
struct Line<'a, T> {
    kind: &'static str,
    agent: AgentId,
    record: &'a T,
}

/// Counts lines and maps write errors.
struct LineWriter<'a, W: Write> {
    store: &'a ConsoleStore,
    out: std::io::BufWriter<W>,
    lines: u64,
}

impl<W: Write> LineWriter<'_, W> {
    fn write<T: Serialize>(
        &mut self,
        kind: ExportKind,
        agent: AgentId,
        record: &T,
    ) -> Result<(), StoreError> {
        let line = Line {
            kind: kind.name(),
            agent,
            record,
        };
        serde_json::to_writer(&mut self.out, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|source| self.export_error(source))?;
        self.lines += 1;
        Ok(())
    }

    fn export_error(&self, source: std::io::Error) -> StoreError {
        StoreError::Export {
            path: self.store.path.clone(),
            source,
        }
    }
}

impl ConsoleStore {
    /// Writes every record of `kinds` of every agent touching
    /// `[from_ms, to_ms)` to `writer` as JSON Lines, streaming: kinds in
    /// the order given, then agents by id, then blocks in start order
    /// (records sorted within each block). Returns the number of lines
    /// written.
    pub fn export_jsonl<W: Write>(
        &self,
        writer: W,
        kinds: &[ExportKind],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut out = LineWriter {
            store: self,
            out: std::io::BufWriter::new(writer),
            lines: 0,
        };
        for kind in kinds {
            match kind {
                ExportKind::Raw(RecordKind::Usage) => {
                    self.export_raw::<UsageSpan, W>(&mut out, from_ms, to_ms, |span| {
                        clip(span.start_ms, span.end_ms, from_ms, to_ms).is_some()
                    })?
                }
                ExportKind::Raw(RecordKind::Activity) => {
                    self.export_raw::<ActivitySpan, W>(&mut out, from_ms, to_ms, |span| {
                        clip(span.start_ms, span.end_ms, from_ms, to_ms).is_some()
                    })?
                }
                ExportKind::Raw(RecordKind::Session) => {
                    self.export_raw::<SessionEvent, W>(&mut out, from_ms, to_ms, |event| {
                        within(event.at_ms, from_ms, to_ms)
                    })?
                }
                ExportKind::Raw(RecordKind::Health) => {
                    self.export_raw::<HealthPoint, W>(&mut out, from_ms, to_ms, |point| {
                        within(point.at_ms, from_ms, to_ms)
                    })?
                }
                ExportKind::Raw(RecordKind::Gap) => {
                    self.for_each_agent(RecordKind::Gap.tag(), None, |agent| {
                        self.visit_range::<NotedGap>(agent, i64::MIN, i64::MAX, |block| {
                            for noted in &block {
                                out.write(*kind, agent, &noted.gap)?;
                            }
                            Ok(())
                        })
                    })?
                }
                ExportKind::AppDayTotals | ExportKind::PresenceDayTotals => {
                    if from_ms >= to_ms {
                        continue;
                    }
                    let clock = self.day_clock();
                    let from_day = clock.day_of(from_ms);
                    let to_day = clock.day_of(to_ms - 1);
                    if *kind == ExportKind::AppDayTotals {
                        self.visit_app_days(None, from_day, to_day, |total| {
                            out.write(*kind, total.agent, &total)
                        })?;
                    } else {
                        self.visit_presence_days(None, from_day, to_day, |total| {
                            out.write(*kind, total.agent, &total)
                        })?;
                    }
                }
            }
        }
        out.out.flush().map_err(|source| out.export_error(source))?;
        Ok(out.lines)
    }

    fn export_raw<R: BlockRecord + Serialize, W: Write>(
        &self,
        out: &mut LineWriter<'_, W>,
        from_ms: i64,
        to_ms: i64,
        keep: impl Fn(&R) -> bool,
    ) -> Result<(), StoreError> {
        self.for_each_agent(R::KIND.tag(), None, |agent| {
            self.visit_range::<R>(agent, from_ms, to_ms, |block| {
                for record in block.iter().filter(|record| keep(record)) {
                    out.write(ExportKind::Raw(R::KIND), agent, record)?;
                }
                Ok(())
            })
        })
    }
}
