//! The X11 screen source (thin shell over x11rb): monitors from RandR,
//! images of the root window through MIT-SHM (a memfd the X server writes
//! into, mapped here) or plain `GetImage` when the server has no SHM.
//! Everything the server returns is checked before use; a broken
//! connection is reopened once per call.

use std::ffi::c_void;
use std::os::fd::AsFd;
use std::ptr::{self, NonNull};

use x11rb::connection::{Connection as _, RequestConnection as _};
use x11rb::errors::{ConnectionError, ReplyError, ReplyOrIdError};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::shm;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder, Window};
use x11rb::rust_connection::RustConnection;

use super::pixels::{PixelView, BYTES_PER_PIXEL};
use super::{sort_monitors, CaptureError, ChannelOrder, Grab, MonitorInfo};

/// The lowest MIT-SHM version with `AttachFd`.
const SHM_ATTACH_FD_VERSION: (u16, u16) = (1, 2);
/// The lowest RandR version with monitors.
const RANDR_MONITORS_VERSION: (u32, u32) = (1, 5);

/// The X display named by the caller or by `DISPLAY`.
fn resolve_display(display: Option<String>) -> Result<String, CaptureError> {
    display
        .or_else(|| std::env::var("DISPLAY").ok())
        .filter(|display| !display.is_empty())
        .ok_or(CaptureError::NoDisplay)
}

/// A screen reached over X11, reconnecting when the connection breaks.
#[derive(Debug)]
pub(super) struct X11Screen {
    display: String,
    session: Option<Session>,
}

impl X11Screen {
    pub(super) fn open(display: Option<String>) -> Result<Self, CaptureError> {
        let display = resolve_display(display)?;
        let session = Session::connect(&display)?;
        Ok(X11Screen {
            display,
            session: Some(session),
        })
    }

    /// How images are fetched: `x11-shm` or `x11-getimage`, or
    /// `x11-disconnected` until a reconnection succeeds.
    pub(super) fn backend(&self) -> &'static str {
        match &self.session {
            Some(session) if session.shm.is_some() => "x11-shm",
            Some(_) => "x11-getimage",
            None => "x11-disconnected",
        }
    }

    /// Runs `step` on the session; when the connection turns out to be
    /// broken, reconnects once and runs it again.
    fn retrying<T>(
        &mut self,
        mut step: impl FnMut(&mut Session) -> Result<T, CaptureError>,
    ) -> Result<T, CaptureError> {
        if let Some(session) = &mut self.session {
            match step(session) {
                Err(CaptureError::ConnectionLost { detail, .. }) => {
                    tracing::warn!(display = %self.display, %detail, "X connection lost; reconnecting");
                }
                done => return done,
            }
        }
        self.session = None;
        let session = self.session.insert(Session::connect(&self.display)?);
        step(session)
    }

    pub(super) fn monitors(&mut self) -> Result<Vec<MonitorInfo>, CaptureError> {
        self.retrying(Session::monitors)
    }

    pub(super) fn grab(&mut self, monitor: Option<u16>) -> Result<Grab<'_>, CaptureError> {
        let held = self.retrying(|session| session.grab(monitor))?;
        let session = self
            .session
            .as_ref()
            .ok_or_else(|| CaptureError::ConnectionLost {
                display: self.display.clone(),
                detail: "no session after a successful capture".to_owned(),
            })?;
        session.view(held)
    }
}

/// A rectangle of the root window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x: i16,
    y: i16,
    width: u16,
    height: u16,
}

/// Where the pixels of the last grab are.
#[derive(Debug, Clone, Copy)]
struct Held {
    in_shm: bool,
    len_bytes: usize,
    width: u16,
    height: u16,
    stride_bytes: usize,
}

/// How the root window's pixels are laid out.
#[derive(Debug, Clone, Copy)]
struct RootFormat {
    depth: u8,
    bits_per_pixel: u8,
    scanline_pad_bits: u8,
}

impl RootFormat {
    fn stride_bytes(&self, width: u16) -> usize {
        let pad = usize::from(self.scanline_pad_bits.max(8));
        let bits = usize::from(width) * usize::from(self.bits_per_pixel);
        bits.div_ceil(pad) * pad / 8
    }
}

