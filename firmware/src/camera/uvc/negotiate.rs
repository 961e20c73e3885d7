//! Choosing what to ask a UVC camera for.
//!
//! Cameras list discrete (format, size, interval) triples. We want the configured size
//! and rate, but take the closest offer: MJPEG first (its frames go to the live view
//! without re-encoding and it is what reaches 720p30 over USB 2 on most webcams), then
//! YUYV. "Closest" is by pixel area, then by rate, never a size larger than 1920×1920
//! (the Pi encoders' limit) when a smaller one exists.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Mjpeg,
    Yuyv,
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PixelFormat::Mjpeg => "MJPG",
            PixelFormat::Yuyv => "YUYV",
        })
    }
}

/// One mode the camera offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}x{} @ {} fps",
            self.format, self.width, self.height, self.fps
        )
    }
}

/// Largest side the Pi's hardware encoders accept.
pub const MAX_SIDE: u32 = 1920;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NegotiateError {
    #[error("the camera offers neither MJPEG nor YUYV; ME_CAM supports only those")]
    NoUsableFormat,
}

/// Picks the offered mode closest to `width`×`height` at `fps` and logs the choice.
pub fn negotiate(
    offers: &[Mode],
    width: u32,
    height: u32,
    fps: u32,
) -> Result<Mode, NegotiateError> {
    let want_area = u64::from(width) * u64::from(height);
    let best = offers
        .iter()
        .filter(|m| m.width > 0 && m.height > 0 && m.fps > 0)
        .min_by_key(|m| {
            let area = u64::from(m.width) * u64::from(m.height);
            let oversize = m.width > MAX_SIDE || m.height > MAX_SIDE;
            let format_rank = match m.format {
                PixelFormat::Mjpeg => 0,
                PixelFormat::Yuyv => 1,
            };
            // Lexicographic: fits the encoders, size distance, a rate that reaches the
            // target before one that exceeds it more, rate distance, then format.
            (
                oversize,
                area.abs_diff(want_area),
                m.fps < fps,
                m.fps.abs_diff(fps),
                format_rank,
            )
        })
        .copied()
        .ok_or(NegotiateError::NoUsableFormat)?;
    if (best.width, best.height, best.fps) != (width, height, fps) {
        tracing::info!(chosen = %best, "uvc: camera has no {width}x{height} @ {fps} fps; using the closest mode");
    } else {
        tracing::info!(chosen = %best, "uvc: camera mode");
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PixelFormat::*;

    fn m(format: PixelFormat, width: u32, height: u32, fps: u32) -> Mode {
        Mode {
            format,
            width,
            height,
            fps,
        }
    }

    /// A typical USB 2 webcam: MJPEG at every size, YUYV only small or slow.
    fn webcam() -> Vec<Mode> {
        vec![
            m(Yuyv, 640, 480, 30),
            m(Yuyv, 1280, 720, 10),
            m(Yuyv, 1920, 1080, 5),
            m(Mjpeg, 640, 480, 30),
            m(Mjpeg, 1280, 720, 30),
            m(Mjpeg, 1920, 1080, 30),
        ]
    }

    #[test]
    fn exact_match_prefers_mjpeg() {
        assert_eq!(
            negotiate(&webcam(), 1280, 720, 30),
            Ok(m(Mjpeg, 1280, 720, 30))
        );
    }

    #[test]
    fn yuyv_only_camera_is_used() {
        let offers = [m(Yuyv, 640, 480, 30), m(Yuyv, 320, 240, 30)];
        assert_eq!(negotiate(&offers, 640, 480, 25), Ok(m(Yuyv, 640, 480, 30)));
    }

    #[test]
    fn closest_size_when_exact_is_missing() {
        assert_eq!(
            negotiate(&webcam(), 1024, 768, 30),
            Ok(m(Mjpeg, 1280, 720, 30))
        );
    }

    #[test]
    fn rate_that_reaches_target_wins_over_slower() {
        let offers = [m(Yuyv, 1280, 720, 10), m(Yuyv, 1280, 720, 60)];
        assert_eq!(
            negotiate(&offers, 1280, 720, 25),
            Ok(m(Yuyv, 1280, 720, 60))
        );
    }

    #[test]
    fn never_above_encoder_limit_when_smaller_exists() {
        let offers = [m(Mjpeg, 2592, 1944, 15), m(Mjpeg, 1920, 1080, 30)];
        assert_eq!(
            negotiate(&offers, 2592, 1944, 15),
            Ok(m(Mjpeg, 1920, 1080, 30))
        );
    }

    #[test]
    fn no_offers_is_an_error() {
        assert_eq!(
            negotiate(&[], 640, 480, 30),
            Err(NegotiateError::NoUsableFormat)
        );
    }
}
