//! Playback in a real browser: a recorded segment and an exported clip, played by
//! Debian's Chromium (built with H.264), as the web UI and a downloaded export are.
//!
//! ffprobe accepting a file does not mean a browser plays it: Chromium demuxes
//! fragmented MP4 with stricter parsers (its own one for Media Source Extensions) and
//! fails on things ffmpeg forgives. So the test records real H.264, writes the
//! decrypted segment and the stitched export next to a local test page, and runs
//! headless Chromium on it. The page plays each file twice, as `<video src>` (as the
//! recording API serves it, plain `video/mp4`) and through Media Source Extensions
//! with the codec string of the recorded SPS, and reports over the console, which
//! Chromium logs to stderr: no network, no npm, no DevTools protocol.
//! Playback runs in real time, so the test takes a few seconds.
//!
//! A missing Chromium fails the test (CI installs it; a silent skip would hide a
//! regression) unless `MECAM_SKIP_BROWSER=1` is set. `MECAM_CHROMIUM` names another
//! binary than the `chromium` on `PATH`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as channel;

use serde_json::{Value, json};

use super::*;
use crate::encode::Packet;
use crate::record::fmp4::{SegmentMuxer, TrackInfo, export};

/// Seconds of video per segment; the export joins two segments.
const SEGMENT_SECONDS: u64 = 4;
/// The page plays each file past this time before seeking.
const PLAY_TO: f64 = 2.0;
/// Block size of the luma grid the page reports for the picture after a seek.
const BLOCK: u32 = 8;
/// How long the page waits for any one thing (an event, a promise) before it calls
/// the run failed. Generous: on a loaded 2-core machine the browser can be slow.
const STEP_TIMEOUT: Duration = Duration::from_secs(25);
/// How long the whole browser run may take before the test gives up on it.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);
/// Starts the browser log line that carries the page's result.
const RESULT_TAG: &str = "MECAM-RESULT ";

