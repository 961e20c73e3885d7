//! `record`: CPU cost of recording, per recorded second, and sealed write throughput.
//!
//! Part 1 records the firmware's synthetic scene as the recorder does, on one thread:
//! `OpenH264` (25 fps, an IDR frame every 50 frames), `SegmentMuxer` (one fMP4 fragment
//! per GOP) and `FileSealer` (one vault chunk per fragment). It charges each stage's
//! thread CPU time to the recorded seconds, and reports it as ms of CPU per recorded
//! second and as a share of one core. The reference, sealed once after every recorded
//! second so that it sees the same load, is ChaCha20-Poly1305 (ring, 16 KiB TLS
//! records) of 1 MiB (see `reference`): encode is reported as "MiB of TLS sealing"
//! per recorded second, and muxing and vault sealing as multiples of what TLS-sealing
//! the same fragment bytes costs (sending that second of video to one client).
//!
//! Part 2 writes the same amount of data to a file twice, plainly and sealed with
//! `FileSealer` (one chunk per write), each ending with `fdatasync`, alternating the two
//! several times. The result that carries over is the sealed throughput as a ratio of
//! the plain one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mecam::camera::Frame;
use mecam::encode::Encoder;
use mecam::encode::h264::{H264Config, OpenH264, parameter_sets};
use mecam::record::fmp4::{SegmentMuxer, TrackInfo};
use mecam::vault::{Argon2Params, ContentKind, FileSealer, SealingKey, VaultRecord};
use mecam_benches::args::{Args, OptSpec, parse_size};
use mecam_benches::cputime::thread_cpu;
use mecam_benches::host::Host;
use mecam_benches::reference::Sealer;
use mecam_benches::stats::{Summary, round};
use mecam_benches::{scene, table};
use serde_json::json;

const ABOUT: &str = "Recording CPU per recorded second (H.264, fMP4, vault sealing) and sealed\n\
     write throughput as a ratio of plain writes.\n\
     Run: cargo run --release -p mecam-benches --bin record";
const SPEC: &[OptSpec] = &[
    (
        "seconds",
        "S",
        "recorded seconds measured per size, after one GOP of warm-up (default 20, even)",
    ),
    ("sizes", "LIST", "frame sizes (default 1280x720,1920x1080)"),
    (
        "bitrates",
        "LIST",
        "H.264 bit rates in b/s, one per size (default 2000000,4000000)",
    ),
    ("write-mib", "N", "MiB per write run (default 64)"),
    (
        "chunk-kib",
        "K",
        "bytes per write and per chunk, KiB (default 1024)",
    ),
    ("rounds", "N", "plain/sealed write pairs (default 3)"),
    (
        "dir",
        "PATH",
        "directory for the write test's file (default: the temp dir)",
    ),
];
const DEFAULT_SIZES: &[&str] = &["1280x720", "1920x1080"];
const DEFAULT_BITRATES: &[u32] = &[2_000_000, 4_000_000];
const FPS: u32 = 25;
/// Frames from one IDR frame to the next: 2 s, one fragment and one chunk per GOP.
const GOP: u32 = 50;
/// Distinct rendered frames, cycled: one second of moving scene.
const DISTINCT_FRAMES: usize = 25;
/// Bytes the reference seals after each recorded second.
const REFERENCE_BYTES: usize = 1 << 20;

/// CPU time of one recorded second, by stage, in ms.
#[derive(Default, Clone, Copy)]
struct Second {
    encode: f64,
    encode_wall: f64,
    mux: f64,
    seal: f64,
    /// Reference: ns per byte of the 1 MiB seal after this second.
    reference_ns_per_byte: f64,
    bytes: usize,
}

struct SizeResult {
    width: u32,
    height: u32,
    bitrate: u32,
    seconds: usize,
    fragments: usize,
    /// Per recorded second, ms.
    encode_cpu: Summary,
    encode_wall: Summary,
    /// Totals over the measured seconds, ms.
    mux_total: f64,
    seal_total: f64,
    bytes_total: usize,
    reference_ns_per_byte: Summary,
}

