//! The recorder task: H.264 packets in, encrypted segment files and index rows out.
//!
//! It runs on the I/O thread (`runtime::spawn`); file writes and `fdatasync` go
//! through io_uring, index commits (each an `fsync`) run on tokio's blocking pool, so
//! neither stalls the loop. Packets wait in a bounded channel meanwhile; if it fills,
//! the encoder stage drops frames up to a fresh keyframe (see `h264_stage`).
//!
//! # What it does with each packet
//!
//! - While a segment is open, the packet goes into it — unless recording is no longer
//!   wanted (the segment ends before this frame), or the packet is a keyframe and the
//!   segment is `segment_duration` old (it ends, and the keyframe starts the next one,
//!   so consecutive segments join without a gap).
//! - Otherwise the packet goes into the pre-roll ring, and if recording is wanted and
//!   the ring starts with a keyframe, a segment opens with the whole ring: up to
//!   `pre_roll` of whole GOPs before the frame that made recording wanted (an event,
//!   a manual start), or just the first GOP when continuous recording starts.
//!
//! # Durability (design decision 7)
//!
//! A segment's file is synced before any row pointing at it commits. The `writing` row
//! is committed when the segment opens (header and init segment on disk), then every
//! `checkpoint_interval` of video with the fragments appended since, and the
//! `complete` row after the end marker is synced. The closing row of one segment and
//! the opening row of the next share one commit. A power cut therefore loses from the
//! index at most the fragments after the last checkpoint; they stay in the file, where
//! `mecam decrypt` still finds them.
//!
//! # Errors and a full disk
//!
//! Nothing here panics or ends the task on a disk or index error. A failed write ends
//! the segment (`interrupted`, with the fragments known durable), the error goes into
//! the status, and a new segment is tried `retry_interval` of video later. When the
//! write failed for lack of space, the recorder also gives up its reserve file and
//! deletes the oldest recordings until two segments fit (see `space`); recording
//! resumes by itself once the space is there. From then on the same room is made
//! before every segment opens, so a card filled by its own recordings settles into
//! "the oldest make way" instead of failing a write every few segments.

mod housekeeping;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::control::{RecorderControl, RecordingMode, Shared, segment_status};
use super::error::RecordError;
use super::fmp4::TrackInfo;
use super::layout;
use super::preroll::{PreRoll, Pushed as RingPushed};
use super::segment_file::{Pushed, SegmentFile, SegmentSpec};
use crate::encode::Packet;
use crate::encode::h264::{KeyframeRequest, ParameterSets, parameter_sets};
use crate::store::{RetentionPolicy, Segment, Store, Trigger};
use crate::vault::SealingKey;

/// How the recorder records. [`RecorderConfig::new`] gives the device defaults.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// The data directory (`DATA`); segments go to `DATA/segments`.
    pub data_dir: PathBuf,
    /// Picture size of the packets (for the MP4 track).
    pub width: u32,
    pub height: u32,
    /// Nominal frame rate; real frame times come from the packets.
    pub fps: u32,
    pub initial_mode: RecordingMode,
    /// A segment ends at the first keyframe after this much video.
    pub segment_duration: Duration,
    /// The open segment's row is committed after this much new video.
    pub checkpoint_interval: Duration,
    /// Event mode: video kept from before a trigger (whole GOPs, so up to one GOP more).
    pub pre_roll: Duration,
    /// Memory bound of the pre-roll ring; wins over `pre_roll`.
    pub pre_roll_max_bytes: usize,
    /// Event mode: video kept after the last trigger.
    pub post_roll: Duration,
    /// Maximum age and byte quota, applied after each segment closes.
    pub retention: RetentionPolicy,
    /// Space to keep free on the data partition (other stages write there too):
    /// before opening a segment, old recordings are deleted to keep it.
    pub min_free_bytes: u64,
    /// Size of the reserve file given up when the disk fills (see `space`).
    pub reserve_bytes: u64,
    /// After a failed write, video time before the next attempt to open a segment.
    pub retry_interval: Duration,
    /// Segment ids taken from the index at once (each take is a commit).
    pub id_batch: u64,
}

impl RecorderConfig {
    /// Defaults for the device: one-minute segments, 10 s checkpoints, 5 s pre-roll,
    /// 10 s post-roll, continuous mode, no retention limit (the setup flow sets one),
    /// 128 MiB kept free and a 16 MiB reserve.
    pub fn new(data_dir: impl Into<PathBuf>, width: u32, height: u32, fps: u32) -> Self {
        Self {
            data_dir: data_dir.into(),
            width,
            height,
            fps,
            initial_mode: RecordingMode::Continuous,
            segment_duration: Duration::from_secs(60),
            checkpoint_interval: Duration::from_secs(10),
            pre_roll: Duration::from_secs(5),
            pre_roll_max_bytes: 8 << 20,
            post_roll: Duration::from_secs(10),
            retention: RetentionPolicy::default(),
            min_free_bytes: 128 << 20,
            reserve_bytes: 16 << 20,
            retry_interval: Duration::from_secs(5),
            id_batch: 16,
        }
    }
}