#[test]
fn record_segment_and_export_play_in_chromium() {
    let Some(chromium) = browser("record_segment_and_export_play_in_chromium") else {
        return;
    };
    let fps = u64::from(FPS);
    let mut video = Video::new(FPS, 400_000);
    let packets = video.packets(0..2 * SEGMENT_SECONDS * fps);
    let sps = video.encoder.parameter_sets().unwrap().sps.clone();
    // Each segment as its decrypted chunks: the init segment, then one fragment per GOP.
    let segments = if runtime::io_uring_available() {
        recorded(packets)
    } else {
        eprintln!(
            "io_uring is not available here: muxing the segments with the recorder's \
             muxer directly instead of recording them"
        );
        muxed(&video, packets, (SEGMENT_SECONDS * fps) as usize)
    };
    assert_eq!(segments.len(), 2, "two {SEGMENT_SECONDS} s segments");
    for (k, chunks) in segments.iter().enumerate() {
        assert_eq!(chunks.len(), 1 + SEGMENT_SECONDS as usize, "segment {k}");
    }

    // The codec string a player needs (MSE, `canPlayType`), from the recorded init
    // segment's avcC; it must be the one the SPS itself states.
    let init = &segments[0][0];
    let codec = codec_string(init);
    assert_eq!(
        codec,
        format!("avc1.{:02X}{:02X}{:02X}", sps[1], sps[2], sps[3]),
        "the avcC states the SPS's profile, constraints and level"
    );
    let mime = format!("video/mp4; codecs=\"{codec}\"");

    let segment = segments[0].concat();
    let clip = export(
        init,
        segments
            .iter()
            .flat_map(|chunks| chunks[1..].iter().map(Vec::as_slice)),
    )
    .expect("the two segments stitch into one clip");
    // What the browser gets passes ffprobe and ffmpeg, so a failure below is the
    // browser's verdict alone.
    let per_segment = (SEGMENT_SECONDS * fps) as usize;
    assert_eq!(probe_frames(&segment), per_segment);
    assert_eq!(probe_frames(&clip), 2 * per_segment);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("segment.mp4"), &segment).unwrap();
    std::fs::write(dir.path().join("export.mp4"), &clip).unwrap();
    // Seek to the middle, then 0.4 s on (between keyframes, so the browser must
    // decode from the GOP's keyframe), aiming at the middle of a frame's interval.
    let target = |duration_s: u64| duration_s * fps / 2 + fps * 2 / 5;
    let clips = [
        ("segment", SEGMENT_SECONDS, target(SEGMENT_SECONDS)),
        ("export", 2 * SEGMENT_SECONDS, target(2 * SEGMENT_SECONDS)),
    ];
    let config = json!({
        "step_ms": STEP_TIMEOUT.as_millis() as u64,
        "block": BLOCK,
        "reference_mime": "video/mp4; codecs=\"avc1.42E01E\"",
        "clips": clips.iter().map(|&(name, seconds, seek_frame)| json!({
            "name": name,
            "url": format!("{name}.mp4"),
            "mime": mime,
            "duration": seconds as f64,
            "play_to": PLAY_TO,
            "seek_to": (seek_frame as f64 + 0.5) / f64::from(FPS),
        })).collect::<Vec<_>>(),
    });
    let page = dir.path().join("page.html");
    std::fs::write(&page, PAGE.replace("/*CONFIG*/null", &config.to_string())).unwrap();

    let started = Instant::now();
    let run = run_page(&chromium, dir.path(), &page);
    eprintln!(
        "chromium played the recordings in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let result = match &run.result {
        Some(result) => result,
        None => panic!(
            "Chromium gave no result ({}); its log:\n{}",
            run.ended,
            run.log_tail()
        ),
    };
    // The page's result for messages, without the pictures' luma grids.
    let mut shown = result.clone();
    if let Some(runs) = shown["runs"].as_array_mut() {
        for run in runs {
            run["seek_picture"] = json!("(luma grid)");
        }
    }
    let shown = serde_json::to_string_pretty(&shown).unwrap_or_default();
    let context = || format!("\npage result: {shown}\nChromium log:\n{}", run.log_tail());
    assert!(result["fatal"].is_null(), "the page failed{}", context());

    // The browser takes the recording's codec string, for MSE and for `<video>`.
    let support = &result["support"];
    assert_eq!(
        support["mse"],
        json!(true),
        "MediaSource.isTypeSupported('{mime}') is false: this Chromium cannot play \
         H.264 this way (built without proprietary codecs?); the reference \
         'avc1.42E01E' gives {}{}",
        result["reference"],
        context()
    );
    assert_eq!(
        support["can_play"],
        json!("probably"),
        "canPlayType('{mime}'){}",
        context()
    );

    let runs = result["runs"].as_array().expect("the page lists its runs");
    assert_eq!(runs.len(), 2 * clips.len(), "{}", context());
    let expected = clips
        .iter()
        .flat_map(|&clip| [(clip, "src"), (clip, "mse")]);
    for (run, ((name, seconds, seek_frame), mode)) in runs.iter().zip(expected) {
        let what = format!("{name} ({mode})");
        let num = |key: &str| run[key].as_f64().unwrap_or(f64::NAN);
        assert_eq!(
            (&run["name"], &run["mode"]),
            (&json!(name), &json!(mode)),
            "{}",
            context()
        );
        assert!(
            run["ok"] == json!(true),
            "Chromium did not play the {what}: {}{}",
            run["error"],
            context()
        );
        assert!(num("ready_state") >= 2.0, "{what}: readyState{}", context());
        assert_eq!(
            (num("width"), num("height")),
            (f64::from(WIDTH), f64::from(HEIGHT)),
            "{what}: picture size{}",
            context()
        );
        assert!(
            (num("duration") - seconds as f64).abs() < 0.1,
            "{what}: duration {} s, expected {seconds} s{}",
            num("duration"),
            context()
        );
        assert!(
            num("played_to") > PLAY_TO,
            "{what}: played to {}{}",
            num("played_to"),
            context()
        );
        let seek_to = (seek_frame as f64 + 0.5) / f64::from(FPS);
        assert!(
            (num("seeked_to") - seek_to).abs() < 0.05,
            "{what}: seeking to {seek_to} s ended at {} s{}",
            num("seeked_to"),
            context()
        );
        assert!(
            num("played_after_seek") > seek_to + 0.5,
            "{what}: playback after the seek{}",
            context()
        );
        if mode == "mse" {
            // One buffered range over the whole file: no gap, not even where the
            // export joins the two segments.
            let buffered = &run["buffered"];
            let ranges = buffered.as_array().map_or(0, Vec::len);
            let (start, end) = (
                buffered[0][0].as_f64().unwrap_or(f64::NAN),
                buffered[0][1].as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                ranges == 1 && start.abs() < 0.05 && (end - seconds as f64).abs() < 0.05,
                "{what}: buffered {buffered}, expected [[0, {seconds}]]{}",
                context()
            );
        }
        // The picture after the seek is the frame at the target, decoded from the
        // keyframe before it: it matches that source frame better than any other.
        let grid: Vec<f64> = run["seek_picture"]["grid"]
            .as_array()
            .map(|g| g.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        assert_eq!(
            grid.len(),
            ((WIDTH / BLOCK) * (HEIGHT / BLOCK)) as usize,
            "{what}: the picture after the seek{}",
            context()
        );
        let scores: Vec<(u64, f64)> = (seek_frame.saturating_sub(fps / 2)..=seek_frame + 3)
            .map(|seq| (seq, distance(&grid, &luma_grid(&video, seq))))
            .collect();
        let best = scores
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|s| s.0)
            .unwrap();
        eprintln!(
            "{what}: played to {:.2} s, seeked to {:.3} s showing frame {best} (aimed at \
             {seek_frame}), played on to {:.2} s; frames {}",
            num("played_to"),
            num("seeked_to"),
            num("played_after_seek"),
            run["frames"]
        );
        assert!(
            best.abs_diff(seek_frame) <= 1,
            "{what}: after seeking to frame {seek_frame} the picture is most like frame \
             {best}; distances {scores:?}{}",
            context()
        );
    }
}

