//! Recording: fragmented MP4 segments (design decision 5).
//!
//! `fmp4` turns encoded H.264 packets into segment files (an init segment, then one
//! fragment per GOP), finds the complete fragments of a file after a power cut, and
//! stitches fragments into one stream for export.

pub mod fmp4;
