//! Screen capture: grab a monitor or the whole desktop, downscale, blur,
//! encode to JPEG, and skip frames whose pixels did not change.
//!
//! Pure image work lives in `pixels` (downscale, blur, hashing) and `demo`
//! (the simulated desktop); `x11` and `xcap_source` are thin shells that
//! only fetch pixels. [`Capturer`] ties a source to one reused turbojpeg
//! compressor and reused buffers.

mod demo;
mod pixels;
mod x11;
mod xcap_source;

use std::cmp::Ordering;

use protocol::{CaptureSpec, CapturedImage, FrameMeta, ImageFormat, UnixMillis};
use sha2::{Digest as _, Sha256};

pub use demo::{
    Rgb, BANNER_HEIGHT_PX, BANNER_RGB, DEMO_HEIGHT_PX, DEMO_MONITOR_NAME, DEMO_WIDTH_PX,
};
pub use pixels::{LayoutError, MAX_HEIGHT_PX, MAX_QUALITY, MAX_WIDTH_PX, MIN_QUALITY, MIN_SIDE_PX};

use pixels::{DownscaleScratch, HashContext, PixelView, Pixels};

/// Width of a periodic-screenshot thumbnail.
pub const THUMBNAIL_MAX_WIDTH_PX: u16 = 320;
/// Height of a periodic-screenshot thumbnail.
pub const THUMBNAIL_MAX_HEIGHT_PX: u16 = 180;
/// JPEG quality of thumbnails: a text-heavy 1080p screen stays under
/// 10 KB at 320x180 (measured by `benches/capture.rs`).
pub const THUMBNAIL_QUALITY: u8 = 60;
/// JPEG quality of live-view frames (about 1280x720, once a second).
pub const LIVE_QUALITY: u8 = 60;
/// JPEG quality of on-demand full screenshots.
pub const SCREENSHOT_QUALITY: u8 = 80;

/// Where pixels come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreenSource {
    /// An X server through x11rb (MIT-SHM when available); `None` uses
    /// `DISPLAY`.
    X11 { display: Option<String> },
    /// xcap, for Wayland sessions (desktop portal or wlroots).
    Xcap,
    /// The simulated desktop of demo agents, drawn from `seed`.
    Demo { seed: u64 },
}

/// One monitor, in desktop coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorInfo {
    /// Position in the list sorted left to right, then top to bottom;
    /// what [`CaptureSpec::monitor`] names.
    pub index: u16,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub name: String,
}

/// The order of monitors: left to right, then top to bottom (then by
/// size and name, so the order is total).
fn monitor_order(a: &MonitorInfo, b: &MonitorInfo) -> Ordering {
    (a.x, a.y, a.width, a.height, &a.name).cmp(&(b.x, b.y, b.width, b.height, &b.name))
}

/// Sorts `monitors` by [`monitor_order`] and numbers them.
fn sort_monitors(mut monitors: Vec<MonitorInfo>) -> Vec<MonitorInfo> {
    monitors.sort_by(monitor_order);
    for (index, monitor) in monitors.iter_mut().enumerate() {
        monitor.index = u16::try_from(index).unwrap_or(u16::MAX);
    }
    monitors
}

/// An encoded frame and the hash of the pixels it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub image: CapturedImage,
    /// Pass it back as `previous_hash` to skip an unchanged screen.
    pub pixel_hash: u64,
}

/// Why a capture failed; every message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "no X display: DISPLAY is not set; run the agent inside the user's graphical session, \
         name the display explicitly, or use the xcap source on Wayland"
    )]
    NoDisplay,
    #[error(
        "cannot connect to X display {display}: {detail}; check that the X server is running \
         and that this user may connect to it (XAUTHORITY)"
    )]
    Connect { display: String, detail: String },
    #[error(
        "lost the connection to X display {display} ({detail}); the capture is retried on a \
         new connection once, so check that the X server is still running"
    )]
    ConnectionLost { display: String, detail: String },
    #[error(
        "no monitor {index}: this screen has {count} monitor(s), numbered from 0 left to right; \
         ask for one of those or for the whole desktop"
    )]
    NoSuchMonitor { index: u16, count: usize },
    #[error("X11 {request} failed: {detail}; check that the X server is healthy and retry")]
    X11 {
        request: &'static str,
        detail: String,
    },
    #[error(
        "unsupported X image format ({detail}); run the X server at depth 24 or 32 with \
         32 bits per pixel, little-endian, RGB visual"
    )]
    UnsupportedFormat { detail: String },
    #[error(
        "screen capture through xcap failed: {0}; on Wayland allow screen capture in the \
         desktop portal, on X11 use the X11 source"
    )]
    Xcap(String),
    #[error(
        "the screen source returned a malformed image ({0}); report this with the name of the \
         X server or compositor in use"
    )]
    BadImage(#[from] LayoutError),
    #[error(
        "JPEG encoding failed: {0}; check the libturbojpeg installation (scripts/install-deps.sh)"
    )]
    Encode(#[from] turbojpeg::Error),
}

