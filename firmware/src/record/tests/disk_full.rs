//! A full disk, for real: a 4 MiB tmpfs holding the index and the segments, recorded
//! into until writes fail with ENOSPC.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::*;
use crate::record::space::RESERVE_FILE;
use crate::store::SegmentState;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("data");
        std::fs::create_dir(&path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Self { _dir: dir, path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a failed assertion left a handle open): detach it anyway.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

#[test]
fn record_full_disk_runs_retention_reports_it_and_keeps_recording() {
    const TEST: &str = "record_full_disk_runs_retention_reports_it_and_keeps_recording";
    if no_io_uring(TEST) {
        return;
    }
    let tmpfs = match Tmpfs::mount("4m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            eprintln!("skipped {TEST}: cannot mount a tmpfs (needs root): {why}");
            return;
        }
    };
    let data = Data::at(&tmpfs.path);
    let keys = keys();

    // Two seconds of video made as large as a busy scene's (8 KiB of filler data per
    // frame, ~270 kB/s), looped to 40 s: more than twice the disk.
    let mut video = Video::new(FPS / 2, 400_000);
    let clip: Vec<Packet> = video
        .packets(0..2 * u64::from(FPS))
        .into_iter()
        .map(|mut p| {
            p.data = with_filler(&p.data, 8 << 10);
            p
        })
        .collect();
    let total = 40 * u64::from(FPS);
    let packets: Vec<Packet> = (0..total)
        .map(|seq| {
            let p = &clip[(seq % clip.len() as u64) as usize];
            Packet {
                seq,
                captured: video.at(seq),
                wall: video.wall(seq),
                keyframe: p.keyframe,
                data: p.data.clone(),
            }
        })
        .collect();
    let bytes: usize = packets.iter().map(|p| p.data.len()).sum();
    assert!(
        bytes > 8 << 20,
        "{bytes} bytes of video cannot fill the disk twice"
    );

    let mut config = data.config();
    config.segment_duration = Duration::from_secs(1);
    config.checkpoint_interval = Duration::from_millis(500);
    config.reserve_bytes = 256 << 10;
    config.retry_interval = Duration::from_secs(1);

    let store = Arc::clone(&data.store);
    let key = keys.sealing.clone();
    let (status, first_full) = runtime::start(async move {
        let (recorder, control) = Recorder::new(config, store, key, None);
        // One packet in flight, so the status is seen between any two packets.
        let (tx, rx) = mpsc::channel(1);
        let task = runtime::spawn(recorder.run(rx));
        let mut first_full = None;
        for packet in packets {
            let seq = packet.seq;
            tx.send(packet).await.unwrap();
            if first_full.is_none() && control.status().disk_full {
                first_full = Some(seq);
            }
        }
        drop(tx);
        task.await
            .expect("the recorder must not panic on a full disk");
        (control.status(), first_full)
    })
    .unwrap();

    // The disk filled up, and the status said so.
    let first_full = first_full.unwrap_or_else(|| panic!("disk_full never showed: {status:?}"));
    // Once: from then on room for two segments is made before each one opens, so
    // the oldest recordings make way without another failed write.
    assert_eq!(status.disk_full_events, 1, "{status:?}");
    assert_eq!(status.errors, 1, "{status:?}");
    let error = status.last_error.clone().unwrap_or_default();
    assert!(error.contains("No space left on device"), "{error}");
    // Retention made room: the oldest recordings are gone.
    assert!(status.segments_deleted >= 1, "{status:?}");
    let segments = data.segments();
    assert!(
        segments[0].id.0 > 1,
        "the first segment was deleted: {:?}",
        segments[0]
    );
    // …and recording went on: segments started after the disk filled were completed,
    // the newest one included, and the status is clear again.
    let after = video.wall_us(first_full);
    let completed_after = segments
        .iter()
        .filter(|s| s.start_us > after && s.state == SegmentState::Complete)
        .count();
    assert!(
        completed_after >= 3,
        "{completed_after} complete after the disk filled: {segments:?}"
    );
    let newest = segments.last().unwrap();
    assert_eq!(newest.state, SegmentState::Complete);
    assert!(
        newest.end_us >= video.wall_us(total - 1),
        "recorded to the end"
    );
    assert!(!status.disk_full, "{status:?}");

    // The index agrees with the disk exactly (a cut-short segment was trimmed to its
    // last complete fragment), and the reserve is back.
    let files = layout::list_segment_files(&data.path).unwrap();
    assert_eq!(files.len(), segments.len());
    for (file, segment) in files.iter().zip(&segments) {
        assert_eq!(
            (file.path.as_str(), file.bytes),
            (segment.path.as_str(), segment.bytes)
        );
    }
    let reserve = std::fs::metadata(data.path.join(RESERVE_FILE)).unwrap();
    assert_eq!(reserve.len(), 256 << 10);

    // Every remaining segment decrypts to what its row lists; the newest plays.
    for segment in &segments {
        let opened = open_with_recovery(&data.file(segment), &keys.recovery);
        assert_eq!(
            opened.chunks.len(),
            segment.fragments.len() + 1,
            "{segment:?}"
        );
        match segment.state {
            SegmentState::Complete => assert!(opened.end.is_ok(), "{:?}", opened.end),
            _ => assert!(matches!(opened.end, Err(VaultError::Incomplete { .. }))),
        }
    }
    let opened = open_with_recovery(&data.file(newest), &keys.recovery);
    let duration: u64 = newest.fragments.iter().map(|f| f.duration_us).sum();
    assert_eq!(probe_frames(&opened.mp4()), frames_in(duration));
    drop(data);
    drop(tmpfs);
}

/// `access_unit` followed by a filler-data NAL unit (type 12) of `len` bytes: decoders
/// skip it, the recorder stores it like picture data.
fn with_filler(access_unit: &[u8], len: usize) -> bytes::Bytes {
    let mut out = access_unit.to_vec();
    out.extend_from_slice(&[0, 0, 0, 1, 0x0c]);
    out.extend(std::iter::repeat_n(0xff, len));
    out.push(0x80); // rbsp_trailing_bits
    out.into()
}
