//! Durations as people read them: `2 h 05`, `45 min`, `30 s`, and the
//! session tracker's `2h 30m 45s`; and as people type them: `90s`, `30m`,
//! `24h`, `7d`.

/// Splits a duration into a sign and whole hours, minutes and seconds
/// (sub-second remainders are dropped, never rounded up).
pub(crate) fn duration_parts(ms: i64) -> (&'static str, u64, u64, u64) {
    let total_secs = ms.unsigned_abs() / 1000;
    let sign = if ms < 0 && total_secs > 0 { "-" } else { "" };
    (
        sign,
        total_secs / 3600,
        total_secs / 60 % 60,
        total_secs % 60,
    )
}

/// A duration the way the dashboards show it: `2 h 05` from one hour on,
/// `45 min` under an hour, `30 s` under a minute. Truncates (59.9 s is
/// `59 s`); a negative duration gets a leading `-`.
pub fn format_duration_ms(ms: i64) -> String {
    let (sign, hours, minutes, seconds) = duration_parts(ms);
    if hours > 0 {
        format!("{sign}{hours} h {minutes:02}")
    } else if minutes > 0 {
        format!("{sign}{minutes} min")
    } else {
        format!("{sign}{seconds} s")
    }
}

/// A session length in the session tracker's style: `2h 30m 45s`,
/// `30m 45s` under an hour, `45s` under a minute. Truncates like
/// [`format_duration_ms`].
pub fn format_hms(ms: i64) -> String {
    let (sign, hours, minutes, seconds) = duration_parts(ms);
    if hours > 0 {
        format!("{sign}{hours}h {minutes}m {seconds}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m {seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
}

/// `90s`, `30m`, `24h`, `7d` as a duration; `None` for anything else (a
/// missing unit, a number that does not fit).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let mut chars = text.chars();
    let unit_secs: u64 = match chars.next_back()? {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    let number: u64 = chars.as_str().parse().ok()?;
    Some(std::time::Duration::from_secs(
        number.checked_mul(unit_secs)?,
    ))
}
