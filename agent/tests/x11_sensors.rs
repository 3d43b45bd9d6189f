//! The real X11 sensors against real X servers: each test runs its own
//! Xvfb (plus openbox, xmessage and xdotool where needed), makes real
//! windows, moves the focus and the pointer, and checks what the sensors
//! report. Missing X tools fail the test, naming scripts/install-deps.sh.

#[path = "support/xvfb.rs"]
mod xvfb;

use std::thread;
use std::time::Duration;

use agent::apps::AppNames;
use agent::sensors::x11::X11Sensors;
use agent::sensors::{IdleSensor as _, SensorError, WindowSample, WindowSensor as _};
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, InputFocus, PropMode};
use x11rb::wrapper::ConnectionExt as _;
use xvfb::{spawn_named, Spawned, WindowSpec, Xvfb};

fn sample(process: Option<&str>, class: &str, title: Option<&str>) -> WindowSample {
    WindowSample {
        process_name: process.map(str::to_owned),
        wm_class: Some(class.to_owned()),
        title: title.map(str::to_owned),
    }
}

fn sensor(xvfb: &Xvfb) -> X11Sensors {
    X11Sensors::connect(Some(xvfb.display())).expect("the sensor connects to Xvfb")
}

fn front(sensor: &mut X11Sensors) -> Option<WindowSample> {
    sensor.active_window().expect("no sensor error")
}

fn start_xmessage(xvfb: &Xvfb) -> Spawned {
    let mut command = xvfb.command("xmessage");
    command.arg("bonjour");
    Spawned::new(command)
}

/// (a) Under openbox, activating each of five windows (four made by the
/// test for named processes, one real xmessage) makes the sensor report
/// exactly that window's process, class and title, and the normalised name
/// a person would use.
#[test]
fn with_a_window_manager_the_active_window_names_the_app() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let _openbox = xvfb.start_openbox(dir.path());
    let gimp = spawn_named(dir.path(), "gimp-2.10", &[]);
    let keepass = spawn_named(dir.path(), "keepassxc", &[]);
    // Longer than the kernel's 15-byte process name limit.
    let terminal = spawn_named(dir.path(), "gnome-terminal-server", &[]);

    let x = xvfb.connect();
    let gimp_window = x.create_window(
        &WindowSpec {
            instance: "gimp-2.10",
            class: "Gimp-2.10",
            pid: Some(gimp.pid()),
            net_title: Some("Été – GIMP"),
            legacy_title: Some(b"ignored when _NET_WM_NAME is set"),
        },
        0,
        0,
    );
    let keepass_window = x.create_window(
        &WindowSpec {
            instance: "keepassxc",
            class: "KeePassXC",
            pid: Some(keepass.pid()),
            net_title: None,
            legacy_title: Some(b"Base de donn\xe9es"),
        },
        100,
        100,
    );
    let files_window = x.create_window(
        &WindowSpec {
            instance: "org.gnome.Nautilus",
            class: "org.gnome.Nautilus",
            pid: None,
            net_title: Some("Documents"),
            legacy_title: None,
        },
        200,
        200,
    );
    let terminal_window = x.create_window(
        &WindowSpec {
            instance: "gnome-terminal-server",
            class: "Gnome-terminal",
            pid: Some(terminal.pid()),
            net_title: None,
            legacy_title: None,
        },
        300,
        300,
    );
    let _xmessage = start_xmessage(&xvfb);
    let xmessage_window = x.wait_for_class("Xmessage");

    let cases = [
        (
            gimp_window,
            sample(Some("gimp-2.10"), "Gimp-2.10", Some("Été – GIMP")),
            "GIMP",
        ),
        (
            keepass_window,
            sample(Some("keepassxc"), "KeePassXC", Some("Base de données")),
            "KeePassXC",
        ),
        (
            files_window,
            sample(None, "org.gnome.Nautilus", Some("Documents")),
            "Files",
        ),
        (
            terminal_window,
            sample(Some("gnome-terminal-server"), "Gnome-terminal", None),
            "Terminal",
        ),
        (
            xmessage_window,
            sample(None, "Xmessage", Some("xmessage")),
            "Xmessage",
        ),
    ];
    for (window, _, _) in &cases {
        x.wait_viewable(*window);
    }

    let mut sensor = sensor(&xvfb);
    sensor.set_read_titles(true);
    let names = AppNames::builtin();
    // Twice round, so every switch is between two live windows.
    for (window, want, app) in cases.iter().chain(&cases) {
        xvfb.activate(&x, *window);
        let got = front(&mut sensor).expect("a window in front");
        assert_eq!(got, *want, "window {window:#x}");
        assert_eq!(names.normalise(&got).as_deref(), Some(*app));
    }

    // Titles are not even read unless asked for.
    sensor.set_read_titles(false);
    assert_eq!(
        front(&mut sensor),
        Some(sample(None, "Xmessage", None)),
        "no title when titles are off"
    );
}

