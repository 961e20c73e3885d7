//! Media fragments: `moof` (`mfhd`, `traf` with `tfhd`, `tfdt`, `trun`) + `mdat`.
//!
//! One fragment holds one GOP. Its `trun` lists every sample's duration, size and
//! flags, and its `tfdt` gives the decode time of its first sample, so a fragment read
//! on its own (after a power cut, or picked out of the index for playback) still knows
//! where it sits on the timeline.

use std::time::Duration;

use super::boxes::{BoxWriter, RawBox, boxes, read_u32, read_u64};
use super::{MAX_FRAGMENT_BYTES, Mp4Error, TIMESCALE, TRACK_ID};

/// tfhd flag: data offsets count from the start of the `moof` (required by the
/// `iso5` brand; lets a fragment move between files without rewriting offsets).
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// Most samples one `trun` may hold: far above any GOP (an hour at 120 fps).
const MAX_TRUN_SAMPLES: u32 = 1 << 20;

/// trun flags: data offset, then per sample duration, size and flags.
const TRUN_DATA_OFFSET: u32 = 0x001;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x004;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_CTS: u32 = 0x800;
/// Sample flags: a sync sample depends on no other; a non-sync one depends on others
/// and has `sample_is_non_sync_sample` set.
const SYNC_SAMPLE: u32 = 0x0200_0000;
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;
const IS_NON_SYNC: u32 = 0x0001_0000;

/// One sample of a fragment; its bytes (AVCC) are in the fragment's data, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleEntry {
    /// In [`TIMESCALE`] ticks.
    pub duration: u32,
    pub size: u32,
    pub keyframe: bool,
}

/// Where a fragment is and what time it covers: what the index stores per fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    /// `mfhd` sequence number, from 1 in each segment.
    pub sequence: u32,
    /// Byte offset of the fragment's `moof` in its segment file.
    pub offset: u64,
    /// Bytes of `moof` + `mdat`.
    pub len: u64,
    /// Decode time of the first sample, in ticks from the segment's start.
    pub decode_time: u64,
    /// Sum of the sample durations, in ticks.
    pub duration: u64,
    pub samples: u32,
    /// True when the first sample is a keyframe, so playback can start here. Only a
    /// GOP longer than the fragment limits gives a fragment that does not.
    pub starts_with_keyframe: bool,
}

impl FragmentInfo {
    /// Start time from the segment's start.
    pub fn start(&self) -> Duration {
        ticks_to_duration(self.decode_time)
    }

    pub fn duration_time(&self) -> Duration {
        ticks_to_duration(self.duration)
    }

    /// Decode time just after the last sample, in ticks.
    pub fn end_ticks(&self) -> u64 {
        self.decode_time + self.duration
    }
}

/// [`TIMESCALE`] ticks, rounded to the nearest.
pub fn duration_to_ticks(d: Duration) -> u64 {
    let ticks = (d.as_nanos() * u128::from(TIMESCALE) + 500_000_000) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

pub fn ticks_to_duration(ticks: u64) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(TIMESCALE);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Writes one fragment: `moof` describing `samples`, then `mdat` holding `data`,
/// which must be the samples' bytes back to back.
pub fn write_fragment(
    sequence: u32,
    decode_time: u64,
    samples: &[SampleEntry],
    data: &[u8],
) -> Result<Vec<u8>, Mp4Error> {
    if samples.is_empty() {
        return Err(Mp4Error::Malformed(
            "a fragment needs at least one sample".into(),
        ));
    }
    let total: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
    if total != data.len() as u64 {
        return Err(Mp4Error::Malformed(format!(
            "sample sizes add up to {total} bytes but the data is {} bytes",
            data.len()
        )));
    }
    if data.len() > MAX_FRAGMENT_BYTES {
        return Err(Mp4Error::FragmentTooLarge(data.len()));
    }
    let sample_count = u32::try_from(samples.len())
        .map_err(|_| Mp4Error::Malformed(format!("{} samples in one fragment", samples.len())))?;

    let mut w = BoxWriter::with_capacity(120 + 12 * samples.len() + data.len());
    let mut data_offset_at = 0;
    w.boxed(b"moof", |w| {
        w.full_box(b"mfhd", 0, 0, |w| w.u32(sequence));
        w.boxed(b"traf", |w| {
            w.full_box(b"tfhd", 0, DEFAULT_BASE_IS_MOOF, |w| w.u32(TRACK_ID));
            w.full_box(b"tfdt", 1, 0, |w| w.u64(decode_time));
            let flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS;
            w.full_box(b"trun", 0, flags, |w| {
                w.u32(sample_count);
                data_offset_at = w.position();
                w.u32(0); // patched below, once the moof's size is known
                for s in samples {
                    w.u32(s.duration);
                    w.u32(s.size);
                    w.u32(if s.keyframe {
                        SYNC_SAMPLE
                    } else {
                        NON_SYNC_SAMPLE
                    });
                }
            });
        });
    });
    // The samples start right after the mdat header that follows the moof.
    let data_offset = w.position() + 8;
    w.patch_u32(data_offset_at, data_offset as u32);
    w.boxed(b"mdat", |w| w.bytes(data));
    Ok(w.into_inner())
}

/// What [`parse_fragment`] learns from a fragment, and where its renumberable fields are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ParsedFragment {
    pub sequence: u32,
    /// Byte position of the `mfhd` sequence number.
    pub sequence_at: usize,
    pub decode_time: u64,
    /// Byte position of the `tfdt` decode time, and whether it is 64-bit.
    pub decode_time_at: usize,
    pub decode_time_64: bool,
    pub duration: u64,
    pub samples: u32,
    pub starts_with_keyframe: bool,
    /// Bytes of `moof` + `mdat`.
    pub len: usize,
}

