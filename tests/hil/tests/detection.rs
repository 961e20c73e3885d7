//! Detection and events end to end, as the owner meets them: a replayed scene of an
//! empty room, a person who walks in, stands and walks out, and the room empty again,
//! makes exactly one person event — seen on the event stream, in a signed webhook, on
//! the MQTT broker Home Assistant watches, in the event list with a thumbnail, and in
//! an event-mode recording that starts before the person came in (pre-roll). Sensor
//! noise and a light switched on, alone, make no event at all.
//!
//! The person is NASA's photograph of Eileen Collins (`astronaut.png`, public domain,
//! from scikit-image's sample images; see `mecam_hil::fixtures`), pasted into a drawn
//! room. The shipped model finds her at 0.92 on the whole photograph
//! (docs/detection.md); here it sees her inside the moving region, as on a camera.
//!
//! Local only: the tests replay their own frames, run their own webhook receiver and
//! MQTT broker on 127.0.0.1, and restart the device on its data directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::{StatusCode, header};
use mecam_hil::fixtures::{Rgb, skimage_image};
use mecam_hil::receivers::{Mosquitto, MqttWatcher, WebhookReceiver, webhook_signature};
use mecam_hil::sse::{SseMessage, SseStream};
use mecam_hil::{Client, Device, jpeg, skip_if_remote};
use serde_json::Value;

const W: usize = 640;
const H: usize = 360;
const FPS: usize = 10;

/// Seconds of empty room before the person walks in: the device restarts, the owner
/// logs in and opens the event stream meanwhile, and the recorder's pre-roll fills.
const LEAD_IN_SECS: usize = 10;
/// The person walks in from the left edge, stands, and walks out at the right edge.
const WALK_IN_FRAMES: usize = 10;
const STAND_FRAMES: usize = 3 * FPS;
const WALK_OUT_FRAMES: usize = 10;
/// Seconds of empty room after the person left. The replay loops: the person comes
/// back only after this and the lead-in, well after the test has made its checks.
const TAIL_SECS: usize = 40;

/// The detection and recording settings of the scene's run.
const COOLDOWN_SECS: u64 = 3;
const PRE_ROLL_SECS: u64 = 3;
const POST_ROLL_SECS: u64 = 2;

const WEBHOOK_SECRET: &str = "hil-webhook-secret-0123456789";
const BASE_TOPIC: &str = "hil/cam";
const DISCOVERY_PREFIX: &str = "homeassistant";

/// A drawn room: a wall with a window and a picture, a door, a wooden floor, and a
/// fixed fine texture so the picture is not flat. Every channel stays at or below 175,
/// so the room 40 % brighter is still below clipping and really is the same room in
/// more light.
fn room() -> Rgb {
    let texture = |x: usize, y: usize| -> i32 {
        let h = (x as u32)
            .wrapping_mul(0x9E37_79B1)
            .rotate_left(7)
            .wrapping_add((y as u32).wrapping_mul(0x85EB_CA6B))
            .wrapping_mul(0xC2B2_AE35);
        (h >> 28) as i32 - 8
    };
    Rgb::from_fn(W, H, |x, y| {
        let (fx, fy) = (x as f32 / W as f32, y as f32 / H as f32);
        let base: [i32; 3] = if fy > 0.72 {
            // Floor: planks.
            let plank = if (x / 80 + (y / 20) % 2) % 2 == 0 {
                0
            } else {
                12
            };
            if y % 20 == 0 {
                [60, 45, 35]
            } else {
                [100 + plank, 78 + plank, 58 + plank]
            }
        } else if (0.70..0.86).contains(&fx) && (0.18..0.72).contains(&fy) {
            // The door, with its handle.
            if (0.835..0.845).contains(&fx) && (0.45..0.48).contains(&fy) {
                [160, 150, 90]
            } else {
                [105, 80, 60]
            }
        } else if (0.08..0.30).contains(&fx) && (0.12..0.42).contains(&fy) {
            // The window, with its cross.
            if (0.185..0.195).contains(&fx) || (0.265..0.275).contains(&fy) {
                [140, 135, 125]
            } else {
                [150, 165, 175]
            }
        } else if (0.42..0.56).contains(&fx) && (0.20..0.36).contains(&fy) {
            // A picture on the wall.
            [
                70 + (fx * 300.0) as i32 % 60,
                90,
                60 + (fy * 200.0) as i32 % 50,
            ]
        } else {
            // The wall, a little darker towards the corners.
            let shade = ((fx - 0.5).abs() * 30.0) as i32;
            [150 - shade, 138 - shade, 118 - shade]
        };
        let t = texture(x, y);
        base.map(|c| (c + t).clamp(0, 175) as u8)
    })
}

