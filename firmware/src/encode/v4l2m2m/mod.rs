//! The Pi's V4L2 memory-to-memory encoders (bcm2835-codec), as a state machine over a
//! [`M2mDevice`].
//!
//! The device boundary is a trait so the bookkeeping (which input buffers the device
//! holds, which output belongs to which frame, when a stalled encoder is restarted) is
//! tested against a scripted fake. The `v4l2r` implementation of the trait (DMABUF
//! import, controls for bitrate / I-period / repeated SPS-PPS / forced keyframes /
//! frame rate, node lookup by QUERYCAP card name) is not wired yet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::Packet;

/// QUERYCAP card names of the Pi's encoder nodes.
pub const H264_CARD: &str = "bcm2835-codec-encode";
pub const JPEG_CARD: &str = "bcm2835-codec-encode_image";
/// Largest side both encoders accept; beyond it, software JPEG.
pub const MAX_SIDE: u32 = 1920;

/// Whether the hardware encoders can take a `width`×`height` frame.
pub fn fits_hardware(width: u32, height: u32) -> bool {
    width <= MAX_SIDE && height <= MAX_SIDE
}

/// One encoded buffer as the device returns it, tagged with the input's timestamp
/// (V4L2 copies the OUTPUT queue's timestamp to the CAPTURE buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub timestamp_us: u64,
    pub keyframe: bool,
    pub data: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct DeviceError(pub String);

/// What the encoder needs from a V4L2 M2M node.
pub trait M2mDevice: Send {
    /// Queues input slot `slot` (a dmabuf already bound to it) with this timestamp.
    fn queue_input(
        &mut self,
        slot: usize,
        timestamp_us: u64,
        force_keyframe: bool,
    ) -> Result<(), DeviceError>;
    /// Input slots the device has finished reading, without blocking.
    fn reclaim_inputs(&mut self) -> Result<Vec<usize>, DeviceError>;
    /// The next encoded buffer, waiting at most `wait`.
    fn next_output(&mut self, wait: Duration) -> Result<Option<Encoded>, DeviceError>;
    /// Stops both queues, frees every buffer and starts again (STREAMOFF/STREAMON).
    fn restart(&mut self) -> Result<(), DeviceError>;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum M2mError {
    #[error("hardware encoder failed: {0}; falling back to the software encoder is safe")]
    Device(#[from] DeviceError),
}

/// What happened to a submitted frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    Queued,
    /// Every input buffer is still in the device: the frame is skipped, not queued.
    Starved,
}

struct Pending {
    seq: u64,
    captured: Instant,
    wall: SystemTime,
    queued_at: Instant,
}

/// Counters for health reports and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct M2mStats {
    pub starved: u64,
    pub restarts: u64,
    pub unmatched_outputs: u64,
}

pub struct M2mEncoder<D> {
    device: D,
    free: Vec<usize>,
    slots: usize,
    pending: BTreeMap<u64, Pending>,
    stall_timeout: Duration,
    force_next_keyframe: bool,
    stats: M2mStats,
}

impl<D: M2mDevice> M2mEncoder<D> {
    pub fn new(device: D, slots: usize, stall_timeout: Duration) -> Self {
        Self {
            device,
            free: (0..slots).rev().collect(),
            slots,
            pending: BTreeMap::new(),
            stall_timeout,
            force_next_keyframe: false,
            stats: M2mStats::default(),
        }
    }

    pub fn stats(&self) -> M2mStats {
        self.stats
    }

    /// Asks for the next frame to be a keyframe (a new recording, a new live client).
    pub fn force_keyframe(&mut self) {
        self.force_next_keyframe = true;
    }

    /// Queues a frame captured at `captured`; `now` is passed in so tests control time.
    pub fn submit(
        &mut self,
        seq: u64,
        captured: Instant,
        wall: SystemTime,
        timestamp_us: u64,
        now: Instant,
    ) -> Result<Submitted, M2mError> {
        self.restart_if_stalled(now)?;
        self.free.extend(self.device.reclaim_inputs()?);
        let Some(slot) = self.free.pop() else {
            self.stats.starved += 1;
            tracing::debug!(
                seq,
                "hardware encoder has every input buffer; skipping a frame"
            );
            return Ok(Submitted::Starved);
        };
        let force = std::mem::take(&mut self.force_next_keyframe);
        self.device.queue_input(slot, timestamp_us, force)?;
        self.pending.insert(
            timestamp_us,
            Pending {
                seq,
                captured,
                wall,
                queued_at: now,
            },
        );
        Ok(Submitted::Queued)
    }

    /// Collects finished packets, matched to their frames by timestamp. A late output
    /// still gets its own frame's sequence number and capture time.
    pub fn collect(&mut self, wait: Duration) -> Result<Vec<Packet>, M2mError> {
        let mut packets = Vec::new();
        let mut wait = wait;
        while let Some(out) = self.device.next_output(wait)? {
            wait = Duration::ZERO;
            let Some(p) = self.pending.remove(&out.timestamp_us) else {
                self.stats.unmatched_outputs += 1;
                tracing::warn!(
                    timestamp_us = out.timestamp_us,
                    "encoder returned a buffer for no queued frame; dropped"
                );
                continue;
            };
            packets.push(Packet {
                seq: p.seq,
                captured: p.captured,
                wall: p.wall,
                keyframe: out.keyframe,
                data: out.data,
            });
        }
        packets.sort_by_key(|p| p.seq);
        Ok(packets)
    }

    fn restart_if_stalled(&mut self, now: Instant) -> Result<(), M2mError> {
        let Some(oldest) = self.pending.values().map(|p| p.queued_at).min() else {
            return Ok(());
        };
        if now.saturating_duration_since(oldest) < self.stall_timeout {
            return Ok(());
        }
        tracing::warn!(
            waiting = self.pending.len(),
            timeout_ms = self.stall_timeout.as_millis() as u64,
            "hardware encoder stalled; restarting it"
        );
        self.device.restart()?;
        self.stats.restarts += 1;
        self.pending.clear();
        self.free = (0..self.slots).rev().collect();
        // Whatever was in flight is lost; the stream must resume decodable.
        self.force_next_keyframe = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
