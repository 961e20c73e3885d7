//! A hand-written fragmented MP4 (ISO BMFF) muxer for one H.264 track.
//!
//! A segment file is an init segment (`ftyp` + `moov`, no samples) followed by media
//! fragments (`moof` + `mdat`), one per GOP. Why fragmented: every fragment is complete
//! the moment it is appended, so a power cut loses at most the one being written, and
//! fragments can be found, decrypted and served one at a time. Why by hand: the subset
//! needed is small (~20 box types), and owning it means owning the byte offsets the
//! index stores.
//!
//! Time is in 90 kHz ticks ([`TIMESCALE`]), the usual video timescale: it represents
//! 25, 30 and 29.97 fps frame durations exactly and fits years in 64 bits.

mod boxes;
mod export;
mod fragment;
mod init;
mod segment;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use export::{Scan, Stitcher, export, scan};
pub use fragment::{
    FragmentInfo, SampleEntry, duration_to_ticks, ticks_to_duration, write_fragment,
};
pub use init::{TrackInfo, init_segment};
pub use segment::{Fragment, SegmentMuxer};

use crate::encode::h264::NalError;

/// Ticks per second of every time in our files.
pub const TIMESCALE: u32 = 90_000;

/// The only track's id.
const TRACK_ID: u32 = 1;

/// Limits of one fragment. A GOP of a few seconds is far below both; they only bound
/// memory if keyframes stop coming, by cutting the fragment early.
pub const MAX_FRAGMENT_BYTES: usize = 16 << 20;
pub const MAX_FRAGMENT_SAMPLES: usize = 1800;

#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    #[error("a segment must start with a keyframe, and this frame is not one")]
    NeedKeyframe,
    #[error("the stream's SPS/PPS changed; a new segment must start here")]
    ParameterSetsChanged,
    #[error("frame {seq} cannot be stored: {source}")]
    Sample { seq: u64, source: NalError },
    #[error("a fragment of {0} bytes is over the {MAX_FRAGMENT_BYTES}-byte limit")]
    FragmentTooLarge(usize),
    #[error("cannot describe the track: {0}")]
    BadTrack(String),
    #[error("the segments describe different video (size or SPS/PPS) and cannot be joined")]
    TrackMismatch,
    #[error("MP4 data cut short: a box at byte {offset} needs {need} bytes, {have} remain")]
    Truncated {
        offset: usize,
        need: usize,
        have: usize,
    },
    #[error("malformed MP4: {0}")]
    Malformed(String),
}
