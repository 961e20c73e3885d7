//! Reading `multipart/x-mixed-replace` live streams part by part.
//!
//! The service sends each frame as
//! `--BOUNDARY\r\nContent-Type: image/jpeg\r\nContent-Length: N\r\nX-Frame-Seq: S\r\n\r\n`
//! then N bytes and `\r\n`, and ends a stream it closes on purpose with
//! `--BOUNDARY--\r\n`. A stream that stops without that line was cut, not closed.

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use http::header::{self, HeaderMap};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::Error;
use crate::client::{Connection, within};

/// A part head larger than this is not one the service wrote.
const MAX_PART_HEAD: usize = 4096;
/// Nor is a frame larger than this (a 4096×4096 JPEG at top quality is well below).
const MAX_FRAME: usize = 64 << 20;

/// One JPEG from a live stream.
#[derive(Debug, Clone)]
pub struct MjpegFrame {
    pub data: Bytes,
    /// The part's `X-Frame-Seq`, the camera's frame number.
    pub seq: Option<u64>,
    /// When the frame's last byte arrived.
    pub arrived: Instant,
}

/// What the parser found next in the buffered bytes.
#[derive(Debug, PartialEq)]
pub enum Part {
    Frame {
        data: Bytes,
        seq: Option<u64>,
    },
    /// The closing `--BOUNDARY--`.
    End,
}

/// Splits a multipart byte stream into parts; feed it with [`PartParser::push`].
pub struct PartParser {
    delimiter: Vec<u8>,
    buf: BytesMut,
}

impl PartParser {
    pub fn new(boundary: &str) -> Self {
        Self {
            delimiter: format!("--{boundary}").into_bytes(),
            buf: BytesMut::new(),
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete part, or `None` until more bytes arrive.
    pub fn next_part(&mut self) -> Result<Option<Part>, Error> {
        // Blank lines before a delimiter are allowed by RFC 2046.
        while self.buf.starts_with(b"\r\n") {
            self.buf.advance(2);
        }
        let d = self.delimiter.len();
        if self.buf.len() < d + 2 {
            return self.check_prefix();
        }
        if !self.buf.starts_with(&self.delimiter) {
            return Err(self.unexpected("a boundary line"));
        }
        match &self.buf[d..d + 2] {
            b"--" => {
                self.buf.advance(d + 2);
                return Ok(Some(Part::End));
            }
            b"\r\n" => {}
            _ => return Err(self.unexpected("CRLF after the boundary")),
        }
        let Some(head_end) = find(&self.buf[d + 2..], b"\r\n\r\n").map(|at| d + 2 + at) else {
            if self.buf.len() > MAX_PART_HEAD {
                return Err(Error::Protocol("part head without an end".into()));
            }
            return Ok(None);
        };
        let head = std::str::from_utf8(&self.buf[d + 2..head_end])
            .map_err(|_| Error::Protocol("part head is not text".into()))?;
        let (len, seq) = parse_head(head)?;
        let body_start = head_end + 4;
        let total = body_start + len + 2;
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        if &self.buf[total - 2..total] != b"\r\n" {
            return Err(Error::Protocol(format!(
                "frame of Content-Length {len} is not followed by CRLF"
            )));
        }
        let part = self.buf.split_to(total).freeze();
        Ok(Some(Part::Frame {
            data: part.slice(body_start..body_start + len),
            seq,
        }))
    }

    /// With too few bytes to judge, still fail early on garbage.
    fn check_prefix(&self) -> Result<Option<Part>, Error> {
        let n = self.buf.len().min(self.delimiter.len());
        if self.buf[..n] == self.delimiter[..n] || self.buf[..] == b"\r"[..] {
            Ok(None)
        } else {
            Err(self.unexpected("a boundary line"))
        }
    }

    fn unexpected(&self, wanted: &str) -> Error {
        let shown = String::from_utf8_lossy(&self.buf[..self.buf.len().min(40)]).into_owned();
        Error::Protocol(format!("expected {wanted}, found {shown:?}"))
    }

    /// Bytes received but not yet part of a complete part.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

fn parse_head(head: &str) -> Result<(usize, Option<u64>), Error> {
    let (mut len, mut seq, mut jpeg) = (None, None, false);
    for line in head.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            return Err(Error::Protocol(format!("malformed part header {line:?}")));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = value.parse::<usize>().ok(),
            "x-frame-seq" => seq = value.parse::<u64>().ok(),
            "content-type" => jpeg = value.eq_ignore_ascii_case("image/jpeg"),
            _ => {}
        }
    }
    if !jpeg {
        return Err(Error::Protocol(format!("part is not image/jpeg: {head:?}")));
    }
    match len {
        Some(len) if len <= MAX_FRAME => Ok((len, seq)),
        _ => Err(Error::Protocol(format!(
            "part has no usable Content-Length: {head:?}"
        ))),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The boundary named by a `multipart/x-mixed-replace` content type.
pub fn boundary_of(content_type: &str) -> Option<&str> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind
        .trim()
        .eq_ignore_ascii_case("multipart/x-mixed-replace")
    {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
            .filter(|b| !b.is_empty())
    })
}

/// A live stream being read; each call to [`MjpegStream::next_frame`] waits for one frame.
pub struct MjpegStream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    parser: PartParser,
    /// How long to wait for the next frame before giving up.
    timeout: Duration,
    ended: bool,
    /// Keeps the connection's request side open for as long as the stream is read.
    _conn: Connection,
}

