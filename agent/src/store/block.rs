//! Block keys and the block value codec (pure: no I/O, no clock).
//!
//! See the [module documentation](super) for the byte layout.

use protocol::{SeqRecord, StreamKind};

/// Most records one block holds.
pub(crate) const RECORDS_PER_BLOCK: usize = 256;
/// The only block format this build reads and writes.
pub(crate) const BLOCK_FORMAT_V1: u8 = 1;
/// Version byte, record count (u16), min and max `at_ms` (i64 each).
pub(crate) const BLOCK_HEADER_BYTES: usize = 1 + 2 + 8 + 8;
/// Largest bincode body of one block, on encode and on decode.
pub(crate) const MAX_BLOCK_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Stream tag byte and big-endian first sequence number.
pub(crate) const BLOCK_KEY_BYTES: usize = 1 + 8;

/// Index of a stream in per-stream arrays and the first byte of its keys.
pub(crate) fn stream_tag(stream: StreamKind) -> u8 {
    match stream {
        StreamKind::Usage => 0,
        StreamKind::Sessions => 1,
        StreamKind::Health => 2,
        StreamKind::Frames => 3,
    }
}

/// Key of the block of `stream` whose first record is `first_seq`.
pub(crate) fn block_key(stream: StreamKind, first_seq: u64) -> [u8; BLOCK_KEY_BYTES] {
    let mut key = [0_u8; BLOCK_KEY_BYTES];
    key[0] = stream_tag(stream);
    key[1..].copy_from_slice(&first_seq.to_be_bytes());
    key
}

/// First sequence number named by a block key of `stream`.
pub(crate) fn parse_block_key(stream: StreamKind, key: &[u8]) -> Result<u64, BlockError> {
    match <[u8; BLOCK_KEY_BYTES]>::try_from(key) {
        Ok(key) if key[0] == stream_tag(stream) => {
            let mut seq_bytes = [0_u8; 8];
            seq_bytes.copy_from_slice(&key[1..]);
            Ok(u64::from_be_bytes(seq_bytes))
        }
        _ => Err(BlockError::BadKey {
            len_bytes: key.len(),
        }),
    }
}

/// The fixed-size start of a block value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    pub(crate) count: u16,
    pub(crate) min_at_ms: i64,
    pub(crate) max_at_ms: i64,
}

/// Why a stored block value is not a valid block.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error(
        "key is {len_bytes} bytes or has the wrong stream tag, expected {BLOCK_KEY_BYTES} bytes"
    )]
    BadKey { len_bytes: usize },
    #[error("value is {len_bytes} bytes, shorter than the {BLOCK_HEADER_BYTES}-byte header")]
    Truncated { len_bytes: usize },
    #[error("unknown block format version {version}")]
    UnknownVersion { version: u8 },
    #[error("record count {count} is outside 1..={RECORDS_PER_BLOCK}")]
    BadCount { count: u16 },
    #[error("min at_ms {min_at_ms} is after max at_ms {max_at_ms}")]
    BadTimeRange { min_at_ms: i64, max_at_ms: i64 },
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
    #[error("record {index} has seq {found}, expected {expected}")]
    SeqMismatch {
        index: usize,
        found: u64,
        expected: u64,
    },
}

fn body_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_BLOCK_BODY_BYTES>()
}

/// Encodes a block value: header, then the records as a bincode sequence
/// (the same bytes a `Vec<SeqRecord>` encodes to).
pub(crate) fn encode_block(
    records: &[&SeqRecord],
    min_at_ms: i64,
    max_at_ms: i64,
) -> Result<Vec<u8>, bincode::error::EncodeError> {
    let count = u16::try_from(records.len()).map_err(|_| {
        bincode::error::EncodeError::OtherString(format!(
            "{} records do not fit one block",
            records.len()
        ))
    })?;
    let body = bincode::serde::encode_to_vec(records, body_config())?;
    let mut value = Vec::with_capacity(BLOCK_HEADER_BYTES + body.len());
    value.push(BLOCK_FORMAT_V1);
    value.extend_from_slice(&count.to_be_bytes());
    value.extend_from_slice(&min_at_ms.to_be_bytes());
    value.extend_from_slice(&max_at_ms.to_be_bytes());
    value.extend_from_slice(&body);
    Ok(value)
}

