//! Packets in, segment bytes out: the init segment, then one fragment per GOP.
//!
//! A fragment is closed when the next keyframe arrives, because only then is the
//! duration of its last frame known: sample durations are the differences of real
//! capture times, so a camera that delivers 24.7 fps instead of 25 stays in sync with
//! the wall clock. A segment's timeline starts at 0 with its first frame.

use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::fragment::{FragmentInfo, SampleEntry, duration_to_ticks, write_fragment};
use super::init::{TrackInfo, init_segment};
use super::{MAX_FRAGMENT_BYTES, MAX_FRAGMENT_SAMPLES, Mp4Error, TIMESCALE};
use crate::encode::Packet;
use crate::encode::h264::{parameter_sets, to_avcc};

/// A finished fragment, ready to append to its segment file.
#[derive(Debug, Clone)]
pub struct Fragment {
    pub info: FragmentInfo,
    /// Wall-clock capture time of the first frame, for the index.
    pub wall_start: SystemTime,
    /// `moof` + `mdat`.
    pub data: Bytes,
}

/// Builds one segment file. Append [`SegmentMuxer::init_segment`], then every fragment
/// [`SegmentMuxer::push`] and [`SegmentMuxer::finish`] return, in order.
pub struct SegmentMuxer {
    track: TrackInfo,
    init: Bytes,
    /// Duration given to a frame whose real duration cannot be measured.
    nominal_ticks: u64,
    /// Capture time of the segment's first frame: time 0.
    epoch: Option<Instant>,
    /// Bytes of the segment so far (init and emitted fragments): the next offset.
    written: u64,
    next_sequence: u32,
    /// The open fragment.
    samples: Vec<Pending>,
    data: Vec<u8>,
    wall_start: Option<SystemTime>,
}

/// A sample of the open fragment; its bytes are in `SegmentMuxer::data`.
struct Pending {
    /// Decode time in ticks from the segment's start.
    time: u64,
    size: u32,
    keyframe: bool,
}

impl SegmentMuxer {
    /// `fps` is the nominal frame rate, used only where no real frame time exists
    /// (the last frame of a segment, or capture times that go backwards).
    pub fn new(track: TrackInfo, fps: u32) -> Result<Self, Mp4Error> {
        let init = Bytes::from(init_segment(&track)?);
        Ok(Self {
            track,
            written: init.len() as u64,
            init,
            nominal_ticks: u64::from(TIMESCALE / fps.max(1)),
            epoch: None,
            next_sequence: 1,
            samples: Vec::new(),
            data: Vec::new(),
            wall_start: None,
        })
    }

    pub fn init_segment(&self) -> &Bytes {
        &self.init
    }

    pub fn track(&self) -> &TrackInfo {
        &self.track
    }

    /// Bytes of the segment so far: init segment plus the fragments returned.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Frames waiting in the open fragment.
    pub fn pending_frames(&self) -> usize {
        self.samples.len()
    }

    /// Adds one encoded frame (an Annex B access unit). Returns the previous fragment
    /// when this frame starts a new one.
    ///
    /// On error the packet is not added and the muxer is unchanged: with
    /// [`Mp4Error::NeedKeyframe`] wait for a keyframe; with
    /// [`Mp4Error::ParameterSetsChanged`] finish this segment and start the next with
    /// this packet.
    pub fn push(&mut self, packet: &Packet) -> Result<Option<Fragment>, Mp4Error> {
        if self.samples.is_empty() && !packet.keyframe {
            return Err(Mp4Error::NeedKeyframe);
        }
        // A keyframe without parameter sets keeps the segment's (some encoders only
        // send them once).
        if packet.keyframe
            && let Some(sets) = parameter_sets(&packet.data)
            && sets != self.track.parameter_sets
        {
            return Err(Mp4Error::ParameterSetsChanged);
        }
        let start = self.data.len();
        let size = to_avcc(&packet.data, &mut self.data).map_err(|source| Mp4Error::Sample {
            seq: packet.seq,
            source,
        })?;
        if size > MAX_FRAGMENT_BYTES {
            self.data.truncate(start);
            return Err(Mp4Error::FragmentTooLarge(size));
        }
        let size = size as u32;

        let epoch = *self.epoch.get_or_insert(packet.captured);
        let mut time = duration_to_ticks(packet.captured.saturating_duration_since(epoch));
        if let Some(last) = self.samples.last() {
            // Capture times that stand still or go backwards (a clock hiccup) would
            // give zero or negative durations; give the frame a nominal one instead.
            if time <= last.time {
                time = last.time + self.nominal_ticks;
            }
        }

        // A new GOP closes the open fragment. So do the size limits, which keep
        // memory bounded even if keyframes stop coming.
        let full = self.samples.len() >= MAX_FRAGMENT_SAMPLES
            || start + size as usize > MAX_FRAGMENT_BYTES;
        let done = if !self.samples.is_empty() && (packet.keyframe || full) {
            // The new frame's bytes are already at the end of `data`: set them aside.
            let tail = self.data.split_off(start);
            // On error `data` holds just the open fragment again: unchanged.
            let fragment = self.close(time)?;
            self.data = tail;
            Some(fragment)
        } else {
            None
        };
        if self.samples.is_empty() {
            self.wall_start = Some(packet.wall);
        }
        self.samples.push(Pending {
            time,
            size,
            keyframe: packet.keyframe,
        });
        Ok(done)
    }

    /// Closes the last fragment. `end` is the capture time of the frame that would
    /// follow the last one, when known (at a segment change it is the next segment's
    /// first frame); otherwise the last frame lasts as long as the one before it.
    pub fn finish(mut self, end: Option<Instant>) -> Result<Option<Fragment>, Mp4Error> {
        let Some(last) = self.samples.last() else {
            return Ok(None);
        };
        let measured = end
            .zip(self.epoch)
            .map(|(end, epoch)| duration_to_ticks(end.saturating_duration_since(epoch)))
            .filter(|&t| t > last.time);
        let end = measured.unwrap_or_else(|| {
            let previous = match self.samples.len() {
                n if n >= 2 => last.time - self.samples[n - 2].time,
                _ => self.nominal_ticks,
            };
            last.time + previous
        });
        self.close(end).map(Some)
    }

    /// Writes the open fragment; `end` is the decode time just after its last frame.
    fn close(&mut self, end: u64) -> Result<Fragment, Mp4Error> {
        let entries: Vec<SampleEntry> = self
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let next = self.samples.get(i + 1).map_or(end, |n| n.time);
                SampleEntry {
                    duration: u32::try_from(next - s.time).unwrap_or(u32::MAX),
                    size: s.size,
                    keyframe: s.keyframe,
                }
            })
            .collect();
        let decode_time = self.samples[0].time;
        let bytes = write_fragment(self.next_sequence, decode_time, &entries, &self.data)?;
        let info = FragmentInfo {
            sequence: self.next_sequence,
            offset: self.written,
            len: bytes.len() as u64,
            decode_time,
            duration: entries.iter().map(|e| u64::from(e.duration)).sum(),
            samples: entries.len() as u32,
            starts_with_keyframe: entries[0].keyframe,
        };
        let wall_start = self.wall_start.take().unwrap_or(SystemTime::UNIX_EPOCH);
        self.written += info.len;
        self.next_sequence += 1;
        self.samples.clear();
        self.data.clear();
        Ok(Fragment {
            info,
            wall_start,
            data: Bytes::from(bytes),
        })
    }
}
