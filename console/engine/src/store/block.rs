//! Block value codec (pure: no I/O, no clock): up to [`RECORDS_PER_BLOCK`]
//! records of one agent and kind in one sled value.
//!
//! A value is `[format: u8 = 1][count: u16 BE][max_end_ms: i64 BE]` and a
//! bincode 2 body (serde, standard configuration, capped at
//! [`MAX_BLOCK_BODY_BYTES`] both ways). The body stores times as
//! differences from the block's start (the key's `start_ms`), so they are
//! short varints, and repeated names (apps, users) once per block in a
//! name table that rows point into. The agent id lives in the key only.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::{
    ActivitySpan, AgentId, Gap, HealthLevel, HealthPoint, Presence, SessionEvent, SessionKind,
    UsageSpan,
};

use super::RecordKind;

/// Most records one block holds.
pub(crate) const RECORDS_PER_BLOCK: usize = 256;
/// The only block format this build reads and writes.
const BLOCK_FORMAT_V1: u8 = 1;
/// Format byte, record count (u16), newest end (i64).
const BLOCK_HEADER_BYTES: usize = 1 + 2 + 8;
/// Largest bincode body of one block, on encode and on decode.
pub(crate) const MAX_BLOCK_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why a stored block value is not a valid block.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("the key is not a {BLOCK_KEY_DESCRIPTION}")]
    BadKey,
    #[error("value is {len_bytes} bytes, shorter than the {BLOCK_HEADER_BYTES}-byte header")]
    Truncated { len_bytes: usize },
    #[error("unknown block format version {version}")]
    UnknownVersion { version: u8 },
    #[error("record count {count} is outside 1..={RECORDS_PER_BLOCK}")]
    BadCount { count: u16 },
    #[error("body of {len_bytes} bytes exceeds the {MAX_BLOCK_BODY_BYTES}-byte cap")]
    TooLarge { len_bytes: usize },
    #[error("body does not decode: {0}")]
    Malformed(#[from] bincode::error::DecodeError),
    #[error("body has {trailing_bytes} trailing bytes")]
    TrailingBytes { trailing_bytes: usize },
    #[error("header says {header_count} records, body holds {body_count}")]
    CountMismatch {
        header_count: u16,
        body_count: usize,
    },
    #[error("record {row} names entry {index} of a {names}-entry name table")]
    BadNameIndex {
        row: usize,
        index: u32,
        names: usize,
    },
}

const BLOCK_KEY_DESCRIPTION: &str = "33-byte block key [kind][agent][start_ms][first_index]";

fn body_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_BLOCK_BODY_BYTES>()
}

/// The fixed-size start of a block value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    pub(crate) count: u16,
    /// Latest end (or instant) of any record in the block.
    pub(crate) max_end_ms: i64,
}

/// A record type kept in blocks.
pub(crate) trait BlockRecord: Sized {
    const KIND: RecordKind;

    /// Start and end of the record (equal for point events).
    fn extent_ms(&self) -> (i64, i64);

    /// The body of a block of `records`, sorted by start, all starting at
    /// or after `base_ms`.
    fn encode_body(records: &[Self], base_ms: i64) -> Result<Vec<u8>, bincode::error::EncodeError>;

    /// Decodes a body written by [`BlockRecord::encode_body`].
    fn decode_body(body: &[u8], agent: AgentId, base_ms: i64) -> Result<Vec<Self>, BlockError>;
}

/// Checks the cheap header only.
pub(crate) fn decode_header(value: &[u8]) -> Result<BlockHeader, BlockError> {
    let Some(header) = value.get(..BLOCK_HEADER_BYTES) else {
        return Err(BlockError::Truncated {
            len_bytes: value.len(),
        });
    };
    if header[0] != BLOCK_FORMAT_V1 {
        return Err(BlockError::UnknownVersion { version: header[0] });
    }
    let count = u16::from_be_bytes([header[1], header[2]]);
    if count == 0 || usize::from(count) > RECORDS_PER_BLOCK {
        return Err(BlockError::BadCount { count });
    }
    let mut end_bytes = [0_u8; 8];
    end_bytes.copy_from_slice(&header[3..BLOCK_HEADER_BYTES]);
    Ok(BlockHeader {
        count,
        max_end_ms: i64::from_be_bytes(end_bytes),
    })
}

