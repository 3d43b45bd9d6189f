//! Tabular exports for people and scripts: usage, sessions, attendance,
//! health and the audit log, as CSV or JSON Lines, one flat row a record,
//! the same columns in both formats. Times a person reads are ISO 8601 in
//! the site's zone with their offset (`2026-03-29T08:00:00+02:00`), next
//! to exact UTC milliseconds (`*_ms`) for scripts.

use std::io::Write;

use protocol::UnixMillis;
use serde_json::{json, Value};

use crate::analytics::{format_duration_ms, Range};
use crate::categories::{Categoriser, DecidedBy};
use crate::model::{AgentId, DayNumber};
use crate::people::Who;
use crate::settings::ConsoleSettings;
use crate::store::{AgentRecord, ConsoleStore, StoreError};
use crate::views::AttendanceLine;

/// What can be exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Table {
    Usage,
    Sessions,
    Attendance,
    Health,
    Audit,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format {
    Csv,
    /// CSV as spreadsheets set to French, Spanish or Russian read it:
    /// `;` between cells, a decimal comma (`12,5`).
    CsvDecimalComma,
    Jsonl,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the audit log does not verify: {0}; export refused, the log has been tampered with or damaged")]
    AuditBroken(String),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// Columns of each table, in output order.
pub fn columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Usage => &[
            "agent",
            "agent_name",
            "start",
            "end",
            "start_ms",
            "end_ms",
            "duration_s",
            "app",
            "category",
            "decided_by",
            "title",
        ],
        Table::Sessions => &[
            "agent",
            "agent_name",
            "user",
            "kind",
            "start",
            "end",
            "start_ms",
            "end_ms",
            "duration_s",
        ],
        Table::Attendance => &[
            "person",
            "person_id",
            "workstations",
            "users",
            "day",
            "arrival",
            "departure",
            "arrival_ms",
            "departure_ms",
            "active",
            "idle",
            "locked",
            "net",
            "effective",
            "active_ms",
            "idle_ms",
            "locked_ms",
            "net_ms",
            "effective_ms",
            "sessions",
        ],
        Table::Health => &[
            "agent",
            "agent_name",
            "at",
            "at_ms",
            "cpu_pct",
            "mem_pct",
            "disk_pct",
            "uptime_secs",
            "score",
            "level",
        ],
        Table::Audit => &[
            "index",
            "at",
            "at_ms",
            "actor",
            "action",
            "target",
            "detail",
            "prev_hash",
            "hash",
        ],
    }
}

/// `2026-03-02` for a day number.
pub fn day_text(day: DayNumber) -> String {
    time::Date::from_julian_day(day + 2_440_588)
        .map(|date| date.to_string())
        .unwrap_or_else(|_| day.to_string())
}

/// Writes rows as CSV (header first) or JSON Lines.
struct RowWriter<W: Write> {
    format: Format,
    /// Decimal numbers with a comma (CSV for non-English spreadsheets).
    decimal_comma: bool,
    columns: &'static [&'static str],
    csv: Option<csv::Writer<W>>,
    jsonl: Option<std::io::BufWriter<W>>,
    rows: u64,
}

impl<W: Write> RowWriter<W> {
    fn new(out: W, format: Format, table: Table) -> Result<Self, ExportError> {
        let columns = columns(table);
        let mut writer = RowWriter {
            format,
            decimal_comma: format == Format::CsvDecimalComma,
            columns,
            csv: None,
            jsonl: None,
            rows: 0,
        };
        match format {
            Format::Csv | Format::CsvDecimalComma => {
                let delimiter = if writer.decimal_comma { b';' } else { b',' };
                let mut csv = csv::WriterBuilder::new()
                    .delimiter(delimiter)
                    .from_writer(out);
                csv.write_record(columns)?;
                writer.csv = Some(csv);
            }
            Format::Jsonl => writer.jsonl = Some(std::io::BufWriter::new(out)),
        }
        Ok(writer)
    }

