//! End-to-end tests of the recorder: real H.264 (OpenH264), real io_uring files, a real
//! LMDB index, judged by decrypting with the recovery key and asking `ffprobe`.
//!
//! Video runs on synthetic capture times (frame `n` is captured `n / fps` after the
//! start), fed as fast as the recorder takes it, so seconds of video take a fraction
//! of a second. Tests that need io_uring skip (saying why) where it is missing:
//! qemu-user, old kernels.

mod chromium;
mod continuous;
mod disk_full;
mod event;
mod power_cut;
mod retention;
mod stage;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::fmp4::testing::{ffmpeg_decodes, ffprobe};
use super::layout;
use super::recorder::{Recorder, RecorderConfig};
use super::{RecorderControl, RecorderStatus};
use crate::camera::synthetic::SyntheticScene;
use crate::camera::{BufferPool, Frame, I420};
use crate::encode::h264::{H264Config, OpenH264};
use crate::encode::{Encoder, Packet};
use crate::runtime;
use crate::store::{Segment, Store};
use crate::vault::{
    Argon2Params, FileDecryptor, FileReader, RecoveryKey, SealingKey, UnlockedVault, VaultError,
    VaultRecord,
};

pub(super) const WIDTH: u32 = 320;
pub(super) const HEIGHT: u32 = 240;
pub(super) const FPS: u32 = 30;

/// Whether io_uring is missing; then the test returns early after saying why.
pub(super) fn no_io_uring(test: &str) -> bool {
    if runtime::io_uring_available() {
        return false;
    }
    eprintln!(
        "skipped {test}: io_uring is not available here (qemu-user or an old kernel), \
         and the recorder writes through it"
    );
    true
}

/// A vault as setup makes it.
pub(super) struct Keys {
    pub recovery: RecoveryKey,
    pub vault: UnlockedVault,
    pub sealing: SealingKey,
}

pub(super) fn keys() -> Keys {
    let (record, recovery, vault) = VaultRecord::create(
        "owner",
        "a long enough passphrase",
        Argon2Params::INSECURE_FAST,
    )
    .unwrap();
    let sealing = record.sealing_key().unwrap();
    Keys {
        recovery,
        vault,
        sealing,
    }
}

/// The synthetic scene encoded at synthetic capture times.
pub(super) struct Video {
    scene: SyntheticScene,
    pool: BufferPool,
    encoder: OpenH264,
    t0: Instant,
    wall0: SystemTime,
}

impl Video {
    /// `gop` frames from one keyframe to the next.
    pub fn new(gop: u32, bitrate: u32) -> Self {
        Self {
            scene: SyntheticScene::new(WIDTH, HEIGHT, 7),
            pool: BufferPool::new(I420::len_for(WIDTH, HEIGHT), 8),
            encoder: OpenH264::new(H264Config {
                width: WIDTH,
                height: HEIGHT,
                fps: FPS,
                bitrate,
                keyframe_interval: gop,
            })
            .unwrap(),
            t0: Instant::now(),
            wall0: SystemTime::now(),
        }
    }

    /// Capture time of frame `seq`.
    pub fn at(&self, seq: u64) -> Instant {
        self.t0 + frame_time(seq)
    }

    /// Wall-clock time of frame `seq`.
    pub fn wall(&self, seq: u64) -> SystemTime {
        self.wall0 + frame_time(seq)
    }

    /// Wall-clock time of frame `seq`, µs since the epoch, as the index stores it.
    pub fn wall_us(&self, seq: u64) -> u64 {
        layout::unix_us(self.wall0 + frame_time(seq))
    }

    pub fn frame(&self, seq: u64) -> Frame {
        let buf = self.pool.take().expect("a free frame buffer");
        let mut image = I420::new(WIDTH, HEIGHT, buf);
        self.scene.render(seq, &format!("#{seq}"), &mut image);
        Frame {
            seq,
            captured: self.at(seq),
            wall: self.wall0 + frame_time(seq),
            image,
        }
    }

    /// Frames `range` encoded, in order.
    pub fn packets(&mut self, range: std::ops::Range<u64>) -> Vec<Packet> {
        range
            .map(|seq| {
                let frame = self.frame(seq);
                self.encoder.encode(&frame).unwrap()
            })
            .collect()
    }
}

pub(super) fn frame_time(seq: u64) -> Duration {
    Duration::from_secs(seq) / FPS
}

/// A data directory with an index.
pub(super) struct Data {
    _dir: Option<tempfile::TempDir>,
    pub path: PathBuf,
    pub store: Arc<Store>,
}

