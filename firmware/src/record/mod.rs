//! Recording: fragmented MP4 segments (design decision 5), sealed by the vault and
//! indexed in the store.
//!
//! `fmp4` turns encoded H.264 packets into segment files (an init segment, then one
//! fragment per GOP), finds the complete fragments of a file after a power cut, and
//! stitches fragments into one stream for export.
//!
//! The recorder proper:
//! - [`h264_stage`]: the encoder thread, frames in, packets out to the recorder;
//! - [`recorder`]: the task that writes encrypted segments and their index rows, with
//!   the modes, pre-roll ([`preroll`]), retention and full-disk handling ([`space`]);
//! - [`control`]: the handle that steers it (mode, triggers, manual) and its status;
//! - [`layout`]: where the files go; [`startup`]: reconciling index and disk at start.

pub mod control;
pub mod error;
pub mod fmp4;
pub mod h264_stage;
pub mod layout;
pub mod preroll;
pub mod recorder;
pub mod runner;
pub mod schedule;
mod segment_file;
pub mod space;
pub mod startup;

#[cfg(test)]
mod tests;

pub use control::{EventKind, RecorderControl, RecorderStatus, RecordingMode};
pub use error::RecordError;
pub use h264_stage::{H264Stage, StageStats};
pub use recorder::{Recorder, RecorderConfig};
pub use runner::Recording;
pub use startup::{RecoveryReport, recover};