/// Parses the fragment at the start of `data`: a `moof` and the `mdat` right after it.
/// Bytes after the `mdat` are ignored (`len` says where the fragment ends).
pub(super) fn parse_fragment(data: &[u8]) -> Result<ParsedFragment, Mp4Error> {
    let mut it = boxes(data);
    let moof = match it.next() {
        Some(Ok(b)) if &b.kind == b"moof" => b,
        Some(Ok(b)) => {
            return Err(Mp4Error::Malformed(format!(
                "a fragment starts with 'moof', not '{}'",
                String::from_utf8_lossy(&b.kind)
            )));
        }
        Some(Err(e)) => return Err(e),
        None => return Err(Mp4Error::Malformed("empty fragment".into())),
    };
    let mdat = match it.next() {
        Some(Ok(b)) if &b.kind == b"mdat" => b,
        Some(Err(e)) => return Err(e),
        _ => {
            return Err(Mp4Error::Malformed(
                "a 'moof' is not followed by 'mdat'".into(),
            ));
        }
    };

    let mut sequence = None;
    let mut traf = None;
    for b in boxes(moof.body) {
        let b = b?;
        match &b.kind {
            b"mfhd" => {
                need(&b, 8, "mfhd")?;
                let at = moof.header_len + b.offset + b.header_len + 4;
                sequence = Some((read_u32(b.body, 4), at));
            }
            b"traf" if traf.is_some() => {
                return Err(Mp4Error::Malformed(
                    "more than one track in a fragment".into(),
                ));
            }
            b"traf" => traf = Some(b),
            _ => {}
        }
    }
    let (Some((sequence, sequence_at)), Some(traf)) = (sequence, traf) else {
        return Err(Mp4Error::Malformed("'moof' lacks 'mfhd' or 'traf'".into()));
    };
    let traf_body_at = moof.header_len + traf.offset + traf.header_len;
    let t = parse_traf(traf.body, traf_body_at)?;
    if t.sizes > mdat.body.len() as u64 {
        return Err(Mp4Error::Malformed(format!(
            "'trun' describes {} bytes of samples, 'mdat' holds {}",
            t.sizes,
            mdat.body.len()
        )));
    }
    Ok(ParsedFragment {
        sequence,
        sequence_at,
        decode_time: t.decode_time,
        decode_time_at: t.decode_time_at,
        decode_time_64: t.decode_time_64,
        duration: t.duration,
        samples: t.samples,
        starts_with_keyframe: t.starts_with_keyframe,
        len: moof.len + mdat.len,
    })
}

struct Traf {
    decode_time: u64,
    decode_time_at: usize,
    decode_time_64: bool,
    duration: u64,
    sizes: u64,
    samples: u32,
    starts_with_keyframe: bool,
}

