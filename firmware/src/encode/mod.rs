//! Encoding: raw frames in, compressed packets out.
//!
//! Every encoder, software or the Pi's hardware, produces the same [`Packet`], so
//! everything downstream (live bus, recorder) is the same on every host.

pub mod h264;
pub mod jpeg;
pub mod v4l2m2m;

use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::camera::Frame;

/// One encoded frame.
#[derive(Debug, Clone)]
pub struct Packet {
    pub seq: u64,
    pub captured: Instant,
    pub wall: SystemTime,
    /// True for frames that decode on their own (every JPEG; H.264 IDR frames).
    pub keyframe: bool,
    pub data: Bytes,
}

pub trait Encoder: Send {
    /// Short name for logs and health, e.g. `turbojpeg`.
    fn name(&self) -> &'static str;

    fn encode(&mut self, frame: &Frame) -> Result<Packet, EncodeError>;
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("{encoder} failed: {message}")]
    Failed {
        encoder: &'static str,
        message: String,
    },
}
