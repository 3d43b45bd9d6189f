//! The capture pipeline against real X servers: each test runs its own
//! 1920x1080 Xvfb showing a known picture (four coloured quadrants, a white
//! bar and a 1-px checkerboard, drawn by ImageMagick), captures it through
//! [`Capturer`] with the X11 and xcap sources, decodes the JPEG and checks
//! colours, sizes, monitors, change detection, blur and failures. Missing
//! X tools fail the test, naming scripts/install-deps.sh.

#[path = "support/xvfb.rs"]
mod xvfb;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;

use agent::capture::{CaptureError, Capturer, MonitorInfo, ScreenSource};
use image::RgbImage;
use protocol::{CaptureSpec, ImageFormat};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;
use x11rb::connection::Connection as _;
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, CreateWindowAux, ImageFormat as XImageFormat};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use xvfb::{require, wait_until, STARTUP_TIMEOUT};

const SCREEN_WIDTH: u32 = 1920;
const SCREEN_HEIGHT: u32 = 1080;
const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const YELLOW: [u8; 3] = [255, 255, 0];
const WHITE: [u8; 3] = [255, 255, 255];
const MAGENTA: [u8; 3] = [255, 0, 255];
/// How far a JPEG's average colour over a patch may stray.
const TOLERANCE: i32 = 24;
/// The 1-px checkerboard, in screen pixels.
const CHECKER: (u32, u32, u32, u32) = (100, 100, 400, 300);
/// 2026-03-02 08:00:00 UTC.
const AT_MS: i64 = 1_772_438_400_000;

/// A child process killed (and reaped) on drop.
struct Server {
    child: Child,
}

impl Server {
    fn kill(&mut self) {
        // Already exited is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private 1920x1080x24 Xvfb showing the test picture, killed on drop.
struct Screen {
    display: String,
    server: Server,
    /// Holds the picture.
    dir: TempDir,
}

impl Screen {
    /// Starts Xvfb on a display number it picks itself (`-displayfd`),
    /// with `extra_args`, and shows the test picture.
    fn start(extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (display, server) = spawn_xvfb(None, extra_args);
        let screen = Screen {
            display,
            server,
            dir,
        };
        screen.show_pattern();
        screen
    }

    /// Like [`Screen::start`], on a high display number that servers
    /// picking the first free number (every other test) never reach, so
    /// the number is still free when [`Screen::restart`] reuses it.
    fn start_on_a_high_display() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = 5_000 + std::process::id() % 1_000;
        let (display, server) = (0..20)
            .find_map(|attempt| {
                try_spawn_xvfb(Some(&format!(":{}", base + attempt * 37)), &[]).ok()
            })
            .expect("a free display number from :5000 up");
        let screen = Screen {
            display,
            server,
            dir,
        };
        screen.show_pattern();
        screen
    }

    /// Kills this server and starts a new one on the same display number.
    fn restart(&mut self) {
        self.server.kill();
        let (display, server) = spawn_xvfb(Some(&self.display), &[]);
        assert_eq!(display, self.display, "restarted on the same display");
        self.server = server;
        self.show_pattern();
    }

    fn x11(&self) -> ScreenSource {
        ScreenSource::X11 {
            display: Some(self.display.clone()),
        }
    }

    fn connect(&self) -> RustConnection {
        RustConnection::connect(Some(&self.display))
            .expect("connect to Xvfb")
            .0
    }

    /// Sets the test picture as the root window's background with
    /// ImageMagick and waits until the screen shows it.
    fn show_pattern(&self) {
        let png = make_pattern(self.dir.path());
        // `display -window root` exits with 1 even when it has set the
        // background; the screen itself is checked below.
        let status = Command::new(require("display"))
            .args(["-window", "root"])
            .arg(&png)
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null())
            .status()
            .expect("run ImageMagick display");
        assert!(
            matches!(status.code(), Some(0 | 1)),
            "display -window root failed: {status}"
        );
        let conn = self.connect();
        let root = conn.setup().roots[0].root;
        wait_until("the pattern on the root window", STARTUP_TIMEOUT, || {
            // Centre of the top-left quadrant, B, G, R, X.
            conn.get_image(XImageFormat::Z_PIXMAP, root, 480, 270, 1, 1, u32::MAX)
                .expect("send")
                .reply()
                .is_ok_and(|reply| reply.data.get(..3) == Some(&[0, 0, 255]))
        });
    }
}

