//! End-to-end checks: real H.264 from OpenH264, muxed, then judged by ffprobe/ffmpeg.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use super::testing::{TestScene, ffmpeg_decodes, ffprobe, seek_lands_at};
use super::*;
use crate::encode::h264::{H264Config, OpenH264};
use crate::encode::{Encoder, Packet};

const FPS: u32 = 30;

fn encoder(width: u32, height: u32, keyframe_interval: u32) -> OpenH264 {
    OpenH264::new(H264Config {
        width,
        height,
        fps: FPS,
        bitrate: 1_500_000,
        keyframe_interval,
    })
    .unwrap()
}

/// Encodes one frame per capture time (seconds from the scene's start).
fn encode_at(enc: &mut OpenH264, scene: &TestScene, first_seq: u64, times: &[f64]) -> Vec<Packet> {
    times
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let frame = scene.frame(first_seq + i as u64, Duration::from_secs_f64(t));
            enc.encode(&frame).unwrap()
        })
        .collect()
}

fn regular_times(from: f64, count: usize) -> Vec<f64> {
    (0..count)
        .map(|i| from + i as f64 / f64::from(FPS))
        .collect()
}

fn track_of(enc: &OpenH264) -> TrackInfo {
    let c = enc.config();
    TrackInfo {
        width: c.width,
        height: c.height,
        parameter_sets: enc.parameter_sets().unwrap().clone(),
    }
}

/// A segment file's bytes and the fragments the muxer reported.
struct Segment {
    bytes: Vec<u8>,
    init_len: usize,
    fragments: Vec<Fragment>,
}

fn mux(track: TrackInfo, packets: &[Packet]) -> Segment {
    let mut muxer = SegmentMuxer::new(track, FPS).unwrap();
    let mut bytes = muxer.init_segment().to_vec();
    let init_len = bytes.len();
    let mut fragments = Vec::new();
    for p in packets {
        fragments.extend(muxer.push(p).unwrap());
    }
    fragments.extend(muxer.finish(None).unwrap());
    for f in &fragments {
        assert_eq!(f.info.offset, bytes.len() as u64, "reported offset");
        assert_eq!(f.info.len, f.data.len() as u64, "reported length");
        bytes.extend_from_slice(&f.data);
    }
    Segment {
        bytes,
        init_len,
        fragments,
    }
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn assert_times(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "frame count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // One tick of rounding, plus ffprobe's microsecond printing.
        assert!((g - w).abs() < 2e-5, "frame {i}: at {g} s, expected {w} s");
    }
}

#[test]
fn fmp4_segment_plays_with_the_right_frames_keyframes_and_duration() {
    let scene = TestScene::new(640, 480, 1);
    let mut enc = encoder(640, 480, 30);
    let times = regular_times(0.0, 90);
    let packets = encode_at(&mut enc, &scene, 0, &times);
    let seg = mux(track_of(&enc), &packets);

    let infos: Vec<FragmentInfo> = seg.fragments.iter().map(|f| f.info).collect();
    assert_eq!(infos.len(), 3, "one fragment per GOP");
    for (i, info) in infos.iter().enumerate() {
        assert_eq!(info.sequence, i as u32 + 1);
        assert_eq!(info.decode_time, 90_000 * i as u64);
        assert_eq!(info.duration, 90_000, "30 frames at 30 fps");
        assert_eq!(info.samples, 30);
        assert!(info.starts_with_keyframe);
        assert_eq!(info.start(), Duration::from_secs(i as u64));
    }
    assert_eq!(infos[0].offset, seg.init_len as u64);
    assert_eq!(seg.fragments[1].wall_start, packets[30].wall);

    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "segment.mp4", &seg.bytes);
    let probe = ffprobe(&path);
    assert_eq!(probe.codec, "h264");
    assert_eq!(probe.profile, "Constrained Baseline");
    assert_eq!((probe.width, probe.height), (640, 480));
    assert_eq!(probe.frames.len(), 90);
    assert_eq!(probe.keyframes(), [0, 30, 60]);
    assert_times(&probe.times(), &times);
    let duration = probe.duration.expect("the container states a duration");
    assert!((duration - 3.0).abs() < 1e-3, "duration {duration} s");
    ffmpeg_decodes(&path);
    // Seeking lands on the GOP's keyframe: the sync-sample flags are right.
    assert_eq!(seek_lands_at(&path, 1.5), 1.0);
    assert_eq!(seek_lands_at(&path, 2.9), 2.0);

    // What the muxer reported is what a scan of the file finds.
    let scan = scan(&seg.bytes).unwrap();
    assert_eq!(scan.init_len, seg.init_len);
    assert_eq!(scan.fragments, infos);
    assert_eq!(scan.complete_len, seg.bytes.len());
}