/// The person: Eileen Collins from `astronaut.png`, the left three quarters of the
/// photograph (she sits left of centre), whole height.
fn person(astronaut: &Path) -> Rgb {
    let photo = Rgb::from_png(astronaut).expect("astronaut.png decodes");
    photo.crop(0, 0, photo.width * 3 / 4, photo.height)
}

/// How tall the person is in the frame, and where she stands.
const PERSON_H: usize = 330;

/// The frames of the person scenario, as files named in replay order; the many empty
/// frames are links to one picture. Returns the scene directory.
fn write_person_scene(root: &Path, astronaut: &Path) -> PathBuf {
    let empty_room = room();
    let person = person(astronaut);
    let person_w = person.width * PERSON_H / person.height;
    let stand_x = (W - person_w) as i64 / 2;
    let top = (H - PERSON_H) as i64;

    let empty = root.join("empty.jpg");
    empty_room.write_jpeg(&empty, 90).unwrap();
    let frames = root.join("scene");
    std::fs::create_dir(&frames).unwrap();
    let mut n = 0;
    let link_empty = |n: &mut usize| {
        std::os::unix::fs::symlink(&empty, frames.join(format!("{:05}.jpg", *n))).unwrap();
        *n += 1;
    };
    for _ in 0..LEAD_IN_SECS * FPS {
        link_empty(&mut n);
    }
    let with_person_at = |x: i64| {
        let mut frame = room();
        frame.paste_scaled(&person, x, top, PERSON_H);
        frame
    };
    let enter_from = -(person_w as i64);
    for i in 1..=WALK_IN_FRAMES {
        let x = enter_from + (stand_x - enter_from) * i as i64 / WALK_IN_FRAMES as i64;
        with_person_at(x)
            .write_jpeg(&frames.join(format!("{n:05}.jpg")), 90)
            .unwrap();
        n += 1;
    }
    let standing = root.join("standing.jpg");
    with_person_at(stand_x).write_jpeg(&standing, 90).unwrap();
    for _ in 0..STAND_FRAMES {
        std::os::unix::fs::symlink(&standing, frames.join(format!("{n:05}.jpg"))).unwrap();
        n += 1;
    }
    for i in 1..=WALK_OUT_FRAMES {
        let x = stand_x + (W as i64 - stand_x) * i as i64 / WALK_OUT_FRAMES as i64;
        with_person_at(x)
            .write_jpeg(&frames.join(format!("{n:05}.jpg")), 90)
            .unwrap();
        n += 1;
    }
    for _ in 0..TAIL_SECS * FPS {
        link_empty(&mut n);
    }
    frames
}

/// A small deterministic random number generator (xorshift), for sensor noise.
struct Noise(u64);

impl Noise {
    /// Uniform in -`amplitude`..=`amplitude`.
    fn next(&mut self, amplitude: i32) -> i32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % (2 * amplitude as u64 + 1)) as i32 - amplitude
    }
}

/// Seconds of the noise scene at normal light, then 40 % brighter; the loop brings the
/// light back down.
const DIM_SECS: usize = 3;
const BRIGHT_SECS: usize = 5;
const LIGHT_GAIN: f32 = 1.4;
/// Per-pixel, per-channel sensor noise, ± levels.
const NOISE_LEVELS: i32 = 12;

