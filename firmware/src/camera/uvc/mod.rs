//! USB (UVC) cameras through V4L2.
//!
//! [`negotiate`] picks the closest format, size and rate a camera offers; it is pure so
//! it is tested against scripted format lists. Capturing from the device (the `v4l`
//! crate, mmap streaming; MJPEG passed straight to the live bus, YUYV to the software
//! encoders) is not wired yet: [`open`] reports whether a V4L2 node exists and that
//! this build cannot capture from it, so `camera = "auto"` moves on.

pub mod negotiate;

use super::{CameraError, FrameSource};
use crate::config::CameraConfig;

/// V4L2 capture nodes present on this machine (`/dev/video*`), sorted.
pub fn video_nodes() -> Vec<std::path::PathBuf> {
    let Ok(dir) = std::fs::read_dir("/dev") else {
        return Vec::new();
    };
    let mut nodes: Vec<_> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("video"))
        })
        .collect();
    nodes.sort();
    nodes
}

pub fn open(_config: &CameraConfig) -> Result<Box<dyn FrameSource>, CameraError> {
    if video_nodes().is_empty() {
        return Err(CameraError::NoCamera(
            "uvc: no /dev/video* device found".into(),
        ));
    }
    Err(CameraError::NotBuilt("uvc"))
}
