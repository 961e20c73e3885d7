//! Capture: where frames come from.
//!
//! A [`FrameSource`] blocks until its next frame is ready and hands it over as an I420
//! [`Frame`] in a pooled buffer. Sources run on the capture thread, never on the I/O
//! loop. The Pi sources (libcamera, UVC) arrive with the hardware issue; the synthetic
//! scene and file replay work everywhere.

mod font;
pub mod frame;
mod pacer;
pub mod replay;
pub mod synthetic;

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
        CameraSource::Auto => {
            tracing::info!(
                "camera auto: this build has no Pi camera or UVC support yet; using the synthetic scene"
            );
            Ok(Box::new(synthetic::SyntheticSource::new(
                size.width,
                size.height,
                config.fps,
                config.seed,
            )))
        }
    }
}