/// Reads `tfhd` defaults, `tfdt` and every `trun` of a track fragment. `body_at` is the
/// body's position in the whole fragment, to report where `tfdt`'s field is.
fn parse_traf(body: &[u8], body_at: usize) -> Result<Traf, Mp4Error> {
    let mut default_duration = 0;
    let mut default_size = 0;
    let mut default_flags = 0;
    let mut tfdt = None;
    let mut samples = 0u32;
    let mut duration = 0u64;
    let mut sizes = 0u64;
    let mut first_flags = None;
    for b in boxes(body) {
        let b = b?;
        match &b.kind {
            b"tfhd" => {
                need(&b, 8, "tfhd")?;
                let flags = read_u32(b.body, 0) & 0x00ff_ffff;
                let mut at = 8;
                let mut field = |present: bool, len: usize| -> Result<Option<u32>, Mp4Error> {
                    if !present {
                        return Ok(None);
                    }
                    need(&b, at + len, "tfhd")?;
                    let v = (len == 4).then(|| read_u32(b.body, at));
                    at += len;
                    Ok(v)
                };
                field(flags & 0x01 != 0, 8)?; // base data offset
                field(flags & 0x02 != 0, 4)?; // sample description index
                default_duration = field(flags & 0x08 != 0, 4)?.unwrap_or(0);
                default_size = field(flags & 0x10 != 0, 4)?.unwrap_or(0);
                default_flags = field(flags & 0x20 != 0, 4)?.unwrap_or(0);
            }
            b"tfdt" => {
                need(&b, 8, "tfdt")?;
                let at = body_at + b.offset + b.header_len + 4;
                tfdt = Some(if b.body[0] == 1 {
                    need(&b, 12, "tfdt")?;
                    (read_u64(b.body, 4), at, true)
                } else {
                    (u64::from(read_u32(b.body, 4)), at, false)
                });
            }
            b"trun" => {
                need(&b, 8, "trun")?;
                let flags = read_u32(b.body, 0) & 0x00ff_ffff;
                let count = read_u32(b.body, 4);
                let mut at = 8;
                if flags & TRUN_DATA_OFFSET != 0 {
                    at += 4;
                }
                let mut first_sample_flags = None;
                if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
                    need(&b, at + 4, "trun")?;
                    first_sample_flags = Some(read_u32(b.body, at));
                    at += 4;
                }
                let fields = [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTS]
                    .iter()
                    .filter(|&&f| flags & f != 0)
                    .count();
                let per_sample = 4 * fields;
                // A trun without per-sample fields costs no bytes per sample, so its
                // count is bounded by nothing in the file: cap it (a GOP is a few
                // hundred frames) instead of looping over billions.
                if count > MAX_TRUN_SAMPLES {
                    return Err(Mp4Error::Malformed(format!(
                        "'trun' claims {count} samples, more than {MAX_TRUN_SAMPLES}"
                    )));
                }
                need(&b, at + per_sample * count as usize, "trun")?;
                for i in 0..count as usize {
                    let mut p = at + i * per_sample;
                    let mut next = |present: bool, default: u32| {
                        if present {
                            let v = read_u32(b.body, p);
                            p += 4;
                            v
                        } else {
                            default
                        }
                    };
                    duration += u64::from(next(flags & TRUN_DURATION != 0, default_duration));
                    sizes += u64::from(next(flags & TRUN_SIZE != 0, default_size));
                    let sample_flags = next(flags & TRUN_FLAGS != 0, default_flags);
                    if first_flags.is_none() {
                        first_flags = Some(first_sample_flags.unwrap_or(sample_flags));
                    }
                }
                samples = samples.saturating_add(count);
            }
            _ => {}
        }
    }
    let Some((decode_time, decode_time_at, decode_time_64)) = tfdt else {
        return Err(Mp4Error::Malformed("'traf' lacks 'tfdt'".into()));
    };
    if samples == 0 {
        return Err(Mp4Error::Malformed("fragment without samples".into()));
    }
    Ok(Traf {
        decode_time,
        decode_time_at,
        decode_time_64,
        duration,
        sizes,
        samples,
        starts_with_keyframe: first_flags.is_some_and(|f| f & IS_NON_SYNC == 0),
    })
}

