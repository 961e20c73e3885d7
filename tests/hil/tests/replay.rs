//! Replay: recorded frames stand in for the camera, looped at the configured rate.

use std::path::Path;
use std::time::Duration;

use http::StatusCode;
use mecam_hil::{Device, HttpVersion, jpeg, skip_if_remote};

/// Deliberately not the default camera size, so a frame of this size came from the files.
const W: usize = 160;
const H: usize = 120;

/// One solid colour a frame, so each streamed frame tells which file it came from.
const FRAMES: &[(&str, [u8; 3])] = &[
    ("a-red.jpg", [220, 30, 30]),
    ("b-green.jpg", [30, 200, 30]),
    ("c-blue.jpg", [30, 30, 220]),
    ("d-white.png", [240, 240, 240]),
];

fn solid(rgb: [u8; 3]) -> Vec<u8> {
    rgb.repeat(W * H)
}

fn write_png(path: &Path, rgb: [u8; 3]) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), W as u32, H as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&solid(rgb)).unwrap();
}

fn write_jpeg(path: &Path, rgb: [u8; 3]) -> Vec<u8> {
    let data = jpeg::encode_rgb(&solid(rgb), W, H, 90).unwrap();
    std::fs::write(path, &data).unwrap();
    data
}

/// Which of `colours` a decoded frame shows, if it is clearly one of them.
fn which(image: &jpeg::Decoded, colours: &[(&str, [u8; 3])]) -> Option<usize> {
    let mean = image.mean_rgb();
    let distance = |c: [u8; 3]| {
        mean.iter()
            .zip(c)
            .map(|(m, c)| (m - f64::from(c)).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    colours
        .iter()
        .enumerate()
        .map(|(i, (_, c))| (i, distance(*c)))
        .filter(|(_, d)| *d < 40.0)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// Streams ~2 s from a device replaying `source` and checks every frame is W×H and
/// every one of `colours` shows up.
async fn assert_replays(source: &Path, colours: &[(&str, [u8; 3])]) {
    let spec = format!("replay:{}", source.to_str().unwrap());
    let device = Device::launch(&["--camera", &spec, "--fps", "10"]).expect("device starts");
    let client = device.admin().await.unwrap();
    let health = client.wait_running(Duration::from_secs(10)).await.unwrap();
    assert_eq!(health["camera"]["source"], "replay", "{health}");
    assert_eq!(
        (
            health["camera"]["width"].as_u64(),
            health["camera"]["height"].as_u64()
        ),
        (Some(W as u64), Some(H as u64)),
        "{health}"
    );

    let snap = client.get("/api/v1/snapshot.jpg").await.unwrap();
    assert_eq!(snap.status, StatusCode::OK);
    let image = jpeg::decode(&snap.body).unwrap();
    assert_eq!((image.width, image.height), (W, H));

    let mut stream = client
        .mjpeg("/api/v1/live.mjpg", HttpVersion::Http1)
        .await
        .unwrap();
    let frames = stream.frames_for(Duration::from_secs(2)).await.unwrap();
    let mut seen = vec![0; colours.len()];
    for (n, frame) in frames.iter().enumerate() {
        let image = jpeg::decode(&frame.data).unwrap_or_else(|e| panic!("frame {n}: {e}"));
        assert_eq!((image.width, image.height), (W, H), "frame {n}");
        let i = which(&image, colours)
            .unwrap_or_else(|| panic!("frame {n} is none of the files: {:?}", image.mean_rgb()));
        seen[i] += 1;
    }
    for ((name, _), count) in colours.iter().zip(&seen) {
        assert!(
            *count > 0,
            "{name} never appeared in {} frames",
            frames.len()
        );
    }
    let health = client.health().await.unwrap();
    assert_eq!(health["camera"]["errors"], 0, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_jpeg_and_png_frames_is_replayed_at_its_size() {
    if skip_if_remote(
        "a_directory_of_jpeg_and_png_frames",
        "it starts a replay camera",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, rgb) in FRAMES {
        let path = dir.path().join(name);
        if name.ends_with(".png") {
            write_png(&path, *rgb);
        } else {
            write_jpeg(&path, *rgb);
        }
    }
    // Not an image: must be ignored rather than counted as a broken frame.
    std::fs::write(dir.path().join("notes.txt"), "recorded on the bench").unwrap();
    assert_replays(dir.path(), FRAMES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mjpeg_file_is_replayed() {
    if skip_if_remote("an_mjpeg_file_is_replayed", "it starts a replay camera") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let jpegs = &FRAMES[..3];
    let mut mjpeg = Vec::new();
    for (name, rgb) in jpegs {
        mjpeg.extend(write_jpeg(&dir.path().join(name), *rgb));
    }
    let file = dir.path().join("recording.mjpg");
    std::fs::write(&file, mjpeg).unwrap();
    assert_replays(&file, jpegs).await;
}
