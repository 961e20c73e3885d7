//! The fan-out report: a table for people, one JSON line for programs.

use std::path::Path;
use std::time::Duration;

use mecam_benches::host::Host;
use mecam_benches::stats::round;
use mecam_benches::table;
use serde_json::{Value, json};

use crate::Config;
use crate::phase::Measured;

pub struct Run<'a> {
    pub host: &'a Host,
    pub config: &'a Config,
    pub bin: &'a Path,
    pub measured: &'a [Measured],
    /// ChaCha20-Poly1305 sealing cost before the server started and after it stopped.
    pub seal_ns_per_byte: [f64; 2],
    pub hwm_kib: u64,
    pub shutdown: Duration,
    pub clean_exit: bool,
    /// Server log: client drops, warnings, errors.
    pub log: (u64, u64, u64),
}

/// The same-run references every window is compared with.
struct Baseline {
    /// Server CPU seconds per second with no client (mean of the 0-client windows).
    cpu_rate: f64,
    /// Server CPU per frame the camera produced, with no client: capture + encode.
    us_per_frame: f64,
    seal_ns_per_byte: f64,
}

/// What a window with clients works out to, against the baseline.
struct Derived {
    delivered_per_s: f64,
    us_per_delivered: f64,
    /// The I/O loop thread's CPU per delivered frame.
    io_us: f64,
    marginal_us: f64,
    frame_bytes: f64,
    seal_us: f64,
    fps_mean: f64,
    fps_min: f64,
    skipped_per_viewer: f64,
}

impl Derived {
    fn of(m: &Measured, base: &Baseline) -> Option<Self> {
        let delivered = m.delivered();
        if m.clients == 0 || delivered == 0 {
            return None;
        }
        let delivered_per_s = delivered as f64 / m.secs;
        let frame_bytes = m.delivered_bytes() as f64 / delivered as f64;
        let fps: Vec<f64> = m.viewers.iter().map(|c| c.frames as f64 / m.secs).collect();
        Some(Self {
            delivered_per_s,
            us_per_delivered: m.server_cpu_rate() / delivered_per_s * 1e6,
            io_us: m.thread_cpu_s("io") / delivered as f64 * 1e6,
            marginal_us: (m.server_cpu_rate() - base.cpu_rate) / delivered_per_s * 1e6,
            frame_bytes,
            seal_us: base.seal_ns_per_byte * frame_bytes / 1e3,
            fps_mean: fps.iter().sum::<f64>() / fps.len() as f64,
            fps_min: fps.iter().copied().fold(f64::INFINITY, f64::min),
            skipped_per_viewer: m.viewers.iter().map(|c| c.skipped as f64).sum::<f64>()
                / m.viewers.len() as f64,
        })
    }
}

fn baseline(run: &Run) -> Baseline {
    let idle: Vec<&Measured> = run.measured.iter().filter(|m| m.clients == 0).collect();
    let n = idle.len().max(1) as f64;
    let cpu_rate = idle.iter().map(|m| m.server_cpu_rate()).sum::<f64>() / n;
    let produced = idle.iter().map(|m| m.produced_fps).sum::<f64>() / n;
    Baseline {
        cpu_rate,
        us_per_frame: cpu_rate / produced * 1e6,
        seal_ns_per_byte: run.seal_ns_per_byte.iter().sum::<f64>() / 2.0,
    }
}

