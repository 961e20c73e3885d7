//! `person`: the person detector's cost per frame with tract, against the reference
//! TFLite runtime (Google's LiteRT, `ai-edge-litert` from PyPI, with XNNPACK) on the
//! same inputs in the same run — and a check that the two compute the same thing.
//!
//! On five photographs (scikit-image's sample images, fetched once like the tests'):
//! 1. loads the shipped model (checksum verified) and measures the memory it takes:
//!    VmRSS before and after, and the peak while loading (VmHWM, reset first);
//! 2. times, on one thread, the whole pipeline (pre-processing, inference,
//!    post-processing) and each step alone, with thread CPU and wall time;
//! 3. writes each pre-processed input tensor to a file and runs
//!    `benches/litert/run_litert.py` (in a venv it makes: `target/litert-venv`), which
//!    times `interpreter.invoke()` on one thread and writes its raw outputs back;
//! 4. reports tract ÷ LiteRT, the largest difference between the two runtimes' raw
//!    outputs, and decodes LiteRT's outputs with the firmware's post-processing: the
//!    detections must be the same (count, boxes and scores within 1e-3). A mismatch
//!    makes the bench fail.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use mecam::camera::Frame;
use mecam::detect::person::testdata::skimage_frame;
use mecam::detect::person::{ModelFiles, PersonDetector, RawOutputs, SCORE_FLOOR};
use mecam::detect::{BBox, Detection};
use mecam::memory::release_free;
use mecam_benches::args::{Args, OptSpec};
use mecam_benches::cputime::thread_cpu;
use mecam_benches::host::Host;
use mecam_benches::proc_status::status_kib;
use mecam_benches::stats::{Summary, round};
use mecam_benches::table;
use serde_json::{Value, json};

const ABOUT: &str = "Person detector: tract against the reference TFLite runtime (LiteRT) on the same\n\
     inputs, with an agreement check and the model's memory.\n\
     Run: cargo run --release -p mecam-benches --bin person";
const SPEC: &[OptSpec] = &[
    (
        "secs",
        "S",
        "measuring time per picture and runtime (default 3)",
    ),
    (
        "min-runs",
        "N",
        "at least this many runs per picture and step (default 20)",
    ),
    (
        "model",
        "PATH",
        "a .tflite model (default: the shipped one; anchors and checksum as the firmware finds them)",
    ),
    (
        "anchors",
        "PATH",
        "its anchors (default: anchors_1917x4.f32 next to the model)",
    ),
    (
        "mmap-threshold-kib",
        "K",
        "set glibc's M_MMAP_THRESHOLD first (default: glibc's dynamic threshold)",
    ),
];
const PICTURES: &[&str] = &[
    "astronaut.png",
    "camera.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
];
/// Same boxes and scores: within this, in normalised coordinates and score units.
const AGREEMENT: f32 = 1e-3;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .components()
        .collect()
}

struct Memory {
    rss_before_kib: u64,
    rss_loaded_kib: u64,
    peak_loading_kib: u64,
    /// VmRSS after the runs, with the heap trimmed.
    rss_after_inference_kib: u64,
    /// VmHWM during one inference minus VmRSS before it.
    inference_peak_extra_kib: u64,
    load_ms: f64,
    /// `--mmap-threshold-kib`; 0: glibc's default.
    mmap_threshold_kib: usize,
}

struct Picture {
    name: &'static str,
    crop: BBox,
    full_ms: Summary,
    full_cpu_ms: Summary,
    /// The whole pipeline right after `malloc_trim`, as the detector thread runs it
    /// (it trims after every inference): the trim and the page faults it causes.
    trimmed_cpu_ms: Summary,
    pre_cpu_ms: Summary,
    infer_ms: Summary,
    infer_cpu_ms: Summary,
    post_cpu_ms: Summary,
    raw: RawOutputs,
    detections: Vec<Detection>,
}

struct Reference {
    runtime: String,
    load_ms: f64,
    invoke_ms: Summary,
    invoke_cpu_ms: Summary,
    raw: RawOutputs,
}