/// The recorder; [`run`](Recorder::run) is its task.
pub struct Recorder {
    config: RecorderConfig,
    store: Arc<Store>,
    key: SealingKey,
    shared: Arc<Shared>,
    stopped: watch::Receiver<bool>,
    keyframes: Option<KeyframeRequest>,
    ring: PreRoll,
    current: Option<SegmentFile>,
    /// Segment ids taken from the index and not used yet.
    ids: std::ops::Range<u64>,
    /// Rows of closed segments whose commit has not succeeded yet.
    pending: Vec<Segment>,
    /// The stream's SPS/PPS, for a keyframe that does not repeat them.
    parameter_sets: Option<ParameterSets>,
    /// No new segment before this capture time (after an error).
    blocked_until: Option<Instant>,
    /// A write failed for lack of space and no fragment was written since.
    disk_full: bool,
    /// The disk has been full since start: from then on, room for two segments is
    /// made before each one opens, so a card filled by recordings stays at "oldest
    /// recordings make way" instead of failing a write every few segments.
    was_full: bool,
    reserve_held: bool,
    /// The largest segment closed so far: how much room one more segment needs.
    largest_segment: u64,
}

impl Recorder {
    /// A recorder sealing to `key` and indexing in `store`. `keyframes` (the encoder
    /// stage's handle) lets it ask for a keyframe instead of waiting up to a GOP when
    /// a recording starts with nothing in the ring.
    pub fn new(
        config: RecorderConfig,
        store: Arc<Store>,
        key: SealingKey,
        keyframes: Option<KeyframeRequest>,
    ) -> (Self, RecorderControl) {
        let (control, stopped) = RecorderControl::new(config.initial_mode, config.post_roll);
        let ring = PreRoll::new(config.pre_roll, config.pre_roll_max_bytes);
        let recorder = Self {
            shared: Arc::clone(control.shared()),
            stopped,
            keyframes,
            ring,
            current: None,
            ids: 0..0,
            pending: Vec::new(),
            parameter_sets: None,
            blocked_until: None,
            disk_full: false,
            was_full: false,
            reserve_held: false,
            largest_segment: 0,
            store,
            key,
            config,
        };
        (recorder, control)
    }

    /// Records until [`RecorderControl::shutdown`] or until the packet sender is gone,
    /// then closes the open segment cleanly.
    pub async fn run(mut self, mut packets: mpsc::Receiver<Packet>) {
        self.hold_reserve().await;
        self.refresh_usage().await;
        let mut stopped = self.stopped.clone();
        loop {
            tokio::select! {
                biased;
                // `Err` (every control handle dropped) disables this branch.
                Ok(_) = stopped.wait_for(|stop| *stop) => break,
                packet = packets.recv() => match packet {
                    Some(packet) => self.on_packet(packet).await,
                    None => break,
                },
            }
        }
        self.close_current(None).await;
        self.commit_pending().await;
        tracing::info!("recorder stopped");
    }

    async fn on_packet(&mut self, packet: Packet) {
        self.shared.update(|s| s.packets += 1);
        if packet.keyframe
            && let Some(sets) = parameter_sets(&packet.data)
        {
            self.parameter_sets = Some(sets);
        }
        let now = packet.captured;
        let want = self.shared.wants().at(now);

        let mut closed = false;
        if let Some(segment) = &self.current {
            let cut = want.is_none()
                || (packet.keyframe && segment.age(now) >= self.config.segment_duration);
            if !cut {
                match self.write(&packet).await {
                    // Failed: the segment was abandoned and the packet is lost; the
                    // next keyframe may start a new segment.
                    Written::Yes | Written::Failed => return,
                    Written::NewTrack => {}
                }
            }
            self.close_current(Some(now)).await;
            closed = true;
        }

        match self.ring.push(packet) {
            RingPushed::Kept => {}
            RingPushed::NoKeyframe | RingPushed::GopDropped => {
                if want.is_some() {
                    self.request_keyframe();
                }
            }
        }
        if let Some(trigger) = want
            && self.ring.has_keyframe()
            && self.may_open(now).await
        {
            // Commits the closed segment's row together with the new one's.
            self.open(trigger, now).await;
        }
        if !self.pending.is_empty() {
            self.commit_pending().await;
        }
        if closed {
            self.retention(None).await;
        }
    }

    /// Adds a packet to the open segment, and commits a checkpoint when one is due.
    async fn write(&mut self, packet: &Packet) -> Written {
        let Some(segment) = self.current.as_mut() else {
            return Written::Failed;
        };
        match segment.push(packet).await {
            Ok(Pushed::Stored { fragment }) => {
                if fragment && self.disk_full {
                    self.disk_full = false;
                    self.shared.update(|s| s.disk_full = false);
                    tracing::info!("recording again after the disk was full");
                }
                let interval = micros(self.config.checkpoint_interval);
                if segment.checkpoint_due(interval) {
                    if let Err(e) = segment.sync().await {
                        self.segment_failed(e, packet.captured).await;
                        return Written::Failed;
                    }
                    self.commit_pending().await;
                }
                self.publish_current();
                Written::Yes
            }
            Ok(Pushed::Dropped(e)) => {
                self.shared.update(|s| s.packets_dropped += 1);
                tracing::warn!(seq = packet.seq, "frame not recorded: {e}");
                self.request_keyframe();
                Written::Yes
            }
            Ok(Pushed::NewTrack) => Written::NewTrack,
            Err(e) => {
                self.segment_failed(e, packet.captured).await;
                Written::Failed
            }
        }
    }

