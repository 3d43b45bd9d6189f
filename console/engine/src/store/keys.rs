//! Key encodings of the `data` tree (pure): big-endian, sign-flipped
//! integers so that byte order is numeric order.
//!
//! See the [module documentation](super) for the full layout.

use std::ops::Bound;

use protocol::StreamKind;

use crate::model::{AgentId, DayNumber};

use super::RecordKind;

/// Bytes of an agent id inside keys.
pub(crate) const AGENT_BYTES: usize = 16;
/// `[kind][agent][start_ms][first_index]`.
pub(crate) const BLOCK_KEY_BYTES: usize = 1 + AGENT_BYTES + 8 + 8;
/// Prefix of a per-(agent, kind) state key.
pub(crate) const KIND_STATE_PREFIX: u8 = b'K';
/// Prefix of a cursor key.
pub(crate) const CURSOR_PREFIX: u8 = b'C';
/// Prefix of a retired-epoch key.
pub(crate) const RETIRED_EPOCH_PREFIX: u8 = b'E';
/// Prefix of an app-day rollup key.
pub(crate) const APP_DAY_PREFIX: u8 = b'A';
/// Prefix of a presence-day rollup key.
pub(crate) const PRESENCE_DAY_PREFIX: u8 = b'P';
/// Prefix of an app rollup key per UTC day, totals per quarter hour.
pub(crate) const APP_SLICE_PREFIX: u8 = b'a';
/// Prefix of a presence rollup key per UTC day, totals per quarter hour.
pub(crate) const PRESENCE_SLICE_PREFIX: u8 = b'p';
/// Prefix of a screenshot's index entry (metadata in clear).
pub(crate) const SHOT_INDEX_PREFIX: u8 = b'S';
/// Prefix of a screenshot's encrypted image.
pub(crate) const SHOT_IMAGE_PREFIX: u8 = b'I';
/// Prefix of an agent's next screenshot serial.
pub(crate) const SHOT_SERIAL_PREFIX: u8 = b'N';
/// Prefix of an OS account an agent reported (see `accounts.rs`).
pub(crate) const ACCOUNT_PREFIX: u8 = b'U';
/// `[prefix][agent][at_ms][serial]`.
const SHOT_KEY_BYTES: usize = 1 + AGENT_BYTES + 8 + 8;

/// An `i64` whose big-endian bytes sort like the signed number.
pub(crate) fn flip_i64(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

fn unflip_i64(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as i64
}

/// A day number whose big-endian bytes sort like the signed number.
pub(crate) fn flip_day(day: DayNumber) -> [u8; 4] {
    ((day as u32) ^ (1 << 31)).to_be_bytes()
}

fn unflip_day(bytes: [u8; 4]) -> DayNumber {
    (u32::from_be_bytes(bytes) ^ (1 << 31)) as i32
}

/// Tag byte of a stream inside cursor keys (the agent store's numbering).
pub(crate) fn stream_tag(stream: StreamKind) -> u8 {
    match stream {
        StreamKind::Usage => 0,
        StreamKind::Sessions => 1,
        StreamKind::Health => 2,
        StreamKind::Frames => 3,
    }
}

fn with_agent(prefix: u8, agent: AgentId, extra: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + AGENT_BYTES + extra);
    key.push(prefix);
    key.extend_from_slice(agent.as_bytes());
    key
}

/// `[kind][agent]`: every block of one agent and kind.
pub(crate) fn block_prefix(kind: RecordKind, agent: AgentId) -> Vec<u8> {
    with_agent(kind.tag(), agent, 16)
}

/// `[kind][agent][start_ms]`: where blocks starting at `start_ms` begin.
pub(crate) fn block_start_bound(kind: RecordKind, agent: AgentId, start_ms: i64) -> Vec<u8> {
    let mut key = block_prefix(kind, agent);
    key.extend_from_slice(&flip_i64(start_ms));
    key
}

/// Key of a block of `agent` whose earliest record starts at `start_ms` and
/// whose first record got the per-(agent, kind) ordinal `first_index`.
pub(crate) fn block_key(
    kind: RecordKind,
    agent: AgentId,
    start_ms: i64,
    first_index: u64,
) -> Vec<u8> {
    let mut key = block_start_bound(kind, agent, start_ms);
    key.extend_from_slice(&first_index.to_be_bytes());
    key
}

