//! Wires the stages on their own threads: capture → JPEG encoder → live bus.
//!
//! Each consumer of raw frames gets a one-slot channel. The capture thread never
//! waits for a consumer: if the slot is still full, that consumer skips this frame.
//! So a slow encoder lowers its own frame rate and nobody else's, and memory stays
//! bounded by the source's buffer pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::camera::{Frame, FrameSource};
use crate::encode::Encoder;
use crate::live::LiveBus;
use crate::status::CameraStatus;

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

pub struct Pipeline {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Lets a consumer of raw frames (the H.264 stage) join the running capture thread.
/// STUB — being implemented.
#[derive(Clone, Default)]
pub struct FrameTap {}

impl Pipeline {
    pub fn start(
        source: Box<dyn FrameSource>,
        jpeg: Box<dyn Encoder>,
        bus: Arc<LiveBus>,
        status: Arc<CameraStatus>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        status.started(source.info());
        let (jpeg_tx, jpeg_rx) = sync_channel::<Arc<Frame>>(1);
        let encode = {
            let (stop, status) = (Arc::clone(&stop), Arc::clone(&status));
            std::thread::Builder::new()
                .name("jpeg-encode".into())
                .spawn(move || encode_loop(jpeg, jpeg_rx, &bus, &status, &stop))?
        };
        let capture = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("capture".into())
                .spawn(move || capture_loop(source, vec![jpeg_tx], &status, &stop))?
        };
        Ok(Self {
            stop,
            threads: vec![capture, encode],
        })
    }

    /// A handle for consumers that attach after start (the recorder starts after setup).
    pub fn tap(&self) -> FrameTap {
        FrameTap::default()
    }

    /// Tells the threads to stop; [`Stopping::join`] waits for them. A source returns
    /// within one frame time, so the I/O loop can keep draining connections meanwhile.
    pub fn request_stop(self) -> Stopping {
        self.stop.store(true, Ordering::Relaxed);
        Stopping(self.threads)
    }
}

pub struct Stopping(Vec<JoinHandle<()>>);

impl Stopping {
    pub fn join(self) {
        for t in self.0 {
            let _ = t.join();
        }
    }
}

fn capture_loop(
    mut source: Box<dyn FrameSource>,
    sinks: Vec<SyncSender<Arc<Frame>>>,
    status: &CameraStatus,
    stop: &AtomicBool,
) {
    let info = source.info();
    tracing::info!(
        source = info.kind,
        width = info.width,
        height = info.height,
        fps = info.fps,
        "camera started"
    );
    while !stop.load(Ordering::Relaxed) {
        match source.next_frame() {
            Ok(Some(frame)) => {
                let frame = Arc::new(frame);
                for sink in &sinks {
                    match sink.try_send(Arc::clone(&frame)) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => status.frame_skipped(),
                        Err(TrySendError::Disconnected(_)) => return,
                    }
                }
            }
            Ok(None) => status.frame_skipped(),
            Err(e) => {
                // Replay files can be bad one by one; keep going, but do not flood the log.
                let n = status.error(e.to_string());
                if n <= 3 || n.is_power_of_two() {
                    tracing::warn!(errors = n, "camera frame lost: {e}");
                }
            }
        }
    }
}

fn encode_loop(
    mut encoder: Box<dyn Encoder>,
    frames: Receiver<Arc<Frame>>,
    bus: &LiveBus,
    status: &CameraStatus,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let frame = match frames.recv_timeout(POLL) {
            Ok(f) => f,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        match encoder.encode(&frame) {
            Ok(packet) => {
                drop(frame); // return the raw buffer before publishing
                bus.publish(packet);
                status.frame_delivered(Instant::now());
            }
            Err(e) => {
                let n = status.error(e.to_string());
                if n <= 3 || n.is_power_of_two() {
                    tracing::warn!(encoder = encoder.name(), "frame not encoded: {e}");
                }
            }
        }
    }
}
