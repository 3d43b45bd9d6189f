//! Health history of one agent: the current sample, the last 24 h in one
//! level and one average, and chart series decimated so peaks survive.

use protocol::UnixMillis;

use crate::model::{HealthLevel, HealthPoint, DAY_MS};

/// One point of a chart series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    pub at_ms: UnixMillis,
    pub value: f32,
}

/// What the health page shows for one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSummary {
    /// Latest sample at or before `now_ms` (its `at_ms` says how fresh it is).
    pub current: Option<HealthPoint>,
    /// Worst level sampled in the 24 h up to `now_ms`.
    pub worst_level_24h: Option<HealthLevel>,
    /// Mean score sampled in the 24 h up to `now_ms`.
    pub avg_score_24h: Option<f64>,
    /// Series over every given sample, each at most `max_points` long.
    pub cpu_pct: Vec<SeriesPoint>,
    pub mem_pct: Vec<SeriesPoint>,
    pub disk_pct: Vec<SeriesPoint>,
    pub score: Vec<SeriesPoint>,
}

/// Summarises one agent's samples (any order) as of `now_ms`; series are
/// decimated to at most `max_points` points each (see [`decimate`]).
pub fn health_summary(
    points: &[HealthPoint],
    now_ms: UnixMillis,
    max_points: usize,
) -> HealthSummary {
    let mut sorted: Vec<&HealthPoint> = points.iter().collect();
    sorted.sort_by_key(|point| point.at_ms);
    let current = sorted
        .iter()
        .rev()
        .find(|point| point.at_ms <= now_ms)
        .map(|&point| point.clone());
    let last_day: Vec<&HealthPoint> = sorted
        .iter()
        .copied()
        .filter(|point| now_ms - DAY_MS < point.at_ms && point.at_ms <= now_ms)
        .collect();
    let worst_level_24h = last_day.iter().map(|point| point.level).max();
    let avg_score_24h = (!last_day.is_empty()).then(|| {
        last_day
            .iter()
            .map(|point| f64::from(point.score))
            .sum::<f64>()
            / last_day.len() as f64
    });
    let series = |value: fn(&HealthPoint) -> f32| {
        let raw: Vec<SeriesPoint> = sorted
            .iter()
            .map(|point| SeriesPoint {
                at_ms: point.at_ms,
                value: value(point),
            })
            .collect();
        decimate(&raw, max_points)
    };
    HealthSummary {
        current,
        worst_level_24h,
        avg_score_24h,
        cpu_pct: series(|point| point.cpu_pct),
        mem_pct: series(|point| point.mem_pct),
        disk_pct: series(|point| point.disk_pct),
        score: series(|point| f32::from(point.score)),
    }
}

/// Reduces a series in time order to at most `max_points` points for
/// plotting: the points are cut into `max_points / 2` buckets of equal count
/// and each bucket keeps its minimum and its maximum, in time order, so a
/// one-sample spike is never averaged away. A series already short enough is
/// returned as is; `max_points == 1` keeps the single highest point.
pub fn decimate(points: &[SeriesPoint], max_points: usize) -> Vec<SeriesPoint> {
    if points.len() <= max_points {
        return points.to_vec();
    }
    let highest = |bucket: &[SeriesPoint]| {
        bucket
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| a.value.total_cmp(&b.value))
            .map(|(index, _)| index)
    };
    let lowest = |bucket: &[SeriesPoint]| {
        bucket
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| a.value.total_cmp(&b.value))
            .map(|(index, _)| index)
    };
    match max_points {
        0 => return Vec::new(),
        1 => {
            return highest(points)
                .map(|index| vec![points[index]])
                .unwrap_or_default()
        }
        _ => {}
    }
    let buckets = max_points / 2;
    let mut kept = Vec::with_capacity(buckets * 2);
    for bucket_index in 0..buckets {
        let bucket = &points
            [bucket_index * points.len() / buckets..(bucket_index + 1) * points.len() / buckets];
        // points.len() > max_points >= 2 * buckets, so no bucket is empty.
        let (Some(low), Some(high)) = (lowest(bucket), highest(bucket)) else {
            continue;
        };
        kept.push(bucket[low.min(high)]);
        if low != high {
            kept.push(bucket[low.max(high)]);
        }
    }
    kept
}
