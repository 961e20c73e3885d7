//! The init segment: `ftyp` and a `moov` that describes one H.264 track and holds no
//! samples (they all come in fragments).

use super::boxes::BoxWriter;
use super::{Mp4Error, TIMESCALE, TRACK_ID};
use crate::encode::h264::ParameterSets;

/// What the init segment describes: picture size and the stream's parameter sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub width: u32,
    pub height: u32,
    pub parameter_sets: ParameterSets,
}

/// The unity matrix of `mvhd` and `tkhd` (16.16 and 2.30 fixed point).
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Builds the init segment. Times and durations are zero: the file is fragmented, so
/// players take the duration from the fragments, and a fixed init segment (no
/// creation time) makes segments with the same track byte-identical up front, which is
/// how [`super::Stitcher`] knows their fragments can be joined.
pub fn init_segment(track: &TrackInfo) -> Result<Vec<u8>, Mp4Error> {
    let (width, height) = match (u16::try_from(track.width), u16::try_from(track.height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
        _ => {
            return Err(Mp4Error::BadTrack(format!(
                "picture size {}x{} does not fit an MP4 sample entry",
                track.width, track.height
            )));
        }
    };
    let sets = &track.parameter_sets;
    let sps_len = u16::try_from(sets.sps.len());
    let pps_len = u16::try_from(sets.pps.len());
    let (Ok(sps_len), Ok(pps_len)) = (sps_len, pps_len) else {
        return Err(Mp4Error::BadTrack(
            "SPS or PPS is longer than 65535 bytes".to_string(),
        ));
    };
    if sets.sps.len() < 4 || sets.pps.is_empty() {
        return Err(Mp4Error::BadTrack("SPS or PPS is too short".to_string()));
    }

    let mut w = BoxWriter::with_capacity(700 + sets.sps.len() + sets.pps.len());
    w.boxed(b"ftyp", |w| {
        w.bytes(b"iso5");
        w.u32(512);
        for brand in [b"iso5", b"iso6", b"avc1", b"mp41"] {
            w.bytes(brand);
        }
    });
    w.boxed(b"moov", |w| {
        w.full_box(b"mvhd", 0, 0, |w| {
            w.u32(0); // creation time
            w.u32(0); // modification time
            w.u32(TIMESCALE);
            w.u32(0); // duration: unknown, fragmented
            w.u32(0x0001_0000); // rate 1.0
            w.u16(0x0100); // volume 1.0
            w.zeros(10);
            MATRIX.iter().for_each(|&m| w.u32(m));
            w.zeros(24); // pre_defined
            w.u32(TRACK_ID + 1); // next track id
        });
        w.boxed(b"trak", |w| {
            // Flags: enabled, in movie.
            w.full_box(b"tkhd", 0, 0x3, |w| {
                w.u32(0);
                w.u32(0);
                w.u32(TRACK_ID);
                w.u32(0);
                w.u32(0); // duration
                w.zeros(8);
                w.u16(0); // layer
                w.u16(0); // alternate group
                w.u16(0); // volume: video has none
                w.u16(0);
                MATRIX.iter().for_each(|&m| w.u32(m));
                w.u32(u32::from(width) << 16);
                w.u32(u32::from(height) << 16);
            });
            w.boxed(b"mdia", |w| {
                w.full_box(b"mdhd", 0, 0, |w| {
                    w.u32(0);
                    w.u32(0);
                    w.u32(TIMESCALE);
                    w.u32(0);
                    w.u16(0x55c4); // language "und", packed ISO 639-2
                    w.u16(0);
                });
                w.full_box(b"hdlr", 0, 0, |w| {
                    w.u32(0);
                    w.bytes(b"vide");
                    w.zeros(12);
                    w.bytes(b"ME_CAM video\0");
                });
                w.boxed(b"minf", |w| {
                    w.full_box(b"vmhd", 0, 1, |w| w.zeros(8));
                    w.boxed(b"dinf", |w| {
                        w.full_box(b"dref", 0, 0, |w| {
                            w.u32(1);
                            // Flag 1: the media data is in this file.
                            w.full_box(b"url ", 0, 1, |_| {});
                        });
                    });
                    w.boxed(b"stbl", |w| {
                        w.full_box(b"stsd", 0, 0, |w| {
                            w.u32(1);
                            avc1(w, width, height, sets, sps_len, pps_len);
                        });
                        // No samples here; they are in the fragments.
                        w.full_box(b"stts", 0, 0, |w| w.u32(0));
                        w.full_box(b"stsc", 0, 0, |w| w.u32(0));
                        w.full_box(b"stsz", 0, 0, |w| w.zeros(8));
                        w.full_box(b"stco", 0, 0, |w| w.u32(0));
                    });
                });
            });
        });
        w.boxed(b"mvex", |w| {
            w.full_box(b"trex", 0, 0, |w| {
                w.u32(TRACK_ID);
                w.u32(1); // sample description index
                w.zeros(12); // default duration, size, flags: every trun sets its own
            });
        });
    });
    Ok(w.into_inner())
}

/// The `avc1` sample entry with its `avcC` decoder configuration record.
fn avc1(
    w: &mut BoxWriter,
    width: u16,
    height: u16,
    sets: &ParameterSets,
    sps_len: u16,
    pps_len: u16,
) {
    w.boxed(b"avc1", |w| {
        w.zeros(6);
        w.u16(1); // data reference index
        w.zeros(16);
        w.u16(width);
        w.u16(height);
        w.u32(0x0048_0000); // 72 dpi
        w.u32(0x0048_0000);
        w.u32(0);
        w.u16(1); // frames per sample
        let mut name = [0u8; 32];
        let text = b"ME_CAM H.264";
        name[0] = text.len() as u8;
        name[1..=text.len()].copy_from_slice(text);
        w.bytes(&name);
        w.u16(0x0018); // depth: colour, no alpha
        w.u16(0xffff); // pre_defined = -1
        w.boxed(b"avcC", |w| {
            w.u8(1); // configuration version
            w.u8(sets.profile_idc());
            w.u8(sets.constraint_flags());
            w.u8(sets.level_idc());
            w.u8(0xfc | 3); // 4-byte NAL lengths
            w.u8(0xe0 | 1); // one SPS
            w.u16(sps_len);
            w.bytes(&sets.sps);
            w.u8(1); // one PPS
            w.u16(pps_len);
            w.bytes(&sets.pps);
            if matches!(sets.profile_idc(), 100 | 110 | 122 | 144) {
                // High profiles add chroma format and bit depths. Every frame here is
                // 8-bit 4:2:0 I420, so these are constants rather than SPS fields.
                w.u8(0xfc | 1);
                w.u8(0xf8);
                w.u8(0xf8);
                w.u8(0); // no SPS extensions
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::boxes::{RawBox, boxes};
    use super::*;

    fn track() -> TrackInfo {
        TrackInfo {
            width: 640,
            height: 480,
            parameter_sets: ParameterSets {
                sps: Bytes::from_static(&[0x67, 66, 0xc0, 30, 0xda, 0x02]),
                pps: Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
            },
        }
    }

    /// Finds the box at `path` (e.g. `["moov", "trak"]`), checking on the way that
    /// every container's children exactly fill it.
    fn find<'a>(data: &'a [u8], path: &[&str]) -> RawBox<'a> {
        let (first, rest) = path.split_first().unwrap();
        let mut found = None;
        let mut total = 0;
        for b in boxes(data) {
            let b = b.unwrap();
            total += b.len;
            if b.kind == first.as_bytes() {
                found = Some(b);
            }
        }
        assert_eq!(total, data.len(), "children fill their parent");
        let b = found.unwrap_or_else(|| panic!("no {first} box"));
        if rest.is_empty() {
            b
        } else {
            find(b.body, rest)
        }
    }

    #[test]
    fn init_segment_has_the_expected_structure() {
        let init = init_segment(&track()).unwrap();
        assert_eq!(&init[4..12], b"ftypiso5");
        let ftyp = find(&init, &["ftyp"]);
        assert_eq!(ftyp.len, 8 + 8 + 16);
        for path in [
            &["moov", "mvhd"][..],
            &["moov", "trak", "tkhd"],
            &["moov", "trak", "mdia", "mdhd"],
            &["moov", "trak", "mdia", "hdlr"],
            &["moov", "trak", "mdia", "minf", "vmhd"],
            &["moov", "trak", "mdia", "minf", "dinf", "dref"],
            &["moov", "trak", "mdia", "minf", "stbl", "stts"],
            &["moov", "trak", "mdia", "minf", "stbl", "stsc"],
            &["moov", "trak", "mdia", "minf", "stbl", "stsz"],
            &["moov", "trak", "mdia", "minf", "stbl", "stco"],
            &["moov", "mvex", "trex"],
        ] {
            find(&init, path);
        }
        let mvhd = find(&init, &["moov", "mvhd"]);
        assert_eq!(mvhd.len, 108, "mvhd version 0 is 108 bytes");
        assert_eq!(&mvhd.body[12..16], &TIMESCALE.to_be_bytes());
        let tkhd = find(&init, &["moov", "trak", "tkhd"]);
        assert_eq!(tkhd.len, 92, "tkhd version 0 is 92 bytes");
        assert_eq!(
            &tkhd.body[76..84],
            &[2, 0x80, 0, 0, 1, 0xe0, 0, 0],
            "640x480 in 16.16"
        );
        let mdhd = find(&init, &["moov", "trak", "mdia", "mdhd"]);
        assert_eq!(&mdhd.body[12..16], &90_000u32.to_be_bytes());
        let trex = find(&init, &["moov", "mvex", "trex"]);
        assert_eq!(trex.len, 32);
    }

    #[test]
    fn avcc_carries_profile_level_and_parameter_sets() {
        let init = init_segment(&track()).unwrap();
        let stsd = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd"]);
        // stsd body: version/flags, entry count, then the avc1 entry.
        let avc1 = find(&stsd.body[8..], &["avc1"]);
        assert_eq!(avc1.len, 8 + 78 + 8 + 21, "avc1 header fields plus avcC");
        assert_eq!(&avc1.body[24..28], &[2, 0x80, 1, 0xe0], "640x480");
        let avcc = find(&avc1.body[78..], &["avcC"]);
        assert_eq!(
            avcc.body,
            [
                1, 66, 0xc0, 30, 0xff, 0xe1, 0, 6, 0x67, 66, 0xc0, 30, 0xda, 0x02, 1, 0, 4, 0x68,
                0xce, 0x3c, 0x80
            ]
        );
    }

    #[test]
    fn high_profile_avcc_has_the_chroma_extension() {
        let mut t = track();
        t.parameter_sets.sps = Bytes::from_static(&[0x67, 100, 0, 40, 0xac, 0x2b]);
        let init = init_segment(&t).unwrap();
        let stsd = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd"]);
        let avc1 = find(&stsd.body[8..], &["avc1"]);
        let avcc = find(&avc1.body[78..], &["avcC"]);
        assert_eq!(&avcc.body[..4], &[1, 100, 0, 40]);
        assert_eq!(&avcc.body[avcc.body.len() - 4..], &[0xfd, 0xf8, 0xf8, 0]);
    }

    #[test]
    fn init_segment_is_deterministic_and_rejects_bad_tracks() {
        assert_eq!(
            init_segment(&track()).unwrap(),
            init_segment(&track()).unwrap()
        );
        let mut t = track();
        t.width = 70_000;
        assert!(matches!(init_segment(&t), Err(Mp4Error::BadTrack(_))));
        let mut t = track();
        t.parameter_sets.sps = Bytes::from_static(&[0x67, 66]);
        assert!(matches!(init_segment(&t), Err(Mp4Error::BadTrack(_))));
    }
}