impl MjpegStream {
    pub(crate) fn new(
        res: http::Response<Incoming>,
        timeout: Duration,
        conn: Connection,
    ) -> Result<Self, Error> {
        let (parts, body) = res.into_parts();
        if parts.status != StatusCode::OK {
            return Err(Error::Protocol(format!("stream answered {}", parts.status)));
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let boundary = boundary_of(content_type).ok_or_else(|| {
            Error::Protocol(format!(
                "stream content type `{content_type}` is not multipart/x-mixed-replace with a boundary"
            ))
        })?;
        Ok(Self {
            status: parts.status,
            parser: PartParser::new(boundary),
            headers: parts.headers,
            body,
            timeout,
            ended: false,
            _conn: conn,
        })
    }

    /// The next frame; `Ok(None)` once the server has closed the stream properly (the
    /// closing boundary, then the end of the body). A stream that is cut, reset or
    /// malformed is an error, so tests can tell a clean close from a crash.
    pub async fn next_frame(&mut self) -> Result<Option<MjpegFrame>, Error> {
        if self.ended {
            return Ok(None);
        }
        let timeout = self.timeout;
        loop {
            match self.parser.next_part()? {
                Some(Part::Frame { data, seq }) => {
                    return Ok(Some(MjpegFrame {
                        data,
                        seq,
                        arrived: Instant::now(),
                    }));
                }
                Some(Part::End) => {
                    self.ended = true;
                    within(timeout, "end of the stream's body", self.finish()).await??;
                    return Ok(None);
                }
                None => {}
            }
            let frame = within(timeout, "next stream frame", self.body.frame()).await?;
            match frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.parser.push(data);
                    }
                }
                Some(Err(e)) => return Err(Error::Http(e)),
                None => {
                    return Err(Error::Protocol(format!(
                        "stream ended without the closing boundary ({} bytes of a part pending)",
                        self.parser.pending()
                    )));
                }
            }
        }
    }

    /// After the closing boundary the body must end normally (an epilogue is allowed).
    async fn finish(&mut self) -> Result<(), Error> {
        while let Some(frame) = self.body.frame().await {
            frame.map_err(Error::Http)?;
        }
        Ok(())
    }

    /// Every frame that arrives within `window`; stops early if the stream closes.
    pub async fn frames_for(&mut self, window: Duration) -> Result<Vec<MjpegFrame>, Error> {
        let deadline = tokio::time::Instant::now() + window;
        let mut frames = Vec::new();
        loop {
            let next = tokio::time::timeout_at(deadline, self.next_frame()).await;
            match next {
                Err(_window_over) => return Ok(frames),
                Ok(Ok(Some(frame))) => frames.push(frame),
                Ok(Ok(None)) => return Ok(frames),
                Ok(Err(e)) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(data: &[u8], seq: u64) -> Vec<u8> {
        let mut out = format!(
            "--mecamframe\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nX-Frame-Seq: {seq}\r\n\r\n",
            data.len()
        )
        .into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        out
    }

    #[test]
    fn parts_split_at_any_byte_are_reassembled() {
        let mut wire = part(b"\xff\xd8one\r\n--mecamframe\xff\xd9", 7);
        wire.extend(part(b"two", 8));
        wire.extend_from_slice(b"--mecamframe--\r\n");
        for split in 0..wire.len() {
            let mut p = PartParser::new("mecamframe");
            let mut parts = Vec::new();
            for chunk in [&wire[..split], &wire[split..]] {
                p.push(chunk);
                while let Some(part) = p.next_part().expect("well-formed stream") {
                    parts.push(part);
                }
            }
            assert_eq!(
                parts,
                vec![
                    Part::Frame {
                        data: Bytes::from_static(b"\xff\xd8one\r\n--mecamframe\xff\xd9"),
                        seq: Some(7)
                    },
                    Part::Frame {
                        data: Bytes::from_static(b"two"),
                        seq: Some(8)
                    },
                    Part::End,
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn malformed_streams_are_errors() {
        let mut p = PartParser::new("mecamframe");
        p.push(b"HTTP/1.1 200 OK\r\n");
        assert!(p.next_part().is_err());

        let mut p = PartParser::new("mecamframe");
        let mut wire = part(b"abc", 1);
        let crlf_at = wire.len() - 2; // the CRLF after the data
        wire[crlf_at] = b'x';
        p.push(&wire);
        assert!(p.next_part().is_err());

        let mut p = PartParser::new("mecamframe");
        p.push(b"--mecamframe\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx\r\n");
        assert!(p.next_part().is_err());
    }

    #[test]
    fn boundary_comes_from_the_content_type() {
        assert_eq!(
            boundary_of("multipart/x-mixed-replace; boundary=mecamframe"),
            Some("mecamframe")
        );
        assert_eq!(
            boundary_of("multipart/x-mixed-replace;boundary=\"b\""),
            Some("b")
        );
        assert_eq!(boundary_of("image/jpeg"), None);
        assert_eq!(boundary_of("multipart/x-mixed-replace"), None);
    }
}