/// One X connection with what was learnt about the server.
#[derive(Debug)]
struct Session {
    display: String,
    conn: RustConnection,
    root: Window,
    format: RootFormat,
    has_monitors: bool,
    shm: Option<ShmSegment>,
    /// The last plain `GetImage` reply's pixels.
    image: Vec<u8>,
}

/// A broken connection or an X error, told apart.
fn connection_error(display: &str, request: &'static str, error: ConnectionError) -> CaptureError {
    match error {
        ConnectionError::IoError(_) | ConnectionError::UnknownError => {
            CaptureError::ConnectionLost {
                display: display.to_owned(),
                detail: format!("{request}: {error}"),
            }
        }
        other => CaptureError::X11 {
            request,
            detail: other.to_string(),
        },
    }
}

fn reply_error(display: &str, request: &'static str, error: ReplyError) -> CaptureError {
    match error {
        ReplyError::ConnectionError(error) => connection_error(display, request, error),
        ReplyError::X11Error(error) => CaptureError::X11 {
            request,
            detail: format!("{:?} error", error.error_kind),
        },
    }
}

fn unsupported(detail: String) -> CaptureError {
    CaptureError::UnsupportedFormat { detail }
}

impl Session {
    fn connect(display_name: &str) -> Result<Self, CaptureError> {
        let (conn, screen_index) =
            RustConnection::connect(Some(display_name)).map_err(|error| CaptureError::Connect {
                display: display_name.to_owned(),
                detail: error.to_string(),
            })?;
        let setup = conn.setup();
        let screen = setup
            .roots
            .get(screen_index)
            .ok_or_else(|| CaptureError::X11 {
                request: "connection setup",
                detail: format!("the server has no screen {screen_index}"),
            })?;
        let root = screen.root;
        let depth = screen.root_depth;
        if setup.image_byte_order != ImageOrder::LSB_FIRST {
            return Err(unsupported(
                "images in most-significant-byte-first order".to_owned(),
            ));
        }
        if depth != 24 && depth != 32 {
            return Err(unsupported(format!("root window depth {depth}")));
        }
        let pixmap_format = setup
            .pixmap_formats
            .iter()
            .find(|format| format.depth == depth)
            .ok_or_else(|| unsupported(format!("no pixmap format for depth {depth}")))?;
        if usize::from(pixmap_format.bits_per_pixel) != BYTES_PER_PIXEL * 8 {
            return Err(unsupported(format!(
                "depth {depth} stored at {} bits per pixel",
                pixmap_format.bits_per_pixel
            )));
        }
        let visual = screen
            .allowed_depths
            .iter()
            .flat_map(|allowed| &allowed.visuals)
            .find(|visual| visual.visual_id == screen.root_visual)
            .ok_or_else(|| unsupported("the root visual is not listed".to_owned()))?;
        let masks = (visual.red_mask, visual.green_mask, visual.blue_mask);
        if masks != (0x00ff_0000, 0x0000_ff00, 0x0000_00ff) {
            return Err(unsupported(format!(
                "colour masks red {:#x}, green {:#x}, blue {:#x}",
                masks.0, masks.1, masks.2
            )));
        }
        let format = RootFormat {
            depth,
            bits_per_pixel: pixmap_format.bits_per_pixel,
            scanline_pad_bits: pixmap_format.scanline_pad,
        };
        let whole_screen_bytes =
            format.stride_bytes(screen.width_in_pixels) * usize::from(screen.height_in_pixels);
        let has_monitors = randr_has_monitors(&conn);
        let shm = match ShmSegment::create(&conn, whole_screen_bytes) {
            Ok(segment) => Some(segment),
            Err(reason) => {
                tracing::warn!(display = %display_name, %reason, "MIT-SHM unavailable; capturing with GetImage");
                None
            }
        };
        Ok(Session {
            display: display_name.to_owned(),
            conn,
            root,
            format,
            has_monitors,
            shm,
            image: Vec::new(),
        })
    }

