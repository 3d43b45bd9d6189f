//! Pure image functions of the capture pipeline: spec clamping, output
//! sizes, area-averaging downscale, box blur and pixel hashing, on 32-bit
//! pixels (B, G, R, X or R, G, B, A). No I/O, no clock: same input, same
//! output.

use protocol::CaptureSpec;

/// Bytes of one pixel in every image handled here.
pub const BYTES_PER_PIXEL: usize = 4;
/// Smallest width or height a spec may ask for.
pub const MIN_SIDE_PX: u16 = 16;
/// Largest width a spec may ask for.
pub const MAX_WIDTH_PX: u16 = 3840;
/// Largest height a spec may ask for.
pub const MAX_HEIGHT_PX: u16 = 2160;
/// Lowest JPEG quality a spec may ask for.
pub const MIN_QUALITY: u8 = 1;
/// Highest JPEG quality a spec may ask for (above it files grow for
/// nothing a person can see).
pub const MAX_QUALITY: u8 = 95;
/// Blur radius in screen pixels, before downscaling: large enough that
/// letters of ordinary UI text (7–9 px wide) melt into grey blobs.
pub const BLUR_SOURCE_RADIUS_PX: u32 = 10;
/// Smallest blur radius in output pixels, so small thumbnails still blur.
pub const MIN_BLUR_RADIUS_PX: u32 = 2;
/// Box-blur passes: three approximate a Gaussian.
pub const BLUR_PASSES: u32 = 3;
/// The value written to the fourth byte of every output pixel.
const OPAQUE: u8 = 0xff;

/// Why bytes cannot be read as an image of the claimed layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{width}x{height} pixels with rows {stride_bytes} bytes apart do not fit in {len_bytes} bytes"
)]
pub struct LayoutError {
    pub width: u32,
    pub height: u32,
    pub stride_bytes: usize,
    pub len_bytes: usize,
}

/// A borrowed image of 32-bit pixels whose rows start `stride_bytes` apart.
#[derive(Debug, Clone, Copy)]
pub struct PixelView<'a> {
    bytes: &'a [u8],
    width: u32,
    height: u32,
    stride_bytes: usize,
}

impl<'a> PixelView<'a> {
    /// Checks that `bytes` holds `height` rows of `width` pixels, rows
    /// `stride_bytes` apart (the last row may stop at its last pixel), and
    /// that the image is not empty.
    pub fn new(
        bytes: &'a [u8],
        width: u32,
        height: u32,
        stride_bytes: usize,
    ) -> Result<Self, LayoutError> {
        let error = LayoutError {
            width,
            height,
            stride_bytes,
            len_bytes: bytes.len(),
        };
        let row_bytes = usize::try_from(width)
            .ok()
            .and_then(|width| width.checked_mul(BYTES_PER_PIXEL))
            .ok_or_else(|| error.clone())?;
        let needed_bytes = usize::try_from(height)
            .ok()
            .and_then(|height| height.checked_sub(1))
            .and_then(|rows| rows.checked_mul(stride_bytes))
            .and_then(|bytes| bytes.checked_add(row_bytes));
        match needed_bytes {
            Some(needed) if width > 0 && stride_bytes >= row_bytes && needed <= bytes.len() => {
                Ok(PixelView {
                    bytes,
                    width,
                    height,
                    stride_bytes,
                })
            }
            _ => Err(error),
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels of row `y` (without the stride's padding).
    fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride_bytes;
        &self.bytes[start..start + self.width as usize * BYTES_PER_PIXEL]
    }
}

/// An owned image of tightly packed 32-bit pixels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pixels {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Pixels {
    pub fn view(&self) -> PixelView<'_> {
        PixelView {
            bytes: &self.bytes,
            width: self.width,
            height: self.height,
            stride_bytes: self.width as usize * BYTES_PER_PIXEL,
        }
    }
}

/// Copies `src` into `dst` with its top left corner at (`x`, `y`),
/// clipping whatever falls outside `dst`.
pub fn blit(dst: &mut Pixels, src: PixelView<'_>, x: u32, y: u32) {
    let dst_stride = dst.width as usize * BYTES_PER_PIXEL;
    let columns = src.width.min(dst.width.saturating_sub(x)) as usize;
    let rows = src.height.min(dst.height.saturating_sub(y)) as usize;
    for row in 0..rows {
        let start = (y as usize + row) * dst_stride + x as usize * BYTES_PER_PIXEL;
        dst.bytes[start..start + columns * BYTES_PER_PIXEL]
            .copy_from_slice(&src.row(row)[..columns * BYTES_PER_PIXEL]);
    }
}

