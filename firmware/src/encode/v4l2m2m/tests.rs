//! The M2M state machine against a scripted fake device.

use std::collections::VecDeque;

use super::*;

/// A device whose progress the test drives: nothing completes until `finish` says so.
#[derive(Default)]
struct FakeDevice {
    in_device: VecDeque<(usize, u64, bool)>,
    done_inputs: Vec<usize>,
    outputs: VecDeque<Encoded>,
    restarts: u32,
    forced: Vec<u64>,
}

impl FakeDevice {
    /// The device finishes its `n` oldest inputs; outputs come back in `order`.
    fn finish(&mut self, n: usize, reverse: bool) {
        let mut done: Vec<_> = (0..n).filter_map(|_| self.in_device.pop_front()).collect();
        if reverse {
            done.reverse();
        }
        for (slot, ts, force) in done {
            self.done_inputs.push(slot);
            self.outputs.push_back(Encoded {
                timestamp_us: ts,
                keyframe: force,
                data: Bytes::from(ts.to_le_bytes().to_vec()),
            });
        }
    }
}

impl M2mDevice for FakeDevice {
    fn queue_input(&mut self, slot: usize, ts: u64, force: bool) -> Result<(), DeviceError> {
        assert!(
            !self.in_device.iter().any(|(s, _, _)| *s == slot),
            "slot {slot} queued twice"
        );
        if force {
            self.forced.push(ts);
        }
        self.in_device.push_back((slot, ts, force));
        Ok(())
    }
    fn reclaim_inputs(&mut self) -> Result<Vec<usize>, DeviceError> {
        Ok(std::mem::take(&mut self.done_inputs))
    }
    fn next_output(&mut self, _wait: Duration) -> Result<Option<Encoded>, DeviceError> {
        Ok(self.outputs.pop_front())
    }
    fn restart(&mut self) -> Result<(), DeviceError> {
        self.restarts += 1;
        self.in_device.clear();
        self.done_inputs.clear();
        self.outputs.clear();
        Ok(())
    }
}

const STALL: Duration = Duration::from_millis(500);

fn submit(enc: &mut M2mEncoder<FakeDevice>, seq: u64, t0: Instant, at_ms: u64) -> Submitted {
    let now = t0 + Duration::from_millis(at_ms);
    enc.submit(seq, now, SystemTime::UNIX_EPOCH, seq * 40_000, now)
        .expect("fake never fails")
}

#[test]
fn outputs_are_matched_to_frames_by_timestamp() {
    let t0 = Instant::now();
    let mut enc = M2mEncoder::new(FakeDevice::default(), 3, STALL);
    for seq in 0..3 {
        assert_eq!(submit(&mut enc, seq, t0, seq * 40), Submitted::Queued);
    }
    enc.device.finish(3, false);
    let packets = enc.collect(Duration::ZERO).unwrap();
    let seqs: Vec<_> = packets.iter().map(|p| p.seq).collect();
    assert_eq!(seqs, [0, 1, 2]);
    for p in &packets {
        assert_eq!(p.data.as_ref(), (p.seq * 40_000).to_le_bytes());
        assert_eq!(p.captured, t0 + Duration::from_millis(p.seq * 40));
    }
}

#[test]
fn starved_device_skips_frames_instead_of_queueing_more() {
    let t0 = Instant::now();
    let mut enc = M2mEncoder::new(FakeDevice::default(), 2, STALL);
    assert_eq!(submit(&mut enc, 0, t0, 0), Submitted::Queued);
    assert_eq!(submit(&mut enc, 1, t0, 40), Submitted::Queued);
    assert_eq!(submit(&mut enc, 2, t0, 80), Submitted::Starved);
    assert_eq!(enc.stats().starved, 1);
    // One buffer comes back: the next frame goes in again.
    enc.device.finish(1, false);
    assert_eq!(submit(&mut enc, 3, t0, 120), Submitted::Queued);
    let seqs: Vec<_> = enc
        .collect(Duration::ZERO)
        .unwrap()
        .iter()
        .map(|p| p.seq)
        .collect();
    assert_eq!(seqs, [0]);
}

#[test]
fn late_output_keeps_its_own_frame() {
    let t0 = Instant::now();
    let mut enc = M2mEncoder::new(FakeDevice::default(), 4, STALL);
    for seq in 0..3 {
        submit(&mut enc, seq, t0, seq * 40);
    }
    // Frame 0's output arrives after frames 1 and 2.
    enc.device.finish(3, true);
    let packets = enc.collect(Duration::ZERO).unwrap();
    let got: Vec<_> = packets.iter().map(|p| (p.seq, p.captured)).collect();
    let want: Vec<_> = (0..3)
        .map(|s| (s, t0 + Duration::from_millis(s * 40)))
        .collect();
    assert_eq!(got, want);
    // An output for a timestamp never queued is dropped and counted.
    enc.device.outputs.push_back(Encoded {
        timestamp_us: 7,
        keyframe: false,
        data: Bytes::new(),
    });
    assert!(enc.collect(Duration::ZERO).unwrap().is_empty());
    assert_eq!(enc.stats().unmatched_outputs, 1);
}

#[test]
fn stalled_encoder_is_restarted_and_resumes_with_a_keyframe() {
    let t0 = Instant::now();
    let mut enc = M2mEncoder::new(FakeDevice::default(), 2, STALL);
    submit(&mut enc, 0, t0, 0);
    submit(&mut enc, 1, t0, 40);
    // Within the timeout: starved, not restarted.
    assert_eq!(submit(&mut enc, 2, t0, 400), Submitted::Starved);
    assert_eq!(enc.device.restarts, 0);
    // Past it: restarted, every slot free again, next frame forced to a keyframe.
    assert_eq!(submit(&mut enc, 3, t0, 600), Submitted::Queued);
    assert_eq!(enc.device.restarts, 1);
    assert_eq!(enc.stats().restarts, 1);
    assert_eq!(enc.device.forced, [3 * 40_000]);
    enc.device.finish(1, false);
    let packets = enc.collect(Duration::ZERO).unwrap();
    assert_eq!(packets.len(), 1);
    assert!(packets[0].keyframe && packets[0].seq == 3);
}

#[test]
fn forced_keyframe_applies_to_the_next_frame_only() {
    let t0 = Instant::now();
    let mut enc = M2mEncoder::new(FakeDevice::default(), 4, STALL);
    submit(&mut enc, 0, t0, 0);
    enc.force_keyframe();
    submit(&mut enc, 1, t0, 40);
    submit(&mut enc, 2, t0, 80);
    assert_eq!(enc.device.forced, [40_000]);
}

#[test]
fn hardware_limit_is_1920_per_side() {
    assert!(fits_hardware(1920, 1080));
    assert!(fits_hardware(1920, 1920));
    assert!(!fits_hardware(2592, 1944));
}
