//! Recordings as a user meets them: after first-run setup the device records by
//! itself; the owner's session lists the segments, plays one with HTTP Range, exports
//! a time range as one MP4 and starts a manual recording; an API token sees the list
//! but not the video. On the card, nothing is playable: no MP4 box is in the clear.
//!
//! Local only: the tests configure short segments and read the data directory.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use http::{StatusCode, header};
use mecam_hil::{Client, Device, Req, skip_if_remote};
use serde_json::{Value, json};

/// Small and slow pictures: the tests are about the files, not the encoder.
const ARGS: &[&str] = &["--size", "320x240", "--fps", "10"];
/// Five-second segments of one-second GOPs: two segments in about 12 s.
const CONFIG: &str = "[recording]\nsegment_secs = 5\nkeyframe_interval_secs = 1\n";

fn launch(config: &str) -> Device {
    Device::launcher()
        .config(config)
        .args(ARGS)
        .start()
        .expect("device starts")
}

/// `GET /api/v1/recordings` (the last 24 hours).
async fn list(client: &Client) -> Vec<Value> {
    let body = client.get_json("/api/v1/recordings").await.unwrap();
    body["recordings"]
        .as_array()
        .unwrap_or_else(|| panic!("no `recordings` array: {body}"))
        .clone()
}

