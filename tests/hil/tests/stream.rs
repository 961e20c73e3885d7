//! Live view: what arrives decodes, and arrives at the rate the camera is set to.

use std::time::Duration;

use http::StatusCode;
use mecam_hil::{Client, Device, HttpVersion, MjpegStream, frame_rate, jpeg};

const SIZE: (usize, usize) = (320, 240);
const FPS: f64 = 10.0;
const ARGS: &[&str] = &["--size", "320x240", "--fps", "10"];
/// The bound on the measured rate.
const RATE_TOLERANCE: f64 = 0.10;

/// The camera's size and rate as the device reports them; for a local device, also
/// checks they are what it was started with.
async fn camera(device: &Device, client: &Client) -> ((usize, usize), f64) {
    let health = client
        .wait_running(Duration::from_secs(10))
        .await
        .expect("camera reaches `running`");
    let cam = &health["camera"];
    let as_usize = |v: &serde_json::Value| v.as_u64().expect("camera size in health") as usize;
    let size = (as_usize(&cam["width"]), as_usize(&cam["height"]));
    let fps = cam["fps_configured"]
        .as_f64()
        .expect("fps_configured in health");
    if device.is_local() {
        assert_eq!(
            (size, fps),
            (SIZE, FPS),
            "health disagrees with the flags: {health}"
        );
    }
    (size, fps)
}

async fn open_stream(client: &Client, path: &str) -> MjpegStream {
    let stream = client
        .mjpeg(path, HttpVersion::Negotiate)
        .await
        .expect("stream starts");
    assert_eq!(stream.headers["cache-control"], "no-store");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_stream_frames_decode_at_the_configured_size() {
    let device = Device::from_env_or_launch(ARGS).expect("device starts");
    let client = device.admin().await.unwrap();
    let (size, _) = camera(&device, &client).await;

    let snap = client.get("/api/v1/snapshot.jpg").await.unwrap();
    assert_eq!(snap.status, StatusCode::OK);
    assert_eq!(snap.header("content-type"), Some("image/jpeg"));
    let image = jpeg::decode(&snap.body).expect("snapshot decodes");
    assert_eq!((image.width, image.height), size);

    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let mut stream = client
            .mjpeg("/api/v1/live.mjpg", version)
            .await
            .expect("stream starts");
        let mut last_seq = None;
        for i in 0..5 {
            let frame = stream
                .next_frame()
                .await
                .expect("stream keeps going")
                .expect("stream stays open");
            let image = jpeg::decode(&frame.data)
                .unwrap_or_else(|e| panic!("{version:?} frame {i} does not decode: {e}"));
            assert_eq!((image.width, image.height), size, "{version:?} frame {i}");
            let seq = frame.seq.expect("parts carry X-Frame-Seq");
            assert!(
                last_seq.is_none_or(|last| seq > last),
                "{version:?}: frame numbers go forward, got {seq} after {last_seq:?}"
            );
            last_seq = Some(seq);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_runs_at_the_configured_frame_rate() {
    let device = Device::from_env_or_launch(ARGS).expect("device starts");
    let client = device.admin().await.unwrap();
    let (_, fps) = camera(&device, &client).await;

    let mut stream = open_stream(&client, "/api/v1/live.mjpg").await;
    // The first frame is the one already waiting on the bus; count from the next.
    stream.next_frame().await.unwrap().expect("a first frame");
    let frames = stream.frames_for(Duration::from_secs(5)).await.unwrap();
    let rate = frame_rate(&frames).expect("frames arrived");
    eprintln!(
        "stream rate {rate:.2} fps over {} frames (configured {fps})",
        frames.len()
    );
    assert!(
        (rate - fps).abs() <= fps * RATE_TOLERANCE,
        "stream delivers {rate:.2} fps, configured {fps}"
    );

    let health = client.health().await.unwrap();
    let measured = health["camera"]["fps_measured"].as_f64().unwrap_or(0.0);
    eprintln!("health fps_measured {measured}");
    assert!(
        (measured - fps).abs() <= fps * RATE_TOLERANCE,
        "health reports {measured} fps, configured {fps}: {health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fps_query_caps_the_stream_rate() {
    let device = Device::from_env_or_launch(ARGS).expect("device starts");
    let client = device.admin().await.unwrap();
    let (_, fps) = camera(&device, &client).await;
    let cap = 2.0;
    assert!(
        fps > cap * 2.0,
        "the camera must run well above the cap for this test"
    );

    let mut stream = open_stream(&client, "/api/v1/live.mjpg?fps=2").await;
    stream.next_frame().await.unwrap().expect("a first frame");
    let frames = stream.frames_for(Duration::from_secs(5)).await.unwrap();
    let rate = frame_rate(&frames).expect("frames arrived");
    eprintln!(
        "capped stream rate {rate:.2} fps over {} frames",
        frames.len()
    );
    assert!(
        rate <= cap * (1.0 + RATE_TOLERANCE),
        "cap {cap} exceeded: {rate:.2} fps"
    );
    // Still a live stream, not a trickle: at most one camera frame late per interval.
    let slowest = 1.0 / (1.0 / cap + 1.0 / fps);
    assert!(
        rate >= slowest * (1.0 - RATE_TOLERANCE),
        "capped stream too slow: {rate:.2} fps"
    );
}