/// Chromium's path, or `None` (after saying so) when `MECAM_SKIP_BROWSER=1` asks to
/// skip. Panics when it is missing otherwise.
fn browser(test: &str) -> Option<PathBuf> {
    if std::env::var_os("MECAM_SKIP_BROWSER").is_some_and(|v| v == "1") {
        eprintln!("skipped {test}: MECAM_SKIP_BROWSER=1");
        return None;
    }
    let found = std::env::var_os("MECAM_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .map(|dir| dir.join("chromium"))
                .find(|p| p.is_file())
        })
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.is_file()));
    match found {
        Some(path) => Some(path),
        None => panic!(
            "`chromium` is not installed: {test} plays recordings in Debian's Chromium; \
             install it (`apt-get install chromium`, or run ./scripts/test, which \
             installs it), or set MECAM_SKIP_BROWSER=1 to skip this test"
        ),
    }
}

/// Records `packets` with the real recorder into 4 s segments and returns each
/// segment's chunks, decrypted with the recovery key.
fn recorded(packets: Vec<Packet>) -> Vec<Vec<Vec<u8>>> {
    let keys = keys();
    let data = Data::new();
    let mut config = data.config();
    config.segment_duration = Duration::from_secs(SEGMENT_SECONDS);
    config.checkpoint_interval = Duration::from_secs(1);
    let status = record(&data, config, &keys, packets, |_| {});
    assert_eq!(status.errors, 0, "{status:?}");
    data.segments()
        .iter()
        .map(|segment| {
            let opened = open_with_recovery(&data.file(segment), &keys.recovery);
            assert!(
                opened.end.is_ok(),
                "segment {}: {:?}",
                segment.id,
                opened.end
            );
            opened.chunks
        })
        .collect()
}

