//! Hand-written HTTP/1.1 over a bare TLS stream, for requests a well-behaved client
//! library refuses to send (oversized heads) and clients that misbehave on purpose.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Error;
use crate::client::within;

/// A response head is never larger than this; stop reading there.
const MAX_HEAD: usize = 64 * 1024;

/// Sends `request` as is and returns the response head (status line and headers) as
/// text. A server that closes without a blank line yields what it sent before closing.
pub async fn exchange<S>(stream: &mut S, request: &[u8], timeout: Duration) -> Result<String, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    within(timeout, "raw HTTP exchange", async {
        stream.write_all(request).await?;
        stream.flush().await?;
        let mut head = Vec::new();
        let mut chunk = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            match stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
                // A server that answers then closes without TLS close_notify is common
                // after an error response; what it sent still counts.
                Err(_) if !head.is_empty() => break,
                Err(e) => return Err(e.into()),
            }
        }
        let end = head
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(head.len(), |at| at + 4);
        Ok(String::from_utf8_lossy(&head[..end]).into_owned())
    })
    .await?
}

/// The status code of a response head (`HTTP/1.1 431 ...` → 431).
pub fn status_of(head: &str) -> Option<u16> {
    let mut words = head.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_come_from_the_status_line() {
        assert_eq!(
            status_of("HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n"),
            Some(431)
        );
        assert_eq!(status_of("garbage"), None);
        assert_eq!(status_of(""), None);
    }
}
