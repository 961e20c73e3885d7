//! The detector thread: frames from the pipeline's tap, motion on every frame it gets,
//! the person model on the moving region at most N times a second, and
//! [`Observation`]s to the events stage.
//!
//! ```text
//! capture ──Arc<Frame> (one-slot tap)──► [detect thread: motion ─gate─► PersonModel] ──Observation (bounded tokio channel)──► events
//! ```
//!
//! Motion and inference are CPU work, so they run on their own thread; the capture
//! thread never waits for it (the tap skips frames while the detector is busy, e.g.
//! during an inference) and it never waits for the events stage (see delivery below).
//!
//! # What is sent
//!
//! For each analysed frame the thread runs [`MotionDetector::process`]. Then:
//!
//! - **The model** runs on a frame when that frame *changed* (its changed area is at
//!   least `min_area`, [`MotionDetector::changed_region`] — also during the motion
//!   cooldown, so the cooldown never hides a person), a model is loaded, and the
//!   inference budget allows: at most `max_inferences_per_sec` on average, timed by the
//!   frames' capture times, with no bursts. It gets the changed region widened by
//!   `region_margin` of its width and height on each side, clamped to the frame.
//!   Its detections are kept if their score is at least `person_threshold`.
//! - **An [`Observation`] is sent** for every analysed frame in which something is
//!   seen: motion is reported (`motion: Some`), or the model found at least one person
//!   (`persons: Some(non-empty)`). In it, `persons` is `None` when the model did not
//!   run on that frame, `Some(vec![])` when it ran and found nobody.
//! - **The end**: the first analysed frame after such a frame in which nothing is seen
//!   produces one more Observation, with `motion: None` (and `persons` as above, so
//!   `None` or `Some(vec![])`). Then nothing is sent until something is seen again.
//!   When the thread stops while something is seen, it sends this end itself (time:
//!   when it stopped).
//!
//! So the events stage gets every frame with activity, one marker when activity stops,
//! and silence while the scene is quiet; it times its own cooldown from the last
//! Observation with activity.
//!
//! # Delivery
//!
//! Observations go out with `try_send`. When the channel is full, the newest
//! Observation waits in a one-slot mailbox and is retried at least every 100 ms; a
//! newer one replaces it (counted in [`DetectorStats::dropped`]). So a slow receiver
//! loses intermediate frames, but always ends up with the newest state, including an
//! end marker, and the thread never blocks on it — it can be stopped from the async
//! loop that drains the channel without deadlocking. The thread ends when stopped,
//! when the tap's sender is gone, or when the receiver is dropped.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use super::motion::{MotionConfig, MotionDetector, MotionError};
use super::{BBox, Detection, Observation};
use crate::camera::Frame;
use crate::config::DetectionConfig;

/// How often the waiting thread looks at the stop flag and the mailbox.
const POLL: Duration = Duration::from_millis(100);

/// Region margin by default: a quarter of the moving area's size on each side, so a
/// moving arm still brings the body into the crop.
pub const DEFAULT_REGION_MARGIN: f32 = 0.25;

/// A person detector, at the boundary to the model runtime (TFLite with tract in
/// `detect::person`; a fake in tests).
pub trait PersonModel: Send {
    /// Persons in `frame`, looking only at `region` when given (the model crops and
    /// resizes). Boxes are in normalised coordinates of the whole frame, scores 0..1;
    /// the caller applies the threshold. An `Err` says what failed, for the log.
    fn detect(&mut self, frame: &Frame, region: Option<BBox>) -> Result<Vec<Detection>, String>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    pub motion: MotionConfig,
    /// Person score (0..1) at which a detection counts.
    pub person_threshold: f32,
    /// The model runs at most this often (on average) while there is motion.
    pub max_inferences_per_sec: f32,
    /// The moving region is widened by this share of its width and height on each
    /// side before the model looks at it.
    pub region_margin: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self::from(&DetectionConfig::default())
    }
}

