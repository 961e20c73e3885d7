//! Reading `text/event-stream` (Server-Sent Events) responses message by message, as
//! a browser's `EventSource` or `curl -N` would.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::client::within;
use crate::{Client, Error};

/// A message longer than this is not one the service wrote.
const MAX_MESSAGE: usize = 1 << 20;

/// One dispatched message: its `event` (default `message`), `id` and `data` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct SseMessage {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// An open event stream on its own HTTP/1.1 connection.
pub struct SseStream {
    /// Kept so the connection is not wound down while the stream is read.
    _sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    body: Incoming,
    buf: BytesMut,
    /// Every line the server sent so far, comments included, for failure messages.
    transcript: String,
}

impl SseStream {
    /// `GET path` with `client`'s credentials; fails unless the answer is 200 with
    /// `Content-Type: text/event-stream`.
    pub async fn open(client: &Client, path: &str) -> Result<Self, Error> {
        let timeout = Duration::from_secs(10);
        let tls = client.raw().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::get(path)
            .header(header::HOST, client.authority())
            .header(header::ACCEPT, "text/event-stream");
        if let Some((name, value)) = client.auth().header() {
            req = req.header(name, value);
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::Protocol(format!("cannot build GET {path}: {e}")))?;
        let res = within(timeout, &format!("GET {path}"), sender.send_request(req)).await??;
        let content_type = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if res.status() != StatusCode::OK || !content_type.starts_with("text/event-stream") {
            let status = res.status();
            let body = res
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            return Err(Error::Protocol(format!(
                "GET {path}: {status}, Content-Type `{content_type}`: {body}"
            )));
        }
        Ok(Self {
            _sender: sender,
            body: res.into_body(),
            buf: BytesMut::new(),
            transcript: String::new(),
        })
    }

    /// The next message (comments and `retry:` lines are skipped), waiting at most
    /// `timeout`; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<SseMessage>, Error> {
        within(timeout, "the next server-sent event", async {
            loop {
                if let Some(message) = self.parse()? {
                    return Ok(Some(message));
                }
                match self.body.frame().await {
                    None => return Ok(None),
                    Some(frame) => {
                        if let Ok(data) = frame?.into_data() {
                            self.buf.extend_from_slice(&data);
                        }
                    }
                }
                if self.buf.len() > MAX_MESSAGE {
                    return Err(Error::Protocol(format!(
                        "an event-stream message over {MAX_MESSAGE} bytes"
                    )));
                }
            }
        })
        .await?
    }

    /// Everything received so far, as text.
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    /// Takes one complete message (up to a blank line) out of the buffer, if there is
    /// one with at least a `data` line.
    fn parse(&mut self) -> Result<Option<SseMessage>, Error> {
        loop {
            let text = &self.buf[..];
            let Some(end) = find_blank_line(text) else {
                return Ok(None);
            };
            let block = String::from_utf8(text[..end.0].to_vec())
                .map_err(|_| Error::Protocol("an event-stream message is not UTF-8".into()))?;
            self.buf.advance(end.1);
            self.transcript.push_str(&block);
            self.transcript.push_str("\n\n");
            let mut message = SseMessage {
                event: "message".into(),
                id: None,
                data: String::new(),
            };
            let mut has_data = false;
            for line in block.lines() {
                if line.starts_with(':') {
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => message.event = value.to_owned(),
                    "id" => message.id = Some(value.to_owned()),
                    "data" => {
                        if has_data {
                            message.data.push('\n');
                        }
                        message.data.push_str(value);
                        has_data = true;
                    }
                    _ => {}
                }
            }
            if has_data {
                return Ok(Some(message));
            }
        }
    }
}

/// The end of the first message in `text` and where the next one starts: a blank line
/// (`\n\n`, `\r\n\r\n` or `\r\r`).
fn find_blank_line(text: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < text.len() {
        for sep in [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"] {
            if text[i..].starts_with(sep) {
                return Some((i, i + sep.len()));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_end_messages() {
        assert_eq!(find_blank_line(b"data: x\n\nrest"), Some((7, 9)));
        assert_eq!(find_blank_line(b"data: x\r\n\r\n"), Some((7, 11)));
        assert_eq!(find_blank_line(b"data: x\n"), None);
    }
}