struct Agreement {
    boxes_max_abs: f32,
    logits_max_abs: f32,
    detections: Vec<Detection>,
    same: Result<(), String>,
}

fn main() -> Result<()> {
    let args = Args::from_env(ABOUT, SPEC)?;
    let budget = Duration::from_secs_f64(args.get("secs", 3.0)?);
    let min_runs: usize = args.get("min-runs", 20)?;
    let model: Option<PathBuf> = args
        .get("model", String::new())
        .map(|s| (!s.is_empty()).then(|| s.into()))?;
    let anchors: Option<PathBuf> = args
        .get("anchors", String::new())
        .map(|s| (!s.is_empty()).then(|| s.into()))?;
    let mmap_threshold_kib: usize = args.get("mmap-threshold-kib", 0)?;
    if mmap_threshold_kib > 0 {
        // Allocations from this size up get their own mapping, returned to the kernel
        // when freed; a fixed threshold also stops glibc from raising it after the
        // first large free (which keeps later tensors on the heap, resident).
        let bytes = i32::try_from(mmap_threshold_kib * 1024).context("--mmap-threshold-kib")?;
        // SAFETY: mallopt only changes the allocator's tuning parameters.
        ensure!(
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, bytes) } == 1,
            "mallopt failed"
        );
    }
    let host = Host::probe();
    eprintln!("host: {}", host.describe());

    // Pictures first: a download must not land inside the memory measurement.
    let frames: Vec<(&'static str, Frame)> = PICTURES
        .iter()
        .map(|name| Ok((*name, skimage_frame(name)?)))
        .collect::<Result<_>>()?;
    let files = ModelFiles::locate(model.as_deref(), anchors.as_deref())?;
    eprintln!("person: loading {}", files.model.display());
    let (mut detector, mut memory) = load_measured(&files)?;
    memory.mmap_threshold_kib = mmap_threshold_kib;

    let dir = workspace().join("target/person-bench");
    let _ = fs::remove_dir_all(&dir);
    let (inputs, outputs) = (dir.join("inputs"), dir.join("outputs"));
    fs::create_dir_all(&inputs)?;
    let mut pictures = Vec::new();
    for (name, frame) in &frames {
        eprintln!("person: tract on {name} for {budget:?}");
        let picture = bench_tract(&mut detector, name, frame, budget, min_runs)?;
        let stem = stem(name);
        fs::write(
            inputs.join(format!("{stem}.f32")),
            f32_bytes(detector.input()),
        )?;
        pictures.push(picture);
    }
    // What one inference adds at its peak (its intermediate tensors), and what stays
    // resident between inferences once the allocator has handed back what it can.
    release_free();
    let before = status_kib("VmRSS")?;
    fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")?;
    black_box(detector.detect(&frames[0].1, None)?);
    memory.inference_peak_extra_kib = status_kib("VmHWM")?.saturating_sub(before);
    release_free();
    memory.rss_after_inference_kib = status_kib("VmRSS")?;

    eprintln!("person: LiteRT on the same inputs for {budget:?} each");
    let python = litert_python()?;
    let report = run_litert(&python, &files.model, &inputs, &outputs, budget, min_runs)?;
    let mut rows = Vec::new();
    for p in &pictures {
        let reference = reference_for(&report, &outputs, p, &detector)?;
        let agreement = agree(&detector, p, &reference);
        rows.push((p, reference, agreement));
    }
    print_report(&host, &files, &memory, &rows);
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|(p, _, a)| a.same.as_ref().err().map(|e| format!("{}: {e}", p.name)))
        .collect();
    ensure!(
        failures.is_empty(),
        "tract and LiteRT disagree:\n{}",
        failures.join("\n")
    );
    Ok(())
}

