//! `kill -9` while recording, then a restart on the same card: the index agrees with
//! the files, every completed recording still plays whole, and of the segment that was
//! being written at most the fragment in flight is lost.
//!
//! Local only: it kills the process and restarts it on the same data directory.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use http::StatusCode;
use mecam_hil::{Client, Device, skip_if_remote};
use serde_json::Value;

const ARGS: &[&str] = &["--size", "320x240", "--fps", "10"];
/// 15 s segments of one-second GOPs: the open segment's row is committed every 10 s,
/// so the one killed has fragments in the index and more on the card only.
const CONFIG: &str = "[recording]\nsegment_secs = 15\nkeyframe_interval_secs = 1\n";

fn launch(dir: &Path) -> Device {
    Device::launcher()
        .data_dir(dir)
        .config(CONFIG)
        .args(ARGS)
        .start()
        .expect("device starts")
}

async fn list(client: &Client) -> Vec<Value> {
    let body = client.get_json("/api/v1/recordings").await.unwrap();
    body["recordings"].as_array().cloned().unwrap_or_default()
}

/// Frames ffmpeg decodes from `mp4` without an error, or the error it printed.
fn decodable_frames(mp4: &[u8], dir: &Path, name: &str) -> Result<u64, String> {
    let path = dir.join(name);
    std::fs::write(&path, mp4).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe runs (./scripts/test installs ffmpeg)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.trim().is_empty() {
        return Err(stderr.into_owned());
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("ffprobe printed no frame count: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_recording_loses_at_most_the_fragment_in_flight() {
    if skip_if_remote(
        "kill_9_while_recording_loses_at_most_the_fragment_in_flight",
        "it kills the service and restarts it on the same card",
    ) {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();

    let mut device = launch(data.path());
    let owner = device.admin().await.expect("setup and login");
    // A complete segment and an open one with committed fragments, then the plug.
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        let rows = list(&owner).await;
        let complete = rows.iter().filter(|r| r["state"] == "complete").count();
        let writing_fragments = rows
            .iter()
            .filter(|r| r["state"] == "writing")
            .map(|r| r["fragments"].as_u64().unwrap_or(0))
            .max()
            .unwrap_or(0);
        if complete >= 1 && writing_fragments >= 2 {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "recording did not progress: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    device.signal(libc::SIGKILL).expect("SIGKILL");
    device
        .wait_exit(Duration::from_secs(10))
        .expect("the process dies");
    drop(device);

    let device = launch(data.path());
    let log = device.log();
    let owner = device.admin().await.expect("log in after the restart");
    let after = list(&owner).await;

    for row in &before {
        let id = &row["id"];
        let now = after.iter().find(|r| &r["id"] == id).unwrap_or_else(|| {
            panic!("recording {id} vanished after the restart: {after:?}\n{log}")
        });
        let lost =
            row["fragments"].as_u64().unwrap() as i64 - now["fragments"].as_u64().unwrap() as i64;
        if row["state"] == "complete" {
            assert_eq!(now["state"], "complete", "{now}");
            assert_eq!(
                lost, 0,
                "a complete recording lost fragments: {row} → {now}"
            );
        } else {
            // The interrupted segment is closed at start-up with every fragment that
            // reached the card: what the index had committed, or more.
            assert_ne!(now["state"], "writing", "start-up left {now} open");
            assert!(lost <= 0, "committed fragments were lost: {row} → {now}");
        }
        let mp4 = owner
            .get(&format!("/api/v1/recordings/{id}.mp4"))
            .await
            .unwrap();
        mp4.assert_status(StatusCode::OK, "GET a recording after the power cut");
        let frames = decodable_frames(&mp4.body, scratch.path(), &format!("{id}.mp4"))
            .unwrap_or_else(|e| panic!("recording {id} does not decode cleanly: {e}"));
        // 10 fps, one fragment per second.
        let fragments = now["fragments"].as_u64().unwrap();
        assert!(
            frames >= (fragments - 1) * 10,
            "recording {id}: {frames} frames for {fragments} fragments"
        );
    }
    // And the device records again after the restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = list(&owner).await;
        let newest = rows
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .max()
            .unwrap_or(0);
        let oldest_new = before
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .max()
            .unwrap();
        if newest > oldest_new {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new recording after the restart"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