/// `spec` with every field brought into the agent's limits.
pub fn clamp_spec(spec: &CaptureSpec) -> CaptureSpec {
    CaptureSpec {
        monitor: spec.monitor,
        max_width: spec.max_width.clamp(MIN_SIDE_PX, MAX_WIDTH_PX),
        max_height: spec.max_height.clamp(MIN_SIDE_PX, MAX_HEIGHT_PX),
        quality: spec.quality.clamp(MIN_QUALITY, MAX_QUALITY),
    }
}

/// The largest size with the source's aspect ratio that fits in
/// `max_width` x `max_height`, never larger than the source: the limiting
/// side is exact, the other rounded to the nearest pixel (at least 1).
pub fn fit_size(src_width: u32, src_height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    if src_width <= max_width && src_height <= max_height {
        return (src_width, src_height);
    }
    let (src_w, src_h) = (u64::from(src_width), u64::from(src_height));
    let (max_w, max_h) = (u64::from(max_width), u64::from(max_height));
    let scaled = |side: u64, num: u64, den: u64, max: u64| {
        let rounded = (side * num + den / 2) / den.max(1);
        // Within u32: at most `max`, itself a u32.
        rounded.clamp(1, max) as u32
    };
    if src_w * max_h >= src_h * max_w {
        (max_width, scaled(src_h, max_w, src_w, max_h))
    } else {
        (scaled(src_w, max_h, src_h, max_w), max_height)
    }
}

/// Which source pixels make up one output pixel along one axis, in units
/// of 1/`dst_len` source pixel: the output pixel covers `src_len` units,
/// source pixel `i` covers `[i * dst_len, (i + 1) * dst_len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    first: usize,
    last: usize,
    /// Weight of `first`; `last` gets `last_weight`, pixels between get
    /// `dst_len`. When `first == last`, `first_weight` is the whole span.
    first_weight: u32,
    last_weight: u32,
}

fn span(index: u64, src_len: u64, dst_len: u64) -> Span {
    let start = index * src_len;
    let end = start + src_len;
    let first = start / dst_len;
    let last = (end - 1) / dst_len;
    let (first_weight, last_weight) = if first == last {
        (src_len, 0)
    } else {
        ((first + 1) * dst_len - start, end - last * dst_len)
    };
    // Every value here is at most `src_len` or an index below it, and
    // `src_len` is a u32 image side.
    Span {
        first: first as usize,
        last: last as usize,
        first_weight: first_weight as u32,
        last_weight: last_weight as u32,
    }
}

/// Exact `round(n / d)` (halves up) for `d < 2^36` and quotients up to
/// 256, by one floating-point multiplication: far cheaper than a 64-bit
/// division per channel.
#[derive(Debug, Clone, Copy)]
struct Divider {
    half: u64,
    reciprocal: f64,
}

/// Added before truncating: larger than the product's error (below
/// 2^-44 for quotients up to 256), smaller than the distance from a
/// non-integer quotient to the next integer (at least 1/d > 2^-36).
const DIVIDER_NUDGE: f64 = 1.0 / (1_u64 << 40) as f64;

impl Divider {
    fn new(divisor: u64) -> Self {
        let divisor = divisor.max(1);
        Divider {
            half: divisor / 2,
            reciprocal: 1.0 / divisor as f64,
        }
    }

    fn round(&self, n: u64) -> u64 {
        // Below 2^53, so exact as f64 (through i64: x86 converts signed
        // integers in one instruction); truncation floors a positive value.
        let n = (n + self.half) as i64;
        (n as f64 * self.reciprocal + DIVIDER_NUDGE) as i64 as u64
    }
}

/// Reusable buffers of [`downscale_into`].
#[derive(Debug, Default)]
pub struct DownscaleScratch {
    column_sums: Vec<u32>,
}