/// The parts of a block key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockKey {
    pub(crate) agent: AgentId,
    pub(crate) start_ms: i64,
    pub(crate) first_index: u64,
}

/// Parses a block key of `kind`; `None` if it is not one.
pub(crate) fn parse_block_key(kind: RecordKind, key: &[u8]) -> Option<BlockKey> {
    let key = <&[u8; BLOCK_KEY_BYTES]>::try_from(key).ok()?;
    if key[0] != kind.tag() {
        return None;
    }
    let agent = agent_at(key, 1)?;
    let start_ms = unflip_i64(key[17..25].try_into().ok()?);
    let first_index = u64::from_be_bytes(key[25..33].try_into().ok()?);
    Some(BlockKey {
        agent,
        start_ms,
        first_index,
    })
}

/// The agent id stored at `key[offset..offset + 16]`.
pub(crate) fn agent_at(key: &[u8], offset: usize) -> Option<AgentId> {
    let bytes: [u8; AGENT_BYTES] = key.get(offset..offset + AGENT_BYTES)?.try_into().ok()?;
    Some(AgentId::from_bytes(bytes))
}

/// `[U][agent][user]` → first and last seen.
pub(crate) fn account_key(agent: AgentId, user: &str) -> Vec<u8> {
    let mut key = with_agent(ACCOUNT_PREFIX, agent, user.len());
    key.extend_from_slice(user.as_bytes());
    key
}

/// The agent and user of an account key; `None` if it is not one (an
/// empty or non-UTF-8 user included).
pub(crate) fn parse_account_key(key: &[u8]) -> Option<(AgentId, String)> {
    if key.first() != Some(&ACCOUNT_PREFIX) {
        return None;
    }
    let agent = agent_at(key, 1)?;
    let user = std::str::from_utf8(key.get(1 + AGENT_BYTES..)?).ok()?;
    (!user.is_empty()).then(|| (agent, user.to_owned()))
}

/// `[K][agent][kind]` → next record ordinal and widest block extent.
pub(crate) fn kind_state_key(agent: AgentId, kind: RecordKind) -> Vec<u8> {
    let mut key = with_agent(KIND_STATE_PREFIX, agent, 1);
    key.push(kind.tag());
    key
}

/// `[C][agent][stream]` → cursor.
pub(crate) fn cursor_key(agent: AgentId, stream: StreamKind) -> Vec<u8> {
    let mut key = with_agent(CURSOR_PREFIX, agent, 1);
    key.push(stream_tag(stream));
    key
}

/// `[E][agent][stream][epoch]` → last seq held of an epoch the agent left.
pub(crate) fn retired_epoch_key(agent: AgentId, stream: StreamKind, epoch: u64) -> Vec<u8> {
    let mut key = with_agent(RETIRED_EPOCH_PREFIX, agent, 9);
    key.push(stream_tag(stream));
    key.extend_from_slice(&epoch.to_be_bytes());
    key
}

/// What a rollup key's `i32` counts: the site's days (what dashboards
/// read, one total a value), or UTC days whose value holds a total per
/// quarter hour (what day totals are regrouped from when the site's zone
/// changes: every real UTC offset is a whole number of quarter hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grain {
    Day,
    Slice,
}

impl Grain {
    pub(crate) fn app_prefix(self) -> u8 {
        match self {
            Grain::Day => APP_DAY_PREFIX,
            Grain::Slice => APP_SLICE_PREFIX,
        }
    }

    pub(crate) fn presence_prefix(self) -> u8 {
        match self {
            Grain::Day => PRESENCE_DAY_PREFIX,
            Grain::Slice => PRESENCE_SLICE_PREFIX,
        }
    }
}

/// `[A|a][agent][unit][app]` → active milliseconds.
pub(crate) fn app_total_key(grain: Grain, agent: AgentId, unit: i32, app: &str) -> Vec<u8> {
    let mut key = with_agent(grain.app_prefix(), agent, 4 + app.len());
    key.extend_from_slice(&flip_day(unit));
    key.extend_from_slice(app.as_bytes());
    key
}