fn write_noise_scene(root: &Path) -> PathBuf {
    let room = room();
    let frames = root.join("noise");
    std::fs::create_dir(&frames).unwrap();
    let mut noise = Noise(0x2545_F491_4F6C_DD1D);
    for n in 0..(DIM_SECS + BRIGHT_SECS) * FPS {
        let gain = if n < DIM_SECS * FPS { 1.0 } else { LIGHT_GAIN };
        let frame = room.map(|_, _, px| {
            px.map(|c| (c as f32 * gain + noise.next(NOISE_LEVELS) as f32).clamp(0.0, 255.0) as u8)
        });
        frame
            .write_jpeg(&frames.join(format!("{n:05}.jpg")), 90)
            .unwrap();
    }
    frames
}

/// The configuration both scenarios run with, for a replay of `frames`.
fn config(frames: &Path, extra: &str) -> String {
    format!(
        "[camera]\nsource = \"replay:{}\"\nfps = {FPS}\n\n\
         [detection]\nenabled = true\ncooldown_secs = {COOLDOWN_SECS}\n\n\
         [recording]\nmode = \"event\"\npre_roll_secs = {PRE_ROLL_SECS}\n\
         post_roll_secs = {POST_ROLL_SECS}\nkeyframe_interval_secs = 1\nsegment_secs = 60\n\
         bitrate_kbps = 500\n\n{extra}",
        frames.display()
    )
}

/// Microseconds since 1970 of an RFC 3339 UTC time as the API writes it
/// (`2026-03-01T18:02:10.250Z`).
fn utc_us(text: &str) -> i64 {
    fn fail(text: &str) -> ! {
        panic!("`{text}` is not an RFC 3339 UTC time")
    }
    let body = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix("+00:00"))
        .unwrap_or_else(|| fail(text));
    let (date, time) = body.split_once('T').unwrap_or_else(|| fail(text));
    let num = |s: &str| s.parse::<i64>().unwrap_or_else(|_| fail(text));
    let d: Vec<i64> = date.split('-').map(num).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<i64> = hms.split(':').map(num).collect();
    if d.len() != 3 || t.len() != 3 {
        fail(text);
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let micros = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
        num(&digits)
    };
    ((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1_000_000) + micros
}

fn seconds(us: i64) -> f64 {
    us as f64 / 1e6
}

/// `GET /api/v1/events` (all kinds, all times).
async fn events(client: &Client) -> Vec<Value> {
    let body = client.get_json("/api/v1/events").await.unwrap();
    body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no `events` array: {body}"))
        .clone()
}

async fn recordings(client: &Client) -> Vec<Value> {
    let body = client.get_json("/api/v1/recordings").await.unwrap();
    body["recordings"]
        .as_array()
        .unwrap_or_else(|| panic!("no `recordings` array: {body}"))
        .clone()
}

/// Polls `check` every 200 ms until it gives a value or `timeout` passes.
async fn wait_for<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sets up the owner (and so the vault) on a fresh data directory, then stops: the
/// scene's run restarts on it with the recording key already there, so it records and
/// seals thumbnails from its first frame, before anyone logs in.
async fn set_up_owner(data_dir: &Path) {
    let mut device = Device::launcher()
        .data_dir(data_dir)
        .config("[detection]\nenabled = false\n\n[recording]\nmode = \"off\"\n")
        .args(&["--size", "320x240", "--fps", "5"])
        .start()
        .expect("the device starts for its setup");
    device.admin().await.expect("first-run setup");
    let (status, _) = device.stop(libc::SIGTERM).expect("the device stops");
    assert!(status.success(), "the setup run exited with {status}");
}

fn parse_data(message: &SseMessage) -> Value {
    serde_json::from_str(&message.data)
        .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {message:?}"))
}

