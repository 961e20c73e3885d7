//! The recording encoder: a dedicated thread that turns captured frames into H.264
//! packets for the recorder.
//!
//! ```text
//! capture ──Arc<Frame> (one-slot std channel)──► [h264-encode thread] ──Packet (bounded tokio channel)──► recorder task
//! ```
//!
//! Encoding is CPU-heavy, so it runs on its own thread (design: the I/O loop never
//! waits on it). It never waits on the recorder either: packets go out with
//! `try_send`. When the recorder is behind and the channel is full, the packet is
//! dropped — and since every later delta frame of that GOP refers to it, so is
//! everything up to the next keyframe, which is forced at once. A recording can thus
//! lose frames under load, but never contains a frame whose reference is missing
//! (which a player would show as smeared garbage until the next keyframe).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use crate::camera::Frame;
use crate::encode::h264::KeyframeRequest;
use crate::encode::{Encoder, Packet};

/// How often the blocked thread looks at the stop flag (as in `pipeline`).
const POLL: Duration = Duration::from_millis(100);

/// Counters of the stage, shared with whoever reports health.
#[derive(Debug, Default)]
pub struct StageCounters {
    encoded: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
}

/// A snapshot of [`StageCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StageStats {
    /// Frames encoded.
    pub encoded: u64,
    /// Packets handed to the recorder.
    pub sent: u64,
    /// Packets dropped because the recorder was behind (or waiting for the keyframe
    /// that follows such a drop).
    pub dropped: u64,
    /// Frames the encoder failed on.
    pub errors: u64,
}

impl StageCounters {
    pub fn snapshot(&self) -> StageStats {
        StageStats {
            encoded: self.encoded.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// The running encoder thread.
pub struct H264Stage {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    counters: Arc<StageCounters>,
    keyframes: KeyframeRequest,
}

impl H264Stage {
    /// Starts the thread. `keyframes` must be the handle of `encoder` (for OpenH264,
    /// `OpenH264::keyframe_request()`): the stage forces keyframes through it after a
    /// drop, and the recorder may too (pass [`H264Stage::keyframe_request`] on).
    ///
    /// The thread ends when stopped, when the frame sender is gone, or when the
    /// recorder has dropped its receiver.
    pub fn start(
        encoder: Box<dyn Encoder>,
        keyframes: KeyframeRequest,
        frames: Receiver<Arc<Frame>>,
        packets: Sender<Packet>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(StageCounters::default());
        let thread = {
            let (stop, counters, keyframes) =
                (Arc::clone(&stop), Arc::clone(&counters), keyframes.clone());
            std::thread::Builder::new()
                .name("h264-encode".into())
                .spawn(move || {
                    encode_loop(encoder, &keyframes, &frames, &packets, &counters, &stop)
                })?
        };
        Ok(Self {
            stop,
            thread,
            counters,
            keyframes,
        })
    }

    /// Forces a keyframe from elsewhere (the recorder starting a recording).
    pub fn keyframe_request(&self) -> KeyframeRequest {
        self.keyframes.clone()
    }

    pub fn counters(&self) -> Arc<StageCounters> {
        Arc::clone(&self.counters)
    }

    pub fn stats(&self) -> StageStats {
        self.counters.snapshot()
    }

    /// Stops the thread and waits for it (at most one frame's encoding or 100 ms).
    pub fn stop(self) -> StageStats {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            tracing::error!("the H.264 encoder thread panicked");
        }
        self.counters.snapshot()
    }
}

fn encode_loop(
    mut encoder: Box<dyn Encoder>,
    keyframes: &KeyframeRequest,
    frames: &Receiver<Arc<Frame>>,
    packets: &Sender<Packet>,
    counters: &StageCounters,
    stop: &AtomicBool,
) {
    // After a drop, delta frames are useless until the next keyframe.
    let mut need_keyframe = false;
    while !stop.load(Ordering::Relaxed) {
        let frame = match frames.recv_timeout(POLL) {
            Ok(f) => f,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let packet = match encoder.encode(&frame) {
            Ok(p) => p,
            Err(e) => {
                // The encoder's state is unknown after a failure: restart the GOP so
                // nothing can refer to a frame that never came out.
                let n = counters.errors.fetch_add(1, Ordering::Relaxed) + 1;
                if n <= 3 || n.is_power_of_two() {
                    tracing::warn!(
                        encoder = encoder.name(),
                        errors = n,
                        "frame not encoded: {e}"
                    );
                }
                keyframes.request();
                need_keyframe = true;
                continue;
            }
        };
        drop(frame); // give the raw buffer back before waiting on anything
        counters.encoded.fetch_add(1, Ordering::Relaxed);
        if need_keyframe && !packet.keyframe {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            keyframes.request();
            continue;
        }
        let keyframe = packet.keyframe;
        match packets.try_send(packet) {
            Ok(()) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                if keyframe {
                    need_keyframe = false;
                }
            }
            Err(TrySendError::Full(_)) => {
                let n = counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n <= 3 || n.is_power_of_two() {
                    tracing::warn!(dropped = n, "recorder is behind; H.264 packet dropped");
                }
                keyframes.request();
                need_keyframe = true;
            }
            Err(TrySendError::Closed(_)) => return,
        }
    }
}