/// Agent, unit and app of an app rollup key of `grain`; `None` if it is
/// not one.
pub(crate) fn parse_app_total_key(grain: Grain, key: &[u8]) -> Option<(AgentId, i32, String)> {
    if key.first() != Some(&grain.app_prefix()) {
        return None;
    }
    let agent = agent_at(key, 1)?;
    let unit = unflip_day(key.get(17..21)?.try_into().ok()?);
    let app = std::str::from_utf8(key.get(21..)?).ok()?.to_owned();
    Some((agent, unit, app))
}

/// Agent, day and app of an app-day key; `None` if it is not one.
pub(crate) fn parse_app_day_key(key: &[u8]) -> Option<(AgentId, DayNumber, String)> {
    parse_app_total_key(Grain::Day, key)
}

/// `[P|p][agent][unit]` → active, idle and locked milliseconds.
pub(crate) fn presence_total_key(grain: Grain, agent: AgentId, unit: i32) -> Vec<u8> {
    let mut key = with_agent(grain.presence_prefix(), agent, 4);
    key.extend_from_slice(&flip_day(unit));
    key
}

/// Agent and unit of a presence rollup key of `grain`; `None` if it is
/// not one.
pub(crate) fn parse_presence_total_key(grain: Grain, key: &[u8]) -> Option<(AgentId, i32)> {
    if key.len() != 1 + AGENT_BYTES + 4 || key[0] != grain.presence_prefix() {
        return None;
    }
    Some((agent_at(key, 1)?, unflip_day(key[17..21].try_into().ok()?)))
}

/// Agent and day of a presence-day key; `None` if it is not one.
pub(crate) fn parse_presence_day_key(key: &[u8]) -> Option<(AgentId, DayNumber)> {
    parse_presence_total_key(Grain::Day, key)
}

/// `[prefix][agent][at_ms]`: where screenshots (index entries or images)
/// taken at `at_ms` begin.
pub(crate) fn shot_time_bound(prefix: u8, agent: AgentId, at_ms: i64) -> Vec<u8> {
    let mut key = with_agent(prefix, agent, 16);
    key.extend_from_slice(&flip_i64(at_ms));
    key
}

/// `[S or I][agent][at_ms][serial]`: a screenshot's index entry or image.
pub(crate) fn shot_key(prefix: u8, agent: AgentId, at_ms: i64, serial: u64) -> Vec<u8> {
    let mut key = shot_time_bound(prefix, agent, at_ms);
    key.extend_from_slice(&serial.to_be_bytes());
    key
}

/// Agent, time and serial of a screenshot key of `prefix`.
pub(crate) fn parse_shot_key(prefix: u8, key: &[u8]) -> Option<(AgentId, i64, u64)> {
    let key = <&[u8; SHOT_KEY_BYTES]>::try_from(key).ok()?;
    if key[0] != prefix {
        return None;
    }
    let at_ms = unflip_i64(key[17..25].try_into().ok()?);
    let serial = u64::from_be_bytes(key[25..33].try_into().ok()?);
    Some((agent_at(key, 1)?, at_ms, serial))
}

/// `[N][agent]` → the agent's next screenshot serial.
pub(crate) fn shot_serial_key(agent: AgentId) -> Vec<u8> {
    agent_prefix(SHOT_SERIAL_PREFIX, agent)
}

/// `[prefix][agent]`.
pub(crate) fn agent_prefix(prefix: u8, agent: AgentId) -> Vec<u8> {
    with_agent(prefix, agent, 0)
}

/// The smallest key above every key that starts with `prefix`, as a range
/// end; unbounded if `prefix` is all `0xFF`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

