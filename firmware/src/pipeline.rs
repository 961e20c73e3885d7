//! Wires the stages on their own threads: capture → JPEG encoder → live bus, and any
//! consumer that attaches later through a [`FrameTap`] (the H.264 encoder of the
//! recorder, which starts once first-run setup has made the vault).
//!
//! Each consumer of raw frames gets a one-slot channel. The capture thread never
//! waits for a consumer: if the slot is still full, that consumer skips this frame.
//! So a slow encoder lowers its own frame rate and nobody else's, and memory stays
//! bounded by the source's buffer pool.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::camera::{Frame, FrameSource, SourceInfo};
use crate::encode::Encoder;
use crate::live::LiveBus;
use crate::status::CameraStatus;

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

pub struct Pipeline {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tap: FrameTap,
}

/// Lets a consumer of raw frames join the running capture thread: the recorder's H.264
/// stage, which can only start after setup. `Clone + Send`; every
/// [`attach`](FrameTap::attach) adds one consumer.
///
/// A consumer leaves by dropping its receiver: the capture thread notices at the next
/// frame and forgets that sink only; capture and the other consumers go on.
///
/// `FrameTap::default()` is a tap on no pipeline (for tests of other stages): it has
/// no [`info`](FrameTap::info) and its receivers never get a frame.
#[derive(Clone, Default)]
pub struct FrameTap {
    shared: Arc<TapShared>,
}

#[derive(Default)]
struct TapShared {
    /// What the source produces; `None` for a tap on no pipeline.
    info: Option<SourceInfo>,
    /// Senders attached since the capture thread last looked.
    pending: Mutex<Pending>,
    /// Set with every attach, so the capture thread takes the lock only then.
    changed: AtomicBool,
    /// Frames an attached consumer missed because its slot was still full.
    skipped: AtomicU64,
}

#[derive(Default)]
struct Pending {
    senders: Vec<SyncSender<Arc<Frame>>>,
    /// The capture thread has ended: nobody will ever take new senders.
    closed: bool,
}

impl TapShared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A list and a flag, consistent after every push or drain: a panic while the
        // lock was held cannot have left them half-changed.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FrameTap {
    fn new(info: SourceInfo) -> Self {
        Self {
            shared: Arc::new(TapShared {
                info: Some(info),
                ..TapShared::default()
            }),
        }
    }

    /// A new consumer: frames captured from now on arrive on the receiver, as long as
    /// it takes them faster than they come; the ones it is too slow for are skipped,
    /// never queued. If the capture thread has ended (or this tap is on no pipeline)
    /// the receiver reports `Disconnected` (or never yields).
    pub fn attach(&self) -> Receiver<Arc<Frame>> {
        let (tx, rx) = sync_channel(1);
        let mut pending = self.shared.lock();
        if !pending.closed {
            pending.senders.push(tx);
            self.shared.changed.store(true, Ordering::Release);
        }
        rx
    }

    /// Size and rate of the frames, as the source reports them (a replay's size is its
    /// files', not `camera.size`). `None` for a tap on no pipeline.
    pub fn info(&self) -> Option<SourceInfo> {
        self.shared.info
    }

    /// Frames that attached consumers skipped because they were still busy.
    pub fn skipped(&self) -> u64 {
        self.shared.skipped.load(Ordering::Relaxed)
    }

    /// The capture thread's side: the senders attached since the last call.
    fn take_new(&self) -> Vec<SyncSender<Arc<Frame>>> {
        if !self.shared.changed.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut self.shared.lock().senders)
    }

    /// The capture thread has ended: drop every sender, now and later, so consumers
    /// see `Disconnected` instead of waiting for frames that cannot come.
    fn close(&self) {
        let mut pending = self.shared.lock();
        pending.closed = true;
        pending.senders.clear();
    }
}