/// Downscales `src` to `dst_width` x `dst_height` (each at most the
/// source's) by exact area averaging, rounded to nearest, into `out`
/// (tightly packed). Channel order is kept; the fourth byte of every
/// output pixel is 0xff whatever the source held (X servers leave it
/// undefined), so equal screens give equal bytes.
pub fn downscale_into(
    src: PixelView<'_>,
    dst_width: u32,
    dst_height: u32,
    scratch: &mut DownscaleScratch,
    out: &mut Pixels,
) {
    let dst_width = dst_width.clamp(1, src.width);
    let dst_height = dst_height.clamp(1, src.height);
    out.width = dst_width;
    out.height = dst_height;
    out.bytes.clear();
    out.bytes
        .reserve(dst_width as usize * dst_height as usize * BYTES_PER_PIXEL);
    if (dst_width, dst_height) == (src.width, src.height) {
        for y in 0..src.height as usize {
            let start = out.bytes.len();
            out.bytes.extend_from_slice(src.row(y));
            for pixel in out.bytes[start..].chunks_exact_mut(BYTES_PER_PIXEL) {
                pixel[3] = OPAQUE;
            }
        }
        return;
    }

    let (src_w, src_h) = (u64::from(src.width), u64::from(src.height));
    let (dst_w, dst_h) = (u64::from(dst_width), u64::from(dst_height));
    let column_spans: Vec<Span> = (0..dst_w).map(|x| span(x, src_w, dst_w)).collect();
    // Sum of all weights of one output pixel: src_w * src_h units.
    let divider = Divider::new(src_w * src_h);
    let row_len = src.width as usize * BYTES_PER_PIXEL;
    scratch.column_sums.clear();
    scratch.column_sums.resize(row_len, 0);

    for y in 0..dst_h {
        // Vertical pass: weighted sum of the covered source rows, per byte
        // (at most 255 * src_h, within u32). When every row weighs the
        // same (integer factors), rows are only added and the weight is
        // applied once per output pixel.
        let rows = span(y, src_h, dst_h);
        let uniform = rows.first == rows.last
            || (rows.first_weight == dst_height && rows.last_weight == dst_height);
        let row_weight = if uniform {
            u64::from(rows.first_weight)
        } else {
            1
        };
        let sums = &mut scratch.column_sums;
        sums.fill(0);
        for j in rows.first..=rows.last {
            let row = src.row(j);
            if uniform {
                for (sum, &byte) in sums.iter_mut().zip(row) {
                    *sum += u32::from(byte);
                }
            } else {
                let weight = if j == rows.first {
                    rows.first_weight
                } else if j == rows.last {
                    rows.last_weight
                } else {
                    dst_height
                };
                for (sum, &byte) in sums.iter_mut().zip(row) {
                    *sum += u32::from(byte) * weight;
                }
            }
        }
        // Horizontal pass over the column sums.
        for columns in &column_spans {
            let first = columns.first * BYTES_PER_PIXEL;
            let mut pixel = [0_u64; 3];
            for (channel, value) in pixel.iter_mut().enumerate() {
                *value = u64::from(sums[first + channel]) * u64::from(columns.first_weight);
            }
            if columns.last > columns.first {
                let last = columns.last * BYTES_PER_PIXEL;
                let mut interior = [0_u64; 3];
                for between in sums[first + BYTES_PER_PIXEL..last].chunks_exact(BYTES_PER_PIXEL) {
                    for (sum, &value) in interior.iter_mut().zip(between) {
                        *sum += u64::from(value);
                    }
                }
                for (channel, value) in pixel.iter_mut().enumerate() {
                    *value += interior[channel] * dst_w
                        + u64::from(sums[last + channel]) * u64::from(columns.last_weight);
                }
            }
            // Averages of bytes: at most 255.
            out.bytes.extend_from_slice(&[
                divider.round(pixel[0] * row_weight) as u8,
                divider.round(pixel[1] * row_weight) as u8,
                divider.round(pixel[2] * row_weight) as u8,
                OPAQUE,
            ]);
        }
    }
}

/// Blur radius in output pixels for an image downscaled from
/// `src_width` to `dst_width` pixels across: [`BLUR_SOURCE_RADIUS_PX`]
/// screen pixels, at least [`MIN_BLUR_RADIUS_PX`].
pub fn blur_radius_px(src_width: u32, dst_width: u32) -> u32 {
    let scaled = (u64::from(BLUR_SOURCE_RADIUS_PX) * u64::from(dst_width)
        + u64::from(src_width) / 2)
        / u64::from(src_width.max(1));
    u32::try_from(scaled)
        .unwrap_or(u32::MAX)
        .max(MIN_BLUR_RADIUS_PX)
}

/// Largest blur radius [`box_blur`] applies, so that window sums times
/// their reciprocal stay exact and within u32.
pub const MAX_BLUR_RADIUS_PX: u32 = 63;

/// `2^16 / count`, rounded up: `(sum * it + 2^15) >> 16` is `sum / count`
/// rounded, exact for a window of equal values, for windows of at most
/// 127 pixels.
fn window_reciprocal(count: usize) -> u32 {
    (1_u32 << 16).div_ceil(count as u32)
}

fn window_mean(sum: u32, reciprocal: u32) -> u8 {
    // At most 255 * 127 * 2^16 / 1 < 2^32, and the mean is a byte.
    ((sum * reciprocal + (1 << 15)) >> 16) as u8
}