#[test]
fn a_person_walking_through_makes_one_event_notified_everywhere_and_recorded_with_pre_roll() {
    if skip_if_remote(
        "a_person_walking_through_makes_one_event",
        "it replays its own scene and runs its own webhook receiver and MQTT broker",
    ) {
        return;
    }
    let astronaut = match skimage_image("astronaut.png") {
        Ok(path) => path,
        // As the model's own tests (docs/detection.md): where the pictures cannot be
        // fetched, the caller may say that is expected.
        Err(e) if std::env::var("MECAM_SKIP_NETWORK_FIXTURES").as_deref() == Ok("1") => {
            eprintln!("skipped (MECAM_SKIP_NETWORK_FIXTURES=1): {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    mecam_hil::run(person_scenario(astronaut));
}

async fn person_scenario(astronaut: PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let frames = write_person_scene(scratch.path(), &astronaut);
    let data_dir = scratch.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    set_up_owner(&data_dir).await;

    let hook = WebhookReceiver::start().await.expect("webhook receiver");
    let broker = Mosquitto::start().expect("mosquitto");
    let watcher = MqttWatcher::connect(broker.port())
        .await
        .expect("MQTT watcher");

    let notify = format!(
        "[[notify.webhook]]\nurl = \"{}\"\nsecret = \"{WEBHOOK_SECRET}\"\n\
         events = [\"person.started\", \"person.ended\"]\n\n\
         [notify.mqtt]\nhost = \"127.0.0.1\"\nport = {}\nbase_topic = \"{BASE_TOPIC}\"\n\
         discovery_prefix = \"{DISCOVERY_PREFIX}\"\ndevice_name = \"HIL camera\"\n",
        hook.url("/hooks/mecam?token=abc"),
        broker.port()
    );
    let launched = Instant::now();
    let device = Device::launcher()
        .data_dir(&data_dir)
        .config(&config(&frames, &notify))
        .start()
        .expect("the device starts on the scene");
    assert!(!device.setup_needed().await.unwrap(), "setup was kept");
    let owner = device.admin().await.expect("owner login");
    let mut stream = SseStream::open(&owner, "/api/v1/events/stream")
        .await
        .expect("the event stream opens");
    let ready = launched.elapsed();
    eprintln!(
        "device up, owner logged in and listening after {:.1}s",
        ready.as_secs_f64()
    );
    assert!(
        ready < Duration::from_secs(LEAD_IN_SECS as u64 - 2),
        "the device took {:.1}s to start and let the owner log in, but the person walks in \
         {LEAD_IN_SECS}s after the replay starts: the test would miss the start of the event",
        ready.as_secs_f64()
    );

    // The event stream: a person event starts and ends.
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(LEAD_IN_SECS as u64 + 30);
    let person_ended = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = match stream.next(left).await {
            Ok(Some(m)) => m,
            Ok(None) => panic!("the event stream ended; it said:\n{}", stream.transcript()),
            Err(e) => panic!(
                "no person event ended on the stream within {:.0}s of the start ({e}); \
                 it said:\n{}",
                launched.elapsed().as_secs_f64(),
                stream.transcript()
            ),
        };
        eprintln!(
            "{:5.1}s SSE {} {}",
            launched.elapsed().as_secs_f64(),
            message.event,
            message.data
        );
        let data = parse_data(&message);
        messages.push((message.clone(), data.clone()));
        if message.event == "ended" && data["kind"] == "person" {
            break data;
        }
    };
    let person_id = person_ended["id"].clone();
    let started: Vec<&Value> = messages
        .iter()
        .filter(|(m, d)| m.event == "started" && d["kind"] == "person")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        started.len(),
        1,
        "one person event started on the stream: {messages:#?}"
    );
    assert_eq!(
        started[0]["id"], person_id,
        "started and ended: {messages:#?}"
    );
    assert!(started[0]["end"].is_null(), "started: {}", started[0]);
    for (message, data) in &messages {
        if data["kind"] == "person" {
            assert_eq!(
                message.id.as_deref(),
                Some(person_id.to_string().as_str()),
                "the SSE id is the event's: {message:?}"
            );
        }
    }
    let person_start = utc_us(person_ended["start"].as_str().expect("start"));
    let person_end = utc_us(person_ended["end"].as_str().expect("ended has an end"));
    let duration = seconds(person_end - person_start);
    let on_screen = (WALK_IN_FRAMES + STAND_FRAMES + WALK_OUT_FRAMES) as f64 / FPS as f64;
    assert!(
        (1.0..=on_screen + 1.0).contains(&duration),
        "the person was on screen {on_screen}s; the event lasted {duration:.1}s: {person_ended}"
    );
    let score = person_ended["score"].as_f64().unwrap_or(0.0);
    assert!(score >= 0.5, "peak score {score}: {person_ended}");
    let boxes = person_ended["boxes"].as_array().expect("boxes");
    assert!(!boxes.is_empty(), "{person_ended}");
    // A box around a whole person (she fills most of the frame's height), not around a
    // face or a hand; where it is depends on the frame of the peak, anywhere on her walk.
    let b = &boxes[0];
    let (w, h) = (
        b["w"].as_f64().unwrap_or(0.0),
        b["h"].as_f64().unwrap_or(0.0),
    );
    assert!(h > 0.5 && h > w, "the person's box: {b}");

    // The event list: exactly one person event, the one on the stream, ended.
    let listed = events(&owner).await;
    let persons: Vec<&Value> = listed.iter().filter(|e| e["kind"] == "person").collect();
    assert_eq!(persons.len(), 1, "one person event listed: {listed:#?}");
    let event = persons[0];
    assert_eq!(event["id"], person_id, "{event}");
    assert_eq!(event["start"], person_ended["start"], "{event}");
    assert_eq!(event["end"], person_ended["end"], "{event}");
    for e in &listed {
        assert!(
            e["kind"] == "person" || e["kind"] == "motion",
            "unknown kind: {e}"
        );
    }
    let only_persons = owner.get_json("/api/v1/events?kind=person").await.unwrap();
    assert_eq!(
        only_persons["events"].as_array().map(Vec::len),
        Some(1),
        "{only_persons}"
    );

    // Its thumbnail is a JPEG, decrypted for the owner's session.
    let thumbnail_path = event["thumbnail"]
        .as_str()
        .unwrap_or_else(|| panic!("the person event has no thumbnail: {event}"));
    assert_eq!(
        thumbnail_path,
        format!("/api/v1/events/{person_id}/thumbnail.jpg")
    );
    let thumbnail = owner.get(thumbnail_path).await.unwrap();
    thumbnail.assert_status(StatusCode::OK, "thumbnail");
    assert_eq!(thumbnail.header(header::CONTENT_TYPE), Some("image/jpeg"));
    let picture = jpeg::decode(&thumbnail.body).expect("the thumbnail decodes as a JPEG");
    assert!(
        picture.width >= 80 && picture.width <= W && picture.height * W == picture.width * H,
        "thumbnail {}x{} of a {W}x{H} camera",
        picture.width,
        picture.height
    );

    // The webhook: person.started and person.ended for this event, signed.
    let hooks = wait_for(Duration::from_secs(15), || {
        let requests = hook.requests();
        let done = requests
            .iter()
            .any(|r| r.body.windows(11).any(|w| w == b"event.ended"));
        async move { done.then_some(requests) }
    })
    .await
    .unwrap_or_else(|| panic!("no event.ended webhook: {:#?}", hook.requests()));
    let mut types = Vec::new();
    for request in &hooks {
        assert_eq!(request.method, "POST", "{request:?}");
        assert_eq!(request.path, "/hooks/mecam?token=abc", "{request:?}");
        assert_eq!(
            request.header("content-type"),
            Some("application/json"),
            "{request:?}"
        );
        let timestamp = request.header("x-mecam-timestamp").unwrap_or_default();
        let signature = request.header("x-mecam-signature").unwrap_or_default();
        assert_eq!(
            signature,
            webhook_signature(WEBHOOK_SECRET, timestamp, &request.body),
            "the webhook's signature does not check out with the secret: {request:?}"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let sent: i64 = timestamp.parse().expect("a numeric timestamp");
        assert!((sent - now).abs() < 120, "timestamp {sent}, now {now}");
        assert!(
            request
                .header("x-mecam-delivery")
                .is_some_and(|d| d.len() >= 16),
            "{request:?}"
        );
        let body: Value = serde_json::from_slice(&request.body).expect("a JSON webhook body");
        assert_eq!(
            body["event"]["kind"], "person",
            "only person updates: {body}"
        );
        assert_eq!(body["event"]["id"], person_id, "{body}");
        types.push(body["type"].as_str().unwrap_or_default().to_owned());
        if body["type"] == "event.ended" {
            // The API shows milliseconds, the webhook microseconds.
            let end_us = body["event"]["end_us"].as_i64().unwrap_or(0);
            assert!(
                (end_us - person_end).abs() < 1000,
                "the webhook's end is the event's ({}): {body}",
                person_ended["end"]
            );
        }
        if body["type"] == "event.started" {
            assert!(body["event"]["end_us"].is_null(), "{body}");
        }
    }
    assert_eq!(
        types,
        ["event.started", "event.ended"],
        "one webhook call per chosen update, in order"
    );

    // MQTT: Home Assistant's discovery config for the person sensor, the person state
    // ON then OFF, and the event messages.
    let person_topic = format!("{BASE_TOPIC}/person");
    let mqtt = wait_for(Duration::from_secs(15), || {
        let states = watcher.payloads(&person_topic);
        let done = states.iter().skip_while(|s| *s != "ON").any(|s| s == "OFF");
        async move { done.then_some(()) }
    })
    .await;
    let seen = watcher.messages();
    let summary: Vec<String> = seen
        .iter()
        .map(|m| match std::str::from_utf8(&m.payload) {
            Ok(text) => format!("{} {text:.120}", m.topic),
            Err(_) => format!("{} <{} bytes>", m.topic, m.payload.len()),
        })
        .collect();
    assert!(
        mqtt.is_some(),
        "no person ON then OFF on {person_topic}: {summary:#?}"
    );
    let states = watcher.payloads(&person_topic);
    assert_eq!(
        states.iter().filter(|s| *s == "ON").count(),
        1,
        "the person sensor turned on once: {states:?}"
    );
    let snapshot = seen
        .iter()
        .rfind(|m| m.topic == format!("{BASE_TOPIC}/snapshot"))
        .unwrap_or_else(|| panic!("no snapshot on {BASE_TOPIC}/snapshot: {summary:#?}"));
    let picture = jpeg::decode(&snapshot.payload).expect("the MQTT snapshot is a JPEG");
    assert_eq!((picture.width, picture.height), (W, H), "the snapshot");
    let discovery = seen
        .iter()
        .find(|m| {
            m.topic
                .starts_with(&format!("{DISCOVERY_PREFIX}/binary_sensor/"))
                && m.topic.ends_with("/person/config")
        })
        .unwrap_or_else(|| panic!("no discovery config for the person sensor: {summary:#?}"));
    let config: Value = serde_json::from_slice(&discovery.payload).expect("discovery JSON");
    assert_eq!(config["state_topic"], person_topic, "{config}");
    assert_eq!(config["device_class"], "occupancy", "{config}");
    assert_eq!(config["device"]["name"], "HIL camera", "{config}");
    assert_eq!(
        watcher
            .payloads(&format!("{BASE_TOPIC}/availability"))
            .last()
            .map(String::as_str),
        Some("online"),
        "{summary:#?}"
    );
    let event_messages: Vec<Value> = watcher
        .payloads(&format!("{BASE_TOPIC}/event"))
        .iter()
        .map(|p| serde_json::from_str(p).expect("MQTT event JSON"))
        .filter(|v: &Value| v["event"]["kind"] == "person")
        .collect();
    let mqtt_types: Vec<&str> = event_messages
        .iter()
        .map(|v| v["type"].as_str().unwrap_or_default())
        .collect();
    assert!(
        mqtt_types.first() == Some(&"event.started") && mqtt_types.last() == Some(&"event.ended"),
        "person event messages on {BASE_TOPIC}/event: {mqtt_types:?}"
    );
    assert!(
        event_messages.iter().all(|v| v["event"]["id"] == person_id),
        "{event_messages:#?}"
    );

    // One recording covers the event, from before the person came in (pre-roll) to
    // after they left: an event is one segment (design decision 5), footage without
    // holes. Its start may be up to a GOP after the pre-roll point, hence 2/3 of it.
    let wanted_start = person_start - (PRE_ROLL_SECS as i64 * 1_000_000) * 2 / 3;
    let covering = wait_for(Duration::from_secs(10), || {
        let owner = owner.clone();
        async move {
            recordings(&owner).await.into_iter().find(|r| {
                let (Some(start), Some(end)) = (r["start"].as_str(), r["end"].as_str()) else {
                    return false;
                };
                utc_us(start) <= wanted_start && utc_us(end) >= person_end
            })
        }
    })
    .await;
    let rows = recordings(&owner).await;
    let recording = covering.unwrap_or_else(|| {
        panic!(
            "no one recording covers the person event, from {:.1}s before its start (pre-roll \
             {PRE_ROLL_SECS}s) to its end; relative to the event's start ({}) it lasted \
             0.0s..{:.1}s, the recordings are:\n{}",
            seconds(person_start - wanted_start),
            person_ended["start"],
            seconds(person_end - person_start),
            rows.iter()
                .map(|r| {
                    let at = |key: &str| {
                        r[key]
                            .as_str()
                            .map(|t| format!("{:+.1}s", seconds(utc_us(t) - person_start)))
                            .unwrap_or_else(|| "?".into())
                    };
                    format!(
                        "  #{} {}..{} {} {}",
                        r["id"],
                        at("start"),
                        at("end"),
                        r["trigger"],
                        r["state"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert_eq!(recording["trigger"], "event", "{recording}");
    eprintln!("recording {recording}");
    let link = event["recording"]
        .as_str()
        .unwrap_or_else(|| panic!("the event links no recording: {event}"));
    assert!(link.starts_with("/api/v1/export.mp4?"), "{link}");

    // Nothing else happened since: still the one person event.
    let listed = events(&owner).await;
    assert_eq!(
        listed.iter().filter(|e| e["kind"] == "person").count(),
        1,
        "{listed:#?}"
    );
    eprintln!(
        "person scenario done after {:.1}s",
        launched.elapsed().as_secs_f64()
    );
    drop(watcher);
    drop(broker);
}

#[test]
fn noise_and_a_lighting_step_alone_make_no_event() {
    if skip_if_remote(
        "noise_and_a_lighting_step_alone_make_no_event",
        "it replays its own scene",
    ) {
        return;
    }
    mecam_hil::run(noise_scenario());
}

async fn noise_scenario() {
    let scratch = tempfile::tempdir().unwrap();
    let frames = write_noise_scene(scratch.path());
    let device = Device::launcher()
        .config(&config(&frames, ""))
        .start()
        .expect("the device starts on the scene");
    let owner = device.admin().await.expect("setup and login");
    let mut stream = SseStream::open(&owner, "/api/v1/events/stream")
        .await
        .expect("the event stream opens");
    // Two full loops: the light goes up twice and down once.
    let watch = Duration::from_secs(2 * (DIM_SECS + BRIGHT_SECS) as u64 + 2);
    match stream.next(watch).await {
        Err(mecam_hil::Error::Timeout(_)) => {}
        other => panic!(
            "noise and a lighting step alone made an event: {other:?}; the stream said:\n{}",
            stream.transcript()
        ),
    }
    let listed = events(&owner).await;
    assert!(listed.is_empty(), "no events expected: {listed:#?}");
    assert!(
        recordings(&owner).await.is_empty(),
        "event mode recorded without an event"
    );
    // The detector ran all along, on frames through the light going up and down: no
    // event because nothing was seen, not because nothing was looked at.
    let health = owner.health().await.unwrap();
    assert_eq!(health["detection"]["running"], true, "{health}");
    let frames = health["camera"]["frames"].as_u64().unwrap_or(0);
    assert!(
        frames > ((DIM_SECS + BRIGHT_SECS) * FPS) as u64,
        "the camera showed {frames} frames, not a whole loop of the scene: {health}"
    );
}