impl SizeResult {
    fn per_second(&self, total: f64) -> f64 {
        total / self.seconds as f64
    }
    fn encode_ms(&self) -> f64 {
        self.encode_cpu.median
    }
    fn mux_ms(&self) -> f64 {
        self.per_second(self.mux_total)
    }
    fn seal_ms(&self) -> f64 {
        self.per_second(self.seal_total)
    }
    /// The reference's CPU for TLS-sealing this stream's bytes of one second, ms.
    fn reference_ms(&self) -> f64 {
        self.reference_ns_per_byte.median * self.bytes_total as f64 / self.seconds as f64 / 1e6
    }
    /// The reference's CPU for 1 MiB, ms.
    fn reference_mib_ms(&self) -> f64 {
        self.reference_ns_per_byte.median * REFERENCE_BYTES as f64 / 1e6
    }
    /// Encode CPU per recorded second ÷ sealing 1 MiB.
    fn encode_per_reference_mib(&self) -> f64 {
        self.encode_ms() / self.reference_mib_ms()
    }
    fn kbit_per_second(&self) -> f64 {
        self.bytes_total as f64 * 8.0 / 1e3 / self.seconds as f64
    }
}

struct WriteResult {
    mib: usize,
    chunk: usize,
    dir: PathBuf,
    /// MB/s (10^6 bytes of plaintext per second of wall time), one per round.
    plain_mbs: Summary,
    sealed_mbs: Summary,
    /// CPU ms of the writing thread per run.
    plain_cpu_ms: Summary,
    sealed_cpu_ms: Summary,
}

impl WriteResult {
    fn ratio(&self) -> f64 {
        self.sealed_mbs.median / self.plain_mbs.median
    }
}

fn main() -> Result<()> {
    let args = Args::from_env(ABOUT, SPEC)?;
    let seconds: usize = args.get("seconds", 20)?;
    if seconds == 0 || !seconds.is_multiple_of(2) {
        bail!("--seconds must be even and positive (one fragment per 2 s GOP)");
    }
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
    let bitrates = args.list::<u32>("bitrates", DEFAULT_BITRATES)?;
    if bitrates.len() != sizes.len() {
        bail!("--bitrates needs one value per size");
    }
    let mib: usize = args.get("write-mib", 64)?;
    let chunk = args.get::<usize>("chunk-kib", 1024)? * 1024;
    let rounds: usize = args.get("rounds", 3)?;
    if mib == 0 || chunk == 0 || rounds == 0 {
        bail!("--write-mib, --chunk-kib and --rounds must be positive");
    }
    let dir = args.get("dir", std::env::temp_dir().display().to_string())?;
    let host = Host::probe();
    eprintln!("host: {}", host.describe());

    // A throwaway vault: the fast Argon2 parameters only shorten set-up; sealing
    // recordings needs only the public key, whatever they are.
    let (record, _recovery, _vault) =
        VaultRecord::create("bench", "bench", Argon2Params::INSECURE_FAST)
            .context("creating a vault")?;
    let key = record.sealing_key().context("the vault's sealing key")?;

    let mut results = Vec::new();
    for ((w, h), bitrate) in sizes.into_iter().zip(bitrates) {
        results.push(bench_size(w, h, bitrate, seconds, &key).with_context(|| format!("{w}x{h}"))?);
    }
    let write = bench_write(Path::new(&dir), mib, chunk, rounds, &key).context("write test")?;
    print_report(&host, &results, &write);
    Ok(())
}

