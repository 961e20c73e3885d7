//! Many viewers at once: every one of them gets pictures.

use std::time::Duration;

use mecam_hil::{Device, HttpVersion, jpeg};
use tokio::sync::Barrier;

const CLIENTS: usize = 50;
const FRAMES_EACH: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_stream_clients_are_all_served() {
    let device =
        Device::from_env_or_launch(&["--size", "320x240", "--fps", "10"]).expect("device starts");
    // One login shared by all viewers: a password per request would cost the device
    // an Argon2id each.
    let client = device
        .admin()
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(30));
    let health = client.wait_running(Duration::from_secs(10)).await.unwrap();
    let size = (
        health["camera"]["width"].as_u64().unwrap() as usize,
        health["camera"]["height"].as_u64().unwrap() as usize,
    );
    let baseline_clients = health["live_clients"].as_u64().unwrap_or(0);

    // Every client holds its stream open until all have started, so the service really
    // serves fifty at once rather than one after another.
    let all_started = std::sync::Arc::new(Barrier::new(CLIENTS + 1));
    let mut viewers = Vec::new();
    for i in 0..CLIENTS {
        let (client, all_started) = (client.clone(), all_started.clone());
        // Both protocols: browsers use h2, cameras tools and scripts HTTP/1.1.
        let version = if i % 2 == 0 {
            HttpVersion::Http1
        } else {
            HttpVersion::Http2
        };
        viewers.push(tokio::spawn(async move {
            let mut stream = client
                .mjpeg("/api/v1/live.mjpg", version)
                .await
                .map_err(|e| format!("client {i}: stream did not start: {e}"))?;
            let first = stream.next_frame().await;
            all_started.wait().await;
            let mut frames = vec![first];
            for _ in 1..FRAMES_EACH {
                frames.push(stream.next_frame().await);
            }
            let mut seqs = Vec::new();
            for (n, frame) in frames.into_iter().enumerate() {
                let frame = frame
                    .map_err(|e| format!("client {i} frame {n}: {e}"))?
                    .ok_or_else(|| format!("client {i}: stream closed at frame {n}"))?;
                let image =
                    jpeg::decode(&frame.data).map_err(|e| format!("client {i} frame {n}: {e}"))?;
                if (image.width, image.height) != size {
                    return Err(format!(
                        "client {i} frame {n} is {}x{}",
                        image.width, image.height
                    ));
                }
                seqs.push(frame.seq);
            }
            // Distinct, newer frames each time: the stream is live, not one frame repeated.
            if !seqs.windows(2).all(|w| w[0] < w[1]) {
                return Err(format!(
                    "client {i}: frame numbers {seqs:?} do not go forward"
                ));
            }
            Ok::<_, String>(seqs)
        }));
    }

    all_started.wait().await;
    let during = client.health().await.unwrap();
    let live = during["live_clients"].as_u64().unwrap_or(0);
    assert!(
        live >= baseline_clients + CLIENTS as u64,
        "health should count {CLIENTS} live clients at once: {during}"
    );

    let mut failures = Vec::new();
    for viewer in viewers {
        match viewer.await.expect("viewer task") {
            Ok(seqs) => assert_eq!(seqs.len(), FRAMES_EACH),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