/// Keys from `[prefix][first day]` up to and including every key of
/// `[prefix][last day]`.
pub(crate) fn day_range(
    prefix: u8,
    agent: AgentId,
    first_day: DayNumber,
    last_day: DayNumber,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut start = agent_prefix(prefix, agent);
    start.extend_from_slice(&flip_day(first_day));
    let mut last = agent_prefix(prefix, agent);
    last.extend_from_slice(&flip_day(last_day));
    (Bound::Included(start), prefix_end(&last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipped_integers_sort_numerically() {
        let mut times = [i64::MAX, -1, 0, i64::MIN, 1_772_490_600_000, -86_400_000];
        let mut keys: Vec<[u8; 8]> = times.iter().map(|t| flip_i64(*t)).collect();
        keys.sort();
        times.sort();
        let back: Vec<i64> = keys.into_iter().map(unflip_i64).collect();
        assert_eq!(back, times);

        let mut days = [i32::MAX, -3, 0, i32::MIN, 20_514];
        let mut keys: Vec<[u8; 4]> = days.iter().map(|d| flip_day(*d)).collect();
        keys.sort();
        days.sort();
        let back: Vec<DayNumber> = keys.into_iter().map(unflip_day).collect();
        assert_eq!(back, days);
    }

    #[test]
    fn block_keys_sort_by_agent_then_time_and_parse_back() {
        let a = AgentId::from_u128(1);
        let b = AgentId::from_u128(2);
        let mut keys = [
            block_key(RecordKind::Usage, b, -5, 0),
            block_key(RecordKind::Usage, a, 1_000, 7),
            block_key(RecordKind::Usage, a, -1_000, 9),
            block_key(RecordKind::Usage, a, 1_000, 3),
        ];
        keys.sort();
        let parsed: Vec<BlockKey> = keys
            .iter()
            .map(|key| parse_block_key(RecordKind::Usage, key).unwrap())
            .collect();
        let order: Vec<(AgentId, i64, u64)> = parsed
            .iter()
            .map(|k| (k.agent, k.start_ms, k.first_index))
            .collect();
        assert_eq!(
            order,
            vec![(a, -1_000, 9), (a, 1_000, 3), (a, 1_000, 7), (b, -5, 0)]
        );
        assert!(keys[1] < keys[2], "same start: first index breaks the tie");
        assert!(parse_block_key(RecordKind::Health, &keys[0]).is_none());
        assert!(parse_block_key(RecordKind::Usage, &keys[0][..20]).is_none());
    }

    #[test]
    fn rollup_keys_parse_back_and_prefix_ends() {
        let agent = AgentId::from_u128(u128::MAX);
        let key = app_total_key(Grain::Day, agent, -2, "Visual Studio Code");
        assert_eq!(
            parse_app_day_key(&key),
            Some((agent, -2, "Visual Studio Code".to_owned()))
        );
        assert_eq!(
            parse_presence_day_key(&presence_total_key(Grain::Day, agent, 9)),
            Some((agent, 9))
        );
        assert_eq!(prefix_end(&[1, 0xFF]), Bound::Excluded(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), Bound::Unbounded);
        let (_, end) = day_range(APP_DAY_PREFIX, agent, 0, 3);
        let Bound::Excluded(end) = end else {
            panic!("bounded")
        };
        assert!(app_total_key(Grain::Day, agent, 3, "\u{10FFFF}").as_slice() < end.as_slice());
        assert!(app_total_key(Grain::Day, agent, 4, "").as_slice() >= end.as_slice());
    }

    #[test]
    fn screenshot_keys_sort_by_time_then_serial_and_parse_back() {
        let agent = AgentId::from_u128(7);
        let mut keys = [
            shot_key(SHOT_INDEX_PREFIX, agent, 5, 0),
            shot_key(SHOT_INDEX_PREFIX, agent, -5, 9),
            shot_key(SHOT_INDEX_PREFIX, agent, 5, 1),
        ];
        keys.sort();
        let parsed: Vec<_> = keys
            .iter()
            .map(|key| parse_shot_key(SHOT_INDEX_PREFIX, key).unwrap())
            .collect();
        assert_eq!(parsed, vec![(agent, -5, 9), (agent, 5, 0), (agent, 5, 1)]);
        assert!(parse_shot_key(SHOT_IMAGE_PREFIX, &keys[0]).is_none());
        assert!(shot_time_bound(SHOT_INDEX_PREFIX, agent, 5) <= keys[1]);
        assert!(shot_time_bound(SHOT_INDEX_PREFIX, agent, 6) > keys[2]);
    }
}
