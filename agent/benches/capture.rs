//! Capture benchmark: thumbnails of a text-heavy 1920x1080 screen through
//! our pipeline (X11 MIT-SHM + area-averaging downscale + turbojpeg) versus
//! a baseline (xcap + `image::imageops::thumbnail` + the image crate's
//! JPEG encoder), full-frame JPEG encoding with both encoders, and bytes
//! per thumbnail at several qualities, in one run.
//!
//! `cargo bench -p smarttracker-agent --bench capture [-- --frames N]`
//!
//! It starts its own Xvfb and sets a rendered code listing as the root
//! background with ImageMagick. CPU is this process's CPU time
//! (`CLOCK_PROCESS_CPUTIME_ID`); the X server's share of the work (it
//! copies the pixels out) is read from `/proc/<Xvfb pid>/stat` before and
//! after, in 10 ms ticks, and printed separately. Figures are printed,
//! never asserted.

use std::error::Error;
use std::io::{BufRead as _, BufReader, Cursor};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent::capture::{
    Capturer, ScreenSource, LIVE_QUALITY, SCREENSHOT_QUALITY, THUMBNAIL_MAX_HEIGHT_PX,
    THUMBNAIL_MAX_WIDTH_PX, THUMBNAIL_QUALITY,
};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageEncoder as _, RgbImage};
use protocol::CaptureSpec;
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

type BenchResult<T> = Result<T, Box<dyn Error>>;

const DEFAULT_FRAMES: u32 = 200;
/// Captures before measuring, so caches and buffers are warm...
const WARM_UP_FRAMES: u32 = 5;
/// ...for at least this long: a fresh Xvfb spends extra CPU on its first
/// few hundred milliseconds of captures.
const WARM_UP: Duration = Duration::from_millis(500);
/// The per-thumbnail CPU the pipeline aims at.
const AIM_CPU_MS: f64 = 3.0;
/// The thumbnail size the default quality must hold on a text screen.
const AIM_THUMBNAIL_BYTES: u64 = 10 * 1024;
/// `/proc/<pid>/stat` counts CPU in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SECOND: u64 = 100;
/// Text of the listing on screen: this crate's own capture code.
const LISTING: [&str; 3] = [
    include_str!("../src/capture/pixels.rs"),
    include_str!("../src/capture/x11.rs"),
    include_str!("../src/capture/mod.rs"),
];
const COLUMNS: usize = 3;
const LINES_PER_COLUMN: usize = 66;
const CHARS_PER_LINE: usize = 78;

struct Args {
    frames: u32,
}

fn parse_args() -> BenchResult<Args> {
    let mut args = Args {
        frames: DEFAULT_FRAMES,
    };
    let mut rest = std::env::args().skip(1);
    // `cargo bench` passes `--bench`; filters and other flags do not apply.
    while let Some(arg) = rest.next() {
        if arg == "--frames" {
            args.frames = rest.next().ok_or("--frames needs a number")?.parse()?;
            if args.frames == 0 {
                return Err("--frames must be at least 1".into());
            }
        }
    }
    Ok(args)
}

/// A program the benchmark needs, or an error naming the fix.
fn require(program: &str) -> BenchResult<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join(program).is_file()) {
        Ok(())
    } else {
        Err(format!("`{program}` is not installed; run scripts/install-deps.sh").into())
    }
}