/// Blurs `pixels` in place with `passes` separable box blurs of
/// `radius_px` (at most [`MAX_BLUR_RADIUS_PX`]; windows shrink at the
/// edges, so a uniform area keeps its exact colour). `spare` is a
/// reusable buffer.
pub fn box_blur(pixels: &mut Pixels, radius_px: u32, passes: u32, spare: &mut Vec<u8>) {
    if radius_px == 0 || pixels.bytes.is_empty() {
        return;
    }
    let width = pixels.width as usize;
    let height = pixels.height as usize;
    let radius = radius_px.min(MAX_BLUR_RADIUS_PX) as usize;
    let reciprocals: Vec<u32> = (0..=2 * radius + 1)
        .map(|count| window_reciprocal(count.max(1)))
        .collect();
    spare.clear();
    spare.resize(pixels.bytes.len(), OPAQUE);
    for _ in 0..passes {
        blur_rows(&pixels.bytes, spare, width, radius, &reciprocals);
        blur_columns(
            spare,
            &mut pixels.bytes,
            width,
            height,
            radius,
            &reciprocals,
        );
    }
}

/// Horizontal box blur of every row of `src` into `dst`.
fn blur_rows(src: &[u8], dst: &mut [u8], width: usize, radius: usize, reciprocals: &[u32]) {
    let row_len = width * BYTES_PER_PIXEL;
    let add = |sums: &mut [u32; 3], pixel: &[u8]| {
        for (sum, &value) in sums.iter_mut().zip(pixel) {
            *sum += u32::from(value);
        }
    };
    for (src_row, dst_row) in src.chunks_exact(row_len).zip(dst.chunks_exact_mut(row_len)) {
        let pixels: Vec<&[u8]> = src_row.chunks_exact(BYTES_PER_PIXEL).collect();
        let mut sums = [0_u32; 3];
        // Window of x = 0: pixels 0..=radius.
        let mut count = radius.min(width - 1) + 1;
        for pixel in &pixels[..count] {
            add(&mut sums, pixel);
        }
        for (x, out) in dst_row.chunks_exact_mut(BYTES_PER_PIXEL).enumerate() {
            let reciprocal = reciprocals[count];
            for (byte, &sum) in out.iter_mut().zip(&sums) {
                *byte = window_mean(sum, reciprocal);
            }
            // Slide the window from [x - r, x + r] to [x + 1 - r, x + 1 + r].
            if let Some(entering) = pixels.get(x + radius + 1) {
                add(&mut sums, entering);
                count += 1;
            }
            if let Some(leaving) = x.checked_sub(radius) {
                for (sum, &value) in sums.iter_mut().zip(pixels[leaving]) {
                    *sum -= u32::from(value);
                }
                count -= 1;
            }
        }
    }
}

/// Vertical box blur of `src` into `dst`, a whole row at a time.
fn blur_columns(
    src: &[u8],
    dst: &mut [u8],
    width: usize,
    height: usize,
    radius: usize,
    reciprocals: &[u32],
) {
    let row_len = width * BYTES_PER_PIXEL;
    let rows: Vec<&[u8]> = src.chunks_exact(row_len).collect();
    let mut sums = vec![0_u32; row_len];
    let mut count = radius.min(height - 1) + 1;
    for row in &rows[..count] {
        for (sum, &byte) in sums.iter_mut().zip(*row) {
            *sum += u32::from(byte);
        }
    }
    for (y, out_row) in dst.chunks_exact_mut(row_len).enumerate() {
        let reciprocal = reciprocals[count];
        for (out, &sum) in out_row.iter_mut().zip(&sums) {
            *out = window_mean(sum, reciprocal);
        }
        let entering = rows.get(y + radius + 1);
        let leaving = y.checked_sub(radius).map(|leaving| rows[leaving]);
        match (entering, leaving) {
            (Some(entering), Some(leaving)) => {
                for ((sum, &enter), &leave) in sums.iter_mut().zip(*entering).zip(leaving) {
                    *sum = *sum + u32::from(enter) - u32::from(leave);
                }
            }
            (Some(entering), None) => {
                for (sum, &enter) in sums.iter_mut().zip(*entering) {
                    *sum += u32::from(enter);
                }
                count += 1;
            }
            (None, Some(leaving)) => {
                for (sum, &leave) in sums.iter_mut().zip(leaving) {
                    *sum -= u32::from(leave);
                }
                count -= 1;
            }
            (None, None) => {}
        }
    }
}

