//! `fanout`: what serving the MJPEG live view to many clients costs the real server.
//!
//! Starts the release `mecam` binary (synthetic camera, 1280×720, 25 fps by default),
//! then measures windows of 0, 1, 3, 10 and 50 TLS clients and 0 again: the server's CPU
//! time (whole process and per thread) and RSS from `/proc`, frames each client
//! received, and capture-to-client latency read from the clock drawn in the frames.
//!
//! References measured in the same run: the 0-client windows give the server's cost of
//! producing a frame (capture + JPEG encode), and ChaCha20-Poly1305 sealing (the TLS
//! cipher work per frame and client) is timed in this process before and after. The
//! fan-out cost per delivered frame is reported as a ratio to both.

mod phase;
mod report;

use std::time::Duration;

use anyhow::{Context, Result};
use mecam_benches::args::{Args, OptSpec, parse_size};
use mecam_benches::fanout::server::{self, Server};
use mecam_benches::host::Host;
use mecam_benches::reference::Sealer;

const ABOUT: &str = "MJPEG fan-out cost of the real server, with same-run references.\n\
     Build the server first: cargo build --release -p mecam\n\
     Run: cargo run --release -p mecam-benches --bin fanout\n\
     The server binary is $MECAM_BIN, else target/release/mecam.";
const SPEC: &[OptSpec] = &[
    (
        "clients",
        "LIST",
        "client counts to measure (default 1,3,10,50)",
    ),
    (
        "window",
        "S",
        "measuring window per client count (default 10)",
    ),
    (
        "warmup",
        "S",
        "settling time before each window (default 3)",
    ),
    ("size", "WxH", "camera frame size (default 1280x720)"),
    ("fps", "N", "camera frame rate (default 25)"),
];

/// The reference is sealed in buffers of this size (about one 720p frame) and reported
/// per byte, then scaled to the frames actually delivered.
const REFERENCE_BYTES: usize = 96 * 1024;
const REFERENCE_TIME: Duration = Duration::from_secs(2);

pub struct Config {
    pub clients: Vec<usize>,
    pub window: Duration,
    pub warmup: Duration,
    pub size: (u32, u32),
    pub fps: u32,
}

fn main() -> Result<()> {
    let args = Args::from_env(ABOUT, SPEC)?;
    let config = Config {
        clients: args.list("clients", &[1, 3, 10, 50])?,
        window: Duration::from_secs_f64(args.get("window", 10.0)?),
        warmup: Duration::from_secs_f64(args.get("warmup", 3.0)?),
        size: parse_size(&args.get("size", "1280x720".to_owned())?)?,
        fps: args.get("fps", 25)?,
    };
    let host = Host::probe();
    eprintln!("host: {}", host.describe());
    let bin = server::find_binary()?;

    eprintln!("reference: sealing {REFERENCE_BYTES} bytes for {REFERENCE_TIME:?}");
    let mut sealer = Sealer::new();
    let seal_before = sealer.measure(REFERENCE_BYTES, REFERENCE_TIME);

    eprintln!("starting {}", bin.display());
    let mut server = Server::launch(&bin, config.size, config.fps)?;
    eprintln!("server pid {} on https://{}", server.pid, server.addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    let local = tokio::task::LocalSet::new();
    let measured = local.block_on(&runtime, phase::run_all(&mut server, &config))?;
    let hwm_kib = mecam_benches::fanout::procfs::memory(server.pid)?.hwm_kib;
    let (shutdown, status) = server.stop()?;
    let log = server.log_counts();

    eprintln!("reference: sealing again, with the server stopped");
    let seal_after = sealer.measure(REFERENCE_BYTES, REFERENCE_TIME);

    report::print(&report::Run {
        host: &host,
        config: &config,
        bin: &bin,
        measured: &measured,
        seal_ns_per_byte: [seal_before, seal_after]
            .map(|s| s.median * 1e3 / REFERENCE_BYTES as f64),
        hwm_kib,
        shutdown,
        clean_exit: status.success(),
        log,
    });
    Ok(())
}
