//! Steering the recorder and reading what it does: the mode, event triggers, manual
//! start/stop, and the status the API will show.
//!
//! [`RecorderControl`] is `Clone + Send + Sync`: the API (on the I/O thread) and the
//! detector (on its own thread) hold copies. Commands only change a small shared state
//! that the recorder reads on every packet; nothing queues up, so a burst of triggers
//! costs nothing and cannot fill memory.
//!
//! Time is the capture clock (`Instant`) of the frames: a trigger at `t` makes the
//! recording want frames captured from `t` to `t + post_roll`, whenever the recorder
//! gets to them. So a trigger that arrives while frames captured before it still wait
//! in the channel behaves exactly as one that arrives later, and tests can drive the
//! recorder with synthetic capture times.
//!
//! A weekly schedule (modes by time of day and weekday in the device's time zone) is
//! not here yet: it will be a task that calls [`RecorderControl::set_mode`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::store::{SegmentId, Trigger};

/// What the recorder records on its own. Manual recording works in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMode {
    /// Nothing (except a manual recording).
    Off,
    /// Everything, in segments of `segment_duration`.
    #[default]
    Continuous,
    /// Around events: pre-roll before each trigger, post-roll after the last one.
    Event,
}

/// Where an event trigger came from; logged, and kept for the event index later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Motion,
    Person,
    /// Raised through the API or by a test.
    External,
}

/// The segment being written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentSegment {
    pub id: u64,
    /// Relative to the data directory.
    pub path: String,
    pub start_us: u64,
    pub bytes: u64,
    pub fragments: usize,
    pub trigger: &'static str,
}

/// What the recorder is doing, for `/api/v1/health` and the recordings page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecorderStatus {
    pub mode: RecordingMode,
    pub manual: bool,
    /// A segment is open.
    pub recording: bool,
    pub current_segment: Option<CurrentSegment>,
    /// The last write failed for lack of space and recording has not resumed since.
    pub disk_full: bool,
    /// Times the disk filled up since start.
    pub disk_full_events: u64,
    /// The last write or index error, with what was being done.
    pub last_error: Option<String>,
    pub errors: u64,
    /// Bytes of all indexed segments (the quota counts these).
    pub bytes_used: u64,
    /// Free bytes on the data partition at the last check.
    pub bytes_free: Option<u64>,
    /// Segments closed (complete or cut short by an error) since start.
    pub segments_written: u64,
    /// Segments deleted by retention since start.
    pub segments_deleted: u64,
    /// Packets received from the encoder stage.
    pub packets: u64,
    /// Packets the recorder dropped (a frame it could not store).
    pub packets_dropped: u64,
}

/// The recorder's inputs besides packets.
#[derive(Debug, Clone)]
pub(crate) struct Wants {
    pub mode: RecordingMode,
    pub manual: bool,
    /// Frames captured in `[start, end)` belong to an event recording.
    pub event: Option<(Instant, Instant)>,
    /// An event is going on: the window stays open past `end` until it ends.
    pub event_open: bool,
}

impl Wants {
    /// Whether a frame captured at `t` should be recorded, and as what. An event wins
    /// over manual, manual over continuous: the label is what the recordings list
    /// shows, and an event is the most specific reason.
    pub fn at(&self, t: Instant) -> Option<Trigger> {
        let event = self
            .event
            .is_some_and(|(start, end)| start <= t && (t < end || self.event_open));
        if self.mode == RecordingMode::Event && event {
            Some(Trigger::Event)
        } else if self.manual {
            Some(Trigger::Manual)
        } else if self.mode == RecordingMode::Continuous {
            Some(Trigger::Continuous)
        } else {
            None
        }
    }
}

pub(crate) struct Shared {
    wants: Mutex<Wants>,
    status: Mutex<RecorderStatus>,
    post_roll: Duration,
}

impl Shared {
    pub fn wants(&self) -> Wants {
        lock(&self.wants).clone()
    }

    /// Changes the status; the closure must not call back into the control.
    pub fn update(&self, f: impl FnOnce(&mut RecorderStatus)) {
        f(&mut lock(&self.status));
    }
}

/// Both mutexes guard plain values that every writer leaves consistent, so a panic
/// elsewhere while one was held cannot have broken them.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Handle to a running recorder. See the module documentation.
#[derive(Clone)]
pub struct RecorderControl {
    shared: Arc<Shared>,
    stop: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for RecorderControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderControl")
            .field("wants", &self.shared.wants())
            .finish_non_exhaustive()
    }
}

