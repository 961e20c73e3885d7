//! One measurement window: connect N viewers, let them settle, then sample the server
//! and the viewers at the start and end of the window.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mecam_benches::fanout::client::Client;
use mecam_benches::fanout::clock::{ClockReader, ms_between, ms_of_day};
use mecam_benches::fanout::procfs;
use mecam_benches::fanout::server::Server;
use mecam_benches::fanout::viewer::{self, Counters, Probe, Viewer};
use mecam_benches::stats::Summary;
use tokio::task::JoinHandle;

use crate::Config;

/// How long all viewers may take to connect and receive a first frame.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// RSS is sampled this often during a window; the report gives the largest value.
const RSS_EVERY: Duration = Duration::from_millis(250);

pub struct Measured {
    pub clients: usize,
    pub secs: f64,
    /// Server CPU seconds: the sum over its threads (`schedstat`, ns precision).
    pub server_cpu_s: f64,
    /// The same from `/proc/PID/stat` (10 ms ticks, includes exited threads): a check.
    pub server_cpu_s_stat: f64,
    /// CPU seconds per thread role: `io` (the main thread, which runs the async I/O
    /// loop), `jpeg-encode`, `capture`, or the thread's own name.
    pub threads_cpu_s: BTreeMap<String, f64>,
    /// This process (the clients), for judging how much the two compete for the cores.
    pub bench_cpu_s: f64,
    /// Frames a second the camera delivered to the live bus (from `/api/v1/health`).
    pub produced_fps: f64,
    /// Per viewer, received during the window.
    pub viewers: Vec<Counters>,
    /// Viewers whose stream failed during the window.
    pub viewer_errors: Vec<String>,
    pub rss_max_kib: u64,
    pub rss_end_kib: u64,
    pub latency: Latency,
    pub cipher_suite: Option<String>,
}

/// Capture-to-client latency over every frame every viewer received in a window.
#[derive(Default)]
pub struct Latency {
    /// Capture → last byte read by the client, in milliseconds.
    pub ms: Option<Summary>,
    /// Where capture times came from: the server's `X-Timestamp`, or the clock drawn in
    /// the frame for a server that sends none.
    pub source: &'static str,
    /// Frames whose `X-Timestamp` was compared with the drawn clock, and how many of
    /// them disagreed (to the millisecond).
    pub checked: usize,
    pub mismatched: usize,
    /// Frames whose drawn clock could not be read.
    pub unreadable: usize,
}

impl Measured {
    pub fn delivered(&self) -> u64 {
        self.viewers.iter().map(|c| c.frames).sum()
    }
    pub fn delivered_bytes(&self) -> u64 {
        self.viewers.iter().map(|c| c.bytes).sum()
    }
    pub fn thread_cpu_s(&self, role: &str) -> f64 {
        self.threads_cpu_s.get(role).copied().unwrap_or(0.0)
    }
    pub fn server_cpu_rate(&self) -> f64 {
        self.server_cpu_s / self.secs
    }
}

/// Measures 0 clients, each configured count, then 0 again (drift and memory check).
pub async fn run_all(server: &mut Server, config: &Config) -> Result<Vec<Measured>> {
    let client = Rc::new(Client::new(server.addr, &server.fingerprint)?);
    wait_for_camera(&client).await?;
    eprintln!("camera running; reading the clock templates");
    let clock = ClockReader::new(config.size.0, config.size.1);
    let main_thread = std::fs::read_to_string(format!("/proc/{}/comm", server.pid))
        .context("reading the server's thread name")?
        .trim()
        .to_owned();
    let mut counts = vec![0];
    counts.extend(&config.clients);
    counts.push(0);
    let mut out = Vec::new();
    for n in counts {
        server.check_running()?;
        eprintln!(
            "{n} clients: warming up {:?}, measuring {:?}",
            config.warmup, config.window
        );
        let m = measure(server, &client, &clock, &main_thread, n, config)
            .await
            .with_context(|| format!("measuring {n} clients"))?;
        out.push(m);
    }
    server.check_running()?;
    Ok(out)
}

async fn wait_for_camera(client: &Client) -> Result<()> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let health = client.get_json("/api/v1/health").await?;
        if health["camera"]["frames"].as_u64().unwrap_or(0) > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the camera produced no frame within {CONNECT_TIMEOUT:?}: {health}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Snapshot {
    at: Instant,
    server_ticks: u64,
    thread_ns: BTreeMap<String, u64>,
    bench_ticks: u64,
    viewers: Vec<Counters>,
}

impl Snapshot {
    fn take(pid: u32, viewers: &[Rc<Viewer>]) -> Result<Self> {
        Ok(Self {
            at: Instant::now(),
            server_ticks: procfs::cpu_ticks(pid)?,
            thread_ns: procfs::thread_cpu_ns(pid)?,
            bench_ticks: procfs::cpu_ticks(std::process::id())?,
            viewers: viewers.iter().map(|v| v.counters.get()).collect(),
        })
    }
}

/// Aborts the viewers when the window is over, or when measuring fails.
struct Viewers(Vec<JoinHandle<()>>);

impl Drop for Viewers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

