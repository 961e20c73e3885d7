//! `jpeg`: software JPEG encode time per frame at 640×480, 1280×720 and 1920×1080.
//!
//! Encodes frames of the firmware's synthetic scene with the firmware's own encoder
//! (`TurboJpeg`, quality 80, 4:2:0) on one thread. Each encode is followed by two
//! reference workloads on data of the same frame, interleaved so that both see the same
//! machine load: ChaCha20-Poly1305 sealing of the encoded bytes (what sending the frame
//! to one TLS client costs in cipher work; see `reference`) and a memcpy of the raw
//! frame (memory bandwidth). Results are reported as times and as ratios to those.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mecam::camera::{Frame, I420};
use mecam::encode::Encoder;
use mecam::encode::jpeg::TurboJpeg;
use mecam_benches::args::{Args, OptSpec, parse_size};
use mecam_benches::cputime::thread_cpu;
use mecam_benches::host::Host;
use mecam_benches::reference::Sealer;
use mecam_benches::stats::{Summary, round};
use mecam_benches::{scene, table};
use serde_json::json;

const ABOUT: &str = "JPEG encode time per frame, with same-run reference workloads.\n\
     Run: cargo run --release -p mecam-benches --bin jpeg";
const SPEC: &[OptSpec] = &[
    ("secs", "S", "measuring time per frame size (default 4)"),
    (
        "sizes",
        "LIST",
        "frame sizes (default 640x480,1280x720,1920x1080)",
    ),
    (
        "quality",
        "Q",
        "JPEG quality 1-100 (default 80, the service's default)",
    ),
];
const DEFAULT_SIZES: &[&str] = &["640x480", "1280x720", "1920x1080"];
/// One second of 25 fps video: enough distinct frames that the encoder sees moving
/// content and changing clock digits, as it does live.
const DISTINCT_FRAMES: usize = 25;
/// Below this many samples a 95th percentile means little, whatever the time budget.
const MIN_SAMPLES: usize = 100;

struct SizeResult {
    width: u32,
    height: u32,
    jpeg_bytes: f64,
    encode_ms: Summary,
    encode_cpu_ms: Summary,
    seal_us: Summary,
    memcpy_us: Summary,
}

/// Derived figures use the encoder thread's CPU time, not wall time: the budgets are in
/// CPU, and on a loaded machine a 4 ms encode is often preempted, which inflates its
/// wall time but not its CPU time. The references are far shorter than a time slice,
/// so their wall-time medians are their CPU time.
impl SizeResult {
    fn fps_one_core(&self) -> f64 {
        1e3 / self.encode_cpu_ms.median
    }
    fn encode_per_seal(&self) -> f64 {
        self.encode_cpu_ms.median * 1e3 / self.seal_us.median
    }
    fn encode_per_memcpy(&self) -> f64 {
        self.encode_cpu_ms.median * 1e3 / self.memcpy_us.median
    }
    /// Share of one core that encoding 25 frames a second takes.
    fn core_share_at_25fps(&self) -> f64 {
        self.encode_cpu_ms.median * 25.0 / 1e3
    }
    fn bits_per_pixel(&self) -> f64 {
        self.jpeg_bytes * 8.0 / f64::from(self.width * self.height)
    }
}

fn main() -> Result<()> {
    let args = Args::from_env(ABOUT, SPEC)?;
    let budget = Duration::from_secs_f64(args.get("secs", 4.0)?);
    let quality: u8 = args.get("quality", 80)?;
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
    let host = Host::probe();
    eprintln!("host: {}", host.describe());

    let mut results = Vec::new();
    for (w, h) in sizes {
        results.push(bench_size(w, h, quality, budget).with_context(|| format!("{w}x{h}"))?);
    }
    print_report(&host, quality, &results);
    Ok(())
}