fn pct(cpu_s: f64, secs: f64) -> String {
    format!("{:.1}", cpu_s / secs * 100.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

pub fn print(run: &Run) {
    let base = baseline(run);
    let (w, h) = run.config.size;
    let dash = || "-".to_owned();
    println!("host: {}", run.host.describe());
    println!(
        "MJPEG fan-out: {} at {w}x{h}, {} fps, {:?} windows after {:?} warm-up; TLS {}\n",
        run.bin.display(),
        run.config.fps,
        run.config.window,
        run.config.warmup,
        cipher_suite(run).unwrap_or("?"),
    );

    let cost_rows: Vec<Vec<String>> = run
        .measured
        .iter()
        .map(|m| {
            vec![
                m.clients.to_string(),
                pct(m.server_cpu_s, m.secs),
                pct(m.server_cpu_s_stat, m.secs),
                pct(m.thread_cpu_s("io"), m.secs),
                pct(m.thread_cpu_s("jpeg-encode"), m.secs),
                pct(m.thread_cpu_s("capture"), m.secs),
                format!("{:.1}", m.produced_fps),
                mib(m.rss_max_kib),
                mib(m.rss_end_kib),
                pct(m.bench_cpu_s, m.secs),
            ]
        })
        .collect();
    println!("Server CPU (% of one core) and memory, per window:\n");
    print!(
        "{}",
        table::render(
            &[
                "clients",
                "CPU%",
                "stat%",
                "io%",
                "encode%",
                "capture%",
                "made/s",
                "RSS max MiB",
                "RSS end MiB",
                "bench CPU%",
            ],
            &cost_rows,
        )
    );
    println!(
        "\nCPU% = server CPU time ÷ wall time (100 = one core), from per-thread schedstat (ns);\n\
         stat% = the same from /proc/PID/stat utime+stime (10 ms ticks), as a check. io = the\n\
         async loop thread (TLS, HTTP, fan-out), encode = JPEG, capture = the synthetic camera.\n\
         made/s = frames the camera put on the live bus. bench CPU% = these clients' own cost.\n"
    );

    let frame_rows: Vec<Vec<String>> = run
        .measured
        .iter()
        .filter_map(|m| {
            let d = Derived::of(m, &base)?;
            let lat = m.latency.ms.map_or_else(dash, |l| {
                format!("{:.1}/{:.1}/{:.1}", l.median, l.p95, l.max)
            });
            Some(vec![
                m.clients.to_string(),
                format!("{:.1}/{:.1}", d.fps_mean, d.fps_min),
                format!("{:.1}", d.skipped_per_viewer),
                format!("{:.1}", d.frame_bytes / 1024.0),
                format!("{:.0}", d.us_per_delivered),
                format!("{:.0}", d.marginal_us),
                format!("{:.3}", d.marginal_us / base.us_per_frame),
                format!("{:.2}", d.marginal_us / d.seal_us),
                format!("{:.0}", d.io_us),
                format!("{:.2}", d.io_us / d.seal_us),
                lat,
            ])
        })
        .collect();
    println!("Per delivered frame (server CPU µs, and ratios to same-run references):\n");
    print!(
        "{}",
        table::render(
            &[
                "clients",
                "fps/client avg/min",
                "skipped",
                "KiB",
                "µs/frame",
                "marginal µs",
                "÷ base",
                "÷ seal",
                "io µs",
                "io ÷ seal",
                "latency p50/p95/max ms",
            ],
            &frame_rows,
        )
    );
    println!(
        "\nµs/frame = all server CPU ÷ frames delivered (all clients). marginal = (CPU rate −\n\
         0-client CPU rate) ÷ delivered frames/s: what one more frame to one more client costs.\n\
         io µs = the async loop thread's CPU ÷ delivered frames (idle with no client, so it is\n\
         a marginal cost free of the encoder's noise).\n\
         ÷ base = marginal ÷ the server's cost of producing one frame with no client (capture +\n\
         encode): {:.0} µs, mean of the 0-client windows ({}).\n\
         ÷ seal = ÷ ChaCha20-Poly1305 sealing of a frame of that size (16 KiB records) in this\n\
         process: {:.3} ns/B before the server started, {:.3} ns/B after it stopped.\n\
         Latency: capture ({}) → last byte read by the client; includes rendering and\n\
         encoding the frame. {}\n",
        base.us_per_frame,
        run.measured
            .iter()
            .filter(|m| m.clients == 0)
            .map(|m| format!("{:.0} µs", m.server_cpu_rate() / m.produced_fps * 1e6))
            .collect::<Vec<_>>()
            .join(", "),
        run.seal_ns_per_byte[0],
        run.seal_ns_per_byte[1],
        latency_source(run),
        clock_check(run),
    );
    println!(
        "RSS peak over the run (VmHWM): {} MiB. Shutdown on SIGTERM: {:.2} s ({}).\n\
         Server log: {} slow-client drops, {} warnings, {} errors.",
        mib(run.hwm_kib),
        run.shutdown.as_secs_f64(),
        if run.clean_exit { "exit 0" } else { "FAILED" },
        run.log.0,
        run.log.1,
        run.log.2,
    );
    for m in run.measured {
        for e in m.viewer_errors.iter().take(3) {
            println!("note: {} clients: a viewer failed: {e}", m.clients);
        }
        if m.latency.unreadable > 0 {
            println!(
                "note: {} clients: {} frames had an unreadable drawn clock",
                m.clients, m.latency.unreadable
            );
        }
    }
    println!("{}", to_json(run, &base));
}

fn latency_source(run: &Run) -> &'static str {
    run.measured
        .iter()
        .find(|m| m.latency.ms.is_some())
        .map_or("none", |m| m.latency.source)
}

/// One sentence on whether the server's `X-Timestamp` matched the drawn clocks.
fn clock_check(run: &Run) -> String {
    let (checked, mismatched) = run.measured.iter().fold((0, 0), |(c, m), w| {
        (c + w.latency.checked, m + w.latency.mismatched)
    });
    if checked == 0 {
        return "X-Timestamp was not checked (no header, or no readable clock).".into();
    }
    format!(
        "X-Timestamp matched the clock drawn in the frame in {} of {checked} frames.",
        checked - mismatched
    )
}

fn cipher_suite<'a>(run: &'a Run) -> Option<&'a str> {
    run.measured.iter().find_map(|m| m.cipher_suite.as_deref())
}