/// Xvfb, killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Xvfb {
    fn start() -> BenchResult<Self> {
        require("Xvfb")?;
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1920x1080x24"])
            .args(["-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout from Xvfb")?;
        let mut xvfb = Xvfb {
            child,
            display: String::new(),
        };
        // Xvfb writes its display number once it accepts clients.
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let number: u32 = line
            .trim()
            .parse()
            .map_err(|_| format!("Xvfb reported {line:?} as its display"))?;
        xvfb.display = format!(":{number}");
        Ok(xvfb)
    }

    /// CPU time the server has used so far.
    fn cpu(&self) -> BenchResult<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name, which may hold spaces: state is
        // field 3, utime 14 and stime 15.
        let after_name = stat.rsplit_once(')').ok_or("bad /proc stat")?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = fields.get(11).ok_or("no utime")?.parse::<u64>()?
            + fields.get(12).ok_or("no stime")?.parse::<u64>()?;
        Ok(Duration::from_millis(ticks * 1_000 / TICKS_PER_SECOND))
    }

    /// Renders the listing with ImageMagick and sets it as the root
    /// window's background, then waits until the screen shows it.
    fn show_listing(&self, dir: &Path) -> BenchResult<()> {
        require("convert")?;
        require("display")?;
        let png = dir.join("listing.png");
        let lines: Vec<String> = LISTING
            .iter()
            .flat_map(|text| text.lines())
            .filter(|line| !line.trim().is_empty())
            .map(|line| line.chars().take(CHARS_PER_LINE).collect())
            .collect();
        let mut convert = Command::new("convert");
        convert
            .args(["-size", "1920x1080", "xc:#fdfdfb"])
            // An editor's title bar and a tab strip.
            .args(["-fill", "#2b5797", "-draw", "rectangle 0,0 1919,27"])
            .args(["-fill", "#e8e8e4", "-draw", "rectangle 0,28 1919,51"])
            .args(["-font", "DejaVu-Sans-Mono", "-pointsize", "12"])
            .args(["-fill", "white", "-annotate", "+12+19"])
            .arg("capture.rs — smarttracker — Visual Studio Code")
            .args(["-fill", "#333333", "-annotate", "+12+45"])
            .arg("pixels.rs    x11.rs    mod.rs    demo.rs    xcap_source.rs")
            .args(["-fill", "#1e1e1e", "-interline-spacing", "1"]);
        for column in 0..COLUMNS {
            let text = lines
                .iter()
                .skip(column * LINES_PER_COLUMN)
                .take(LINES_PER_COLUMN)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n");
            convert
                .arg("-annotate")
                .arg(format!("+{}+70", 8 + column * 640))
                .arg(text);
        }
        let status = convert.arg(&png).status()?;
        if !status.success() {
            return Err(format!("convert failed: {status}").into());
        }
        // `display -window root` exits with 1 even when it worked; the
        // screen is checked instead.
        Command::new("display")
            .args(["-window", "root"])
            .arg(&png)
            .env("DISPLAY", &self.display)
            .status()?;
        let (conn, screen) = x11rb::connect(Some(&self.display))?;
        let root = conn.setup().roots[screen].root;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The title bar's blue, as B, G, R, X.
            let pixel = conn
                .get_image(ImageFormat::Z_PIXMAP, root, 1900, 5, 1, 1, u32::MAX)?
                .reply()?
                .data;
            if pixel.get(..3) == Some(&[0x97, 0x57, 0x2b]) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the listing never appeared on the screen".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn process_cpu() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// What one variant cost over `frames` frames.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    frames: u32,
    wall: Duration,
    cpu: Duration,
    server_cpu: Duration,
    bytes: u64,
}

impl Cost {
    fn per_frame_ms(&self, total: Duration) -> f64 {
        total.as_secs_f64() * 1_000.0 / f64::from(self.frames)
    }

    fn cpu_ms(&self) -> f64 {
        self.per_frame_ms(self.cpu)
    }

    fn wall_ms(&self) -> f64 {
        self.per_frame_ms(self.wall)
    }

    fn server_ms(&self) -> f64 {
        self.per_frame_ms(self.server_cpu)
    }

    fn bytes_per_frame(&self) -> u64 {
        self.bytes / u64::from(self.frames)
    }
}

/// Runs `frame` `frames` times (after a warm-up) and measures it.
fn measure(
    xvfb: &Xvfb,
    frames: u32,
    mut frame: impl FnMut() -> BenchResult<u64>,
) -> BenchResult<Cost> {
    let warm_up_started = Instant::now();
    let mut warm_up_frames = 0;
    while warm_up_frames < WARM_UP_FRAMES || warm_up_started.elapsed() < WARM_UP {
        frame()?;
        warm_up_frames += 1;
    }
    let server_before = xvfb.cpu()?;
    let cpu_before = process_cpu();
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..frames {
        bytes += frame()?;
    }
    let wall = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let server_cpu = xvfb.cpu()?.saturating_sub(server_before);
    Ok(Cost {
        frames,
        wall,
        cpu,
        server_cpu,
        bytes,
    })
}

fn spec(max_width: u16, max_height: u16, quality: u8) -> CaptureSpec {
    CaptureSpec {
        monitor: None,
        max_width,
        max_height,
        quality,
    }
}

/// One capture through our pipeline, always encoded.
fn ours(capturer: &mut Capturer, spec: &CaptureSpec, blur: bool) -> BenchResult<u64> {
    let capture = capturer
        .capture(spec, blur, None, 0)?
        .ok_or("no frame without a previous hash")?;
    Ok(capture.image.bytes.len() as u64)
}

