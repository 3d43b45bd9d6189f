//! Where a command on the store runs: in `serve` over its socket when one
//! runs on the data directory, else in an engine started here for this
//! command only. Either way the same [`CliRequest`] runs the same code
//! (`console_engine::commands`); this side only writes what comes back.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use certs::{AgentIdentity, ConsoleIdentity};
use console_engine::commands::{CliOutput, CliRequest, Output};
use console_engine::config::CONFIG_FILE;
use console_engine::model::ZoneSource;
use console_engine::service::socket;
use console_engine::service::{Engine, EngineConfig};
use console_engine::settings::site_clock_of;
use console_engine::store::ConsoleStore;
use console_engine::{IDENTITY_DIR, STORE_DIR};

/// Opens the store of `data` (a store another process holds is named),
/// with day totals in the site's zone (`console.toml`, else this
/// machine's); a zone change since the last open regroups them first.
pub fn open_store(data: &Path) -> Result<Arc<ConsoleStore>> {
    let (clock, source) = site_clock_of(data)?;
    if let ZoneSource::Fallback { reason } = source {
        eprintln!(
            "warning: {reason}; days are counted in UTC until site.time_zone is set in {}",
            data.join(CONFIG_FILE).display()
        );
    }
    let dir = data.join(STORE_DIR);
    let zone = clock.name().to_owned();
    let store = ConsoleStore::open_with_progress(&dir, clock, |done, total| {
        if total > 0 {
            eprintln!("regrouping day totals in {zone}: {done}/{total} workstations");
        }
    })
    .with_context(|| {
        format!(
            "cannot open the console store {} (if a console window has it open, run `smarttracker-console serve` so windows and commands share it)",
            dir.display()
        )
    })?;
    Ok(Arc::new(store))
}

/// The console identity of `data`: `Ok(None)` when there is none yet.
pub fn identity(data: &Path) -> Result<Option<ConsoleIdentity>> {
    let dir = data.join(IDENTITY_DIR);
    if !dir.exists() {
        return Ok(None);
    }
    ConsoleIdentity::read(&dir)
        .map(Some)
        .with_context(|| format!("cannot read the console identity in {}", dir.display()))
}

/// The certificate (DER) and name of an agent's enrolment bundle, or of a
/// certificate PEM file. The bundle's private key stays in this process.
pub fn read_agent_certificate(file: &Path) -> Result<(Vec<u8>, Option<String>)> {
    match AgentIdentity::read_bundle(file) {
        Ok(bundle) => Ok((bundle.cert_der.to_vec(), bundle.name)),
        Err(bundle_error) => {
            let pem =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut reader = std::io::BufReader::new(pem.as_slice());
            let first = rustls_pemfile::certs(&mut reader)
                .next()
                .and_then(Result::ok);
            let cert = first.ok_or_else(|| {
                anyhow!(
                    "{} is neither an agent bundle ({bundle_error}) nor a certificate PEM; give the file smarttracker-certs agent wrote",
                    file.display()
                )
            })?;
            Ok((cert.to_vec(), None))
        }
    }
}

/// Where a command's data goes.
#[derive(Debug)]
pub enum Destination {
    Stdout,
    /// Written as it comes.
    File {
        path: PathBuf,
        file: std::fs::File,
    },
    /// Kept in memory for the caller (see [`run_kept`]).
    Kept(Arc<Mutex<Vec<u8>>>),
    /// Kept, then written at once, mode 0600, when the command succeeded;
    /// the command's messages then follow `wrote PATH: ` on standard output.
    PrivateFile {
        path: PathBuf,
        bytes: Vec<u8>,
        messages: Vec<String>,
    },
}

