//! What a console accepts from an agent (pure: no I/O, no clock; the
//! console's time is an argument): every value a peer sends is checked
//! against its range before anything of it is stored.
//!
//! - [`check`] refuses a record that cannot be true: dated before
//!   [`EARLIEST_MS`] or more than [`MAX_AHEAD_MS`] after the console's
//!   clock, ending before it starts, a span longer than [`MAX_SPAN_MS`]
//!   (the agent cuts spans at 5 min), a percentage outside 0–100, used
//!   above total, a score above 100, a record in another kind's stream,
//!   a gap marker that names records after itself, a screenshot larger
//!   than the console keeps.
//! - [`cap_text`] (the protocol's, which agents apply too) repairs what
//!   is only too long: names are cut at [`MAX_APP_BYTES`],
//!   [`MAX_USER_BYTES`], [`MAX_TITLE_BYTES`] or [`MAX_HOSTNAME_BYTES`] on
//!   a character boundary, and control characters become spaces, so no
//!   stored text can reach a terminal, a CSV cell or a screen as anything
//!   but text.

pub use protocol::{
    cap_text, MAX_APP_BYTES, MAX_HOSTNAME_BYTES, MAX_TIME_ZONE_BYTES, MAX_TITLE_BYTES,
    MAX_USER_BYTES,
};
use protocol::{
    FrameMeta, HealthSample, ImageFormat, Record, SeqRecord, SessionEventKind, StreamKind,
    UnixMillis,
};

use crate::model::DAY_MS;
use crate::store::{MAX_SCREENSHOT_BYTES, MAX_SCREENSHOT_SIDE_PX};

/// 2000-01-01T00:00:00Z: nothing a workstation records is older.
pub const EARLIEST_MS: UnixMillis = 946_684_800_000;
/// How far after the console's clock a record may be dated (clocks of
/// two machines disagree; a day is far more than an honest difference).
pub const MAX_AHEAD_MS: i64 = DAY_MS;
/// Longest usage or activity span: the agent closes and reopens spans
/// every 5 minutes, so twice that leaves a margin and nothing more.
pub const MAX_SPAN_MS: i64 = 10 * 60 * 1000;
/// Longest suspend a session event may report (a laptop left shut for a
/// year is already generous).
pub const MAX_SUSPEND_MS: u64 = 366 * DAY_MS as u64;
/// Largest clock step a session event may report, either way.
pub const MAX_CLOCK_JUMP_MS: i64 = 100 * 366 * DAY_MS;
/// Longest uptime a health sample may report (ten years).
pub const MAX_UPTIME_SECS: u64 = 10 * 366 * 86_400;

/// Why a record from an agent is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Invalid {
    #[error("a {record} record does not belong in the {} stream", .stream.name())]
    WrongStream {
        record: &'static str,
        stream: StreamKind,
    },
    #[error("it is dated {at_ms} ms since 1970, before 2000-01-01")]
    TooOld { at_ms: UnixMillis },
    #[error(
        "it is dated {ahead_ms} ms after this console's clock (more than a day): check the \
         clock of the workstation and of this computer"
    )]
    InFuture { ahead_ms: i64 },
    #[error("it ends ({end_ms}) before it starts ({start_ms})")]
    EndBeforeStart {
        start_ms: UnixMillis,
        end_ms: UnixMillis,
    },
    #[error("it spans {duration_ms} ms, more than the {MAX_SPAN_MS} ms an agent sends")]
    SpanTooLong { duration_ms: i64 },
    #[error("a suspend of {gap_ms} ms is longer than a year")]
    SuspendTooLong { gap_ms: u64 },
    #[error("a clock step of {delta_ms} ms is beyond a century")]
    ClockJumpTooLarge { delta_ms: i64 },
    #[error("{field} is {value} %, outside 0–100")]
    Percent { field: &'static str, value: f32 },
    #[error("{field}: {used_bytes} bytes used of {total_bytes}")]
    UsedOverTotal {
        field: &'static str,
        used_bytes: u64,
        total_bytes: u64,
    },
    #[error("health score {score} is above 100")]
    Score { score: u8 },
    #[error("an uptime of {uptime_secs} s is longer than ten years")]
    Uptime { uptime_secs: u64 },
    #[error("a gap marker at seq {seq} names seqs {first_seq}..={last_seq}")]
    GapRange {
        seq: u64,
        first_seq: u64,
        last_seq: u64,
    },
    #[error("a gap marker of the {} stream sent in the {} stream", .named.name(), .stream.name())]
    GapStream {
        named: StreamKind,
        stream: StreamKind,
    },
    #[error("a screenshot of {width}x{height} px is not between 1 and {MAX_SCREENSHOT_SIDE_PX} px a side")]
    FrameSide { width: u32, height: u32 },
    #[error(
        "a screenshot of {size_bytes} bytes is larger than the {MAX_SCREENSHOT_BYTES} bytes kept"
    )]
    FrameBytes { size_bytes: u32 },
    #[error("a screenshot in {format:?}: this console keeps JPEG only")]
    FrameFormat { format: ImageFormat },
}

