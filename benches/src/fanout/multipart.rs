//! Reading `multipart/x-mixed-replace` as the live view sends it: each part is the
//! boundary line, headers with `Content-Length`, `X-Frame-Seq` and `X-Timestamp`, a
//! blank line, the JPEG, then CRLF; `--boundary--` ends the stream. Parts arrive split across any
//! number of body chunks, so the parser buffers until a part is complete.

use anyhow::{Context, Result, bail};
use bytes::{Buf, Bytes, BytesMut};

/// Part headers beyond this size mean we are not reading what we think we are.
const MAX_HEAD: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The server's frame number (`X-Frame-Seq`), if it sent one.
    pub seq: Option<u64>,
    /// Capture wall time in µs since the Unix epoch (`X-Timestamp: 1795000000.123456`).
    pub captured_us: Option<i64>,
    pub jpeg: Bytes,
}

pub struct Parser {
    delimiter: String,
    close_delimiter: String,
    buf: BytesMut,
    state: State,
}

enum State {
    Head,
    Body {
        len: usize,
        seq: Option<u64>,
        captured_us: Option<i64>,
    },
    Closed,
}

impl Parser {
    pub fn new(boundary: &str) -> Self {
        Self {
            delimiter: format!("--{boundary}"),
            close_delimiter: format!("--{boundary}--"),
            buf: BytesMut::new(),
            state: State::Head,
        }
    }

    /// Whether the closing boundary has been seen.
    pub fn closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Feeds the next body chunk; appends the parts it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Part>) -> Result<()> {
        if self.closed() {
            return Ok(());
        }
        self.buf.extend_from_slice(chunk);
        loop {
            match self.state {
                State::Head => {
                    let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                        // The closing delimiter has no blank line after it.
                        if self.buf.starts_with(self.close_delimiter.as_bytes()) {
                            self.state = State::Closed;
                            return Ok(());
                        }
                        if self.buf.len() > MAX_HEAD {
                            bail!("no end of part headers in {} bytes", self.buf.len());
                        }
                        return Ok(());
                    };
                    let head = self.buf.split_to(end + 4);
                    self.state = self.parse_head(&head)?;
                }
                State::Body {
                    len,
                    seq,
                    captured_us,
                } => {
                    if self.buf.len() < len + 2 {
                        return Ok(());
                    }
                    let jpeg = self.buf.split_to(len).freeze();
                    if &self.buf[..2] != b"\r\n" {
                        bail!("part of {len} bytes is not followed by CRLF");
                    }
                    self.buf.advance(2);
                    out.push(Part {
                        seq,
                        captured_us,
                        jpeg,
                    });
                    self.state = State::Head;
                }
                State::Closed => return Ok(()),
            }
        }
    }

    fn parse_head(&self, head: &[u8]) -> Result<State> {
        let text = std::str::from_utf8(head).context("part headers are not UTF-8")?;
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or_default();
        if first == self.close_delimiter {
            return Ok(State::Closed);
        }
        if first != self.delimiter {
            bail!("expected `{}`, found `{first}`", self.delimiter);
        }
        let (mut len, mut seq, mut captured_us) = (None, None, None);
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once(':')
                .with_context(|| format!("malformed part header `{line}`"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                len = Some(value.parse().context("part Content-Length")?);
            } else if name.eq_ignore_ascii_case("x-frame-seq") {
                seq = Some(value.parse().context("part X-Frame-Seq")?);
            } else if name.eq_ignore_ascii_case("x-timestamp") {
                captured_us = Some(parse_timestamp(value)?);
            }
        }
        let len = len.context("part without Content-Length")?;
        Ok(State::Body {
            len,
            seq,
            captured_us,
        })
    }
}

/// `SECONDS.FRACTION` (as mjpg-streamer writes it) to microseconds.
pub fn parse_timestamp(value: &str) -> Result<i64> {
    let bad = || format!("part X-Timestamp `{value}` is not SECONDS.FRACTION");
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().with_context(bad)?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        bail!(bad());
    }
    let micros: i64 = format!("{frac:0<6}")[..6].parse().with_context(bad)?;
    Ok(secs * 1_000_000 + micros)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        for (seq, body) in [
            (7u64, &b"\xFF\xD8abc\xFF\xD9"[..]),
            (8, b"\xFF\xD8\r\n\r\n\xFF\xD9"),
        ] {
            s.extend_from_slice(
                format!(
                    "--mecamframe\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nX-Frame-Seq: {seq}\r\nX-Timestamp: 1795000000.{seq:06}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            s.extend_from_slice(body);
            s.extend_from_slice(b"\r\n");
        }
        s.extend_from_slice(b"--mecamframe--\r\n");
        s
    }

    #[test]
    fn parts_survive_any_chunking() {
        let s = stream();
        for chunk in [1, 2, 7, 64, s.len()] {
            let mut p = Parser::new("mecamframe");
            let mut parts = Vec::new();
            for c in s.chunks(chunk) {
                p.push(c, &mut parts).unwrap();
            }
            assert_eq!(parts.len(), 2, "chunk size {chunk}");
            assert_eq!(parts[0].seq, Some(7));
            assert_eq!(parts[0].captured_us, Some(1_795_000_000_000_007));
            assert_eq!(&parts[0].jpeg[..], b"\xFF\xD8abc\xFF\xD9");
            assert_eq!(
                &parts[1].jpeg[..],
                b"\xFF\xD8\r\n\r\n\xFF\xD9",
                "a body may contain CRLFCRLF"
            );
            assert!(p.closed(), "chunk size {chunk}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("12.5").unwrap(), 12_500_000);
        assert_eq!(parse_timestamp("12.000001").unwrap(), 12_000_001);
        assert_eq!(parse_timestamp("12.1234567").unwrap(), 12_123_456);
        assert_eq!(parse_timestamp("12").unwrap(), 12_000_000);
        assert!(parse_timestamp("12.-5").is_err());
        assert!(parse_timestamp("soon").is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        let mut p = Parser::new("mecamframe");
        let err = p
            .push(
                b"--other\r\nContent-Length: 1\r\n\r\nx\r\n",
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("expected `--mecamframe`"), "{err}");
        let mut p = Parser::new("mecamframe");
        assert!(
            p.push(b"--mecamframe\r\nX-Frame-Seq: 1\r\n\r\n", &mut Vec::new())
                .is_err()
        );
    }
}
