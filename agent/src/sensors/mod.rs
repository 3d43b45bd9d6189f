//! Sensor seams: what the agent observes, behind traits so the tracker can be
//! fed by real Linux sensors, the labelled demo source, or test fakes.

pub mod session;
pub mod x11;

/// Why a sensor could not answer this time. Sensors are polled again on the
/// next tick; an error is logged, never fatal.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("cannot connect to the X display {display}: {reason}; is DISPLAY set and the X server running?")]
    Connect { display: String, reason: String },
    /// The connection broke (X server gone); reconnect before polling again.
    #[error("lost the connection to the X display {display}: {reason}")]
    Disconnected { display: String, reason: String },
    #[error("X11 request failed: {0}")]
    X11(String),
    #[error("the X server lacks the {0} extension")]
    MissingExtension(&'static str),
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
}

/// The window in front, as the sensor sees it (before normalisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSample {
    /// Process name from `_NET_WM_PID` (`/proc/PID/comm`), when known.
    pub process_name: Option<String>,
    /// `WM_CLASS` class part (second string), when set.
    pub wm_class: Option<String>,
    /// Window title (`_NET_WM_NAME` or `WM_NAME`); only read when the
    /// sensor is told titles are on, and dropped unless policy enables them.
    pub title: Option<String>,
}

impl WindowSample {
    /// The raw application name: the process name, else the window class.
    pub fn raw_app(&self) -> Option<&str> {
        self.process_name
            .as_deref()
            .or(self.wm_class.as_deref())
            .filter(|name| !name.is_empty())
    }
}

/// Which application window has the focus.
pub trait WindowSensor: Send {
    /// `Ok(None)` when no window has the focus (empty desktop).
    fn active_window(&mut self) -> Result<Option<WindowSample>, SensorError>;
}

/// User input idleness and screen lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleReading {
    /// Milliseconds since the last keyboard or pointer input.
    pub idle_ms: u64,
    /// The screen is locked (or the screen saver is active).
    pub locked: bool,
}

/// Seconds since last input and lock state.
pub trait IdleSensor: Send {
    fn idle(&mut self) -> Result<IdleReading, SensorError>;
}
