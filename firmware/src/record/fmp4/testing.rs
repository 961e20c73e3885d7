//! Test helpers shared by the H.264 and MP4 tests: synthetic frames with chosen
//! capture times, and checks with Debian's `ffprobe` and `ffmpeg`.
//!
//! A missing `ffprobe` fails the test with a message: a test that silently passes
//! without its checker would hide a broken muxer.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use crate::camera::synthetic::SyntheticScene;
use crate::camera::{BufferPool, Frame, I420};

/// The synthetic scene, rendered at capture times the test picks.
pub(crate) struct TestScene {
    scene: SyntheticScene,
    pool: BufferPool,
    width: u32,
    height: u32,
    t0: Instant,
    wall0: SystemTime,
}

impl TestScene {
    pub fn new(width: u32, height: u32, seed: u64) -> Self {
        Self {
            scene: SyntheticScene::new(width, height, seed),
            pool: BufferPool::new(I420::len_for(width, height), 2),
            width,
            height,
            t0: Instant::now(),
            wall0: SystemTime::now(),
        }
    }

    /// Frame `seq` of the scene, captured `at` after the scene's start.
    pub fn frame(&self, seq: u64, at: Duration) -> Frame {
        let buf = self
            .pool
            .take()
            .expect("tests hold at most one frame at a time");
        let mut image = I420::new(self.width, self.height, buf);
        self.scene.render(seq, &format!("#{seq}"), &mut image);
        Frame {
            seq,
            captured: self.t0 + at,
            wall: self.wall0 + at,
            image,
        }
    }
}

/// What ffprobe says about a file's video stream.
#[derive(Debug)]
pub(crate) struct Probe {
    pub codec: String,
    pub profile: String,
    pub width: u64,
    pub height: u64,
    pub frames: Vec<ProbeFrame>,
    /// The container's duration in seconds, if it states one.
    pub duration: Option<f64>,
}

#[derive(Debug)]
pub(crate) struct ProbeFrame {
    pub key: bool,
    /// Presentation time in seconds, if known (a raw H.264 stream has none).
    pub time: Option<f64>,
}

impl Probe {
    /// Indexes of the frames the decoder found to be keyframes. (ffmpeg's H.264
    /// parser decides this from the bitstream, whatever the container says; see
    /// [`seek_lands_at`] for a check of the container's sync-sample flags.)
    pub fn keyframes(&self) -> Vec<usize> {
        (0..self.frames.len())
            .filter(|&i| self.frames[i].key)
            .collect()
    }

    /// Presentation times of all frames; panics if one lacks it.
    pub fn times(&self) -> Vec<f64> {
        self.frames
            .iter()
            .enumerate()
            .map(|(i, f)| f.time.unwrap_or_else(|| panic!("frame {i} has no time")))
            .collect()
    }
}

/// Runs `tool` with `before`, the path, then `after` as arguments.
fn run(tool: &str, before: &[&str], path: &Path, after: &[&str]) -> std::process::Output {
    match Command::new(tool)
        .args(before)
        .arg(path)
        .args(after)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{tool}` is not installed: these tests check recordings with Debian's ffmpeg \
             package; install it (`apt-get install ffmpeg`, or run ./scripts/test)"
        ),
        Err(e) => panic!("cannot run {tool}: {e}"),
    }
}

/// Runs `ffprobe` on `path`; panics with its message if it reports any error.
pub(crate) fn ffprobe(path: &Path) -> Probe {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_streams",
            "-show_frames",
            "-show_format",
            "-of",
            "json",
        ],
        path,
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {} failed: {stderr}",
        path.display()
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe prints JSON");
    let streams = json["streams"].as_array().expect("ffprobe lists streams");
    assert_eq!(streams.len(), 1, "one video stream: {streams:?}");
    let stream = &streams[0];
    let seconds = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    let frames = json["frames"]
        .as_array()
        .expect("ffprobe lists frames")
        .iter()
        .map(|f| ProbeFrame {
            key: f["key_frame"].as_i64() == Some(1),
            time: seconds(&f["pts_time"]).or_else(|| seconds(&f["best_effort_timestamp_time"])),
        })
        .collect();
    Probe {
        codec: stream["codec_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        profile: stream["profile"].as_str().unwrap_or_default().to_string(),
        width: stream["width"].as_u64().unwrap_or_default(),
        height: stream["height"].as_u64().unwrap_or_default(),
        frames,
        duration: seconds(&json["format"]["duration"]),
    }
}

/// Decodes every frame of `path` with `ffmpeg`; panics if it reports any error.
pub(crate) fn ffmpeg_decodes(path: &Path) {
    // Frames keep their own times in the file's time base. Otherwise ffmpeg moves
    // variable frame rate input to a guessed coarser time base and then complains
    // about the collisions its own rounding made.
    let out = run(
        "ffmpeg",
        &["-v", "error", "-i"],
        path,
        &[
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "-1",
            "-f",
            "null",
            "-",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg could not decode {} cleanly: {stderr}",
        path.display()
    );
}

/// Seeks to `seconds` with `ffprobe` and returns the time of the first packet it
/// reads. A seek goes to the sync sample at or before the target according to the
/// container's index (the `trun` sample flags), so this checks those flags.
pub(crate) fn seek_lands_at(path: &Path, seconds: f64) -> f64 {
    let interval = format!("{seconds}%+#1");
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-read_intervals",
            &interval,
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ],
        path,
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ffprobe seek in {} failed",
        path.display()
    );
    stdout
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("ffprobe read no packet after seeking to {seconds} s: {stdout}"))
}
