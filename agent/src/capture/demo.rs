//! The simulated desktop of demo agents (pure): a 1280x720 picture drawn
//! from a seed and a time, with a background, app windows, a taskbar whose
//! clock shows the time, and a "SIMULATED / DÉMO" banner, so a console's
//! live view of a demo agent visibly moves every second and can never be
//! mistaken for a real screen.

use super::pixels::{Pixels, BYTES_PER_PIXEL};
use super::{CaptureError, ChannelOrder, Grab, MonitorInfo};

/// Width of the simulated desktop.
pub const DEMO_WIDTH_PX: u32 = 1280;
/// Height of the simulated desktop.
pub const DEMO_HEIGHT_PX: u32 = 720;
/// Name of the demo source's only monitor.
pub const DEMO_MONITOR_NAME: &str = "DEMO-1";
/// Height of the banner across the top.
pub const BANNER_HEIGHT_PX: u32 = 56;
/// The banner's colour (orange), as RGB.
pub const BANNER_RGB: Rgb = Rgb(255, 140, 0);
/// The banner's text.
pub const BANNER_TEXT: &str = "SIMULATED / DÉMO";
/// Height of the taskbar along the bottom.
pub const TASKBAR_HEIGHT_PX: u32 = 40;
/// Colour of the banner text and the clock.
pub const TEXT_RGB: Rgb = Rgb(255, 255, 255);

const TASKBAR_RGB: Rgb = Rgb(32, 34, 44);
const WINDOW_BODY_RGB: Rgb = Rgb(246, 246, 244);
const TEXT_LINE_RGB: Rgb = Rgb(150, 152, 160);
const BACKGROUNDS: [(Rgb, Rgb); 4] = [
    (Rgb(28, 84, 120), Rgb(12, 36, 60)),
    (Rgb(84, 52, 120), Rgb(30, 18, 54)),
    (Rgb(36, 110, 74), Rgb(14, 44, 30)),
    (Rgb(70, 80, 96), Rgb(26, 30, 38)),
];
const TITLE_BARS: [Rgb; 4] = [
    Rgb(52, 101, 164),
    Rgb(204, 0, 0),
    Rgb(78, 154, 6),
    Rgb(117, 80, 123),
];
const WINDOWS: usize = 3;
const TITLE_BAR_HEIGHT_PX: u32 = 28;
const MS_PER_DAY: i64 = 86_400_000;

/// A colour as red, green, blue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// The pixel's bytes in B, G, R, X order.
    fn bgrx(self) -> [u8; 4] {
        [self.2, self.1, self.0, 0xff]
    }

    fn mix(self, other: Rgb, num: u32, den: u32) -> Rgb {
        let channel = |a: u8, b: u8| {
            let value = (u32::from(a) * (den - num) + u32::from(b) * num) / den.max(1);
            // A weighted mean of two bytes.
            value as u8
        };
        Rgb(
            channel(self.0, other.0),
            channel(self.1, other.1),
            channel(self.2, other.2),
        )
    }
}

/// splitmix64: a small deterministic generator, so the picture depends
/// on the seed only, never on a library's version.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `low..high` (`high > low`).
    fn range(&mut self, low: u32, high: u32) -> u32 {
        // The remainder is below `high - low`, a u32.
        low + (self.next() % u64::from(high - low)) as u32
    }
}

/// A canvas of B, G, R, X pixels that clips everything drawn on it.
struct Canvas<'a> {
    pixels: &'a mut Pixels,
}

impl Canvas<'_> {
    fn fill(&mut self, x: u32, y: u32, width: u32, height: u32, colour: Rgb) {
        let x_end = x.saturating_add(width).min(self.pixels.width);
        let y_end = y.saturating_add(height).min(self.pixels.height);
        let pixel = colour.bgrx();
        let stride = self.pixels.width as usize * BYTES_PER_PIXEL;
        for row in y..y_end {
            let start = row as usize * stride;
            let line = &mut self.pixels.bytes[start..start + stride];
            for column in x..x_end {
                let at = column as usize * BYTES_PER_PIXEL;
                line[at..at + BYTES_PER_PIXEL].copy_from_slice(&pixel);
            }
        }
    }

    /// Draws `text` in the built-in font, each font pixel a `scale` x
    /// `scale` square, top left at (x, y); returns the width drawn.
    fn text(&mut self, text: &str, x: u32, y: u32, scale: u32, colour: Rgb) -> u32 {
        let mut pen = x;
        for character in text.chars() {
            for (row, bits) in glyph(character).iter().enumerate() {
                for column in 0..GLYPH_WIDTH {
                    if bits & (1 << (GLYPH_WIDTH - 1 - column)) != 0 {
                        self.fill(
                            pen + column * scale,
                            y + row as u32 * scale,
                            scale,
                            scale,
                            colour,
                        );
                    }
                }
            }
            pen += GLYPH_ADVANCE * scale;
        }
        pen - x
    }
}