/// Reads and checks the header only; cheap, used when loading the index.
pub(crate) fn decode_header(value: &[u8]) -> Result<BlockHeader, BlockError> {
    let Some(header) = value.get(..BLOCK_HEADER_BYTES) else {
        return Err(BlockError::Truncated {
            len_bytes: value.len(),
        });
    };
    let version = header[0];
    if version != BLOCK_FORMAT_V1 {
        return Err(BlockError::UnknownVersion { version });
    }
    let count = u16::from_be_bytes([header[1], header[2]]);
    if count == 0 || usize::from(count) > RECORDS_PER_BLOCK {
        return Err(BlockError::BadCount { count });
    }
    let mut at_bytes = [0_u8; 8];
    at_bytes.copy_from_slice(&header[3..11]);
    let min_at_ms = i64::from_be_bytes(at_bytes);
    at_bytes.copy_from_slice(&header[11..19]);
    let max_at_ms = i64::from_be_bytes(at_bytes);
    if min_at_ms > max_at_ms {
        return Err(BlockError::BadTimeRange {
            min_at_ms,
            max_at_ms,
        });
    }
    Ok(BlockHeader {
        count,
        min_at_ms,
        max_at_ms,
    })
}

/// Decodes a whole block whose key names `first_seq`, checking that it
/// holds exactly `first_seq..first_seq + count` in order.
pub(crate) fn decode_block(
    first_seq: u64,
    value: &[u8],
) -> Result<(BlockHeader, Vec<SeqRecord>), BlockError> {
    let header = decode_header(value)?;
    let body = &value[BLOCK_HEADER_BYTES..];
    if body.len() > MAX_BLOCK_BODY_BYTES {
        return Err(BlockError::TooLarge {
            len_bytes: body.len(),
        });
    }
    let (records, read_bytes): (Vec<SeqRecord>, usize) =
        bincode::serde::decode_from_slice(body, body_config())?;
    if read_bytes != body.len() {
        return Err(BlockError::TrailingBytes {
            trailing_bytes: body.len() - read_bytes,
        });
    }
    if records.len() != usize::from(header.count) {
        return Err(BlockError::CountMismatch {
            header_count: header.count,
            body_count: records.len(),
        });
    }
    for (index, record) in records.iter().enumerate() {
        let expected = first_seq.saturating_add(index as u64);
        if record.seq != expected {
            return Err(BlockError::SeqMismatch {
                index,
                found: record.seq,
                expected,
            });
        }
    }
    Ok((header, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{GapMarker, GapReason, Record};

    fn gap(seq: u64) -> SeqRecord {
        SeqRecord {
            seq,
            record: Record::Gap(GapMarker {
                stream: StreamKind::Frames,
                first_seq: u64::MAX,
                last_seq: u64::MAX,
                reason: GapReason::RetentionExpired,
            }),
        }
    }

    #[test]
    fn round_trip_and_checks() {
        let records = [gap(7), gap(8)];
        let refs: Vec<&SeqRecord> = records.iter().collect();
        let value = encode_block(&refs, -5, 9).unwrap();
        let (header, decoded) = decode_block(7, &value).unwrap();
        assert_eq!(header.count, 2);
        assert_eq!((header.min_at_ms, header.max_at_ms), (-5, 9));
        assert_eq!(decoded, records);
        assert!(matches!(
            decode_block(6, &value),
            Err(BlockError::SeqMismatch { index: 0, .. })
        ));
        let mut extra = value.clone();
        extra.push(0);
        assert!(matches!(
            decode_block(7, &extra),
            Err(BlockError::TrailingBytes { trailing_bytes: 1 })
        ));
        assert!(matches!(
            decode_block(7, &value[..10]),
            Err(BlockError::Truncated { len_bytes: 10 })
        ));
    }

    #[test]
    fn keys_sort_by_stream_then_seq() {
        let mut keys = [
            block_key(StreamKind::Health, 1),
            block_key(StreamKind::Usage, 300),
            block_key(StreamKind::Usage, 2),
            block_key(StreamKind::Usage, 1 << 40),
        ];
        keys.sort();
        let seqs: Vec<u64> = keys
            .iter()
            .filter(|key| key[0] == stream_tag(StreamKind::Usage))
            .map(|key| parse_block_key(StreamKind::Usage, key).unwrap())
            .collect();
        assert_eq!(seqs, vec![2, 300, 1 << 40]);
        assert!(parse_block_key(StreamKind::Sessions, &keys[0]).is_err());
    }
}
