//! Detection (design decision 8): motion on a small luma plane gates a person detector
//! (an SSD-style TFLite model run with tract) on the moving region.
//!
//! - [`motion`]: background model, threshold, minimum area, sensitivity, masks and
//!   named zones, lighting-change rejection, cooldown.
//! - [`person`]: the TFLite model: checksum-verified load, pre-processing, anchor
//!   decoding, sigmoid, non-maximum suppression.
//! - [`runner`]: the detector thread: frames from the pipeline's tap, motion on every
//!   analysed frame, the model at most N times a second while there is motion, an
//!   [`Observation`] per analysed frame to the events stage.
//!
//! All boxes are in normalised frame coordinates: 0..1, origin top-left.

pub mod motion;
pub mod person;
pub mod runner;

use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// A rectangle in normalised frame coordinates (0..1, origin top-left).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// One detected object.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// 0..1 (after the sigmoid).
    pub score: f32,
    pub bbox: BBox,
}

/// Motion found in one analysed frame.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionSeen {
    /// Bounding box of the changed area (masks excluded).
    pub region: BBox,
    /// Changed fraction of the unmasked frame, 0..1.
    pub area: f32,
    /// Names of the zones the changed area touches (empty when no zones are set,
    /// which means "the whole frame").
    pub zones: Vec<String>,
}

/// What the detector made of one analysed frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Capture time of the frame (monotonic, as the recorder's packets use).
    pub captured: Instant,
    pub wall: SystemTime,
    /// `None`: no motion in this frame (after the cooldown logic of [`motion`]).
    pub motion: Option<MotionSeen>,
    /// `None`: the model did not run on this frame (no motion, or rate-limited);
    /// `Some(vec![])`: it ran and found nobody above the threshold.
    pub persons: Option<Vec<Detection>>,
}