impl Data {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let store = Arc::new(Store::open(&path).unwrap());
        Self {
            _dir: Some(dir),
            path,
            store,
        }
    }

    /// A data directory at `path` (a mount point the test manages).
    pub fn at(path: &Path) -> Self {
        Self {
            _dir: None,
            path: path.to_path_buf(),
            store: Arc::new(Store::open(path).unwrap()),
        }
    }

    /// Test settings: small reserve, nothing kept free (the host's disk is not ours).
    pub fn config(&self) -> RecorderConfig {
        let mut config = RecorderConfig::new(&self.path, WIDTH, HEIGHT, FPS);
        config.min_free_bytes = 0;
        config.reserve_bytes = 64 << 10;
        config
    }

    /// All segment rows, oldest first.
    pub fn segments(&self) -> Vec<Segment> {
        self.store
            .segments_overlapping(0, u64::MAX, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|s| self.store.segment(s.id).unwrap().unwrap())
            .collect()
    }

    pub fn file(&self, segment: &Segment) -> PathBuf {
        layout::absolute(&self.path, &segment.path)
    }
}

/// Runs a recorder over `packets`, then shuts it down (which closes the open segment).
/// `control` is called before any packet is sent. Returns the final status; panics if
/// the recorder task panicked.
pub(super) fn record(
    data: &Data,
    config: RecorderConfig,
    keys: &Keys,
    packets: Vec<Packet>,
    control: impl FnOnce(&RecorderControl),
) -> RecorderStatus {
    let store = Arc::clone(&data.store);
    let key = keys.sealing.clone();
    runtime::start(async move {
        let (recorder, handle) = Recorder::new(config, store, key, None);
        control(&handle);
        let (tx, rx) = mpsc::channel(16);
        let task = runtime::spawn(recorder.run(rx));
        let count = packets.len() as u64;
        for packet in packets {
            tx.send(packet).await.expect("the recorder is running");
        }
        processed(&handle, count).await;
        handle.shutdown();
        task.await.expect("the recorder task must not panic");
        drop(tx);
        handle.status()
    })
    .unwrap()
}

/// Waits (yielding to the recorder task) until it has taken `count` packets.
pub(super) async fn processed(control: &RecorderControl, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while control.status().packets < count {
        assert!(
            Instant::now() < deadline,
            "the recorder stalled: {:?}",
            control.status()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A segment file decrypted with the recovery key: its chunks, and how it ended.
pub(super) struct Opened {
    pub chunks: Vec<Vec<u8>>,
    pub end: Result<(), VaultError>,
}

impl Opened {
    pub fn mp4(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

pub(super) fn open_with_recovery(path: &Path, recovery: &RecoveryKey) -> Opened {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = FileReader::open_with_recovery_key(std::io::BufReader::new(file), recovery)
        .expect("the header opens with the recovery key");
    let mut chunks = Vec::new();
    let end = loop {
        match reader.next_chunk() {
            Ok(Some(chunk)) => chunks.push(chunk),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    Opened { chunks, end }
}

/// Checks that every fragment of `segment` sits where its row says: chunk `i + 1`
/// decrypts alone at the row's offset, to the same bytes as a sequential read.
pub(super) fn check_random_access(path: &Path, segment: &Segment, opened: &Opened, keys: &Keys) {
    let mut file = std::fs::File::open(path).unwrap();
    let mut header = vec![0u8; crate::vault::HEADER_LEN];
    std::io::Read::read_exact(&mut file, &mut header).unwrap();
    let decryptor = FileDecryptor::open(&header, &keys.vault).unwrap();
    for (i, fragment) in segment.fragments.iter().enumerate() {
        let chunk = decryptor
            .read_chunk_at(&mut file, i as u32 + 1, fragment.offset)
            .unwrap_or_else(|e| panic!("fragment {i} of segment {}: {e}", segment.id));
        assert_eq!(
            fragment.len,
            (chunk.len() + crate::vault::CHUNK_PREFIX_LEN + 16) as u64,
            "fragment {i}: stored length"
        );
        assert_eq!(chunk, opened.chunks[i + 1], "fragment {i}: content");
    }
}

/// Writes `mp4` to a file next to nothing else and checks it with ffprobe and ffmpeg;
/// returns the number of frames.
pub(super) fn probe_frames(mp4: &[u8]) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.mp4");
    std::fs::write(&path, mp4).unwrap();
    let probe = ffprobe(&path);
    assert_eq!(probe.codec, "h264");
    assert_eq!(
        (probe.width, probe.height),
        (u64::from(WIDTH), u64::from(HEIGHT))
    );
    ffmpeg_decodes(&path);
    probe.frames.len()
}

/// Frames in `duration_us` of video at [`FPS`].
pub(super) fn frames_in(duration_us: u64) -> usize {
    (duration_us as f64 * f64::from(FPS) / 1e6).round() as usize
}

/// Every regular file under `dir`.
pub(super) fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}