fn stem(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read_f32(path: &Path) -> Result<Vec<f32>> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(bytes.len() % 4 == 0, "{} is not f32 data", path.display());
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Loads the model, measuring resident memory before and after and the peak while
/// loading (VmHWM reset through `/proc/self/clear_refs` first).
fn load_measured(files: &ModelFiles) -> Result<(PersonDetector, Memory)> {
    release_free();
    let rss_before_kib = status_kib("VmRSS")?;
    fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")?;
    let started = Instant::now();
    let detector = PersonDetector::open(files)?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let peak_loading_kib = status_kib("VmHWM")?;
    release_free();
    let rss_loaded_kib = status_kib("VmRSS")?;
    Ok((
        detector,
        Memory {
            rss_before_kib,
            rss_loaded_kib,
            peak_loading_kib,
            rss_after_inference_kib: 0,
            inference_peak_extra_kib: 0,
            load_ms,
            mmap_threshold_kib: 0,
        },
    ))
}

/// Times the whole pipeline and each step on `frame` (whole frame, no region: the
/// largest crop the runner can ask for, and what LiteRT gets too).
fn bench_tract(
    detector: &mut PersonDetector,
    name: &'static str,
    frame: &Frame,
    budget: Duration,
    min_runs: usize,
) -> Result<Picture> {
    // Warm-up: tract sizes its buffers on the first run; the CPU clocks up.
    for _ in 0..3 {
        detector.detect(frame, None)?;
    }
    let enough =
        |samples: &Vec<f64>, end: Instant| samples.len() >= min_runs && Instant::now() >= end;

    let (mut full_ms, mut full_cpu_ms, mut trimmed_cpu_ms) = (Vec::new(), Vec::new(), Vec::new());
    let end = Instant::now() + budget / 2;
    while !enough(&full_ms, end) {
        let (wall, cpu) = (Instant::now(), thread_cpu());
        black_box(detector.detect(frame, None)?);
        full_cpu_ms.push((thread_cpu() - cpu).as_secs_f64() * 1e3);
        full_ms.push(wall.elapsed().as_secs_f64() * 1e3);
        // Interleaved, so both see the same machine: a run and a trim, then a run
        // that faults the trimmed pages back in.
        let cpu = thread_cpu();
        release_free();
        black_box(detector.detect(frame, None)?);
        trimmed_cpu_ms.push((thread_cpu() - cpu).as_secs_f64() * 1e3);
        release_free();
    }

    // The steps one by one, interleaved as in a detection.
    let (mut pre, mut infer_ms, mut infer_cpu, mut post) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let end = Instant::now() + budget / 2;
    let (mut crop, mut raw, mut detections);
    loop {
        let cpu = thread_cpu();
        crop = detector.preprocess(frame, None);
        pre.push((thread_cpu() - cpu).as_secs_f64() * 1e3);

        let (wall, cpu) = (Instant::now(), thread_cpu());
        raw = detector.infer()?;
        infer_cpu.push((thread_cpu() - cpu).as_secs_f64() * 1e3);
        infer_ms.push(wall.elapsed().as_secs_f64() * 1e3);

        let cpu = thread_cpu();
        detections = detector.postprocess(&raw, crop);
        post.push((thread_cpu() - cpu).as_secs_f64() * 1e3);
        if enough(&infer_ms, end) {
            break;
        }
    }
    let summary = |v: &[f64]| Summary::of(v).expect("at least min-runs samples");
    Ok(Picture {
        name,
        crop,
        full_ms: summary(&full_ms),
        full_cpu_ms: summary(&full_cpu_ms),
        trimmed_cpu_ms: summary(&trimmed_cpu_ms),
        pre_cpu_ms: summary(&pre),
        infer_ms: summary(&infer_ms),
        infer_cpu_ms: summary(&infer_cpu),
        post_cpu_ms: summary(&post),
        raw,
        detections,
    })
}

/// The venv's python with `benches/litert/requirements.txt` installed, made on first
/// use in `<workspace>/target/litert-venv`.
fn litert_python() -> Result<PathBuf> {
    let venv = workspace().join("target/litert-venv");
    let python = venv.join("bin/python");
    let requirements = workspace().join("benches/litert/requirements.txt");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import ai_edge_litert.interpreter, numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if python.is_file() && ready(&python) {
        return Ok(python);
    }
    eprintln!(
        "person: making {} with {}",
        venv.display(),
        requirements.display()
    );
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .context("python3 -m venv (Debian: apt-get install python3-venv)")?;
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(&requirements))
    .context("installing the reference runtime from PyPI")?;
    ensure!(
        ready(&python),
        "{} cannot import ai_edge_litert",
        python.display()
    );
    Ok(python)
}

