//! ISO BMFF box writing and reading: just enough for our own fragmented MP4.
//!
//! A box is a 32-bit big-endian size (header included), a four-character type, and a
//! body; a "full box" adds a version byte and 24 bits of flags. The writer nests boxes
//! with closures and fills in each size when its closure returns, so sizes cannot go
//! stale when a box's contents change.

use super::Mp4Error;

#[derive(Debug, Default)]
pub(super) struct BoxWriter {
    buf: Vec<u8>,
}

impl BoxWriter {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Writes a box of type `kind` whose body is whatever `body` writes.
    ///
    /// Callers keep every box below 4 GiB (fragments are capped far lower, see
    /// `Mp4Error::FragmentTooLarge`); a larger one is a bug, not bad input.
    pub fn boxed(&mut self, kind: &[u8; 4], body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.u32(0);
        self.bytes(kind);
        body(self);
        let size = u32::try_from(self.buf.len() - start)
            .expect("box sizes are bounded by the callers' limits");
        self.patch_u32(start, size);
    }

    /// A full box: version and flags, then the body.
    pub fn full_box(
        &mut self,
        kind: &[u8; 4],
        version: u8,
        flags: u32,
        body: impl FnOnce(&mut Self),
    ) {
        self.boxed(kind, |w| {
            w.u32(u32::from(version) << 24 | (flags & 0x00ff_ffff));
            body(w);
        });
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// Where the next byte goes, to patch a field that is only known later.
    pub fn position(&self) -> usize {
        self.buf.len()
    }

    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// One box found by [`Boxes`]: its type, where it starts in the parent slice, its
/// total length and its body.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawBox<'a> {
    pub kind: [u8; 4],
    pub offset: usize,
    pub len: usize,
    /// Offset of the body from the box's start (8, or 16 with a 64-bit size).
    pub header_len: usize,
    pub body: &'a [u8],
}

/// The boxes laid end to end in `data`. Yields an error, then stops, at a box whose
/// header or body runs past the end (a file cut short by a power failure).
pub(super) struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

pub(super) fn boxes(data: &[u8]) -> Boxes<'_> {
    Boxes {
        data,
        pos: 0,
        failed: false,
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<RawBox<'a>, Mp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let item = self.read_one();
        match &item {
            Ok(b) => self.pos += b.len,
            Err(_) => self.failed = true,
        }
        Some(item)
    }
}

impl<'a> Boxes<'a> {
    fn read_one(&self) -> Result<RawBox<'a>, Mp4Error> {
        let rest = &self.data[self.pos..];
        let truncated = |need: usize| Mp4Error::Truncated {
            offset: self.pos,
            need,
            have: rest.len(),
        };
        if rest.len() < 8 {
            return Err(truncated(8));
        }
        let size32 = read_u32(rest, 0);
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let (len, header_len) = match size32 {
            // Size 0: the box runs to the end of the data.
            0 => (rest.len(), 8),
            // Size 1: a 64-bit size follows the type.
            1 => {
                if rest.len() < 16 {
                    return Err(truncated(16));
                }
                let size = usize::try_from(read_u64(rest, 8)).map_err(|_| truncated(usize::MAX))?;
                (size, 16)
            }
            n => (n as usize, 8),
        };
        if len < header_len {
            return Err(Mp4Error::Malformed(format!(
                "box '{}' at byte {} claims {len} bytes, less than its header",
                String::from_utf8_lossy(&kind),
                self.pos
            )));
        }
        if len > rest.len() {
            return Err(truncated(len));
        }
        Ok(RawBox {
            kind,
            offset: self.pos,
            len,
            header_len,
            body: &rest[header_len..len],
        })
    }
}

/// Big-endian reads at a position the caller has bounds-checked.
pub(super) fn read_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

pub(super) fn read_u64(data: &[u8], at: usize) -> u64 {
    (u64::from(read_u32(data, at)) << 32) | u64::from(read_u32(data, at + 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_box_sizes_are_filled_in() {
        let mut w = BoxWriter::default();
        w.boxed(b"abcd", |w| {
            w.u8(1);
            w.boxed(b"efgh", |w| w.u32(7));
        });
        assert_eq!(
            w.into_inner(),
            [
                0, 0, 0, 21, b'a', b'b', b'c', b'd', 1, //
                0, 0, 0, 12, b'e', b'f', b'g', b'h', 0, 0, 0, 7,
            ]
        );
    }

    #[test]
    fn full_box_has_version_and_flags() {
        let mut w = BoxWriter::default();
        w.full_box(b"tfhd", 1, 0x02_0000, |w| w.u32(1));
        assert_eq!(
            w.into_inner(),
            [0, 0, 0, 16, b't', b'f', b'h', b'd', 1, 2, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn reader_walks_boxes_and_stops_at_a_cut() {
        let mut w = BoxWriter::default();
        w.boxed(b"one ", |w| w.u32(1));
        w.boxed(b"two ", |w| w.zeros(100));
        let data = w.into_inner();
        let found: Vec<_> = boxes(&data).collect::<Result<_, _>>().unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            (&found[1].kind, found[1].offset, found[1].len),
            (b"two ", 12, 108)
        );
        assert_eq!(found[1].body.len(), 100);

        let cut = &data[..50];
        let mut it = boxes(cut);
        assert!(it.next().unwrap().is_ok());
        let err = it.next().unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                Mp4Error::Truncated {
                    offset: 12,
                    need: 108,
                    have: 38
                }
            ),
            "{err}"
        );
        assert!(it.next().is_none(), "the reader stops after an error");
    }

    #[test]
    fn reader_rejects_a_size_below_the_header() {
        let data = [0, 0, 0, 4, b'b', b'a', b'd', b' '];
        assert!(matches!(
            boxes(&data).next(),
            Some(Err(Mp4Error::Malformed(_)))
        ));
    }

    #[test]
    fn reader_understands_64_bit_sizes() {
        let mut data = vec![0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 20];
        data.extend_from_slice(&[9, 9, 9, 9]);
        let b = boxes(&data).next().unwrap().unwrap();
        assert_eq!((b.len, b.header_len, b.body), (20, 16, &[9u8, 9, 9, 9][..]));
    }
}