fn bench_size(
    width: u32,
    height: u32,
    bitrate: u32,
    seconds: usize,
    key: &SealingKey,
) -> Result<SizeResult> {
    eprintln!(
        "record {width}x{height} @ {bitrate} b/s: rendering {DISTINCT_FRAMES} frames, \
         one GOP of warm-up, then {seconds} recorded seconds"
    );
    let mut frames = scene::frames(width, height, DISTINCT_FRAMES);
    let mut encoder = OpenH264::new(H264Config {
        width,
        height,
        fps: FPS,
        bitrate,
        keyframe_interval: GOP,
    })
    .context("starting OpenH264")?;
    let mut reference = Sealer::new();
    // Capture times 40 ms apart, as a 25 fps camera gives them: the encoder's rate
    // control and the muxer's sample durations both read them.
    let start = Instant::now();
    let frame_period = Duration::from_secs(1) / FPS;
    let encode_at = |index: u64, frames: &mut [Frame], encoder: &mut OpenH264| {
        let frame = &mut frames[index as usize % DISTINCT_FRAMES];
        frame.seq = index;
        frame.captured = start + frame_period * index as u32;
        encoder.encode(frame).context("encoding a frame")
    };

    // Warm-up: one GOP, which also gives the parameter sets for the init segment.
    let first = encode_at(0, &mut frames, &mut encoder)?;
    let sets = parameter_sets(&first.data).context("the first packet has no SPS/PPS")?;
    for index in 1..u64::from(GOP) {
        encode_at(index, &mut frames, &mut encoder)?;
    }

    let mut muxer = SegmentMuxer::new(
        TrackInfo {
            width,
            height,
            parameter_sets: sets,
        },
        FPS,
    )
    .context("starting the muxer")?;
    let mut sealer = FileSealer::new(key, ContentKind::Segment).context("starting a file")?;
    let mut reference_buf = vec![0x5A; REFERENCE_BYTES];
    reference.seal_records(&mut reference_buf);
    // Seals one chunk; returns its CPU ms.
    let seal = |sealer: &mut FileSealer, data: &[u8]| -> Result<f64> {
        let cpu = thread_cpu();
        let chunk = sealer.seal_chunk(data).context("sealing a chunk")?;
        let seal_ms = (thread_cpu() - cpu).as_secs_f64() * 1e3;
        std::hint::black_box(chunk);
        Ok(seal_ms)
    };
    // The init segment is chunk 0 of every segment file.
    let init = muxer.init_segment().clone();
    let mut per_second = vec![Second::default(); seconds];
    per_second[0].seal += seal(&mut sealer, &init)?;
    per_second[0].bytes += init.len();
    let mut fragments = 0;
    let first_measured = u64::from(GOP);
    for n in 0..(seconds as u64 * u64::from(FPS)) {
        let s = &mut per_second[(n / u64::from(FPS)) as usize];
        let (wall, cpu) = (Instant::now(), thread_cpu());
        let packet = encode_at(first_measured + n, &mut frames, &mut encoder)?;
        s.encode += (thread_cpu() - cpu).as_secs_f64() * 1e3;
        s.encode_wall += wall.elapsed().as_secs_f64() * 1e3;
        if n == 0 && !packet.keyframe {
            bail!("frame {} should start a GOP", first_measured + n);
        }

        let cpu = thread_cpu();
        let done = muxer.push(&packet).context("muxing a packet")?;
        s.mux += (thread_cpu() - cpu).as_secs_f64() * 1e3;
        if let Some(fragment) = done {
            s.seal += seal(&mut sealer, &fragment.data)?;
            s.bytes += fragment.data.len();
            fragments += 1;
        }
        if n % u64::from(FPS) == u64::from(FPS) - 1 {
            let cpu = thread_cpu();
            reference.seal_records(std::hint::black_box(&mut reference_buf));
            s.reference_ns_per_byte =
                (thread_cpu() - cpu).as_secs_f64() * 1e9 / REFERENCE_BYTES as f64;
        }
    }
    // The last fragment closes when the segment ends; charge it to the last second.
    let s = per_second.last_mut().expect("at least two seconds");
    let end = start + frame_period * (first_measured as u32 + seconds as u32 * FPS);
    let cpu = thread_cpu();
    let last = muxer.finish(Some(end)).context("finishing the segment")?;
    s.mux += (thread_cpu() - cpu).as_secs_f64() * 1e3;
    if let Some(fragment) = last {
        s.seal += seal(&mut sealer, &fragment.data)?;
        s.bytes += fragment.data.len();
        fragments += 1;
    }
    let cpu = thread_cpu();
    std::hint::black_box(sealer.finish());
    s.seal += (thread_cpu() - cpu).as_secs_f64() * 1e3;

    let summary = |f: fn(&Second) -> f64| {
        Summary::of(&per_second.iter().map(f).collect::<Vec<_>>()).expect("seconds > 0")
    };
    let total = |f: fn(&Second) -> f64| per_second.iter().map(f).sum::<f64>();
    Ok(SizeResult {
        width,
        height,
        bitrate,
        seconds,
        fragments,
        encode_cpu: summary(|s| s.encode),
        encode_wall: summary(|s| s.encode_wall),
        mux_total: total(|s| s.mux),
        seal_total: total(|s| s.seal),
        bytes_total: per_second.iter().map(|s| s.bytes).sum(),
        reference_ns_per_byte: summary(|s| s.reference_ns_per_byte),
    })
}