/// Checks one record of `stream` against what an agent can truly have
/// recorded, at the console's time `now_ms`. Text fields are not checked
/// here: [`cap_text`] repairs them when they are converted.
pub fn check(stream: StreamKind, record: &SeqRecord, now_ms: UnixMillis) -> Result<(), Invalid> {
    let window = Window { now_ms };
    match (&record.record, stream) {
        (Record::Usage(span), StreamKind::Usage) => window.span(span.start_ms, span.end_ms),
        (Record::Activity(span), StreamKind::Sessions) => window.span(span.start_ms, span.end_ms),
        (Record::Session(event), StreamKind::Sessions) => {
            window.instant(event.at_ms)?;
            match event.kind {
                SessionEventKind::Suspended { gap_ms } if gap_ms > MAX_SUSPEND_MS => {
                    Err(Invalid::SuspendTooLong { gap_ms })
                }
                SessionEventKind::ClockJump { delta_ms }
                    if delta_ms.unsigned_abs() > MAX_CLOCK_JUMP_MS.unsigned_abs() =>
                {
                    Err(Invalid::ClockJumpTooLarge { delta_ms })
                }
                _ => Ok(()),
            }
        }
        (Record::Health(sample), StreamKind::Health) => {
            window.instant(sample.at_ms)?;
            check_health(sample)
        }
        (Record::Frame(meta), StreamKind::Frames) => {
            window.instant(meta.at_ms)?;
            check_frame(meta)
        }
        (Record::Gap(gap), _) => {
            if gap.stream != stream {
                return Err(Invalid::GapStream {
                    named: gap.stream,
                    stream,
                });
            }
            // A marker names earlier records, or, for an erasure, the
            // one record it stands in for (at its own number).
            let erased_in_place = gap.reason == protocol::GapReason::Erased
                && gap.first_seq == record.seq
                && gap.last_seq == record.seq;
            if !erased_in_place
                && (gap.first_seq == 0
                    || gap.first_seq > gap.last_seq
                    || gap.last_seq >= record.seq)
            {
                return Err(Invalid::GapRange {
                    seq: record.seq,
                    first_seq: gap.first_seq,
                    last_seq: gap.last_seq,
                });
            }
            Ok(())
        }
        (other, stream) => Err(Invalid::WrongStream {
            record: kind_name(other),
            stream,
        }),
    }
}

/// The same checks for a screenshot's metadata (on-demand screenshots
/// come outside any stream).
pub fn check_frame_meta(meta: &FrameMeta, now_ms: UnixMillis) -> Result<(), Invalid> {
    Window { now_ms }.instant(meta.at_ms)?;
    check_frame(meta)
}

