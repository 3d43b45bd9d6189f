//! `smarttracker-console gui`: the window, attached to `serve` when one
//! runs on the data directory, else over an engine of its own that syncs
//! in the background while the window is open.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use certs::ConsoleIdentity;
use console::app::{ConsoleApp, Screen};
use console_engine::service::socket;
use console_engine::service::{Engine, EngineConfig, Link};
use console_engine::store::ConsoleStore;

use super::engine::{identity, open_store};

/// Opens the window on `data`; returns when it is closed.
pub fn gui(data: &Path, mdns: bool, screen: Screen, sync_interval: Option<Duration>) -> Result<()> {
    if let Some(attached) = socket::attach(data, true)? {
        eprintln!(
            "attached to smarttracker-console serve (pid {}) on {}",
            attached.welcome().pid,
            data.display()
        );
        return open_window(Link::Attached(attached.into_remote()?), screen);
    }
    let store = open_store(data)?;
    let identity = match identity(data) {
        Ok(Some(identity)) => Some(identity),
        Ok(None) => {
            eprintln!(
                "warning: {}; the window opens without sync",
                console_engine::service::missing_identity(data)
            );
            None
        }
        Err(error) => {
            eprintln!("warning: {error:#}; the window opens without sync");
            None
        }
    };
    open_window(
        in_process(data, store, identity, mdns, sync_interval)?,
        screen,
    )
}

/// An engine in this process that syncs in the background (every
/// `sync_interval`, else as `console.toml` says).
pub fn in_process(
    data: &Path,
    store: Arc<ConsoleStore>,
    identity: Option<ConsoleIdentity>,
    mdns: bool,
    sync_interval: Option<Duration>,
) -> Result<Link> {
    Ok(Link::InProcess(Engine::start(EngineConfig {
        store,
        identity,
        mdns,
        background: true,
        sync_interval,
        data_dir: data.to_owned(),
    })?))
}

/// Opens the window on `engine`; returns when it is closed.
pub fn open_window(engine: Link, screen: Screen) -> Result<()> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("SmartTracker")
            .with_inner_size([1600.0, 1000.0]),
        ..Default::default()
    };
    eframe::run_native(
        "SmartTracker console",
        native,
        Box::new(move |_creation| Ok(Box::new(ConsoleApp::new(engine, screen)))),
    )
    .map_err(|error| anyhow!("cannot open the console window: {error}"))
}