fn need(b: &RawBox<'_>, len: usize, what: &str) -> Result<(), Mp4Error> {
    if b.body.len() < len {
        return Err(Mp4Error::Malformed(format!(
            "'{what}' is {} bytes, too short for its fields",
            b.body.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_samples() -> Vec<u8> {
        let samples = [
            SampleEntry {
                duration: 3000,
                size: 3,
                keyframe: true,
            },
            SampleEntry {
                duration: 3003,
                size: 2,
                keyframe: false,
            },
        ];
        write_fragment(7, 0x1_0000_0002, &samples, &[1, 2, 3, 4, 5]).unwrap()
    }

    #[test]
    fn tiny_fragment_has_the_known_bytes() {
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0, 0, 0, 112][..], b"moof",
              &[0, 0, 0, 16], b"mfhd", &[0, 0, 0, 0], &[0, 0, 0, 7],
              &[0, 0, 0, 88], b"traf",
                &[0, 0, 0, 16], b"tfhd", &[0, 2, 0, 0], &[0, 0, 0, 1],
                &[0, 0, 0, 20], b"tfdt", &[1, 0, 0, 0], &[0, 0, 0, 1, 0, 0, 0, 2],
                &[0, 0, 0, 44], b"trun", &[0, 0, 7, 1], &[0, 0, 0, 2], &[0, 0, 0, 120],
                  &[0, 0, 0x0b, 0xb8], &[0, 0, 0, 3], &[2, 0, 0, 0],
                  &[0, 0, 0x0b, 0xbb], &[0, 0, 0, 2], &[1, 1, 0, 0],
            &[0, 0, 0, 13], b"mdat", &[1, 2, 3, 4, 5],
        ]
        .concat();
        let got = two_samples();
        assert_eq!(got, expected);
        assert_eq!(
            got[120], 1,
            "the data offset points at the first sample byte"
        );
    }

    #[test]
    fn parse_reads_back_what_write_wrote() {
        let data = two_samples();
        let p = parse_fragment(&data).unwrap();
        assert_eq!(
            p,
            ParsedFragment {
                sequence: 7,
                sequence_at: 20,
                decode_time: 0x1_0000_0002,
                decode_time_at: 60,
                decode_time_64: true,
                duration: 6003,
                samples: 2,
                starts_with_keyframe: true,
                len: 125,
            }
        );
        assert_eq!(&data[20..24], &[0, 0, 0, 7]);
        assert_eq!(&data[60..68], &[0, 0, 0, 1, 0, 0, 0, 2]);
    }

    #[test]
    fn parse_rejects_damaged_fragments() {
        let data = two_samples();
        assert!(matches!(
            parse_fragment(&data[..100]),
            Err(Mp4Error::Truncated { .. })
        ));
        assert!(matches!(
            parse_fragment(&data[..112]),
            Err(Mp4Error::Malformed(_))
        ));
        let mut bad = data.clone();
        bad[4..8].copy_from_slice(b"free");
        assert!(matches!(parse_fragment(&bad), Err(Mp4Error::Malformed(_))));
        // A trun that claims more samples than it has bytes for.
        let mut bad = data.clone();
        bad[83] = 200;
        assert!(matches!(parse_fragment(&bad), Err(Mp4Error::Malformed(_))));
        // A trun with no per-sample fields claiming four billion samples (found by
        // the fmp4_scan fuzzer: it used to loop for minutes).
        let mut bad = data.clone();
        let trun = bad.windows(4).position(|w| w == b"trun").unwrap() + 4;
        bad[trun..trun + 4].copy_from_slice(&[0, 0, 0, 1]);
        bad[trun + 4..trun + 8].copy_from_slice(&[0xff; 4]);
        assert!(matches!(parse_fragment(&bad), Err(Mp4Error::Malformed(_))));
    }

    #[test]
    fn write_checks_its_inputs() {
        assert!(write_fragment(1, 0, &[], &[]).is_err());
        let s = SampleEntry {
            duration: 1,
            size: 4,
            keyframe: true,
        };
        assert!(write_fragment(1, 0, &[s], &[1, 2, 3]).is_err());
    }

    #[test]
    fn ticks_round_trip() {
        assert_eq!(duration_to_ticks(Duration::from_millis(1000)), 90_000);
        assert_eq!(duration_to_ticks(Duration::from_nanos(33_366_667)), 3003);
        assert_eq!(ticks_to_duration(3003), Duration::from_nanos(33_366_666));
    }
}
