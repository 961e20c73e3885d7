//! A viewer that stops reading (a phone that walked out of Wi-Fi range, a stuck
//! script) must cost the camera nothing: no memory growth, its connection dropped
//! after the write timeout, and other viewers unaffected.

use std::io::Write;
use std::time::{Duration, Instant};

use mecam_hil::{Connection, Device, HttpVersion, skip_if_remote};
use tokio::io::AsyncWriteExt;

const STALLED: usize = 10;
const WRITE_TIMEOUT_SECS: u64 = 3;
/// How long the stalled clients are watched. A stalled client goes one write timeout
/// after its buffers fill (a moment after it stops reading); the rest is slack for a
/// loaded machine. They must be gone by `DROP_BY`.
const WATCH: Duration = Duration::from_secs(8);
const DROP_BY: Duration = Duration::from_secs(WRITE_TIMEOUT_SECS + 2);
const WARM_UP: Duration = Duration::from_secs(2);
/// Bound on RSS growth while the stalled clients are connected. Each may legitimately
/// pin about one frame (~64 KiB at 1280x720, quality 80) plus TLS and HTTP buffers,
/// ~2-3 MiB for all ten, and the allocator adds a few MiB of noise. A server that
/// queued frames per client would grow ~640 KB/s per stalled client (64 KiB × 10 fps),
/// ~19 MB across the ten before even a 3 s timeout fires, so 10 MiB tells them apart.
const MAX_GROWTH: u64 = 10 << 20;
/// A stalled client's socket takes this much before the server has to wait; small, so
/// the stall starts within a frame rather than after megabytes of loopback buffering.
const STALLED_RECV_BUFFER: u32 = 16 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_leaves_memory_flat_and_is_dropped() {
    if skip_if_remote(
        "a_client_that_stops_reading_leaves_memory_flat_and_is_dropped",
        "it reads the service's RSS from /proc and sets its write timeout",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mecam.toml");
    let mut file = std::fs::File::create(&config).unwrap();
    writeln!(file, "[server]\nwrite_timeout_secs = {WRITE_TIMEOUT_SECS}").unwrap();
    // The synthetic scene moves all the time, so the person model would run twice a
    // second, its activations coming and going (about 20 MB): this test measures
    // what stalled viewers cost, so the detector stays out of it.
    writeln!(file, "[detection]\nenabled = false").unwrap();
    let config = config.to_str().unwrap();
    let device = Device::launch(&["--config", config, "--size", "1280x720", "--fps", "10"])
        .expect("device starts");
    let client = device.admin().await.unwrap();
    client.wait_running(Duration::from_secs(10)).await.unwrap();

    // A well-behaved viewer, reading throughout.
    let mut reader = client
        .mjpeg("/api/v1/live.mjpg", HttpVersion::Http1)
        .await
        .unwrap();
    let first = reader.next_frame().await.unwrap().expect("a first frame");
    eprintln!("frame size at 1280x720: {} KiB", first.data.len() / 1024);
    let (stop_reading, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let reading = tokio::spawn(async move {
        let mut frames = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stopped => return Ok(frames),
                next = reader.next_frame() => match next {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => return Err("the stream closed".to_owned()),
                    Err(e) => return Err(e.to_string()),
                },
            }
        }
    });

    // One keep-alive connection for health, so it counts as exactly one connection.
    let mut health = client.connect(HttpVersion::Http1).await.unwrap();

    let mut baseline_rss = 0;
    let warm_up_end = Instant::now() + WARM_UP;
    while Instant::now() < warm_up_end {
        baseline_rss = baseline_rss.max(device.rss_bytes().unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let window_start = Instant::now();
    let (Some(baseline_conns), Some(frames_before)) = counts(&mut health).await else {
        panic!("health lacks connections or camera.frames");
    };

    // Clients that ask for the stream and then never read a byte.
    let stall_start = Instant::now();
    let request = format!(
        "GET /api/v1/live.mjpg HTTP/1.1\r\nHost: {}\r\n{}\r\n",
        client.authority(),
        client.credential_header_lines()
    );
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut conn = client
            .raw_with_receive_buffer(STALLED_RECV_BUFFER)
            .await
            .unwrap();
        conn.write_all(request.as_bytes()).await.unwrap();
        conn.flush().await.unwrap();
        stalled.push(conn);
    }
    let (Some(peak_conns), _) = counts(&mut health).await else {
        panic!("health lacks connections");
    };
    assert!(
        peak_conns >= baseline_conns + STALLED as u64,
        "the stalled clients should be connected: {peak_conns} open, {baseline_conns} before"
    );

    let mut peak_rss = baseline_rss;
    let mut dropped_after = None;
    let mut frames_after = frames_before;
    while stall_start.elapsed() < WATCH {
        peak_rss = peak_rss.max(device.rss_bytes().unwrap());
        let (open, frames) = counts(&mut health).await;
        frames_after = frames.unwrap_or(frames_after);
        if dropped_after.is_none() && open.is_some_and(|n| n <= baseline_conns) {
            dropped_after = Some(stall_start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let window_end = Instant::now();
    let camera_frames = frames_after - frames_before;
    let growth = peak_rss.saturating_sub(baseline_rss);
    eprintln!(
        "RSS baseline {:.1} MiB, peak {:.1} MiB, growth {:.2} MiB; stalled clients dropped after {dropped_after:?}",
        baseline_rss as f64 / 1048576.0,
        peak_rss as f64 / 1048576.0,
        growth as f64 / 1048576.0
    );
    assert!(
        growth < MAX_GROWTH,
        "RSS grew by {growth} bytes with {STALLED} stalled clients"
    );
    let dropped_after = dropped_after.unwrap_or_else(|| {
        panic!("stalled connections still open {WATCH:?} after they stopped reading")
    });
    assert!(
        dropped_after >= Duration::from_secs(WRITE_TIMEOUT_SECS) - Duration::from_millis(500),
        "stalled clients were dropped after {dropped_after:?}, before the {WRITE_TIMEOUT_SECS}s write timeout"
    );
    assert!(
        dropped_after <= DROP_BY,
        "stalled clients were dropped only after {dropped_after:?}; the write timeout is {WRITE_TIMEOUT_SECS}s"
    );

    // Meanwhile the reading viewer kept up with the camera.
    stop_reading.send(()).expect("the reader is still running");
    let frames = reading
        .await
        .unwrap()
        .expect("the reading client's stream kept going");
    let during: Vec<_> = frames
        .iter()
        .filter(|f| (window_start..window_end).contains(&f.arrived))
        .collect();
    let max_gap = during
        .windows(2)
        .map(|w| w[1].arrived - w[0].arrived)
        .max()
        .unwrap_or_default();
    eprintln!(
        "reading client got {} frames while the camera made {camera_frames}; longest gap {max_gap:?}",
        during.len()
    );
    assert!(
        during.len() as f64 >= camera_frames as f64 * 0.9,
        "the reading client got {} of the camera's {camera_frames} frames while others stalled",
        during.len()
    );
    drop(stalled);
}

/// `connections` and `camera.frames` from the health report.
async fn counts(health: &mut Connection) -> (Option<u64>, Option<u64>) {
    let res = health.get("/api/v1/health").await.expect("health");
    let json = res.json().expect("health JSON");
    (
        json["connections"].as_u64(),
        json["camera"]["frames"].as_u64(),
    )
}