/// The same segments as [`recorded`] makes, from the recorder's muxer alone.
fn muxed(video: &Video, packets: Vec<Packet>, per_segment: usize) -> Vec<Vec<Vec<u8>>> {
    let track = TrackInfo {
        width: WIDTH,
        height: HEIGHT,
        parameter_sets: video.encoder.parameter_sets().unwrap().clone(),
    };
    let parts: Vec<&[Packet]> = packets.chunks(per_segment).collect();
    parts
        .iter()
        .enumerate()
        .map(|(k, part)| {
            let mut muxer = SegmentMuxer::new(track.clone(), FPS).unwrap();
            let mut chunks = vec![muxer.init_segment().to_vec()];
            for packet in *part {
                chunks.extend(muxer.push(packet).unwrap().map(|f| f.data.to_vec()));
            }
            let end = parts.get(k + 1).map(|next| next[0].captured);
            chunks.extend(muxer.finish(end).unwrap().map(|f| f.data.to_vec()));
            chunks
        })
        .collect()
}

/// `avc1.PPCCLL` (RFC 6381) from the avcC box of an init segment: profile,
/// constraint flags and level, as hex.
fn codec_string(init: &[u8]) -> String {
    let at = init
        .windows(4)
        .position(|w| w == b"avcC")
        .expect("the init segment has an avcC box")
        + 4;
    let record = &init[at..at + 4];
    assert_eq!(record[0], 1, "avcC configuration version");
    format!("avc1.{:02X}{:02X}{:02X}", record[1], record[2], record[3])
}

/// Mean luma of each [`BLOCK`]² block of source frame `seq`, as the page measures
/// the picture on screen.
fn luma_grid(video: &Video, seq: u64) -> Vec<f64> {
    let frame = video.frame(seq);
    let y = frame.image.planes()[0];
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let b = BLOCK as usize;
    let mut grid = Vec::with_capacity((w / b) * (h / b));
    for by in 0..h / b {
        for bx in 0..w / b {
            let sum: u32 = (by * b..(by + 1) * b)
                .flat_map(|row| &y[row * w + bx * b..row * w + (bx + 1) * b])
                .map(|&v| u32::from(v))
                .sum();
            grid.push(f64::from(sum) / (b * b) as f64);
        }
    }
    grid
}

/// Mean absolute difference of two grids after removing each one's mean: robust to
/// a constant offset from the browser's colour conversion.
fn distance(a: &[f64], b: &[f64]) -> f64 {
    let mean = |g: &[f64]| g.iter().sum::<f64>() / g.len() as f64;
    let (ma, mb) = (mean(a), mean(b));
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - ma) - (y - mb)).abs())
        .sum::<f64>()
        / a.len() as f64
}

/// What a browser run gave: the page's result, and the browser's log.
struct PageRun {
    result: Option<Value>,
    /// How the run ended, for messages.
    ended: String,
    log: Vec<String>,
}

impl PageRun {
    /// The last lines of the browser's log, without the D-Bus noise of a machine
    /// with no desktop session.
    fn log_tail(&self) -> String {
        let lines: Vec<&str> = self
            .log
            .iter()
            .map(String::as_str)
            .filter(|l| !l.contains("dbus") && !l.contains(RESULT_TAG))
            .collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// A browser process group; killed and reaped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // The browser leads its own process group (renderer, GPU and utility
        // processes are in it too). Until it is reaped below its id cannot be reused,
        // so this signals only processes this test started.
        let pid = self.0.id() as libc::pid_t;
        // SAFETY: kill(2) takes no pointers.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

/// Opens `page` in headless Chromium and waits for the line the page logs with its
/// result, then for the browser to exit (the page closes its window).
fn run_page(chromium: &Path, dir: &Path, page: &Path) -> PageRun {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-breakpad",
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--mute-audio",
            "--window-size=1280,800",
            "--autoplay-policy=no-user-gesture-required",
            // Lets the page read the MP4 files (for MSE) and the canvas see the
            // decoded pictures; it only ever opens this test's own directory.
            "--allow-file-access-from-files",
            // Console messages go to stderr: that is how the result comes back.
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("file://{}", page.display()))
        // Nothing of the invoking user's is read or written.
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromium.display()));
    let stderr = child.stderr.take().unwrap();
    let running = Running(child);

    // Lines arrive through a thread; the channel closes when every browser process
    // has let go of stderr, that is, when they have all exited.
    let (tx, rx) = channel::channel();
    std::thread::spawn(move || {
        let mut stderr = BufReader::new(stderr);
        let mut line = Vec::new();
        while matches!(stderr.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            if tx.send(text).is_err() {
                break;
            }
            line.clear();
        }
    });

    let start = Instant::now();
    let mut deadline = start + BROWSER_TIMEOUT;
    let mut run = PageRun {
        result: None,
        ended: String::new(),
        log: Vec::new(),
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if run.result.is_none()
                    && let Some(at) = line.find(RESULT_TAG)
                {
                    // Chromium logs `"<message>", source: <url> (<line>)`.
                    let message = &line[at + RESULT_TAG.len()..];
                    let end = message.rfind("\", source: ").unwrap_or(message.len());
                    run.result = Some(serde_json::from_str(&message[..end]).unwrap_or_else(
                        |e| json!({ "fatal": format!("unreadable result ({e}): {message}") }),
                    ));
                    // The page closes its window next, which ends the browser.
                    deadline = Instant::now() + Duration::from_secs(10);
                }
                run.log.push(line);
            }
            Err(channel::RecvTimeoutError::Disconnected) => {
                run.ended = format!("it exited after {:.1} s", start.elapsed().as_secs_f64());
                break;
            }
            Err(channel::RecvTimeoutError::Timeout) => {
                run.ended = format!(
                    "stopped after {:.1} s{}",
                    start.elapsed().as_secs_f64(),
                    if run.result.is_some() {
                        ", as it did not exit"
                    } else {
                        ": no result in time"
                    }
                );
                break;
            }
        }
    }
    drop(running);
    run
}

