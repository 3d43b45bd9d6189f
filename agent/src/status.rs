//! The employee's transparency view: what the agent collects under the
//! current policy, what it holds, and which console read what and when.
//!
//! The running agent writes a snapshot file atomically after each flush, so
//! `status` works while the agent holds its store open. The file is
//! rewritten in place (see [`crate::store::spare`]), so it keeps telling the
//! truth when the disk is full, which is when it matters most.

use std::path::{Path, PathBuf};

use protocol::{Policy, UnixMillis};
use serde::{Deserialize, Serialize};

use crate::live::LiveWatcher;
use crate::store::{spare, AccessEntry};

/// File name of the snapshot inside the data directory.
pub const STATUS_FILE: &str = "status.json";

/// Per-stream counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamStatus {
    pub stream: String,
    /// Last durable sequence number.
    pub durable_seq: u64,
    /// Highest sequence a console has acknowledged.
    pub acked_seq: u64,
    /// Records still held locally.
    pub held_records: u64,
    pub held_bytes: u64,
}

/// The store cannot write: what the agent says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreProblem {
    /// What failed and what to do, as the store says it.
    pub message: String,
    pub since_ms: UnixMillis,
    /// Records held in memory, waiting to be written.
    pub held_records: u64,
    /// Most records held per stream; past it the oldest give way to gap
    /// markers.
    pub held_limit_per_stream: u64,
    /// Records that gave way to gap markers since the problem began.
    pub dropped_records: u64,
}

impl StoreProblem {
    /// The problem in one line, for the log and for `status`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{}; recording continues in memory ({} records held, up to {} per stream)",
            self.message, self.held_records, self.held_limit_per_stream
        );
        if self.dropped_records > 0 {
            line.push_str(&format!(
                "; the oldest {} gave way to gap markers",
                self.dropped_records
            ));
        }
        line
    }
}

/// Everything `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    pub written_at_ms: UnixMillis,
    pub pid: u32,
    pub agent_id: String,
    pub hostname: String,
    /// Simulated demo data, not a real workstation.
    pub demo: bool,
    pub listen: String,
    /// Still recording simulated demo history (before live recording).
    pub backfilling: bool,
    pub epoch: u64,
    pub policy: Policy,
    pub streams: Vec<StreamStatus>,
    pub last_sensor_error: Option<String>,
    /// Newest first.
    pub recent_access: Vec<AccessEntry>,
    /// Consoles watching the screen live right now.
    #[serde(default)]
    pub live_view: Vec<LiveWatcher>,
    /// Why the store cannot write right now, if it cannot.
    #[serde(default)]
    pub store_problem: Option<StoreProblem>,
}