    fn root_size(&self) -> Result<(u16, u16), CaptureError> {
        let geometry = self
            .conn
            .get_geometry(self.root)
            .map_err(|error| connection_error(&self.display, "GetGeometry", error))?
            .reply()
            .map_err(|error| reply_error(&self.display, "GetGeometry", error))?;
        Ok((geometry.width, geometry.height))
    }

    fn monitors(&mut self) -> Result<Vec<MonitorInfo>, CaptureError> {
        let (root_width, root_height) = self.root_size()?;
        let whole = MonitorInfo {
            index: 0,
            x: 0,
            y: 0,
            width: u32::from(root_width),
            height: u32::from(root_height),
            name: "screen".to_owned(),
        };
        if !self.has_monitors {
            return Ok(vec![whole]);
        }
        let reply = randr::get_monitors(&self.conn, self.root, true)
            .map_err(|error| connection_error(&self.display, "RRGetMonitors", error))?
            .reply()
            .map_err(|error| reply_error(&self.display, "RRGetMonitors", error))?;
        let mut monitors = Vec::with_capacity(reply.monitors.len());
        for monitor in &reply.monitors {
            // Only the part inside the root window can be captured.
            let left = i32::from(monitor.x).max(0);
            let top = i32::from(monitor.y).max(0);
            let right =
                (i32::from(monitor.x) + i32::from(monitor.width)).min(i32::from(root_width));
            let bottom =
                (i32::from(monitor.y) + i32::from(monitor.height)).min(i32::from(root_height));
            let (Ok(width), Ok(height)) =
                (u32::try_from(right - left), u32::try_from(bottom - top))
            else {
                continue;
            };
            if width == 0 || height == 0 {
                continue;
            }
            let name = self
                .conn
                .get_atom_name(monitor.name)
                .map_err(|error| connection_error(&self.display, "GetAtomName", error))?
                .reply()
                .map(|reply| String::from_utf8_lossy(&reply.name).into_owned())
                .unwrap_or_else(|_| format!("monitor-{}", monitor.name));
            monitors.push(MonitorInfo {
                index: 0,
                x: left,
                y: top,
                width,
                height,
                name,
            });
        }
        if monitors.is_empty() {
            monitors.push(whole);
        }
        Ok(sort_monitors(monitors))
    }

    fn target(&mut self, monitor: Option<u16>) -> Result<Rect, CaptureError> {
        let Some(index) = monitor else {
            let (width, height) = self.root_size()?;
            return Ok(Rect {
                x: 0,
                y: 0,
                width,
                height,
            });
        };
        let monitors = self.monitors()?;
        let count = monitors.len();
        let chosen = monitors
            .into_iter()
            .nth(usize::from(index))
            .ok_or(CaptureError::NoSuchMonitor { index, count })?;
        // Clipped to the root window, so within X11's coordinate types.
        Ok(Rect {
            x: i16::try_from(chosen.x).unwrap_or(i16::MAX),
            y: i16::try_from(chosen.y).unwrap_or(i16::MAX),
            width: u16::try_from(chosen.width).unwrap_or(u16::MAX),
            height: u16::try_from(chosen.height).unwrap_or(u16::MAX),
        })
    }

    /// Captures `monitor` (or the whole root window) into the SHM segment
    /// or the `GetImage` buffer.
    fn grab(&mut self, monitor: Option<u16>) -> Result<Held, CaptureError> {
        let rect = self.target(monitor)?;
        if rect.width == 0 || rect.height == 0 {
            return Err(CaptureError::X11 {
                request: "GetGeometry",
                detail: "the screen is empty (0 pixels)".to_owned(),
            });
        }
        let stride_bytes = self.format.stride_bytes(rect.width);
        let needed_bytes = stride_bytes * usize::from(rect.height);
        if self.shm.is_some() {
            match self.grab_shm(rect, stride_bytes, needed_bytes) {
                Ok(held) => return Ok(held),
                Err(error @ CaptureError::ConnectionLost { .. }) => return Err(error),
                Err(error) => {
                    tracing::warn!(display = %self.display, %error, "MIT-SHM capture failed; using GetImage from now on");
                    self.shm = None;
                }
            }
        }
        self.grab_plain(rect, stride_bytes, needed_bytes)
    }