fn bench_write(
    dir: &Path,
    mib: usize,
    chunk: usize,
    rounds: usize,
    key: &SealingKey,
) -> Result<WriteResult> {
    let total = mib * 1024 * 1024;
    eprintln!(
        "write: {rounds} × ({mib} MiB plain, {mib} MiB sealed) in {chunk}-byte writes to {}",
        dir.display()
    );
    // Not all zeros, in case the file system compresses.
    let data: Vec<u8> = (0..chunk as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let path = dir.join(format!("mecam-bench-record-{}.tmp", std::process::id()));
    let (mut plain_mbs, mut sealed_mbs, mut plain_cpu, mut sealed_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..=rounds {
        for sealed in [false, true] {
            let (wall, cpu) = (Instant::now(), thread_cpu());
            write_file(&path, &data, total, sealed.then_some(key))
                .with_context(|| format!("writing {}", path.display()))?;
            let secs = wall.elapsed().as_secs_f64();
            let cpu_ms = (thread_cpu() - cpu).as_secs_f64() * 1e3;
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            // Round 0 warms up the file system and the page cache's free lists.
            if round == 0 {
                continue;
            }
            let mbs = total as f64 / 1e6 / secs;
            if sealed {
                sealed_mbs.push(mbs);
                sealed_cpu.push(cpu_ms);
            } else {
                plain_mbs.push(mbs);
                plain_cpu.push(cpu_ms);
            }
        }
    }
    let summary = |v: &[f64]| Summary::of(v).expect("rounds > 0");
    Ok(WriteResult {
        mib,
        chunk,
        dir: dir.to_owned(),
        plain_mbs: summary(&plain_mbs),
        sealed_mbs: summary(&sealed_mbs),
        plain_cpu_ms: summary(&plain_cpu),
        sealed_cpu_ms: summary(&sealed_cpu),
    })
}

/// Writes `total` bytes of `data` repeated, plainly or as a sealed file (header, one
/// chunk per write, end marker), then `fdatasync`s.
fn write_file(path: &Path, data: &[u8], total: usize, key: Option<&SealingKey>) -> Result<()> {
    let mut file = File::create(path)?;
    let writes = total.div_ceil(data.len());
    match key {
        None => {
            for _ in 0..writes {
                file.write_all(data)?;
            }
        }
        Some(key) => {
            let mut sealer = FileSealer::new(key, ContentKind::Segment)?;
            file.write_all(sealer.header())?;
            for _ in 0..writes {
                file.write_all(&sealer.seal_chunk(data)?.bytes)?;
            }
            file.write_all(&sealer.finish().bytes)?;
        }
    }
    file.sync_data()?;
    Ok(())
}

fn print_report(host: &Host, results: &[SizeResult], write: &WriteResult) {
    let pct = |ms: f64| format!("{:.3}", ms / 10.0);
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                format!("{}x{}", r.width, r.height),
                format!("{}", r.bitrate / 1000),
                format!("{:.0}", r.kbit_per_second()),
                format!("{:.1}", r.encode_ms()),
                format!("{:.1}", r.encode_cpu.p95),
                format!("{:.1}", r.encode_wall.median),
                pct(r.encode_ms()),
                format!("{:.3}", r.mux_ms()),
                pct(r.mux_ms()),
                format!("{:.3}", r.seal_ms()),
                pct(r.seal_ms()),
                format!("{:.3}", r.reference_ns_per_byte.median),
                format!("{:.0}", r.encode_per_reference_mib()),
                format!("{:.2}", r.mux_ms() / r.reference_ms()),
                format!("{:.2}", r.seal_ms() / r.reference_ms()),
            ]
        })
        .collect();
    println!("host: {}", host.describe());
    println!(
        "Recording, synthetic scene, OpenH264 {FPS} fps, IDR every {GOP} frames, one thread;\n\
         ms of CPU per recorded second (median over {} s for encode; totals ÷ seconds for the rest)\n",
        results.first().map_or(0, |r| r.seconds)
    );
    print!(
        "{}",
        table::render(
            &[
                "size",
                "kb/s set",
                "kb/s got",
                "enc ms",
                "enc p95",
                "enc wall",
                "enc %core",
                "mux ms",
                "mux %core",
                "seal ms",
                "seal %core",
                "ref ns/B",
                "enc/ref MiB",
                "mux/ref",
                "seal/ref",
            ],
            &rows,
        )
    );
    println!(
        "\nenc = OpenH264 encode, thread CPU per recorded second (p95 over seconds; wall = the\n\
         same seconds' elapsed time). mux = SegmentMuxer::push/finish (one fragment per GOP).\n\
         seal = FileSealer (XChaCha20-Poly1305) of the init segment, every fragment and the end\n\
         marker. %core = share of one core. ref = ring ChaCha20-Poly1305 in 16 KiB TLS records,\n\
         1 MiB after every recorded second (median). enc/ref MiB = encode ms ÷ ref ms for 1 MiB;\n\
         mux/ref and seal/ref = their ms ÷ ref ms for the same fragment bytes (one TLS client).\n"
    );
    println!(
        "Write {} MiB in {} KiB writes + fdatasync, {} (median of {} rounds, alternated)\n",
        write.mib,
        write.chunk / 1024,
        write.dir.display(),
        write.plain_mbs.n
    );
    print!(
        "{}",
        table::render(
            &["file", "MB/s med", "MB/s min", "MB/s max", "cpu ms med"],
            &[
                vec![
                    "plain".into(),
                    format!("{:.0}", write.plain_mbs.median),
                    format!("{:.0}", write.plain_mbs.min),
                    format!("{:.0}", write.plain_mbs.max),
                    format!("{:.1}", write.plain_cpu_ms.median),
                ],
                vec![
                    "sealed".into(),
                    format!("{:.0}", write.sealed_mbs.median),
                    format!("{:.0}", write.sealed_mbs.min),
                    format!("{:.0}", write.sealed_mbs.max),
                    format!("{:.1}", write.sealed_cpu_ms.median),
                ],
            ],
        )
    );
    println!(
        "\nsealed ÷ plain throughput: {:.3}  (MB/s = 10^6 plaintext bytes per wall second)\n",
        write.ratio()
    );
    let json = json!({
        "bench": "record",
        "argv": std::env::args().collect::<Vec<_>>(),
        "host": host.to_json(),
        "fps": FPS,
        "gop": GOP,
        "results": results.iter().map(|r| json!({
            "size": format!("{}x{}", r.width, r.height),
            "bitrate": r.bitrate,
            "seconds": r.seconds,
            "fragments": r.fragments,
            "kbit_per_second": round(r.kbit_per_second(), 1),
            "encode_cpu_ms_per_s": r.encode_cpu.to_json(),
            "encode_wall_ms_per_s": r.encode_wall.to_json(),
            "mux_cpu_ms_per_s": round(r.mux_ms(), 4),
            "seal_cpu_ms_per_s": round(r.seal_ms(), 4),
            "reference_ns_per_byte": r.reference_ns_per_byte.to_json(),
            "reference_cpu_ms_per_s_same_bytes": round(r.reference_ms(), 5),
            "core_share": {
                "encode": round(r.encode_ms() / 1e3, 5),
                "mux": round(r.mux_ms() / 1e3, 6),
                "seal": round(r.seal_ms() / 1e3, 6),
            },
            "ratio_encode_to_reference_mib": round(r.encode_per_reference_mib(), 2),
            "ratio_mux_to_reference": round(r.mux_ms() / r.reference_ms(), 3),
            "ratio_seal_to_reference": round(r.seal_ms() / r.reference_ms(), 3),
        })).collect::<Vec<_>>(),
        "write": {
            "mib": write.mib,
            "chunk_bytes": write.chunk,
            "dir": write.dir.display().to_string(),
            "plain_mb_per_s": write.plain_mbs.to_json(),
            "sealed_mb_per_s": write.sealed_mbs.to_json(),
            "plain_cpu_ms": write.plain_cpu_ms.to_json(),
            "sealed_cpu_ms": write.sealed_cpu_ms.to_json(),
            "ratio_sealed_to_plain": round(write.ratio(), 4),
        },
    });
    println!("{json}");
}
