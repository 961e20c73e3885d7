//! One live viewer: streams `/api/v1/live.mjpg` like a browser tab and counts what
//! arrives. Viewers share a [`Probe`] that, while a measurement window is open, records
//! every arrival with the capture time the server sent, and keeps one copy of each
//! frame so the capture clock drawn in it can be checked against that header.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::SystemTime;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::StatusCode;

use super::client::Client;
use super::clock::unix_us;
use super::multipart::{Parser, Part};

pub const LIVE_PATH: &str = "/api/v1/live.mjpg";
const BOUNDARY: &str = "mecamframe";

/// What one viewer has received so far. Counters only grow; a measurement takes the
/// difference of two snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub frames: u64,
    pub bytes: u64,
    /// Frames the server never sent this viewer (gaps in `X-Frame-Seq`): the live bus
    /// keeps only the newest frame, so a viewer that falls behind skips.
    pub skipped: u64,
}

#[derive(Default)]
pub struct Viewer {
    pub counters: Cell<Counters>,
    last_seq: Cell<Option<u64>>,
    pub error: RefCell<Option<String>>,
}

/// Shared by all viewers of a run.
#[derive(Default)]
pub struct Probe {
    pub recording: Cell<bool>,
    /// One JPEG per frame number with its `X-Timestamp`, to read the drawn clock later.
    pub frames: RefCell<HashMap<u64, (Bytes, Option<i64>)>>,
    /// Every frame every viewer received.
    pub arrivals: RefCell<Vec<Arrival>>,
    pub cipher_suite: RefCell<Option<String>>,
}

#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub seq: u64,
    /// When the last byte of the frame was read, µs since the Unix epoch.
    pub arrived_us: i64,
    /// The server's `X-Timestamp`, µs since the Unix epoch.
    pub captured_us: Option<i64>,
}

/// Streams until the connection ends or the task is aborted; the outcome is also
/// recorded in `viewer.error`.
pub async fn run(client: Rc<Client>, viewer: Rc<Viewer>, probe: Rc<Probe>) {
    if let Err(e) = stream(&client, &viewer, &probe).await {
        *viewer.error.borrow_mut() = Some(format!("{e:#}"));
    }
}

async fn stream(client: &Client, viewer: &Viewer, probe: &Probe) -> Result<()> {
    let mut response = client.get(LIVE_PATH).await?;
    ensure!(
        response.status == StatusCode::OK,
        "GET {LIVE_PATH}: {}",
        response.status
    );
    ensure!(
        response.content_type.contains(BOUNDARY),
        "GET {LIVE_PATH}: unexpected content type `{}`",
        response.content_type
    );
    probe
        .cipher_suite
        .borrow_mut()
        .get_or_insert(response.cipher_suite.clone());
    let mut parser = Parser::new(BOUNDARY);
    let mut parts = Vec::new();
    while let Some(frame) = response.body.frame().await {
        let frame = frame.context("reading the stream")?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        parser.push(&data, &mut parts)?;
        for part in parts.drain(..) {
            received(viewer, probe, part);
        }
        if parser.closed() {
            break;
        }
    }
    anyhow::bail!("the server ended the stream")
}

fn received(viewer: &Viewer, probe: &Probe, part: Part) {
    let mut c = viewer.counters.get();
    c.frames += 1;
    c.bytes += part.jpeg.len() as u64;
    if let (Some(seq), Some(last)) = (part.seq, viewer.last_seq.get()) {
        c.skipped += seq.saturating_sub(last + 1);
    }
    viewer.counters.set(c);
    viewer.last_seq.set(part.seq);
    if let (true, Some(seq)) = (probe.recording.get(), part.seq) {
        probe.arrivals.borrow_mut().push(Arrival {
            seq,
            arrived_us: unix_us(SystemTime::now()),
            captured_us: part.captured_us,
        });
        probe
            .frames
            .borrow_mut()
            .entry(seq)
            .or_insert((part.jpeg, part.captured_us));
    }
}