/// The test page. It plays every clip twice at once, as `<video src>` and through
/// MSE, and logs one JSON object with what happened; `/*CONFIG*/null` is replaced by
/// the test's settings.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>ME_CAM playback test</title>
<style>video { width: 300px; height: 225px; margin: 2px; }</style></head>
<body>
<script>
'use strict';
const CONFIG = /*CONFIG*/null;

function timeout(what, ms) {
  return new Promise((_, reject) => setTimeout(
    () => reject(new Error('timed out after ' + ms + ' ms waiting for ' + what)), ms));
}

// Resolves when ok() holds: now, or at one of the events.
function until(target, events, ok) {
  return new Promise(resolve => {
    const check = () => {
      if (ok()) {
        events.forEach(e => target.removeEventListener(e, check));
        resolve();
      }
    };
    events.forEach(e => target.addEventListener(e, check));
    check();
  });
}

function once(target, event) {
  return new Promise(resolve => target.addEventListener(event, resolve, { once: true }));
}

function load(url) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('GET', url);
    xhr.responseType = 'arraybuffer';
    xhr.onload = () => xhr.response ? resolve(xhr.response)
      : reject(new Error('reading ' + url + ' gave nothing'));
    xhr.onerror = () => reject(new Error('cannot read ' + url));
    xhr.send();
  });
}

function ranges(r) {
  const out = [];
  for (let i = 0; i < r.length; i++) out.push([r.start(i), r.end(i)]);
  return out;
}

// The picture on screen as a grid of mean luma (BT.601) per block.
function picture(v) {
  const b = CONFIG.block;
  const w = v.videoWidth, h = v.videoHeight;
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const g = canvas.getContext('2d', { willReadFrequently: true });
  g.drawImage(v, 0, 0, w, h);
  const d = g.getImageData(0, 0, w, h).data;
  const grid = [];
  for (let by = 0; by + b <= h; by += b) {
    for (let bx = 0; bx + b <= w; bx += b) {
      let sum = 0;
      for (let y = by; y < by + b; y++) {
        for (let x = bx; x < bx + b; x++) {
          const i = (y * w + x) * 4;
          sum += 16 + (65.738 * d[i] + 129.057 * d[i + 1] + 25.064 * d[i + 2]) / 256;
        }
      }
      grid.push(Math.round(sum / (b * b) * 10) / 10);
    }
  }
  return { grid };
}