impl From<&DetectionConfig> for DetectorConfig {
    fn from(d: &DetectionConfig) -> Self {
        Self {
            motion: MotionConfig::from(d),
            person_threshold: d.person_threshold,
            max_inferences_per_sec: d.max_inferences_per_sec,
            region_margin: DEFAULT_REGION_MARGIN,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectorConfigError {
    #[error(transparent)]
    Motion(#[from] MotionError),
    #[error("person threshold {0} is out of range; use a score from 0 to 1")]
    PersonThreshold(f32),
    #[error("{0} inferences per second is not a budget; use a positive number such as 2")]
    InferenceRate(f32),
    #[error("region margin {0} is out of range; use a share of the region from 0 to 4")]
    RegionMargin(f32),
}

impl DetectorConfig {
    /// Checks what can be checked before the first frame (see
    /// [`MotionConfig::validate`]).
    pub fn validate(&self) -> Result<(), DetectorConfigError> {
        self.motion.validate()?;
        if !(0.0..=1.0).contains(&self.person_threshold) {
            return Err(DetectorConfigError::PersonThreshold(self.person_threshold));
        }
        if !(self.max_inferences_per_sec.is_finite() && self.max_inferences_per_sec > 0.0) {
            return Err(DetectorConfigError::InferenceRate(
                self.max_inferences_per_sec,
            ));
        }
        if !(0.0..=4.0).contains(&self.region_margin) {
            return Err(DetectorConfigError::RegionMargin(self.region_margin));
        }
        Ok(())
    }
}

/// Counters of the detector thread, shared with whoever reports health.
#[derive(Debug, Default)]
pub struct DetectorCounters {
    frames: AtomicU64,
    motion_frames: AtomicU64,
    inferences: AtomicU64,
    model_errors: AtomicU64,
    observations: AtomicU64,
    dropped: AtomicU64,
    /// Cleared when the thread ends, however it ends (a panic too).
    running: AtomicBool,
}

/// A snapshot of [`DetectorCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DetectorStats {
    /// Frames analysed for motion.
    pub frames: u64,
    /// Analysed frames that changed enough to count as motion (before the cooldown):
    /// the frames on which the model may run.
    pub motion_frames: u64,
    /// Times the person model ran (failed runs included).
    pub inferences: u64,
    /// Times it failed.
    pub model_errors: u64,
    /// Observations handed to the events stage.
    pub observations: u64,
    /// Observations replaced by a newer one while the events stage was behind.
    pub dropped: u64,
}

impl DetectorCounters {
    pub fn snapshot(&self) -> DetectorStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DetectorStats {
            frames: get(&self.frames),
            motion_frames: get(&self.motion_frames),
            inferences: get(&self.inferences),
            model_errors: get(&self.model_errors),
            observations: get(&self.observations),
            dropped: get(&self.dropped),
        }
    }

    /// Whether the detector thread is still analysing frames.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    fn add(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The running detector thread.
pub struct DetectorHandle {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    counters: Arc<DetectorCounters>,
}

impl DetectorHandle {
    pub fn counters(&self) -> Arc<DetectorCounters> {
        Arc::clone(&self.counters)
    }

    pub fn stats(&self) -> DetectorStats {
        self.counters.snapshot()
    }

    /// Whether the thread has ended on its own (tap or receiver gone).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stops the thread and waits for it: at most one frame's analysis (one
    /// inference) plus 100 ms.
    pub fn stop(self) -> DetectorStats {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            tracing::error!("the detector thread panicked");
        }
        self.counters.snapshot()
    }
}

/// Clears [`DetectorCounters::running`] when the thread ends, by return or by panic.
struct ClearOnDrop(Arc<DetectorCounters>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Relaxed);
    }
}

/// The state of the detector thread.
pub struct Detector {
    config: DetectorConfig,
    model: Option<Box<dyn PersonModel>>,
    /// Built at the first frame (and again if the frame size changes).
    motion: Option<MotionDetector>,
    /// A size the motion detector could not be built for, already logged.
    refused_size: Option<(u32, u32)>,
    budget: InferenceBudget,
    out: Sender<Observation>,
    mailbox: Option<Observation>,
    receiver_gone: bool,
    /// The last analysed frame had activity (so the next quiet one sends the end).
    active: bool,
    counters: Arc<DetectorCounters>,
}

