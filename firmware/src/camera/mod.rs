//! Capture: where frames come from.
//!
//! A [`FrameSource`] blocks until its next frame is ready and hands it over as an I420
//! [`Frame`] in a pooled buffer. Sources run on the capture thread, never on the I/O
//! loop. The Pi sources (libcamera, UVC) arrive with the hardware issue; the synthetic
//! scene and file replay work everywhere.

mod font;
pub mod frame;
pub mod libcamera;
mod pacer;
pub mod replay;
pub mod synthetic;
pub mod uvc;

use std::path::PathBuf;

pub use frame::{BufferPool, Frame, I420};

use crate::config::{CameraConfig, CameraSource};

/// What a source is producing, for health reports and encoder set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceInfo {
    pub kind: &'static str,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

pub trait FrameSource: Send {
    fn info(&self) -> SourceInfo;

    /// Blocks until the next frame is due and returns it. `Ok(None)` means the frame
    /// was skipped because every buffer is still held by consumers.
    fn next_frame(&mut self) -> Result<Option<Frame>, CameraError>;
}

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("replay frame {} {problem}", path.display())]
    Replay { path: PathBuf, problem: String },
    #[error("JPEG codec failed to start: {0}")]
    Codec(String),
    #[error("{0}; check the camera's cable or USB connection")]
    NoCamera(String),
    #[error("{device} failed at {reason}")]
    Device { device: String, reason: String },
    #[error("this build has no {0} support (build with `--features {0}`)")]
    NotBuilt(&'static str),
}

/// Opens the source the configuration names.
pub fn open(config: &CameraConfig) -> Result<Box<dyn FrameSource>, CameraError> {
    let size = config.size;
    match &config.source {
        CameraSource::Synthetic => Ok(Box::new(synthetic::SyntheticSource::new(
            size.width,
            size.height,
            config.fps,
            config.seed,
        ))),
        CameraSource::Replay(path) => Ok(Box::new(replay::ReplaySource::open(path, config.fps)?)),
        CameraSource::Auto => Ok(open_auto(config)),
    }
}

type Opener = fn(&CameraConfig) -> Result<Box<dyn FrameSource>, CameraError>;

/// `camera = "auto"`: libcamera, then a UVC camera, then the synthetic scene, logging
/// why each was passed over so a user can tell why they see test patterns.
fn open_auto(config: &CameraConfig) -> Box<dyn FrameSource> {
    let attempts: [(&str, Opener); 2] = [("libcamera", libcamera::open), ("uvc", uvc::open)];
    for (name, open) in attempts {
        match open(config) {
            Ok(source) => {
                tracing::info!(source = name, "camera auto: using {name}");
                return source;
            }
            Err(e) => tracing::info!(source = name, "camera auto: skipping {name}: {e}"),
        }
    }
    tracing::warn!("camera auto: no camera found; using the synthetic scene");
    let size = config.size;
    Box::new(synthetic::SyntheticSource::new(
        size.width,
        size.height,
        config.fps,
        config.seed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine without a camera, auto must fall back to the synthetic scene.
    #[test]
    fn auto_falls_back_to_synthetic_without_a_camera() {
        let mut config = crate::config::Config::default().camera;
        config.source = CameraSource::Auto;
        let mut source = open(&config).expect("auto never fails");
        if source.info().kind == "synthetic" {
            let frame = source.next_frame().expect("synthetic frame");
            assert!(frame.is_some());
        }
    }
}