/// Times of records, relative to the console's clock.
#[derive(Debug, Clone, Copy)]
struct Window {
    now_ms: UnixMillis,
}

impl Window {
    fn instant(self, at_ms: UnixMillis) -> Result<(), Invalid> {
        if at_ms < EARLIEST_MS {
            return Err(Invalid::TooOld { at_ms });
        }
        let ahead_ms = at_ms.saturating_sub(self.now_ms);
        if ahead_ms > MAX_AHEAD_MS {
            return Err(Invalid::InFuture { ahead_ms });
        }
        Ok(())
    }

    fn span(self, start_ms: UnixMillis, end_ms: UnixMillis) -> Result<(), Invalid> {
        self.instant(start_ms)?;
        self.instant(end_ms)?;
        if end_ms < start_ms {
            return Err(Invalid::EndBeforeStart { start_ms, end_ms });
        }
        // Both are inside the window: the difference cannot overflow.
        let duration_ms = end_ms - start_ms;
        if duration_ms > MAX_SPAN_MS {
            return Err(Invalid::SpanTooLong { duration_ms });
        }
        Ok(())
    }
}

fn check_percent(field: &'static str, value: f32) -> Result<(), Invalid> {
    if (0.0..=100.0).contains(&value) {
        Ok(())
    } else {
        // NaN and infinities land here too.
        Err(Invalid::Percent { field, value })
    }
}

fn check_used(field: &'static str, used_bytes: u64, total_bytes: u64) -> Result<(), Invalid> {
    if used_bytes <= total_bytes {
        Ok(())
    } else {
        Err(Invalid::UsedOverTotal {
            field,
            used_bytes,
            total_bytes,
        })
    }
}

fn check_health(sample: &HealthSample) -> Result<(), Invalid> {
    check_percent("CPU", sample.cpu_pct)?;
    check_used("memory", sample.mem_used_bytes, sample.mem_total_bytes)?;
    check_used("swap", sample.swap_used_bytes, sample.swap_total_bytes)?;
    for disk in &sample.disks {
        check_used("disk", disk.used_bytes, disk.total_bytes)?;
    }
    if sample.score > 100 {
        return Err(Invalid::Score {
            score: sample.score,
        });
    }
    if sample.uptime_secs > MAX_UPTIME_SECS {
        return Err(Invalid::Uptime {
            uptime_secs: sample.uptime_secs,
        });
    }
    Ok(())
}

fn check_frame(meta: &FrameMeta) -> Result<(), Invalid> {
    let side = 1..=MAX_SCREENSHOT_SIDE_PX;
    if !side.contains(&meta.width) || !side.contains(&meta.height) {
        return Err(Invalid::FrameSide {
            width: meta.width,
            height: meta.height,
        });
    }
    if usize::try_from(meta.size_bytes).map_or(true, |size| size > MAX_SCREENSHOT_BYTES) {
        return Err(Invalid::FrameBytes {
            size_bytes: meta.size_bytes,
        });
    }
    if meta.format != ImageFormat::Jpeg {
        return Err(Invalid::FrameFormat {
            format: meta.format,
        });
    }
    Ok(())
}

