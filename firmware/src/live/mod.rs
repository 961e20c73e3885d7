//! The live bus: the latest encoded JPEG, shared by every live client.
//!
//! A `watch` channel holds exactly one frame. Publishing replaces it; a client that is
//! busy sending an older frame simply sees the newest one when it next looks. So a
//! slow client skips frames and never queues them, and memory does not grow with the
//! number or speed of clients: each holds at most a reference to one `Bytes`.

use tokio::sync::watch;

use crate::encode::Packet;

pub struct LiveBus {
    tx: watch::Sender<Option<Packet>>,
}

impl Default for LiveBus {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveBus {
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(None),
        }
    }

    /// Makes `packet` the current frame. Callable from any thread.
    pub fn publish(&self, packet: Packet) {
        self.tx.send_replace(Some(packet));
    }

    pub fn subscribe(&self) -> watch::Receiver<Option<Packet>> {
        self.tx.subscribe()
    }

    pub fn latest(&self) -> Option<Packet> {
        self.tx.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::{Instant, SystemTime};

    fn packet(seq: u64) -> Packet {
        Packet {
            seq,
            captured: Instant::now(),
            wall: SystemTime::now(),
            keyframe: true,
            data: Bytes::from(vec![seq as u8; 1000]),
        }
    }

    #[test]
    fn latest_frame_wins_and_is_shared_not_copied() {
        let bus = LiveBus::new();
        let mut rx = bus.subscribe();
        for seq in 0..10 {
            bus.publish(packet(seq));
        }
        assert!(rx.has_changed().unwrap());
        let seen = rx.borrow_and_update().clone().unwrap();
        assert_eq!(seen.seq, 9, "a slow reader sees only the newest frame");
        let latest = bus.latest().unwrap();
        assert_eq!(
            seen.data.as_ptr(),
            latest.data.as_ptr(),
            "clients share one buffer"
        );
    }
}