    fn grab_shm(
        &mut self,
        rect: Rect,
        stride_bytes: usize,
        needed_bytes: usize,
    ) -> Result<Held, CaptureError> {
        let too_small = self
            .shm
            .as_ref()
            .is_none_or(|segment| segment.mapping.len_bytes < needed_bytes);
        if too_small {
            // The screen grew: a bigger segment replaces the old one.
            if let Some(old) = self.shm.take() {
                shm::detach(&self.conn, old.seg)
                    .map_err(|error| connection_error(&self.display, "ShmDetach", error))?;
            }
            let segment = ShmSegment::create(&self.conn, needed_bytes).map_err(|reason| {
                CaptureError::X11 {
                    request: "ShmAttachFd",
                    detail: reason,
                }
            })?;
            self.shm = Some(segment);
        }
        let Some(segment) = &self.shm else {
            return Err(CaptureError::X11 {
                request: "ShmAttachFd",
                detail: "no segment".to_owned(),
            });
        };
        let reply = shm::get_image(
            &self.conn,
            self.root,
            rect.x,
            rect.y,
            rect.width,
            rect.height,
            u32::MAX,
            ImageFormat::Z_PIXMAP.into(),
            segment.seg,
            0,
        )
        .map_err(|error| connection_error(&self.display, "ShmGetImage", error))?
        .reply()
        .map_err(|error| reply_error(&self.display, "ShmGetImage", error))?;
        self.check_depth(reply.depth)?;
        let len_bytes = usize::try_from(reply.size).unwrap_or(usize::MAX);
        if len_bytes < needed_bytes || len_bytes > segment.mapping.len_bytes {
            return Err(CaptureError::X11 {
                request: "ShmGetImage",
                detail: format!(
                    "the server wrote {len_bytes} bytes for a {}x{} image of {needed_bytes} bytes",
                    rect.width, rect.height
                ),
            });
        }
        Ok(Held {
            in_shm: true,
            len_bytes,
            width: rect.width,
            height: rect.height,
            stride_bytes,
        })
    }

    fn grab_plain(
        &mut self,
        rect: Rect,
        stride_bytes: usize,
        needed_bytes: usize,
    ) -> Result<Held, CaptureError> {
        let reply = self
            .conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                rect.x,
                rect.y,
                rect.width,
                rect.height,
                u32::MAX,
            )
            .map_err(|error| connection_error(&self.display, "GetImage", error))?
            .reply()
            .map_err(|error| reply_error(&self.display, "GetImage", error))?;
        self.check_depth(reply.depth)?;
        self.image = reply.data;
        if self.image.len() < needed_bytes {
            return Err(CaptureError::X11 {
                request: "GetImage",
                detail: format!(
                    "the server sent {} bytes for a {}x{} image of {needed_bytes} bytes",
                    self.image.len(),
                    rect.width,
                    rect.height
                ),
            });
        }
        Ok(Held {
            in_shm: false,
            len_bytes: self.image.len(),
            width: rect.width,
            height: rect.height,
            stride_bytes,
        })
    }

    fn check_depth(&self, depth: u8) -> Result<(), CaptureError> {
        if depth == self.format.depth {
            Ok(())
        } else {
            Err(unsupported(format!(
                "an image of depth {depth} from a root window of depth {}",
                self.format.depth
            )))
        }
    }

    fn view(&self, held: Held) -> Result<Grab<'_>, CaptureError> {
        let bytes = if held.in_shm {
            let segment = self.shm.as_ref().ok_or_else(|| CaptureError::X11 {
                request: "ShmGetImage",
                detail: "the segment is gone".to_owned(),
            })?;
            segment.mapping.bytes()
        } else {
            &self.image
        };
        let bytes = bytes.get(..held.len_bytes).unwrap_or(bytes);
        let view = PixelView::new(
            bytes,
            u32::from(held.width),
            u32::from(held.height),
            held.stride_bytes,
        )?;
        Ok(Grab {
            view,
            order: ChannelOrder::Bgrx,
        })
    }
}