#[test]
fn fmp4_variable_frame_rate_keeps_capture_times() {
    let scene = TestScene::new(320, 240, 2);
    let mut enc = encoder(320, 240, 10);
    // Jittery intervals around 40 ms and one 700 ms stall, as a struggling camera gives.
    let mut times = Vec::new();
    let mut t = 0.0;
    for i in 0..40 {
        times.push(t);
        t += match i {
            17 => 0.7,
            _ => 0.033 + f64::from(i % 4) * 0.006,
        };
    }
    let packets = encode_at(&mut enc, &scene, 0, &times);
    let seg = mux(track_of(&enc), &packets);
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "vfr.mp4", &seg.bytes);
    let probe = ffprobe(&path);
    assert_times(&probe.times(), &times);
    // The last frame has no successor: it lasts as long as the one before it.
    let last = seg.fragments.last().unwrap().info;
    let end = ticks_to_duration(last.end_ticks()).as_secs_f64();
    let expected = times[39] + (times[39] - times[38]);
    assert!(
        (end - expected).abs() < 2e-5,
        "ends at {end} s, expected {expected} s"
    );
    ffmpeg_decodes(&path);
}

#[test]
fn fmp4_segment_cut_by_a_power_failure_keeps_its_complete_gops() {
    let scene = TestScene::new(320, 240, 3);
    let mut enc = encoder(320, 240, 10);
    let packets = encode_at(&mut enc, &scene, 0, &regular_times(0.0, 50));
    let seg = mux(track_of(&enc), &packets);
    assert_eq!(seg.fragments.len(), 5);

    // The power goes in the middle of writing the fourth fragment.
    let fourth = seg.fragments[3].info;
    let cut = &seg.bytes[..(fourth.offset + fourth.len / 2) as usize];
    let scan = scan(cut).unwrap();
    assert_eq!(scan.fragments.len(), 3);
    assert_eq!(scan.complete_len as u64, fourth.offset);
    let infos: Vec<_> = seg.fragments[..3].iter().map(|f| f.info).collect();
    assert_eq!(scan.fragments, infos);

    // Start-up reconciliation truncates to the complete fragments: that file plays.
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "cut.mp4", &cut[..scan.complete_len]);
    let probe = ffprobe(&path);
    assert_eq!(probe.frames.len(), 30);
    assert_eq!(probe.keyframes(), [0, 10, 20]);
    ffmpeg_decodes(&path);

    // Even a cut inside the init segment is reported, not panicked on.
    assert!(super::scan(&seg.bytes[..seg.init_len - 1]).is_err());
    assert_eq!(
        super::scan(&seg.bytes[..seg.init_len]).unwrap().fragments,
        []
    );
}

#[test]
fn fmp4_export_of_two_segments_is_one_continuous_stream() {
    let scene = TestScene::new(320, 240, 4);
    let mut enc = encoder(320, 240, 30);
    let a = encode_at(&mut enc, &scene, 0, &regular_times(0.0, 60));
    // The next segment starts ten seconds later, with a forced keyframe, as event
    // recording does.
    enc.force_keyframe();
    let b = encode_at(&mut enc, &scene, 60, &regular_times(12.0, 60));
    let track = track_of(&enc);
    let seg_a = mux(track.clone(), &a);
    let seg_b = mux(track, &b);

    // From the second half of A through all of B.
    let mut stitcher = Stitcher::new(&seg_a.bytes[..seg_a.init_len]).unwrap();
    stitcher.check_init(&seg_b.bytes[..seg_b.init_len]).unwrap();
    let parts: Vec<&[u8]> = [
        &seg_a.fragments[1],
        &seg_b.fragments[0],
        &seg_b.fragments[1],
    ]
    .iter()
    .map(|f| &f.data[..])
    .collect();
    let out = export(&seg_a.bytes[..seg_a.init_len], parts.iter().copied()).unwrap();

    let scan = scan(&out).unwrap();
    let numbering: Vec<_> = scan
        .fragments
        .iter()
        .map(|f| (f.sequence, f.decode_time))
        .collect();
    assert_eq!(numbering, [(1, 0), (2, 90_000), (3, 180_000)]);
    // The streaming stitcher reports what ends up in the output, offsets included.
    let reported: Vec<FragmentInfo> = parts
        .iter()
        .map(|p| stitcher.rewrite(&mut p.to_vec()).unwrap())
        .collect();
    assert_eq!(reported, scan.fragments);
    assert_eq!(stitcher.bytes_written(), out.len() as u64);
    assert_eq!(stitcher.duration_ticks(), 270_000);

    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "export.mp4", &out);
    let probe = ffprobe(&path);
    assert_eq!(probe.keyframes(), [0, 30, 60]);
    assert_times(&probe.times(), &regular_times(0.0, 90));
    let duration = probe.duration.unwrap();
    assert!((duration - 3.0).abs() < 1e-3, "duration {duration} s");
    ffmpeg_decodes(&path);
    assert_eq!(seek_lands_at(&path, 2.5), 2.0);
}

#[test]
fn fmp4_forced_keyframes_start_fragments() {
    let scene = TestScene::new(320, 240, 5);
    let mut enc = encoder(320, 240, 30);
    let request = enc.keyframe_request();
    let mut packets = Vec::new();
    for (i, t) in regular_times(0.0, 90).into_iter().enumerate() {
        if i == 45 {
            request.request();
        }
        let frame = scene.frame(i as u64, Duration::from_secs_f64(t));
        packets.push(enc.encode(&frame).unwrap());
    }
    let seg = mux(track_of(&enc), &packets);
    let sizes: Vec<u32> = seg.fragments.iter().map(|f| f.info.samples).collect();
    assert_eq!(sizes, [30, 15, 30, 15]);

    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "forced.mp4", &seg.bytes);
    assert_eq!(ffprobe(&path).keyframes(), [0, 30, 45, 75]);
    ffmpeg_decodes(&path);
}

