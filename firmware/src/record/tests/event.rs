//! Event mode: the recording starts before its trigger (pre-roll) and ends after it
//! (post-roll); nothing is recorded without a trigger. Manual start/stop in any mode.

use std::time::Duration;

use super::*;
use crate::record::{EventKind, RecordingMode};
use crate::store::{SegmentState, Trigger};

#[test]
fn record_event_mode_has_pre_roll_before_and_post_roll_after_the_trigger() {
    if no_io_uring("record_event_mode_has_pre_roll_before_and_post_roll_after_the_trigger") {
        return;
    }
    let keys = keys();
    let data = Data::new();
    // 11 s at 30 fps, a keyframe every 0.5 s.
    let mut video = Video::new(FPS / 2, 300_000);
    let total = 11 * u64::from(FPS);
    let mut packets = video.packets(0..total).into_iter();
    let mut config = data.config();
    config.initial_mode = RecordingMode::Event;
    config.pre_roll = Duration::from_secs(2);
    config.post_roll = Duration::from_secs(1);
    config.checkpoint_interval = Duration::from_secs(1);

    // One event at 4.1 s (mid-GOP, frame 123); manual recording from frame 270 (9 s)
    // to frame 300 (10 s).
    let trigger_at = video.at(123);
    let trigger_wall_us = video.wall_us(123);
    let store = Arc::clone(&data.store);
    let key = keys.sealing.clone();
    let status = runtime::start(async move {
        let (recorder, control) = Recorder::new(config, store, key, None);
        control.trigger_at(EventKind::Motion, trigger_at);
        let (tx, rx) = mpsc::channel(16);
        let task = runtime::spawn(recorder.run(rx));
        let mut send = async |n: u64| {
            for packet in packets.by_ref().take(n as usize) {
                tx.send(packet).await.unwrap();
            }
        };
        send(270).await;
        processed(&control, 270).await;
        assert!(!control.status().recording, "the event is over");
        control.start_manual();
        send(30).await;
        processed(&control, 300).await;
        assert!(control.status().recording, "manual recording");
        control.stop_manual();
        send(total - 300).await;
        drop(tx);
        task.await.unwrap();
        control.status()
    })
    .unwrap();
    assert_eq!(status.errors, 0, "{status:?}");

    let segments = data.segments();
    assert_eq!(
        segments.len(),
        2,
        "one event, one manual recording: {segments:?}"
    );
    let (event, manual) = (&segments[0], &segments[1]);

    // The event recording starts with the pre-roll: whole GOPs reaching at least 2 s
    // before the trigger, so the GOP starting at 2.0 s (frame 60).
    assert_eq!(event.trigger, Trigger::Event);
    assert_eq!(event.state, SegmentState::Complete);
    assert_eq!(event.start_us, video.wall_us(60));
    assert_eq!(event.fragments[0].start_us, event.start_us);
    assert!(
        event.fragments[0].start_us + 2_000_000 <= trigger_wall_us,
        "pre-roll ≥ 2 s"
    );
    let before: Vec<_> = event
        .fragments
        .iter()
        .filter(|f| f.end_us() <= trigger_wall_us)
        .collect();
    assert_eq!(before.len(), 4, "four whole GOPs precede the trigger");
    // …and ends with the post-roll: at the first frame 1 s after the trigger (5.1 s,
    // frame 153).
    assert_eq!(event.end_us, video.wall_us(153));
    let opened = open_with_recovery(&data.file(event), &keys.recovery);
    assert!(opened.end.is_ok(), "{:?}", opened.end);
    check_random_access(&data.file(event), event, &opened, &keys);
    assert_eq!(probe_frames(&opened.mp4()), 153 - 60);

    // The manual recording takes the GOPs the ring held (the pre-roll is there, so it
    // is used) and ends at the first frame after the stop.
    assert_eq!(manual.trigger, Trigger::Manual);
    assert_eq!(manual.state, SegmentState::Complete);
    assert!(manual.start_us >= event.end_us);
    assert!(manual.start_us <= video.wall_us(270));
    assert_eq!(manual.end_us, video.wall_us(300));
    let opened = open_with_recovery(&data.file(manual), &keys.recovery);
    assert!(opened.end.is_ok(), "{:?}", opened.end);
    let first = (manual.start_us - video.wall_us(0)) * u64::from(FPS) / 1_000_000;
    assert_eq!(probe_frames(&opened.mp4()), (300 - first) as usize);
}