/// The baseline thumbnail: xcap, `image::imageops::thumbnail`, the image
/// crate's JPEG encoder.
fn baseline_thumbnail(quality: u8) -> BenchResult<u64> {
    let monitor = xcap::Monitor::all()?
        .into_iter()
        .next()
        .ok_or("xcap found no monitor")?;
    let screen = monitor.capture_image()?;
    let thumbnail = image::imageops::thumbnail(
        &screen,
        u32::from(THUMBNAIL_MAX_WIDTH_PX),
        u32::from(THUMBNAIL_MAX_HEIGHT_PX),
    );
    let rgb = image::DynamicImage::ImageRgba8(thumbnail).to_rgb8();
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut bytes), quality).write_image(
        rgb.as_raw(),
        rgb.width(),
        rgb.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(bytes.len() as u64)
}

fn turbojpeg_encode(compressor: &mut turbojpeg::Compressor, frame: &RgbImage) -> BenchResult<u64> {
    let bytes = compressor.compress_to_vec(turbojpeg::Image {
        pixels: frame.as_raw().as_slice(),
        width: frame.width() as usize,
        pitch: frame.width() as usize * 3,
        height: frame.height() as usize,
        format: turbojpeg::PixelFormat::RGB,
    })?;
    Ok(bytes.len() as u64)
}

fn image_encode(frame: &RgbImage, quality: u8) -> BenchResult<u64> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut bytes), quality).write_image(
        frame.as_raw(),
        frame.width(),
        frame.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(bytes.len() as u64)
}

fn row(name: &str, cost: &Cost) {
    println!(
        "{:<44} {:>7} {:>9.2} {:>9.2} {:>10.2} {:>9}",
        name,
        cost.frames,
        cost.cpu_ms(),
        cost.wall_ms(),
        cost.server_ms(),
        cost.bytes_per_frame(),
    );
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    numerator / denominator.max(f64::MIN_POSITIVE)
}