fn kind_name(record: &Record) -> &'static str {
    match record {
        Record::Usage(_) => "usage",
        Record::Activity(_) => "activity",
        Record::Session(_) => "session",
        Record::Health(_) => "health",
        Record::Frame(_) => "frame",
        Record::Gap(_) => "gap",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{
        ActivitySpan, DiskUsage, GapMarker, GapReason, HealthLevel, Presence, SessionEvent,
        UsageSpan,
    };

    /// 2026-11-20T12:00:00Z, the console's clock in these tests.
    const NOW_MS: i64 = 1_795_176_000_000;
    const MIN_MS: i64 = 60_000;

    fn usage(start_ms: i64, end_ms: i64) -> Record {
        Record::Usage(UsageSpan {
            start_ms,
            end_ms,
            app: "Firefox".into(),
            raw_app: "firefox".into(),
            title: None,
        })
    }

    fn activity(start_ms: i64, end_ms: i64) -> Record {
        Record::Activity(ActivitySpan {
            start_ms,
            end_ms,
            presence: Presence::Active,
            user: "marie".into(),
        })
    }

    fn event(at_ms: i64, kind: SessionEventKind) -> Record {
        Record::Session(SessionEvent {
            at_ms,
            kind,
            user: "marie".into(),
        })
    }

    fn health(edit: impl FnOnce(&mut HealthSample)) -> Record {
        let mut sample = HealthSample {
            at_ms: NOW_MS,
            cpu_pct: 12.5,
            mem_used_bytes: 4 << 30,
            mem_total_bytes: 16 << 30,
            swap_used_bytes: 0,
            swap_total_bytes: 0,
            disks: vec![DiskUsage {
                mount: "/".into(),
                used_bytes: 100,
                total_bytes: 200,
            }],
            uptime_secs: 3_600,
            load_avg: [0.5, 0.4, 0.3],
            top_processes: Vec::new(),
            score: 90,
            level: HealthLevel::Ok,
        };
        edit(&mut sample);
        Record::Health(sample)
    }

    fn frame(edit: impl FnOnce(&mut FrameMeta)) -> Record {
        let mut meta = FrameMeta {
            at_ms: NOW_MS,
            width: 1280,
            height: 720,
            format: ImageFormat::Jpeg,
            size_bytes: 80_000,
            sha256: [0; 32],
            blurred: false,
        };
        edit(&mut meta);
        Record::Frame(meta)
    }

    fn gap(stream: StreamKind, first_seq: u64, last_seq: u64) -> Record {
        Record::Gap(GapMarker {
            stream,
            first_seq,
            last_seq,
            reason: GapReason::QuotaExceeded,
        })
    }

    fn erased(stream: StreamKind, first_seq: u64, last_seq: u64) -> Record {
        Record::Gap(GapMarker {
            stream,
            first_seq,
            last_seq,
            reason: GapReason::Erased,
        })
    }

    fn at(seq: u64, record: Record) -> SeqRecord {
        SeqRecord { seq, record }
    }

    #[test]
    fn table() {
        use StreamKind::{Frames, Health, Sessions, Usage};
        let ok = Ok(());
        let cases: Vec<(StreamKind, SeqRecord, Result<(), Invalid>)> = vec![
            // Spans: window, order, length.
            (Usage, at(1, usage(NOW_MS - 5 * MIN_MS, NOW_MS)), ok.clone()),
            (Usage, at(1, usage(NOW_MS, NOW_MS)), ok.clone()),
            (
                Usage,
                at(1, usage(NOW_MS - MAX_SPAN_MS, NOW_MS)),
                ok.clone(),
            ),
            (
                Usage,
                at(1, usage(NOW_MS - MAX_SPAN_MS - 1, NOW_MS)),
                Err(Invalid::SpanTooLong {
                    duration_ms: MAX_SPAN_MS + 1,
                }),
            ),
            (
                Usage,
                at(1, usage(NOW_MS, NOW_MS - 1)),
                Err(Invalid::EndBeforeStart {
                    start_ms: NOW_MS,
                    end_ms: NOW_MS - 1,
                }),
            ),
            (
                Usage,
                at(1, usage(i64::MIN, i64::MAX)),
                Err(Invalid::TooOld { at_ms: i64::MIN }),
            ),
            (
                Usage,
                at(1, usage(NOW_MS, i64::MAX)),
                Err(Invalid::InFuture {
                    ahead_ms: i64::MAX - NOW_MS,
                }),
            ),
            (
                Usage,
                at(1, usage(EARLIEST_MS - 1, EARLIEST_MS)),
                Err(Invalid::TooOld {
                    at_ms: EARLIEST_MS - 1,
                }),
            ),
            (
                Usage,
                at(1, usage(EARLIEST_MS, EARLIEST_MS + 1)),
                ok.clone(),
            ),
            (
                Usage,
                at(1, usage(NOW_MS + MAX_AHEAD_MS - 1, NOW_MS + MAX_AHEAD_MS)),
                ok.clone(),
            ),
            (
                Usage,
                at(1, usage(NOW_MS, NOW_MS + MAX_AHEAD_MS + 1)),
                Err(Invalid::InFuture {
                    ahead_ms: MAX_AHEAD_MS + 1,
                }),
            ),
            // Year-1 and negative durations.
            (
                Sessions,
                at(1, activity(-62_135_596_800_000, NOW_MS)),
                Err(Invalid::TooOld {
                    at_ms: -62_135_596_800_000,
                }),
            ),
            (
                Sessions,
                at(1, activity(NOW_MS, NOW_MS - 3_600_000)),
                Err(Invalid::EndBeforeStart {
                    start_ms: NOW_MS,
                    end_ms: NOW_MS - 3_600_000,
                }),
            ),
            (
                Sessions,
                at(1, activity(NOW_MS - 2 * DAY_MS, NOW_MS)),
                Err(Invalid::SpanTooLong {
                    duration_ms: 2 * DAY_MS,
                }),
            ),
            // Session events.
            (
                Sessions,
                at(1, event(NOW_MS, SessionEventKind::Login)),
                ok.clone(),
            ),
            (
                Sessions,
                at(
                    1,
                    event(
                        NOW_MS,
                        SessionEventKind::Suspended {
                            gap_ms: 3 * DAY_MS as u64,
                        },
                    ),
                ),
                ok.clone(),
            ),
            (
                Sessions,
                at(
                    1,
                    event(NOW_MS, SessionEventKind::Suspended { gap_ms: u64::MAX }),
                ),
                Err(Invalid::SuspendTooLong { gap_ms: u64::MAX }),
            ),
            (
                Sessions,
                at(
                    1,
                    event(
                        NOW_MS,
                        SessionEventKind::ClockJump {
                            delta_ms: -3_600_000,
                        },
                    ),
                ),
                ok.clone(),
            ),
            (
                Sessions,
                at(
                    1,
                    event(NOW_MS, SessionEventKind::ClockJump { delta_ms: i64::MIN }),
                ),
                Err(Invalid::ClockJumpTooLarge { delta_ms: i64::MIN }),
            ),
            (
                Sessions,
                at(1, event(i64::MAX, SessionEventKind::Logout)),
                Err(Invalid::InFuture {
                    ahead_ms: i64::MAX - NOW_MS,
                }),
            ),
            // Health: percentages, used ≤ total, score, uptime.
            (Health, at(1, health(|_| {})), ok.clone()),
            (Health, at(1, health(|s| s.cpu_pct = 100.0)), ok.clone()),
            (
                Health,
                at(1, health(|s| s.cpu_pct = -5.0)),
                Err(Invalid::Percent {
                    field: "CPU",
                    value: -5.0,
                }),
            ),
            (
                Health,
                at(1, health(|s| s.cpu_pct = f32::INFINITY)),
                Err(Invalid::Percent {
                    field: "CPU",
                    value: f32::INFINITY,
                }),
            ),
            (
                Health,
                at(1, health(|s| s.score = 101)),
                Err(Invalid::Score { score: 101 }),
            ),
            (
                Health,
                at(1, health(|s| s.score = 255)),
                Err(Invalid::Score { score: 255 }),
            ),
            (
                Health,
                at(1, health(|s| s.disks[0].used_bytes = u64::MAX)),
                Err(Invalid::UsedOverTotal {
                    field: "disk",
                    used_bytes: u64::MAX,
                    total_bytes: 200,
                }),
            ),
            (
                Health,
                at(1, health(|s| s.mem_total_bytes = 0)),
                Err(Invalid::UsedOverTotal {
                    field: "memory",
                    used_bytes: 4 << 30,
                    total_bytes: 0,
                }),
            ),
            (
                Health,
                at(1, health(|s| s.uptime_secs = u64::MAX)),
                Err(Invalid::Uptime {
                    uptime_secs: u64::MAX,
                }),
            ),
            // Frames.
            (Frames, at(1, frame(|_| {})), ok.clone()),
            (
                Frames,
                at(1, frame(|m| m.width = 0)),
                Err(Invalid::FrameSide {
                    width: 0,
                    height: 720,
                }),
            ),
            (
                Frames,
                at(1, frame(|m| m.height = u32::MAX)),
                Err(Invalid::FrameSide {
                    width: 1280,
                    height: u32::MAX,
                }),
            ),
            (
                Frames,
                at(1, frame(|m| m.size_bytes = u32::MAX)),
                Err(Invalid::FrameBytes {
                    size_bytes: u32::MAX,
                }),
            ),
            (
                Frames,
                at(1, frame(|m| m.format = ImageFormat::WebP)),
                Err(Invalid::FrameFormat {
                    format: ImageFormat::WebP,
                }),
            ),
            // Gap markers name earlier records of their own stream.
            (Usage, at(9, gap(Usage, 3, 8)), ok.clone()),
            (
                Usage,
                at(9, gap(Usage, 3, 9)),
                Err(Invalid::GapRange {
                    seq: 9,
                    first_seq: 3,
                    last_seq: 9,
                }),
            ),
            (
                Usage,
                at(9, gap(Usage, 5, 4)),
                Err(Invalid::GapRange {
                    seq: 9,
                    first_seq: 5,
                    last_seq: 4,
                }),
            ),
            // An erasure's marker stands in for its own record; only an
            // erasure's, and only that one record.
            (Sessions, at(9, erased(Sessions, 9, 9)), ok.clone()),
            (
                Sessions,
                at(9, erased(Sessions, 8, 9)),
                Err(Invalid::GapRange {
                    seq: 9,
                    first_seq: 8,
                    last_seq: 9,
                }),
            ),
            (
                Sessions,
                at(9, erased(Sessions, 9, 10)),
                Err(Invalid::GapRange {
                    seq: 9,
                    first_seq: 9,
                    last_seq: 10,
                }),
            ),
            (
                Usage,
                at(9, gap(Usage, 0, 4)),
                Err(Invalid::GapRange {
                    seq: 9,
                    first_seq: 0,
                    last_seq: 4,
                }),
            ),
            (
                Usage,
                at(9, gap(Health, 1, 4)),
                Err(Invalid::GapStream {
                    named: Health,
                    stream: Usage,
                }),
            ),
            // Every kind in its own stream only.
            (
                Health,
                at(1, usage(NOW_MS, NOW_MS)),
                Err(Invalid::WrongStream {
                    record: "usage",
                    stream: Health,
                }),
            ),
            (
                Usage,
                at(1, activity(NOW_MS, NOW_MS)),
                Err(Invalid::WrongStream {
                    record: "activity",
                    stream: Usage,
                }),
            ),
            (
                Usage,
                at(1, frame(|_| {})),
                Err(Invalid::WrongStream {
                    record: "frame",
                    stream: Usage,
                }),
            ),
        ];
        for (stream, record, want) in cases {
            assert_eq!(
                check(stream, &record, NOW_MS),
                want,
                "{stream:?} {record:?}"
            );
        }
    }

    #[test]
    fn nan_percent_is_refused() {
        let record = at(1, health(|s| s.cpu_pct = f32::NAN));
        assert!(matches!(
            check(StreamKind::Health, &record, NOW_MS),
            Err(Invalid::Percent { field: "CPU", value }) if value.is_nan()
        ));
    }
}
