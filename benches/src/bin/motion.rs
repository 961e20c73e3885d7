//! `motion`: what motion detection costs per frame, and what motion gating saves the
//! person model over an hour.
//!
//! Part 1 times `MotionDetector::process` per frame, on frames of several camera sizes
//! (320×240 is analysed as is; larger frames are first box-filtered down to about 320
//! wide, and that is included), in a quiet scene (sensor noise only) and with a person
//! walking. Reference, interleaved with every frame: one pass summing the same frame's
//! Y plane, the least any analysis of that plane costs (it reads what the detector
//! reads). Times are the bench thread's CPU time.
//!
//! Part 2 plays a scripted hour through the real detector thread (`Detector::start`,
//! fed frame by frame, never skipping): a mostly still scene with sensor noise, a few
//! people walking through (5 minutes in all by default), a cloud and a light switched
//! on. It reports the detector's CPU seconds for the hour (getrusage: the process's
//! CPU minus the feeding thread's), with the person model gated by motion as shipped,
//! against running the model on every analysed frame (per-inference CPU measured on a
//! sample of frames from the same hour, times the frame count). It also counts motion
//! frames outside the walks: lighting or noise taken for motion.
//!
//! The model is the shipped SSDLite person detector (`detect::person`, loaded from
//! `firmware/models/`, checksum verified), run on the frames of the scripted hour: its
//! cost per inference does not depend on what is in the picture. `--model stand-in`
//! replaces it with a stand-in that burns a fixed amount of CPU per call
//! (`--model-ms`), to check the bench itself or to model another detector's cost.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use mecam::camera::{BufferPool, Frame, I420};
use mecam::detect::motion::{MotionConfig, MotionDetector};
use mecam::detect::person::{ModelFiles, PersonDetector};
use mecam::detect::runner::{Detector, DetectorConfig, DetectorStats, PersonModel};
use mecam::detect::{BBox, Detection};
use mecam_benches::args::{Args, OptSpec, parse_size};
use mecam_benches::cputime::thread_cpu;
use mecam_benches::host::Host;
use mecam_benches::stats::{Summary, round};
use mecam_benches::table;
use serde_json::json;

const ABOUT: &str = "Motion detection time per frame, and detector CPU per scripted hour with\n\
     and without motion gating of the person model.\n\
     Run: cargo run --release -p mecam-benches --bin motion";
const SPEC: &[OptSpec] = &[
    (
        "secs",
        "S",
        "part 1: measuring time per size and scene (default 2)",
    ),
    (
        "sizes",
        "LIST",
        "part 1: frame sizes (default 320x240,640x480,1280x720,1920x1080)",
    ),
    (
        "hour-size",
        "WxH",
        "part 2: camera frame size (default 1280x720)",
    ),
    (
        "fps",
        "N",
        "part 2: analysed frames per second of the hour (default 25)",
    ),
    (
        "walks",
        "N",
        "part 2: people walking through in the hour (default 10)",
    ),
    (
        "walk-secs",
        "S",
        "part 2: seconds each takes to cross (default 30)",
    ),
    (
        "samples",
        "N",
        "part 2: model runs to measure the per-inference CPU (default 100)",
    ),
    ("model", "NAME", "part 2: `shipped` (default) or `stand-in`"),
    (
        "model-ms",
        "MS",
        "stand-in model: CPU per inference, ms (default 50)",
    ),
    ("part", "1|2|all", "which part to run (default all)"),
];
const DEFAULT_SIZES: &[&str] = &["320x240", "640x480", "1280x720", "1920x1080"];
/// Distinct frames per part-1 sequence, cycled (their capture times keep advancing).
const DISTINCT_FRAMES: usize = 16;
/// Below this many samples a 95th percentile means little, whatever the time budget.
const MIN_SAMPLES: usize = 200;
/// Camera frame interval in part 1 (25 fps).
const FRAME_INTERVAL: Duration = Duration::from_millis(40);
const HOUR: u64 = 3600;

