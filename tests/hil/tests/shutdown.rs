//! Stopping: SIGTERM (systemd, the OTA agent) and SIGINT (Ctrl-C) end the service
//! quickly and cleanly, closing open streams properly instead of cutting them.

use std::time::Duration;

use mecam_hil::{Device, HttpVersion, skip_if_remote};

/// The bound from signal to exit.
const STOP_WITHIN: Duration = Duration::from_secs(2);

async fn stops_cleanly(test: &str, signal: libc::c_int, version: HttpVersion) {
    if skip_if_remote(test, "it signals the service process") {
        return;
    }
    let mut device = Device::launch(&["--size", "320x240", "--fps", "10"]).expect("device starts");
    let client = device
        .admin()
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    client.wait_running(Duration::from_secs(10)).await.unwrap();
    let mut stream = client.mjpeg("/api/v1/live.mjpg", version).await.unwrap();
    stream.next_frame().await.unwrap().expect("a first frame");

    device.signal(signal).unwrap();
    // Frames may still arrive; then the stream must end with its closing boundary.
    let mut frames_after_signal = 0;
    loop {
        match stream.next_frame().await {
            Ok(Some(_)) => frames_after_signal += 1,
            Ok(None) => break,
            Err(e) => panic!("{version:?} stream was cut, not closed: {e}"),
        }
        assert!(
            frames_after_signal < 50,
            "stream still running after the signal"
        );
    }

    let (status, took) = device.wait_exit(Duration::from_secs(10)).unwrap();
    eprintln!("{version:?}: exited {status} {took:?} after the signal");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status; log:\n{}",
        device.log()
    );
    assert!(took <= STOP_WITHIN, "took {took:?} to stop");

    // Nothing half-written: atomic writes leave no temporary files behind.
    let data = device.data_dir().unwrap();
    let leftovers = temporary_files(data);
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

fn temporary_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(temporary_files(&path));
        } else if path.extension().is_some_and(|e| e == "tmp") {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_streams_and_exits_zero() {
    stops_cleanly(
        "sigterm_closes_streams_and_exits_zero",
        libc::SIGTERM,
        HttpVersion::Http1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_closes_streams_and_exits_zero() {
    stops_cleanly(
        "sigint_closes_streams_and_exits_zero",
        libc::SIGINT,
        HttpVersion::Http2,
    )
    .await;
}