/// Width in font pixels of the text, as [`Canvas::text`] draws it.
fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * GLYPH_ADVANCE * scale
}

/// Draws the simulated desktop at `at_ms` into `out` (B, G, R, X).
pub fn render_desktop(seed: u64, at_ms: i64, out: &mut Pixels) {
    out.width = DEMO_WIDTH_PX;
    out.height = DEMO_HEIGHT_PX;
    out.bytes.clear();
    out.bytes.resize(
        DEMO_WIDTH_PX as usize * DEMO_HEIGHT_PX as usize * BYTES_PER_PIXEL,
        0,
    );
    let mut rng = SplitMix(seed);
    let mut canvas = Canvas { pixels: out };

    // Background: a vertical gradient.
    let (top, bottom) = BACKGROUNDS[rng.range(0, BACKGROUNDS.len() as u32) as usize];
    for y in 0..DEMO_HEIGHT_PX {
        canvas.fill(0, y, DEMO_WIDTH_PX, 1, top.mix(bottom, y, DEMO_HEIGHT_PX));
    }

    // App windows, the last one in front; its text grows every second.
    let seconds = at_ms.div_euclid(1_000);
    for window in 0..WINDOWS {
        let x = rng.range(24, 560);
        let y = rng.range(BANNER_HEIGHT_PX + 16, 260);
        let width = rng.range(420, 680);
        let height = rng.range(260, 380);
        let title = TITLE_BARS[rng.range(0, TITLE_BARS.len() as u32) as usize];
        canvas.fill(x + 6, y + 6, width, height, Rgb(0, 0, 0).mix(top, 1, 2));
        canvas.fill(x, y, width, height, WINDOW_BODY_RGB);
        canvas.fill(x, y, width, TITLE_BAR_HEIGHT_PX, title);
        for (offset, button) in [Rgb(237, 106, 94), Rgb(245, 191, 79), Rgb(98, 197, 84)]
            .into_iter()
            .enumerate()
        {
            canvas.fill(x + width - 26 - 22 * offset as u32, y + 8, 12, 12, button);
        }
        canvas.fill(
            x + 12,
            y + 9,
            rng.range(80, 200),
            10,
            title.mix(TEXT_RGB, 2, 3),
        );
        let lines = (height - TITLE_BAR_HEIGHT_PX - 16) / 18;
        let shown = if window + 1 == WINDOWS {
            // Within u32: the remainder is below `lines + 1`.
            seconds.rem_euclid(i64::from(lines) + 1) as u32
        } else {
            lines
        };
        for line in 0..shown {
            let length = rng.range(width / 4, width - 32);
            canvas.fill(
                x + 16,
                y + TITLE_BAR_HEIGHT_PX + 12 + line * 18,
                length,
                8,
                TEXT_LINE_RGB,
            );
        }
    }

    // Taskbar with a start button, app buttons and the clock (UTC).
    let bar_y = DEMO_HEIGHT_PX - TASKBAR_HEIGHT_PX;
    canvas.fill(0, bar_y, DEMO_WIDTH_PX, TASKBAR_HEIGHT_PX, TASKBAR_RGB);
    canvas.fill(8, bar_y + 6, 28, 28, Rgb(50, 120, 220));
    for (slot, colour) in TITLE_BARS.iter().take(WINDOWS).enumerate() {
        let x = 48 + slot as u32 * 150;
        canvas.fill(x, bar_y + 6, 140, 28, Rgb(62, 64, 78));
        canvas.fill(x + 8, bar_y + 14, 12, 12, *colour);
    }
    let clock = clock_text(at_ms);
    let clock_scale = 3;
    let clock_x = DEMO_WIDTH_PX - 16 - text_width(&clock, clock_scale);
    canvas.text(&clock, clock_x, bar_y + 6, clock_scale, TEXT_RGB);

    // The banner last, over everything.
    canvas.fill(0, 0, DEMO_WIDTH_PX, BANNER_HEIGHT_PX, BANNER_RGB);
    let banner_scale = 4;
    let banner_x = (DEMO_WIDTH_PX - text_width(BANNER_TEXT, banner_scale)) / 2;
    canvas.text(BANNER_TEXT, banner_x, 4, banner_scale, TEXT_RGB);
}

/// The demo source: one monitor showing the simulated desktop.
#[derive(Debug)]
pub(super) struct DemoScreen {
    seed: u64,
    desktop: Pixels,
}

impl DemoScreen {
    pub(super) fn new(seed: u64) -> Self {
        DemoScreen {
            seed,
            desktop: Pixels::default(),
        }
    }

    pub(super) fn monitors(&self) -> Vec<MonitorInfo> {
        vec![MonitorInfo {
            index: 0,
            x: 0,
            y: 0,
            width: DEMO_WIDTH_PX,
            height: DEMO_HEIGHT_PX,
            name: DEMO_MONITOR_NAME.to_owned(),
        }]
    }