/// Polls the listing until `done` holds for it.
async fn wait_list(client: &Client, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let rows = list(client).await;
        if done(&rows) {
            return rows;
        }
        assert!(Instant::now() < deadline, "{what}: still {rows:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn complete(rows: &[Value]) -> Vec<Value> {
    rows.iter()
        .filter(|r| r["state"] == "complete")
        .cloned()
        .collect()
}

/// What `ffprobe -show_streams` says about `mp4`'s video: codec and decoded frames.
fn ffprobe(mp4: &[u8], dir: &Path, name: &str) -> (String, u64) {
    let path = dir.join(name);
    std::fs::write(&path, mp4).unwrap();
    let out = match Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`ffprobe` is not installed: apt-get install ffmpeg (./scripts/test does)")
        }
        Err(e) => panic!("cannot run ffprobe: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {name}: {stderr}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stream = &json["streams"][0];
    let frames = stream["nb_read_frames"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        stream["codec_name"].as_str().unwrap_or("").to_owned(),
        frames,
    )
}

/// Whether `data` holds an MP4 box header in the clear: the box's four-character type
/// after a plausible big-endian size (a random 4-byte match in ciphertext is likely
/// enough; one with the size's zero bytes too is not).
fn find_mp4_box(data: &[u8]) -> Option<(usize, &'static str)> {
    for (kind, zeros) in [("ftyp", 3), ("moov", 2), ("moof", 2), ("mdat", 1)] {
        let pattern = kind.as_bytes();
        let hit = data.windows(4).enumerate().find(|&(at, w)| {
            w == pattern && at >= 4 && data[at - 4..at - 4 + zeros].iter().all(|&b| b == 0)
        });
        if let Some((at, _)) = hit {
            return Some((at, kind));
        }
    }
    None
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_are_listed_played_with_ranges_exported_and_encrypted_on_disk() {
    if skip_if_remote(
        "recordings_are_listed_played_with_ranges_exported_and_encrypted_on_disk",
        "it sets short segments and reads the data directory",
    ) {
        return;
    }
    let device = launch(CONFIG);
    let owner = device.admin().await.expect("setup and login");

    let rows = wait_list(&owner, "two complete segments", |rows| {
        complete(rows).len() >= 2
    })
    .await;
    let segments = complete(&rows);
    for row in &rows {
        for key in [
            "id",
            "start",
            "end",
            "bytes",
            "trigger",
            "state",
            "fragments",
        ] {
            assert!(!row[key].is_null(), "`{key}` missing in {row}");
        }
        assert!(row["start"].as_str().unwrap().ends_with('Z'), "{row}");
    }
    let (first, second) = (&segments[0], &segments[1]);
    assert_eq!(first["trigger"], "continuous");
    assert!(first["fragments"].as_u64().unwrap() >= 4, "{first}");

    // One segment, whole.
    let path = format!("/api/v1/recordings/{}.mp4", first["id"]);
    let whole = owner.get(&path).await.unwrap();
    whole.assert_status(StatusCode::OK, "GET segment");
    assert_eq!(whole.header(header::CONTENT_TYPE), Some("video/mp4"));
    assert_eq!(whole.header(header::ACCEPT_RANGES), Some("bytes"));
    assert_eq!(
        whole.header(header::CONTENT_LENGTH),
        Some(whole.body.len().to_string().as_str())
    );
    let len = whole.body.len();
    assert!(len > 1000, "{len} bytes");

    // The two requests a player makes, joined, are the whole.
    let head = owner
        .send(Req::get(&path).header(header::RANGE, "bytes=0-99"))
        .await
        .unwrap();
    head.assert_status(StatusCode::PARTIAL_CONTENT, "bytes=0-99");
    assert_eq!(
        head.header(header::CONTENT_RANGE),
        Some(format!("bytes 0-99/{len}").as_str())
    );
    assert_eq!(head.body.len(), 100);
    let tail = owner
        .send(Req::get(&path).header(header::RANGE, "bytes=1000-"))
        .await
        .unwrap();
    tail.assert_status(StatusCode::PARTIAL_CONTENT, "bytes=1000-");
    assert_eq!(
        tail.header(header::CONTENT_RANGE),
        Some(format!("bytes 1000-{}/{len}", len - 1).as_str())
    );
    assert_eq!(&head.body[..], &whole.body[..100]);
    assert_eq!(&tail.body[..], &whole.body[1000..]);
    let middle = owner
        .send(Req::get(&path).header(header::RANGE, "bytes=100-999"))
        .await
        .unwrap();
    let mut joined = head.body.to_vec();
    joined.extend_from_slice(&middle.body);
    joined.extend_from_slice(&tail.body);
    assert!(joined == whole.body, "ranges joined differ from the whole");
    let past = owner
        .send(Req::get(&path).header(header::RANGE, &format!("bytes={len}-")))
        .await
        .unwrap();
    past.assert_error(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "bad_range",
        "range past the end",
    );
    assert_eq!(
        past.header(header::CONTENT_RANGE),
        Some(format!("bytes */{len}").as_str())
    );

    let scratch = tempfile::tempdir().unwrap();
    let (codec, frames) = ffprobe(&whole.body, scratch.path(), "segment.mp4");
    assert_eq!(codec, "h264");
    assert!(frames >= 40, "{frames} frames in a 5 s segment at 10 fps");

    // Export across both segments: one MP4 with the frames of both.
    let export = format!(
        "/api/v1/export.mp4?from={}&to={}",
        first["start"].as_str().unwrap(),
        second["end"].as_str().unwrap()
    );
    let exported = owner.get(&export).await.unwrap();
    exported.assert_status(StatusCode::OK, "export");
    let disposition = exported.header(header::CONTENT_DISPOSITION).unwrap_or("");
    assert!(
        disposition.starts_with("attachment; filename=\"mecam-") && disposition.ends_with(".mp4\""),
        "{disposition}"
    );
    let (codec, exported_frames) = ffprobe(&exported.body, scratch.path(), "export.mp4");
    assert_eq!(codec, "h264");
    assert!(
        exported_frames > frames + 30,
        "export has {exported_frames} frames, one segment {frames}"
    );
    owner
        .get("/api/v1/export.mp4?from=2001-01-01T00:00:00Z&to=2001-01-01T01:00:00Z")
        .await
        .unwrap()
        .assert_error(StatusCode::NOT_FOUND, "no_recordings", "export of nothing");
    owner
        .get("/api/v1/recordings?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z")
        .await
        .unwrap()
        .assert_error(StatusCode::BAD_REQUEST, "bad_query", "from after to");
    owner
        .get("/api/v1/recordings/999999.mp4")
        .await
        .unwrap()
        .assert_error(StatusCode::NOT_FOUND, "not_found", "unknown recording");

    // An API token may list, but cannot unlock the video.
    let (token, _) = owner.create_token("script", "viewer").await.unwrap();
    let script = owner.with_bearer(&token);
    let listed = script.get_json("/api/v1/recordings").await.unwrap();
    assert!(!listed["recordings"].as_array().unwrap().is_empty());
    script.get(&path).await.unwrap().assert_error(
        StatusCode::FORBIDDEN,
        "vault_locked",
        "token playback",
    );
    script.get(&export).await.unwrap().assert_error(
        StatusCode::FORBIDDEN,
        "vault_locked",
        "token export",
    );

    // On the card: segments are vault files, and no MP4 box is anywhere in the clear.
    let data_dir = device.data_dir().expect("local device");
    let files = files_under(data_dir);
    let segment_files: Vec<_> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mcs"))
        .collect();
    assert!(segment_files.len() >= 2, "{files:?}");
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if let Some((at, kind)) = find_mp4_box(&data) {
            panic!(
                "`{kind}` box in the clear at byte {at} of {}",
                file.display()
            );
        }
    }
    for file in segment_files {
        let data = std::fs::read(file).unwrap();
        assert!(data.starts_with(b"MECAMENC"), "{}", file.display());
    }
    // The served video does have them: the scan would have found them.
    assert!(find_mp4_box(&whole.body).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_manual_start_and_stop_make_one_manual_segment() {
    if skip_if_remote(
        "recordings_manual_start_and_stop_make_one_manual_segment",
        "it sets the recording mode to off",
    ) {
        return;
    }
    let device = launch(&format!("{CONFIG}mode = \"off\"\n"));
    let owner = device.admin().await.expect("setup and login");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(list(&owner).await.is_empty(), "mode off records nothing");

    let started = owner
        .post_json("/api/v1/recordings/manual", &json!({ "action": "start" }))
        .await
        .unwrap();
    started.assert_status(StatusCode::OK, "manual start");
    assert_eq!(started.json().unwrap()["manual"], true);
    let rows = wait_list(&owner, "a manual segment", |rows| !rows.is_empty()).await;
    assert_eq!(rows[0]["trigger"], "manual", "{rows:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let stopped = owner
        .post_json("/api/v1/recordings/manual", &json!({ "action": "stop" }))
        .await
        .unwrap();
    stopped.assert_status(StatusCode::OK, "manual stop");
    assert_eq!(stopped.json().unwrap()["manual"], false);
    let rows = wait_list(&owner, "the manual segment closed", |rows| {
        !rows.is_empty() && rows.iter().all(|r| r["state"] == "complete")
    })
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let id = &rows[0]["id"];
    let video = owner
        .get(&format!("/api/v1/recordings/{id}.mp4"))
        .await
        .unwrap();
    video.assert_status(StatusCode::OK, "manual segment");

    // Wrong bodies and methods are refused by name.
    owner
        .post_json("/api/v1/recordings/manual", &json!({ "action": "pause" }))
        .await
        .unwrap()
        .assert_error(StatusCode::BAD_REQUEST, "bad_json", "unknown action");
    let get = owner.get("/api/v1/recordings/manual").await.unwrap();
    get.assert_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "GET manual",
    );
    assert_eq!(get.header(header::ALLOW), Some("POST"));
}
