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

/// Runs until `shutdown` turns true.
pub async fn run_periodic_screenshots(
    screen: Arc<Screen>,
    store: Arc<Store>,
    mut policy: watch::Receiver<Policy>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut settings = policy.borrow_and_update().screenshots;
    let mut revision = policy.borrow().revision;
    let mut next_due = Instant::now();
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
            Ok(seq) => (
                format!(
                    "policy revision {revision}: frames seq {seq}, {}x{}{}, {} bytes",
                    capture.image.meta.width,
                    capture.image.meta.height,
                    if settings.blur { ", blurred" } else { "" },
                    capture.image.meta.size_bytes
                ),
                true,
            ),
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
