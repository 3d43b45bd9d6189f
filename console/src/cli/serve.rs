//! `smarttracker-console serve`: the engine without a window (background
//! sync, retention), listening on `DATA/console.sock` for windows and
//! command lines of the same user; stops on SIGTERM or SIGINT.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use console_engine::service::socket::{self, Broadcast, Welcome};
use console_engine::service::{Engine, EngineConfig};
use tokio::signal::unix::{signal, SignalKind};

use super::engine::{identity, open_store};

pub fn serve(data: &Path, mdns: bool, sync_interval: Option<Duration>) -> Result<()> {
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    // The lock first: a second `serve` is told who runs, not that the
    // store is busy.
    let (lock, listener) = socket::bind(data)?;
    let store = open_store(data)?;
    let identity = match identity(data)? {
        Some(identity) => Some(identity),
        None => {
            eprintln!(
                "warning: {}; serving without sync",
                console_engine::service::missing_identity(data)
            );
            None
        }
    };
    let events = Broadcast::new();
    let engine = Engine::start_with_sink(
        EngineConfig {
            store,
            identity,
            mdns,
            background: true,
            sync_interval,
            data_dir: data.to_owned(),
        },
        events.sink(),
    )?;
    let handle = engine.handle();
    let welcome = Welcome {
        version: socket::PROTOCOL_VERSION,
        role: handle.role(),
        day_clock: handle.day_clock(),
        pid: std::process::id(),
    };
    eprintln!(
        "serving {} on {} (pid {}); sync every {} s; stop with SIGTERM or Ctrl-C",
        data.display(),
        data.join(socket::SOCKET_FILE).display(),
        welcome.pid,
        handle
            .sync_interval()
            .map_or(0, |interval| interval.as_secs())
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let served = engine.block_on(async move {
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let serving = tokio::spawn(socket::serve(listener, handle, events, welcome, stop_rx));
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        eprintln!("stopping");
        let _ = stop_tx.send(true);
        match serving.await {
            Ok(result) => result.context("the console socket failed"),
            Err(join_error) => Err(anyhow::anyhow!("the console socket failed: {join_error}")),
        }
    })?;
    drop(engine);
    drop(lock);
    served
}