/// (b) Without a window manager there is no `_NET_ACTIVE_WINDOW`: the
/// sensor follows the input focus, from a nested child window up to its
/// top-level client (a test window and a real xmessage), reports nothing
/// for no focus, and under pointer-root focus the window under the pointer.
#[test]
fn without_a_window_manager_the_focus_is_walked_up_to_the_client() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let gedit = spawn_named(dir.path(), "gedit", &[]);
    let x = xvfb.connect();
    let editor = x.create_window(
        &WindowSpec {
            instance: "gedit",
            class: "Gedit",
            pid: Some(gedit.pid()),
            net_title: None,
            legacy_title: None,
        },
        400,
        400,
    );
    let inner = x.create_child(editor);
    let innermost = x.create_child(inner);
    let _xmessage = start_xmessage(&xvfb);
    let xmessage_window = x.wait_for_class("Xmessage");
    for window in [editor, inner, innermost, xmessage_window] {
        x.wait_viewable(window);
    }
    let editor_sample = sample(Some("gedit"), "Gedit", None);
    let xmessage_sample = sample(None, "Xmessage", None);
    let mut sensor = sensor(&xvfb);
    let names = AppNames::builtin();

    // Pointer-root focus, pointer over the bare root window.
    xvfb.xdotool(&["mousemove", "1000", "700"]);
    assert_eq!(front(&mut sensor), None);

    x.focus(innermost);
    let got = front(&mut sensor).expect("the editor");
    assert_eq!(got, editor_sample);
    assert_eq!(names.normalise(&got).as_deref(), Some("Gedit"));

    let xmessage_inner = x.first_child(xmessage_window);
    xvfb.xdotool(&["windowfocus", "--sync", &xmessage_inner.to_string()]);
    let got = front(&mut sensor).expect("xmessage");
    assert_eq!(got, xmessage_sample);
    assert_eq!(names.normalise(&got).as_deref(), Some("Xmessage"));

    x.conn
        .set_input_focus(InputFocus::NONE, x11rb::NONE, x11rb::CURRENT_TIME)
        .expect("send")
        .check()
        .expect("SetInputFocus(None)");
    assert_eq!(front(&mut sensor), None, "no focus, no window");

    x.conn
        .set_input_focus(
            InputFocus::POINTER_ROOT,
            u32::from(InputFocus::POINTER_ROOT),
            x11rb::CURRENT_TIME,
        )
        .expect("send")
        .check()
        .expect("SetInputFocus(PointerRoot)");
    xvfb.xdotool(&["mousemove", "450", "450"]);
    assert_eq!(
        front(&mut sensor),
        Some(editor_sample),
        "window under the pointer"
    );
}