/// A stand-in access unit: enough NAL structure for the muxer, not decodable.
fn fake(seq: u64, at_ms: u64, keyframe: bool, sps_byte: u8) -> Packet {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let scene_start = *START.get_or_init(std::time::Instant::now);
    let mut data = Vec::new();
    if keyframe {
        data.extend_from_slice(&[0, 0, 0, 1, 0x67, 66, 0xc0, 30, sps_byte]);
        data.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce]);
    }
    data.extend_from_slice(&[0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }, 0x9a]);
    Packet {
        seq,
        captured: scene_start + Duration::from_millis(at_ms),
        wall: std::time::SystemTime::UNIX_EPOCH + Duration::from_millis(at_ms),
        keyframe,
        data: Bytes::from(data),
    }
}

fn fake_track() -> TrackInfo {
    let key = fake(0, 0, true, 1);
    TrackInfo {
        width: 64,
        height: 64,
        parameter_sets: crate::encode::h264::parameter_sets(&key.data).unwrap(),
    }
}

#[test]
fn fmp4_muxer_refuses_a_delta_first_and_changed_parameter_sets() {
    let mut muxer = SegmentMuxer::new(fake_track(), FPS).unwrap();
    assert!(matches!(
        muxer.push(&fake(0, 0, false, 1)),
        Err(Mp4Error::NeedKeyframe)
    ));
    assert!(muxer.push(&fake(1, 0, true, 1)).unwrap().is_none());
    assert!(muxer.push(&fake(2, 40, false, 1)).unwrap().is_none());
    assert!(matches!(
        muxer.push(&fake(3, 80, true, 2)),
        Err(Mp4Error::ParameterSetsChanged)
    ));
    assert_eq!(
        muxer.pending_frames(),
        2,
        "the refused packet was not added"
    );
    let last = muxer.finish(None).unwrap().unwrap();
    assert_eq!((last.info.samples, last.info.duration), (2, 7200));
}

#[test]
fn fmp4_muxer_timing_fallbacks() {
    // A repeated capture time gets the nominal 1/30 s; the segment's end comes from
    // the next segment's first frame.
    let base = fake(0, 0, true, 1);
    let mut muxer = SegmentMuxer::new(fake_track(), FPS).unwrap();
    muxer.push(&base).unwrap();
    muxer.push(&fake(1, 100, false, 1)).unwrap();
    muxer.push(&fake(2, 100, false, 1)).unwrap();
    let end = base.captured + Duration::from_millis(250);
    let f = muxer.finish(Some(end)).unwrap().unwrap();
    assert_eq!(
        f.info.duration,
        duration_to_ticks(Duration::from_millis(250))
    );
    // The trun's per-sample durations start at byte 88 of a one-track fragment,
    // 12 bytes (duration, size, flags) a sample.
    let durations: Vec<u32> = (0..3)
        .map(|i| u32::from_be_bytes(f.data[88 + 12 * i..92 + 12 * i].try_into().unwrap()))
        .collect();
    assert_eq!(durations, [9000, 3000, 10_500]);
    let scan = scan(&[&fake_init()[..], &f.data[..]].concat()).unwrap();
    assert_eq!(scan.fragments[0].duration, 22_500);
}

fn fake_init() -> Vec<u8> {
    init_segment(&fake_track()).unwrap()
}

#[test]
fn fmp4_endless_gop_is_cut_to_bound_memory() {
    let mut muxer = SegmentMuxer::new(fake_track(), FPS).unwrap();
    let mut fragments = Vec::new();
    for i in 0..(MAX_FRAGMENT_SAMPLES as u64 + 10) {
        fragments.extend(muxer.push(&fake(i, i * 33, i == 0, 1)).unwrap());
    }
    assert_eq!(fragments.len(), 1);
    assert_eq!(fragments[0].info.samples as usize, MAX_FRAGMENT_SAMPLES);
    let rest = muxer.finish(None).unwrap().unwrap();
    assert_eq!(rest.info.samples, 10);
    assert!(
        !rest.info.starts_with_keyframe,
        "the cut fragment cannot start playback"
    );
}

#[test]
fn fmp4_stitcher_refuses_other_video_and_bad_fragments() {
    let init = fake_init();
    let stitcher = Stitcher::new(&init).unwrap();
    let mut other = fake_track();
    other.width = 128;
    assert!(matches!(
        stitcher.check_init(&init_segment(&other).unwrap()),
        Err(Mp4Error::TrackMismatch)
    ));
    let mut stitcher = stitcher;
    let mut junk = vec![0, 0, 0, 8, b'f', b'r', b'e', b'e'];
    assert!(stitcher.rewrite(&mut junk).is_err());
    assert!(Stitcher::new(&init[..init.len() - 3]).is_err());
}
