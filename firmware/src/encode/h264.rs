//! H.264 in software with OpenH264, for hosts without the Pi's encoder.
//!
//! Why OpenH264: it is field-proven (it is the H.264 of Firefox and WebRTC), BSD
//! licensed (x264 is faster but GPL), and the `openh264` crate bundles its source, so
//! it builds offline for every target. With `nasm` present it encodes 720p at 100+ fps
//! on one x86 core.
//!
//! The output matches what the Pi's V4L2 encoder produces, so the recorder cannot tell
//! them apart: one Annex B access unit per frame (4-byte start codes), constrained
//! baseline profile, and SPS + PPS repeated in front of every IDR frame so every GOP
//! decodes on its own. Keyframes come at a fixed interval (scene-change detection is
//! off), so fragments, and therefore seeking, are regular.
//!
//! The helpers at the end (NAL splitting, parameter sets, AVCC conversion) work on any
//! Annex B stream, from this encoder or from the hardware one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use openh264::OpenH264API;
use openh264::Timestamp;
use openh264::encoder::{
    BitRate, Complexity, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, SpsPpsStrategy, UsageType, VuiConfig,
};
use openh264::formats::YUVSource;

use super::{EncodeError, Encoder, Packet};
use crate::camera::Frame;

const NAME: &str = "openh264";

/// NAL unit types (H.264 table 7-1) this code cares about.
pub mod nal_type {
    pub const SLICE: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
}

/// What to encode and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Config {
    /// Frame size in pixels; even, as every I420 frame is.
    pub width: u32,
    pub height: u32,
    /// Nominal frame rate, for rate control. Real frame times come from the frames.
    pub fps: u32,
    /// Target bit rate in bits per second.
    pub bitrate: u32,
    /// Frames from one IDR frame to the next (the GOP length). A forced keyframe
    /// starts a new GOP of this length.
    pub keyframe_interval: u32,
}

impl H264Config {
    fn validate(&self) -> Result<(), EncodeError> {
        let problem = if self.width == 0 || self.height == 0 {
            Some(format!(
                "frame size {}x{} is empty",
                self.width, self.height
            ))
        } else if !self.width.is_multiple_of(2) || !self.height.is_multiple_of(2) {
            Some(format!(
                "frame size {}x{} is not even",
                self.width, self.height
            ))
        } else if self.width.max(self.height) > 3840 || self.width.min(self.height) > 2160 {
            Some(format!(
                "frame size {}x{} is larger than OpenH264 supports (3840x2160)",
                self.width, self.height
            ))
        } else if self.fps == 0 {
            Some("frame rate is 0".to_string())
        } else if self.bitrate == 0 || self.bitrate > i32::MAX as u32 {
            Some(format!("bit rate {} b/s is out of range", self.bitrate))
        } else if self.keyframe_interval == 0 {
            Some("keyframe interval is 0 frames".to_string())
        } else {
            None
        };
        match problem {
            Some(message) => Err(EncodeError::Failed {
                encoder: NAME,
                message,
            }),
            None => Ok(()),
        }
    }
}

/// Asks an encoder, possibly from another thread, to make its next frame an IDR frame
/// (event recording starts a segment with a keyframe instead of waiting for the GOP).
#[derive(Debug, Clone, Default)]
pub struct KeyframeRequest(Arc<AtomicBool>);

impl KeyframeRequest {
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

pub struct OpenH264 {
    config: H264Config,
    encoder: openh264::encoder::Encoder,
    keyframe_request: KeyframeRequest,
    /// Frames encoded since the last IDR frame; `None` before the first frame.
    since_idr: Option<u32>,
    /// Capture time of the first frame: OpenH264's rate control wants timestamps
    /// relative to the start of the stream.
    epoch: Option<Instant>,
    /// The last SPS and PPS seen, put in front of an IDR frame that lacks them.
    parameter_sets: Option<ParameterSets>,
    /// Reused assembly buffer; packets are copied out at their exact size.
    scratch: Vec<u8>,
}

impl OpenH264 {
    pub fn new(config: H264Config) -> Result<Self, EncodeError> {
        config.validate()?;
        let settings = EncoderConfig::new()
            .profile(Profile::Baseline)
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(config.bitrate))
            .max_frame_rate(FrameRate::from_hz(config.fps as f32))
            // Every frame must come out as a packet: the recorder's sample times and
            // the live view both assume one packet per captured frame.
            .skip_frames(false)
            // Regular GOPs: IDR frames only on the interval or when forced.
            .scene_change_detect(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(config.keyframe_interval))
            // The same SPS/PPS ids throughout, so every GOP matches the avcC record of
            // its segment and fragments of different segments can be stitched.
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .complexity(Complexity::Medium)
            // Say how to turn the pixels into colours: frames are full-range BT.601
            // (JFIF levels, see `camera::frame`); unsignalled, players guess limited
            // range, and BT.709 for HD sizes.
            .vui(VuiConfig::bt601().full_range(true))
            // One thread: encoding already runs on its own thread, and the Pi's cores
            // are shared with capture, detection and TLS.
            .num_threads(1);
        let encoder =
            openh264::encoder::Encoder::with_api_config(OpenH264API::from_source(), settings)
                .map_err(fail)?;
        Ok(Self {
            config,
            encoder,
            keyframe_request: KeyframeRequest::default(),
            since_idr: None,
            epoch: None,
            parameter_sets: None,
            scratch: Vec::new(),
        })
    }

