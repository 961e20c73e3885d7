//! `GET /api/v1/live.mjpg`: the live view as `multipart/x-mixed-replace`, the format
//! browsers, VLC, Home Assistant and Frigate all read.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::AppState;
use super::body::{BodySender, ChannelBody};
use crate::encode::Packet;
use crate::runtime;

pub const BOUNDARY: &str = "mecamframe";
const CRLF: Bytes = Bytes::from_static(b"\r\n");
const END: Bytes = Bytes::from_static(b"--mecamframe--\r\n");

/// Starts streaming the live bus to one client, at most `max_fps` frames a second.
pub fn stream(state: &Rc<AppState>, max_fps: Option<f64>) -> ChannelBody {
    // Three chunks make one frame (part header, JPEG, CRLF): room for one frame only,
    // so a client that stops reading holds one frame, never a queue of them.
    let (tx, body) = ChannelBody::new(3);
    let state = Rc::clone(state);
    let min_interval = max_fps.map(|fps| Duration::from_secs_f64(1.0 / fps));
    runtime::spawn(async move {
        let _client = state.live_clients.enter();
        let frames = state.bus.subscribe();
        let shutdown = state.shutdown.clone();
        run(tx, frames, shutdown, min_interval, state.write_timeout).await;
    });
    body
}

async fn run(
    tx: BodySender,
    mut frames: watch::Receiver<Option<Packet>>,
    mut shutdown: watch::Receiver<bool>,
    min_interval: Option<Duration>,
    write_timeout: Duration,
) {
    // Send the current frame straight away, so a viewer sees a picture at once.
    frames.mark_changed();
    let mut next_at = Instant::now();
    loop {
        if let Some(wait) = next_at.checked_duration_since(Instant::now()) {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
        }
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            changed = frames.changed() => if changed.is_err() { break },
        }
        let Some(packet) = frames.borrow_and_update().clone() else {
            continue;
        };
        if let Some(min) = min_interval {
            next_at = Instant::now() + min;
        }
        // X-Timestamp (capture wall time, as mjpg-streamer writes it) lets clients
        // and benchmarks measure capture-to-client latency.
        let captured = packet
            .wall
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let header = format!(
            "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nX-Frame-Seq: {}\r\nX-Timestamp: {}.{:06}\r\n\r\n",
            packet.data.len(),
            packet.seq,
            captured.as_secs(),
            captured.subsec_micros()
        );
        for chunk in [Bytes::from(header), packet.data, CRLF] {
            match tokio::time::timeout(write_timeout, tx.send(chunk)).await {
                Ok(Ok(())) => {}
                Ok(Err(_gone)) => return,
                Err(_elapsed) => {
                    tracing::info!(
                        "live client dropped: it took no frame for {}s",
                        write_timeout.as_secs()
                    );
                    tx.abort();
                    return;
                }
            }
        }
    }
    // Shutting down or the camera stopped: close the multipart stream properly.
    let _ = tokio::time::timeout(Duration::from_millis(500), tx.send(END)).await;
}

/// Parses the optional `fps` query parameter.
pub fn parse_fps(query: Option<&str>, camera_fps: u32) -> Result<Option<f64>, String> {
    let Some(value) = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("fps="))
    else {
        return Ok(None);
    };
    match value.parse::<f64>() {
        Ok(fps) if (0.1..=120.0).contains(&fps) => Ok((fps < f64::from(camera_fps)).then_some(fps)),
        _ => Err(format!(
            "`fps` is `{value}`; expected a number from 0.1 to 120"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fps_query_is_validated() {
        assert_eq!(parse_fps(None, 25), Ok(None));
        assert_eq!(parse_fps(Some("a=1"), 25), Ok(None));
        assert_eq!(parse_fps(Some("fps=5"), 25), Ok(Some(5.0)));
        assert_eq!(parse_fps(Some("x=y&fps=0.5"), 25), Ok(Some(0.5)));
        assert_eq!(
            parse_fps(Some("fps=60"), 25),
            Ok(None),
            "above the camera: no cap"
        );
        for bad in ["fps=0", "fps=-1", "fps=abc", "fps=NaN", "fps=1000", "fps="] {
            assert!(parse_fps(Some(bad), 25).is_err(), "{bad}");
        }
    }
}