/// Encodes `records` (1 to [`RECORDS_PER_BLOCK`], sorted by start) as one
/// block value; returns the block's start (the earliest start) and value.
pub(crate) fn encode_block<R: BlockRecord>(
    records: &[R],
) -> Result<(i64, Vec<u8>), bincode::error::EncodeError> {
    let count = u16::try_from(records.len())
        .ok()
        .filter(|count| (1..=RECORDS_PER_BLOCK).contains(&usize::from(*count)))
        .ok_or_else(|| {
            bincode::error::EncodeError::OtherString(format!(
                "{} records do not make one block",
                records.len()
            ))
        })?;
    let base_ms = records
        .iter()
        .map(|record| record.extent_ms().0)
        .min()
        .unwrap_or(0);
    let max_end_ms = records
        .iter()
        .map(|record| record.extent_ms().1)
        .max()
        .unwrap_or(base_ms);
    let body = R::encode_body(records, base_ms)?;
    let mut value = Vec::with_capacity(BLOCK_HEADER_BYTES + body.len());
    value.push(BLOCK_FORMAT_V1);
    value.extend_from_slice(&count.to_be_bytes());
    value.extend_from_slice(&max_end_ms.to_be_bytes());
    value.extend_from_slice(&body);
    Ok((base_ms, value))
}

/// Decodes a whole block of `agent` whose key names `base_ms`.
pub(crate) fn decode_block<R: BlockRecord>(
    agent: AgentId,
    base_ms: i64,
    value: &[u8],
) -> Result<(BlockHeader, Vec<R>), BlockError> {
    let header = decode_header(value)?;
    let body = &value[BLOCK_HEADER_BYTES..];
    if body.len() > MAX_BLOCK_BODY_BYTES {
        return Err(BlockError::TooLarge {
            len_bytes: body.len(),
        });
    }
    let records = R::decode_body(body, agent, base_ms)?;
    if records.len() != usize::from(header.count) {
        return Err(BlockError::CountMismatch {
            header_count: header.count,
            body_count: records.len(),
        });
    }
    Ok((header, records))
}

fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(body, body_config())
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, BlockError> {
    let (value, read_bytes) = bincode::serde::decode_from_slice(body, body_config())?;
    if read_bytes != body.len() {
        return Err(BlockError::TrailingBytes {
            trailing_bytes: body.len() - read_bytes,
        });
    }
    Ok(value)
}

/// A time relative to a block's start; wrapping, so every `i64` round-trips.
fn delta(at_ms: i64, base_ms: i64) -> i64 {
    at_ms.wrapping_sub(base_ms)
}

fn undelta(delta_ms: i64, base_ms: i64) -> i64 {
    base_ms.wrapping_add(delta_ms)
}

/// A block body with a name table.
#[derive(Serialize, Deserialize)]
struct NamedBody<N, R> {
    names: Vec<N>,
    rows: Vec<R>,
}

/// Builds a name table while encoding.
#[derive(Default)]
struct NameTable<'a> {
    names: Vec<&'a str>,
    index: HashMap<&'a str, u32>,
}

impl<'a> NameTable<'a> {
    fn intern(&mut self, name: &'a str) -> u32 {
        // A block holds at most RECORDS_PER_BLOCK names, far below u32::MAX.
        let next = self.names.len() as u32;
        *self.index.entry(name).or_insert_with(|| {
            self.names.push(name);
            next
        })
    }
}

fn name_of(names: &[String], row: usize, index: u32) -> Result<String, BlockError> {
    names
        .get(index as usize)
        .cloned()
        .ok_or(BlockError::BadNameIndex {
            row,
            index,
            names: names.len(),
        })
}