fn main() -> Result<()> {
    let args = Args::from_env(ABOUT, SPEC)?;
    let budget = Duration::from_secs_f64(args.get("secs", 2.0)?);
    let sizes = args
        .list::<String>(
            "sizes",
            &DEFAULT_SIZES
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )?
        .iter()
        .map(|s| parse_size(s))
        .collect::<Result<Vec<_>>>()?;
    let hour = HourSpec {
        size: parse_size(&args.get("hour-size", "1280x720".to_string())?)?,
        fps: args.get("fps", 25)?,
        walks: args.get("walks", 10)?,
        walk_secs: args.get("walk-secs", 30)?,
        samples: args.get("samples", 100)?,
        model_cpu: Duration::from_secs_f64(args.get::<f64>("model-ms", 50.0)? / 1e3),
        shipped_model: match args.get("model", "shipped".to_string())?.as_str() {
            "shipped" => true,
            "stand-in" => false,
            other => bail!("--model {other}: use `shipped` or `stand-in`"),
        },
    };
    let part: String = args.get("part", "all".to_string())?;
    if !["1", "2", "all"].contains(&part.as_str()) {
        bail!("--part is 1, 2 or all");
    }
    if hour.fps == 0 || hour.fps > 60 || hour.samples == 0 {
        bail!("--fps must be 1 to 60 and --samples positive");
    }
    if u64::from(hour.walks) * hour.walk_secs > HOUR / 2 {
        bail!("--walks × --walk-secs must leave at least half the hour still");
    }
    let host = Host::probe();
    eprintln!("host: {}", host.describe());

    let mut per_frame = Vec::new();
    if part != "2" {
        for &(w, h) in &sizes {
            for moving in [false, true] {
                per_frame
                    .push(bench_frames(w, h, moving, budget).with_context(|| format!("{w}x{h}"))?);
            }
        }
    }
    let hour_result = if part != "1" {
        Some(bench_hour(&hour).context("scripted hour")?)
    } else {
        None
    };
    print_report(&host, &per_frame, &hour, hour_result.as_ref());
    Ok(())
}

// ---------------------------------------------------------------------------------
// The scene.

/// A camera view like the tests': a wall lit from one side with a brick texture, a
/// dark door, a bright window. Sensor noise comes from a few precomputed planes, so
/// rendering a frame costs little next to analysing it.
struct Scene {
    width: u32,
    height: u32,
    background: Vec<u8>,
    noise: Vec<Vec<i8>>,
}

/// A person: a dark block with a stripe texture, a quarter of the frame high.
#[derive(Debug, Clone, Copy)]
struct Person {
    x: u32,
    y: u32,
}