/// What besides the pixels decides the encoded frame; part of the hash so
/// a changed request never looks like an unchanged screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashContext {
    pub blurred: bool,
    pub quality: u8,
}

/// xxh3 of the downscaled pixels, seeded with their size and `context`.
pub fn pixel_hash(pixels: &Pixels, context: HashContext) -> u64 {
    let seed = (u64::from(pixels.width) << 32)
        ^ (u64::from(pixels.height) << 8)
        ^ (u64::from(context.quality) << 1)
        ^ u64::from(context.blurred);
    xxhash_rust::xxh3::xxh3_64_with_seed(&pixels.bytes, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tightly packed image whose pixel (x, y) is `colour(x, y)`.
    fn image(width: u32, height: u32, mut colour: impl FnMut(u32, u32) -> [u8; 4]) -> Pixels {
        let mut bytes = Vec::new();
        for y in 0..height {
            for x in 0..width {
                bytes.extend_from_slice(&colour(x, y));
            }
        }
        Pixels {
            bytes,
            width,
            height,
        }
    }

    fn grey(value: u8) -> [u8; 4] {
        [value, value, value, 0]
    }

    fn pixel(pixels: &Pixels, x: u32, y: u32) -> [u8; 4] {
        let at = (y as usize * pixels.width as usize + x as usize) * BYTES_PER_PIXEL;
        let mut out = [0; 4];
        out.copy_from_slice(&pixels.bytes[at..at + BYTES_PER_PIXEL]);
        out
    }

    fn downscale(src: &Pixels, width: u32, height: u32) -> Pixels {
        let mut out = Pixels::default();
        downscale_into(
            src.view(),
            width,
            height,
            &mut DownscaleScratch::default(),
            &mut out,
        );
        out
    }

    /// One channel of every pixel, row by row.
    fn channel(pixels: &Pixels, channel: usize) -> Vec<u8> {
        pixels
            .bytes
            .chunks_exact(BYTES_PER_PIXEL)
            .map(|pixel| pixel[channel])
            .collect()
    }

    #[test]
    fn spec_is_clamped_to_the_agent_limits() {
        let spec = |max_width, max_height, quality| CaptureSpec {
            monitor: Some(1),
            max_width,
            max_height,
            quality,
        };
        let cases = [
            (spec(320, 180, 70), spec(320, 180, 70)),
            (spec(0, 0, 0), spec(16, 16, 1)),
            (spec(15, 17, 1), spec(16, 17, 1)),
            (spec(u16::MAX, u16::MAX, u8::MAX), spec(3840, 2160, 95)),
            (spec(3840, 2161, 96), spec(3840, 2160, 95)),
            (spec(3841, 2160, 95), spec(3840, 2160, 95)),
        ];
        for (given, want) in cases {
            assert_eq!(clamp_spec(&given), want, "{given:?}");
        }
    }

    #[test]
    fn sizes_keep_the_aspect_and_never_upscale() {
        let cases = [
            // (source, box, expected)
            ((1920, 1080), (320, 180), (320, 180)),
            ((1920, 1080), (320, 320), (320, 180)),
            ((1920, 1080), (1280, 1280), (1280, 720)),
            ((1920, 1200), (320, 180), (288, 180)),
            ((1080, 1920), (320, 180), (101, 180)),
            ((3840, 1080), (1280, 720), (1280, 360)),
            ((100, 50), (320, 180), (100, 50)),
            ((320, 180), (320, 180), (320, 180)),
            ((321, 180), (320, 180), (320, 179)),
            ((3000, 10), (16, 16), (16, 1)),
            ((10, 3000), (16, 16), (1, 16)),
            ((1, 1), (16, 16), (1, 1)),
        ];
        for ((src_w, src_h), (max_w, max_h), want) in cases {
            assert_eq!(
                fit_size(src_w, src_h, max_w, max_h),
                want,
                "{src_w}x{src_h} into {max_w}x{max_h}"
            );
        }
    }

    #[test]
    fn downscale_averages_exact_areas() {
        struct Case {
            name: &'static str,
            src: Pixels,
            size: (u32, u32),
            want: Vec<u8>,
        }
        let row = |values: &[u8]| {
            let values = values.to_vec();
            image(values.len() as u32, 1, move |x, _| grey(values[x as usize]))
        };
        let cases = [
            Case {
                name: "2x2 blocks of 4x4",
                src: image(4, 4, |x, y| grey((y * 4 + x) as u8 * 10)),
                size: (2, 2),
                // Mean of {0,10,40,50}, {20,30,60,70}, {80,90,120,130}, ...
                want: vec![25, 45, 105, 125],
            },
            Case {
                name: "factor 1.5 (3 -> 2)",
                src: row(&[0, 90, 180]),
                size: (2, 1),
                // (2*0 + 90) / 3 and (90 + 2*180) / 3.
                want: vec![30, 150],
            },
            Case {
                name: "factor 2.5 (5 -> 2), odd width",
                src: row(&[0, 50, 100, 150, 200]),
                size: (2, 1),
                // (0 + 50 + 100/2) / 2.5 and (100/2 + 150 + 200) / 2.5.
                want: vec![40, 160],
            },
            Case {
                name: "factor 4/3 (4 -> 3)",
                src: row(&[0, 30, 60, 90]),
                size: (3, 1),
                // (3*0 + 30)/4, (2*30 + 2*60)/4, (60 + 3*90)/4 = 7.5, 45, 82.5
                want: vec![8, 45, 83],
            },
            Case {
                name: "rounds half up",
                src: row(&[0, 1]),
                size: (1, 1),
                want: vec![1],
            },
            Case {
                name: "whole image to one pixel, odd sizes",
                src: image(3, 5, |x, y| grey((x + 3 * y) as u8)),
                size: (1, 1),
                // Mean of 0..15 = 7.
                want: vec![7],
            },
            Case {
                name: "vertical factor 1.5 on a column",
                src: image(1, 3, |_, y| grey([0, 90, 180][y as usize])),
                size: (1, 2),
                want: vec![30, 150],
            },
            Case {
                name: "same size copies",
                src: row(&[3, 1, 4, 1, 5]),
                size: (5, 1),
                want: vec![3, 1, 4, 1, 5],
            },
            Case {
                name: "asked upscale keeps the source size",
                src: row(&[9, 8]),
                size: (4, 2),
                want: vec![9, 8],
            },
        ];
        for case in cases {
            let out = downscale(&case.src, case.size.0, case.size.1);
            for c in 0..3 {
                assert_eq!(channel(&out, c), case.want, "{}: channel {c}", case.name);
            }
            assert!(
                channel(&out, 3).iter().all(|&pad| pad == OPAQUE),
                "{}: fourth byte forced opaque",
                case.name
            );
        }
    }

    /// The area average computed the slow, obvious way: every source
    /// pixel's overlap with the output pixel, in the same units.
    fn reference_downscale(src: &Pixels, dst_width: u32, dst_height: u32) -> Vec<u8> {
        let (sw, sh) = (u64::from(src.width), u64::from(src.height));
        let (dw, dh) = (u64::from(dst_width), u64::from(dst_height));
        let overlap = |a0: u64, a1: u64, b0: u64, b1: u64| a1.min(b1).saturating_sub(a0.max(b0));
        let mut out = Vec::new();
        for y in 0..dh {
            for x in 0..dw {
                for channel in 0..3 {
                    let mut sum = 0_u64;
                    for j in 0..sh {
                        let wy = overlap(y * sh, (y + 1) * sh, j * dh, (j + 1) * dh);
                        for i in 0..sw {
                            let wx = overlap(x * sw, (x + 1) * sw, i * dw, (i + 1) * dw);
                            let value = pixel(src, i as u32, j as u32)[channel];
                            sum += wx * wy * u64::from(value);
                        }
                    }
                    out.push(((sum + sw * sh / 2) / (sw * sh)) as u8);
                }
                out.push(OPAQUE);
            }
        }
        out
    }

    #[test]
    fn downscale_matches_the_reference_on_noise() {
        let mut state = 0x1234_5678_u32;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        };
        let sizes = [
            // (source, destination)
            ((12, 12), (4, 4)),
            ((12, 12), (5, 7)),
            ((17, 9), (16, 9)),
            ((17, 9), (3, 2)),
            ((31, 29), (7, 11)),
            ((40, 7), (13, 1)),
            ((9, 40), (1, 13)),
            ((25, 25), (24, 24)),
        ];
        for ((sw, sh), (dw, dh)) in sizes {
            let src = image(sw, sh, |_, _| [noise(), noise(), noise(), noise()]);
            let got = downscale(&src, dw, dh);
            assert_eq!(
                got.bytes,
                reference_downscale(&src, dw, dh),
                "{sw}x{sh} -> {dw}x{dh}"
            );
        }
    }

    #[test]
    fn the_divider_rounds_exactly() {
        let divisors = [
            1,
            2,
            3,
            7,
            100,
            1_920 * 1_080,
            3_840 * 2_160,
            u32::MAX as u64,
        ];
        for divisor in divisors {
            let divider = Divider::new(divisor);
            let numerators = (0..2_000)
                .chain((1..300).map(|k| k * divisor - 1))
                .chain((1..300).map(|k| k * divisor))
                .chain((0..300).map(|k| k * divisor + divisor / 2))
                .chain([255 * divisor + divisor / 2 - 1]);
            for n in numerators {
                assert_eq!(
                    divider.round(n),
                    (n + divisor / 2) / divisor,
                    "{n} / {divisor}"
                );
            }
        }
    }

    #[test]
    fn window_means_are_exact_for_uniform_windows_and_near_otherwise() {
        for count in 1..=(2 * MAX_BLUR_RADIUS_PX as usize + 1) {
            let reciprocal = window_reciprocal(count);
            for value in [0_u32, 1, 127, 128, 200, 254, 255] {
                assert_eq!(
                    u32::from(window_mean(value * count as u32, reciprocal)),
                    value,
                    "{count} x {value}"
                );
            }
            for sum in (0..=255 * count as u32).step_by(7) {
                let exact = (sum as f64 / count as f64).round();
                let got = f64::from(window_mean(sum, reciprocal));
                assert!((got - exact).abs() <= 1.0, "{sum} / {count}: {got}");
            }
        }
    }

    #[test]
    fn downscale_keeps_channels_apart_and_uniform_colours_exact() {
        let src = image(1920, 1080, |_, _| [12, 200, 77, 3]);
        for (width, height) in [(320, 180), (1280, 720), (333, 111), (1, 1), (1919, 1079)] {
            let out = downscale(&src, width, height);
            assert_eq!((out.width, out.height), (width, height));
            assert!(
                out.bytes
                    .chunks_exact(BYTES_PER_PIXEL)
                    .all(|pixel| pixel == [12, 200, 77, OPAQUE]),
                "{width}x{height}"
            );
        }
    }

    #[test]
    fn downscale_reads_rows_through_the_stride() {
        let packed = image(7, 5, |x, y| {
            [(x * 30) as u8, (y * 50) as u8, (x + y) as u8, 0]
        });
        // The same pixels with 12 bytes of junk after each row, and no
        // padding after the last one.
        let stride_bytes = 7 * BYTES_PER_PIXEL + 12;
        let mut padded = Vec::new();
        for (y, row) in packed.bytes.chunks_exact(7 * BYTES_PER_PIXEL).enumerate() {
            padded.extend_from_slice(row);
            if y < 4 {
                padded.extend_from_slice(&[0xab; 12]);
            }
        }
        let view = PixelView::new(&padded, 7, 5, stride_bytes).expect("valid layout");
        for (width, height) in [(7, 5), (3, 2), (2, 3), (1, 1)] {
            let mut out = Pixels::default();
            downscale_into(
                view,
                width,
                height,
                &mut DownscaleScratch::default(),
                &mut out,
            );
            assert_eq!(out, downscale(&packed, width, height), "{width}x{height}");
        }
    }

    #[test]
    fn layouts_that_do_not_fit_are_refused() {
        let bytes = [0_u8; 64];
        let cases = [
            // (width, height, stride, valid)
            (4, 4, 16, true),
            (2, 4, 16, true),
            // The last row needs only its own pixels: 3 * 18 + 8 bytes.
            (2, 4, 18, true),
            (2, 4, 20, false),
            (5, 4, 16, false),
            (4, 4, 12, false),
            (4, 5, 16, false),
            (0, 4, 16, false),
            (4, 0, 16, false),
            (u32::MAX, 1, usize::MAX, false),
            (1, u32::MAX, usize::MAX, false),
        ];
        for (width, height, stride, valid) in cases {
            assert_eq!(
                PixelView::new(&bytes, width, height, stride).is_ok(),
                valid,
                "{width}x{height} stride {stride}"
            );
        }
    }

    #[test]
    fn blit_places_and_clips() {
        let mut canvas = image(5, 4, |_, _| grey(0));
        let tile = image(3, 2, |x, y| grey(10 * (1 + x + 3 * y) as u8));
        blit(&mut canvas, tile.view(), 1, 1);
        blit(&mut canvas, tile.view(), 3, 3);
        blit(&mut canvas, tile.view(), 9, 9);
        let want = [
            [0, 0, 0, 0, 0],
            [0, 10, 20, 30, 0],
            [0, 40, 50, 60, 0],
            [0, 0, 0, 10, 20],
        ];
        for (y, row) in want.iter().enumerate() {
            for (x, &value) in row.iter().enumerate() {
                assert_eq!(
                    pixel(&canvas, x as u32, y as u32),
                    grey(value),
                    "({x}, {y})"
                );
            }
        }
    }

    fn spread(pixels: &Pixels, channel_index: usize) -> (u8, u8) {
        let values = channel(pixels, channel_index);
        let min = values.iter().copied().min().unwrap_or(0);
        let max = values.iter().copied().max().unwrap_or(0);
        (min, max)
    }

    #[test]
    fn blur_flattens_fine_patterns() {
        let cases: [(&str, Pixels); 3] = [
            (
                "1-px checkerboard",
                image(64, 48, |x, y| grey(if (x + y) % 2 == 0 { 0 } else { 255 })),
            ),
            (
                "text lines (1-px strokes, 2 rows on 2 off)",
                image(64, 48, |x, y| {
                    grey(if y % 4 < 2 && (x * 7 + y) % 3 != 0 {
                        20
                    } else {
                        240
                    })
                }),
            ),
            (
                "1-px vertical strokes",
                image(64, 48, |x, _| grey(if x % 2 == 0 { 0 } else { 255 })),
            ),
        ];
        for (name, mut pixels) in cases {
            let before = spread(&pixels, 1);
            box_blur(
                &mut pixels,
                MIN_BLUR_RADIUS_PX,
                BLUR_PASSES,
                &mut Vec::new(),
            );
            // Away from the borders (where windows shrink) the pattern is gone.
            let inner = image(48, 32, |x, y| pixel(&pixels, x + 8, y + 8));
            let (min, max) = spread(&inner, 1);
            assert!(before.1 - before.0 > 200, "{name}: contrast before");
            assert!(max - min <= 12, "{name}: {min}..{max} left after blur");
        }
    }

    #[test]
    fn blur_keeps_big_colour_blocks() {
        let red = [0, 0, 230, OPAQUE];
        let blue = [200, 10, 0, OPAQUE];
        let mut pixels = image(120, 60, |x, _| if x < 60 { red } else { blue });
        let radius = 4;
        box_blur(&mut pixels, radius, BLUR_PASSES, &mut Vec::new());
        let reach = radius * BLUR_PASSES;
        for y in 0..60 {
            for x in 0..60 - reach {
                assert_eq!(pixel(&pixels, x, y), red, "({x}, {y})");
                assert_eq!(pixel(&pixels, 119 - x, y), blue, "({}, {y})", 119 - x);
            }
        }
        // The border itself is a mix of both.
        let border = pixel(&pixels, 60, 30);
        assert!(border[0] > 50 && border[2] > 50, "{border:?}");
    }

    #[test]
    fn blur_handles_images_smaller_than_the_radius() {
        for (width, height) in [(1, 1), (1, 5), (5, 1), (3, 3)] {
            let mut pixels = image(width, height, |x, y| grey(((x + y) * 40) as u8));
            box_blur(&mut pixels, 10, BLUR_PASSES, &mut Vec::new());
            assert_eq!(
                pixels.bytes.len(),
                (width * height) as usize * BYTES_PER_PIXEL
            );
        }
    }

    #[test]
    fn blur_radius_follows_the_downscale() {
        let cases = [
            ((1920, 1920), 10),
            ((1920, 1280), 7),
            ((1920, 320), MIN_BLUR_RADIUS_PX),
            ((3840, 640), MIN_BLUR_RADIUS_PX),
            ((1280, 1280), 10),
            ((0, 10), 100),
        ];
        for ((src, dst), want) in cases {
            assert_eq!(blur_radius_px(src, dst), want, "{src} -> {dst}");
        }
    }

    #[test]
    fn hash_changes_with_one_pixel_and_with_the_context() {
        let context = HashContext {
            blurred: false,
            quality: 70,
        };
        let base = image(64, 36, |x, y| grey((x ^ y) as u8));
        let hash = pixel_hash(&base, context);
        assert_eq!(hash, pixel_hash(&base.clone(), context), "deterministic");

        let mut one_pixel = base.clone();
        one_pixel.bytes[(17 * 64 + 40) * BYTES_PER_PIXEL + 1] ^= 1;
        let mut transposed = base.clone();
        transposed.width = 36;
        transposed.height = 64;
        let changed = [
            ("one pixel, one bit", pixel_hash(&one_pixel, context)),
            ("same bytes, other size", pixel_hash(&transposed, context)),
            (
                "blurred",
                pixel_hash(
                    &base,
                    HashContext {
                        blurred: true,
                        ..context
                    },
                ),
            ),
            (
                "other quality",
                pixel_hash(
                    &base,
                    HashContext {
                        quality: 71,
                        ..context
                    },
                ),
            ),
        ];
        for (name, other) in changed {
            assert_ne!(other, hash, "{name}");
        }
    }
}