#[derive(Serialize, Deserialize)]
struct UsageRow<S> {
    start_delta_ms: i64,
    duration_ms: i64,
    app: u32,
    title: Option<S>,
}

impl BlockRecord for UsageSpan {
    const KIND: RecordKind = RecordKind::Usage;

    fn extent_ms(&self) -> (i64, i64) {
        (self.start_ms, self.end_ms)
    }

    fn encode_body(records: &[Self], base_ms: i64) -> Result<Vec<u8>, bincode::error::EncodeError> {
        let mut names = NameTable::default();
        let rows: Vec<UsageRow<&str>> = records
            .iter()
            .map(|span| UsageRow {
                start_delta_ms: delta(span.start_ms, base_ms),
                duration_ms: delta(span.end_ms, span.start_ms),
                app: names.intern(&span.app),
                title: span.title.as_deref(),
            })
            .collect();
        encode(&NamedBody {
            names: names.names,
            rows,
        })
    }

    fn decode_body(body: &[u8], agent: AgentId, base_ms: i64) -> Result<Vec<Self>, BlockError> {
        let body: NamedBody<String, UsageRow<String>> = decode(body)?;
        body.rows
            .into_iter()
            .enumerate()
            .map(|(row, usage)| {
                let start_ms = undelta(usage.start_delta_ms, base_ms);
                Ok(UsageSpan {
                    agent,
                    start_ms,
                    end_ms: undelta(usage.duration_ms, start_ms),
                    app: name_of(&body.names, row, usage.app)?,
                    title: usage.title,
                })
            })
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
struct ActivityRow {
    start_delta_ms: i64,
    duration_ms: i64,
    presence: Presence,
    user: u32,
}

impl BlockRecord for ActivitySpan {
    const KIND: RecordKind = RecordKind::Activity;

    fn extent_ms(&self) -> (i64, i64) {
        (self.start_ms, self.end_ms)
    }

    fn encode_body(records: &[Self], base_ms: i64) -> Result<Vec<u8>, bincode::error::EncodeError> {
        let mut names = NameTable::default();
        let rows: Vec<ActivityRow> = records
            .iter()
            .map(|span| ActivityRow {
                start_delta_ms: delta(span.start_ms, base_ms),
                duration_ms: delta(span.end_ms, span.start_ms),
                presence: span.presence,
                user: names.intern(&span.user),
            })
            .collect();
        encode(&NamedBody {
            names: names.names,
            rows,
        })
    }

    fn decode_body(body: &[u8], agent: AgentId, base_ms: i64) -> Result<Vec<Self>, BlockError> {
        let body: NamedBody<String, ActivityRow> = decode(body)?;
        body.rows
            .into_iter()
            .enumerate()
            .map(|(row, activity)| {
                let start_ms = undelta(activity.start_delta_ms, base_ms);
                Ok(ActivitySpan {
                    agent,
                    start_ms,
                    end_ms: undelta(activity.duration_ms, start_ms),
                    presence: activity.presence,
                    user: name_of(&body.names, row, activity.user)?,
                })
            })
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
struct SessionRow<K> {
    at_delta_ms: i64,
    kind: K,
    user: u32,
}

impl BlockRecord for SessionEvent {
    const KIND: RecordKind = RecordKind::Session;

    fn extent_ms(&self) -> (i64, i64) {
        (self.at_ms, self.at_ms)
    }

    fn encode_body(records: &[Self], base_ms: i64) -> Result<Vec<u8>, bincode::error::EncodeError> {
        let mut names = NameTable::default();
        let rows: Vec<SessionRow<&SessionKind>> = records
            .iter()
            .map(|event| SessionRow {
                at_delta_ms: delta(event.at_ms, base_ms),
                kind: &event.kind,
                user: names.intern(&event.user),
            })
            .collect();
        encode(&NamedBody {
            names: names.names,
            rows,
        })
    }

    fn decode_body(body: &[u8], agent: AgentId, base_ms: i64) -> Result<Vec<Self>, BlockError> {
        let body: NamedBody<String, SessionRow<SessionKind>> = decode(body)?;
        body.rows
            .into_iter()
            .enumerate()
            .map(|(row, event)| {
                Ok(SessionEvent {
                    agent,
                    at_ms: undelta(event.at_delta_ms, base_ms),
                    kind: event.kind,
                    user: name_of(&body.names, row, event.user)?,
                })
            })
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
struct HealthRow {
    at_delta_ms: i64,
    cpu_pct: f32,
    mem_pct: f32,
    disk_pct: f32,
    uptime_secs: u64,
    score: u8,
    level: HealthLevel,
}

impl BlockRecord for HealthPoint {
    const KIND: RecordKind = RecordKind::Health;

    fn extent_ms(&self) -> (i64, i64) {
        (self.at_ms, self.at_ms)
    }

    fn encode_body(records: &[Self], base_ms: i64) -> Result<Vec<u8>, bincode::error::EncodeError> {
        let rows: Vec<HealthRow> = records
            .iter()
            .map(|point| HealthRow {
                at_delta_ms: delta(point.at_ms, base_ms),
                cpu_pct: point.cpu_pct,
                mem_pct: point.mem_pct,
                disk_pct: point.disk_pct,
                uptime_secs: point.uptime_secs,
                score: point.score,
                level: point.level,
            })
            .collect();
        encode(&rows)
    }

    fn decode_body(body: &[u8], agent: AgentId, base_ms: i64) -> Result<Vec<Self>, BlockError> {
        let rows: Vec<HealthRow> = decode(body)?;
        Ok(rows
            .into_iter()
            .map(|row| HealthPoint {
                agent,
                at_ms: undelta(row.at_delta_ms, base_ms),
                cpu_pct: row.cpu_pct,
                mem_pct: row.mem_pct,
                disk_pct: row.disk_pct,
                uptime_secs: row.uptime_secs,
                score: row.score,
                level: row.level,
            })
            .collect())
    }
}

/// A gap marker with the time this store received it: markers have no
/// time of their own, and retention and key order need one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotedGap {
    pub(crate) noted_ms: i64,
    pub(crate) gap: Gap,
}

#[derive(Serialize, Deserialize)]
struct GapRow<S> {
    noted_delta_ms: i64,
    stream: S,
    first_seq: u64,
    last_seq: u64,
    reason: S,
}

impl BlockRecord for NotedGap {
    const KIND: RecordKind = RecordKind::Gap;

    fn extent_ms(&self) -> (i64, i64) {
        (self.noted_ms, self.noted_ms)
    }

    fn encode_body(records: &[Self], base_ms: i64) -> Result<Vec<u8>, bincode::error::EncodeError> {
        let rows: Vec<GapRow<&str>> = records
            .iter()
            .map(|noted| GapRow {
                noted_delta_ms: delta(noted.noted_ms, base_ms),
                stream: noted.gap.stream.as_str(),
                first_seq: noted.gap.first_seq,
                last_seq: noted.gap.last_seq,
                reason: noted.gap.reason.as_str(),
            })
            .collect();
        encode(&rows)
    }

    fn decode_body(body: &[u8], agent: AgentId, base_ms: i64) -> Result<Vec<Self>, BlockError> {
        let rows: Vec<GapRow<String>> = decode(body)?;
        Ok(rows
            .into_iter()
            .map(|row| NotedGap {
                noted_ms: undelta(row.noted_delta_ms, base_ms),
                gap: Gap {
                    agent,
                    stream: row.stream,
                    first_seq: row.first_seq,
                    last_seq: row.last_seq,
                    reason: row.reason,
                },
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: AgentId = AgentId::from_u128(0x42);

    fn usage(start_ms: i64, end_ms: i64, app: &str) -> UsageSpan {
        UsageSpan {
            agent: AGENT,
            start_ms,
            end_ms,
            app: app.to_owned(),
            title: (app == "Firefox").then(|| "Mail".to_owned()),
        }
    }

    #[test]
    fn usage_round_trips_with_shared_names_and_extreme_times() {
        let spans = vec![
            usage(i64::MIN, i64::MAX, "Firefox"),
            usage(0, -5, "Terminal"),
            usage(7, 9, "Firefox"),
        ];
        let (base_ms, value) = encode_block(&spans).unwrap();
        assert_eq!(base_ms, i64::MIN);
        let (header, back) = decode_block::<UsageSpan>(AGENT, base_ms, &value).unwrap();
        assert_eq!(header.count, 3);
        assert_eq!(header.max_end_ms, i64::MAX);
        assert_eq!(back, spans);
    }

    #[test]
    fn every_kind_round_trips() {
        let activity = vec![ActivitySpan {
            agent: AGENT,
            start_ms: 10,
            end_ms: 20,
            presence: Presence::Locked,
            user: "marie".into(),
        }];
        let (base, value) = encode_block(&activity).unwrap();
        assert_eq!(
            decode_block::<ActivitySpan>(AGENT, base, &value).unwrap().1,
            activity
        );
        let sessions = vec![SessionEvent {
            agent: AGENT,
            at_ms: 3,
            kind: SessionKind::ClockJump { delta_ms: -7 },
            user: "marie".into(),
        }];
        let (base, value) = encode_block(&sessions).unwrap();
        assert_eq!(
            decode_block::<SessionEvent>(AGENT, base, &value).unwrap().1,
            sessions
        );
        let health = vec![HealthPoint {
            agent: AGENT,
            at_ms: 5,
            cpu_pct: 12.5,
            mem_pct: 50.0,
            disk_pct: 99.0,
            uptime_secs: 60,
            score: 80,
            level: HealthLevel::Warn,
        }];
        let (base, value) = encode_block(&health).unwrap();
        assert_eq!(
            decode_block::<HealthPoint>(AGENT, base, &value).unwrap().1,
            health
        );
        let gaps = vec![NotedGap {
            noted_ms: 99,
            gap: Gap {
                agent: AGENT,
                stream: "usage".into(),
                first_seq: 1,
                last_seq: 4,
                reason: "QuotaExceeded".into(),
            },
        }];
        let (base, value) = encode_block(&gaps).unwrap();
        assert_eq!(
            decode_block::<NotedGap>(AGENT, base, &value).unwrap().1,
            gaps
        );
    }

    #[test]
    fn bad_values_are_errors() {
        let spans = vec![usage(1, 2, "Firefox"), usage(3, 4, "Files")];
        let (base, value) = encode_block(&spans).unwrap();
        assert!(matches!(
            decode_block::<UsageSpan>(AGENT, base, &value[..4]),
            Err(BlockError::Truncated { len_bytes: 4 })
        ));
        let mut extra = value.clone();
        extra.push(0);
        assert!(matches!(
            decode_block::<UsageSpan>(AGENT, base, &extra),
            Err(BlockError::TrailingBytes { trailing_bytes: 1 })
        ));
        let mut wrong_count = value.clone();
        wrong_count[2] = 3;
        assert!(matches!(
            decode_block::<UsageSpan>(AGENT, base, &wrong_count),
            Err(BlockError::CountMismatch { .. })
        ));
        let mut version = value.clone();
        version[0] = 9;
        assert!(matches!(
            decode_block::<UsageSpan>(AGENT, base, &version),
            Err(BlockError::UnknownVersion { version: 9 })
        ));
        assert!(encode_block::<UsageSpan>(&[]).is_err());
        // Every truncation of the body fails cleanly.
        for len in 0..value.len() {
            assert!(decode_block::<UsageSpan>(AGENT, base, &value[..len]).is_err());
        }
    }
}