async fn measure(
    server: &Server,
    client: &Rc<Client>,
    clock: &ClockReader,
    main_thread: &str,
    n: usize,
    config: &Config,
) -> Result<Measured> {
    let probe = Rc::new(Probe::default());
    let viewers: Vec<Rc<Viewer>> = (0..n).map(|_| Rc::new(Viewer::default())).collect();
    let tasks = Viewers(
        viewers
            .iter()
            .map(|v| {
                let run = viewer::run(Rc::clone(client), Rc::clone(v), Rc::clone(&probe));
                tokio::task::spawn_local(run)
            })
            .collect(),
    );
    wait_until_streaming(&viewers).await?;
    tokio::time::sleep(config.warmup).await;

    let (frames_before, health_before) = (camera_frames(client).await?, Instant::now());
    let start = Snapshot::take(server.pid, &viewers)?;
    probe.recording.set(true);
    let mut rss_max_kib = 0;
    let end_at = start.at + config.window;
    loop {
        rss_max_kib = rss_max_kib.max(procfs::memory(server.pid)?.rss_kib);
        let now = Instant::now();
        if now >= end_at {
            break;
        }
        tokio::time::sleep(RSS_EVERY.min(end_at - now)).await;
    }
    let end = Snapshot::take(server.pid, &viewers)?;
    probe.recording.set(false);
    let rss_end_kib = procfs::memory(server.pid)?.rss_kib;
    let (frames_after, health_after) = (camera_frames(client).await?, Instant::now());

    let viewer_errors = viewers
        .iter()
        .filter_map(|v| v.error.borrow().clone())
        .collect();
    drop(tasks);
    wait_until_disconnected(client).await?;

    let latency = latency(&probe, clock)?;
    let ticks = procfs::ticks_per_sec() as f64;
    let secs = (end.at - start.at).as_secs_f64();
    let threads_cpu_s: BTreeMap<String, f64> = end
        .thread_ns
        .iter()
        .map(|(name, &ns)| {
            let before = start.thread_ns.get(name).copied().unwrap_or(0);
            let role = if name == main_thread { "io" } else { name };
            (role.to_owned(), ns.saturating_sub(before) as f64 / 1e9)
        })
        .collect();
    let cipher_suite = probe.cipher_suite.borrow().clone();
    Ok(Measured {
        clients: n,
        secs,
        server_cpu_s: threads_cpu_s.values().sum(),
        server_cpu_s_stat: (end.server_ticks - start.server_ticks) as f64 / ticks,
        threads_cpu_s,
        bench_cpu_s: (end.bench_ticks - start.bench_ticks) as f64 / ticks,
        produced_fps: (frames_after - frames_before) as f64
            / (health_after - health_before).as_secs_f64(),
        viewers: start
            .viewers
            .iter()
            .zip(&end.viewers)
            .map(|(a, b)| Counters {
                frames: b.frames - a.frames,
                bytes: b.bytes - a.bytes,
                skipped: b.skipped - a.skipped,
            })
            .collect(),
        viewer_errors,
        rss_max_kib,
        rss_end_kib,
        latency,
        cipher_suite,
    })
}

async fn wait_until_streaming(viewers: &[Rc<Viewer>]) -> Result<()> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        if let Some(e) = viewers.iter().find_map(|v| v.error.borrow().clone()) {
            bail!("a viewer failed before the window: {e}");
        }
        if viewers.iter().all(|v| v.counters.get().frames > 0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let waiting = viewers
                .iter()
                .filter(|v| v.counters.get().frames == 0)
                .count();
            bail!("{waiting} viewers had no frame after {CONNECT_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server notices a closed connection at its next write; wait for that, so one
/// window's clients are gone before the next window starts.
async fn wait_until_disconnected(client: &Client) -> Result<()> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let health = client.get_json("/api/v1/health").await?;
        let live = health["live_clients"].as_u64().unwrap_or(u64::MAX);
        if live == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the server still counts {live} live clients {CONNECT_TIMEOUT:?} after they closed"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn camera_frames(client: &Client) -> Result<u64> {
    let health = client.get_json("/api/v1/health").await?;
    health["camera"]["frames"]
        .as_u64()
        .with_context(|| format!("no camera.frames in {health}"))
}

/// Capture-to-client latency of every frame every viewer received in the window, and
/// the check of the server's timestamps against the clock drawn in the frames.
fn latency(probe: &Probe, clock: &ClockReader) -> Result<Latency> {
    let mut drawn = HashMap::new();
    let (mut checked, mut mismatched, mut unreadable) = (0, 0, 0);
    for (&seq, (jpeg, header_us)) in probe.frames.borrow().iter() {
        let Some(ms) = clock.read_jpeg(jpeg)? else {
            unreadable += 1;
            continue;
        };
        drawn.insert(seq, ms);
        if let Some(us) = header_us {
            checked += 1;
            mismatched += usize::from(ms_of_day(*us) != ms);
        }
    }
    let mut from_header = 0;
    let samples: Vec<f64> = probe
        .arrivals
        .borrow()
        .iter()
        .filter_map(|a| match a.captured_us {
            Some(captured) => {
                from_header += 1;
                Some((a.arrived_us - captured) as f64 / 1e3)
            }
            None => Some(ms_between(*drawn.get(&a.seq)?, ms_of_day(a.arrived_us)) as f64),
        })
        .collect();
    let source = match from_header {
        _ if samples.is_empty() => "none",
        0 => "drawn clock",
        n if n == samples.len() => "X-Timestamp",
        _ => "X-Timestamp and drawn clock",
    };
    Ok(Latency {
        ms: Summary::of(&samples),
        source,
        checked,
        mismatched,
        unreadable,
    })
}