/// Starts Xvfb (on `display`, or on a free number it picks) and waits
/// until it accepts clients.
fn spawn_xvfb(display: Option<&str>, extra_args: &[&str]) -> (String, Server) {
    try_spawn_xvfb(display, extra_args).unwrap_or_else(|error| panic!("{error}"))
}

/// Like [`spawn_xvfb`], but a server that exits at once (its display is
/// taken) is an error.
fn try_spawn_xvfb(display: Option<&str>, extra_args: &[&str]) -> Result<(String, Server), String> {
    let mut command = Command::new(require("Xvfb"));
    command
        .args(display)
        .args(["-displayfd", "1", "-screen", "0", "1920x1080x24"])
        .args(["-nolisten", "tcp", "-noreset"])
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let server = Server { child };
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
        .map_err(|_| format!("Xvfb {display:?} reported {line:?} as its display"))?;
    Ok((format!(":{number}"), server))
}

/// Draws the test picture into `dir` with ImageMagick.
fn make_pattern(dir: &Path) -> PathBuf {
    let png = dir.join("pattern.png");
    let (x0, y0, x1, y1) = CHECKER;
    let status = Command::new(require("convert"))
        .args(["-size", "1920x1080", "xc:black"])
        .args(["-fill", "#ff0000", "-draw", "rectangle 0,0 959,539"])
        .args(["-fill", "#00ff00", "-draw", "rectangle 960,0 1919,539"])
        .args(["-fill", "#0000ff", "-draw", "rectangle 0,540 959,1079"])
        .args(["-fill", "#ffff00", "-draw", "rectangle 960,540 1919,1079"])
        .args(["-fill", "white", "-draw", "rectangle 0,500 1919,579"])
        .args(["-tile", "pattern:gray50", "-draw"])
        .arg(format!("rectangle {x0},{y0} {},{}", x1 - 1, y1 - 1))
        .arg(&png)
        .status()
        .expect("run ImageMagick convert");
    assert!(status.success(), "convert failed: {status}");
    png
}

fn spec(monitor: Option<u16>, max_width: u16, max_height: u16, quality: u8) -> CaptureSpec {
    CaptureSpec {
        monitor,
        max_width,
        max_height,
        quality,
    }
}

/// Captures, expecting a frame, and checks its metadata against its bytes.
fn capture_frame(
    capturer: &mut Capturer,
    spec: &CaptureSpec,
    blur: bool,
) -> (agent::capture::Capture, RgbImage) {
    let capture = capturer
        .capture(spec, blur, None, AT_MS)
        .expect("capture")
        .expect("a frame when no previous hash is given");
    let meta = &capture.image.meta;
    assert_eq!(meta.at_ms, AT_MS);
    assert_eq!(meta.format, ImageFormat::Jpeg);
    assert_eq!(meta.blurred, blur);
    assert_eq!(meta.size_bytes as usize, capture.image.bytes.len());
    let digest: [u8; 32] = Sha256::digest(&capture.image.bytes).into();
    assert_eq!(meta.sha256, digest);
    let decoded =
        image::load_from_memory_with_format(&capture.image.bytes, image::ImageFormat::Jpeg)
            .expect("a decodable JPEG")
            .to_rgb8();
    assert_eq!(
        (decoded.width(), decoded.height()),
        (meta.width, meta.height),
        "decoded size matches the metadata"
    );
    (capture, decoded)
}