    pub fn config(&self) -> &H264Config {
        &self.config
    }

    /// Makes the next encoded frame an IDR frame.
    pub fn force_keyframe(&mut self) {
        self.keyframe_request.request();
    }

    /// A handle that forces a keyframe from elsewhere, e.g. the event trigger while
    /// this encoder runs on its own thread.
    pub fn keyframe_request(&self) -> KeyframeRequest {
        self.keyframe_request.clone()
    }

    /// SPS and PPS of the stream, known after the first frame.
    pub fn parameter_sets(&self) -> Option<&ParameterSets> {
        self.parameter_sets.as_ref()
    }
}

impl Encoder for OpenH264 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn encode(&mut self, frame: &Frame) -> Result<Packet, EncodeError> {
        let (w, h) = (frame.image.width(), frame.image.height());
        if (w, h) != (self.config.width, self.config.height) {
            return Err(EncodeError::Failed {
                encoder: NAME,
                message: format!(
                    "frame is {w}x{h}, the encoder was set up for {}x{}",
                    self.config.width, self.config.height
                ),
            });
        }
        // We count the GOP ourselves as well as telling OpenH264 the period: a forced
        // keyframe then restarts the count, whatever the library does internally.
        let due = match self.since_idr {
            None => true,
            Some(n) => n + 1 >= self.config.keyframe_interval,
        };
        if self.keyframe_request.take() || due {
            self.encoder.force_intra_frame();
        }
        let epoch = *self.epoch.get_or_insert(frame.captured);
        let millis = frame.captured.saturating_duration_since(epoch).as_millis();
        // OpenH264 keeps milliseconds in an i64; clamp rather than panic in the crate.
        let timestamp = Timestamp::from_millis(
            u64::try_from(millis)
                .unwrap_or(u64::MAX)
                .min(i64::MAX as u64),
        );

        let stream = self
            .encoder
            .encode_at(&FrameYuv(frame), timestamp)
            .map_err(fail)?;
        let frame_type = stream.frame_type();
        self.scratch.clear();
        stream.write_vec(&mut self.scratch);
        let keyframe = match frame_type {
            FrameType::IDR => true,
            FrameType::I | FrameType::P | FrameType::IPMixed => false,
            FrameType::Skip | FrameType::Invalid => {
                return Err(EncodeError::Failed {
                    encoder: NAME,
                    message: format!("frame {} produced no picture ({frame_type:?})", frame.seq),
                });
            }
        };
        if self.scratch.is_empty() {
            return Err(EncodeError::Failed {
                encoder: NAME,
                message: format!("frame {} produced no data", frame.seq),
            });
        }

        let data = if keyframe {
            self.since_idr = Some(0);
            self.keyframe_access_unit()?
        } else {
            self.since_idr = self.since_idr.map(|n| n + 1);
            Bytes::copy_from_slice(&self.scratch)
        };
        Ok(Packet {
            seq: frame.seq,
            captured: frame.captured,
            wall: frame.wall,
            keyframe,
            data,
        })
    }
}

impl OpenH264 {
    /// The IDR frame in `scratch` as a self-contained access unit: SPS, PPS, then the
    /// slices. OpenH264 writes the parameter sets with each IDR frame already; this
    /// keeps that promise even if a future version stops doing so.
    fn keyframe_access_unit(&mut self) -> Result<Bytes, EncodeError> {
        if let Some(sets) = parameter_sets(&self.scratch) {
            self.parameter_sets = Some(sets);
        }
        let Some(sets) = &self.parameter_sets else {
            return Err(EncodeError::Failed {
                encoder: NAME,
                message: "the first IDR frame carries no SPS/PPS".to_string(),
            });
        };
        let mut out = Vec::with_capacity(self.scratch.len() + sets.sps.len() + sets.pps.len() + 8);
        for nal in [&sets.sps[..], &sets.pps[..]] {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
        for nal in nal_units(&self.scratch) {
            if !matches!(nal_type_of(nal), nal_type::SPS | nal_type::PPS) {
                out.extend_from_slice(&START_CODE);
                out.extend_from_slice(nal);
            }
        }
        Ok(Bytes::from(out))
    }
}

fn fail(e: openh264::Error) -> EncodeError {
    EncodeError::Failed {
        encoder: NAME,
        message: e.to_string(),
    }
}

/// A frame's planes as OpenH264 input, without copying.
struct FrameYuv<'a>(&'a Frame);

