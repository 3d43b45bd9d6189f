//! SmartTracker console app: the manager's window (egui) over the
//! headless engine (`console_engine`), in this process or attached to
//! `smarttracker-console serve`.

pub mod app;
pub mod ui;