/// Mean colour of the 5x5 patch around (`x`, `y`), given as fractions of
/// the image's size.
fn colour_at(image: &RgbImage, fx: f64, fy: f64) -> [i32; 3] {
    let cx = (fx * f64::from(image.width())) as i64;
    let cy = (fy * f64::from(image.height())) as i64;
    let mut sums = [0_i64; 3];
    let mut count = 0;
    for y in cy - 2..=cy + 2 {
        for x in cx - 2..=cx + 2 {
            let x = x.clamp(0, i64::from(image.width()) - 1) as u32;
            let y = y.clamp(0, i64::from(image.height()) - 1) as u32;
            let pixel = image.get_pixel(x, y);
            for (sum, value) in sums.iter_mut().zip(pixel.0) {
                *sum += i64::from(value);
            }
            count += 1;
        }
    }
    sums.map(|sum| (sum / count) as i32)
}

fn assert_colour(image: &RgbImage, fx: f64, fy: f64, want: [u8; 3], what: &str) {
    let got = colour_at(image, fx, fy);
    let close = got
        .iter()
        .zip(want)
        .all(|(got, want)| (got - i32::from(want)).abs() <= TOLERANCE);
    assert!(close, "{what}: {got:?} at ({fx}, {fy}), expected {want:?}");
}

/// The four quadrants and the bar of the whole-screen picture.
fn assert_quadrants(image: &RgbImage, what: &str) {
    assert_colour(image, 0.25, 0.25, RED, &format!("{what}: top left"));
    assert_colour(image, 0.75, 0.25, GREEN, &format!("{what}: top right"));
    assert_colour(image, 0.25, 0.75, BLUE, &format!("{what}: bottom left"));
    assert_colour(image, 0.75, 0.75, YELLOW, &format!("{what}: bottom right"));
    assert_colour(image, 0.5, 0.5, WHITE, &format!("{what}: bar"));
}

/// Standard deviation of the luma inside the checkerboard.
fn checker_contrast(image: &RgbImage) -> f64 {
    let (x0, y0, x1, y1) = CHECKER;
    let scale_x = f64::from(image.width()) / f64::from(SCREEN_WIDTH);
    let scale_y = f64::from(image.height()) / f64::from(SCREEN_HEIGHT);
    // Keep clear of the edges, where the red around it bleeds in.
    let xs = (f64::from(x0 + 40) * scale_x) as u32..(f64::from(x1 - 40) * scale_x) as u32;
    let ys = (f64::from(y0 + 40) * scale_y) as u32..(f64::from(y1 - 40) * scale_y) as u32;
    let luma: Vec<f64> = ys
        .flat_map(|y| xs.clone().map(move |x| (x, y)))
        .map(|(x, y)| {
            let [r, g, b] = image.get_pixel(x, y).0;
            0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b)
        })
        .collect();
    let mean = luma.iter().sum::<f64>() / luma.len() as f64;
    (luma.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / luma.len() as f64).sqrt()
}

#[test]
fn x11_source_captures_the_screen_through_shm_at_any_size() {
    let screen = Screen::start(&[]);
    let mut capturer = Capturer::open(screen.x11()).expect("open the X11 source");
    assert_eq!(capturer.backend(), "x11-shm");
    assert_eq!(
        capturer.monitors().expect("monitors"),
        [MonitorInfo {
            index: 0,
            x: 0,
            y: 0,
            width: SCREEN_WIDTH,
            height: SCREEN_HEIGHT,
            name: "screen".to_owned(),
        }]
    );
    let cases = [
        // (spec, expected size)
        (spec(None, 3840, 2160, 90), (1920, 1080)),
        (spec(None, 320, 180, 60), (320, 180)),
        (spec(None, 400, 400, 60), (400, 225)),
        (spec(Some(0), 1280, 720, 70), (1280, 720)),
        (spec(None, 333, 1000, 60), (333, 187)),
        (spec(None, 4000, 4000, 95), (1920, 1080)),
    ];
    for (spec, size) in cases {
        let (capture, image) = capture_frame(&mut capturer, &spec, false);
        let meta = &capture.image.meta;
        assert_eq!((meta.width, meta.height), size, "{spec:?}");
        assert_quadrants(&image, &format!("{spec:?}"));
    }
    // Clamped to a 16x16 box and quality 95: too small to check colours.
    let (capture, _) = capture_frame(&mut capturer, &spec(None, 1, 1, 200), false);
    assert_eq!(
        (capture.image.meta.width, capture.image.meta.height),
        (16, 9)
    );
    assert_eq!(capturer.backend(), "x11-shm", "still on SHM");
}