impl YUVSource for FrameYuv<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (
            self.0.image.width() as usize,
            self.0.image.height() as usize,
        )
    }

    fn strides(&self) -> (usize, usize, usize) {
        let w = self.0.image.width() as usize;
        (w, w / 2, w / 2)
    }

    fn y(&self) -> &[u8] {
        self.0.image.planes()[0]
    }

    fn u(&self) -> &[u8] {
        self.0.image.planes()[1]
    }

    fn v(&self) -> &[u8] {
        self.0.image.planes()[2]
    }
}

// ---------------------------------------------------------------------------------
// Annex B helpers
// ---------------------------------------------------------------------------------

/// The 4-byte Annex B start code, as the Pi's encoder and OpenH264 write it.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The type of a NAL unit (its first byte without the header bits).
pub fn nal_type_of(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// The NAL units of an Annex B buffer, without start codes. Accepts 3- and 4-byte start
/// codes; bytes before the first start code are ignored, as a decoder would.
pub fn nal_units(annex_b: &[u8]) -> NalUnits<'_> {
    let rest = match find_start_code(annex_b, 0) {
        Some(at) => &annex_b[at + 3..],
        None => &[],
    };
    NalUnits { rest }
}

/// Iterator returned by [`nal_units`].
pub struct NalUnits<'a> {
    /// Data after a start code, up to the end of the buffer.
    rest: &'a [u8],
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (nal, rest) = match find_start_code(self.rest, 0) {
                Some(at) => (&self.rest[..at], &self.rest[at + 3..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            // A NAL unit never ends in a zero byte (it ends with the RBSP stop bit);
            // trailing zeros are the leading byte of a 4-byte start code or padding.
            let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if end > 0 {
                return Some(&nal[..end]);
            }
        }
    }
}

/// Position of the next `00 00 01` at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 3 <= data.len() {
        // The classic skip: if the third byte is above 1, no start code can begin at
        // i, i+1 or i+2.
        let third = data[i + 2];
        if third > 1 {
            i += 3;
        } else if third == 1 && data[i] == 0 && data[i + 1] == 0 {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

/// The sequence and picture parameter sets of a stream: what an MP4 `avcC` record
/// holds, and what a decoder needs before the first IDR frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSets {
    /// The SPS NAL unit, header byte included, no start code.
    pub sps: Bytes,
    /// The PPS NAL unit, header byte included, no start code.
    pub pps: Bytes,
}

impl ParameterSets {
    /// `profile_idc` (66 baseline, 77 main, 100 high).
    pub fn profile_idc(&self) -> u8 {
        self.sps[1]
    }

    /// The constraint_set flags byte (`profile_compatibility` in `avcC`).
    pub fn constraint_flags(&self) -> u8 {
        self.sps[2]
    }

    /// `level_idc`, ten times the level (31 for 3.1).
    pub fn level_idc(&self) -> u8 {
        self.sps[3]
    }
}

