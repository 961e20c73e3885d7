//! The encoder stage: when the recorder falls behind, packets are dropped up to a
//! forced keyframe, so what arrives always decodes.

use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use super::*;
use crate::record::H264Stage;

#[test]
fn record_stage_drops_up_to_a_forced_keyframe_when_the_recorder_is_behind() {
    // Frames from the synthetic scene; a keyframe interval far beyond the test.
    let video = Video::new(FPS, 400_000);
    let encoder = OpenH264::new(H264Config {
        width: WIDTH,
        height: HEIGHT,
        fps: FPS,
        bitrate: 400_000,
        keyframe_interval: 300,
    })
    .unwrap();
    let keyframes = encoder.keyframe_request();
    let (frames_tx, frames_rx) = sync_channel(2);
    let (packets_tx, mut packets_rx) = mpsc::channel(4);
    let stage = H264Stage::start(Box::new(encoder), keyframes, frames_rx, packets_tx).unwrap();
    let wait_encoded = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while stage.stats().encoded < n {
            assert!(
                Instant::now() < deadline,
                "encoder stalled: {:?}",
                stage.stats()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    };

    // The recorder takes nothing for 40 frames: 4 fit in the channel, 36 are dropped.
    for seq in 0..40 {
        frames_tx.send(Arc::new(video.frame(seq))).unwrap();
    }
    wait_encoded(40);
    let mut received: Vec<Packet> = std::iter::from_fn(|| packets_rx.try_recv().ok()).collect();
    assert_eq!(received.len(), 4);
    // Then it keeps up again.
    for seq in 40..80 {
        frames_tx.send(Arc::new(video.frame(seq))).unwrap();
        wait_encoded(seq + 1);
        received.extend(std::iter::from_fn(|| packets_rx.try_recv().ok()));
    }
    drop(frames_tx);
    let stats = stage.stop();
    received.extend(std::iter::from_fn(|| packets_rx.try_recv().ok()));

    assert_eq!(stats.encoded, 80);
    assert_eq!(stats.dropped, 36, "{stats:?}");
    assert_eq!(stats.sent, 44);
    assert_eq!(received.len(), 44);
    let seqs: Vec<u64> = received.iter().map(|p| p.seq).collect();
    assert_eq!(seqs[..4], [0, 1, 2, 3]);
    assert_eq!(seqs[4], 40, "resumes with the first frame after the stall");
    // The keyframe interval is 300 frames, so every keyframe here was forced: the
    // first frame, and the first one delivered after the drops.
    for (i, p) in received.iter().enumerate() {
        let after_gap = i > 0 && p.seq != received[i - 1].seq + 1;
        assert_eq!(
            p.keyframe,
            i == 0 || after_gap,
            "packet {i} (frame {})",
            p.seq
        );
    }

    // And the stream decodes without a missing reference.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stage.h264");
    let stream: Vec<u8> = received.iter().flat_map(|p| p.data.to_vec()).collect();
    std::fs::write(&path, stream).unwrap();
    assert_eq!(ffprobe(&path).frames.len(), 44);
    ffmpeg_decodes(&path);
}