#[test]
fn x11_source_without_shm_falls_back_to_get_image() {
    let screen = Screen::start(&["-extension", "MIT-SHM"]);
    let mut capturer = Capturer::open(screen.x11()).expect("open the X11 source");
    assert_eq!(capturer.backend(), "x11-getimage");
    for spec in [spec(None, 1920, 1080, 90), spec(None, 320, 180, 60)] {
        let (_, image) = capture_frame(&mut capturer, &spec, false);
        assert_quadrants(&image, &format!("GetImage {spec:?}"));
    }
}

#[test]
fn xcap_source_captures_the_same_screen() {
    let screen = Screen::start(&[]);
    // xcap reads the display from the environment, and must not take
    // this for a Wayland session. Each test runs in its own process.
    std::env::set_var("DISPLAY", &screen.display);
    std::env::remove_var("WAYLAND_DISPLAY");
    std::env::remove_var("XDG_SESSION_TYPE");
    let mut capturer = Capturer::open(ScreenSource::Xcap).expect("open the xcap source");
    assert_eq!(capturer.backend(), "xcap");
    let monitors = capturer.monitors().expect("monitors");
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    assert_eq!(
        (monitors[0].width, monitors[0].height),
        (SCREEN_WIDTH, SCREEN_HEIGHT)
    );
    for spec in [
        spec(None, 1920, 1080, 90),
        spec(Some(0), 320, 180, 60),
        spec(None, 640, 640, 60),
    ] {
        let (capture, image) = capture_frame(&mut capturer, &spec, false);
        let want_width = u32::from(spec.max_width).min(SCREEN_WIDTH);
        assert_eq!(capture.image.meta.width, want_width, "{spec:?}");
        assert_eq!(capture.image.meta.height, want_width * 9 / 16, "{spec:?}");
        assert_quadrants(&image, &format!("xcap {spec:?}"));
    }
    let error = capturer
        .capture(&spec(Some(1), 320, 180, 60), false, None, AT_MS)
        .expect_err("monitor 1 of 1");
    assert!(
        matches!(error, CaptureError::NoSuchMonitor { index: 1, count: 1 }),
        "{error}"
    );
}

/// Splits the screen into two RandR monitors, left and right halves.
fn split_into_two_monitors(screen: &Screen) {
    let conn = screen.connect();
    let root = conn.setup().roots[0].root;
    for (name, x) in [("RIGHT-HALF", 960), ("LEFT-HALF", 0)] {
        let atom = conn
            .intern_atom(false, name.as_bytes())
            .expect("send")
            .reply()
            .expect("intern atom")
            .atom;
        conn.randr_set_monitor(
            root,
            randr::MonitorInfo {
                name: atom,
                primary: false,
                automatic: false,
                x,
                y: 0,
                width: 960,
                height: 1080,
                width_in_millimeters: 254,
                height_in_millimeters: 286,
                outputs: Vec::new(),
            },
        )
        .expect("send")
        .check()
        .expect("RRSetMonitor");
    }
}