fn bench_size(width: u32, height: u32, quality: u8, budget: Duration) -> Result<SizeResult> {
    eprintln!(
        "jpeg {width}x{height}: rendering {DISTINCT_FRAMES} frames, then measuring for {budget:?}"
    );
    let frames = scene::frames(width, height, DISTINCT_FRAMES);
    let mut encoder = TurboJpeg::new(quality).context("starting turbojpeg")?;
    let mut sealer = Sealer::new();
    let mut sealed = Vec::new();
    let mut copy = vec![0u8; I420::len_for(width, height)];

    // Warm-up: caches, the encoder's buffers, the CPU's clock. Every frame once also
    // gives the encoded sizes.
    let mut bytes = 0usize;
    for frame in &frames {
        bytes += encode(&mut encoder, frame)?.len();
    }
    let warm_until = Instant::now() + budget / 8;
    for frame in frames.iter().cycle() {
        if Instant::now() >= warm_until {
            break;
        }
        encode(&mut encoder, frame)?;
    }

    let (mut encode_ms, mut encode_cpu_ms, mut seal_us, mut memcpy_us) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let end = Instant::now() + budget;
    for frame in frames.iter().cycle() {
        if Instant::now() >= end && encode_ms.len() >= MIN_SAMPLES {
            break;
        }
        let (wall, cpu) = (Instant::now(), thread_cpu());
        let jpeg = encode(&mut encoder, frame)?;
        encode_ms.push(wall.elapsed().as_secs_f64() * 1e3);
        encode_cpu_ms.push((thread_cpu() - cpu).as_secs_f64() * 1e3);

        sealed.clear();
        sealed.extend_from_slice(&jpeg);
        let t = Instant::now();
        sealer.seal_records(&mut sealed);
        seal_us.push(t.elapsed().as_secs_f64() * 1e6);

        let t = Instant::now();
        copy.copy_from_slice(black_box(frame.image.as_bytes()));
        black_box(&mut copy);
        memcpy_us.push(t.elapsed().as_secs_f64() * 1e6);
    }

    let summary = |v: &[f64]| Summary::of(v).expect("at least MIN_SAMPLES samples");
    Ok(SizeResult {
        width,
        height,
        jpeg_bytes: bytes as f64 / frames.len() as f64,
        encode_ms: summary(&encode_ms),
        encode_cpu_ms: summary(&encode_cpu_ms),
        seal_us: summary(&seal_us),
        memcpy_us: summary(&memcpy_us),
    })
}

fn encode(encoder: &mut TurboJpeg, frame: &Frame) -> Result<bytes::Bytes> {
    Ok(encoder.encode(frame).context("encoding a frame")?.data)
}

fn print_report(host: &Host, quality: u8, results: &[SizeResult]) {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                format!("{}x{}", r.width, r.height),
                format!("{:.1}", r.jpeg_bytes / 1024.0),
                format!("{:.2}", r.bits_per_pixel()),
                format!("{:.3}", r.encode_ms.median),
                format!("{:.3}", r.encode_ms.p95),
                format!("{:.3}", r.encode_cpu_ms.median),
                format!("{:.3}", r.encode_cpu_ms.p95),
                format!("{:.0}", r.fps_one_core()),
                format!("{:.1}", r.core_share_at_25fps() * 100.0),
                format!("{:.1}", r.seal_us.median),
                format!("{:.1}", r.encode_per_seal()),
                format!("{:.1}", r.memcpy_us.median),
                format!("{:.1}", r.encode_per_memcpy()),
            ]
        })
        .collect();
    println!("host: {}", host.describe());
    println!("JPEG encode, turbojpeg quality {quality} 4:2:0, synthetic scene, one thread\n");
    print!(
        "{}",
        table::render(
            &[
                "size",
                "KiB/frame",
                "bits/px",
                "wall ms med",
                "wall ms p95",
                "cpu ms med",
                "cpu ms p95",
                "fps/core",
                "%core@25fps",
                "seal µs",
                "enc/seal",
                "memcpy µs",
                "enc/memcpy",
            ],
            &rows,
        )
    );
    println!(
        "\nwall = elapsed time per encode; cpu = the encoding thread's CPU time (the difference is\n\
         time the machine gave to other work). fps/core and %core@25fps use the CPU median.\n\
         seal = ChaCha20-Poly1305 (ring) of this frame's JPEG in 16 KiB TLS records: the cipher\n\
         work of sending it to one client. enc/seal = encode CPU median ÷ seal median, from the\n\
         same interleaved iterations. memcpy = copying the raw I420 frame.\n"
    );
    let json = json!({
        "bench": "jpeg",
        "argv": std::env::args().collect::<Vec<_>>(),
        "host": host.to_json(),
        "quality": quality,
        "results": results.iter().map(|r| json!({
            "size": format!("{}x{}", r.width, r.height),
            "jpeg_bytes_mean": round(r.jpeg_bytes, 0),
            "bits_per_pixel": round(r.bits_per_pixel(), 3),
            "encode_ms": r.encode_ms.to_json(),
            "encode_cpu_ms": r.encode_cpu_ms.to_json(),
            "fps_one_core": round(r.fps_one_core(), 1),
            "core_share_at_25fps": round(r.core_share_at_25fps(), 4),
            "seal_us": r.seal_us.to_json(),
            "memcpy_us": r.memcpy_us.to_json(),
            "ratio_encode_to_seal": round(r.encode_per_seal(), 2),
            "ratio_encode_to_memcpy": round(r.encode_per_memcpy(), 2),
        })).collect::<Vec<_>>(),
    });
    println!("{json}");
}
