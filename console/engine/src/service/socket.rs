//! The local socket `smarttracker-console serve` listens on
//! (`DATA/console.sock`, mode 0600, same user only): windows and command
//! lines attach to the running engine with the same [`Command`]s and
//! [`Event`]s an in-process engine takes and gives.
//!
//! Frames are a little-endian `u32` length then a bincode body, each
//! capped at [`MAX_FRAME_BYTES`] before anything is allocated. One
//! `serve` per data directory: it holds an advisory lock on
//! `DATA/serve.lock`, which the kernel releases when the process ends
//! however it ends, so a killed `serve` never blocks the next one.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use certs::Role;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};

use super::{Command, EngineHandle, Event, EventSink, Waker};
use crate::commands::{CliOutput, CliRequest, Output};
use crate::live::LiveWatch;
use crate::model::DayClock;

/// The socket inside the data directory.
pub const SOCKET_FILE: &str = "console.sock";
/// The lock file a running `serve` holds (its pid inside, for messages).
pub const LOCK_FILE: &str = "serve.lock";
/// Bumped when [`ToServe`] or [`FromServe`] change incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest frame either side reads (a decoded screenshot is at most
/// 2048 × 2048 RGBA, 16 MiB).
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;
/// A frame is read in pieces of at most this, so a length announced and
/// never sent allocates nothing.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// How long a new connection has to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Events queued for one attached window; one that falls further behind
/// is disconnected (it attaches again and refreshes).
pub const EVENT_BACKLOG: usize = 4096;

/// What a window or a command line sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToServe {
    /// First frame. `subscribe`: receive every event (a window), not only
    /// the output of this connection's own commands (a command line).
    Hello {
        version: u32,
        subscribe: bool,
    },
    Command(Command),
}

/// What `serve` sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromServe {
    Welcome(Welcome),
    /// The connection is refused; the text says why.
    Refused(String),
    Event(Event),
}

/// What an attached client learns first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub version: u32,
    /// `None`: the console has no identity (shows, cannot sync).
    pub role: Option<Role>,
    pub day_clock: DayClock,
    pub pid: u32,
}

/// Why `serve` cannot start, or a client cannot attach.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another `smarttracker-console serve` (pid {pid}) already runs on {data}: stop it first (`systemctl --user stop smarttracker-console`, or kill {pid})")]
    AlreadyServing { data: PathBuf, pid: String },
    #[error("{path}: {why}; refusing to attach to it (remove it if no `serve` of yours runs)")]
    Unsafe { path: PathBuf, why: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`serve` refused this connection: {0}")]
    Refused(String),
    #[error("`serve` speaks protocol {theirs}, this program {ours}: use the same version of smarttracker-console for both")]
    Version { theirs: u32, ours: u32 },
    #[error("bad frame on the console socket: {0}")]
    Frame(String),
    #[error("`serve` closed the connection")]
    Closed,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SocketError + '_ {
    move |source| SocketError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The lock a running `serve` holds; released when dropped or when the
/// process ends.
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
    socket: PathBuf,
}

impl Drop for ServeLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Takes the data directory's `serve` lock and binds its socket (a socket
/// file left by a killed `serve` is replaced). Mode 0600.
pub fn bind(data_dir: &Path) -> Result<(ServeLock, std::os::unix::net::UnixListener), SocketError> {
    let lock_path = data_dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Err(SocketError::AlreadyServing {
            data: data_dir.to_owned(),
            pid: pid.trim().to_owned(),
        });
    }
    file.set_len(0).map_err(io_error(&lock_path))?;
    writeln!(file, "{}", std::process::id()).map_err(io_error(&lock_path))?;
    let socket = data_dir.join(SOCKET_FILE);
    match std::fs::remove_file(&socket) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(&socket)(error)),
    }
    let listener = std::os::unix::net::UnixListener::bind(&socket).map_err(io_error(&socket))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io_error(&socket))?;
    listener.set_nonblocking(true).map_err(io_error(&socket))?;
    Ok((
        ServeLock {
            _file: file,
            socket: socket.clone(),
        },
        listener,
    ))
}