impl Detector {
    /// Starts the `detect` thread on frames from `frames` (a [`FrameTap`] receiver),
    /// with `model` for persons (`None`: motion only), sending to `out`. Fails with
    /// `InvalidInput` on a configuration [`DetectorConfig::validate`] refuses (the
    /// message names the zone or value), or if the thread cannot be spawned.
    ///
    /// [`FrameTap`]: crate::pipeline::FrameTap
    pub fn start(
        config: DetectorConfig,
        frames: Receiver<Arc<Frame>>,
        model: Option<Box<dyn PersonModel>>,
        out: Sender<Observation>,
    ) -> io::Result<DetectorHandle> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(DetectorCounters::default());
        let detector = Self {
            budget: InferenceBudget::new(config.max_inferences_per_sec),
            config,
            model,
            motion: None,
            refused_size: None,
            out,
            mailbox: None,
            receiver_gone: false,
            active: false,
            counters: Arc::clone(&counters),
        };
        counters.running.store(true, Ordering::Relaxed);
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("detect".into())
                .spawn(move || {
                    let _running = ClearOnDrop(Arc::clone(&detector.counters));
                    detector.run(&frames, &stop);
                })
                .inspect_err(|_| counters.running.store(false, Ordering::Relaxed))?
        };
        Ok(DetectorHandle {
            stop,
            thread,
            counters,
        })
    }

    fn run(mut self, frames: &Receiver<Arc<Frame>>, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) && !self.receiver_gone {
            self.flush();
            match frames.recv_timeout(POLL) {
                Ok(frame) => self.analyse(frame),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if self.active && !self.receiver_gone {
            self.send(Observation {
                captured: Instant::now(),
                wall: SystemTime::now(),
                motion: None,
                persons: None,
            });
        }
        tracing::debug!(stats = ?self.counters.snapshot(), "detector stopped");
    }

    fn analyse(&mut self, frame: Arc<Frame>) {
        let counters = Arc::clone(&self.counters);
        let Some(motion) = self.motion_for(&frame) else {
            return;
        };
        DetectorCounters::add(&counters.frames);
        let seen = motion.process(&frame);
        let changed = motion.changed_region();
        if changed.is_some() {
            DetectorCounters::add(&counters.motion_frames);
        }
        let persons = match (changed, self.model.as_mut()) {
            (Some(region), Some(model)) if self.budget.take(frame.captured) => {
                DetectorCounters::add(&self.counters.inferences);
                let region = widen(region, self.config.region_margin);
                let result = model.detect(&frame, Some(region));
                // Hand the activations back (about 20 MB): kept, they and the heap's
                // fragments double the service's memory during motion; the next run
                // faulting them in again costs about 4 % (docs/performance.md).
                crate::memory::release_free();
                match result {
                    Ok(mut found) => {
                        found.retain(|d| d.score >= self.config.person_threshold);
                        Some(found)
                    }
                    Err(e) => {
                        let n = DetectorCounters::add(&self.counters.model_errors);
                        if n <= 3 || n.is_power_of_two() {
                            tracing::warn!(errors = n, "person model failed on a frame: {e}");
                        }
                        None
                    }
                }
            }
            _ => None,
        };
        let (captured, wall) = (frame.captured, frame.wall);
        drop(frame); // give the buffer back before waiting on anything

        let active = seen.is_some() || persons.as_ref().is_some_and(|p| !p.is_empty());
        if active || self.active {
            self.send(Observation {
                captured,
                wall,
                motion: seen,
                persons,
            });
        }
        self.active = active;
    }

    /// The motion detector for this frame's size, built (or rebuilt) as needed.
    fn motion_for(&mut self, frame: &Frame) -> Option<&mut MotionDetector> {
        let size = (frame.image.width(), frame.image.height());
        if self.motion.as_ref().map(MotionDetector::frame_size) != Some(size) {
            if self.refused_size == Some(size) {
                return None;
            }
            match MotionDetector::new(&self.config.motion, size.0, size.1) {
                Ok(motion) => {
                    tracing::info!(
                        frame = ?size,
                        analysis = ?motion.analysis_size(),
                        model = self.model.is_some(),
                        "detector started"
                    );
                    self.motion = Some(motion);
                }
                Err(e) => {
                    tracing::error!("motion detection is off for {size:?} frames: {e}");
                    self.refused_size = Some(size);
                    self.motion = None;
                    return None;
                }
            }
        }
        self.motion.as_mut()
    }

    /// Puts `observation` in the mailbox (replacing one still waiting) and tries to
    /// deliver it.
    fn send(&mut self, observation: Observation) {
        if self.mailbox.replace(observation).is_some() {
            let n = DetectorCounters::add(&self.counters.dropped);
            if n <= 3 || n.is_power_of_two() {
                tracing::warn!(dropped = n, "events stage is behind; observation replaced");
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        let Some(observation) = self.mailbox.take() else {
            return;
        };
        match self.out.try_send(observation) {
            Ok(()) => {
                DetectorCounters::add(&self.counters.observations);
            }
            Err(TrySendError::Full(observation)) => self.mailbox = Some(observation),
            Err(TrySendError::Closed(_)) => {
                tracing::debug!("the events stage is gone; detector ends");
                self.receiver_gone = true;
            }
        }
    }
}

/// At most `rate` inferences a second on average, without bursts: each one books the
/// next slot one interval later; a slot not used within an interval is lost.
#[derive(Debug)]
struct InferenceBudget {
    interval: Duration,
    next: Option<Instant>,
}

impl InferenceBudget {
    fn new(rate: f32) -> Self {
        Self {
            interval: Duration::from_secs_f32(1.0 / rate),
            next: None,
        }
    }

    /// Whether an inference may run at `now` (a frame's capture time); if so, books it.
    fn take(&mut self, now: Instant) -> bool {
        let next = match self.next {
            Some(next) if now < next => return false,
            // On schedule: keep the cadence, so frame jitter does not lower the rate.
            Some(next) if now - next < self.interval => next + self.interval,
            _ => now + self.interval,
        };
        self.next = Some(next);
        true
    }
}

/// `region` widened by `margin` of its size on each side, clamped to the frame.
fn widen(region: BBox, margin: f32) -> BBox {
    let (dx, dy) = (region.w * margin, region.h * margin);
    let (x0, y0) = ((region.x - dx).max(0.0), (region.y - dy).max(0.0));
    let (x1, y1) = (
        (region.x + region.w + dx).min(1.0),
        (region.y + region.h + dy).min(1.0),
    );
    BBox {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc::{SyncSender, sync_channel};

    use super::super::motion::scene::{Block, FRAME_INTERVAL, Scene};
    use super::super::motion::{Polygon, Zone};
    use super::*;

    const W: u32 = 320;
    const H: u32 = 240;

    /// Capture time and region of every call.
    type Calls = Arc<Mutex<Vec<(Instant, Option<BBox>)>>>;

    /// Remembers every call and answers with `reply`.
    struct FakeModel {
        calls: Calls,
        reply: Result<Vec<Detection>, String>,
    }

    impl PersonModel for FakeModel {
        fn detect(
            &mut self,
            frame: &Frame,
            region: Option<BBox>,
        ) -> Result<Vec<Detection>, String> {
            self.calls.lock().unwrap().push((frame.captured, region));
            self.reply.clone()
        }
    }

    fn fake(reply: Result<Vec<Detection>, String>) -> (Box<dyn PersonModel>, Calls) {
        let calls = Calls::default();
        let model = FakeModel {
            calls: Arc::clone(&calls),
            reply,
        };
        (Box::new(model), calls)
    }

    fn person(score: f32) -> Detection {
        Detection {
            score,
            bbox: BBox {
                x: 0.2,
                y: 0.3,
                w: 0.1,
                h: 0.3,
            },
        }
    }

    fn config() -> DetectorConfig {
        DetectorConfig {
            motion: MotionConfig {
                cooldown: Duration::ZERO,
                ..MotionConfig::default()
            },
            ..DetectorConfig::default()
        }
    }

    struct Rig {
        scene: Scene,
        frames: SyncSender<Arc<Frame>>,
        observations: tokio::sync::mpsc::Receiver<Observation>,
        handle: Option<DetectorHandle>,
        sent: u64,
    }

    impl Rig {
        fn start(
            config: DetectorConfig,
            model: Option<Box<dyn PersonModel>>,
            capacity: usize,
        ) -> Self {
            let (frames, rx) = sync_channel(1);
            let (out, observations) = tokio::sync::mpsc::channel(capacity);
            let handle = Detector::start(config, rx, model, out).unwrap();
            Self {
                scene: Scene::new(W, H, 21),
                frames,
                observations,
                handle: Some(handle),
                sent: 0,
            }
        }

        /// Feeds frames `range` with `blocks(i)` in frame `i`, and waits until the
        /// detector has analysed them all.
        fn feed(&mut self, range: std::ops::Range<u64>, blocks: impl Fn(u64) -> Vec<Block>) {
            for i in range {
                let frame = self.scene.frame(i, &blocks(i), 1.0);
                self.frames.send(Arc::new(frame)).unwrap();
                self.sent += 1;
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while self.handle.as_ref().map_or(0, |h| h.stats().frames) < self.sent {
                assert!(Instant::now() < deadline, "the detector stalled");
                std::thread::sleep(Duration::from_millis(5));
            }
        }

        fn stop(&mut self) -> DetectorStats {
            self.handle.take().expect("stopped once").stop()
        }

        fn received(&mut self) -> Vec<Observation> {
            std::iter::from_fn(|| self.observations.try_recv().ok()).collect()
        }

        /// Frame index of a capture time.
        fn index(&self, t: Instant) -> u64 {
            ((t - self.scene.start).as_millis() / FRAME_INTERVAL.as_millis()) as u64
        }
    }

    /// A person in dark clothes walking right, 3 pixels a frame, from frame `from` to
    /// frame `to` (exclusive).
    fn walk(from: u64, to: u64) -> impl Fn(u64) -> Vec<Block> {
        move |i| {
            (from..to)
                .contains(&i)
                .then(|| Block {
                    x: 20 + 3 * (i - from) as u32,
                    y: 100,
                    w: 24,
                    h: 60,
                    luma: 20,
                    texture: 10,
                })
                .into_iter()
                .collect()
        }
    }

    fn quiet(_: u64) -> Vec<Block> {
        Vec::new()
    }

    #[test]
    fn the_model_runs_only_on_motion_within_its_budget_and_on_the_moving_region() {
        let (model, calls) = fake(Ok(Vec::new()));
        let mut rig = Rig::start(config(), Some(model), 1024);
        // 1.2 s quiet, 4 s walking, 2 s quiet; the model may run twice a second.
        let script = walk(30, 130);
        rig.feed(0..30, quiet);
        assert!(calls.lock().unwrap().is_empty(), "no motion, no inference");
        rig.feed(30..180, &script);
        let stats = rig.stop();

        let calls = calls.lock().unwrap().clone();
        let frames: Vec<u64> = calls.iter().map(|(t, _)| rig.index(*t)).collect();
        assert!(
            frames.iter().all(|i| (30..130).contains(i)),
            "only while the person moves: {frames:?}"
        );
        // 4 s at 2 a second: 8 (one more if the first lands at the very start).
        assert!((8..=9).contains(&calls.len()), "{frames:?}");
        let last_in_any_second = frames
            .windows(3)
            .map(|w| (w[2] - w[0]) as f32 * FRAME_INTERVAL.as_secs_f32())
            .fold(f32::MAX, f32::min);
        assert!(
            last_in_any_second >= 0.9,
            "never three inferences within a second: {frames:?}"
        );
        assert_eq!(stats.inferences, calls.len() as u64);
        assert!(stats.motion_frames >= 95, "{stats:?}");

        for (t, region) in &calls {
            let i = rig.index(*t);
            let block = script(i)[0];
            let region = region.expect("the model gets the moving region");
            let (bx, by) = (block.x as f32 / W as f32, block.y as f32 / H as f32);
            let (bw, bh) = (block.w as f32 / W as f32, block.h as f32 / H as f32);
            // Widened by a quarter of the block's size on each side.
            assert!(
                (region.x - (bx - bw / 4.0)).abs() < 0.02
                    && (region.y - (by - bh / 4.0)).abs() < 0.02
                    && (region.w - 1.5 * bw).abs() < 0.03
                    && (region.h - 1.5 * bh).abs() < 0.03,
                "frame {i}: {region:?} for the block at {block:?}"
            );
        }
    }

    #[test]
    fn observations_carry_activity_then_one_end() {
        let (model, calls) = fake(Ok(vec![person(0.9), person(0.3)]));
        let mut rig = Rig::start(config(), Some(model), 1024);
        let script = walk(20, 60);
        rig.feed(0..100, &script);
        let observations = rig.received();
        let calls: Vec<Instant> = calls.lock().unwrap().iter().map(|c| c.0).collect();

        let frames: Vec<u64> = observations.iter().map(|o| rig.index(o.captured)).collect();
        assert_eq!(
            frames,
            (20..61).collect::<Vec<_>>(),
            "each active frame, then the end"
        );
        for o in &observations[..40] {
            assert!(o.motion.is_some());
            match &o.persons {
                Some(found) => {
                    assert!(calls.contains(&o.captured));
                    assert_eq!(found, &[person(0.9)], "below the threshold is left out");
                }
                None => assert!(!calls.contains(&o.captured)),
            }
        }
        assert!(observations.iter().any(|o| o.persons.is_some()));
        let end = &observations[40];
        assert_eq!((&end.motion, &end.persons), (&None, &None));

        // Still quiet: nothing more, and stopping sends no second end.
        rig.feed(100..120, quiet);
        rig.stop();
        assert!(rig.received().is_empty());
    }

    #[test]
    fn without_a_model_motion_alone_is_reported() {
        let mut rig = Rig::start(config(), None, 1024);
        rig.feed(0..40, walk(10, 30));
        let stats = rig.stop();
        let observations = rig.received();
        assert_eq!(observations.len(), 21);
        assert!(observations.iter().all(|o| o.persons.is_none()));
        assert_eq!(stats.inferences, 0);
    }

    #[test]
    fn the_cooldown_does_not_hide_a_person() {
        let (model, calls) = fake(Ok(vec![person(0.8)]));
        let mut config = config();
        config.motion.cooldown = Duration::from_secs(60);
        let mut rig = Rig::start(config, Some(model), 1024);
        // A first walk ends; a second one comes well within the minute of cooldown.
        rig.feed(0..100, walk(10, 30));
        rig.received();
        rig.feed(100..130, walk(100, 130));
        let observations = rig.received();
        rig.stop();

        let calls = calls.lock().unwrap().len();
        assert!(calls > 0);
        // Motion itself is cooling down; each inference reports the person, and the
        // quiet frame after it ends that activity.
        assert!(
            observations.iter().all(|o| o.motion.is_none()),
            "{observations:?}"
        );
        let with_person = observations
            .iter()
            .filter(|o| o.persons.as_deref() == Some(&[person(0.8)][..]))
            .count();
        assert!(with_person > 0 && with_person <= calls);
        assert_eq!(observations.len(), 2 * with_person, "{observations:?}");
        for pair in observations.chunks(2) {
            assert!(pair[0].persons.is_some() && pair[1].persons.is_none());
        }
    }

    #[test]
    fn stopping_while_active_sends_the_end() {
        let mut rig = Rig::start(config(), None, 1024);
        rig.feed(0..20, walk(10, 100));
        let stats = rig.stop();
        let observations = rig.received();
        assert_eq!(observations.len() as u64, stats.observations);
        let last = observations.last().unwrap();
        assert_eq!((&last.motion, &last.persons), (&None, &None));
        assert!(
            observations[..observations.len() - 1]
                .iter()
                .all(|o| o.motion.is_some())
        );
    }

    #[test]
    fn a_slow_receiver_still_gets_the_newest_state() {
        let (model, _) = fake(Ok(Vec::new()));
        let mut rig = Rig::start(config(), Some(model), 1);
        rig.feed(0..50, walk(10, 30));
        // The channel held the first observation; the end waited in the mailbox and
        // replaced every one in between.
        let first = rig.observations.try_recv().unwrap();
        assert_eq!(rig.index(first.captured), 10);
        assert!(first.motion.is_some());
        let end = rig
            .observations
            .blocking_recv()
            .expect("delivered at the next retry");
        assert_eq!(rig.index(end.captured), 30);
        assert_eq!(end.motion, None);
        let stats = rig.stop();
        assert_eq!(stats.observations, 2);
        assert_eq!(stats.dropped, 19);
    }

    #[test]
    fn model_errors_are_counted_and_do_not_stop_detection() {
        let (model, _) = fake(Err("tensor shape mismatch".into()));
        let mut rig = Rig::start(config(), Some(model), 1024);
        rig.feed(0..40, walk(10, 30));
        let stats = rig.stop();
        assert!(stats.model_errors > 0);
        assert_eq!(stats.model_errors, stats.inferences);
        let observations = rig.received();
        assert_eq!(observations.len(), 21);
        assert!(observations.iter().all(|o| o.persons.is_none()));
    }

    /// Panics on the first inference.
    struct BrokenModel;

    impl PersonModel for BrokenModel {
        fn detect(&mut self, _: &Frame, _: Option<BBox>) -> Result<Vec<Detection>, String> {
            panic!("a bug in the model runtime");
        }
    }

    #[test]
    fn a_detector_thread_that_dies_says_so() {
        let mut rig = Rig::start(config(), Some(Box::new(BrokenModel)), 1024);
        let counters = rig.handle.as_ref().unwrap().counters();
        assert!(counters.running(), "running after start");
        for i in 0..60 {
            let frame = rig.scene.frame(i, &walk(10, 60)(i), 1.0);
            if rig.frames.send(Arc::new(frame)).is_err() {
                break; // the thread is gone
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while counters.running() {
            assert!(Instant::now() < deadline, "the panic went unnoticed");
            std::thread::sleep(Duration::from_millis(5));
        }
        // The flag is cleared while the thread unwinds, a moment before it ends.
        while !rig.handle.as_ref().unwrap().is_finished() {
            assert!(Instant::now() < deadline, "the thread did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_broken_zone_refuses_to_start_and_says_which() {
        let mut config = config();
        config.motion.zones.push(Zone {
            name: "driveway".into(),
            polygon: Polygon(vec![(0.1, 0.1), (0.9, 0.1)]),
        });
        let (_tx, rx) = sync_channel(1);
        let (out, _observations) = tokio::sync::mpsc::channel(1);
        let err = Detector::start(config, rx, None, out).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("`driveway`"), "{err}");
    }

    #[test]
    fn the_budget_keeps_its_cadence_and_allows_no_bursts() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut budget = InferenceBudget::new(2.0);
        let taken: Vec<u64> = (0..100)
            .map(|i| i * 40)
            .filter(|&t| budget.take(ms(t)))
            .collect();
        // Frames every 40 ms: slots at 0, 500, 1000, … each taken by the first frame
        // at or after it.
        assert_eq!(taken, [0, 520, 1000, 1520, 2000, 2520, 3000, 3520]);
        // After a long pause, one inference, not a burst of the missed ones.
        assert!(budget.take(ms(10_000)));
        assert!(!budget.take(ms(10_040)));
        assert!(budget.take(ms(10_500)));
    }

    #[test]
    fn the_region_is_widened_and_clamped() {
        let r = widen(
            BBox {
                x: 0.1,
                y: 0.6,
                w: 0.2,
                h: 0.4,
            },
            0.25,
        );
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(close(r.x, 0.05) && close(r.w, 0.3), "{r:?}");
        assert!(
            close(r.y, 0.5) && close(r.h, 0.5),
            "clamped at the bottom: {r:?}"
        );
    }
}
