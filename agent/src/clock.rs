//! The only place the agent reads clocks: wall time for labels, boot time
//! (keeps counting through suspend, never steps) for gaps and steps.

use std::time::{SystemTime, UNIX_EPOCH};

use protocol::UnixMillis;
use rustix::time::{clock_gettime_dynamic, DynamicClockId};

use crate::tracker::Now;

/// Wall clock in Unix milliseconds (negative before 1970, as the clock says).
pub fn wall_now_ms() -> UnixMillis {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Milliseconds since boot, including time suspended. Falls back to the
/// monotonic clock where boot time is not available.
pub fn steady_now_ms() -> u64 {
    let spec = clock_gettime_dynamic(DynamicClockId::Boottime)
        .unwrap_or_else(|_| rustix::time::clock_gettime(rustix::time::ClockId::Monotonic));
    let secs = u64::try_from(spec.tv_sec).unwrap_or(0);
    let millis = u64::try_from(spec.tv_nsec).unwrap_or(0) / 1_000_000;
    secs * 1000 + millis
}

/// Both clocks, for the tracker.
pub fn now() -> Now {
    Now {
        wall_ms: wall_now_ms(),
        steady_ms: steady_now_ms(),
    }
}