fn to_json(run: &Run, base: &Baseline) -> Value {
    let windows: Vec<Value> = run
        .measured
        .iter()
        .map(|m| {
            let d = Derived::of(m, base);
            json!({
                "clients": m.clients,
                "secs": round(m.secs, 3),
                "server_cpu_pct": round(m.server_cpu_s / m.secs * 100.0, 2),
                "server_cpu_pct_proc_stat": round(m.server_cpu_s_stat / m.secs * 100.0, 2),
                "threads_cpu_pct": m.threads_cpu_s.iter()
                    .map(|(k, v)| (k.clone(), json!(round(v / m.secs * 100.0, 2))))
                    .collect::<serde_json::Map<_, _>>(),
                "bench_cpu_pct": round(m.bench_cpu_s / m.secs * 100.0, 2),
                "produced_fps": round(m.produced_fps, 2),
                "delivered_frames": m.delivered(),
                "rss_max_kib": m.rss_max_kib,
                "rss_end_kib": m.rss_end_kib,
                "latency_ms": m.latency.ms.map(|l| l.to_json()),
                "latency_source": m.latency.source,
                "timestamp_check": {
                    "frames": m.latency.checked,
                    "mismatched": m.latency.mismatched,
                    "unreadable": m.latency.unreadable,
                },
                "viewer_errors": m.viewer_errors.len(),
                "fanout": d.map(|d| json!({
                    "delivered_fps_total": round(d.delivered_per_s, 2),
                    "fps_per_client_mean": round(d.fps_mean, 2),
                    "fps_per_client_min": round(d.fps_min, 2),
                    "skipped_per_client": round(d.skipped_per_viewer, 2),
                    "frame_bytes_mean": round(d.frame_bytes, 0),
                    "cpu_us_per_delivered_frame": round(d.us_per_delivered, 1),
                    "marginal_cpu_us_per_delivered_frame": round(d.marginal_us, 1),
                    "io_thread_cpu_us_per_delivered_frame": round(d.io_us, 1),
                    "ratio_io_thread_to_seal": round(d.io_us / d.seal_us, 2),
                    "seal_us_per_frame": round(d.seal_us, 2),
                    "ratio_marginal_to_baseline_frame": round(d.marginal_us / base.us_per_frame, 3),
                    "ratio_marginal_to_seal": round(d.marginal_us / d.seal_us, 2),
                })),
            })
        })
        .collect();
    json!({
        "bench": "fanout",
        "argv": std::env::args().collect::<Vec<_>>(),
        "host": run.host.to_json(),
        "server_bin": run.bin.display().to_string(),
        "size": format!("{}x{}", run.config.size.0, run.config.size.1),
        "fps": run.config.fps,
        "tls_cipher_suite": cipher_suite(run),
        "reference": {
            "baseline_cpu_pct": round(base.cpu_rate * 100.0, 2),
            "baseline_cpu_us_per_produced_frame": round(base.us_per_frame, 1),
            "seal_ns_per_byte_before": round(run.seal_ns_per_byte[0], 4),
            "seal_ns_per_byte_after": round(run.seal_ns_per_byte[1], 4),
        },
        "windows": windows,
        "rss_hwm_kib": run.hwm_kib,
        "shutdown_secs": round(run.shutdown.as_secs_f64(), 3),
        "clean_exit": run.clean_exit,
        "server_log": { "client_drops": run.log.0, "warnings": run.log.1, "errors": run.log.2 },
    })
}