/// Encodes one frame.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, SocketError> {
    let body = bincode::serde::encode_to_vec(message, bincode::config::standard())
        .map_err(|error| SocketError::Frame(error.to_string()))?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(SocketError::Frame(format!(
            "{} bytes is more than the {MAX_FRAME_BYTES} a frame may hold",
            body.len()
        )));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Decodes one frame's body.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, SocketError> {
    let config = bincode::config::standard().with_limit::<MAX_FRAME_BYTES>();
    match bincode::serde::decode_from_slice(body, config) {
        Ok((message, used)) if used == body.len() => Ok(message),
        Ok(_) => Err(SocketError::Frame("bytes after the message".to_owned())),
        Err(error) => Err(SocketError::Frame(error.to_string())),
    }
}

fn frame_length(header: [u8; 4]) -> Result<usize, SocketError> {
    let length = u32::from_le_bytes(header) as usize;
    if length > MAX_FRAME_BYTES {
        return Err(SocketError::Frame(format!(
            "a frame of {length} bytes is announced; at most {MAX_FRAME_BYTES}"
        )));
    }
    Ok(length)
}

/// A frame's body as it arrives: it grows by at most [`READ_CHUNK_BYTES`]
/// per read, so a length announced and never sent allocates nothing.
struct Body {
    bytes: Vec<u8>,
    length: usize,
}

impl Body {
    /// What the header's read gave: `Ok(None)` at a clean end.
    fn after_header(
        read: std::io::Result<()>,
        header: [u8; 4],
    ) -> Result<Option<Body>, SocketError> {
        match read {
            Ok(()) => Ok(Some(Body {
                bytes: Vec::new(),
                length: frame_length(header)?,
            })),
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(error) => Err(SocketError::Frame(error.to_string())),
        }
    }

    /// The next piece to fill, `None` once the body is whole.
    fn next_piece(&mut self) -> Option<&mut [u8]> {
        let start = self.bytes.len();
        let piece = (self.length - start).min(READ_CHUNK_BYTES);
        if piece == 0 {
            return None;
        }
        self.bytes.resize(start + piece, 0);
        Some(&mut self.bytes[start..])
    }
}

fn frame_error(error: std::io::Error) -> SocketError {
    SocketError::Frame(error.to_string())
}

/// Reads one frame's body (blocking); `Ok(None)` at a clean end.
fn read_frame(stream: &mut impl Read) -> Result<Option<Vec<u8>>, SocketError> {
    let mut header = [0u8; 4];
    let read = stream.read_exact(&mut header);
    let Some(mut body) = Body::after_header(read, header)? else {
        return Ok(None);
    };
    while let Some(piece) = body.next_piece() {
        stream.read_exact(piece).map_err(frame_error)?;
    }
    Ok(Some(body.bytes))
}