    /// `row` must hold a value for every column (missing ones are empty).
    fn write(&mut self, row: &serde_json::Map<String, Value>) -> Result<(), ExportError> {
        self.rows += 1;
        match (&mut self.csv, &mut self.jsonl) {
            (Some(csv), _) => {
                let cells: Vec<String> = self
                    .columns
                    .iter()
                    .map(|column| match row.get(*column) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(text)) => text.clone(),
                        Some(Value::Number(number)) if self.decimal_comma && number.is_f64() => {
                            number.to_string().replace('.', ",")
                        }
                        Some(other) => other.to_string(),
                    })
                    .collect();
                csv.write_record(&cells)?;
            }
            (None, Some(out)) => {
                let ordered: serde_json::Map<String, Value> = self
                    .columns
                    .iter()
                    .map(|column| {
                        (
                            (*column).to_owned(),
                            row.get(*column).cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect();
                serde_json::to_writer(&mut *out, &ordered).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
            (None, None) => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<u64, ExportError> {
        if let Some(mut csv) = self.csv {
            csv.flush()?;
        }
        if let Some(mut out) = self.jsonl {
            out.flush()?;
        }
        let _ = self.format;
        Ok(self.rows)
    }
}

/// `model` or `rule 7`, as the export's `decided_by` column shows it.
fn decided_by_text(decided_by: &DecidedBy) -> String {
    match decided_by {
        DecidedBy::Model => "model".to_owned(),
        DecidedBy::Rule { rule_id } => format!("rule {rule_id}"),
    }
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

fn agent_name(agents: &[AgentRecord], agent: AgentId) -> String {
    agents
        .iter()
        .find(|record| record.agent == agent)
        .map(|record| record.name.clone())
        .unwrap_or_default()
}

/// One attendance row: the same for `export attendance` and the
/// Attendance screen's export. Times are local to the line's clock.
fn attendance_row(line: &AttendanceLine) -> serde_json::Map<String, Value> {
    let (clock, day) = (&line.clock, &line.day);
    let local = |at_ms: Option<UnixMillis>| at_ms.map(|at_ms| clock.iso_local(at_ms));
    let person_id = match &day.who {
        Who::Person(id) => Some(id.0),
        Who::Account { .. } => None,
    };
    object(json!({
        "person": line.name,
        "person_id": person_id,
        "workstations": line.workstations.join(" "),
        "users": day.users.join(" "),
        "day": day_text(day.day),
        "arrival": local(day.arrival_ms),
        "departure": local(day.departure_ms),
        "arrival_ms": day.arrival_ms,
        "departure_ms": day.departure_ms,
        "active": format_duration_ms(day.active_ms),
        "idle": format_duration_ms(day.idle_ms),
        "locked": format_duration_ms(day.locked_ms),
        "net": format_duration_ms(day.net_ms),
        "effective": format_duration_ms(day.effective_ms),
        "active_ms": day.active_ms,
        "idle_ms": day.idle_ms,
        "locked_ms": day.locked_ms,
        "net_ms": day.net_ms,
        "effective_ms": day.effective_ms,
        "sessions": day.sessions.len(),
    }))
}

/// Writes attendance lines (computed by
/// [`crate::views::attendance_lines`]) with the columns of `export
/// attendance`; returns the row count.
pub fn write_attendance<'a, W: Write>(
    lines: impl IntoIterator<Item = &'a AttendanceLine>,
    format: Format,
    out: W,
) -> Result<u64, ExportError> {
    let mut rows = RowWriter::new(out, format, Table::Attendance)?;
    for line in lines {
        rows.write(&attendance_row(line))?;
    }
    rows.finish()
}

/// Writes one table for every agent over `range`; returns the row count.
pub fn export<W: Write>(
    store: &ConsoleStore,
    categoriser: &Categoriser,
    settings: &ConsoleSettings,
    table: Table,
    format: Format,
    range: Range,
    out: W,
) -> Result<u64, ExportError> {
    let clock = &store.day_clock();
    let agents = store.agents()?;
    let mut rows = RowWriter::new(out, format, table)?;
    if table == Table::Audit {
        store
            .verify_audit()
            .map_err(|broken| ExportError::AuditBroken(broken.to_string()))?;
        let mut from_index = 0;
        loop {
            let page = store.audit_log(from_index, 1000)?;
            let Some(last) = page.last() else { break };
            from_index = last.index + 1;
            for record in page
                .iter()
                .filter(|record| range.contains(record.entry.at_ms))
            {
                rows.write(&object(json!({
                    "index": record.index,
                    "at": clock.iso_local(record.entry.at_ms),
                    "at_ms": record.entry.at_ms,
                    "actor": record.entry.actor,
                    "action": record.entry.action,
                    "target": record.entry.target,
                    "detail": record.entry.detail,
                    "prev_hash": hex::encode(record.prev_hash),
                    "hash": hex::encode(record.hash),
                })))?;
            }
        }
        return rows.finish();
    }
    if table == Table::Attendance {
        let book = crate::views::people_book(store)?;
        for line in crate::views::attendance_lines(store, &book, settings, None, |_| range)? {
            rows.write(&attendance_row(&line))?;
        }
        return rows.finish();
    }
    for agent in &agents {
        let id = agent.agent;
        let name = agent_name(&agents, id);
        match table {
            Table::Usage => {
                for span in store.usage_spans(id, range.from_ms, range.to_ms)? {
                    let category = categoriser.categorise(&span.app);
                    rows.write(&object(json!({
                        "agent": id,
                        "agent_name": name,
                        "start": clock.iso_local(span.start_ms),
                        "end": clock.iso_local(span.end_ms),
                        "start_ms": span.start_ms,
                        "end_ms": span.end_ms,
                        "duration_s": span.end_ms.saturating_sub(span.start_ms) / 1000,
                        "app": span.app,
                        "category": category.category,
                        "decided_by": decided_by_text(&category.decided_by),
                        "title": span.title,
                    })))?;
                }
            }
            Table::Sessions => {
                for span in store.activity_spans(id, range.from_ms, range.to_ms)? {
                    rows.write(&object(json!({
                        "agent": id,
                        "agent_name": name,
                        "user": span.user,
                        "kind": format!("{:?}", span.presence).to_lowercase(),
                        "start": clock.iso_local(span.start_ms),
                        "end": clock.iso_local(span.end_ms),
                        "start_ms": span.start_ms,
                        "end_ms": span.end_ms,
                        "duration_s": span.end_ms.saturating_sub(span.start_ms) / 1000,
                    })))?;
                }
                for event in store.session_events(id, range.from_ms, range.to_ms)? {
                    rows.write(&object(json!({
                        "agent": id,
                        "agent_name": name,
                        "user": event.user,
                        "kind": format!("{:?}", event.kind),
                        "start": clock.iso_local(event.at_ms),
                        "start_ms": event.at_ms,
                    })))?;
                }
            }
            // Per person, written above.
            Table::Attendance => {}
            Table::Health => {
                for point in store.health_points(id, range.from_ms, range.to_ms)? {
                    rows.write(&object(json!({
                        "agent": id,
                        "agent_name": name,
                        "at": clock.iso_local(point.at_ms),
                        "at_ms": point.at_ms,
                        "cpu_pct": point.cpu_pct,
                        "mem_pct": point.mem_pct,
                        "disk_pct": point.disk_pct,
                        "uptime_secs": point.uptime_secs,
                        "score": point.score,
                        "level": format!("{:?}", point.level).to_lowercase(),
                    })))?;
                }
            }
            Table::Audit => {}
        }
    }
    rows.finish()
}