#[test]
fn randr_monitors_are_listed_and_captured_one_by_one() {
    let screen = Screen::start(&[]);
    split_into_two_monitors(&screen);
    let mut capturer = Capturer::open(screen.x11()).expect("open the X11 source");
    let monitors = capturer.monitors().expect("monitors");
    let halves: Vec<(u16, i32, u32, &str)> = monitors
        .iter()
        .filter(|monitor| monitor.name.ends_with("-HALF"))
        .map(|monitor| {
            (
                monitor.index,
                monitor.x,
                monitor.width,
                monitor.name.as_str(),
            )
        })
        .collect();
    assert_eq!(halves.len(), 2, "{monitors:?}");
    let [left, right] = [halves[0], halves[1]];
    assert_eq!((left.1, left.2, left.3), (0, 960, "LEFT-HALF"));
    assert_eq!((right.1, right.2, right.3), (960, 960, "RIGHT-HALF"));
    assert!(left.0 < right.0, "sorted left to right: {monitors:?}");

    let (capture, image) = capture_frame(&mut capturer, &spec(Some(right.0), 480, 1080, 80), false);
    assert_eq!(
        (capture.image.meta.width, capture.image.meta.height),
        (480, 540)
    );
    assert_colour(&image, 0.5, 0.25, GREEN, "right half, top");
    assert_colour(&image, 0.5, 0.75, YELLOW, "right half, bottom");
    let (_, image) = capture_frame(&mut capturer, &spec(Some(left.0), 480, 1080, 80), false);
    assert_colour(&image, 0.5, 0.25, RED, "left half, top");
    assert_colour(&image, 0.5, 0.75, BLUE, "left half, bottom");

    let count = monitors.len();
    let index = u16::try_from(count).expect("few monitors");
    let error = capturer
        .capture(&spec(Some(index), 320, 180, 60), false, None, AT_MS)
        .expect_err("one past the last monitor");
    assert!(
        matches!(error, CaptureError::NoSuchMonitor { index: i, count: c } if i == index && c == count),
        "{error}"
    );
    assert!(error.to_string().contains("numbered from 0"), "{error}");
}

#[test]
fn an_unchanged_screen_is_skipped_and_a_changed_one_is_not() {
    let screen = Screen::start(&[]);
    let mut capturer = Capturer::open(screen.x11()).expect("open the X11 source");
    let live = spec(None, 1280, 720, 60);
    let (first, _) = capture_frame(&mut capturer, &live, false);
    for _ in 0..3 {
        assert_eq!(
            capturer
                .capture(&live, false, Some(first.pixel_hash), AT_MS + 1_000)
                .expect("capture")
                .map(|capture| capture.image.meta),
            None,
            "same screen, same hash: nothing encoded"
        );
    }
    // Another size of the same screen is a new frame.
    let thumbnail = capturer
        .capture(
            &spec(None, 320, 180, 60),
            false,
            Some(first.pixel_hash),
            AT_MS,
        )
        .expect("capture");
    assert!(thumbnail.is_some(), "a new size is not skipped");

    // A magenta window appears in the top-left quadrant.
    let conn = screen.connect();
    let root = conn.setup().roots[0].root;
    let window = conn.generate_id().expect("id");
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        window,
        root,
        600,
        100,
        200,
        200,
        0,
        x11rb::protocol::xproto::WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new().background_pixel(0x00ff_00ff),
    )
    .expect("send");
    conn.map_window(window).expect("send");
    conn.sync().expect("sync");
    let changed = capturer
        .capture(&live, false, Some(first.pixel_hash), AT_MS + 2_000)
        .expect("capture")
        .expect("a changed screen gives a frame");
    assert_ne!(changed.pixel_hash, first.pixel_hash);
    assert_ne!(changed.image.meta.sha256, first.image.meta.sha256);
    let image = image::load_from_memory(&changed.image.bytes)
        .expect("decodable")
        .to_rgb8();
    assert_colour(
        &image,
        700.0 / 1920.0,
        200.0 / 1080.0,
        MAGENTA,
        "the new window",
    );
    assert_eq!(
        capturer
            .capture(&live, false, Some(changed.pixel_hash), AT_MS + 3_000)
            .expect("capture")
            .map(|capture| capture.image.meta),
        None,
        "stable again"
    );
}