/// Byte order of a source's 32-bit pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelOrder {
    /// B, G, R, padding (X11 little-endian TrueColor, the demo).
    Bgrx,
    /// R, G, B, alpha (xcap).
    Rgbx,
}

impl ChannelOrder {
    fn pixel_format(self) -> turbojpeg::PixelFormat {
        match self {
            ChannelOrder::Bgrx => turbojpeg::PixelFormat::BGRX,
            ChannelOrder::Rgbx => turbojpeg::PixelFormat::RGBX,
        }
    }
}

/// Pixels a source just fetched, borrowed from it.
#[derive(Debug)]
struct Grab<'a> {
    view: PixelView<'a>,
    order: ChannelOrder,
}

#[derive(Debug)]
enum Source {
    /// Boxed: a connection with its buffers is large next to the others.
    X11(Box<x11::X11Screen>),
    Xcap(xcap_source::XcapScreen),
    Demo(demo::DemoScreen),
}

/// A screen source with its JPEG compressor and buffers, reused from one
/// capture to the next.
#[derive(Debug)]
pub struct Capturer {
    source: Source,
    compressor: turbojpeg::Compressor,
    scratch: DownscaleScratch,
    pixels: Pixels,
    blur_spare: Vec<u8>,
}

impl Capturer {
    /// Opens the source; errors name what is missing (e.g. "no X display:
    /// DISPLAY is not set").
    pub fn open(source: ScreenSource) -> Result<Capturer, CaptureError> {
        let source = match source {
            ScreenSource::X11 { display } => Source::X11(Box::new(x11::X11Screen::open(display)?)),
            ScreenSource::Xcap => Source::Xcap(xcap_source::XcapScreen::open()?),
            ScreenSource::Demo { seed } => Source::Demo(demo::DemoScreen::new(seed)),
        };
        let mut compressor = turbojpeg::Compressor::new()?;
        compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2);
        Ok(Capturer {
            source,
            compressor,
            scratch: DownscaleScratch::default(),
            pixels: Pixels::default(),
            blur_spare: Vec::new(),
        })
    }

    /// How pixels are fetched: `x11-shm`, `x11-getimage` (the server has
    /// no usable MIT-SHM), `x11-disconnected` (the X server went away; the
    /// next capture tries to reconnect), `xcap` or `demo`, for logs and
    /// status.
    pub fn backend(&self) -> &'static str {
        match &self.source {
            Source::X11(screen) => screen.backend(),
            Source::Xcap(_) => "xcap",
            Source::Demo(_) => "demo",
        }
    }

    /// The monitors, sorted left to right then top to bottom.
    pub fn monitors(&mut self) -> Result<Vec<MonitorInfo>, CaptureError> {
        match &mut self.source {
            Source::X11(screen) => screen.monitors(),
            Source::Xcap(screen) => screen.monitors(),
            Source::Demo(screen) => Ok(screen.monitors()),
        }
    }

    /// Captures monitor `spec.monitor` (an index into [`Self::monitors`];
    /// `None` = the whole desktop), downscales it to fit `spec.max_width` x
    /// `spec.max_height` keeping the aspect (never upscaling; the spec is
    /// clamped to 16..=3840 x 16..=2160, quality 1..=95), blurs it when
    /// `blur` (text becomes unreadable, shapes and colours stay), and
    /// encodes a JPEG stamped `at_ms`.
    ///
    /// Returns `Ok(None)` when the hash of the downscaled pixels (which
    /// also covers size, blur and quality) equals `previous_hash`: the
    /// screen did not change, and nothing was encoded.
    pub fn capture(
        &mut self,
        spec: &CaptureSpec,
        blur: bool,
        previous_hash: Option<u64>,
        at_ms: UnixMillis,
    ) -> Result<Option<Capture>, CaptureError> {
        let spec = pixels::clamp_spec(spec);
        let grab = match &mut self.source {
            Source::X11(screen) => screen.grab(spec.monitor)?,
            Source::Xcap(screen) => screen.grab(spec.monitor)?,
            Source::Demo(screen) => screen.grab(spec.monitor, at_ms)?,
        };
        let (src_width, src_height) = (grab.view.width(), grab.view.height());
        let (width, height) = pixels::fit_size(
            src_width,
            src_height,
            u32::from(spec.max_width),
            u32::from(spec.max_height),
        );
        pixels::downscale_into(
            grab.view,
            width,
            height,
            &mut self.scratch,
            &mut self.pixels,
        );
        let order = grab.order;
        let pixel_hash = pixels::pixel_hash(
            &self.pixels,
            HashContext {
                blurred: blur,
                quality: spec.quality,
            },
        );
        if previous_hash == Some(pixel_hash) {
            return Ok(None);
        }
        if blur {
            pixels::box_blur(
                &mut self.pixels,
                pixels::blur_radius_px(src_width, width),
                pixels::BLUR_PASSES,
                &mut self.blur_spare,
            );
        }
        self.compressor.set_quality(i32::from(spec.quality));
        let bytes = self.compressor.compress_to_vec(turbojpeg::Image {
            pixels: &self.pixels.bytes[..],
            width: width as usize,
            pitch: width as usize * pixels::BYTES_PER_PIXEL,
            height: height as usize,
            format: order.pixel_format(),
        })?;
        let size_bytes = u32::try_from(bytes.len())
            .map_err(|_| turbojpeg::Error::IntegerOverflow("JPEG size"))?;
        let meta = FrameMeta {
            at_ms,
            width,
            height,
            format: ImageFormat::Jpeg,
            size_bytes,
            sha256: Sha256::digest(&bytes).into(),
            blurred: blur,
        };
        Ok(Some(Capture {
            image: CapturedImage { meta, bytes },
            pixel_hash,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(name: &str, x: i32, y: i32, width: u32) -> MonitorInfo {
        MonitorInfo {
            index: 99,
            x,
            y,
            width,
            height: 1080,
            name: name.to_owned(),
        }
    }

    #[test]
    fn monitors_are_numbered_left_to_right_then_top_to_bottom() {
        let sorted = sort_monitors(vec![
            monitor("right", 1920, 0, 1920),
            monitor("below", 0, 1080, 1920),
            monitor("left", 0, 0, 1920),
            monitor("narrow", 0, 0, 960),
            monitor("negative", -1280, 200, 1280),
        ]);
        let order: Vec<(u16, &str)> = sorted.iter().map(|m| (m.index, m.name.as_str())).collect();
        assert_eq!(
            order,
            [
                (0, "negative"),
                (1, "narrow"),
                (2, "left"),
                (3, "below"),
                (4, "right")
            ]
        );
    }

    /// 2026-03-02 08:15:42 UTC.
    const AT_MS: i64 = 1_772_439_342_000;

    fn decode(capture: &Capture) -> image::RgbImage {
        let decoded =
            image::load_from_memory_with_format(&capture.image.bytes, image::ImageFormat::Jpeg)
                .expect("a decodable JPEG")
                .to_rgb8();
        let meta = &capture.image.meta;
        assert_eq!(
            (decoded.width(), decoded.height()),
            (meta.width, meta.height)
        );
        assert_eq!(meta.size_bytes as usize, capture.image.bytes.len());
        let digest: [u8; 32] = Sha256::digest(&capture.image.bytes).into();
        assert_eq!(meta.sha256, digest);
        decoded
    }

    /// Mean colour of a rectangle of `image`.
    fn mean(
        image: &image::RgbImage,
        xs: std::ops::Range<u32>,
        ys: std::ops::Range<u32>,
    ) -> [u32; 3] {
        let mut sums = [0_u32; 3];
        let mut count = 0;
        for y in ys {
            for x in xs.clone() {
                for (sum, value) in sums.iter_mut().zip(image.get_pixel(x, y).0) {
                    *sum += u32::from(value);
                }
                count += 1;
            }
        }
        sums.map(|sum| sum / count)
    }

    fn near(got: [u32; 3], want: Rgb, tolerance: u32) -> bool {
        got.iter()
            .zip([want.0, want.1, want.2])
            .all(|(&got, want)| got.abs_diff(u32::from(want)) <= tolerance)
    }

    #[test]
    fn demo_frames_change_every_second_and_carry_the_banner() {
        let mut capturer = Capturer::open(ScreenSource::Demo { seed: 7 }).expect("demo source");
        assert_eq!(capturer.backend(), "demo");
        assert_eq!(
            capturer.monitors().expect("monitors"),
            [MonitorInfo {
                index: 0,
                x: 0,
                y: 0,
                width: DEMO_WIDTH_PX,
                height: DEMO_HEIGHT_PX,
                name: DEMO_MONITOR_NAME.to_owned(),
            }]
        );
        let live = CaptureSpec {
            monitor: None,
            max_width: 1280,
            max_height: 720,
            quality: LIVE_QUALITY,
        };
        let first = capturer
            .capture(&live, false, None, AT_MS)
            .expect("capture")
            .expect("a frame");
        assert_eq!(first.image.meta.at_ms, AT_MS);
        assert!(!first.image.meta.blurred);
        let image = decode(&first);
        assert_eq!((image.width(), image.height()), (1280, 720));

        // The banner: orange left of its text, and white letters in it.
        let banner = BANNER_HEIGHT_PX;
        assert!(near(mean(&image, 8..400, 4..banner - 4), BANNER_RGB, 12));
        let white = (448..832)
            .flat_map(|x| (8..48).map(move |y| (x, y)))
            .filter(|&(x, y)| image.get_pixel(x, y).0.iter().all(|&v| v > 200))
            .count();
        assert!(white > 1_500, "{white} white pixels of banner text");

        // Same time, same picture: skipped. A second later: a new frame.
        let same = capturer
            .capture(&live, false, Some(first.pixel_hash), AT_MS + 400)
            .expect("capture");
        assert_eq!(same.map(|capture| capture.pixel_hash), None);
        let next = capturer
            .capture(&live, false, Some(first.pixel_hash), AT_MS + 1_000)
            .expect("capture")
            .expect("the clock moved");
        assert_ne!(next.pixel_hash, first.pixel_hash);
        assert_eq!(next.image.meta.at_ms, AT_MS + 1_000);
        decode(&next);

        // A thumbnail keeps the banner at the top.
        let thumbnail = CaptureSpec {
            monitor: Some(0),
            max_width: THUMBNAIL_MAX_WIDTH_PX,
            max_height: THUMBNAIL_MAX_HEIGHT_PX,
            quality: THUMBNAIL_QUALITY,
        };
        let small = capturer
            .capture(&thumbnail, true, None, AT_MS)
            .expect("capture")
            .expect("a frame");
        assert!(small.image.meta.blurred);
        let image = decode(&small);
        assert_eq!((image.width(), image.height()), (320, 180));
        assert!(near(mean(&image, 4..100, 3..10), BANNER_RGB, 24));

        let error = capturer
            .capture(
                &CaptureSpec {
                    monitor: Some(1),
                    ..live
                },
                false,
                None,
                AT_MS,
            )
            .expect_err("the demo has one monitor");
        assert!(
            matches!(error, CaptureError::NoSuchMonitor { index: 1, count: 1 }),
            "{error}"
        );
    }

    #[test]
    fn demo_seeds_draw_different_desktops() {
        let spec = CaptureSpec {
            monitor: None,
            max_width: 640,
            max_height: 360,
            quality: LIVE_QUALITY,
        };
        let mut hashes = Vec::new();
        for seed in [1, 2, 3] {
            let mut capturer = Capturer::open(ScreenSource::Demo { seed }).expect("demo source");
            let capture = capturer
                .capture(&spec, false, None, AT_MS)
                .expect("capture")
                .expect("a frame");
            hashes.push(capture.pixel_hash);
        }
        hashes.dedup();
        assert_eq!(hashes.len(), 3, "{hashes:?}");
    }

    #[test]
    fn the_capturer_can_move_between_threads() {
        fn assert_send<T: Send + std::fmt::Debug>() {}
        assert_send::<Capturer>();
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let errors = [
            CaptureError::NoDisplay,
            CaptureError::NoSuchMonitor { index: 3, count: 2 },
            CaptureError::UnsupportedFormat {
                detail: "root window depth 16".to_owned(),
            },
        ];
        for error in errors {
            let message = error.to_string();
            assert!(message.contains("; "), "{message}");
        }
        assert!(CaptureError::NoDisplay
            .to_string()
            .starts_with("no X display: DISPLAY is not set"));
        assert!(CaptureError::NoSuchMonitor { index: 3, count: 2 }
            .to_string()
            .contains("has 2 monitor(s)"));
    }
}
