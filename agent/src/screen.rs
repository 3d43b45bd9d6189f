//! The workstation's screen as the server and the periodic screenshot task
//! share it: one capturer, opened when first needed and reopened after a
//! failure (the X server may start after the agent, or restart).

use std::sync::{Mutex, PoisonError};

use protocol::CaptureSpec;

use crate::capture::{Capture, CaptureError, Capturer, ScreenSource};

/// Opens a capturer; called again after every failure.
type Opener = Box<dyn Fn() -> Result<Capturer, CaptureError> + Send + Sync>;

/// One capture at a time, from blocking code (a capture takes
/// milliseconds of X11 round trips and encoding).
pub struct Screen {
    open: Opener,
    capturer: Mutex<Option<Capturer>>,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("capturer", &self.capturer)
            .finish_non_exhaustive()
    }
}

impl Screen {
    /// A screen captured from `source`, opened on first use.
    pub fn new(source: impl Fn() -> ScreenSource + Send + Sync + 'static) -> Self {
        Screen {
            open: Box::new(move || Capturer::open(source())),
            capturer: Mutex::new(None),
        }
    }

    /// See [`Capturer::capture`]. A failed capture closes the capturer so
    /// the next one starts afresh.
    pub fn capture(
        &self,
        spec: &CaptureSpec,
        blur: bool,
        previous_hash: Option<u64>,
        at_ms: i64,
    ) -> Result<Option<Capture>, CaptureError> {
        let mut slot = self.capturer.lock().unwrap_or_else(PoisonError::into_inner);
        let capturer = match slot.as_mut() {
            Some(capturer) => capturer,
            None => slot.insert((self.open)()?),
        };
        let result = capturer.capture(spec, blur, previous_hash, at_ms);
        if result.is_err() {
            *slot = None;
        }
        result
    }
}