impl Destination {
    /// `path` (created now, so a bad path fails before any work), or
    /// standard output.
    pub fn file_or_stdout(path: Option<PathBuf>) -> Result<Destination> {
        let Some(path) = path else {
            return Ok(Destination::Stdout);
        };
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Destination::File {
            path: absolute(&path),
            file,
        })
    }

    pub fn private_file(path: PathBuf) -> Result<Destination> {
        if path.file_name().is_none() {
            bail!("{} does not name a file", path.display());
        }
        Ok(Destination::PrivateFile {
            path: absolute(&path),
            bytes: Vec::new(),
            messages: Vec::new(),
        })
    }

    /// How the audit log and the messages name it.
    pub fn describe(&self) -> String {
        match self {
            Destination::Stdout => "standard output".to_owned(),
            Destination::Kept(_) => "memory".to_owned(),
            Destination::File { path, .. } | Destination::PrivateFile { path, .. } => {
                path.display().to_string()
            }
        }
    }

    /// The file it names, `None` for standard output.
    pub fn file_name(&self) -> Option<String> {
        match self {
            Destination::Stdout | Destination::Kept(_) => None,
            _ => Some(self.describe()),
        }
    }

    fn take(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Destination::Stdout => std::io::stdout().lock().write_all(bytes),
            Destination::File { file, .. } => file.write_all(bytes),
            Destination::Kept(kept) => {
                kept.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(bytes);
                Ok(())
            }
            Destination::PrivateFile { bytes: kept, .. } => {
                kept.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    fn say(&mut self, text: String) {
        match self {
            Destination::PrivateFile { messages, .. } => messages.push(text),
            _ => eprintln!("{text}"),
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Destination::Stdout => std::io::stdout()
                .lock()
                .flush()
                .context("cannot write the output"),
            Destination::Kept(_) => Ok(()),
            Destination::File { path, file } => file
                .sync_all()
                .with_context(|| format!("cannot write {}", path.display())),
            Destination::PrivateFile {
                path,
                bytes,
                messages,
            } => {
                write_private_file(&path, &bytes)?;
                println!("wrote {}: {}", path.display(), messages.join("; "));
                Ok(())
            }
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// A command of the command line, and where its data goes.
#[derive(Debug)]
pub struct StoreCommand {
    request: CliRequest,
    destination: Destination,
    needs_identity: bool,
}

impl StoreCommand {
    pub fn new(request: CliRequest) -> StoreCommand {
        StoreCommand {
            request,
            destination: Destination::Stdout,
            needs_identity: false,
        }
    }

    pub fn to(mut self, destination: Destination) -> StoreCommand {
        self.destination = destination;
        self
    }

    /// An unreadable identity is an error (not only a missing one).
    pub fn needs_identity(mut self) -> StoreCommand {
        self.needs_identity = true;
        self
    }
}

/// Whether a `serve` runs on `data` (and may be attached to).
pub fn serve_runs(data: &Path) -> Result<bool> {
    Ok(socket::attach(data, false)?.is_some())
}

/// Runs `command` in `serve` if one runs on `data`, else here.
pub fn run(data: &Path, command: StoreCommand) -> Result<()> {
    match socket::attach(data, false)? {
        Some(attached) => run_attached(attached, command),
        None => {
            let engine = start_here(data, command.needs_identity)?;
            run_here(&engine, command)
        }
    }
}

/// Where a long-running command (an open enrolment) sends its store
/// commands: to `serve` when one runs (attached per command), else to one
/// engine started here and kept for the whole run.
pub enum Runner {
    Serve,
    Here(Engine),
}

impl Runner {
    pub fn for_data(data: &Path) -> Result<Runner> {
        if serve_runs(data)? {
            Ok(Runner::Serve)
        } else {
            Ok(Runner::Here(start_here(data, false)?))
        }
    }

    pub fn run(&self, data: &Path, command: StoreCommand) -> Result<()> {
        match self {
            Runner::Serve => match socket::attach(data, false)? {
                Some(attached) => run_attached(attached, command),
                None => bail!("`serve` on {} stopped", data.display()),
            },
            Runner::Here(engine) => run_here(engine, command),
        }
    }
}

/// Runs `request` like [`run`] and returns its data instead of writing it.
pub fn run_kept(data: &Path, request: CliRequest) -> Result<Vec<u8>> {
    let kept = Arc::new(Mutex::new(Vec::new()));
    run(
        data,
        StoreCommand::new(request).to(Destination::Kept(kept.clone())),
    )?;
    let bytes = std::mem::take(&mut *kept.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(bytes)
}

/// Runs `command` every `interval` (else as `console.toml` says) in an
/// engine started here (`sync` without `serve`); a failed run is told and
/// the next one follows.
pub fn run_every(data: &Path, command: StoreCommand, interval: Option<Duration>) -> Result<()> {
    let engine = start_here(data, command.needs_identity)?;
    let interval = interval.unwrap_or(Duration::from_secs(
        engine.handle().settings().sync_interval_secs,
    ));
    loop {
        let once = StoreCommand {
            request: command.request.clone(),
            destination: Destination::Stdout,
            needs_identity: command.needs_identity,
        };
        if let Err(error) = run_here(&engine, once) {
            eprintln!("warning: {error:#}");
        }
        std::thread::sleep(interval);
    }
}

fn run_attached(mut attached: socket::Attached, command: StoreCommand) -> Result<()> {
    let mut destination = command.destination;
    let mut write_error = None;
    let result = attached.run(command.request, |piece| match piece {
        CliOutput::Data(bytes) => {
            if write_error.is_none() {
                write_error = destination.take(&bytes).err();
            }
        }
        CliOutput::Message(text) => destination.say(text),
    })?;
    finish(result, write_error, destination)
}

fn start_here(data: &Path, needs_identity: bool) -> Result<Engine> {
    let store = open_store(data)?;
    let identity = match identity(data) {
        Ok(identity) => identity,
        Err(error) if needs_identity => return Err(error),
        Err(_) => None,
    };
    Ok(Engine::start(EngineConfig {
        store,
        identity,
        mdns: false,
        background: false,
        sync_interval: None,
        data_dir: data.to_owned(),
    })?)
}

fn run_here(engine: &Engine, command: StoreCommand) -> Result<()> {
    let destination = Arc::new(Mutex::new((command.destination, None)));
    let sink = destination.clone();
    let output: Output = Arc::new(move |piece| match piece {
        CliOutput::Data(bytes) => {
            let mut guard = sink.lock().unwrap_or_else(PoisonError::into_inner);
            let (destination, write_error) = &mut *guard;
            if write_error.is_none() {
                *write_error = destination.take(&bytes).err();
            }
        }
        CliOutput::Message(text) => sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .say(text),
    });
    let result = engine.run_command(command.request, output);
    let (destination, write_error) = Arc::try_unwrap(destination)
        .map_err(|_| anyhow!("the command's output is still in use"))?
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    finish(result, write_error, destination)
}

fn finish(
    result: Result<(), String>,
    write_error: Option<std::io::Error>,
    destination: Destination,
) -> Result<()> {
    if let Some(error) = write_error {
        bail!("cannot write {}: {error}", destination.describe());
    }
    result.map_err(|error| anyhow!(error))?;
    destination.finish()
}

/// Writes `bytes` to `path` atomically (a new file, mode 0600, renamed over
/// `path` once durable).
fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}