/// `_NET_ACTIVE_WINDOW` is trusted only while the EWMH manager's check
/// window lives; an active window destroyed between the sensor's requests
/// reads as "no window", not as an error; a dead manager's stale property
/// is ignored in favour of the input focus.
#[test]
fn vanished_windows_and_a_dead_window_manager_are_not_errors() {
    let xvfb = Xvfb::start();
    let x = xvfb.connect();
    let spec = |class| WindowSpec {
        instance: class,
        class,
        pid: None,
        net_title: None,
        legacy_title: None,
    };
    let active = x.create_window(&spec("KeePassXC"), 0, 0);
    let focused = x.create_window(&spec("Meld"), 300, 300);
    for window in [active, focused] {
        x.wait_viewable(window);
    }
    x.focus(focused);
    let mut sensor = sensor(&xvfb);
    assert_eq!(front(&mut sensor), Some(sample(None, "Meld", None)));

    // A stand-in EWMH window manager, announced the standard way.
    let check = x.create_child(x.root);
    x.set_window_property(check, "_NET_SUPPORTING_WM_CHECK", check);
    x.set_window_property(x.root, "_NET_SUPPORTING_WM_CHECK", check);
    x.set_window_property(x.root, "_NET_ACTIVE_WINDOW", active);
    assert_eq!(front(&mut sensor), Some(sample(None, "KeePassXC", None)));

    // The active window is destroyed before the sensor reads it.
    let doomed = x.create_window(&spec("Doomed"), 10, 10);
    x.conn.destroy_window(doomed).expect("send");
    x.set_window_property(x.root, "_NET_ACTIVE_WINDOW", doomed);
    assert_eq!(front(&mut sensor), None);

    // The manager dies (its check window goes); the property stays.
    x.set_window_property(x.root, "_NET_ACTIVE_WINDOW", active);
    x.conn.destroy_window(check).expect("send");
    x.conn.sync().expect("sync");
    assert_eq!(front(&mut sensor), Some(sample(None, "Meld", None)));
}

/// (c) Without input, `idle_ms` grows past 2 s; one real pointer motion
/// (XTEST, through xdotool) brings it back near zero.
#[test]
fn idle_grows_without_input_and_drops_after_a_mouse_move() {
    let xvfb = Xvfb::start();
    let mut sensor = sensor(&xvfb);
    xvfb.xdotool(&["mousemove", "10", "10"]);
    let fresh = sensor.idle().expect("idle");
    assert!(fresh.idle_ms < 1_000, "just moved: {fresh:?}");

    thread::sleep(Duration::from_millis(2_200));
    let idle = sensor.idle().expect("idle");
    assert!(idle.idle_ms >= 2_000, "no input for 2.2 s: {idle:?}");
    assert!(!idle.locked, "{idle:?}");

    xvfb.xdotool(&["mousemove", "200", "200"]);
    let active = sensor.idle().expect("idle");
    assert!(active.idle_ms < 1_000, "just moved: {active:?}");
    assert!(!active.locked, "{active:?}");
}

/// The server's screen saver switched on counts as locked; input turns it
/// off again.
#[test]
fn an_active_screen_saver_counts_as_locked() {
    let xvfb = Xvfb::start();
    let x = xvfb.connect();
    let mut sensor = sensor(&xvfb);
    assert!(!sensor.idle().expect("idle").locked);

    x.conn
        .force_screen_saver(x11rb::protocol::xproto::ScreenSaver::ACTIVE)
        .expect("send")
        .check()
        .expect("ForceScreenSaver");
    assert!(sensor.idle().expect("idle").locked, "screen saver on");

    xvfb.xdotool(&["mousemove", "300", "300"]);
    assert!(!sensor.idle().expect("idle").locked, "input ends the saver");
}

/// XScreenSaver's `_SCREENSAVER_STATUS` root property: `LOCK` and `BLANK`
/// count as locked, anything else does not.
#[test]
fn xscreensaver_status_counts_as_locked() {
    let xvfb = Xvfb::start();
    let x = xvfb.connect();
    let mut sensor = sensor(&xvfb);
    let status = x.atom("_SCREENSAVER_STATUS");
    let mut set_status = |state: u32| {
        x.conn
            .change_property32(
                PropMode::REPLACE,
                x.root,
                status,
                AtomEnum::INTEGER,
                &[state, 1_700_000_000, 0],
            )
            .expect("send");
        x.conn.sync().expect("sync");
        sensor.idle().expect("idle").locked
    };
    assert!(set_status(x.atom("LOCK")), "LOCK");
    assert!(set_status(x.atom("BLANK")), "BLANK");
    assert!(!set_status(0), "unblanked");
}