fn main() -> BenchResult<()> {
    // `cargo nextest --all-targets` lists every target with `--list`: a
    // bench binary holds no tests, so it lists none.
    if std::env::args().any(|arg| arg == "--list") {
        return Ok(());
    }
    let args = parse_args()?;
    let frames = args.frames;
    let full_frames = (frames / 10).max(3);
    let dir = tempfile::tempdir()?;
    let xvfb = Xvfb::start()?;
    xvfb.show_listing(dir.path())?;
    // xcap finds the display through the environment; set before any
    // thread exists, and never as Wayland.
    std::env::set_var("DISPLAY", &xvfb.display);
    std::env::remove_var("WAYLAND_DISPLAY");
    std::env::remove_var("XDG_SESSION_TYPE");

    let mut capturer = Capturer::open(ScreenSource::X11 {
        display: Some(xvfb.display.clone()),
    })?;
    println!(
        "capture: Xvfb 1920x1080x24 showing a code listing ({COLUMNS} columns of \
         {LINES_PER_COLUMN} lines, DejaVu Sans Mono 12), {frames} frames per variant \
         after a warm-up of {WARM_UP_FRAMES} frames and {} ms, our source {}",
        WARM_UP.as_millis(),
        capturer.backend()
    );
    println!(
        "CPU = this process (CLOCK_PROCESS_CPUTIME_ID); X server = Xvfb's own CPU for the \
         same frames (/proc stat, 10 ms ticks); load average before: {}",
        std::fs::read_to_string("/proc/loadavg")?
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!(
        "{:<44} {:>7} {:>9} {:>9} {:>10} {:>9}",
        "variant", "frames", "CPU ms", "wall ms", "X srv ms", "bytes"
    );

    let thumbnail = spec(
        THUMBNAIL_MAX_WIDTH_PX,
        THUMBNAIL_MAX_HEIGHT_PX,
        THUMBNAIL_QUALITY,
    );
    let ours_thumbnail = measure(&xvfb, frames, || ours(&mut capturer, &thumbnail, false))?;
    row(
        &format!("ours: x11-shm + downscale + turbojpeg q{THUMBNAIL_QUALITY}"),
        &ours_thumbnail,
    );
    let baseline = measure(&xvfb, frames, || baseline_thumbnail(THUMBNAIL_QUALITY))?;
    row(
        &format!("baseline: xcap + thumbnail + image q{THUMBNAIL_QUALITY}"),
        &baseline,
    );
    let ours_blurred = measure(&xvfb, frames, || ours(&mut capturer, &thumbnail, true))?;
    row("ours, blurred thumbnail", &ours_blurred);
    let live = spec(1280, 720, LIVE_QUALITY);
    let ours_live = measure(&xvfb, frames, || ours(&mut capturer, &live, false))?;
    row(
        &format!("ours: live view 1280x720 q{LIVE_QUALITY}"),
        &ours_live,
    );
    let ours_live_blurred = measure(&xvfb, frames, || ours(&mut capturer, &live, true))?;
    row("ours: live view 1280x720, blurred", &ours_live_blurred);
    let full = spec(1920, 1080, SCREENSHOT_QUALITY);
    let ours_full = measure(&xvfb, full_frames, || ours(&mut capturer, &full, false))?;
    row(
        &format!("ours: screenshot 1920x1080 q{SCREENSHOT_QUALITY}"),
        &ours_full,
    );
    println!();
    println!(
        "thumbnail {}x{}: ours/baseline = {:.3}x CPU ({:.2} vs {:.2} ms), {:.3}x wall, \
         {:.3}x CPU with the X server counted; aim <= {AIM_CPU_MS} ms: {}",
        THUMBNAIL_MAX_WIDTH_PX,
        THUMBNAIL_MAX_HEIGHT_PX,
        ratio(ours_thumbnail.cpu_ms(), baseline.cpu_ms()),
        ours_thumbnail.cpu_ms(),
        baseline.cpu_ms(),
        ratio(ours_thumbnail.wall_ms(), baseline.wall_ms()),
        ratio(
            ours_thumbnail.cpu_ms() + ours_thumbnail.server_ms(),
            baseline.cpu_ms() + baseline.server_ms()
        ),
        if ours_thumbnail.cpu_ms() <= AIM_CPU_MS {
            "met"
        } else {
            "MISSED"
        },
    );

    // Full 1080p encode, same RGB pixels for both encoders.
    let screen = xcap::Monitor::all()?
        .into_iter()
        .next()
        .ok_or("xcap found no monitor")?
        .capture_image()?;
    let frame = image::DynamicImage::ImageRgba8(screen).to_rgb8();
    let mut compressor = turbojpeg::Compressor::new()?;
    compressor.set_quality(i32::from(SCREENSHOT_QUALITY));
    compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2);
    let turbo = measure(&xvfb, full_frames, || {
        turbojpeg_encode(&mut compressor, &frame)
    })?;
    let image_crate = measure(&xvfb, full_frames, || {
        image_encode(&frame, SCREENSHOT_QUALITY)
    })?;
    println!();
    println!(
        "{:<44} {:>7} {:>9} {:>9} {:>10} {:>9}",
        "1920x1080 encode only", "frames", "CPU ms", "wall ms", "X srv ms", "bytes"
    );
    row(&format!("turbojpeg q{SCREENSHOT_QUALITY} 4:2:0"), &turbo);
    row(&format!("image crate q{SCREENSHOT_QUALITY}"), &image_crate);
    println!(
        "full-frame encode: turbojpeg/image = {:.3}x CPU ({:.2} vs {:.2} ms)",
        ratio(turbo.cpu_ms(), image_crate.cpu_ms()),
        turbo.cpu_ms(),
        image_crate.cpu_ms(),
    );

    // Bytes per thumbnail of this text-heavy screen by quality.
    println!();
    println!("thumbnail {THUMBNAIL_MAX_WIDTH_PX}x{THUMBNAIL_MAX_HEIGHT_PX} bytes on the text screen by quality (aim <= {AIM_THUMBNAIL_BYTES}):");
    for quality in [40, 50, 60, 70, 75, 80, 90] {
        let bytes = ours(
            &mut capturer,
            &spec(THUMBNAIL_MAX_WIDTH_PX, THUMBNAIL_MAX_HEIGHT_PX, quality),
            false,
        )?;
        let marker = if quality == THUMBNAIL_QUALITY {
            "  <- THUMBNAIL_QUALITY"
        } else {
            ""
        };
        let verdict = if bytes <= AIM_THUMBNAIL_BYTES {
            "fits"
        } else {
            "too big"
        };
        println!("  q{quality:<3} {bytes:>7} bytes  {verdict}{marker}");
    }
    Ok(())
}
