//! The recording stage as the service runs it: the H.264 encoder thread fed from the
//! pipeline's frame tap, and the recorder task, started once the vault exists.
//!
//! ```text
//! capture ──FrameTap::attach──► [h264-encode thread] ──Packet──► recorder task (I/O thread)
//! ```
//!
//! Nothing runs until [`Recording::enable`]: recording needs the vault's public key,
//! which first-run setup makes. The service calls `enable` at start when the vault
//! exists, the setup endpoint right after making it; both on the I/O thread, where the
//! recorder task must live (it writes with io_uring).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{
    H264Stage, RecordError, Recorder, RecorderConfig, RecorderControl, RecorderStatus,
    RecoveryReport,
};
use crate::camera::SourceInfo;
use crate::config::{Config, RecordingConfig};
use crate::encode::h264::{H264Config, OpenH264};
use crate::pipeline::FrameTap;
use crate::runtime;
use crate::store::{RetentionPolicy, Store};
use crate::vault::SealingKey;

/// Packets waiting for the recorder, in seconds of video. The recorder waits on index
/// commits (an `fsync` each) while packets queue; beyond this the encoder stage drops
/// up to the next keyframe (see `h264_stage`).
const QUEUE_SECS: u32 = 2;

/// How long [`Recording::stop`] waits for the recorder to close its segment. An SD
/// card can take seconds to `fsync`; a hung one must not hang the shutdown, and a
/// segment left `writing` is repaired at the next start anyway.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Owns the recording stage on the I/O thread.
pub struct Recording {
    data_dir: PathBuf,
    settings: RecordingConfig,
    store: Arc<Store>,
    tap: FrameTap,
    /// Set by the first successful `enable`, taken by `stop`.
    running: RefCell<Option<Running>>,
    /// `stop` has run: a late `enable` (setup racing the shutdown) starts nothing.
    stopped: std::cell::Cell<bool>,
}

struct Running {
    control: RecorderControl,
    task: JoinHandle<()>,
    stage: H264Stage,
}

impl Recording {
    /// Prepares the stage; nothing runs until [`Recording::enable`].
    pub fn new(config: &Config, store: Arc<Store>, tap: FrameTap) -> Self {
        Self {
            data_dir: config.data_dir.clone(),
            settings: config.recording.clone(),
            store,
            tap,
            running: RefCell::new(None),
            stopped: std::cell::Cell::new(false),
        }
    }

    /// Start-up reconciliation of the index with the disk (before `enable`). Runs on a
    /// blocking thread: it lists directories and commits to the index.
    pub async fn recover(&self) -> Result<RecoveryReport, RecordError> {
        let (data_dir, store) = (self.data_dir.clone(), Arc::clone(&self.store));
        tokio::task::spawn_blocking(move || super::recover(&data_dir, &store))
            .await
            .map_err(|e| RecordError::Task(format!("start-up recovery: {e}")))?
    }

    /// Starts encoding and recording, sealing to `key`. Called at start when the vault
    /// exists, or right after first-run setup, on the I/O thread. A second call does
    /// nothing; after a failed call the next one tries again.
    pub fn enable(&self, key: SealingKey) -> Result<(), RecordError> {
        if self.running.borrow().is_some() || self.stopped.get() {
            return Ok(());
        }
        let info = self
            .tap
            .info()
            .ok_or_else(|| RecordError::Start("the camera pipeline is not running".into()))?;
        let h264 = h264_config(&self.settings, info);
        let encoder = OpenH264::new(h264).map_err(|e| RecordError::Start(e.to_string()))?;
        let keyframes = encoder.keyframe_request();
        let recorder_config = recorder_config(&self.data_dir, &self.settings, info);
        let (recorder, control) = Recorder::new(
            recorder_config,
            Arc::clone(&self.store),
            key,
            Some(keyframes.clone()),
        );
        let queue = (h264.fps * QUEUE_SECS).max(16) as usize;
        let (packets_tx, packets_rx) = mpsc::channel(queue);
        let stage = H264Stage::start(Box::new(encoder), keyframes, self.tap.attach(), packets_tx)
            .map_err(|e| RecordError::Start(e.to_string()))?;
        let task = runtime::spawn(recorder.run(packets_rx));
        tracing::info!(
            width = h264.width,
            height = h264.height,
            fps = h264.fps,
            bitrate = h264.bitrate,
            gop_frames = h264.keyframe_interval,
            mode = ?control.mode(),
            "recording enabled"
        );
        *self.running.borrow_mut() = Some(Running {
            control,
            task,
            stage,
        });
        Ok(())
    }

    /// The data directory the segments are under (the index stores paths relative to
    /// it).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Pre-roll and post-roll: how much a recording of an event holds before its start
    /// and after its end.
    pub fn rolls(&self) -> (Duration, Duration) {
        (self.settings.pre_roll, self.settings.post_roll)
    }

    /// The recorder's handle, once enabled.
    pub fn control(&self) -> Option<RecorderControl> {
        self.running.borrow().as_ref().map(|r| r.control.clone())
    }

    /// What the recorder is doing, once enabled.
    pub fn status(&self) -> Option<RecorderStatus> {
        self.running.borrow().as_ref().map(|r| r.control.status())
    }

    /// Closes the open segment and stops the encoder (at shutdown).
    pub async fn stop(&self) {
        self.stopped.set(true);
        // Taken out before awaiting: no borrow is held across the await.
        let Some(Running {
            control,
            task,
            stage,
        }) = self.running.borrow_mut().take()
        else {
            return;
        };
        control.shutdown();
        match tokio::time::timeout(STOP_WAIT, task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("the recorder task failed: {e}"),
            Err(_) => tracing::warn!(
                "the recorder did not close its segment within {STOP_WAIT:?}; \
                 the next start repairs it"
            ),
        }
        // Joining the encoder thread waits up to one frame's encoding: not on the loop.
        match tokio::task::spawn_blocking(move || stage.stop()).await {
            Ok(stats) => tracing::info!(?stats, "H.264 encoder stopped"),
            Err(e) => tracing::error!("stopping the H.264 encoder failed: {e}"),
        }
    }
}

