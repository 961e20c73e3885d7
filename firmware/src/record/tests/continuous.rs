//! Continuous recording: segments, their index rows, their content, and what is on
//! the card.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::*;
use crate::record::segment_file::TEST_DATA_KEYS;
use crate::store::{SegmentState, Trigger};
use crate::vault::HEADER_LEN;

/// 8 s at 30 fps, a keyframe every second, 2 s segments: four segments of two
/// fragments, back to back, each a playable MP4 once decrypted with the recovery key.
#[test]
fn record_continuous_segments_are_indexed_encrypted_and_play() {
    if no_io_uring("record_continuous_segments_are_indexed_encrypted_and_play") {
        return;
    }
    let keys = keys();
    let data = Data::new();
    let mut video = Video::new(FPS, 400_000);
    let packets = video.packets(0..8 * u64::from(FPS));
    let mut config = data.config();
    config.segment_duration = Duration::from_secs(2);
    config.checkpoint_interval = Duration::from_secs(1);

    let status = record(&data, config, &keys, packets, |_| {});
    assert_eq!(status.segments_written, 4, "{status:?}");
    assert_eq!(status.errors, 0, "{status:?}");
    assert!(!status.recording && status.current_segment.is_none());
    assert_eq!(status.packets, 240);

    let segments = data.segments();
    assert_eq!(segments.len(), 4);
    assert_eq!(
        status.bytes_used,
        segments.iter().map(|s| s.bytes).sum::<u64>()
    );
    for (k, segment) in segments.iter().enumerate() {
        let first_frame = 60 * k as u64;
        assert_eq!(segment.state, SegmentState::Complete);
        assert_eq!(segment.trigger, Trigger::Continuous);
        assert_eq!(
            segment.start_us,
            video.wall_us(first_frame),
            "segment {k} start"
        );
        assert_eq!(
            segment.end_us,
            segment.start_us + 2_000_000,
            "segment {k} end"
        );
        assert_eq!(
            segment.path,
            layout::segment_path(segment.id, segment.start_us),
            "segment {k} path"
        );

        // Two one-second fragments, back to back in time and in the file.
        assert_eq!(segment.fragments.len(), 2, "segment {k}");
        let init_end = segment.fragments[0].offset;
        assert!(
            init_end > HEADER_LEN as u64,
            "header and init chunk come first"
        );
        for (i, f) in segment.fragments.iter().enumerate() {
            assert_eq!(f.start_us, segment.start_us + 1_000_000 * i as u64);
            assert_eq!(f.duration_us, 1_000_000);
        }
        let [a, b] = [segment.fragments[0], segment.fragments[1]];
        assert_eq!(b.offset, a.end_offset());

        let path = data.file(segment);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            meta.len(),
            segment.bytes,
            "segment {k}: row bytes = file size"
        );
        assert_eq!(
            segment.bytes,
            b.end_offset() + 20,
            "segment {k}: the end marker follows the last fragment"
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);

        // Decrypts completely, with the recovery key alone, into 2 s of video.
        let opened = open_with_recovery(&path, &keys.recovery);
        assert!(opened.end.is_ok(), "segment {k}: {:?}", opened.end);
        assert_eq!(opened.chunks.len(), 3, "init segment and two fragments");
        check_random_access(&path, segment, &opened, &keys);
        assert_eq!(probe_frames(&opened.mp4()), 60, "segment {k}: frames");
    }
    // Consecutive segments join without a gap: each ends where the next starts.
    for pair in segments.windows(2) {
        assert_eq!(pair[0].end_us, pair[1].start_us);
    }

    // Nothing on the card gives the video or a key away.
    let secret = keys.vault.secret().to_bytes();
    let recovery = *keys.recovery.bytes();
    let data_keys = TEST_DATA_KEYS.lock().unwrap().clone();
    assert!(data_keys.len() >= 4);
    let files = all_files(&data.path);
    assert!(files.iter().any(|f| f.ends_with("index/data.mdb")));
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for signature in [&b"ftyp"[..], b"moof", b"mdat", b"moov", b"avc1"] {
            assert!(
                !contains(&bytes, signature),
                "{} contains {:?}",
                file.display(),
                String::from_utf8_lossy(signature)
            );
        }
        assert!(
            !contains(&bytes, &secret),
            "{}: private key",
            file.display()
        );
        assert!(
            !contains(&bytes, &recovery),
            "{}: recovery key",
            file.display()
        );
        let typed = keys.recovery.to_display_string();
        assert!(
            !contains(&bytes, typed.as_bytes()),
            "{}: recovery key text",
            file.display()
        );
        for key in &data_keys {
            assert!(!contains(&bytes, key), "{}: a data key", file.display());
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
