//! A power cut while recording, then start-up: the index is repaired to what the file
//! holds, complete fragments play, and a file the index never knew is kept aside.

use std::time::Duration;

use super::*;
use crate::decrypt::{Decrypted, decrypt_file};
use crate::record::startup::recover;
use crate::store::SegmentState;

#[test]
fn record_power_cut_keeps_complete_fragments_and_moves_orphans_aside() {
    if no_io_uring("record_power_cut_keeps_complete_fragments_and_moves_orphans_aside") {
        return;
    }
    let keys = keys();
    let data = Data::new();
    // 4 s in one segment, a keyframe every 0.5 s, a checkpoint every second.
    let gop = u64::from(FPS / 2);
    let mut video = Video::new(FPS / 2, 400_000);
    let packets = video.packets(0..4 * u64::from(FPS));
    let count = packets.len() as u64;
    let mut config = data.config();
    config.checkpoint_interval = Duration::from_secs(1);

    // Record, and pull the plug once every packet is in: the task is dropped where it
    // waits, without closing anything.
    let store = Arc::clone(&data.store);
    let key = keys.sealing.clone();
    let status = runtime::start(async move {
        let (recorder, control) = Recorder::new(config, store, key, None);
        let (tx, rx) = mpsc::channel(16);
        runtime::spawn(recorder.run(rx));
        for packet in packets {
            tx.send(packet).await.unwrap();
        }
        processed(&control, count).await;
        control.status()
    })
    .unwrap();
    assert!(status.recording, "{status:?}");

    // The index has the row as of the last checkpoint: still writing, with the
    // fragments up to 3 s (the fragment ending at 3.5 s was written after it, the one
    // from 3.5 s never closed).
    let before = data.segments();
    assert_eq!(before.len(), 1);
    let row = &before[0];
    assert_eq!(row.state, SegmentState::Writing);
    assert_eq!(row.fragments.len(), 6, "{row:?}");
    let path = data.file(row);
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert!(
        file_len > row.fragments[5].end_offset(),
        "the 7th fragment is in the file"
    );

    // A copy under another name: a file with no row, as a crash right after creating a
    // segment leaves one.
    let orphan_name = format!("999-{}.mcs", row.start_us);
    let orphan = path.with_file_name(&orphan_name);
    std::fs::copy(&path, &orphan).unwrap();

    // The power cut also tore the write of fragment 5: cut the file inside it.
    let torn = row.fragments[4];
    let cut_at = torn.offset + torn.len / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut_at)
        .unwrap();

    let report = recover(&data.path, &data.store).unwrap();
    let [interrupted] = &report.reconcile.interrupted[..] else {
        panic!("one interrupted segment: {report:?}");
    };
    assert_eq!(interrupted.id, row.id);
    assert_eq!(interrupted.previous_state, SegmentState::Writing);
    assert_eq!(
        (interrupted.kept_fragments, interrupted.dropped_fragments),
        (4, 2)
    );

    let after = data.store.segment(row.id).unwrap().unwrap();
    assert_eq!(after.state, SegmentState::Interrupted);
    assert_eq!(after.fragments, row.fragments[..4]);
    assert_eq!(after.bytes, cut_at);
    assert_eq!(after.end_us, row.fragments[3].end_us());
    assert_eq!(after.end_us, video.wall_us(4 * gop), "2 s of video kept");

    // What the index keeps plays: four GOPs of 15 frames.
    let opened = open_with_recovery(&path, &keys.recovery);
    assert!(
        matches!(
            opened.end,
            Err(VaultError::Incomplete { complete_chunks: 5 })
        ),
        "{:?}",
        opened.end
    );
    check_random_access(&path, &after, &opened, &keys);
    assert_eq!(probe_frames(&opened.mp4()), 4 * gop as usize);

    // The orphan went to unindexed, not away, and `mecam decrypt` opens it: it has
    // all seven complete fragments, the tail the index never listed included.
    let [lost] = &report.lost_and_found[..] else {
        panic!("one orphan: {report:?}");
    };
    assert_eq!(lost.to, data.path.join("unindexed").join(&orphan_name));
    assert!(!orphan.exists() && lost.to.exists());
    assert_eq!(lost.bytes, file_len);
    let out = data.path.join("orphan.mp4");
    let recovered = decrypt_file(&keys.recovery.to_display_string(), &lost.to, &out).unwrap();
    assert_eq!(recovered, Decrypted::Incomplete { chunks: 8 });
    assert_eq!(
        probe_frames(&std::fs::read(&out).unwrap()),
        7 * gop as usize
    );

    // A second start finds nothing to do.
    let again = recover(&data.path, &data.store).unwrap();
    assert!(
        again.reconcile.is_clean() && again.lost_and_found.is_empty(),
        "{again:?}"
    );
}
