//! The only place the console engine reads the wall clock; everything
//! below it takes time as an argument.

use protocol::UnixMillis;

/// Wall clock in Unix milliseconds.
pub fn wall_now_ms() -> UnixMillis {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(now_ms).unwrap_or(i64::MAX)
}