/// The first SPS and PPS in an access unit, if it has both. An SPS too short to hold
/// profile and level is ignored.
pub fn parameter_sets(access_unit: &[u8]) -> Option<ParameterSets> {
    let mut sps = None;
    let mut pps = None;
    for nal in nal_units(access_unit) {
        match nal_type_of(nal) {
            nal_type::SPS if sps.is_none() && nal.len() >= 4 => sps = Some(nal),
            nal_type::PPS if pps.is_none() && nal.len() >= 2 => pps = Some(nal),
            // Parameter sets come before the pictures: no need to scan the slices.
            nal_type::SLICE..=nal_type::IDR => break,
            _ => {}
        }
    }
    Some(ParameterSets {
        sps: Bytes::copy_from_slice(sps?),
        pps: Bytes::copy_from_slice(pps?),
    })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NalError {
    #[error("the access unit holds no picture data (no slice NAL units)")]
    NoSlices,
    #[error("a NAL unit of {0} bytes is too large for a 4-byte length prefix")]
    TooLarge(usize),
}

/// Appends an Annex B access unit to `out` as an MP4 sample: each NAL unit with a
/// 4-byte big-endian length instead of a start code. Parameter sets and access unit
/// delimiters are left out: in MP4 they live in the sample description (`avcC`), and
/// keeping stale in-band copies is what confuses some players. Returns the number of
/// bytes appended.
pub fn to_avcc(access_unit: &[u8], out: &mut Vec<u8>) -> Result<usize, NalError> {
    let start = out.len();
    let mut slices = 0;
    for nal in nal_units(access_unit) {
        let kind = nal_type_of(nal);
        if matches!(kind, nal_type::SPS | nal_type::PPS | nal_type::AUD) {
            continue;
        }
        if (nal_type::SLICE..=nal_type::IDR).contains(&kind) {
            slices += 1;
        }
        let Ok(len) = u32::try_from(nal.len()) else {
            out.truncate(start);
            return Err(NalError::TooLarge(nal.len()));
        };
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    if slices == 0 {
        out.truncate(start);
        return Err(NalError::NoSlices);
    }
    Ok(out.len() - start)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::record::fmp4::testing::{TestScene, ffmpeg_decodes, ffprobe};

    fn config(width: u32, height: u32, keyframe_interval: u32) -> H264Config {
        H264Config {
            width,
            height,
            fps: 30,
            bitrate: 1_000_000,
            keyframe_interval,
        }
    }

    /// Encodes `count` frames at 30 fps; `before` runs before each frame is encoded.
    fn encode(
        enc: &mut OpenH264,
        scene: &TestScene,
        count: u64,
        mut before: impl FnMut(u64, &mut OpenH264),
    ) -> Vec<Packet> {
        (0..count)
            .map(|i| {
                before(i, enc);
                let frame = scene.frame(i, Duration::from_secs(1) * i as u32 / 30);
                enc.encode(&frame).unwrap()
            })
            .collect()
    }

    fn types(au: &[u8]) -> Vec<u8> {
        nal_units(au).map(nal_type_of).collect()
    }

    fn keyframes(packets: &[Packet]) -> Vec<usize> {
        (0..packets.len())
            .filter(|&i| packets[i].keyframe)
            .collect()
    }

    #[test]
    fn h264_keyframes_on_the_interval_carry_parameter_sets() {
        let scene = TestScene::new(160, 120, 1);
        let mut enc = OpenH264::new(config(160, 120, 30)).unwrap();
        let packets = encode(&mut enc, &scene, 91, |_, _| {});
        assert_eq!(keyframes(&packets), [0, 30, 60, 90]);
        for (i, p) in packets.iter().enumerate() {
            assert!(p.data.starts_with(&START_CODE), "frame {i} is Annex B");
            assert_eq!(p.seq, i as u64);
            let t = types(&p.data);
            if p.keyframe {
                assert_eq!(&t[..2], [nal_type::SPS, nal_type::PPS], "frame {i}: {t:?}");
                assert!(
                    t[2..].iter().all(|&n| n == nal_type::IDR),
                    "frame {i}: {t:?}"
                );
            } else {
                assert!(
                    t.iter()
                        .all(|&n| n == nal_type::SLICE || n == nal_type::SEI)
                        && t.contains(&1),
                    "frame {i}: {t:?}"
                );
            }
        }
        let sets = enc.parameter_sets().unwrap();
        assert_eq!(sets.profile_idc(), 66, "baseline");
        assert_ne!(sets.constraint_flags() & 0x40, 0, "constrained baseline");
        assert_eq!(parameter_sets(&packets[60].data).as_ref(), Some(sets));
    }

    #[test]
    fn h264_forced_keyframe_restarts_the_gop() {
        let scene = TestScene::new(160, 120, 2);
        let mut enc = OpenH264::new(config(160, 120, 30)).unwrap();
        let request = enc.keyframe_request();
        let packets = encode(&mut enc, &scene, 100, |i, enc| match i {
            45 => request.request(),
            80 => enc.force_keyframe(),
            _ => {}
        });
        assert_eq!(keyframes(&packets), [0, 30, 45, 75, 80]);
    }

    #[test]
    fn h264_stream_decodes_and_every_gop_decodes_alone() {
        let scene = TestScene::new(320, 240, 3);
        let mut enc = OpenH264::new(config(320, 240, 20)).unwrap();
        let packets = encode(&mut enc, &scene, 60, |_, _| {});
        let dir = tempfile::tempdir().unwrap();

        let all = dir.path().join("all.h264");
        std::fs::write(
            &all,
            packets
                .iter()
                .flat_map(|p| p.data.to_vec())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let probe = ffprobe(&all);
        assert_eq!(probe.codec, "h264");
        assert_eq!(probe.profile, "Constrained Baseline");
        assert_eq!((probe.width, probe.height), (320, 240));
        assert_eq!(probe.frames.len(), 60);
        assert_eq!(probe.keyframes(), [0, 20, 40]);
        ffmpeg_decodes(&all);

        // The second GOP on its own, as a fragment read after a crash would be.
        let gop = dir.path().join("gop.h264");
        std::fs::write(
            &gop,
            packets[20..40]
                .iter()
                .flat_map(|p| p.data.to_vec())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(ffprobe(&gop).frames.len(), 20);
        ffmpeg_decodes(&gop);
    }

    #[test]
    fn h264_rejects_bad_configs_and_frames() {
        for bad in [
            config(0, 120, 30),
            config(161, 120, 30),
            config(4096, 2304, 30),
            config(160, 120, 0),
            H264Config {
                fps: 0,
                ..config(160, 120, 30)
            },
            H264Config {
                bitrate: 0,
                ..config(160, 120, 30)
            },
        ] {
            assert!(OpenH264::new(bad).is_err(), "{bad:?} must be refused");
        }
        let mut enc = OpenH264::new(config(160, 120, 30)).unwrap();
        let frame = TestScene::new(320, 240, 1).frame(0, Duration::ZERO);
        let err = enc.encode(&frame).unwrap_err().to_string();
        assert!(err.contains("320x240") && err.contains("160x120"), "{err}");
    }

    #[test]
    fn h264_nal_units_split_on_three_and_four_byte_start_codes() {
        let data = [
            0xff, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 0, 0, 0, 0,
        ];
        let nals: Vec<&[u8]> = nal_units(&data).collect();
        assert_eq!(nals, [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4]]);
        assert_eq!(
            nal_units(&[1, 2, 3]).count(),
            0,
            "no start code, no NAL units"
        );
        assert_eq!(
            nal_units(&[0, 0, 1, 0, 0, 1]).count(),
            0,
            "empty NAL units are skipped"
        );
    }

    #[test]
    fn h264_parameter_sets_and_avcc() {
        let au = [
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 0, 1, 0x67, 66, 0xc0, 31, 0xaa, // SPS
            0, 0, 0, 1, 0x68, 0xce, // PPS
            0, 0, 1, 0x06, 5, 1, 0x80, // SEI
            0, 0, 0, 1, 0x65, 0x88, 0x84, // IDR
        ];
        let sets = parameter_sets(&au).unwrap();
        assert_eq!(&sets.sps[..], [0x67, 66, 0xc0, 31, 0xaa]);
        assert_eq!(&sets.pps[..], [0x68, 0xce]);
        assert_eq!(
            (
                sets.profile_idc(),
                sets.constraint_flags(),
                sets.level_idc()
            ),
            (66, 0xc0, 31)
        );

        let mut out = vec![0xee];
        assert_eq!(to_avcc(&au, &mut out), Ok(15));
        assert_eq!(
            out,
            [
                0xee, 0, 0, 0, 4, 0x06, 5, 1, 0x80, 0, 0, 0, 3, 0x65, 0x88, 0x84
            ]
        );

        let no_picture = [0, 0, 0, 1, 0x67, 66, 0xc0, 31, 0, 0, 0, 1, 0x68, 0xce];
        assert_eq!(
            parameter_sets(&no_picture[..9]),
            None,
            "an SPS alone is not enough"
        );
        assert_eq!(to_avcc(&no_picture, &mut out), Err(NalError::NoSlices));
        assert_eq!(out.len(), 16, "nothing appended on error");
    }

    /// Not a check: prints the encode speed. Run with
    /// `cargo test --release -p mecam h264_encode_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn h264_encode_speed_720p() {
        let scene = TestScene::new(1280, 720, 4);
        let mut enc = OpenH264::new(H264Config {
            width: 1280,
            height: 720,
            fps: 30,
            bitrate: 3_000_000,
            keyframe_interval: 60,
        })
        .unwrap();
        let frames: u32 = 300;
        let mut busy = Duration::ZERO;
        let mut bytes = 0;
        for i in 0..frames {
            let frame = scene.frame(u64::from(i), Duration::from_secs(1) * i / 30);
            let start = Instant::now();
            bytes += enc.encode(&frame).unwrap().data.len();
            busy += start.elapsed();
        }
        println!(
            "openh264 1280x720: {frames} frames in {busy:?} = {:.1} fps, {:.2} Mbit/s at 30 fps",
            f64::from(frames) / busy.as_secs_f64(),
            bytes as f64 * 8.0 / (f64::from(frames) / 30.0) / 1e6
        );
    }
}
