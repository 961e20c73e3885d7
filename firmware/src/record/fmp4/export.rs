//! Reading segments back: finding the complete fragments of a file (start-up
//! reconciliation after a power cut) and stitching fragments of one or more segments
//! into a single playable stream (export, playback across segment boundaries).

use super::Mp4Error;
use super::boxes::boxes;
use super::fragment::{FragmentInfo, parse_fragment};

/// What [`scan`] found in a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of the init segment (`ftyp` + `moov`).
    pub init_len: usize,
    pub fragments: Vec<FragmentInfo>,
    /// Bytes up to the end of the last complete fragment: truncating the file here
    /// leaves a file that plays to its last whole GOP.
    pub complete_len: usize,
}

/// Walks a segment file and lists its complete fragments. Stops, without an error, at
/// the first fragment that is cut short or damaged, which is what a power cut during a
/// write leaves; an init segment that is missing or damaged is an error, since nothing
/// in the file can be played without it.
pub fn scan(data: &[u8]) -> Result<Scan, Mp4Error> {
    let init_len = init_len(data)?;
    let mut fragments = Vec::new();
    let mut pos = init_len;
    while pos < data.len() {
        let Ok(parsed) = parse_fragment(&data[pos..]) else {
            break;
        };
        fragments.push(FragmentInfo {
            sequence: parsed.sequence,
            offset: pos as u64,
            len: parsed.len as u64,
            decode_time: parsed.decode_time,
            duration: parsed.duration,
            samples: parsed.samples,
            starts_with_keyframe: parsed.starts_with_keyframe,
        });
        pos += parsed.len;
    }
    Ok(Scan {
        init_len,
        fragments,
        complete_len: pos,
    })
}

/// Length of the `ftyp` + `moov` at the start of `data`.
fn init_len(data: &[u8]) -> Result<usize, Mp4Error> {
    let mut it = boxes(data);
    match (it.next(), it.next()) {
        (Some(Ok(ftyp)), Some(Ok(moov))) if &ftyp.kind == b"ftyp" && &moov.kind == b"moov" => {
            Ok(ftyp.len + moov.len)
        }
        (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
        _ => Err(Mp4Error::Malformed(
            "a segment starts with 'ftyp' and 'moov'".into(),
        )),
    }
}

/// Joins fragments into one stream behind one init segment. Sequence numbers are
/// renumbered from 1 and decode times made continuous from 0, so a player sees one
/// unbroken recording: gaps between segments (nothing recorded) are closed up.
///
/// Fragments are rewritten in place, one at a time, so an export of any length streams
/// in constant memory.
#[derive(Debug, Clone)]
pub struct Stitcher {
    init: Vec<u8>,
    next_sequence: u32,
    next_decode_time: u64,
    /// Bytes of output so far, init segment included: the next fragment's offset.
    written: u64,
}

impl Stitcher {
    /// `init` is the init segment of the first segment; it starts the output.
    pub fn new(init: &[u8]) -> Result<Self, Mp4Error> {
        let len = init_len(init)?;
        if len != init.len() {
            return Err(Mp4Error::Malformed(format!(
                "init segment is {} bytes, its boxes {len}",
                init.len()
            )));
        }
        Ok(Self {
            init: init.to_vec(),
            next_sequence: 1,
            next_decode_time: 0,
            written: init.len() as u64,
        })
    }

    /// The bytes that start the output.
    pub fn init_segment(&self) -> &[u8] {
        &self.init
    }

    /// Checks that fragments of a segment with this init segment can follow. Our init
    /// segments depend only on picture size and SPS/PPS, so equal bytes mean the
    /// fragments decode with the same configuration.
    pub fn check_init(&self, init: &[u8]) -> Result<(), Mp4Error> {
        if init == self.init.as_slice() {
            Ok(())
        } else {
            Err(Mp4Error::TrackMismatch)
        }
    }

    /// Renumbers one fragment (`moof` + `mdat`, exactly) for the output and returns
    /// where it now sits in the output (byte offset, for HTTP Range answers) and on
    /// the output's timeline. Fragments must be written out in the order rewritten.
    pub fn rewrite(&mut self, fragment: &mut [u8]) -> Result<FragmentInfo, Mp4Error> {
        let parsed = parse_fragment(fragment)?;
        if parsed.len != fragment.len() {
            return Err(Mp4Error::Malformed(format!(
                "fragment is {} bytes but its boxes end at {}",
                fragment.len(),
                parsed.len
            )));
        }
        let (sequence, decode_time) = (self.next_sequence, self.next_decode_time);
        let at = parsed.decode_time_at;
        if parsed.decode_time_64 {
            fragment[at..at + 8].copy_from_slice(&decode_time.to_be_bytes());
        } else {
            let t = u32::try_from(decode_time).map_err(|_| {
                Mp4Error::Malformed("32-bit 'tfdt' cannot hold the export's time".into())
            })?;
            fragment[at..at + 4].copy_from_slice(&t.to_be_bytes());
        }
        let at = parsed.sequence_at;
        fragment[at..at + 4].copy_from_slice(&sequence.to_be_bytes());
        self.next_sequence = sequence.wrapping_add(1).max(1);
        self.next_decode_time = decode_time + parsed.duration;
        let offset = self.written;
        self.written += parsed.len as u64;
        Ok(FragmentInfo {
            sequence,
            offset,
            len: parsed.len as u64,
            decode_time,
            duration: parsed.duration,
            samples: parsed.samples,
            starts_with_keyframe: parsed.starts_with_keyframe,
        })
    }

    /// Decode time where the next fragment will start: the output's duration so far.
    pub fn duration_ticks(&self) -> u64 {
        self.next_decode_time
    }

    /// Bytes of output so far, init segment included.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }
}

/// One stream from `init` and `fragments` (each a `moof` + `mdat`, possibly from
/// different segments with the same init segment), in memory. For long exports use a
/// [`Stitcher`] directly and stream.
pub fn export<'a>(
    init: &[u8],
    fragments: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, Mp4Error> {
    let mut stitcher = Stitcher::new(init)?;
    let mut out = init.to_vec();
    for fragment in fragments {
        let start = out.len();
        out.extend_from_slice(fragment);
        stitcher.rewrite(&mut out[start..])?;
    }
    Ok(out)
}