/// A stand-alone locker (a process named `i3lock`) counts only when its
/// `DISPLAY` is the sensor's display.
#[test]
fn a_locker_process_on_this_display_counts_as_locked() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // Lockers on other displays do not lock this one.
    let _elsewhere = spawn_named(dir.path(), "i3lock", &[("DISPLAY", ":65000")]);
    assert!(!sensor(&xvfb).idle().expect("idle").locked);

    let here = format!("{}.0", xvfb.display());
    let mut locker = spawn_named(dir.path(), "i3lock", &[("DISPLAY", &here)]);
    assert!(sensor(&xvfb).idle().expect("idle").locked, "i3lock running");

    locker.kill();
    assert!(!sensor(&xvfb).idle().expect("idle").locked, "i3lock gone");
}

/// A server without MIT-SCREEN-SAVER: idle is an error naming the
/// extension; the window sensor still works.
#[test]
fn a_missing_screensaver_extension_is_reported() {
    let xvfb = Xvfb::start_with(&["-extension", "MIT-SCREEN-SAVER"]);
    let mut sensor = sensor(&xvfb);
    match sensor.idle() {
        Err(SensorError::MissingExtension(name)) => assert_eq!(name, "MIT-SCREEN-SAVER"),
        other => panic!("expected a missing extension, got {other:?}"),
    }
    assert_eq!(front(&mut sensor), None);
}

/// No server, or a malformed display name: a connect error, not a panic.
#[test]
fn connecting_to_no_server_is_an_error() {
    // :65001 would overflow x11rb's TCP port arithmetic (6000 + display).
    for display in [":65001", ":59999", "not a display"] {
        match X11Sensors::connect(Some(display)) {
            Err(SensorError::Connect { display: named, .. }) => assert_eq!(named, display),
            other => panic!("{display}: expected a connect error, got {other:?}"),
        }
    }
}

/// The X server goes away under a connected sensor: both sensors report a
/// lost connection.
#[test]
fn a_dead_server_is_a_disconnect_error() {
    let mut xvfb = Xvfb::start();
    let mut sensor = sensor(&xvfb);
    assert!(sensor.idle().is_ok());
    xvfb.kill();
    assert!(
        matches!(
            sensor.active_window(),
            Err(SensorError::Disconnected { .. })
        ),
        "window sensor after the server died"
    );
    assert!(
        matches!(sensor.idle(), Err(SensorError::Disconnected { .. })),
        "idle sensor after the server died"
    );
}

/// `_NET_WM_PID` of a client on another machine (`WM_CLIENT_MACHINE`) is
/// not looked up in this machine's `/proc`; a local one is.
#[test]
fn a_remote_clients_pid_is_not_looked_up_locally() {
    let xvfb = Xvfb::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let slack = spawn_named(dir.path(), "slack", &[]);
    let x = xvfb.connect();
    let window = x.create_window(
        &WindowSpec {
            instance: "slack",
            class: "Slack",
            pid: Some(slack.pid()),
            net_title: None,
            legacy_title: None,
        },
        0,
        0,
    );
    x.wait_viewable(window);
    x.focus(window);
    let mut sensor = sensor(&xvfb);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    for (machine, process) in [
        (hostname.trim(), Some("slack")),
        ("elsewhere.example.org", None),
    ] {
        x.conn
            .change_property8(
                PropMode::REPLACE,
                window,
                AtomEnum::WM_CLIENT_MACHINE,
                AtomEnum::STRING,
                machine.as_bytes(),
            )
            .expect("send")
            .check()
            .expect("ChangeProperty");
        assert_eq!(
            front(&mut sensor),
            Some(sample(process, "Slack", None)),
            "client on {machine}"
        );
    }
}