#[test]
fn blur_destroys_fine_patterns_and_keeps_colours() {
    let screen = Screen::start(&[]);
    let mut capturer = Capturer::open(screen.x11()).expect("open the X11 source");
    let full = spec(None, 1920, 1080, 90);
    let (sharp, sharp_image) = capture_frame(&mut capturer, &full, false);
    let (blurred, blurred_image) = capture_frame(&mut capturer, &full, true);
    assert_ne!(sharp.pixel_hash, blurred.pixel_hash);
    assert_ne!(sharp.image.bytes, blurred.image.bytes);
    let before = checker_contrast(&sharp_image);
    let after = checker_contrast(&blurred_image);
    assert!(
        before > 60.0,
        "the checkerboard is sharp unblurred: {before:.1}"
    );
    assert!(
        after < 4.0,
        "the checkerboard is flat once blurred: {after:.1}"
    );
    assert_quadrants(&blurred_image, "blurred");
    // Same at live-view size.
    let live = spec(None, 1280, 720, 60);
    let (_, image) = capture_frame(&mut capturer, &live, true);
    assert!(checker_contrast(&image) < 4.0, "live view blurred");
    assert_quadrants(&image, "blurred live view");
}

#[test]
fn a_dead_x_server_is_an_error_and_a_restarted_one_is_reconnected() {
    let mut screen = Screen::start_on_a_high_display();
    let mut capturer = Capturer::open(screen.x11()).expect("open the X11 source");
    let thumbnail = spec(None, 320, 180, 60);
    capture_frame(&mut capturer, &thumbnail, false);

    screen.server.kill();
    for _ in 0..2 {
        let error = capturer
            .capture(&thumbnail, false, None, AT_MS)
            .expect_err("no X server");
        assert!(
            matches!(
                error,
                CaptureError::Connect { .. } | CaptureError::ConnectionLost { .. }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains(&screen.display), "{error}");
        assert!(capturer.monitors().is_err());
        assert_eq!(capturer.backend(), "x11-disconnected");
    }

    // A new server on the same display: the next capture reconnects.
    screen.restart();
    let (_, image) = capture_frame(&mut capturer, &thumbnail, false);
    assert_quadrants(&image, "after the restart");
    assert_eq!(capturer.backend(), "x11-shm");
}

#[test]
fn a_missing_display_is_named() {
    std::env::remove_var("DISPLAY");
    let error = Capturer::open(ScreenSource::X11 { display: None }).expect_err("no DISPLAY");
    assert!(matches!(error, CaptureError::NoDisplay), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("no X display: DISPLAY is not set"),
        "{error}"
    );

    // A display nobody serves.
    let error = Capturer::open(ScreenSource::X11 {
        display: Some(":4093".to_owned()),
    })
    .expect_err("no server on :4093");
    assert!(
        matches!(&error, CaptureError::Connect { display, .. } if display == ":4093"),
        "{error:?}"
    );
}

#[test]
fn the_test_picture_exists() {
    // A broken ImageMagick should fail here with its own message rather
    // than as a timeout in every other test.
    let dir = tempfile::tempdir().expect("temp dir");
    let png = make_pattern(dir.path());
    let decoded = image::open(Path::new(&png))
        .expect("decode the pattern")
        .to_rgb8();
    assert_eq!(
        (decoded.width(), decoded.height()),
        (SCREEN_WIDTH, SCREEN_HEIGHT)
    );
    assert_eq!(decoded.get_pixel(480, 270).0, RED);
    assert_eq!(decoded.get_pixel(CHECKER.0, CHECKER.1).0, [0, 0, 0]);
    assert_eq!(decoded.get_pixel(CHECKER.0 + 1, CHECKER.1).0, WHITE);
}
