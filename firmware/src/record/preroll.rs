//! The pre-roll ring: the last few seconds of encoded video, kept in memory while
//! nothing is being recorded, so an event recording can start before its trigger.
//!
//! The ring holds whole GOPs only: a recording must start with a keyframe, and a GOP
//! without its keyframe cannot be decoded. It keeps the fewest GOPs that still cover
//! `max_duration` before the newest frame, so the pre-roll is at least what was asked
//! (up to one GOP more), and never more than `max_bytes`: a byte limit that would cut
//! into the asked duration wins, because memory on a 512 MB device is the harder
//! limit. Packets share their data (`Bytes`), so the ring costs what the encoded
//! video costs and nothing more.

use std::collections::VecDeque;
use std::time::Duration;

use crate::encode::Packet;

/// What happened to a packet given to [`PreRoll::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Stored.
    Kept,
    /// A delta frame with no keyframe before it in the ring: useless, dropped.
    NoKeyframe,
    /// The byte limit forced out the GOP being filled (a single GOP larger than the
    /// limit): the ring waits for the next keyframe; asking the encoder for one early
    /// shortens the wait.
    GopDropped,
}

#[derive(Debug)]
pub struct PreRoll {
    max_duration: Duration,
    max_bytes: usize,
    gops: VecDeque<Vec<Packet>>,
    bytes: usize,
}

impl PreRoll {
    pub fn new(max_duration: Duration, max_bytes: usize) -> Self {
        Self {
            max_duration,
            max_bytes,
            gops: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Adds the newest packet and drops what is no longer needed.
    pub fn push(&mut self, packet: Packet) -> Pushed {
        let now = packet.captured;
        let len = packet.data.len();
        if packet.keyframe {
            self.gops.push_back(vec![packet]);
        } else if let Some(gop) = self.gops.back_mut() {
            gop.push(packet);
        } else {
            return Pushed::NoKeyframe;
        }
        self.bytes += len;

        // Time: the oldest GOP can go when the next one alone reaches back far enough.
        while self.gops.len() > 1 && self.gops[1][0].captured + self.max_duration <= now {
            self.pop_front();
        }
        // Memory: oldest first, the GOP being filled last.
        let mut pushed = Pushed::Kept;
        while self.bytes > self.max_bytes {
            if self.gops.len() == 1 {
                pushed = Pushed::GopDropped;
            }
            self.pop_front();
        }
        pushed
    }

    fn pop_front(&mut self) {
        if let Some(gop) = self.gops.pop_front() {
            self.bytes -= gop.iter().map(|p| p.data.len()).sum::<usize>();
        }
    }

    /// Whether the ring holds a GOP to start a recording with.
    pub fn has_keyframe(&self) -> bool {
        !self.gops.is_empty()
    }

    /// Empties the ring, oldest packet first.
    pub fn take(&mut self) -> Vec<Packet> {
        self.bytes = 0;
        self.gops.drain(..).flatten().collect()
    }

    /// Bytes of video held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Time from the first held frame to `now`, if any frame is held.
    pub fn span(&self, now: std::time::Instant) -> Option<Duration> {
        self.gops
            .front()
            .map(|gop| now.saturating_duration_since(gop[0].captured))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use bytes::Bytes;

    use super::*;

    /// Packet `seq` at 10 fps, a keyframe every `gop` frames, `len` bytes.
    fn packet(t0: Instant, seq: u64, gop: u64, len: usize) -> Packet {
        Packet {
            seq,
            captured: t0 + Duration::from_millis(100 * seq),
            wall: SystemTime::UNIX_EPOCH,
            keyframe: seq.is_multiple_of(gop),
            data: Bytes::from(vec![0u8; len]),
        }
    }

    #[test]
    fn record_preroll_keeps_whole_gops_covering_the_duration() {
        let t0 = Instant::now();
        // 2 s of pre-roll, GOPs of 1 s (10 frames).
        let mut ring = PreRoll::new(Duration::from_secs(2), usize::MAX);
        for seq in 0..=47 {
            assert_eq!(ring.push(packet(t0, seq, 10, 100)), Pushed::Kept);
        }
        // Newest frame at 4.7 s; 2 s back is 2.7 s, inside the GOP starting at 2.0 s.
        assert_eq!(
            ring.span(t0 + Duration::from_millis(4700)),
            Some(Duration::from_millis(2700))
        );
        let packets = ring.take();
        assert_eq!(packets.first().map(|p| p.seq), Some(20));
        assert!(packets[0].keyframe);
        assert_eq!(packets.len(), 28);
        assert!(packets.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert!(!ring.has_keyframe());
        assert_eq!(ring.bytes(), 0);
    }

    #[test]
    fn record_preroll_waits_for_a_keyframe_and_obeys_the_byte_limit() {
        let t0 = Instant::now();
        let mut ring = PreRoll::new(Duration::from_secs(60), 1_500);
        assert_eq!(ring.push(packet(t0, 3, 10, 100)), Pushed::NoKeyframe);
        assert!(!ring.has_keyframe());
        for seq in 10..40 {
            ring.push(packet(t0, seq, 10, 100));
        }
        // 30 packets of 100 bytes against a 1 500-byte limit: whole GOPs go first.
        assert!(ring.bytes() <= 1_500);
        assert_eq!(ring.take().first().map(|p| p.seq), Some(30));

        // One GOP larger than the limit on its own is dropped, and says so.
        let mut ring = PreRoll::new(Duration::from_secs(60), 450);
        let outcomes: Vec<Pushed> = (0..5).map(|s| ring.push(packet(t0, s, 10, 100))).collect();
        assert_eq!(outcomes[4], Pushed::GopDropped);
        assert!(!ring.has_keyframe());
        assert_eq!(ring.push(packet(t0, 5, 10, 100)), Pushed::NoKeyframe);
    }
}
