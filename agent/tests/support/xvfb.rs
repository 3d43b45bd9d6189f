//! Helpers for tests against a real X server: a private Xvfb per test, a
//! window manager, external X programs, windows made by the test itself,
//! and processes with chosen names. Everything started is killed on drop.
//!
//! Included by path (`#[path = "support/xvfb.rs"]`) from several test
//! crates, each using a subset.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, CreateWindowAux, InputFocus, MapState, PropMode, Window,
    WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::COPY_DEPTH_FROM_PARENT;

/// How long a helper waits for the X server, a window manager, a window or
/// a helper program: generous, since CI runs tests side by side on two
/// busy cores; only a hang should ever reach it.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Panics, naming the fix, when a program the X tests need is missing.
pub fn require(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is not installed; run scripts/install-deps.sh to install the X11 test tools"
            )
        })
}

/// Polls `ready` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
}

impl Spawned {
    pub fn new(mut command: Command) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        Spawned { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process now.
    pub fn kill(&mut self) {
        // Already exited is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private Xvfb on a display number it picked itself (`-displayfd`), so
/// tests run in parallel without colliding.
#[derive(Debug)]
pub struct Xvfb {
    display: String,
    server: Spawned,
}

impl Xvfb {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts Xvfb with extra arguments (e.g. `-extension NAME`) and waits
    /// until it accepts connections.
    pub fn start_with(extra_args: &[&str]) -> Self {
        let mut command = Command::new(require("Xvfb"));
        command
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24"])
            .args(["-nolisten", "tcp", "-noreset"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut server = Spawned::new(command);
        let stdout = server.child.stdout.take().expect("piped stdout");
        // Xvfb writes the display number once it is ready for clients.
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(read.map(|_| line));
        });
        let line = receiver
            .recv_timeout(STARTUP_TIMEOUT)
            .expect("Xvfb did not report a display number in time")
            .expect("reading Xvfb's display number");
        let number: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb reported {line:?} as its display"));
        Xvfb {
            display: format!(":{number}"),
            server,
        }
    }

    /// `:N`
    pub fn display(&self) -> &str {
        &self.display
    }

    /// A new client connection (the test's own, not the sensor's).
    pub fn connect(&self) -> X {
        let (conn, screen) = RustConnection::connect(Some(&self.display)).expect("connect to Xvfb");
        let root = conn.setup().roots[screen].root;
        X { conn, root }
    }

    /// A command for an X program, aimed at this display.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(require(program));
        command
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Runs `xdotool ARGS` and checks that it succeeded in time.
    pub fn xdotool(&self, args: &[&str]) {
        let mut command = self.command("xdotool");
        command.args(args).stderr(Stdio::inherit());
        let mut xdotool = Spawned::new(command);
        let mut status = None;
        wait_until(&format!("xdotool {args:?}"), STARTUP_TIMEOUT, || {
            status = xdotool.child.try_wait().expect("wait for xdotool");
            status.is_some()
        });
        assert!(
            status.is_some_and(|status| status.success()),
            "xdotool {args:?} failed: {status:?}"
        );
    }

    /// Brings `window` to the front through the window manager and waits
    /// until the root's `_NET_ACTIVE_WINDOW` names it (a window the
    /// manager has not taken over yet is asked again).
    pub fn activate(&self, x: &X, window: Window) {
        let active = x.atom("_NET_ACTIVE_WINDOW");
        wait_until(
            &format!("window {window:#x} to be active"),
            STARTUP_TIMEOUT,
            || {
                self.xdotool(&["windowactivate", &window.to_string()]);
                (0..20).any(|_| {
                    let now = x.window_property(x.root, active) == Some(window);
                    if !now {
                        thread::sleep(Duration::from_millis(25));
                    }
                    now
                })
            },
        );
    }

    /// Starts openbox and waits until it manages the screen (EWMH check
    /// window set). Its configuration and cache live in `config_home`.
    pub fn start_openbox(&self, config_home: &Path) -> Spawned {
        let mut command = self.command("openbox");
        command
            .arg("--sm-disable")
            .env("XDG_CONFIG_HOME", config_home)
            .env("XDG_CACHE_HOME", config_home);
        let openbox = Spawned::new(command);
        let x = self.connect();
        let check = x.atom("_NET_SUPPORTING_WM_CHECK");
        wait_until("openbox to start", STARTUP_TIMEOUT, || {
            x.window_property(x.root, check).is_some_and(|id| id != 0)
        });
        openbox
    }

    /// Kills the X server now (its clients then lose their connection).
    pub fn kill(&mut self) {
        self.server.kill();
    }
}

/// The test's own X connection with small conveniences.
#[derive(Debug)]
pub struct X {
    pub conn: RustConnection,
    pub root: Window,
}

/// What a test window claims to be.
#[derive(Debug, Clone, Copy)]
pub struct WindowSpec<'a> {
    pub instance: &'a str,
    pub class: &'a str,
    pub pid: Option<u32>,
    /// `_NET_WM_NAME` (UTF-8).
    pub net_title: Option<&'a str>,
    /// `WM_NAME` (Latin-1 `STRING`).
    pub legacy_title: Option<&'a [u8]>,
}

impl X {
    pub fn atom(&self, name: &str) -> u32 {
        self.conn
            .intern_atom(false, name.as_bytes())
            .expect("send")
            .reply()
            .expect("intern atom")
            .atom
    }

    /// First 32-bit value of a property.
    pub fn window_property(&self, window: Window, property: u32) -> Option<u32> {
        self.conn
            .get_property(false, window, property, AtomEnum::ANY, 0, 1)
            .ok()?
            .reply()
            .ok()?
            .value32()?
            .next()
    }

    /// Sets a 32-bit property of type `WINDOW` and waits until the server
    /// has it.
    pub fn set_window_property(&self, window: Window, property: &str, value: Window) {
        let property = self.atom(property);
        self.conn
            .change_property32(
                PropMode::REPLACE,
                window,
                property,
                AtomEnum::WINDOW,
                &[value],
            )
            .expect("send");
        self.conn.sync().expect("sync");
    }

    /// Creates and maps a top-level window described by `spec` at `(x, y)`.
    pub fn create_window(&self, spec: &WindowSpec<'_>, x: i16, y: i16) -> Window {
        let window = self.create_plain(self.root, x, y, 200, 150);
        let class = format!("{}\0{}\0", spec.instance, spec.class);
        self.conn
            .change_property8(
                PropMode::REPLACE,
                window,
                AtomEnum::WM_CLASS,
                AtomEnum::STRING,
                class.as_bytes(),
            )
            .expect("send");
        if let Some(pid) = spec.pid {
            let net_wm_pid = self.atom("_NET_WM_PID");
            self.conn
                .change_property32(
                    PropMode::REPLACE,
                    window,
                    net_wm_pid,
                    AtomEnum::CARDINAL,
                    &[pid],
                )
                .expect("send");
        }
        if let Some(title) = spec.net_title {
            let (net_wm_name, utf8) = (self.atom("_NET_WM_NAME"), self.atom("UTF8_STRING"));
            self.conn
                .change_property8(
                    PropMode::REPLACE,
                    window,
                    net_wm_name,
                    utf8,
                    title.as_bytes(),
                )
                .expect("send");
        }
        if let Some(title) = spec.legacy_title {
            self.conn
                .change_property8(
                    PropMode::REPLACE,
                    window,
                    AtomEnum::WM_NAME,
                    AtomEnum::STRING,
                    title,
                )
                .expect("send");
        }
        self.map(window);
        window
    }

    /// Creates and maps a window with no properties inside `parent`.
    pub fn create_child(&self, parent: Window) -> Window {
        let window = self.create_plain(parent, 10, 10, 50, 50);
        self.map(window);
        window
    }

    fn create_plain(&self, parent: Window, x: i16, y: i16, width: u16, height: u16) -> Window {
        let window = self.conn.generate_id().expect("window id");
        let white = self.conn.setup().roots[0].white_pixel;
        self.conn
            .create_window(
                COPY_DEPTH_FROM_PARENT,
                window,
                parent,
                x,
                y,
                width,
                height,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &CreateWindowAux::new().background_pixel(white),
            )
            .expect("send");
        window
    }

    fn map(&self, window: Window) {
        self.conn.map_window(window).expect("send");
        self.conn.flush().expect("flush");
    }

    /// Waits until `window` is viewable (mapped, by the window manager if
    /// there is one). A window manager busy starting up can miss a map
    /// request: it is asked again every second (mapping a mapped window
    /// changes nothing).
    pub fn wait_viewable(&self, window: Window) {
        let mut next_map = Instant::now() + Duration::from_secs(1);
        wait_until("a window to become viewable", STARTUP_TIMEOUT, || {
            let viewable = self
                .conn
                .get_window_attributes(window)
                .expect("send")
                .reply()
                .is_ok_and(|attributes| attributes.map_state == MapState::VIEWABLE);
            if !viewable && Instant::now() >= next_map {
                self.map(window);
                next_map = Instant::now() + Duration::from_secs(1);
            }
            viewable
        });
    }

    /// Gives `window` the input focus with `SetInputFocus`.
    pub fn focus(&self, window: Window) {
        self.conn
            .set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)
            .expect("send")
            .check()
            .expect("SetInputFocus");
    }

    /// Waits for a client window whose `WM_CLASS` class is `class`
    /// (searching the whole tree, frames included).
    pub fn wait_for_class(&self, class: &str) -> Window {
        let mut found = None;
        wait_until(&format!("a `{class}` window"), STARTUP_TIMEOUT, || {
            found = self.find_class(self.root, class.as_bytes());
            found.is_some()
        });
        found.expect("found")
    }

    fn find_class(&self, window: Window, class: &[u8]) -> Option<Window> {
        let reply = self
            .conn
            .get_property(false, window, AtomEnum::WM_CLASS, AtomEnum::STRING, 0, 64)
            .ok()?
            .reply()
            .ok()?;
        if reply.value.split(|&byte| byte == 0).nth(1) == Some(class) {
            return Some(window);
        }
        let tree = self.conn.query_tree(window).ok()?.reply().ok()?;
        tree.children
            .iter()
            .find_map(|&child| self.find_class(child, class))
    }

    /// The first child of `window`.
    pub fn first_child(&self, window: Window) -> Window {
        let tree = self
            .conn
            .query_tree(window)
            .expect("send")
            .reply()
            .expect("query tree");
        *tree.children.first().expect("a child window")
    }
}

/// A harmless long-running process whose name (`comm` and `argv[0]`) is
/// `name`: `sleep` run through a symlink called `name` inside `dir`, with
/// `envs` added to its environment.
pub fn spawn_named(dir: &Path, name: &str, envs: &[(&str, &str)]) -> Spawned {
    let link = dir.join(name);
    if !link.exists() {
        symlink(require("sleep"), &link).expect("symlink sleep");
    }
    let mut command = Command::new(&link);
    command
        .arg("60")
        .envs(envs.iter().copied())
        .stdin(Stdio::null());
    let spawned = Spawned::new(command);
    // The kernel renames the process just after `spawn` has returned.
    let comm_path = format!("/proc/{}/comm", spawned.pid());
    let mut comm = String::new();
    wait_until(
        &format!("`{name}` (a symlink to sleep) to carry its name"),
        STARTUP_TIMEOUT,
        || {
            comm = std::fs::read_to_string(&comm_path).unwrap_or_default();
            !comm.is_empty() && name.starts_with(comm.trim_end())
        },
    );
    spawned
}