    /// Opens a segment with the ring's packets (they start with a keyframe).
    async fn open(&mut self, trigger: Trigger, now: Instant) {
        let packets = self.ring.take();
        let Some(first) = packets.first() else {
            return;
        };
        let Some(sets) = parameter_sets(&first.data).or_else(|| self.parameter_sets.clone()) else {
            tracing::warn!("a keyframe without SPS/PPS and none seen before: waiting");
            return;
        };
        let id = match self.next_id().await {
            Ok(id) => id,
            Err(e) => {
                self.failed("take a segment id", &e, now).await;
                return;
            }
        };
        let track = TrackInfo {
            width: self.config.width,
            height: self.config.height,
            parameter_sets: sets,
        };
        let spec = SegmentSpec {
            data_dir: &self.config.data_dir,
            id,
            trigger,
            track,
            fps: self.config.fps,
            key: &self.key,
            start_us: layout::unix_us(first.wall),
        };
        let segment = match SegmentFile::create(spec).await {
            Ok(segment) => segment,
            Err(e) => {
                self.failed("start a segment", &e, now).await;
                return;
            }
        };
        tracing::info!(id = %segment.id(), path = segment.row().path, ?trigger, "segment started");
        self.current = Some(segment);
        // The new row and the rows of segments just closed: one commit.
        self.commit_pending().await;
        for packet in &packets {
            if !matches!(self.write(packet).await, Written::Yes) {
                break;
            }
        }
        let recording = self.current.is_some();
        self.shared.update(|s| s.recording = recording);
        self.publish_current();
    }

    /// Ends the open segment (before `end`, the next frame's capture time, if known)
    /// and queues its row for the next commit.
    async fn close_current(&mut self, end: Option<Instant>) {
        let Some(segment) = self.current.take() else {
            return;
        };
        let id = segment.id();
        match segment.finish(end).await {
            Ok(row) => {
                tracing::info!(%id, bytes = row.bytes, fragments = row.fragments.len(), "segment complete");
                self.closed(row);
            }
            Err((e, row)) => {
                if let Some(row) = row {
                    self.closed(row);
                }
                let at = end.unwrap_or_else(Instant::now);
                self.failed("finish a segment", &e, at).await;
            }
        }
        self.shared.update(|s| {
            s.recording = false;
            s.current_segment = None;
        });
    }

    fn closed(&mut self, row: Segment) {
        self.largest_segment = self.largest_segment.max(row.bytes);
        self.shared.update(|s| s.segments_written += 1);
        self.pending.push(row);
    }

    /// The open segment cannot be written: keep what is durable of it, then handle
    /// the error.
    async fn segment_failed(&mut self, e: RecordError, at: Instant) {
        if let Some(segment) = self.current.take() {
            tracing::warn!(id = %segment.id(), "abandoning the segment: {e}");
            if let Some(row) = segment.abandon().await {
                self.closed(row);
            }
            self.shared.update(|s| {
                s.recording = false;
                s.current_segment = None;
            });
        }
        self.failed("write a segment", &e, at).await;
    }

    /// Reports an error and holds off new segments for `retry_interval`. For a full
    /// disk, first makes room.
    async fn failed(&mut self, action: &str, e: &RecordError, at: Instant) {
        let message = format!("cannot {action}: {e}");
        tracing::error!("{message}");
        let disk_full = e.is_disk_full();
        self.shared.update(|s| {
            s.errors += 1;
            s.last_error = Some(message);
            if disk_full {
                s.disk_full = true;
                s.disk_full_events += 1;
            }
        });
        self.blocked_until = Some(at + self.config.retry_interval);
        if disk_full {
            self.disk_full = true;
            self.was_full = true;
            self.release_reserve().await;
            self.commit_pending().await;
            self.retention(Some(self.room_needed())).await;
            // Room was made: try again at the next keyframe rather than after the
            // retry interval, so as little as possible goes unrecorded.
            self.blocked_until = None;
        } else {
            self.commit_pending().await;
        }
    }

    fn request_keyframe(&self) {
        if let Some(keyframes) = &self.keyframes {
            keyframes.request();
        }
    }

    fn publish_current(&self) {
        let current = self.current.as_ref().map(|s| {
            let row = s.row();
            segment_status(
                row.id,
                &row.path,
                row.start_us,
                row.bytes,
                row.fragments.len(),
                row.trigger,
            )
        });
        self.shared.update(|s| s.current_segment = current);
    }
}

/// What [`Recorder::write`] did.
enum Written {
    Yes,
    /// The segment failed and was abandoned.
    Failed,
    /// The packet starts a new track: the segment must end and a new one begin.
    NewTrack,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