/// Reads one frame's body (async); `Ok(None)` at a clean end.
async fn read_frame_async(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<Option<Vec<u8>>, SocketError> {
    let mut header = [0u8; 4];
    let read = stream.read_exact(&mut header).await.map(drop);
    let Some(mut body) = Body::after_header(read, header)? else {
        return Ok(None);
    };
    while let Some(piece) = body.next_piece() {
        stream.read_exact(piece).await.map_err(frame_error)?;
    }
    Ok(Some(body.bytes))
}

/// Events encoded once for every subscribed connection.
#[derive(Debug, Clone)]
pub struct Broadcast(broadcast::Sender<Arc<Vec<u8>>>);

impl Broadcast {
    pub fn new() -> Broadcast {
        Broadcast(broadcast::channel(EVENT_BACKLOG).0)
    }

    /// The sink an engine run by `serve` sends its events to.
    pub fn sink(&self) -> EventSink {
        let sender = self.0.clone();
        Arc::new(move |event| match encode(&FromServe::Event(event)) {
            Ok(frame) => {
                let _ = sender.send(Arc::new(frame));
            }
            Err(error) => tracing::warn!(%error, "an event could not be sent to attached windows"),
        })
    }
}

impl Default for Broadcast {
    fn default() -> Self {
        Broadcast::new()
    }
}

/// Accepts connections until `stop` turns true; each is served on its own
/// task. Runs on the engine's runtime.
pub async fn serve(
    listener: std::os::unix::net::UnixListener,
    engine: EngineHandle,
    events: Broadcast,
    welcome: Welcome,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::UnixListener::from_std(listener)?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept on the console socket failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let connection = Connection {
                    engine: engine.clone(),
                    events: events.0.subscribe(),
                    welcome: welcome.clone(),
                    stop: stop.clone(),
                };
                tokio::spawn(connection.run(stream));
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// One attached window or command line.
struct Connection {
    engine: EngineHandle,
    events: broadcast::Receiver<Arc<Vec<u8>>>,
    welcome: Welcome,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: tokio::net::UnixStream) {
        let (mut reader, mut writer) = stream.into_split();
        let own_uid = rustix::process::geteuid().as_raw();
        let peer_uid = reader.as_ref().peer_cred().map(|cred| cred.uid());
        if peer_uid.as_ref().ok() != Some(&own_uid) {
            let refusal = format!(
                "only the user running `serve` (uid {own_uid}) may attach; this connection is from {}",
                match peer_uid {
                    Ok(uid) => format!("uid {uid}"),
                    Err(error) => format!("an unknown user ({error})"),
                }
            );
            tracing::warn!(%refusal, "console socket connection refused");
            send_now(&mut writer, &FromServe::Refused(refusal)).await;
            return;
        }
        let hello = tokio::time::timeout(HELLO_TIMEOUT, read_frame_async(&mut reader)).await;
        let subscribe = match hello.map(|frame| frame.map(|body| body.map(|body| decode(&body)))) {
            Ok(Ok(Some(Ok(ToServe::Hello { version, subscribe }))))
                if version == PROTOCOL_VERSION =>
            {
                subscribe
            }
            Ok(Ok(Some(Ok(ToServe::Hello { version, .. })))) => {
                let refusal = SocketError::Version {
                    theirs: PROTOCOL_VERSION,
                    ours: version,
                };
                send_now(&mut writer, &FromServe::Refused(refusal.to_string())).await;
                return;
            }
            _ => {
                let refusal = "no valid hello within 5 s".to_owned();
                send_now(&mut writer, &FromServe::Refused(refusal)).await;
                return;
            }
        };
        // The site's zone may have changed since `serve` started.
        let welcome = Welcome {
            day_clock: self.engine.day_clock(),
            ..self.welcome.clone()
        };
        if !send_now(&mut writer, &FromServe::Welcome(welcome)).await {
            return;
        }
        // One writer: this connection's own outputs and, when subscribed,
        // every event.
        let (own_tx, mut own_rx) = mpsc::channel::<Arc<Vec<u8>>>(EVENT_BACKLOG);
        let write_task = tokio::spawn(async move {
            while let Some(frame) = own_rx.recv().await {
                if writer.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        // The live watch this window asked for last: ended when it goes,
        // as a window of the engine's own process ends its watch on close.
        let mut watching: Option<LiveWatch> = None;
        loop {
            tokio::select! {
                frame = read_frame_async(&mut reader) => match frame {
                    Ok(Some(body)) => match decode::<ToServe>(&body) {
                        Ok(ToServe::Command(Command::Run(request))) => {
                            tokio::spawn(run_request(self.engine.clone(), request, own_tx.clone()));
                        }
                        Ok(ToServe::Command(Command::Live(watch))) => {
                            watching = Some(watch.clone());
                            self.engine.send(Command::Live(watch));
                        }
                        Ok(ToServe::Command(command)) => self.engine.send(command),
                        Ok(ToServe::Hello { .. }) => {}
                        Err(error) => {
                            tracing::warn!(%error, "bad frame on the console socket");
                            break;
                        }
                    },
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "console socket connection failed");
                        break;
                    }
                },
                event = self.events.recv(), if subscribe => match event {
                    Ok(frame) => {
                        if own_tx.try_send(frame).is_err() {
                            tracing::warn!("an attached window does not read its events; disconnected");
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "an attached window fell behind; disconnected");
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = self.stop.changed() => break,
            }
        }
        if let Some(watch) = watching.filter(|watch| !watch.agents.is_empty()) {
            self.engine.send(Command::Live(LiveWatch {
                mode: watch.mode,
                agents: Vec::new(),
            }));
        }
        drop(own_tx);
        let _ = write_task.await;
    }
}

/// Runs a command line's request; its output and end go back to that
/// connection only.
///
/// Output the command line does not take in time (more than
/// [`EVENT_BACKLOG`] pieces behind) ends the request with an error rather
/// than growing without bound.
async fn run_request(
    engine: EngineHandle,
    request: CliRequest,
    frames: mpsc::Sender<Arc<Vec<u8>>>,
) {
    let to_client = frames.clone();
    let overrun = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let overran = overrun.clone();
    let output: Output = Arc::new(move |piece| {
        if let Ok(frame) = encode(&FromServe::Event(Event::Output(piece))) {
            if to_client.try_send(Arc::new(frame)).is_err() {
                overran.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    let mut result = engine.execute(request, output).await;
    if overrun.load(std::sync::atomic::Ordering::SeqCst) {
        result = Err("the output was not read in time; run the command again".to_owned());
    }
    if let Ok(frame) = encode(&FromServe::Event(Event::Finished(result))) {
        let _ = frames.send(Arc::new(frame)).await;
    }
}

async fn send_now(writer: &mut tokio::net::unix::OwnedWriteHalf, message: &FromServe) -> bool {
    match encode(message) {
        Ok(frame) => writer.write_all(&frame).await.is_ok(),
        Err(_) => false,
    }
}

/// Checks that `path` is a socket of this user that nobody else may use.
fn check_socket(path: &Path) -> Result<(), SocketError> {
    let metadata = std::fs::metadata(path).map_err(io_error(path))?;
    let unsafe_because = |why: String| SocketError::Unsafe {
        path: path.to_owned(),
        why,
    };
    if !metadata.file_type().is_socket() {
        return Err(unsafe_because("not a socket".to_owned()));
    }
    let own_uid = rustix::process::geteuid().as_raw();
    if metadata.uid() != own_uid {
        return Err(unsafe_because(format!(
            "owned by uid {}, not by you (uid {own_uid})",
            metadata.uid()
        )));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(unsafe_because(format!(
            "mode {mode:o} lets other users connect (a `serve` makes it 0600)"
        )));
    }
    Ok(())
}

/// A connection to a running `serve`.
#[derive(Debug)]
pub struct Attached {
    stream: UnixStream,
    welcome: Welcome,
}

/// Attaches to the `serve` running on `data_dir`; `Ok(None)` when none
/// runs (no socket, or one left by a `serve` that died).
pub fn attach(data_dir: &Path, subscribe: bool) -> Result<Option<Attached>, SocketError> {
    let path = data_dir.join(SOCKET_FILE);
    if !path.exists() {
        return Ok(None);
    }
    check_socket(&path)?;
    let mut stream = match UnixStream::connect(&path) {
        Ok(stream) => stream,
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(&path)(error)),
    };
    let hello = encode(&ToServe::Hello {
        version: PROTOCOL_VERSION,
        subscribe,
    })?;
    stream.write_all(&hello).map_err(io_error(&path))?;
    let body = read_frame(&mut stream)?.ok_or(SocketError::Closed)?;
    match decode::<FromServe>(&body)? {
        FromServe::Welcome(welcome) if welcome.version == PROTOCOL_VERSION => {
            Ok(Some(Attached { stream, welcome }))
        }
        FromServe::Welcome(welcome) => Err(SocketError::Version {
            theirs: welcome.version,
            ours: PROTOCOL_VERSION,
        }),
        FromServe::Refused(why) => Err(SocketError::Refused(why)),
        FromServe::Event(_) => Err(SocketError::Frame("an event before the welcome".to_owned())),
    }
}

impl Attached {
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Runs a command of the command line in `serve`; each piece of output
    /// goes to `on_output`. The outer `Err`: the connection failed.
    pub fn run(
        &mut self,
        request: CliRequest,
        mut on_output: impl FnMut(CliOutput),
    ) -> Result<Result<(), String>, SocketError> {
        let frame = encode(&ToServe::Command(Command::Run(request)))?;
        self.stream
            .write_all(&frame)
            .map_err(|error| SocketError::Frame(error.to_string()))?;
        loop {
            let body = read_frame(&mut self.stream)?.ok_or(SocketError::Closed)?;
            match decode::<FromServe>(&body)? {
                FromServe::Event(Event::Output(piece)) => on_output(piece),
                FromServe::Event(Event::Finished(result)) => return Ok(result),
                FromServe::Event(_) | FromServe::Welcome(_) => {}
                FromServe::Refused(why) => return Err(SocketError::Refused(why)),
            }
        }
    }

    /// Turns this connection into an engine for a window: a thread reads
    /// the events, [`RemoteEngine::send`] writes commands.
    pub fn into_remote(self) -> Result<RemoteEngine, SocketError> {
        let mut reader = self
            .stream
            .try_clone()
            .map_err(|error| SocketError::Frame(error.to_string()))?;
        let (events_tx, events_rx) = std::sync::mpsc::channel();
        let waker: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
        let wake = waker.clone();
        std::thread::Builder::new()
            .name("console-socket".to_owned())
            .spawn(move || {
                let ended = loop {
                    let message = read_frame(&mut reader)
                        .and_then(|body| body.ok_or(SocketError::Closed))
                        .and_then(|body| decode::<FromServe>(&body));
                    let event = match message {
                        Ok(FromServe::Event(event)) => event,
                        Ok(FromServe::Welcome(_)) => continue,
                        Ok(FromServe::Refused(why)) => break SocketError::Refused(why),
                        Err(error) => break error,
                    };
                    if events_tx.send(event).is_err() {
                        return;
                    }
                    wake_up(&wake);
                };
                let _ = events_tx.send(Event::Error(format!(
                    "the console service stopped ({ended}): restart it, or close and reopen this window"
                )));
                wake_up(&wake);
            })
            .map_err(|error| SocketError::Frame(error.to_string()))?;
        Ok(RemoteEngine {
            writer: Mutex::new(self.stream),
            events: Mutex::new(events_rx),
            waker,
            welcome: self.welcome,
        })
    }
}

fn wake_up(waker: &Mutex<Option<Waker>>) {
    let waker = waker.lock().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(waker) = waker {
        waker();
    }
}

/// The engine of a running `serve`, seen from an attached window.
pub struct RemoteEngine {
    writer: Mutex<UnixStream>,
    events: Mutex<Receiver<Event>>,
    waker: Arc<Mutex<Option<Waker>>>,
    welcome: Welcome,
}

impl std::fmt::Debug for RemoteEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEngine")
            .field("welcome", &self.welcome)
            .finish_non_exhaustive()
    }
}

impl RemoteEngine {
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Sends a command; a failure shows as the error event the reading
    /// thread gives when the connection ends.
    pub fn send(&self, command: Command) {
        if let Ok(frame) = encode(&ToServe::Command(command)) {
            let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = writer.write_all(&frame);
        }
    }

    pub fn try_recv(&self) -> Option<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_recv()
            .ok()
    }

    /// Calls `waker` whenever an event lands (the first waker set stays).
    pub fn set_waker(&self, waker: Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(waker);
        }
    }
}

impl Drop for RemoteEngine {
    fn drop(&mut self) {
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writer.shutdown(std::net::Shutdown::Both);
    }
}
