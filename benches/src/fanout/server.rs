//! The service under test: the real release `mecam` binary, started on an ephemeral
//! port with a throw-away data directory, its log read for the address and the TLS
//! fingerprint. Dropping the handle stops it and removes the directory.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

/// How long the server may take to log its address and fingerprint: the first start
/// also creates the TLS key.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Log lines kept to explain a failure.
const TAIL_LINES: usize = 40;

/// The binary to benchmark: `$MECAM_BIN`, else `mecam` in the release directory the
/// bench itself was built into (so a custom `CARGO_TARGET_DIR` works too).
pub fn find_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("MECAM_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("MECAM_BIN={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    let exe = std::env::current_exe().context("finding the bench's own path")?;
    // target/release/fanout, or target/release/deps/fanout-HASH under `cargo bench`.
    let release = exe
        .ancestors()
        .skip(1)
        .take(2)
        .find(|dir| dir.file_name().is_some_and(|n| n == "release"));
    let candidate = match release {
        Some(dir) => dir.join("mecam"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/mecam"),
    };
    if !candidate.is_file() {
        bail!(
            "no release server binary at {}: build it first with \
             `cargo build --release -p mecam`, or point MECAM_BIN at one \
             (a debug build would make every number meaningless)",
            candidate.display()
        );
    }
    Ok(candidate)
}

#[derive(Default)]
pub struct LogSummary {
    tail: VecDeque<String>,
    /// "live client dropped" lines: the server gave up on a client that read too slowly.
    pub client_drops: u64,
    pub warnings: u64,
    pub errors: u64,
}

pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub fingerprint: String,
    data_dir: PathBuf,
    log: Arc<Mutex<LogSummary>>,
}

enum Announcement {
    Fingerprint(String),
    Address(String),
}

impl Server {
    pub fn launch(bin: &Path, (width, height): (u32, u32), fps: u32) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let data_dir =
            std::env::temp_dir().join(format!("mecam-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let mut child = Command::new(bin)
            .args(["run", "--listen", "127.0.0.1:0", "--camera", "synthetic"])
            .arg("--data")
            .arg(&data_dir)
            .args([
                "--size",
                &format!("{width}x{height}"),
                "--fps",
                &fps.to_string(),
            ])
            // The log is parsed below; a user's MECAM_LOG=debug must not change it.
            .env("MECAM_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(LogSummary::default()));
        let (tx, rx) = mpsc::channel();
        {
            // The log must be drained for the whole run: a full pipe would block the
            // server's logging, and with it the server.
            let log = Arc::clone(&log);
            std::thread::Builder::new()
                .name("mecam-log".into())
                .spawn(move || read_log(stderr, &log, &tx))
                .context("starting the log reader")?;
        }
        let mut server = Self {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            fingerprint: String::new(),
            data_dir,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut fingerprint, mut address) = (None, None);
        while fingerprint.is_none() || address.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Announcement::Fingerprint(f)) => fingerprint = Some(f),
                Ok(Announcement::Address(a)) => address = Some(a),
                Err(_) => bail!(
                    "{} did not announce its address and fingerprint within {START_TIMEOUT:?}:\n{}",
                    bin.display(),
                    server.log_tail()
                ),
            }
        }
        let address = address.expect("loop ends when both are set");
        server.addr = address
            .parse()
            .with_context(|| format!("server announced address `{address}`"))?;
        server.fingerprint = fingerprint.expect("loop ends when both are set");
        Ok(server)
    }

    /// Fails, with the end of the server's log, if the server has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the server exited ({status}):\n{}", self.log_tail());
        }
        Ok(())
    }

    pub fn log_counts(&self) -> (u64, u64, u64) {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        (log.client_drops, log.warnings, log.errors)
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.tail.iter().map(|l| format!("  {l}\n")).collect()
    }

    /// SIGTERM, then waits; returns how long the server took to exit and how.
    pub fn stop(&mut self) -> Result<(Duration, ExitStatus)> {
        let start = Instant::now();
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(status) = self.child.try_wait()? {
                return Ok((start.elapsed(), status));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child.kill()?;
        bail!(
            "the server ignored SIGTERM for 10 s and was killed:\n{}",
            self.log_tail()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn read_log(
    stderr: std::process::ChildStderr,
    log: &Mutex<LogSummary>,
    announce: &mpsc::Sender<Announcement>,
) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(fp) = after(&line, "TLS certificate SHA-256 fingerprint ") {
            let _ = announce.send(Announcement::Fingerprint(fp.to_owned()));
        }
        if let Some(addr) = after(&line, "serving HTTPS on https://") {
            let _ = announce.send(Announcement::Address(addr.trim_end_matches('/').to_owned()));
        }
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        log.client_drops += u64::from(line.contains("live client dropped"));
        log.warnings += u64::from(line.contains(" WARN "));
        log.errors += u64::from(line.contains(" ERROR "));
        if log.tail.len() == TAIL_LINES {
            log.tail.pop_front();
        }
        log.tail.push_back(line);
    }
}

/// The first word after `marker` in `line`.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split_whitespace().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_found_in_log_lines() {
        let fp = "2026-01-01T00:00:00Z  INFO TLS certificate SHA-256 fingerprint AB:CD";
        assert_eq!(
            after(fp, "TLS certificate SHA-256 fingerprint "),
            Some("AB:CD")
        );
        let addr = "... INFO serving HTTPS on https://127.0.0.1:4433 (HTTP/1.1, h2)";
        assert_eq!(
            after(addr, "serving HTTPS on https://"),
            Some("127.0.0.1:4433")
        );
        assert_eq!(after(addr, "nothing"), None);
    }
}
