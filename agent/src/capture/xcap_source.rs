//! The xcap screen source (thin shell), for Wayland sessions where no X
//! display is reachable: monitors and images through xcap, which asks the
//! compositor (desktop portal or wlroots) or, with DISPLAY set, X11.

use super::pixels::{blit, PixelView, Pixels, BYTES_PER_PIXEL};
use super::{monitor_order, CaptureError, ChannelOrder, Grab, MonitorInfo};

fn xcap_error(error: xcap::XCapError) -> CaptureError {
    CaptureError::Xcap(error.to_string())
}

/// A screen reached through xcap. xcap keeps no connection: every call
/// asks afresh.
#[derive(Debug, Default)]
pub(super) struct XcapScreen {
    /// The last capture, R, G, B, A.
    image: Pixels,
}

impl XcapScreen {
    pub(super) fn open() -> Result<Self, CaptureError> {
        let mut screen = XcapScreen::default();
        screen.monitors()?;
        Ok(screen)
    }

    /// Every monitor with its geometry, in [`monitor_order`].
    fn listed() -> Result<Vec<(MonitorInfo, xcap::Monitor)>, CaptureError> {
        let mut listed = Vec::new();
        for monitor in xcap::Monitor::all().map_err(xcap_error)? {
            let info = MonitorInfo {
                index: 0,
                x: monitor.x().map_err(xcap_error)?,
                y: monitor.y().map_err(xcap_error)?,
                width: monitor.width().map_err(xcap_error)?,
                height: monitor.height().map_err(xcap_error)?,
                name: monitor.name().map_err(xcap_error)?,
            };
            if info.width > 0 && info.height > 0 {
                listed.push((info, monitor));
            }
        }
        if listed.is_empty() {
            return Err(CaptureError::Xcap("no monitor was reported".to_owned()));
        }
        listed.sort_by(|(a, _), (b, _)| monitor_order(a, b));
        for (index, (info, _)) in listed.iter_mut().enumerate() {
            info.index = u16::try_from(index).unwrap_or(u16::MAX);
        }
        Ok(listed)
    }

    pub(super) fn monitors(&mut self) -> Result<Vec<MonitorInfo>, CaptureError> {
        Ok(Self::listed()?.into_iter().map(|(info, _)| info).collect())
    }

    pub(super) fn grab(&mut self, monitor: Option<u16>) -> Result<Grab<'_>, CaptureError> {
        let listed = Self::listed()?;
        match monitor {
            Some(index) => {
                let count = listed.len();
                let (_, chosen) = listed
                    .get(usize::from(index))
                    .ok_or(CaptureError::NoSuchMonitor { index, count })?;
                self.image = capture(chosen)?;
            }
            None => {
                // Every monitor side by side, as on the desktop.
                let left = listed.iter().map(|(info, _)| info.x).min().unwrap_or(0);
                let top = listed.iter().map(|(info, _)| info.y).min().unwrap_or(0);
                let right = listed
                    .iter()
                    .map(|(info, _)| i64::from(info.x) + i64::from(info.width))
                    .max()
                    .unwrap_or(0);
                let bottom = listed
                    .iter()
                    .map(|(info, _)| i64::from(info.y) + i64::from(info.height))
                    .max()
                    .unwrap_or(0);
                let width = u32::try_from(right - i64::from(left)).unwrap_or(0);
                let height = u32::try_from(bottom - i64::from(top)).unwrap_or(0);
                if listed.len() == 1 {
                    self.image = capture(&listed[0].1)?;
                } else {
                    let mut desktop = Pixels {
                        bytes: vec![0; width as usize * height as usize * BYTES_PER_PIXEL],
                        width,
                        height,
                    };
                    for (info, monitor) in &listed {
                        let image = capture(monitor)?;
                        let x = u32::try_from(i64::from(info.x) - i64::from(left)).unwrap_or(0);
                        let y = u32::try_from(i64::from(info.y) - i64::from(top)).unwrap_or(0);
                        blit(&mut desktop, image.view(), x, y);
                    }
                    self.image = desktop;
                }
            }
        }
        let view = PixelView::new(
            &self.image.bytes,
            self.image.width,
            self.image.height,
            self.image.width as usize * BYTES_PER_PIXEL,
        )?;
        Ok(Grab {
            view,
            order: ChannelOrder::Rgbx,
        })
    }
}

fn capture(monitor: &xcap::Monitor) -> Result<Pixels, CaptureError> {
    let image = monitor.capture_image().map_err(xcap_error)?;
    let (width, height) = (image.width(), image.height());
    // Checks that the bytes hold the claimed size before anything indexes them.
    PixelView::new(
        image.as_raw(),
        width,
        height,
        width as usize * BYTES_PER_PIXEL,
    )?;
    Ok(Pixels {
        bytes: image.into_raw(),
        width,
        height,
    })
}