/// The encoder for the frames the source really produces.
fn h264_config(settings: &RecordingConfig, info: SourceInfo) -> H264Config {
    let fps = info.fps.max(1);
    let gop = (settings.keyframe_interval.as_secs_f64() * f64::from(fps)).round();
    H264Config {
        width: info.width,
        height: info.height,
        fps,
        bitrate: settings.bitrate,
        keyframe_interval: (gop as u32).max(1),
    }
}

fn recorder_config(data_dir: &Path, s: &RecordingConfig, info: SourceInfo) -> RecorderConfig {
    let mut c = RecorderConfig::new(data_dir, info.width, info.height, info.fps.max(1));
    c.initial_mode = s.mode.into();
    c.segment_duration = s.segment;
    // Never fewer checkpoints than segments: a short segment still gets its
    // fragments into the index before it closes.
    c.checkpoint_interval = c.checkpoint_interval.min(s.segment);
    c.pre_roll = s.pre_roll;
    c.post_roll = s.post_roll;
    c.retention = RetentionPolicy {
        max_age_us: s
            .max_age
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        max_bytes: s.max_bytes,
    };
    c.min_free_bytes = s.min_free_bytes;
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RecordMode;
    use crate::record::RecordingMode;

    fn info(width: u32, height: u32, fps: u32) -> SourceInfo {
        SourceInfo {
            kind: "test",
            width,
            height,
            fps,
        }
    }

    #[test]
    fn record_runner_configs_follow_the_source_and_the_settings() {
        let mut config = Config::default();
        config.recording.mode = RecordMode::Event;
        config.recording.keyframe_interval = Duration::from_secs(2);
        config.recording.segment = Duration::from_secs(5);
        config.recording.max_age = Some(Duration::from_secs(3600));
        config.recording.max_bytes = Some(1 << 30);
        // A replay of 640x480 frames at 10 fps, whatever `camera.size` says.
        let h264 = h264_config(&config.recording, info(640, 480, 10));
        assert_eq!(
            h264,
            H264Config {
                width: 640,
                height: 480,
                fps: 10,
                bitrate: config.recording.bitrate,
                keyframe_interval: 20,
            }
        );
        let r = recorder_config(&config.data_dir, &config.recording, info(640, 480, 10));
        assert_eq!((r.width, r.height, r.fps), (640, 480, 10));
        assert_eq!(r.initial_mode, RecordingMode::Event);
        assert_eq!(r.segment_duration, Duration::from_secs(5));
        assert_eq!(r.checkpoint_interval, Duration::from_secs(5));
        assert_eq!(r.retention.max_age_us, Some(3_600_000_000));
        assert_eq!(r.retention.max_bytes, Some(1 << 30));
        assert_eq!(h264_config(&config.recording, info(2, 2, 0)).fps, 1);
    }

    #[test]
    fn record_runner_without_a_camera_refuses_to_enable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let recording = Recording::new(&config, store, FrameTap::default());
        let keys = super::super::tests::keys();
        let e = recording.enable(keys.sealing).unwrap_err();
        assert!(e.to_string().contains("camera"), "{e}");
        assert!(recording.control().is_none() && recording.status().is_none());
    }

    /// The whole stage on a real pipeline: enabled on the I/O thread, it records the
    /// synthetic camera into complete segments and closes the last one on `stop`.
    #[test]
    fn record_runner_records_from_the_pipeline_and_stops_cleanly() {
        use crate::camera::synthetic::SyntheticSource;
        use crate::encode::jpeg::TurboJpeg;
        use crate::live::LiveBus;
        use crate::pipeline::Pipeline;
        use crate::status::CameraStatus;
        use crate::store::SegmentState;

        if super::super::tests::no_io_uring("record_runner_records_from_the_pipeline") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.recording.segment = Duration::from_secs(1);
        config.recording.keyframe_interval = Duration::from_millis(500);
        config.recording.min_free_bytes = 0;
        let pipeline = Pipeline::start(
            Box::new(SyntheticSource::new(160, 120, 20, 3)),
            Box::new(TurboJpeg::new(80).unwrap()),
            Arc::new(LiveBus::new()),
            Arc::new(CameraStatus::default()),
        )
        .unwrap();
        let recording = Recording::new(&config, Arc::clone(&store), pipeline.tap());
        let keys = super::super::tests::keys();
        let status = runtime::start(async {
            let report = recording.recover().await.unwrap();
            assert!(report.reconcile.is_clean(), "{report:?}");
            assert!(recording.control().is_none());
            recording.enable(keys.sealing.clone()).unwrap();
            recording.enable(keys.sealing.clone()).unwrap(); // idempotent
            let control = recording.control().expect("enabled");
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while control.status().segments_written < 2 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{:?}",
                    control.status()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            recording.stop().await;
            recording.enable(keys.sealing.clone()).unwrap(); // after stop: nothing
            assert!(recording.control().is_none());
            control.status()
        })
        .unwrap();
        pipeline.request_stop().join();
        assert_eq!(status.errors, 0, "{status:?}");
        assert!(!status.recording);
        let rows = store.segments_overlapping(0, u64::MAX, 100).unwrap();
        assert!(rows.len() >= 3, "{rows:?}");
        assert!(
            rows.iter()
                .all(|r| r.state == SegmentState::Complete && r.fragment_count >= 1),
            "every segment closed, the last one by stop: {rows:?}"
        );
    }
}