impl Scene {
    fn new(width: u32, height: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        // Bricks and stripes scale with the frame, so every size shows the same view.
        let unit = (w / 320).max(1);
        let mut background = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let (u, v) = (x as f32 / w as f32, y as f32 / h as f32);
                let (bx, by) = (x / unit, y / unit);
                let mut l = 150.0 - 60.0 * u + 20.0 * v;
                if (by / 6 + (bx / 12) % 2) % 2 == 0 && (bx % 12 == 0 || by % 6 == 0) {
                    l -= 25.0;
                }
                if (0.12..0.30).contains(&u) && v > 0.35 {
                    l = 55.0 + 10.0 * v;
                }
                if (0.60..0.85).contains(&u) && (0.20..0.50).contains(&v) {
                    l = 215.0 - 15.0 * v;
                }
                background[y * w + x] = l.clamp(0.0, 255.0) as u8;
            }
        }
        // Noise of about 2 levels standard deviation at 320 wide; a larger sensor
        // has as much per pixel (the analysis averages it down).
        let mut rng = 0x5EED_u64;
        let noise = (0..8)
            .map(|_| {
                (0..w * h)
                    .map(|_| {
                        let r = splitmix(&mut rng);
                        let n = (r & 7) + ((r >> 3) & 7) + ((r >> 6) & 7);
                        ((n as f32 - 10.5) * 0.5).round() as i8
                    })
                    .collect()
            })
            .collect();
        Self {
            width,
            height,
            background,
            noise,
        }
    }

    fn person_size(&self) -> (u32, u32) {
        (self.width / 13, self.height / 4)
    }

    /// Renders frame `index` into `image`: background × `gain`, the people, noise.
    fn render(&self, index: u64, people: &[Person], gain: f32, image: &mut I420) {
        let w = self.width as usize;
        let [y_plane, u_plane, v_plane] = image.planes_mut();
        let noise = &self.noise[(index % self.noise.len() as u64) as usize];
        if gain == 1.0 {
            for ((p, &b), &n) in y_plane.iter_mut().zip(&self.background).zip(noise) {
                *p = b.saturating_add_signed(n);
            }
        } else {
            for ((p, &b), &n) in y_plane.iter_mut().zip(&self.background).zip(noise) {
                *p = ((f32::from(b) * gain).min(255.0) as u8).saturating_add_signed(n);
            }
        }
        let (pw, ph) = self.person_size();
        let stripe = (w / 320).max(1) * 3;
        for person in people {
            let x_end = (person.x + pw).min(self.width) as usize;
            let y_end = (person.y + ph).min(self.height) as usize;
            for y in person.y as usize..y_end {
                let row = &mut y_plane[y * w..(y + 1) * w];
                for (x, p) in row
                    .iter_mut()
                    .enumerate()
                    .take(x_end)
                    .skip(person.x as usize)
                {
                    let l = if (x / stripe).is_multiple_of(2) {
                        30.0
                    } else {
                        10.0
                    };
                    *p = (l * gain) as u8;
                }
            }
        }
        u_plane.fill(128);
        v_plane.fill(128);
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn frame(
    pool: &BufferPool,
    scene: &Scene,
    seq: u64,
    people: &[Person],
    gain: f32,
) -> Result<Frame> {
    let buf = pool.take().context("frame pool exhausted")?;
    let mut image = I420::new(scene.width, scene.height, buf);
    scene.render(seq, people, gain, &mut image);
    Ok(Frame {
        seq,
        captured: Instant::now(),
        wall: SystemTime::now(),
        image,
    })
}

// ---------------------------------------------------------------------------------
// Part 1: time per frame.

struct FrameResult {
    width: u32,
    height: u32,
    analysis: (u32, u32),
    moving: bool,
    reported: usize,
    motion_cpu_us: Summary,
    motion_wall_us: Summary,
    ysum_us: Summary,
}

impl FrameResult {
    fn ratio(&self) -> f64 {
        self.motion_cpu_us.median / self.ysum_us.median
    }
    /// Share of one core that analysing 25 frames a second takes.
    fn core_share_at_25fps(&self) -> f64 {
        self.motion_cpu_us.median * 25.0 / 1e6
    }
}

fn bench_frames(width: u32, height: u32, moving: bool, budget: Duration) -> Result<FrameResult> {
    let what = if moving { "person walking" } else { "quiet" };
    eprintln!("part 1: {width}x{height}, {what}: measuring for {budget:?}");
    let scene = Scene::new(width, height);
    let pool = BufferPool::new(I420::len_for(width, height), DISTINCT_FRAMES);
    let (pw, _) = scene.person_size();
    let mut frames = (0..DISTINCT_FRAMES as u64)
        .map(|i| {
            let people = [Person {
                x: width / 8 + i as u32 * pw / 6,
                y: height / 2,
            }];
            frame(&pool, &scene, i, if moving { &people } else { &[] }, 1.0)
        })
        .collect::<Result<Vec<_>>>()?;
    let config = MotionConfig {
        cooldown: Duration::ZERO,
        ..MotionConfig::default()
    };
    let mut detector = MotionDetector::new(&config, width, height)?;
    let start = Instant::now();
    let mut seq = 0u32;
    let mut process = |frame: &mut Frame, detector: &mut MotionDetector| {
        frame.captured = start + FRAME_INTERVAL * seq;
        seq += 1;
        detector.process(frame)
    };

    // Warm-up: the background settles, caches and clocks too.
    for _ in 0..3 {
        for f in frames.iter_mut() {
            process(f, &mut detector);
        }
    }
    let (mut cpu, mut wall, mut ysum) = (Vec::new(), Vec::new(), Vec::new());
    let mut reported = 0;
    let end = Instant::now() + budget;
    'outer: loop {
        for f in frames.iter_mut() {
            if Instant::now() >= end && cpu.len() >= MIN_SAMPLES {
                break 'outer;
            }
            let (t, c) = (Instant::now(), thread_cpu());
            let seen = process(f, &mut detector);
            cpu.push((thread_cpu() - c).as_secs_f64() * 1e6);
            wall.push(t.elapsed().as_secs_f64() * 1e6);
            reported += usize::from(seen.is_some());

            let luma = f.image.planes()[0];
            let t = Instant::now();
            black_box(sum(black_box(luma)));
            ysum.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    let summary = |v: &[f64]| Summary::of(v).expect("at least MIN_SAMPLES samples");
    Ok(FrameResult {
        width,
        height,
        analysis: detector.analysis_size(),
        moving,
        reported: reported * 100 / cpu.len(),
        motion_cpu_us: summary(&cpu),
        motion_wall_us: summary(&wall),
        ysum_us: summary(&ysum),
    })
}

/// The reference: one read pass over the plane (vectorised: u8 lanes summed in u32).
fn sum(plane: &[u8]) -> u64 {
    plane
        .chunks(1 << 16)
        .map(|c| u64::from(c.iter().map(|&b| u32::from(b)).sum::<u32>()))
        .sum()
}

// ---------------------------------------------------------------------------------
// Part 2: a scripted hour.

struct HourSpec {
    size: (u32, u32),
    fps: u32,
    walks: u32,
    walk_secs: u64,
    samples: usize,
    model_cpu: Duration,
    shipped_model: bool,
}

/// What happens at second `s` of the hour.
struct Script {
    /// Start second of each walk.
    walks: Vec<u64>,
    walk_secs: u64,
}

impl Script {
    fn new(spec: &HourSpec) -> Self {
        // Spread evenly, each in a slot of its own, away from the lighting changes'
        // first seconds so those are measured alone.
        let slot = HOUR / u64::from(spec.walks.max(1));
        let walks = (0..u64::from(spec.walks))
            .map(|i| i * slot + slot / 2)
            .collect();
        Self {
            walks,
            walk_secs: spec.walk_secs,
        }
    }

    /// The walk under way at time `t` (seconds), as its progress 0..1.
    fn walk_at(&self, t: f64) -> Option<f64> {
        self.walks.iter().find_map(|&start| {
            let p = (t - start as f64) / self.walk_secs as f64;
            (0.0..1.0).contains(&p).then_some(p)
        })
    }

    /// Lighting gain at time `t`: a cloud dims the scene to 0.75 over 3 s at minute
    /// 20 and lifts after 5 minutes; a light switched on at minute 40 (×1.4 at once)
    /// stays on 10 minutes.
    fn gain_at(t: f64) -> f32 {
        let ramp = |t0: f64, secs: f64| ((t - t0) / secs).clamp(0.0, 1.0) as f32;
        let cloud = 1.0 - 0.25 * (ramp(1200.0, 3.0) - ramp(1500.0, 3.0));
        let lamp = if (2400.0..3000.0).contains(&t) {
            1.4
        } else {
            1.0
        };
        cloud * lamp
    }
}

struct HourResult {
    frames: u64,
    walk_frames: u64,
    stats: DetectorStats,
    false_motion_frames: u64,
    gated_cpu: Duration,
    per_inference: Summary,
    model_name: &'static str,
    elapsed: Duration,
}

impl HourResult {
    fn every_frame_cpu(&self) -> f64 {
        self.frames as f64 * self.per_inference.mean / 1e3
    }
}

fn bench_hour(spec: &HourSpec) -> Result<HourResult> {
    let (width, height) = spec.size;
    let scene = Scene::new(width, height);
    let script = Script::new(spec);
    let frames = HOUR * u64::from(spec.fps);
    let pool = BufferPool::new(I420::len_for(width, height), 4);
    let (pw, _) = scene.person_size();
    let people_at = |t: f64| -> Vec<Person> {
        script
            .walk_at(t)
            .map(|p| Person {
                x: ((f64::from(width + pw) * p) as u32).saturating_sub(pw),
                y: height / 2,
            })
            .into_iter()
            .collect()
    };

    // The per-inference CPU, on frames of this hour with a person in them.
    let (mut model, model_name) = model(spec)?;
    eprintln!(
        "part 2: {} model, measuring {} inferences",
        model_name, spec.samples
    );
    let mut samples = Vec::new();
    for i in 0..spec.samples {
        let t = script.walks[i % script.walks.len()] as f64 + spec.walk_secs as f64 / 2.0;
        let f = frame(&pool, &scene, i as u64, &people_at(t), Script::gain_at(t))?;
        let c = thread_cpu();
        model
            .detect(&f, None)
            .map_err(|e| anyhow::anyhow!("the model failed: {e}"))?;
        samples.push((thread_cpu() - c).as_secs_f64() * 1e3);
    }
    let per_inference = Summary::of(&samples).context("no samples")?;

    eprintln!(
        "part 2: playing {frames} frames ({width}x{height}, {} fps) through the detector thread",
        spec.fps
    );
    let config = DetectorConfig::default();
    let (tx, rx) = sync_channel::<Arc<Frame>>(1);
    let (out, mut observations) = tokio::sync::mpsc::channel(1024);
    let start = Instant::now();
    let (process_before, feeder_before) = (process_cpu(), thread_cpu());
    let handle = Detector::start(config, rx, Some(model), out)?;
    let (mut walk_frames, mut false_motion_frames) = (0u64, 0u64);
    let base = Instant::now();
    for i in 0..frames {
        let t = i as f64 / f64::from(spec.fps);
        let people = people_at(t);
        walk_frames += u64::from(!people.is_empty());
        let buf = loop {
            if let Some(buf) = pool.take() {
                break buf;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let mut image = I420::new(width, height, buf);
        scene.render(i, &people, Script::gain_at(t), &mut image);
        let f = Frame {
            seq: i,
            captured: base + Duration::from_secs_f64(t),
            wall: SystemTime::now(),
            image,
        };
        tx.send(Arc::new(f)).context("the detector thread ended")?;
        while let Ok(o) = observations.try_recv() {
            let t = (o.captured - base).as_secs_f64();
            // A second's grace after a walk: the person is leaving the frame.
            if o.motion.is_some() && script.walk_at(t).or(script.walk_at(t - 1.0)).is_none() {
                false_motion_frames += 1;
            }
        }
        if i % (u64::from(spec.fps) * 600) == 0 {
            eprintln!("  minute {}", i / u64::from(spec.fps) / 60);
        }
    }
    drop(tx);
    while !handle.is_finished() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = handle.stop();
    let gated_cpu = process_cpu()
        .saturating_sub(process_before)
        .saturating_sub(thread_cpu() - feeder_before);
    Ok(HourResult {
        frames,
        walk_frames,
        stats,
        false_motion_frames,
        gated_cpu,
        per_inference,
        model_name,
        elapsed: start.elapsed(),
    })
}

/// CPU time of the whole process so far (getrusage, user + system).
fn process_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF is a constant.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) cannot fail");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The person model the bench runs.
fn model(spec: &HourSpec) -> Result<(Box<dyn PersonModel>, &'static str)> {
    if !spec.shipped_model {
        return Ok((
            Box::new(StandIn {
                cpu: spec.model_cpu,
            }),
            "stand-in",
        ));
    }
    let files = ModelFiles::locate(None, None).context("locating the shipped model")?;
    let detector = PersonDetector::open(&files).with_context(|| {
        format!(
            "loading {} (or run with --model stand-in)",
            files.model.display()
        )
    })?;
    Ok((Box::new(detector), "shipped SSDLite"))
}

/// Burns a fixed amount of the calling thread's CPU per call and finds nobody.
struct StandIn {
    cpu: Duration,
}

impl PersonModel for StandIn {
    fn detect(&mut self, frame: &Frame, region: Option<BBox>) -> Result<Vec<Detection>, String> {
        let until = thread_cpu() + self.cpu;
        let mut x = frame.seq ^ u64::from(region.is_some());
        while thread_cpu() < until {
            for _ in 0..1000 {
                x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
        }
        black_box(x);
        Ok(Vec::new())
    }
}

// ---------------------------------------------------------------------------------
// Report.

fn print_report(
    host: &Host,
    per_frame: &[FrameResult],
    spec: &HourSpec,
    hour: Option<&HourResult>,
) {
    println!("host: {}", host.describe());
    if !per_frame.is_empty() {
        let rows: Vec<Vec<String>> = per_frame
            .iter()
            .map(|r| {
                vec![
                    format!("{}x{}", r.width, r.height),
                    format!("{}x{}", r.analysis.0, r.analysis.1),
                    (if r.moving { "walking" } else { "quiet" }).into(),
                    format!("{}", r.reported),
                    format!("{:.0}", r.motion_cpu_us.median),
                    format!("{:.0}", r.motion_cpu_us.p95),
                    format!("{:.0}", r.motion_wall_us.median),
                    format!("{:.2}", r.core_share_at_25fps() * 100.0),
                    format!("{:.1}", r.ysum_us.median),
                    format!("{:.1}", r.ratio()),
                ]
            })
            .collect();
        println!("\nPart 1: MotionDetector::process per frame, one thread\n");
        print!(
            "{}",
            table::render(
                &[
                    "frame",
                    "analysed",
                    "scene",
                    "% motion",
                    "cpu µs med",
                    "cpu µs p95",
                    "wall µs med",
                    "%core@25fps",
                    "ysum µs",
                    "motion/ysum",
                ],
                &rows,
            )
        );
        println!(
            "\ncpu = the bench thread's CPU time for one process() call (downscale included);\n\
             % motion = frames reported as motion. ysum = one pass summing the same frame's Y\n\
             plane, interleaved: motion/ysum = cpu median ÷ ysum median.\n"
        );
    }
    if let Some(h) = hour {
        let gated = h.gated_cpu.as_secs_f64();
        let every = h.every_frame_cpu();
        println!(
            "Part 2: one scripted hour, {}x{} at {} fps ({} frames; {} walks of {} s = {} frames \
             with a person), {} model ({:.1} ms CPU per inference, median of {})\n",
            spec.size.0,
            spec.size.1,
            spec.fps,
            h.frames,
            spec.walks,
            spec.walk_secs,
            h.walk_frames,
            h.model_name,
            h.per_inference.median,
            h.per_inference.n
        );
        let rows = vec![
            vec![
                "motion-gated (as shipped)".to_string(),
                format!("{}", h.stats.inferences),
                format!("{gated:.1}"),
                format!("{:.2}", gated / HOUR as f64 * 100.0),
            ],
            vec![
                "model on every frame".to_string(),
                format!("{}", h.frames),
                format!("{every:.0}"),
                format!("{:.1}", every / HOUR as f64 * 100.0),
            ],
        ];
        print!(
            "{}",
            table::render(
                &["detector", "inferences", "CPU s/hour", "% of a core"],
                &rows
            )
        );
        println!(
            "\nratio every-frame ÷ gated: {:.0}×. Gated: detector thread CPU by getrusage (process\n\
             minus the feeding thread) over the real Detector thread, {} motion frames, {} motion\n\
             frames outside the walks (cloud, lamp, noise), {} observations. Every frame: frames ×\n\
             per-inference CPU (above 100 % of a core, the thread could not keep up and would skip\n\
             frames, running the model flat out). Played in {:.0} s.\n",
            every / gated,
            h.stats.motion_frames,
            h.false_motion_frames,
            h.stats.observations,
            h.elapsed.as_secs_f64()
        );
    }
    let json = json!({
        "bench": "motion",
        "argv": std::env::args().collect::<Vec<_>>(),
        "host": host.to_json(),
        "per_frame": per_frame.iter().map(|r| json!({
            "size": format!("{}x{}", r.width, r.height),
            "analysis": format!("{}x{}", r.analysis.0, r.analysis.1),
            "scene": if r.moving { "walking" } else { "quiet" },
            "reported_percent": r.reported,
            "motion_cpu_us": r.motion_cpu_us.to_json(),
            "motion_wall_us": r.motion_wall_us.to_json(),
            "ysum_us": r.ysum_us.to_json(),
            "ratio_motion_to_ysum": round(r.ratio(), 2),
            "core_share_at_25fps": round(r.core_share_at_25fps(), 5),
        })).collect::<Vec<_>>(),
        "hour": hour.map(|h| json!({
            "size": format!("{}x{}", spec.size.0, spec.size.1),
            "fps": spec.fps,
            "frames": h.frames,
            "walks": spec.walks,
            "walk_secs": spec.walk_secs,
            "walk_frames": h.walk_frames,
            "model": h.model_name,
            "per_inference_cpu_ms": h.per_inference.to_json(),
            "detector": h.stats,
            "false_motion_frames": h.false_motion_frames,
            "gated_cpu_s": round(h.gated_cpu.as_secs_f64(), 2),
            "every_frame_cpu_s": round(h.every_frame_cpu(), 1),
            "ratio_every_frame_to_gated": round(h.every_frame_cpu() / h.gated_cpu.as_secs_f64(), 1),
            "elapsed_s": round(h.elapsed.as_secs_f64(), 1),
        })),
    });
    println!("{json}");
}