/// Whether the server's RandR reports monitors (1.5 or later).
fn randr_has_monitors(conn: &RustConnection) -> bool {
    let present = conn
        .extension_information(randr::X11_EXTENSION_NAME)
        .ok()
        .flatten()
        .is_some();
    present
        && conn
            .randr_query_version(RANDR_MONITORS_VERSION.0, RANDR_MONITORS_VERSION.1)
            .ok()
            .and_then(|cookie| cookie.reply().ok())
            .is_some_and(|reply| {
                (reply.major_version, reply.minor_version) >= RANDR_MONITORS_VERSION
            })
}

/// A memfd shared with the X server, which writes images into it.
#[derive(Debug)]
struct ShmSegment {
    seg: shm::Seg,
    mapping: ShmMapping,
}

impl ShmSegment {
    /// Creates a memfd of `len_bytes`, maps it and hands it to the server;
    /// the error says why SHM cannot be used.
    fn create(conn: &RustConnection, len_bytes: usize) -> Result<Self, String> {
        conn.extension_information(shm::X11_EXTENSION_NAME)
            .map_err(|error| error.to_string())?
            .ok_or("the server has no MIT-SHM extension")?;
        let version = shm::query_version(conn)
            .map_err(|error| error.to_string())?
            .reply()
            .map_err(|error| error.to_string())?;
        if (version.major_version, version.minor_version) < SHM_ATTACH_FD_VERSION {
            return Err(format!(
                "MIT-SHM {}.{} has no AttachFd",
                version.major_version, version.minor_version
            ));
        }
        let fd = rustix::fs::memfd_create("smarttracker-capture", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|error| format!("memfd_create: {error}"))?;
        rustix::fs::ftruncate(&fd, len_bytes as u64)
            .map_err(|error| format!("ftruncate: {error}"))?;
        let mapping = ShmMapping::map(&fd, len_bytes)?;
        let seg = conn
            .generate_id()
            .map_err(|error: ReplyOrIdError| error.to_string())?;
        shm::attach_fd(conn, seg, fd, false)
            .map_err(|error| error.to_string())?
            .check()
            .map_err(|error| format!("ShmAttachFd: {error}"))?;
        Ok(ShmSegment { seg, mapping })
    }
}

/// A read-only shared mapping of a memfd, unmapped on drop.
#[derive(Debug)]
struct ShmMapping {
    ptr: NonNull<c_void>,
    len_bytes: usize,
}

// SAFETY: the mapping is owned by this value alone, is only read through
// `&self`, and nothing about it is tied to the thread that made it.
#[allow(unsafe_code)]
unsafe impl Send for ShmMapping {}

impl ShmMapping {
    fn map(fd: &impl AsFd, len_bytes: usize) -> Result<Self, String> {
        if len_bytes == 0 {
            return Err("an empty screen".to_owned());
        }
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint),
        // overlapping nothing; `fd` is a memfd just sized to `len_bytes`.
        #[allow(unsafe_code)]
        let ptr = unsafe {
            rustix::mm::mmap(
                ptr::null_mut(),
                len_bytes,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(|error| format!("mmap: {error}"))?;
        let ptr = NonNull::new(ptr).ok_or("mmap returned a null pointer")?;
        Ok(ShmMapping { ptr, len_bytes })
    }

    // SAFETY: `ptr` maps `len_bytes` readable bytes until drop. The X
    // server writes them only while answering a ShmGetImage, which has
    // completed (its reply was read) before any caller looks at them, and
    // the borrow of `self` keeps the mapping alive.
    #[allow(unsafe_code)]
    fn bytes(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len_bytes) }
    }
}

impl Drop for ShmMapping {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len_bytes` are exactly what mmap returned, and
        // no borrow of the bytes outlives `self`.
        #[allow(unsafe_code)]
        let unmapped = unsafe { rustix::mm::munmap(self.ptr.as_ptr(), self.len_bytes) };
        if let Err(error) = unmapped {
            tracing::warn!(%error, "munmap of the capture segment failed");
        }
    }
}