    pub(super) fn grab(
        &mut self,
        monitor: Option<u16>,
        at_ms: i64,
    ) -> Result<Grab<'_>, CaptureError> {
        if let Some(index) = monitor.filter(|&index| index > 0) {
            return Err(CaptureError::NoSuchMonitor { index, count: 1 });
        }
        render_desktop(self.seed, at_ms, &mut self.desktop);
        Ok(Grab {
            view: self.desktop.view(),
            order: ChannelOrder::Bgrx,
        })
    }
}

/// `HH:MM:SS` of `at_ms` in UTC.
pub fn clock_text(at_ms: i64) -> String {
    let seconds = at_ms.rem_euclid(MS_PER_DAY) / 1_000;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60
    )
}

const GLYPH_WIDTH: u32 = 5;
/// Glyph width plus one column of spacing.
const GLYPH_ADVANCE: u32 = 6;

/// Rows of a 5x9 glyph, most significant bit on the left; the first two
/// rows hold accents. Unknown characters draw as a box.
fn glyph(character: char) -> [u8; 9] {
    let body: [u8; 7] = match character {
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        ':' => [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
        '/' => [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        ' ' => [0x00; 7],
        'A' => [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        'D' => [0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e],
        'E' | 'É' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
        'I' => [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
        'M' => [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11],
        'O' => [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        'S' => [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
        'T' => [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        _ => [0x1f, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1f],
    };
    let accent: [u8; 2] = if character == 'É' {
        [0x02, 0x04]
    } else {
        [0x00, 0x00]
    };
    let mut rows = [0; 9];
    rows[..2].copy_from_slice(&accent);
    rows[2..].copy_from_slice(&body);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(seed: u64, at_ms: i64) -> Pixels {
        let mut out = Pixels::default();
        render_desktop(seed, at_ms, &mut out);
        out
    }

    fn rgb_at(pixels: &Pixels, x: u32, y: u32) -> Rgb {
        let at = (y as usize * pixels.width as usize + x as usize) * BYTES_PER_PIXEL;
        let bytes = &pixels.bytes[at..at + 3];
        Rgb(bytes[2], bytes[1], bytes[0])
    }

    /// 2026-03-02 08:15:42.250 UTC.
    const AT_MS: i64 = 1_772_439_342_250;

    #[test]
    fn the_clock_reads_the_utc_time() {
        let cases = [
            (AT_MS, "08:15:42"),
            (0, "00:00:00"),
            (MS_PER_DAY - 1, "23:59:59"),
            (-1, "23:59:59"),
            (AT_MS + 1_000, "08:15:43"),
        ];
        for (at_ms, want) in cases {
            assert_eq!(clock_text(at_ms), want, "{at_ms}");
        }
    }

    #[test]
    fn the_same_seed_and_time_draw_the_same_desktop() {
        let first = render(7, AT_MS);
        assert_eq!((first.width, first.height), (DEMO_WIDTH_PX, DEMO_HEIGHT_PX));
        assert_eq!(first, render(7, AT_MS));
        // Within the same second nothing moves.
        assert_eq!(first, render(7, AT_MS + 500));
        assert_ne!(first, render(7, AT_MS + 1_000), "the next second differs");
        assert_ne!(first, render(8, AT_MS), "another seed, another desktop");
    }

    #[test]
    fn the_banner_is_orange_with_white_text_across_the_top() {
        let pixels = render(7, AT_MS);
        let mut white = 0;
        for y in 0..BANNER_HEIGHT_PX {
            for x in 0..DEMO_WIDTH_PX {
                match rgb_at(&pixels, x, y) {
                    colour if colour == TEXT_RGB => white += 1,
                    colour => assert_eq!(colour, BANNER_RGB, "({x}, {y})"),
                }
            }
        }
        // 15 visible glyphs of about 15 lit font pixels, each 4x4.
        assert!(white > 2_000, "{white} white pixels of banner text");
        assert_eq!(rgb_at(&pixels, 4, 4), BANNER_RGB);
    }

    #[test]
    fn the_clock_is_drawn_in_the_taskbar() {
        let a = render(7, AT_MS);
        let b = render(7, AT_MS + 1_000);
        let bar_y = DEMO_HEIGHT_PX - TASKBAR_HEIGHT_PX;
        let clock_x = DEMO_WIDTH_PX - 16 - text_width("08:15:42", 3);
        let mut differing = 0;
        for y in 0..DEMO_HEIGHT_PX {
            for x in 0..DEMO_WIDTH_PX {
                if rgb_at(&a, x, y) != rgb_at(&b, x, y) {
                    let in_clock = y >= bar_y && x >= clock_x;
                    let in_windows = y > BANNER_HEIGHT_PX && y < bar_y;
                    assert!(in_clock || in_windows, "({x}, {y}) changed");
                    differing += usize::from(in_clock);
                }
            }
        }
        // "2" becomes "3" in the last digit.
        assert!(differing > 20, "{differing} clock pixels changed");
    }
}