/// Why the snapshot could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no status at {0}: the agent has not run with this data directory yet; start it with `smarttracker-agent run --data DIR`")]
    Missing(PathBuf),
    #[error("cannot read status {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "status {path} is corrupt ({source}); it is rewritten every second while the agent runs"
    )]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write status {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StatusSnapshot {
    /// Writes the snapshot atomically, over a spare file it already holds
    /// (so a full disk does not stop it once it was written twice).
    pub fn write(&self, data_dir: &Path) -> Result<(), StatusError> {
        let path = data_dir.join(STATUS_FILE);
        let write_error = |source| StatusError::Write {
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|error| write_error(error.into()))?;
        spare::replace(&path, &json, false).map_err(write_error)
    }

    pub fn read(data_dir: &Path) -> Result<StatusSnapshot, StatusError> {
        let path = data_dir.join(STATUS_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(StatusError::Missing(path))
            }
            Err(source) => return Err(StatusError::Read { path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|source| StatusError::Corrupt { path, source })
    }

    /// What is collected under the current policy, in plain words.
    pub fn collected(&self) -> Vec<String> {
        let policy = &self.policy;
        let mut lines = vec![
            "name of the application in front, and for how long".to_owned(),
            format!(
                "active / idle / locked time (idle after {} s without input); login and logout",
                policy.idle_threshold_secs
            ),
            format!(
                "system health (CPU, memory, disks, uptime) every {} s",
                policy.health_interval_secs
            ),
        ];
        lines.push(if policy.collect_titles {
            format!(
                "window titles, after {} redaction rule(s)",
                policy.redaction_rules.len()
            )
        } else {
            "window titles: not collected".to_owned()
        });
        lines.push(if policy.screenshots.enabled {
            format!(
                "periodic screenshots every {} min{}",
                policy.screenshots.interval_secs / 60,
                if policy.screenshots.blur {
                    ", blurred"
                } else {
                    ""
                }
            )
        } else {
            "periodic screenshots: off".to_owned()
        });
        lines.push(
            "live view and on-demand screenshots: only for an admin console, each one logged below; \
             while a live view runs you get a desktop notice and it shows at the top of this page"
                .to_owned(),
        );
        lines.push("never: keystroke content".to_owned());
        lines
    }

    /// The human-readable report.
    /// The live-view notice: who watches the screen and since when. A
    /// snapshot the agent stopped refreshing shows nobody watching, since
    /// a stopped agent serves no live view.
    pub fn live_view_lines(&self, now_ms: UnixMillis) -> Vec<String> {
        if now_ms - self.written_at_ms > 10_000 {
            return Vec::new();
        }
        self.live_view
            .iter()
            .map(|watcher| {
                let name = watcher.display_name();
                format!(
                    "LIVE VIEW — AFFICHAGE EN DIRECT: console {name} ({}) sees this screen since {}, one frame every {:.1} s; it ends when that console stops renewing it",
                    watcher.console_id,
                    format_utc(watcher.since_ms),
                    f64::from(watcher.interval_ms) / 1000.0
                )
            })
            .collect()
    }

    pub fn render(&self, now_ms: UnixMillis) -> String {
        let mut out = String::new();
        let age_secs = (now_ms - self.written_at_ms) / 1000;
        let state = if age_secs <= 10 {
            "running".to_owned()
        } else {
            format!("not running (last seen {age_secs} s ago)")
        };
        out.push_str(&format!(
            "SmartTracker agent {} on {}\n",
            self.agent_id, self.hostname
        ));
        if self.demo {
            out.push_str("DEMO: this agent records a SIMULATED workstation, not real activity\n");
        }
        out.push_str(&format!(
            "state: {state}; listening on {}; policy revision {}\n",
            self.listen, self.policy.revision
        ));
        if self.backfilling {
            out.push_str("recording simulated demo history…\n");
        }
        for line in self.live_view_lines(now_ms) {
            out.push_str(&line);
            out.push('\n');
        }
        if let Some(sensor_error) = &self.last_sensor_error {
            out.push_str(&format!("sensor problem: {sensor_error}\n"));
        }
        if let Some(problem) = &self.store_problem {
            out.push_str(&format!(
                "STORE PROBLEM since {}: {}\n",
                format_utc(problem.since_ms),
                problem.line()
            ));
        }
        out.push_str("\nCollected under the current policy:\n");
        for line in self.collected() {
            out.push_str(&format!("  - {line}\n"));
        }
        out.push_str(&format!(
            "\nKept here until a console takes it (store epoch {:016x}):\n",
            self.epoch
        ));
        for stream in &self.streams {
            out.push_str(&format!(
                "  {:<9} {:>8} records held, {:>9} bytes; recorded up to #{}, taken up to #{}\n",
                stream.stream,
                stream.held_records,
                stream.held_bytes,
                stream.durable_seq,
                stream.acked_seq
            ));
        }
        out.push_str("\nWho read what (newest first):\n");
        if self.recent_access.is_empty() {
            out.push_str("  no console has connected yet\n");
        }
        for entry in &self.recent_access {
            out.push_str(&format!(
                "  {} {} ({}) {}{} {}\n",
                format_utc(entry.at_ms),
                entry.console_id,
                entry.role,
                entry.request,
                if entry.allowed { "" } else { " REFUSED" },
                entry.detail
            ));
        }
        out
    }
}

/// `2026-03-02 14:05:09 UTC`, without a time-zone database.
pub fn format_utc(at_ms: UnixMillis) -> String {
    match time::OffsetDateTime::from_unix_timestamp(at_ms.div_euclid(1000)) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ),
        Err(_) => format!("{at_ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(store_problem: Option<StoreProblem>) -> StatusSnapshot {
        StatusSnapshot {
            written_at_ms: 1_772_442_000_000,
            pid: 1,
            agent_id: "a".into(),
            hostname: "pc".into(),
            demo: false,
            listen: "127.0.0.1:47100".into(),
            backfilling: false,
            epoch: 7,
            policy: Policy::default(),
            streams: Vec::new(),
            last_sensor_error: None,
            recent_access: Vec::new(),
            live_view: Vec::new(),
            store_problem,
        }
    }

    #[test]
    fn a_store_problem_is_shown_with_what_is_held_and_survives_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let problem = StoreProblem {
            message: "cannot write to /d/store: no space left on device; free space on that disk"
                .into(),
            since_ms: 1_772_441_000_000,
            held_records: 42,
            held_limit_per_stream: 10_000,
            dropped_records: 3,
        };
        snapshot(None).write(dir.path()).unwrap();
        snapshot(Some(problem.clone())).write(dir.path()).unwrap();
        let read = StatusSnapshot::read(dir.path()).unwrap();
        assert_eq!(read.store_problem.as_ref(), Some(&problem));
        let shown = read.render(read.written_at_ms);
        assert!(shown.contains(
            "STORE PROBLEM since 2026-03-02 08:43:20 UTC: cannot write to /d/store: no space left \
             on device; free space on that disk; recording continues in memory (42 records held, \
             up to 10000 per stream); the oldest 3 gave way to gap markers"
        ), "{shown}");
        // The next write over the spare clears it.
        snapshot(None).write(dir.path()).unwrap();
        assert_eq!(
            StatusSnapshot::read(dir.path()).unwrap().store_problem,
            None
        );
    }
}