async function play(clip, mode) {
  const r = { name: clip.name, mode, ok: false, log: [] };
  const t0 = performance.now();
  const note = s => r.log.push(Math.round(performance.now() - t0) + ' ms: ' + s);
  const v = document.createElement('video');
  v.muted = true;
  v.playsInline = true;
  v.preload = 'auto';
  document.body.appendChild(v);
  let fail;
  const failed = new Promise((_, reject) => { fail = reject; });
  failed.catch(() => {});
  v.addEventListener('error', () => {
    const e = v.error;
    fail(new Error('error event: ' + (e ? 'code ' + e.code + ', ' + e.message : 'no details')));
  });
  for (const e of ['loadedmetadata', 'loadeddata', 'playing', 'waiting', 'stalled',
                   'seeking', 'seeked', 'ended', 'abort', 'error']) {
    v.addEventListener(e, () => note(e + ' at ' + v.currentTime.toFixed(3)
                                     + ' readyState ' + v.readyState));
  }
  const step = (what, promise) => {
    note('waiting for ' + what);
    return Promise.race([promise, failed, timeout(what, CONFIG.step_ms)]);
  };
  try {
    if (mode === 'mse') {
      const source = new MediaSource();
      v.src = URL.createObjectURL(source);
      await step('sourceopen', once(source, 'sourceopen'));
      const data = await step('the file', load(clip.url));
      const buffer = source.addSourceBuffer(clip.mime);
      // The element's error event, with the details, normally comes first.
      buffer.addEventListener('error', () => setTimeout(
        () => fail(new Error('SourceBuffer error: appendBuffer failed')), 1000));
      buffer.appendBuffer(data);
      await step('appendBuffer', once(buffer, 'updateend'));
      r.buffered = ranges(buffer.buffered);
      // A gap in the timeline would stall playback there: say so at once.
      if (r.buffered.length !== 1) {
        throw new Error('buffered ' + JSON.stringify(r.buffered) + ': not one range');
      }
      source.endOfStream();
    } else {
      v.src = clip.url;
    }
    await step('readyState >= 2',
               until(v, ['loadeddata', 'canplay', 'timeupdate'], () => v.readyState >= 2));
    r.ready_state = v.readyState;
    r.duration = v.duration;
    r.width = v.videoWidth;
    r.height = v.videoHeight;
    await step('play()', v.play());
    await step('currentTime > ' + clip.play_to,
               until(v, ['timeupdate'], () => v.currentTime > clip.play_to));
    r.played_to = v.currentTime;
    v.pause();
    v.currentTime = clip.seek_to;
    await step('seeked', once(v, 'seeked'));
    r.seeked_to = v.currentTime;
    await step('readyState >= 2 after the seek',
               until(v, ['loadeddata', 'canplay', 'timeupdate'], () => v.readyState >= 2));
    r.seek_picture = picture(v);
    await step('play() after the seek', v.play());
    const after = clip.seek_to + 0.5;
    await step('currentTime > ' + after, until(v, ['timeupdate'], () => v.currentTime > after));
    r.played_after_seek = v.currentTime;
    v.pause();
    const q = v.getVideoPlaybackQuality();
    r.frames = { total: q.totalVideoFrames, dropped: q.droppedVideoFrames };
    r.ok = true;
  } catch (e) {
    r.error = String(e && e.message || e);
    if (v.error) r.media_error = { code: v.error.code, message: v.error.message };
    note('failed: ' + r.error);
  }
  return r;
}

(async () => {
  const probe = document.createElement('video');
  const mime = CONFIG.clips[0].mime;
  const out = {
    user_agent: navigator.userAgent,
    support: { mime, mse: MediaSource.isTypeSupported(mime), can_play: probe.canPlayType(mime) },
    reference: {
      mime: CONFIG.reference_mime,
      mse: MediaSource.isTypeSupported(CONFIG.reference_mime),
      can_play: probe.canPlayType(CONFIG.reference_mime),
    },
  };
  const runs = [];
  for (const clip of CONFIG.clips) {
    for (const mode of ['src', 'mse']) runs.push(play(clip, mode));
  }
  out.runs = await Promise.all(runs);
  return out;
})().catch(e => ({ fatal: String(e && e.stack || e) })).then(out => {
  console.log('MECAM-RESULT ' + JSON.stringify(out));
  window.close();
});
</script>
</body></html>
"#;