fn run(command: &mut Command) -> Result<Vec<u8>> {
    let out = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn run_litert(
    python: &Path,
    model: &Path,
    inputs: &Path,
    outputs: &Path,
    budget: Duration,
    min_runs: usize,
) -> Result<Value> {
    let script = workspace().join("benches/litert/run_litert.py");
    let stdout = run(Command::new(python)
        .arg(&script)
        .arg("--model")
        .arg(model)
        .arg("--inputs")
        .arg(inputs)
        .arg("--outputs")
        .arg(outputs)
        .args(["--threads", "1", "--secs"])
        .arg(budget.as_secs_f64().to_string())
        .arg("--min-runs")
        .arg(min_runs.to_string()))?;
    let last = String::from_utf8_lossy(&stdout)
        .lines()
        .last()
        .map(str::to_owned)
        .unwrap_or_default();
    serde_json::from_str(&last)
        .with_context(|| format!("the report of {}: `{last}`", script.display()))
}

fn reference_for(
    report: &Value,
    outputs: &Path,
    p: &Picture,
    detector: &PersonDetector,
) -> Result<Reference> {
    let stem = stem(p.name);
    let image = &report["images"][stem];
    let samples = |key: &str| -> Result<Summary> {
        let v: Vec<f64> = image[key]
            .as_array()
            .with_context(|| format!("no {key} for {stem} in LiteRT's report"))?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        Summary::of(&v).with_context(|| format!("no {key} samples for {stem}"))
    };
    // LiteRT writes the outputs in the model's order; tract's raw outputs say which
    // is which by their size.
    let out0 = read_f32(&outputs.join(format!("{stem}.out0.f32")))?;
    let out1 = read_f32(&outputs.join(format!("{stem}.out1.f32")))?;
    let (boxes, logits) = if out0.len() == p.raw.boxes.len()
        && out1.len() == p.raw.logits.len()
        && out0.len() != out1.len()
    {
        (out0, out1)
    } else {
        (out1, out0)
    };
    ensure!(
        boxes.len() == detector.anchor_count() * 4,
        "LiteRT's outputs for {stem} have {} and {} values",
        boxes.len(),
        logits.len()
    );
    Ok(Reference {
        runtime: report["runtime"].as_str().unwrap_or("LiteRT").to_owned(),
        load_ms: report["load_ms"].as_f64().unwrap_or(f64::NAN),
        invoke_ms: samples("invoke_ms")?,
        invoke_cpu_ms: samples("invoke_cpu_ms")?,
        raw: RawOutputs {
            boxes,
            logits,
            classes: p.raw.classes,
        },
    })
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Decodes LiteRT's outputs like tract's and compares the detections. Near the score
/// floor a detection may fall on either side of it in one runtime only, and two of
/// nearly equal score may swap places; so only detections clearly above the floor
/// count, and each is matched with any unused one within [`AGREEMENT`].
fn agree(detector: &PersonDetector, p: &Picture, reference: &Reference) -> Agreement {
    let detections = detector.postprocess(&reference.raw, p.crop);
    let clear = |d: &[Detection]| -> Vec<Detection> {
        d.iter()
            .copied()
            .filter(|d| d.score >= SCORE_FLOOR + AGREEMENT)
            .collect()
    };
    let (ours, theirs) = (clear(&p.detections), clear(&detections));
    let distance = |t: &Detection, l: &Detection| {
        [
            t.score - l.score,
            t.bbox.x - l.bbox.x,
            t.bbox.y - l.bbox.y,
            t.bbox.w - l.bbox.w,
            t.bbox.h - l.bbox.h,
        ]
        .iter()
        .fold(0.0f32, |m, d| m.max(d.abs()))
    };
    let same = if ours.len() != theirs.len() {
        Err(format!(
            "{} detections with tract, {} with LiteRT",
            ours.len(),
            theirs.len()
        ))
    } else {
        let mut unused = theirs.clone();
        ours.iter().try_for_each(|t| {
            match unused.iter().position(|l| distance(t, l) <= AGREEMENT) {
                Some(i) => {
                    unused.swap_remove(i);
                    Ok(())
                }
                None => Err(format!("tract's {t:?} is not among LiteRT's {theirs:?}")),
            }
        })
    };
    Agreement {
        boxes_max_abs: max_abs(&p.raw.boxes, &reference.raw.boxes),
        logits_max_abs: max_abs(&p.raw.logits, &reference.raw.logits),
        detections,
        same,
    }
}

fn describe(d: &[Detection]) -> String {
    match d.first() {
        None => "none".into(),
        Some(best) => format!(
            "{} (best {:.3} at x {:.2} y {:.2} w {:.2} h {:.2})",
            d.len(),
            best.score,
            best.bbox.x,
            best.bbox.y,
            best.bbox.w,
            best.bbox.h
        ),
    }
}

fn print_report(
    host: &Host,
    files: &ModelFiles,
    memory: &Memory,
    rows: &[(&Picture, Reference, Agreement)],
) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let runtime = rows.first().map_or("LiteRT", |r| r.1.runtime.as_str());
    println!("host: {}", host.describe());
    println!(
        "person model: {} (sha256 {}), tract on one thread; reference: {runtime}, one thread (XNNPACK)\n",
        files.model.display(),
        files.sha256.map_or("not checked".into(), |s| s.to_string())
    );
    let timing: Vec<Vec<String>> = rows
        .iter()
        .map(|(p, r, _)| {
            vec![
                p.name.to_owned(),
                format!("{:.2}", p.full_cpu_ms.median),
                format!("{:.2}", p.full_ms.median),
                format!("{:.3}", p.pre_cpu_ms.median),
                format!("{:.2}", p.infer_cpu_ms.median),
                format!("{:.2}", p.infer_ms.p95),
                format!("{:.3}", p.post_cpu_ms.median),
                format!("{:.2}", r.invoke_cpu_ms.median),
                format!("{:.2}", r.invoke_ms.p95),
                format!("{:.2}", p.infer_cpu_ms.median / r.invoke_cpu_ms.median),
                format!("{:.2}", p.full_cpu_ms.median / r.invoke_cpu_ms.median),
                format!("{:.3}", p.trimmed_cpu_ms.median / p.full_cpu_ms.median),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "picture",
                "full cpu ms",
                "full wall ms",
                "pre ms",
                "infer cpu ms",
                "infer p95",
                "post ms",
                "litert cpu ms",
                "litert p95",
                "infer/litert",
                "full/litert",
                "trimmed/full",
            ],
            &timing,
        )
    );
    println!(
        "\nfull = pre-processing (crop, I420 → RGB, resize to the model's input) + inference +\n\
         post-processing (box decoding, sigmoid, NMS), whole frame. Medians of the thread's CPU\n\
         time unless marked wall; p95 of wall time. litert = interpreter.invoke() alone.\n\
         trimmed/full = a full run right after malloc_trim (the detector trims after\n\
         every inference), against a full run on warm buffers.\n"
    );
    let agreement: Vec<Vec<String>> = rows
        .iter()
        .map(|(p, _, a)| {
            vec![
                p.name.to_owned(),
                format!("{:.1e}", a.boxes_max_abs),
                format!("{:.1e}", a.logits_max_abs),
                describe(&p.detections),
                describe(&a.detections),
                match &a.same {
                    Ok(()) => "yes".into(),
                    Err(e) => format!("NO: {e}"),
                },
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "picture",
                "max |Δ| boxes",
                "max |Δ| logits",
                "tract: detections",
                "LiteRT: detections",
                "same",
            ],
            &agreement,
        )
    );
    println!(
        "\nmax |Δ| = largest difference between tract's and LiteRT's raw outputs (box encodings,\n\
         logits) on the same input tensor. Detections: after decoding, sigmoid, score floor \
         {SCORE_FLOOR} and NMS,\nwith the firmware's post-processing applied to each runtime's \
         outputs; same = same count and\nevery box and score within {AGREEMENT}."
    );
    let allocator = match memory.mmap_threshold_kib {
        0 => "glibc's default mmap threshold".to_owned(),
        k => format!("M_MMAP_THRESHOLD {k} KiB"),
    };
    println!(
        "\nmemory ({allocator}; RSS, heap trimmed): {:.1} MiB before loading; loaded {:.1} MiB (+{:.1}), \
         peak while loading +{:.1}; one inference peaks {:.1} MiB above the loaded model; \
         after the runs {:.1} MiB (+{:.1}). Load took {:.0} ms (LiteRT: {:.0} ms).\n",
        mib(memory.rss_before_kib),
        mib(memory.rss_loaded_kib),
        mib(memory.rss_loaded_kib.saturating_sub(memory.rss_before_kib)),
        mib(memory
            .peak_loading_kib
            .saturating_sub(memory.rss_before_kib)),
        mib(memory.inference_peak_extra_kib),
        mib(memory.rss_after_inference_kib),
        mib(memory
            .rss_after_inference_kib
            .saturating_sub(memory.rss_before_kib)),
        memory.load_ms,
        rows.first().map_or(f64::NAN, |r| r.1.load_ms),
    );
    let json = json!({
        "bench": "person",
        "argv": std::env::args().collect::<Vec<_>>(),
        "host": host.to_json(),
        "model": files.model.display().to_string(),
        "sha256": files.sha256.map(|s| s.to_string()),
        "reference": runtime,
        "mmap_threshold_kib": memory.mmap_threshold_kib,
        "memory_kib": {
            "rss_before": memory.rss_before_kib,
            "rss_loaded": memory.rss_loaded_kib,
            "peak_loading": memory.peak_loading_kib,
            "rss_after_runs": memory.rss_after_inference_kib,
            "inference_peak_extra": memory.inference_peak_extra_kib,
        },
        "load_ms": round(memory.load_ms, 1),
        "pictures": rows.iter().map(|(p, r, a)| json!({
            "picture": p.name,
            "full_ms": p.full_ms.to_json(),
            "full_cpu_ms": p.full_cpu_ms.to_json(),
            "trimmed_cpu_ms": p.trimmed_cpu_ms.to_json(),
            "pre_cpu_ms": p.pre_cpu_ms.to_json(),
            "infer_ms": p.infer_ms.to_json(),
            "infer_cpu_ms": p.infer_cpu_ms.to_json(),
            "post_cpu_ms": p.post_cpu_ms.to_json(),
            "litert_invoke_ms": r.invoke_ms.to_json(),
            "litert_invoke_cpu_ms": r.invoke_cpu_ms.to_json(),
            "ratio_infer_to_litert": round(p.infer_cpu_ms.median / r.invoke_cpu_ms.median, 3),
            "ratio_full_to_litert": round(p.full_cpu_ms.median / r.invoke_cpu_ms.median, 3),
            "max_abs_diff_boxes": a.boxes_max_abs,
            "max_abs_diff_logits": a.logits_max_abs,
            "detections_tract": p.detections.iter().map(detection_json).collect::<Vec<_>>(),
            "detections_litert": a.detections.iter().map(detection_json).collect::<Vec<_>>(),
            "same_detections": a.same.is_ok(),
        })).collect::<Vec<_>>(),
    });
    println!("{json}");
}

fn detection_json(d: &Detection) -> Value {
    let r = |v: f32| round(f64::from(v), 4);
    json!({"score": r(d.score), "x": r(d.bbox.x), "y": r(d.bbox.y), "w": r(d.bbox.w), "h": r(d.bbox.h)})
}