/// Closes the tap when the capture thread ends.
struct ClosedOnDrop(FrameTap);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

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
        let tap = FrameTap::new(source.info());
        let capture = {
            let (stop, tap) = (Arc::clone(&stop), tap.clone());
            std::thread::Builder::new()
                .name("capture".into())
                .spawn(move || {
                    // Closed however the loop ends, a panic included.
                    let tap = ClosedOnDrop(tap);
                    capture_loop(source, &jpeg_tx, &tap.0, &status, &stop);
                })?
        };
        Ok(Self {
            stop,
            threads: vec![capture, encode],
            tap,
        })
    }

    /// A handle for consumers that attach after start (the recorder starts after setup).
    pub fn tap(&self) -> FrameTap {
        self.tap.clone()
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
    jpeg: &SyncSender<Arc<Frame>>,
    tap: &FrameTap,
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
    let mut attached: Vec<SyncSender<Arc<Frame>>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match source.next_frame() {
            Ok(Some(frame)) => {
                let frame = Arc::new(frame);
                match jpeg.try_send(Arc::clone(&frame)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => status.frame_skipped(),
                    // The JPEG encoder only ends when the pipeline stops (or panicked):
                    // without it there is no live view, so stop capturing too.
                    Err(TrySendError::Disconnected(_)) => return,
                }
                attached.extend(tap.take_new());
                // A consumer that went away is forgotten; the others go on.
                attached.retain(|sink| match sink.try_send(Arc::clone(&frame)) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => {
                        tap.shared.skipped.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        tracing::debug!("a frame consumer detached");
                        false
                    }
                });
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::SystemTime;

    use bytes::Bytes;

    use super::*;
    use crate::camera::{BufferPool, CameraError, I420};
    use crate::encode::{EncodeError, Packet};

    const W: u32 = 16;
    const H: u32 = 8;

    /// Blank frames every 2 ms, counted.
    struct FakeSource {
        pool: BufferPool,
        seq: u64,
    }

    impl FrameSource for FakeSource {
        fn info(&self) -> SourceInfo {
            SourceInfo {
                kind: "fake",
                width: W,
                height: H,
                fps: 500,
            }
        }

        fn next_frame(&mut self) -> Result<Option<Frame>, CameraError> {
            std::thread::sleep(Duration::from_millis(2));
            let Some(buf) = self.pool.take() else {
                return Ok(None);
            };
            self.seq += 1;
            Ok(Some(Frame {
                seq: self.seq,
                captured: Instant::now(),
                wall: SystemTime::now(),
                image: I420::new(W, H, buf),
            }))
        }
    }

    struct FakeJpeg;

    impl Encoder for FakeJpeg {
        fn name(&self) -> &'static str {
            "fake-jpeg"
        }

        fn encode(&mut self, frame: &Frame) -> Result<Packet, EncodeError> {
            Ok(Packet {
                seq: frame.seq,
                captured: frame.captured,
                wall: frame.wall,
                keyframe: true,
                data: Bytes::from_static(b"jpeg"),
            })
        }
    }

    fn start() -> (Pipeline, Arc<LiveBus>, Arc<CameraStatus>) {
        let source = FakeSource {
            pool: BufferPool::new(I420::len_for(W, H), 8),
            seq: 0,
        };
        let bus = Arc::new(LiveBus::new());
        let status = Arc::new(CameraStatus::default());
        let pipeline = Pipeline::start(
            Box::new(source),
            Box::new(FakeJpeg),
            Arc::clone(&bus),
            Arc::clone(&status),
        )
        .unwrap();
        (pipeline, bus, status)
    }

    /// The next `n` frames of `rx`, which must keep coming.
    fn take(rx: &Receiver<Arc<Frame>>, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(5))
                    .expect("frames keep coming")
                    .seq
            })
            .collect()
    }

    /// The live view's newest frame number, once it is past `after`.
    fn live_after(bus: &LiveBus, after: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let seq = bus.latest().map_or(0, |p| p.seq);
            if seq > after {
                return seq;
            }
            assert!(Instant::now() < deadline, "the live view stalled at {seq}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn pipeline_tap_attaches_and_detaches_while_capture_runs() {
        let (pipeline, bus, _status) = start();
        let tap = pipeline.tap();
        assert_eq!(tap.info().map(|i| (i.width, i.height)), Some((W, H)));
        let live = live_after(&bus, 0);

        // Attached after start, from another thread (the tap is Send).
        let first = std::thread::spawn({
            let tap = tap.clone();
            move || tap.attach()
        })
        .join()
        .unwrap();
        let seqs = take(&first, 5);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert!(seqs[0] > 0);

        // A second consumer, and one that never reads: neither disturbs the other.
        let second = tap.attach();
        let stuck = tap.attach();
        take(&second, 5);
        take(&first, 5);
        assert!(tap.skipped() > 0, "the stuck consumer skips frames");

        // The first consumer leaves: capture, live view and the others go on.
        drop(first);
        let live = live_after(&bus, live + 10);
        let seqs = take(&second, 10);
        assert!(seqs[0] > 0);
        live_after(&bus, live + 10);
        drop(stuck);
        take(&second, 5);

        // Re-attaching after a detach works too.
        let third = tap.attach();
        take(&third, 3);

        // Stopping ends every consumer's stream, and later attaches get no frames.
        pipeline.request_stop().join();
        let ended = |rx: &Receiver<Arc<Frame>>| loop {
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(ended(&second), RecvTimeoutError::Disconnected);
        assert_eq!(ended(&third), RecvTimeoutError::Disconnected);
        assert_eq!(ended(&tap.attach()), RecvTimeoutError::Disconnected);
    }

    #[test]
    fn pipeline_tap_on_no_pipeline_has_no_info() {
        let tap = FrameTap::default();
        assert_eq!(tap.info(), None);
        let rx = tap.attach();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(10)).unwrap_err(),
            RecvTimeoutError::Timeout
        );
    }
}
