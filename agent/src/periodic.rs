//! Periodic screenshots, taken only while the policy enables them: one at
//! once when enabled, then one every `interval_secs`, each kept in the
//! store's frames stream and written to the access log.

use std::sync::Arc;
use std::time::Duration;

use protocol::{CaptureSpec, Policy, ScreenshotPolicy};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::capture::SCREENSHOT_QUALITY;
use crate::clock::wall_now_ms;
use crate::screen::Screen;
use crate::store::{AccessEntry, Store};

/// Size of a periodic screenshot: readable, yet a fraction of a full frame.
pub const PERIODIC_SPEC: CaptureSpec = CaptureSpec {
    monitor: None,
    max_width: 1280,
    max_height: 720,
    quality: SCREENSHOT_QUALITY,
};

/// After a failed capture, the next attempt waits at least this long.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Store meta key: wall time of the last periodic screenshot, so a
/// restarted agent keeps the interval instead of taking one at once.
const LAST_TAKEN_META: &str = "periodic_screenshot_last_ms";

/// Runs until `shutdown` turns true.
pub async fn run_periodic_screenshots(
    screen: Arc<Screen>,
    store: Arc<Store>,
    mut policy: watch::Receiver<Policy>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut settings = policy.borrow_and_update().screenshots;
    let mut revision = policy.borrow().revision;
    let mut next_due = Instant::now() + resume_delay(&store, settings.interval_secs, wall_now_ms());
    loop {
        if settings.enabled {
            tokio::select! {
                _ = tokio::time::sleep_until(next_due) => {
                    let taken = take_one(&screen, &store, settings, revision).await;
                    let interval = Duration::from_secs(u64::from(settings.interval_secs.max(1)));
                    next_due = Instant::now() + if taken { interval } else { interval.min(RETRY_AFTER) };
                    continue;
                }
                changed = policy.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
        } else {
            tokio::select! {
                changed = policy.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
        let current = policy.borrow_and_update().clone();
        revision = current.revision;
        if current.screenshots != settings {
            // Newly enabled or changed: the first screenshot is immediate.
            settings = current.screenshots;
            next_due = Instant::now();
        }
    }
}

/// How long a starting agent waits for its first periodic screenshot: what
/// is left of the interval since the last one (none if never, or if the
/// clock went back).
fn resume_delay(store: &Store, interval_secs: u32, now_ms: i64) -> Duration {
    let last_ms = match store.get_meta(LAST_TAKEN_META) {
        Ok(Some(bytes)) => <[u8; 8]>::try_from(bytes.as_slice())
            .map(i64::from_be_bytes)
            .ok(),
        Ok(None) => None,
        Err(store_error) => {
            tracing::warn!(%store_error, "cannot read when the last periodic screenshot was taken");
            None
        }
    };
    let interval_ms = i64::from(interval_secs) * 1000;
    let left_ms = last_ms.map_or(0, |last_ms| {
        let elapsed_ms = now_ms - last_ms;
        if (0..interval_ms).contains(&elapsed_ms) {
            interval_ms - elapsed_ms
        } else {
            0
        }
    });
    Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))
}

/// Captures, stores and logs one screenshot; false when it failed.
async fn take_one(
    screen: &Arc<Screen>,
    store: &Arc<Store>,
    settings: ScreenshotPolicy,
    revision: u64,
) -> bool {
    let screen = screen.clone();
    let at_ms = wall_now_ms();
    let captured = tokio::task::spawn_blocking(move || {
        screen.capture(&PERIODIC_SPEC, settings.blur, None, at_ms)
    })
    .await;
    let (detail, taken) = match captured {
        Ok(Ok(Some(capture))) => match store.append_frame(&capture.image) {
            Ok(seq) => {
                if let Err(store_error) = store.put_meta(LAST_TAKEN_META, &at_ms.to_be_bytes()) {
                    tracing::warn!(%store_error, "cannot note when the periodic screenshot was taken");
                }
                (
                    format!(
                        "policy revision {revision}: frames seq {seq}, {}x{}{}, {} bytes",
                        capture.image.meta.width,
                        capture.image.meta.height,
                        if settings.blur { ", blurred" } else { "" },
                        capture.image.meta.size_bytes
                    ),
                    true,
                )
            }
            Err(store_error) => {
                tracing::error!(%store_error, "cannot keep a periodic screenshot");
                (format!("not kept: {store_error}"), false)
            }
        },
        Ok(Ok(None)) => ("capturer reported no change".to_owned(), false),
        Ok(Err(capture_error)) => {
            tracing::warn!(%capture_error, "periodic screenshot failed");
            (format!("capture failed: {capture_error}"), false)
        }
        Err(join_error) => {
            tracing::error!(%join_error, "periodic screenshot task failed");
            ("capture task failed".to_owned(), false)
        }
    };
    let entry = AccessEntry {
        at_ms,
        console_id: "policy".to_owned(),
        console_name: String::new(),
        role: "policy".to_owned(),
        request: "periodic-screenshot".to_owned(),
        detail,
        allowed: true,
    };
    if let Err(store_error) = store.log_access(&entry) {
        tracing::error!(%store_error, "cannot write the access log");
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Quotas;

    #[test]
    fn a_restarted_agent_keeps_the_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), Quotas::default()).expect("store");
        let now_ms = 1_800_000_000_000;
        assert_eq!(
            resume_delay(&store, 600, now_ms),
            Duration::ZERO,
            "never taken"
        );
        store
            .put_meta(LAST_TAKEN_META, &(now_ms - 100_000).to_be_bytes())
            .expect("meta");
        assert_eq!(
            resume_delay(&store, 600, now_ms),
            Duration::from_secs(500),
            "the rest of the interval"
        );
        assert_eq!(resume_delay(&store, 60, now_ms), Duration::ZERO, "overdue");
        assert_eq!(
            resume_delay(&store, 600, now_ms - 200_000),
            Duration::ZERO,
            "the clock went back"
        );
    }
}