impl RecorderControl {
    pub(crate) fn new(mode: RecordingMode, post_roll: Duration) -> (Self, watch::Receiver<bool>) {
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            wants: Mutex::new(Wants {
                mode,
                manual: false,
                event: None,
                event_open: false,
            }),
            status: Mutex::new(RecorderStatus {
                mode,
                ..RecorderStatus::default()
            }),
            post_roll,
        });
        let control = Self {
            shared,
            stop: Arc::new(stop),
        };
        (control, stopped)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// An event happened now: record from `pre_roll` before it to `post_roll` after
    /// the last trigger (in event mode; other modes ignore triggers).
    pub fn trigger(&self, kind: EventKind) {
        self.trigger_at(kind, Instant::now());
    }

    /// An event happened at `at` (capture clock). Overlapping or touching windows
    /// merge, so a sequence of triggers makes one recording.
    pub fn trigger_at(&self, kind: EventKind, at: Instant) {
        let end = at + self.shared.post_roll;
        let mut wants = lock(&self.shared.wants);
        wants.event = Some(match wants.event {
            Some((start, old_end)) if at <= old_end => (start.min(at), old_end.max(end)),
            _ => (at, end),
        });
        tracing::debug!(?kind, mode = ?wants.mode, "event trigger");
    }

    /// Whether an event is going on now. While one is, the event window stays open
    /// however long it lasts; when the last one ends, the window closes `post_roll`
    /// from now. (Triggers alone would let a long quiet stretch of an event, with no
    /// update, outlast the post-roll and split its recording.)
    pub fn set_event_open(&self, kind: EventKind, open: bool) {
        let now = Instant::now();
        self.trigger_at(kind, now);
        lock(&self.shared.wants).event_open = open;
    }

    /// Starts a manual recording; it lasts until [`stop_manual`](Self::stop_manual).
    pub fn start_manual(&self) {
        self.set_manual(true);
    }

    pub fn stop_manual(&self) {
        self.set_manual(false);
    }

    fn set_manual(&self, on: bool) {
        lock(&self.shared.wants).manual = on;
        self.shared.update(|s| s.manual = on);
        tracing::info!(on, "manual recording");
    }

    /// Switches the mode. The recorder follows with the next frame: a recording that
    /// is no longer wanted ends there, a newly wanted one starts at the next keyframe
    /// (or at once from the pre-roll ring).
    pub fn set_mode(&self, mode: RecordingMode) {
        lock(&self.shared.wants).mode = mode;
        self.shared.update(|s| s.mode = mode);
        tracing::info!(?mode, "recording mode");
    }

    pub fn mode(&self) -> RecordingMode {
        lock(&self.shared.wants).mode
    }

    /// A snapshot of the status.
    pub fn status(&self) -> RecorderStatus {
        lock(&self.shared.status).clone()
    }

    /// Asks the recorder to close its segment cleanly and end. Its task completes when
    /// that is done.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

/// Status text of a segment trigger.
pub(crate) fn trigger_name(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Continuous => "continuous",
        Trigger::Event => "event",
        Trigger::Manual => "manual",
        Trigger::Schedule => "schedule",
        Trigger::Other(_) => "other",
    }
}

/// The id as the status shows it.
pub(crate) fn segment_status(
    id: SegmentId,
    path: &str,
    start_us: u64,
    bytes: u64,
    fragments: usize,
    trigger: Trigger,
) -> CurrentSegment {
    CurrentSegment {
        id: id.0,
        path: path.to_string(),
        start_us,
        bytes,
        fragments,
        trigger: trigger_name(trigger),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_control_wants_follow_mode_triggers_and_manual() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let (control, _stopped) =
            RecorderControl::new(RecordingMode::Event, Duration::from_secs(5));
        let wants = || control.shared().wants();
        assert_eq!(wants().at(s(1)), None);

        control.trigger_at(EventKind::Motion, s(10));
        assert_eq!(wants().at(s(9)), None, "not before the trigger");
        assert_eq!(wants().at(s(10)), Some(Trigger::Event));
        assert_eq!(wants().at(s(15)), None, "post-roll is over");
        // A trigger within the post-roll extends the window; a later one starts anew.
        control.trigger_at(EventKind::Person, s(14));
        assert_eq!(wants().event, Some((s(10), s(19))));
        control.trigger_at(EventKind::External, s(30));
        assert_eq!(wants().event, Some((s(30), s(35))));
        // An event going on keeps the window open past its post-roll.
        control.shared().wants.lock().unwrap().event_open = true;
        assert_eq!(wants().at(s(60)), Some(Trigger::Event), "open event");
        assert_eq!(wants().at(s(29)), None, "still not before the start");
        control.shared().wants.lock().unwrap().event_open = false;
        assert_eq!(wants().at(s(60)), None);

        control.start_manual();
        assert_eq!(wants().at(s(1)), Some(Trigger::Manual));
        assert_eq!(wants().at(s(31)), Some(Trigger::Event), "event wins");
        control.stop_manual();
        control.set_mode(RecordingMode::Continuous);
        assert_eq!(
            wants().at(s(31)),
            Some(Trigger::Continuous),
            "events only in event mode"
        );
        control.set_mode(RecordingMode::Off);
        assert_eq!(wants().at(s(31)), None);
        let status = control.status();
        assert_eq!((status.mode, status.manual), (RecordingMode::Off, false));
    }
}
